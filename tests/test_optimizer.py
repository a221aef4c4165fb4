"""The stateful `Optimizer` on a growing session: the prompt it sends keeps the bytes it sent
before (earlier edits are made again identically), new waste near the end is taken out at once,
and an old low-value edit waits until it pays for the cache it breaks."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

import ctxtax
from ctxtax._optimizer import Optimizer
from tests.conftest import real

FILE = "\n".join(
    f"def handler_{i}(request):\n    value = request.params.get('field_{i}', {i})\n"
    f"    return {{'status': 'ok', 'value': value * {i}}}\n"
    for i in range(12)
)


def turn(cid: str, name: str, output: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": cid, "content": output},
    ]


def grow() -> list[list[dict[str, Any]]]:
    """The prompts of a session, call by call: the file is read twice early on."""
    history: list[dict[str, Any]] = [{"role": "user", "content": "Fix the handlers."}]
    history += turn("c1", "read_file", FILE)
    prompts = [list(history)]
    history += turn("c2", "read_file", FILE)  # an exact copy: new, so free to edit
    prompts.append(list(history))
    for k in range(3, 12):
        history += turn(f"c{k}", "run", f"test run {k}: {k * 3} passed, 0 failed")
        prompts.append(list(history))
    return prompts


def test_earlier_edits_stay_byte_stable() -> None:
    optimizer = Optimizer(model="gpt-4o")
    sent: list[list[Any]] = []
    for prompt in grow():
        result = optimizer.optimize(prompt)
        sent.append(json.loads(json.dumps(result.messages)))
    # The copy is replaced as soon as it arrives, and from then on every prompt starts with
    # exactly the messages the previous prompt had.
    assert "[ctxtax: same as the tool result of c1" in sent[1][4]["content"]
    for before, after in itertools.pairwise(sent):
        assert after[: len(before)] == before
    assert optimizer.rebuilt == 0


def test_a_changed_history_drops_the_kept_edits() -> None:
    optimizer = Optimizer(model="gpt-4o")
    prompts = grow()
    assert optimizer.optimize(prompts[1]).edits  # the copy is new: replaced at once
    rewritten = [{"role": "user", "content": "Start over."}, *prompts[1][1:3]]
    result = optimizer.optimize(rewritten)
    assert optimizer.rebuilt == 1
    assert not result.edits


def test_old_low_value_edit_waits_for_enough_calls() -> None:
    # Under Anthropic caching, replacing a small copy deep in a long prompt costs a cache write
    # of everything after it; with one call to come it does not pay, with many it does.
    pad = [
        {"role": "user", "content": f"note {i}: " + "lorem ipsum dolor sit amet " * 60}
        for i in range(6)
    ]
    copy = FILE
    messages = [
        {"role": "user", "content": copy},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": copy},
        {"role": "assistant", "content": "ok"},
        *[m for p in pad for m in (p, {"role": "assistant", "content": "ok"})],
        {"role": "user", "content": "And now?"},
    ]
    few = Optimizer(model="claude-sonnet-4-5", expected_calls=1, select=["CTX1"])
    kept = few.optimize(messages)
    assert kept.deferred >= 1 and not kept.edits
    many = Optimizer(model="claude-sonnet-4-5", expected_calls=500, select=["CTX1"])
    made = many.optimize(messages)
    assert made.edits and made.deferred == 0


@pytest.mark.parametrize("name", ["django__django-14349.traj.json", "psf__requests-1142.traj.json"])
def test_real_session_prefix_stays_stable(name: str) -> None:
    ctx = ctxtax.load(real("mini-swe-agent-gemini3", name))
    optimizer = Optimizer(model="gpt-4o", unsafe=True)
    previous: ctxtax.Context | None = None
    calls = ctx.model_calls()
    for call in calls[:: max(1, len(calls) // 15)]:
        window = ctx.model_copy(update={"messages": ctx.messages[: call.end], "calls": None})
        sent = optimizer.optimize_context(window)
        if previous is not None:
            # Every message sent before is sent again unchanged, unless the history
            # changed underneath (it does not, in a recorded session).
            same = [
                (m.role, [(p.kind, p.text) for p in m.parts])
                for m in sent.messages[: len(previous.messages)]
            ]
            was = [(m.role, [(p.kind, p.text) for p in m.parts]) for m in previous.messages]
            changed = sum(1 for a, b in zip(same, was, strict=True) if a != b)
            assert changed <= 1, f"{changed} earlier messages changed between calls"
        previous = sent
    assert optimizer.rebuilt == 0


def test_step_reports_what_it_did() -> None:
    optimizer = Optimizer(model="gpt-4o")
    prompts = grow()
    ctx = ctxtax.load(prompts[1], format="openai")
    step = optimizer.step(ctx)
    assert [e.code for e in step.edits] == ["CTX101"]
    assert step.tokens_after == step.tokens_before - sum(e.tokens_saved for e in step.edits)
    assert step.context.messages[4].parts[0].text.startswith("[ctxtax: same as")
    assert step.report.findings


def test_kept_candidates_equal_fresh_ones_at_every_call() -> None:
    # An Optimizer's candidates come from the last call's, told what the audit found and lost;
    # at every call of a growing session (copies, near copies, noise, stale outputs, and the
    # last results moving so that edits are held back and let go) they are exactly the
    # candidates made afresh from the same findings, in the same order.
    from ctxtax._candidates import KeptCandidates, candidates
    from ctxtax._optimize import OptimizeOptions

    lines = "\n".join(f"row {j}: value {j * 7} ok" for j in range(40))
    history: list[dict[str, Any]] = [{"role": "user", "content": "Fix the handlers."}]
    auditor = ctxtax.Auditor()
    kept = KeptCandidates()
    opts = OptimizeOptions(unsafe=True, keep_last=2)
    changed = gone = 0
    for k in range(30):
        if k % 5 == 4:  # a large listing nothing refers to (yet): a stale output
            output = "\n".join(f"def func_{k}_{j}(x): return helper_{k}_{j}(x)" for j in range(60))
        else:
            output = FILE if k % 4 == 0 else lines.replace("ok", f"ok {k}") if k % 3 else lines
        history += turn(f"c{k}", "read_file" if k % 2 else "run", output)
        history[-2]["tool_calls"][0]["function"]["arguments"] = json.dumps({"path": f"f{k}"})
        if k in (17, 25):  # the model uses an old listing: its stale finding goes away
            history.append({"role": "assistant", "content": f"Next: func_{k - 13}_3 and more."})
            history.append({"role": "user", "content": "Go on."})
        ctx = auditor._context(list(history), None, None)
        assert ctx is not None
        audited = auditor.find(ctx)
        changed += audited.changes is not None
        gone += bool(audited.changes and audited.changes[2])
        got = candidates(ctx, audited.raw_findings, opts, kept=kept, changes=audited.changes)
        want = candidates(ctx, audited.raw_findings, opts)
        assert [(id(c.finding), id(c.edit)) for c in got] == [
            (id(c.finding), id(c.edit)) for c in want
        ], k
    assert changed >= 25  # the kept path was taken, not the rebuild
    assert gone >= 1  # and findings went away on it
    # More results kept whole (a later run that found nothing new): edits made before are now
    # held back, and the reverse.
    assert audited.changes is not None
    for run, keep in ((audited.changes[0] + 1, 6), (audited.changes[0] + 2, 1)):
        opts = OptimizeOptions(unsafe=True, keep_last=keep)
        got = candidates(ctx, audited.raw_findings, opts, kept=kept, changes=(run, [], []))
        want = candidates(ctx, audited.raw_findings, opts)
        assert [id(c.edit) for c in got] == [id(c.edit) for c in want], keep
