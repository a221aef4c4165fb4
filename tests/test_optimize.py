"""`ctxtax.optimize` on small sessions built here: what each option does, the cache-aware plan,
and edits that conflict (a lossy edit of the copy a reference stands for)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import ctxtax
from ctxtax import Call, Context
from ctxtax._applier import apply
from ctxtax._counting import count_context, provider_for
from ctxtax._edits import Candidate, marked_parts
from ctxtax._planning import CacheCost
from ctxtax._pricing import lookup_price
from ctxtax._session import cache_policy_for
from ctxtax._tokens import default_counter
from tests import _guarantees as g
from tests.conftest import real

FILE = "\n".join(
    f"def {verb}_order(request, response):\n"
    f"    {field} = request.params.get('{field}')\n"
    f"    return response.json({{'status': '{status}', '{field}': {field}}}, code=200)\n"
    for verb, field, status in (
        ("create", "customer", "created"),
        ("update", "address", "changed"),
        ("cancel", "reason", "cancelled"),
        ("refund", "amount", "refunded"),
        ("ship", "carrier", "shipped"),
        ("track", "parcel", "moving"),
    )
)
PATCHED = FILE.replace("code=200", "code=201")
LOG = "\n".join(
    f"FAILED tests/test_orders.py::test_refund_{name} - AssertionError: {i}.004 != {i}.0"
    for i, name in enumerate(("rounds", "keeps_currency", "twice", "partial", "late", "zero"))
)


def call(cid: str, name: str, args: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    fn = {"name": name, "arguments": json.dumps(args)}
    return {
        "role": "assistant",
        "content": text,
        "tool_calls": [{"id": cid, "type": "function", "function": fn}],
    }


def result(cid: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": cid, "content": content}


def read_twice() -> list[dict[str, Any]]:
    """``app.py`` read twice, unchanged: the second result is an exact copy."""
    return [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Fix the failing handler in app.py."},
        call("call_1", "read_file", {"path": "app.py"}),
        result("call_1", FILE),
        call("call_2", "read_file", {"path": "app.py"}),
        result("call_2", FILE),
        {"role": "assistant", "content": "The handlers look right; the bug is elsewhere."},
    ]


def read_patch_read() -> list[dict[str, Any]]:
    """``app.py`` read, patched, and read again: the first read is superseded."""
    return [
        {"role": "user", "content": "Make the handlers return 201."},
        call("call_1", "read_file", {"path": "app.py"}),
        result("call_1", FILE),
        call("call_2", "apply_patch", {"path": "app.py", "find": "200", "replace": "201"}),
        result("call_2", "Patched 6 lines."),
        call("call_3", "read_file", {"path": "app.py"}),
        result("call_3", PATCHED),
        {"role": "assistant", "content": "All six handlers now return 201."},
    ]


def codes(out: ctxtax.Optimized) -> list[str]:
    return [e.code for e in out.edits]


# -- duplicates ------------------------------------------------------------------------------


def test_a_duplicate_becomes_a_reference_to_the_copy_that_stays() -> None:
    messages = read_twice()
    given = copy.deepcopy(messages)
    out = ctxtax.optimize(messages)
    [edit] = out.edits
    marker = "[ctxtax: same as the tool result of call_1 (read_file) above]"
    assert (edit.code, edit.safety, edit.loc.message, edit.replacement) == (
        "CTX101",
        "safe",
        5,
        marker,
    )
    assert edit.removed == FILE
    assert out.messages[5] == {"role": "tool", "tool_call_id": "call_2", "content": marker}
    assert out.messages[3] is messages[3]  # the copy that stays is the caller's own object
    assert out.tokens_saved == edit.tokens_saved > 0
    assert messages == given
    assert ctxtax.revert(out) == given
    g.check_all(g.run(messages))


def test_an_anthropic_reference_keeps_the_fields_of_its_block() -> None:
    def read(cid: str) -> list[dict[str, Any]]:
        use = {"type": "tool_use", "id": cid, "name": "Read", "input": {"file_path": "app.py"}}
        done: dict[str, Any] = {"type": "tool_result", "tool_use_id": cid, "content": FILE}
        done["cache_control"] = {"type": "ephemeral"}
        return [{"role": "assistant", "content": [use]}, {"role": "user", "content": [done]}]

    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "system": "You are a coding agent.",
        "messages": [{"role": "user", "content": "Fix app.py."}, *read("t1"), *read("t2")],
    }
    out = ctxtax.optimize(body)
    assert codes(out) == ["CTX101"]
    assert out.messages[4]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "t2",
            "content": "[ctxtax: same as the tool result of t1 (Read) above]",
            "cache_control": {"type": "ephemeral"},
        }
    ]
    assert out.system == body["system"] and out.format == "anthropic"
    g.check_all(g.run(body))


def test_a_pasted_span_is_replaced_by_whole_lines_only() -> None:
    """The copy starts inside a line ("See: FAILED ..."): that line stays whole, the lines after
    it become the reference, so no line is cut in two."""
    messages = [
        {"role": "user", "content": "Run the tests."},
        call("call_1", "run", {"cmd": "pytest"}),
        result("call_1", LOG),
        {"role": "assistant", "content": "Six tests fail."},
        {"role": "user", "content": f"See: {LOG}\nWhy do they fail?"},
    ]
    out = ctxtax.optimize(messages)
    assert codes(out) == ["CTX101"]
    first = LOG.split("\n")[0]
    assert out.messages[4]["content"] == (
        f"See: {first}\n[ctxtax: same as the tool result of call_1 (run) above]\nWhy do they fail?"
    )
    g.check_nothing_unique_lost(g.run(messages))


# -- unsafe edits and the options that limit them --------------------------------------------


def test_a_stale_result_becomes_a_placeholder_only_when_unsafe() -> None:
    messages = read_patch_read()
    assert ctxtax.optimize(messages, keep_last=0, cache_aware=False).edits == []
    out = ctxtax.optimize(messages, unsafe=True, keep_last=0, cache_aware=False)
    [edit] = out.edits
    placeholder = "[ctxtax: superseded by the result of call_3 below; re-run read_file(path=app.py) to see it]"
    assert (edit.code, edit.safety, edit.loc.message) == ("CTX301", "unsafe", 2)
    assert out.messages[2] == result("call_1", placeholder)
    assert ctxtax.revert(out) == messages
    g.check_all(g.run(messages, unsafe=True, keep_last=0, cache_aware=False))


def test_keep_last_protects_the_last_results_from_lossy_edits() -> None:
    messages = read_patch_read()
    options: dict[str, Any] = {"unsafe": True, "cache_aware": False}
    assert codes(ctxtax.optimize(messages, keep_last=3, **options)) == []  # call_1 is 3rd last
    assert codes(ctxtax.optimize(messages, keep_last=2, **options)) == ["CTX301"]
    # Safe edits are made whatever keep_last says.
    assert codes(ctxtax.optimize(read_twice(), keep_last=10)) == ["CTX101"]


def two_tools() -> list[dict[str, Any]]:
    """A file read twice and a test run twice: two exact copies, of two tools."""
    return [
        {"role": "user", "content": "Fix the failing tests."},
        call("call_1", "read_file", {"path": "app.py"}),
        result("call_1", FILE),
        call("call_2", "run", {"cmd": "pytest"}),
        result("call_2", LOG),
        call("call_3", "read_file", {"path": "app.py"}),
        result("call_3", FILE),
        call("call_4", "run", {"cmd": "pytest"}),
        result("call_4", LOG),
        {"role": "assistant", "content": "Nothing changed."},
    ]


def edited(out: ctxtax.Optimized) -> list[int | None]:
    return [e.loc.message for e in out.edits]


def test_include_and_exclude_tools_choose_whose_results_are_edited() -> None:
    messages = two_tools()
    assert edited(ctxtax.optimize(messages)) == [6, 8]
    assert edited(ctxtax.optimize(messages, include_tools=["run"])) == [8]
    assert edited(ctxtax.optimize(messages, exclude_tools=["run"])) == [6]
    assert edited(ctxtax.optimize(messages, include_tools=["run"], exclude_tools=["run"])) == []


def test_min_saving_skips_smaller_edits() -> None:
    messages = two_tools()
    saved = {e.loc.message: e.tokens_saved for e in ctxtax.optimize(messages).edits}
    small, large = sorted(saved.values())
    assert small < large
    assert edited(ctxtax.optimize(messages, min_saving=small)) == [6, 8]
    assert edited(ctxtax.optimize(messages, min_saving=small + 1)) == [
        m for m, n in saved.items() if n == large
    ]
    assert edited(ctxtax.optimize(messages, min_saving=large + 1)) == []


# -- the prompt cache ------------------------------------------------------------------------

MODEL = "claude-3-5-sonnet-20241022"


def cached_session() -> dict[str, Any]:
    """An old copy deep in the cached history (message 4), and a new one in the messages added
    since the last reply (message 6, after the last assistant message)."""

    def read(cid: str, body: str) -> list[dict[str, Any]]:
        use = {"type": "tool_use", "id": cid, "name": "read_file", "input": {"path": "app.py"}}
        done = {"type": "tool_result", "tool_use_id": cid, "content": body}
        return [{"role": "assistant", "content": [use]}, {"role": "user", "content": [done]}]

    notes = "\n".join(f"Note {i}: the handlers share their validation code." for i in range(60))
    return {
        "model": MODEL,
        "max_tokens": 512,
        "messages": [
            {"role": "user", "content": f"Fix app.py. The test log:\n{LOG}"},
            *read("t1", FILE),
            *read("t2", FILE),
            {"role": "assistant", "content": f"Reading done.\n{notes}"},
            {"role": "user", "content": f"Still failing:\n{LOG}\nPlease look again."},
        ],
    }


def test_cache_aware_planning_defers_an_old_low_value_edit_and_makes_a_new_one() -> None:
    body = cached_session()
    both = ctxtax.optimize(body, cache_aware=False)
    assert [e.loc.message for e in both.edits] == [4, 6]
    old, new = both.edits
    assert old.code == "CTX101" and old.safety == new.safety == "safe"

    out = ctxtax.optimize(body)
    assert [e.loc.message for e in out.edits] == [6]  # after the last reply: free
    assert out.deferred == 1

    # The arithmetic of `_planning.choose`: breaking the cache at message 4 makes every token
    # from there a cache write once, instead of a read; the edit saves its tokens, as reads, on
    # each call still to come (by default as many as the session made: 4).
    ctx = ctxtax.load(body)
    counter = default_counter(MODEL)
    tokens = count_context(ctx, counter, provider=provider_for(MODEL, "anthropic"))
    found = lookup_price(MODEL, {})
    cost = CacheCost.of(cache_policy_for(MODEL, "anthropic"), found[1] if found else None)
    suffix = tokens.total - tokens.messages_between(0, 4)
    calls = len(ctx.model_calls())
    assert calls == 4
    net = (old.tokens_saved + new.tokens_saved) * calls * cost.read - suffix * cost.break_premium
    assert net < 0
    # Later rounds (the new edit made) weigh the old edit alone against a shorter suffix.
    after = count_context(out.context, counter, provider=provider_for(MODEL, "anthropic"))
    rest = after.total - after.messages_between(0, 4)
    pays_after = rest * cost.break_premium / (old.tokens_saved * cost.read)
    assert pays_after > calls

    late = ctxtax.optimize(body, expected_calls=2 * pays_after)
    assert [e.loc.message for e in late.edits] == [4, 6]
    assert late.deferred == 0
    short = ctxtax.optimize(body, expected_calls=0.5 * pays_after)
    assert [e.loc.message for e in short.edits] == [6] and short.deferred == 1
    for options in ({}, {"expected_calls": 2 * pays_after}, {"cache_aware": False}):
        g.check_all(g.run(body, **options))


def test_no_cache_policy_makes_every_edit() -> None:
    out = ctxtax.optimize(cached_session(), cache_policy="none")
    assert [e.loc.message for e in out.edits] == [4, 6] and out.deferred == 0


# -- conflicts -------------------------------------------------------------------------------


def read_read_patch_read() -> list[dict[str, Any]]:
    """``app.py`` read twice (an exact copy: CTX101), patched, read again: both early reads are
    superseded (CTX301), and the first is the source the copy's reference points at."""
    messages = read_patch_read()
    again = [call("call_0", "read_file", {"path": "app.py"}), result("call_0", FILE)]
    return [*messages[:3], *again, *messages[3:]]


