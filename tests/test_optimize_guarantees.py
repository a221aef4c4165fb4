"""The guarantees of `ctxtax.optimize` on every real session in ../shared/data/real.

Every conversation of every file `ctxtax.load_all` reads as conversations (a file of several is
optimized one `Context` at a time), in safe mode and with ``unsafe=True``: valid output (tool
pairing, roles, no empty message), idempotent, exactly revertible (to the JSON of the file for
OpenAI payloads), no more tokens in any message, no line of text lost by a safe edit, references
that stand for text still there, and the same output on a second run and in another process.
The checks themselves are in `tests._guarantees`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ctxtax
from ctxtax import Context
from tests import _guarantees as g
from tests.conftest import REAL, ROOT, real_files

# Tool definitions only (MCP ``tools/list`` dumps): no conversation to optimize.
TOOL_LISTS = ("github-mcp-server", "mcp-tool-snapshots", "livemcpbench/tools.json")


def _conversation_files() -> list[Path]:
    return [
        p
        for p in real_files()
        if not any(str(p.relative_to(REAL)).startswith(t) for t in TOOL_LISTS)
    ]


FILES = _conversation_files()
IDS = [str(p.relative_to(REAL)) for p in FILES]
# Files of many conversations (aider 455, tau-bench 200, LiveMCPBench 95) are sampled where a
# check runs optimize again: safe mode checks them all, unsafe mode every 4th conversation, the
# second run (determinism) every 10th, to keep the suite fast.
MANY = 20


def _skip_without_data() -> None:
    if not REAL.exists():
        pytest.skip(f"real data not found at {REAL} (the ../shared/data/real folder is absent)")


def conversations(path: Path) -> list[tuple[Context, Any]]:
    """Each conversation of ``path`` with its JSON input: the message list of its record in an
    OpenAI / Anthropic file, None for a log (checked against its unedited payload)."""
    contexts = [c for c in ctxtax.load_all(path) if c.messages]
    data: Any = None
    if any(c.source_format in g.API for c in contexts):
        data = json.loads(path.read_text(encoding="utf-8"))
    out: list[tuple[Context, Any]] = []
    for ctx in contexts:
        expected: Any = None
        if ctx.source_format in g.API:
            record = ctx.meta.get("record")
            expected = data if record is None else data[record][ctx.meta["key"]]
        out.append((ctx, expected))
    return out


def sample(items: list[tuple[Context, Any]], every: int) -> list[tuple[Context, Any]]:
    """Every ``every``-th conversation of a file of many (the first always)."""
    return items[::every] if len(items) > MANY else items


def test_every_file_left_out_is_a_tool_list() -> None:
    _skip_without_data()
    assert len(FILES) > 50
    for path in real_files():
        if path not in FILES:
            assert all(not c.messages for c in ctxtax.load_all(path)), path


# Edits every run must include, so that the guarantees are not met by doing nothing.
MADE_SAFE = {
    "openhands/resolver_mock_output.jsonl": {"CTX101", "CTX102", "CTX103", "CTX104"},
    "swe-agent/demonstrations/ctf/crypto/BabyTimeCapsule.traj": {"CTX401"},
    "mini-swe-agent-gemini3/scikit-learn__scikit-learn-25102.traj.json": {"CTX402"},
}
MADE_UNSAFE = {
    "claude-code-spotter/8463c716-a2ea-4c14-9efa-87158ebd9f20.jsonl": {
        "CTX301",
        "CTX302",
        "CTX303",
    },
    "swe-agent/demonstrations/ctf/crypto/eps.traj": {"CTX403"},
    "openhands/multi_swe_bench_output.jsonl": {"CTX201"},
}


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_safe_optimize_guarantees(path: Path) -> None:
    _skip_without_data()
    made: set[str] = set()
    items = conversations(path)
    for ctx, expected in items:
        r = g.run(ctx, expected)
        g.check_all(r)
        assert all(e.safety == "safe" for e in r.out.edits)
        made.update(e.code for e in r.out.edits)
    for ctx, _ in sample(items, 10):
        assert g.fingerprint(ctxtax.optimize(ctx)) == g.fingerprint(ctxtax.optimize(ctx))
    assert made >= MADE_SAFE.get(str(path.relative_to(REAL)), set())


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_unsafe_optimize_guarantees(path: Path) -> None:
    _skip_without_data()
    made: set[str] = set()
    for ctx, expected in sample(conversations(path), 4):
        r = g.run(ctx, expected, unsafe=True)
        g.check_all(r)
        made.update(e.code for e in r.out.edits)
    assert made >= MADE_UNSAFE.get(str(path.relative_to(REAL)), set())


# Conversations of different formats and edits (file, index), optimized again in a fresh
# interpreter under other hash seeds: no output may depend on the order of a set or a dict.
_SAMPLE = (
    ("tau-bench/gpt-4o-airline.json", 1),
    ("tau-bench/gpt-4o-airline.json", 33),
    ("openhands/resolver_mock_output.jsonl", 0),
    ("openhands/resolver_mock_output.jsonl", 1),
    ("swe-agent/demonstrations/ctf/crypto/eps.traj", 0),
    ("swe-agent/demonstrations/ctf/crypto/BabyTimeCapsule.traj", 0),
    ("claude-code-viewer/fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl", 0),
)
_CHILD = """
import hashlib, json, sys
import ctxtax
for arg in sys.argv[1:]:
    path, index = arg.rsplit("::", 1)
    ctx = [c for c in ctxtax.load_all(path) if c.messages][int(index)]
    for unsafe in (False, True):
        out = ctxtax.optimize(ctx, unsafe=unsafe)
        text = json.dumps(out.payload, sort_keys=True, ensure_ascii=False)
        print(hashlib.sha256(text.encode()).hexdigest(), len(out.edits))
"""


def test_same_output_in_another_process() -> None:
    _skip_without_data()
    args = [f"{REAL / p}::{i}" for p, i in _SAMPLE if (REAL / p).exists()]
    here = []
    for arg in args:
        path, index = arg.rsplit("::", 1)
        ctx = [c for c in ctxtax.load_all(path) if c.messages][int(index)]
        for unsafe in (False, True):
            out = ctxtax.optimize(ctx, unsafe=unsafe)
            text = json.dumps(out.payload, sort_keys=True, ensure_ascii=False)
            here.append(f"{hashlib.sha256(text.encode()).hexdigest()} {len(out.edits)}")
    assert any(not line.endswith(" 0") for line in here)
    for seed in ("1", "2"):
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, *args],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=ROOT,
            check=True,
        )
        assert child.stdout.splitlines() == here, f"PYTHONHASHSEED={seed} changed the output"
