"""Start-up cost of ``ctxtax lint`` as a pre-commit hook runs it: a fresh process per commit.

Writes ten small, clean prompt templates (one per suffix the linter reads) to a temporary folder,
then times ``ctxtax lint`` on all ten in a new process, ``RUNS`` times after one warm-up run (so
bytecode is cached, as it is after the first commit), beside ``python -c pass`` (the floor no
Python tool gets under) and ``python -c "import ctxtax"``. Prints a markdown table, the modules
that take longest to import (``python -X importtime``), and the command to reproduce.

    .venv/bin/python benches/lint_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATES: dict[str, str] = {
    "support.txt": "You answer support tickets for an online shop. Be brief and polite.\n",
    "review.md": "# Reviewer\n\nYou review pull requests for a Python project.\n",
    "triage.prompt": "You sort incoming bug reports by severity: blocker, major, minor.\n",
    "greet.j2": "You greet the user by name.\n\nThe user is {{ user_name }}.\n",
    "summary.jinja": "You summarize meeting notes in five bullets.\n\nNotes:\n{{ notes }}\n",
    "release.jinja2": "You write release notes for users.\n\nChanges:\n{{ changes }}\n",
    "agent.yaml": "system: |\n  You plan the agent's next step and explain it in one line.\n",
    "tutor.yml": "messages:\n  - role: system\n    content: You tutor students in algebra.\n",
    "sql.json": json.dumps(
        {"messages": [{"role": "system", "content": "You write SQL for Postgres."}]}
    ),
    "chat.prompty": "---\nname: chat\n---\nsystem:\nYou are a helpful assistant.\n\nuser:\n{{question}}\n",
}
"""Clean templates: ``ctxtax lint`` exits 0 on them (the table's exit column says so)."""


def _ctxtax() -> list[str]:
    """The ``ctxtax`` console script next to this Python (what pre-commit runs), else ``-m``."""
    script = shutil.which("ctxtax", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "ctxtax"]


def _time(cmd: list[str], runs: int) -> tuple[float, float, int]:
    """(median, min) wall seconds over ``runs`` fresh processes after one warm-up; exit code."""
    warm = subprocess.run(cmd, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), warm.returncode


def _import_times(cmd: list[str], top: int) -> tuple[float, list[tuple[str, float]]]:
    """Total import seconds, and the ``top`` slowest of: ctxtax's top-level imports and each
    third-party package (its first import, subtree included)."""
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    line = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)$")
    total = 0.0
    rows: dict[str, float] = {}
    for text in done.stderr.splitlines():
        match = line.match(text)
        if not match:
            continue
        seconds, depth, name = int(match.group(1)) / 1e6, len(match.group(2)), match.group(3)
        if depth == 0:
            total += seconds
        root = name.partition(".")[0]
        third_party = "." not in name and root not in sys.stdlib_module_names
        if (depth == 0 and root == "ctxtax") or (third_party and root != "ctxtax"):
            rows.setdefault(name, seconds)
    return total, sorted(rows.items(), key=lambda row: -row[1])[:top]


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command")
    parser.add_argument("--top", type=int, default=8, help="imports to list")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ctxtax-lint-bench-") as tmp:
        folder = Path(tmp)
        for name, text in TEMPLATES.items():
            (folder / name).write_text(text, encoding="utf-8")
        paths = [str(folder / name) for name in TEMPLATES]
        lint = [*_ctxtax(), "lint", *paths]
        commands = {
            "`python -c pass`": [sys.executable, "-c", "pass"],
            "`python -c 'import ctxtax'`": [sys.executable, "-c", "import ctxtax"],
            f"`ctxtax lint` on {len(paths)} templates": lint,
        }
        print(
            f"Fresh process per run, {args.runs} runs after one warm-up, {sys.version.split()[0]}"
        )
        print()
        print("| command | median | min | exit |")
        print("| --- | ---: | ---: | ---: |")
        for label, cmd in commands.items():
            median, best, code = _time(cmd, args.runs)
            print(f"| {label} | {median * 1000:,.0f} ms | {best * 1000:,.0f} ms | {code} |")
        print()
        lint_py = [sys.executable, "-m", "ctxtax", "lint", *paths]
        total, slowest = _import_times(lint_py, args.top)
        print(
            f"Imports of `ctxtax lint` (`python -X importtime`, one run): {total * 1000:,.0f} ms "
            "in all; the slowest ctxtax modules and third-party packages (cumulative, nested "
            "rows overlap):"
        )
        print()
        print("| module | ms |")
        print("| --- | ---: |")
        for name, seconds in slowest:
            print(f"| `{name}` | {seconds * 1000:,.0f} |")
    print()
    print(f"Reproduce: `.venv/bin/python benches/lint_startup.py --runs {args.runs}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
