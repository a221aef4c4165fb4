"""`Applier`: edits accepted in batches, on a context that grows, give what one `apply` gives.

An `Optimizer` keeps its `Applier` between calls: it adds the new candidates to the edits
accepted before, and goes on with the grown session (`extend`) instead of applying everything
again. Each way must give the very context, edit log and originals of `apply` with all the
candidates at once, in the same order. The contexts have many findings that conflict (whole-part
and partial edits of one part, references protecting their sources, dropped tools).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

import ctxtax
from ctxtax._applier import Applier, apply
from ctxtax._candidates import candidates
from ctxtax._context_audit import find_waste
from ctxtax._counting import count_context
from ctxtax._edits import MARK, Applied, ApplyCache, Candidate, marked_parts
from ctxtax._optimize import OptimizeOptions
from ctxtax._tokens import default_counter
from tests.conftest import real
from tests.test_auditor_memo import ANSI_LOG, BLOB, FILE, REPEATS, SPACES, tool_turn

OPTIONS = OptimizeOptions(unsafe=True, keep_last=1, clear_old_results=True)


def tool(name: str) -> dict[str, Any]:
    words = " ".join(["it reads the project and reports what it found"] * 6)
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name}: {words}",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    }


def session() -> dict[str, Any]:
    """A request with waste of every kind: copies, noise, stale and superseded results, old
    reasoning, tools never called."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Fix the build."},
        {
            "role": "assistant",
            "reasoning_content": "First look at the build log. " + "Reason it out. " * 60,
            "content": "Looking at the build.",
        },
        {"role": "user", "content": "Go on."},
    ]
    mixed = f"{ANSI_LOG}\n{FILE}\n{REPEATS}\n{SPACES}"  # several partial edits of one part
    outputs = [ANSI_LOG, REPEATS, BLOB, SPACES, FILE, mixed, FILE, ANSI_LOG + "\nmore", mixed]
    for i, output in enumerate(outputs):
        name = "run_shell" if i % 2 else "read_file"
        messages += tool_turn(f"c{i}", name, {"path": "app.py"}, output)
    messages += [
        {
            "role": "assistant",
            "reasoning_content": "Now the tests. " + "Think again. " * 60,
            "content": "The build is fixed.",
        },
        {"role": "user", "content": "And the tests?"},
        {"role": "assistant", "content": "Running them."},
    ]
    return {
        "model": "gpt-4o",
        "messages": messages,
        "tools": [tool(n) for n in ("read_file", "run_shell", "search_web", "deploy")],
    }


def planned(ctx: ctxtax.Context) -> list[Candidate]:
    """The candidates `optimize` would plan with, clearing of old results included."""
    audited = find_waste(ctx)
    counter = default_counter("gpt-4o")
    tokens = count_context(ctx, counter)
    return candidates(ctx, audited.raw_findings, OPTIONS, tokens=tokens, counter=counter)


def synthetic() -> tuple[ctxtax.Context, list[Candidate]]:
    ctx = ctxtax.load(session())
    return ctx, planned(ctx)


def assert_same(got: Applied, want: Applied) -> None:
    assert [[(p.kind, p.text) for p in m.parts] for m in got.context.messages] == [
        [(p.kind, p.text) for p in m.parts] for m in want.context.messages
    ]
    assert got.context == want.context
    assert got.edits == want.edits
    assert got.originals.keys() == want.originals.keys()
    assert all(got.originals[i] is want.originals[i] for i in got.originals)
    assert got.original_tools == want.original_tools


def in_batches(applier: Applier, cands: Sequence[Candidate], rng: random.Random) -> Applied:
    """``cands`` added in 1 to 4 batches, with a build after each: the last build."""
    cuts = sorted(rng.sample(range(len(cands) + 1), rng.randint(0, min(3, len(cands) + 1))))
    built = applier.build()
    for lo, hi in zip([0, *cuts], [*cuts, len(cands)], strict=True):
        applier.add(cands[lo:hi])
        built = applier.build()
    return built


def located_before(cand: Candidate, k: int) -> bool:
    """True when the edit and the source it refers to lie in the first ``k`` messages."""
    at = cand.edit.loc.message
    source = cand.finding.source
    src = source.message if source is not None else None
    return (at is None or at < k) and (src is None or src < k)


def check_batches(ctx: ctxtax.Context, cands: list[Candidate], seed: int, tries: int = 4) -> None:
    rng = random.Random(seed)
    for order in ("preference", "shuffled"):
        if order == "shuffled":
            cands = rng.sample(cands, len(cands))
        want = apply(ctx, cands)
        assert want.undo() == ctx
        for _ in range(tries):
            assert_same(in_batches(Applier(ctx), cands, rng), want)


