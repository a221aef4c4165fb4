"""Recorded usage in Claude Code logs: summed naively over records vs deduplicated by ctxtax.

Claude Code writes one assistant record per content block of a response, each repeating the
response's ``usage``. Summing every record (as naive usage tools do) overcounts.

    python benches/claude_code_dedup.py [FOLDER ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ctxtax

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
FOLDERS = [REAL / "claude-code-spotter", REAL / "claude-code-viewer"]


def naive(path: Path) -> tuple[int, int]:
    """(records, prompt tokens) summed over every assistant record with usage."""
    prompt = records = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.strip() else {}
        usage = (
            (record.get("message") or {}).get("usage")
            if record.get("type") == "assistant"
            else None
        )
        if isinstance(usage, dict):
            prompt += sum(
                int(usage.get(k) or 0)
                for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            )
            records += 1
    return records, prompt


def main(folders: list[Path]) -> None:
    print(
        f"{'folder':<22} {'records':>8} {'calls':>6} {'naive prompt':>14} {'ctxtax prompt':>14} {'ratio':>6}"
    )
    for folder in folders:
        files = sorted(folder.rglob("*.jsonl"))
        naive_prompt = records = 0
        for path in files:
            n, p = naive(path)
            records += n
            naive_prompt += p
        contexts = {(c.source, c.title): c for path in files for c in ctxtax.load_all(path)}
        calls = [u for c in contexts.values() for u in (c.calls or ()) if u.usage is not None]
        prompt = sum(u.usage.prompt_tokens for u in calls if u.usage)
        print(
            f"{folder.name:<22} {records:>8,} {len(calls):>6,} {naive_prompt:>14,} {prompt:>14,} {naive_prompt / prompt:>6.2f}"
        )


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or FOLDERS)