def sources_intact(out: ctxtax.Optimized) -> None:
    """Every result a reference stands for still holds its text."""
    ctx = out.context
    _, named = marked_parts(ctx)
    for m, p in named:
        assert ctx.messages[m].parts[p].text == FILE, f"message {m} lost the referenced text"


def test_a_superseded_result_that_a_reference_points_at_keeps_its_text() -> None:
    messages = read_read_patch_read()
    options: dict[str, Any] = {"unsafe": True, "keep_last": 0, "cache_aware": False}
    found = {f.code for f in ctxtax.audit(messages).findings}
    assert {"CTX101", "CTX301"} <= found
    out = ctxtax.optimize(messages, **options)
    texts = [m["content"] for m in out.messages]
    assert FILE in texts or not any("same as" in t for t in texts if isinstance(t, str))
    sources_intact(out)
    again = ctxtax.optimize(out.payload, **options)
    assert again.edits == []
    g.check_all(g.run(messages, **options))


@pytest.mark.parametrize("unsafe_first", [False, True])
def test_apply_refuses_a_reference_to_an_edited_source_and_an_edit_of_a_source(
    unsafe_first: bool,
) -> None:
    ctx = ctxtax.load(read_read_patch_read())
    report = ctxtax.audit(ctx)
    reference = next(
        Candidate(f, e) for f in report.findings if f.code == "CTX101" for e in f.edits
    )
    assert reference.finding.source is not None
    source = reference.finding.source.message
    assert source is not None
    stale = next(
        Candidate(f, e)
        for f in report.findings
        if f.code == "CTX301" and f.loc.message == source
        for e in f.edits
    )
    order = [stale, reference] if unsafe_first else [reference, stale]
    applied = apply(ctx, order)
    assert len(applied.edits) == 1  # one or the other, never both
    out = applied.context
    if unsafe_first:
        assert applied.edits[0].code == "CTX301"
        assert "same as" not in out.messages[reference.edit.loc.message or 0].text
    else:
        assert applied.edits[0].code == "CTX101"
        assert out.messages[source].text == FILE
    assert applied.undo() == ctx