def check_growth(ctx: ctxtax.Context, cands: list[Candidate], seed: int) -> int:
    """Grow an applier from prefixes of ``ctx``; how many prefixes it went on from."""
    rng = random.Random(seed)
    n = len(ctx.messages)
    grown = 0
    for k in sorted({1, n // 3, n // 2, n - 2, n - 1, rng.randrange(1, n)}):
        head = [c for c in cands if located_before(c, k)]
        rest = [c for c in cands if not located_before(c, k)]
        prefix = ctx.model_copy(update={"messages": ctx.messages[:k]})
        applier = Applier(prefix)
        in_batches(applier, head, rng)
        # new messages holding marks of earlier edits may protect what was edited: refused
        marks = any(MARK in p.text for m in ctx.messages[k:] for p in m.parts)
        assert applier.extend(ctx) is not marks, k
        if marks:
            continue
        got = in_batches(applier, rest, rng)
        assert_same(got, apply(ctx, head + rest))
        assert got.undo() == ctx
        grown += 1
    return grown


@pytest.mark.parametrize("seed", range(3))
def test_batches_equal_one_apply(seed: int) -> None:
    ctx, cands = synthetic()
    actions = {c.edit.action for c in cands}
    assert actions == {"replace_text", "replace_result", "drop_part", "drop_tool"}
    assert len(apply(ctx, cands).edits) < len(cands)  # conflicts: some are refused
    check_batches(ctx, cands, seed)


@pytest.mark.parametrize("seed", range(3))
def test_a_grown_context_equals_one_apply(seed: int) -> None:
    ctx, cands = synthetic()
    assert check_growth(ctx, cands, seed) >= 5  # no marks: it goes on from every prefix


def test_an_optimized_context_with_marks_in_batches() -> None:
    """Marks of earlier edits protect the parts they name: an optimized request audited again."""
    out = ctxtax.optimize(session(), unsafe=True)
    assert out.edits
    ctx = ctxtax.load(out.payload)
    cands = planned(ctx)
    assert cands and marked_parts(ctx)[1]  # parts named by references
    assert len(apply(ctx, cands).edits) < len(cands)
    check_batches(ctx, cands, 0)
    assert check_growth(ctx, cands, 0) >= 1  # grown past the last mark


def test_extend_refuses_what_is_not_a_growth() -> None:
    ctx, cands = synthetic()
    k = len(ctx.messages) // 2
    prefix = ctx.model_copy(update={"messages": ctx.messages[:k]})
    head = [c for c in cands if located_before(c, k)]
    applier = Applier(prefix)
    applier.add(head)
    before = applier.build()
    # an earlier message equal but not the same object
    copied = (ctx.messages[0].model_copy(), *ctx.messages[1:])
    assert ctx.messages[0] == copied[0]
    assert not applier.extend(ctx.model_copy(update={"messages": copied}))
    # another tool list
    assert not applier.extend(ctx.model_copy(update={"tools": ctx.tools[:-1]}))
    # fewer messages
    assert not applier.extend(ctx.model_copy(update={"messages": ctx.messages[: k - 1]}))
    # a new message holding a mark of an earlier edit
    marked = ctxtax.load(
        {"messages": [{"role": "user", "content": "[ctxtax: same as message 1 above]"}]}
    ).messages[0]
    grown = ctx.model_copy(update={"messages": (*ctx.messages[:k], marked)})
    assert not applier.extend(grown)
    # refused: nothing changed, the applier still builds its own context
    assert applier.ctx is prefix
    assert_same(applier.build(), before)
    assert_same(applier.build(), apply(prefix, head))
    # the same tool list as an equal tuple is the same tools
    equal_tools = ctx.model_copy(update={"tools": tuple(ctx.tools)})
    assert applier.extend(equal_tools)


def test_apply_with_a_kept_cache_equals_without() -> None:
    ctx, cands = synthetic()
    rng = random.Random(5)
    cache = ApplyCache()
    k = len(ctx.messages) // 2
    prefix = ctx.model_copy(update={"messages": ctx.messages[:k]})
    head = [c for c in cands if located_before(c, k)]
    some = rng.sample(cands, len(cands) // 2)
    # the same edits again (built messages reused), other edits of the same messages, a
    # grown context, then back: each equal to a fresh apply
    for ctx_now, cands_now in [
        (prefix, head),
        (prefix, head),
        (ctx, cands),
        (ctx, cands),
        (ctx, some),
        (ctx, cands[::-1]),
        (prefix, head),
        (ctx, cands),
    ]:
        assert_same(apply(ctx_now, cands_now, cache), apply(ctx_now, cands_now))
    again = apply(ctx, cands, cache)
    twice = apply(ctx, cands, cache)
    assert all(a is b for a, b in zip(again.context.messages, twice.context.messages, strict=True))


def real_context() -> tuple[ctxtax.Context, list[Candidate]]:
    ctx = ctxtax.load(real("mini-swe-agent-gemini3", "psf__requests-1142.traj.json"))
    audited = find_waste(ctx, model="gpt-4o")
    return ctx, candidates(ctx, audited.raw_findings, OptimizeOptions(unsafe=True, keep_last=1))


def test_real_session_in_batches_and_grown() -> None:
    ctx, cands = real_context()
    assert len(cands) > 300
    check_batches(ctx, cands, 11, tries=1)
    check_growth(ctx, cands, 12)
