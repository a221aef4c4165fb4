"""Quality of CTX101-CTX104: known duplicates planted into real sessions are found, in tokens.

A fast cut of ``benches/eval_duplicates.py`` (read its docstring for the method): a fixed seed,
a few real sessions of every shape (text-only agent log, Claude Code, OpenHands, SWE-agent with
function calling, tau-bench, LiveMCPBench), three kinds of plants (whole tool output repeated,
span pasted between fresh text, near copy with 2-5 % of its lines edited). Skips when
``../shared/data/real`` is absent.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from types import ModuleType
from typing import Any

import pytest

import ctxtax
from tests.conftest import REAL, ROOT, real

SEED = 0
PER_KIND = 4
SESSIONS = [
    ("mini-swe-agent-gemini3", "sympy__sympy-23413.traj.json", None),
    ("mini-swe-agent-gemini3", "scikit-learn__scikit-learn-25102.traj.json", None),
    ("claude-code-viewer", "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl", [3, 5]),
    ("openhands", "multi_swe_bench_output.jsonl", [0]),
    (
        "swe-agent",
        "demonstrations/replay__marshmallow-code__marshmallow-1867__function_calling__install-1/"
        "marshmallow-code__marshmallow-1867.traj",
        None,
    ),
    ("swe-agent", "demonstrations/ctf/rev/rock.traj", None),
    ("tau-bench", "gpt-4o-airline.json", [1, 5, 7]),
    ("livemcpbench", "baseline_output_claude-sonnet-4.json", [0, 5, 9]),
]


def _bench() -> ModuleType:
    name = "eval_duplicates"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benches" / "eval_duplicates.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def counter() -> ctxtax.TiktokenCounter:
    return ctxtax.TiktokenCounter("cl100k_base")


@pytest.fixture(scope="module")
def outcomes(counter: ctxtax.TiktokenCounter) -> list[Any]:
    if not REAL.exists():
        pytest.skip(f"real data not found at {REAL} (the ../shared/data/real folder is absent)")
    bench = _bench()
    sessions = []
    for folder, name, picks in SESSIONS:
        contexts = ctxtax.load_all(real(folder, name))
        for i in picks if picks is not None else range(len(contexts)):
            sessions.append(bench.Session(folder, f"{name}#{i}", contexts[i]))
    return [bench.evaluate(s, seed=SEED, per_kind=PER_KIND, counter=counter) for s in sessions]


def _totals(outcomes: list[Any]) -> dict[str, Any]:
    bench = _bench()
    totals: dict[str, Any] = {}
    for o in outcomes:
        for kind, score in o.scores.items():
            totals.setdefault(kind, bench.Score()).add(score)
    return totals


def test_planted_duplicates_are_found_with_recall_and_precision_of_98_percent(
    outcomes: list[Any],
) -> None:
    totals = _totals(outcomes)
    bench = _bench()
    overall = bench.Score()
    for kind in bench.KINDS:
        score = totals[kind]
        assert score.plants >= 20, kind
        assert score.recall >= 0.98, (kind, score)
        assert score.precision >= 0.98, (kind, score)
        overall.add(score)
    assert overall.recall >= 0.98 and overall.precision >= 0.98, overall


def test_plants_leave_the_findings_before_them_in_place(outcomes: list[Any]) -> None:
    # A plant may move an earlier copy to another rule (a third copy makes CTX103), but every
    # finding before the plants keeps its location and its tokens.
    for o in outcomes:
        assert not o.outside_added, o.outside_added
        assert not o.outside_removed, o.outside_removed
        assert not o.outside_resized, o.outside_resized


def test_fresh_filler_is_never_flagged(counter: ctxtax.TiktokenCounter) -> None:
    # The method's own premise: the fresh text around a pasted span matches nothing.
    bench = _bench()
    rng = random.Random(SEED)
    planter = bench.Planter(ctxtax.Context(), rng, counter)
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": planter.sentences(120)}
        for i in range(12)
    ]
    report = ctxtax.audit(messages, model="gpt-4", counter=counter, select=["CTX1"])
    assert report.findings == []


def test_copy_of_a_visible_block_after_compaction_is_found(
    counter: ctxtax.TiktokenCounter,
) -> None:
    bench = _bench()
    ctx = ctxtax.load_all(
        real("claude-code-spotter", "8463c716-a2ea-4c14-9efa-87158ebd9f20.jsonl")
    )[0]
    assert ctx.calls and ctx.calls[-1].start == 143  # compacted: the window starts at 143
    # Message 171 (a Read, in the window) shares its first 2,368 chars with message 68 (before).
    planter = bench.Planter(ctx, random.Random(SEED), counter)
    planter.whole((171, 1, ctx.messages[171].parts[1].text))
    planted = planter.context()
    report = ctxtax.audit(planted, counter=counter, select=list(bench.CODES), strict=False)
    score = bench.score_plant(planter.plants[0], bench.detected_ranges(report.findings))
    assert score.recall >= 0.98, score