def test_an_optimized_payload_keeps_the_source_of_its_references_when_optimized_again() -> None:
    """A reference made by an earlier `optimize` protects its source in the next one: the text
    of the output is all the next call knows."""
    messages = read_read_patch_read()
    marker = "[ctxtax: same as the tool result of call_1 (read_file) above]"
    messages[4] = result("call_0", marker)
    options: dict[str, Any] = {"unsafe": True, "keep_last": 0, "cache_aware": False}
    out = ctxtax.optimize(messages, **options)
    assert 2 not in edited(out) and out.messages[2]["content"] == FILE
    # Without the reference, the same result is superseded.
    messages[4] = result("call_0", "File unchanged since the last read.")
    assert 2 in edited(ctxtax.optimize(messages, **options))


def test_a_part_holding_a_mark_is_only_replaced_whole() -> None:
    text = f"{LOG}\n[ctxtax: the line above repeated 12 more times]\n{LOG}"
    messages = [
        {"role": "user", "content": "Run the tests twice."},
        call("call_1", "run", {"cmd": "pytest"}),
        result("call_1", text),
        {"role": "assistant", "content": "Same failures both times."},
    ]
    ctx = ctxtax.load(messages)
    report = ctxtax.audit(ctx)
    spans = [Candidate(f, e) for f in report.findings for e in f.edits if f.code == "CTX101"]
    assert spans, "the repeat inside the result is found"
    assert apply(ctx, spans).edits == []
    assert ctxtax.optimize(messages, cache_aware=False).edits == []


