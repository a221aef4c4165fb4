#!/usr/bin/env python3
"""Set up and run ctxtax from a fresh checkout with nothing but Python 3.11+.

    python3 scripts/run.py example   # audit the bundled example session and print the report
    python3 scripts/run.py test      # lint, type-check and run the whole test suite

Both create ``.venv`` on first use (and refresh it when a pyproject.toml changes), install ctxtax
with its development extras into it, then run. Extra arguments go to the command run
(``example``: to ``ctxtax audit``; ``test``: to pytest).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".ctxtax-installed"
EXAMPLE = ROOT / "examples" / "sessions" / "coding-agent.json"
PLUGINS = [ROOT / "plugins" / "ctxtax-langchain"]
"""Plugin packages: installed (editable, with their extras) and tested with the core."""
PROJECTS = [ROOT, *PLUGINS]
PLUGIN_EXTRAS = {"ctxtax-langchain": "agents,test"}


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for project in PROJECTS:
        digest.update((project / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def _run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def ensure_venv() -> None:
    """Create .venv and install ctxtax (editable, with dev extras) unless it is up to date."""
    if sys.version_info < (3, 11):  # noqa: UP036 -- runs before anything is installed
        sys.exit(f"ctxtax needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    _run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(PY, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]")
    for plugin in PLUGINS:
        extras = PLUGIN_EXTRAS.get(plugin.name, "test")
        _run(PY, "-m", "pip", "install", "--quiet", "-e", f"{plugin}[{extras}]")
    STAMP.write_text(fingerprint)


def example(args: list[str]) -> int:
    """Audit the bundled example session."""
    ensure_venv()
    cmd = [str(BIN / "ctxtax"), "audit", str(EXAMPLE.relative_to(ROOT)), *args]
    return subprocess.run(cmd, cwd=ROOT, check=False).returncode


def test(args: list[str]) -> int:
    """ruff, mypy and pytest: the same checks CI runs."""
    ensure_venv()
    steps: list[list[str]] = [
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "."],
        [str(BIN / "mypy")],
        *([str(BIN / "mypy"), str(p / "src")] for p in PLUGINS),
        [str(PY), "-m", "pytest", *(args or ["tests", *(str(p / "tests") for p in PLUGINS)])],
    ]
    for step in steps:
        print("+", " ".join(step), flush=True)
        code = subprocess.run(step, cwd=ROOT, check=False).returncode
        if code != 0:
            return code
    return 0


def main() -> int:
    commands = {"example": example, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