# -- logs ------------------------------------------------------------------------------------


def test_a_log_is_optimized_as_the_payload_it_is_written_as() -> None:
    """A log whose later calls did not see the earlier messages (a compaction): the written
    payload holds both, so the copy is waste there, and optimizing the output again makes no
    edit."""
    ctx = ctxtax.load(read_twice())
    log = ctx.model_copy(
        update={
            "source_format": "claude_code",
            "model": MODEL,
            "request": False,
            "calls": (Call(start=0, end=2, output=2), Call(start=4, end=6, head=1, output=6)),
        }
    )
    assert isinstance(log, Context)
    assert ctxtax.audit(log).findings == []  # as the log's calls read it
    out = ctxtax.optimize(log, cache_aware=False)
    assert out.format == "anthropic"
    assert codes(out) == ["CTX101"]
    assert ctxtax.optimize(out.payload, cache_aware=False).edits == []
    g.check_all(g.run(log, cache_aware=False))
    g.check_all(g.run(log))


def test_a_file_is_reverted_to_its_json(tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    body = {"model": "gpt-4o", "messages": two_tools(), "temperature": 0}
    path.write_text(json.dumps(body, indent=2), encoding="utf-8")
    out = ctxtax.optimize(path)
    assert edited(out) == [6, 8]
    assert ctxtax.revert(out) == json.loads(path.read_text(encoding="utf-8"))
    g.check_all(g.run(path, json.loads(path.read_text(encoding="utf-8"))))


def test_a_log_file_is_reverted_to_its_unedited_payload() -> None:
    path = real("claude-code-spotter", "short.jsonl")
    out = ctxtax.optimize(path)
    assert out.format == "anthropic" and out.edits
    assert ctxtax.revert(out) == ctxtax.optimize(path, select=[]).payload
    g.check_all(g.run(ctxtax.load(path)))
