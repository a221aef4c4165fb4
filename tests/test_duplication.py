"""CTX101-CTX104 on small sessions built here, both kernel implementations, and the Auditor."""

from __future__ import annotations

import json
from typing import Any

import pytest

import ctxtax
from ctxtax._findings import Finding, Loc
from ctxtax._model import Call, Context

FILE = "\n".join(
    f"def handler_{i}(request, response):\n    value = request.params.get('field_{i}', {i})\n"
    f"    return response.json({{'status': 'ok', 'value': value * {i}}})\n"
    for i in range(12)
)
LOG = "\n".join(
    f"2024-05-01 12:{i:02d}:{(i * 7) % 60:02d},{i * 13:03d} INFO worker-{i % 3} processed batch {i} "
    f"in {i * 11 % 97}ms (queue depth {i * 5 % 17})"
    for i in range(30)
)
REMINDER = (
    "<system-reminder>Remember: never edit files outside the workspace, always run the test suite "
    "after a change, and report every command you ran together with its exit status in your "
    "final answer to the user.</system-reminder>"
)


def call(cid: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": cid,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }


def tool_turn(cid: str, name: str, args: dict[str, Any], output: str) -> list[dict[str, Any]]:
    return [
        {"role": "assistant", "content": None, "tool_calls": [call(cid, name, args)]},
        {"role": "tool", "tool_call_id": cid, "content": output},
    ]


def audit(messages: Any, **options: Any) -> ctxtax.Report:
    """`ctxtax.audit` with only the duplication rules (the others have their own tests)."""
    options.setdefault("select", ["CTX1"])
    return ctxtax.audit(messages, **options)


def codes(report: ctxtax.Report) -> list[str]:
    return [f.code for f in report.findings]


@pytest.fixture(params=["python", "numba"])
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CTXTAX_IMPL", request.param)
    return str(request.param)


def test_file_read_twice_is_an_exact_copy(impl: str) -> None:
    messages = [
        {"role": "user", "content": "Fix the handlers."},
        *tool_turn("call_1", "read_file", {"path": "app.py"}, FILE),
        *tool_turn("call_2", "read_file", {"path": "app.py"}, FILE),
        {"role": "assistant", "content": "Done."},
    ]
    report = audit(messages, model="gpt-4")
    [finding] = [f for f in report.findings if f.code == "CTX101"]
    assert finding.loc.message == 4 and finding.loc.part == 0
    assert finding.source is not None and finding.source.message == 2
    assert finding.similarity == 1.0
    assert finding.loc.start == 0 and finding.loc.end == len(FILE)
    tokens = report.messages[4].parts[0].tokens
    assert finding.tokens == tokens
    assert "call_1 (read_file)" in finding.message
    assert finding.calls == report.messages[4].calls == 1
    [edit] = finding.edits
    assert edit.safety == "safe" and edit.replacement is not None and "call_1" in edit.replacement
    assert report.wasted_tokens == tokens
    assert report.tax_rate == pytest.approx(tokens / report.total_tokens, rel=1e-4)
    assert report.waste_by_rule == {"CTX101": tokens}


def test_tool_output_pasted_into_a_user_message_is_a_span(impl: str) -> None:
    pasted = "Here is what I get:\n\n" + LOG + "\n\nWhy is the queue growing?"
    messages = [
        {"role": "user", "content": "Look at the worker log."},
        *tool_turn("call_1", "run_shell", {"command": "tail worker.log"}, LOG),
        {"role": "assistant", "content": "The workers look healthy."},
        {"role": "user", "content": pasted},
    ]
    report = audit(messages, model="gpt-4")
    [finding] = [f for f in report.findings if f.code == "CTX101"]
    assert finding.loc.message == 4
    assert finding.evidence["whole_part"] is False
    start, end = finding.loc.start, finding.loc.end
    assert start is not None and end is not None
    covered = pasted[start:end]
    # token boundaries may take the newline before the log, never text outside it
    assert covered.strip() in LOG and len(covered.strip()) > 0.95 * len(LOG)
    assert "Why is the queue" not in covered


def test_near_copy_after_a_small_edit(impl: str) -> None:
    edited = FILE.replace("'field_3'", "'renamed_3'").replace("value * 7", "value + 7")
    messages = [
        {"role": "user", "content": "Rename field 3."},
        *tool_turn("call_1", "read_file", {"path": "app.py"}, FILE),
        *tool_turn("call_2", "edit_file", {"path": "app.py"}, "ok"),
        *tool_turn("call_3", "read_file", {"path": "app.py"}, edited),
    ]
    report = audit(messages, model="gpt-4")
    near = [f for f in report.findings if f.code == "CTX102"]
    assert len(near) == 1
    finding = near[0]
    assert finding.loc.message == 6 and finding.source is not None and finding.source.message == 2
    assert 0.9 < (finding.similarity or 0) < 1.0
    assert finding.evidence["differing_lines"] == 2
    assert (
        0.85 * report.messages[6].parts[0].tokens
        < finding.tokens
        < report.messages[6].parts[0].tokens
    )


def test_the_same_log_with_other_timestamps_is_a_near_copy(impl: str) -> None:
    later = "\n".join(
        line.replace("12:", "13:").replace("2024-05-01", "2024-05-02") for line in LOG.splitlines()
    )
    messages = [
        {"role": "user", "content": "Check the log twice."},
        *tool_turn("call_1", "run_shell", {"command": "tail worker.log"}, LOG),
        *tool_turn("call_2", "run_shell", {"command": "tail worker.log"}, later),
    ]
    report = audit(messages, model="gpt-4")
    [finding] = [f for f in report.findings if f.code == "CTX102"]
    assert finding.similarity == 1.0  # numbers folded: only timestamps differ
    assert finding.loc.message == 4


def test_repeated_injection(impl: str) -> None:
    messages: list[dict[str, Any]] = []
    for i in range(4):
        messages.append(
            {"role": "user", "content": f"Step {i}: please continue with task {i}.\n\n{REMINDER}"}
        )
        messages.append({"role": "assistant", "content": f"Working on step {i}."})
    report = audit(messages, model="gpt-4")
    injected = [f for f in report.findings if f.code == "CTX103"]
    assert [f.loc.message for f in injected] == [2, 4, 6]
    assert all(f.evidence["copies"] == 4 for f in injected)
    assert all(f.source is not None and f.source.message == 0 for f in injected)
    assert "CTX101" not in codes(report)


def test_duplicated_transcript(impl: str) -> None:
    turns = [
        {
            "role": "user",
            "content": "What does the scheduler do when a worker dies in the middle of a batch? "
            * 2,
        },
        {
            "role": "assistant",
            "content": "It requeues the batch after the heartbeat timeout and marks the worker as lost, then it rebalances the partitions across the live workers. "
            * 2,
        },
        {
            "role": "user",
            "content": "And how long is the heartbeat timeout by default, and where is it configured? "
            * 2,
        },
        {
            "role": "assistant",
            "content": "Thirty seconds, set by scheduler.heartbeat_timeout in config/scheduler.yaml; the workers send a heartbeat every ten seconds. "
            * 2,
        },
    ]
    summary = "Summary of the conversation so far:\n\n" + "\n\n".join(
        str(t["content"]) for t in turns
    )
    report = audit([*turns, {"role": "user", "content": summary}], model="gpt-4")
    transcript = [f for f in report.findings if f.code == "CTX104"]
    assert len(transcript) == 4
    assert [f.source.message for f in transcript if f.source] == [0, 1, 2, 3]
    assert all(f.loc.message == 4 for f in transcript)


def test_short_repeats_are_not_reported(impl: str) -> None:
    short = "the build failed with exit status two"
    messages = [
        {"role": "user", "content": short},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": short},
    ]
    assert audit(messages, model="gpt-4").findings == []


def test_min_tokens_option() -> None:
    messages = [
        {"role": "user", "content": "Fix the handlers."},
        *tool_turn("call_1", "read_file", {"path": "app.py"}, FILE),
        *tool_turn("call_2", "read_file", {"path": "app.py"}, FILE),
    ]
    tokens = audit(messages, model="gpt-4").messages[4].parts[0].tokens
    big = audit(messages, model="gpt-4", rule_options={"CTX101": {"min_tokens": tokens + 1}})
    assert "CTX101" not in codes(big)
    with pytest.raises(ctxtax.ConfigError, match="CTX101"):
        audit(messages, rule_options={"CTX101": {"min_tokns": 3}})


def test_select_and_ignore() -> None:
    messages = [
        {"role": "user", "content": FILE},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": FILE},
    ]
    assert codes(audit(messages, select=["CTX1"])) == ["CTX101"]
    assert codes(audit(messages, ignore=["CTX101"])) == []
    with pytest.raises(ctxtax.ConfigError, match="unknown rule code 'CTX999'"):
        audit(messages, select=["CTX999"])


def test_a_copy_of_text_compacted_away_is_not_a_duplicate() -> None:
    ctx = ctxtax.load(
        [
            {"role": "user", "content": FILE},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "summary"},
            {"role": "user", "content": FILE},
            {"role": "assistant", "content": "ok"},
        ]
    )
    visible = ctx.model_copy(
        update={"calls": (Call(start=0, end=1, output=1), Call(start=2, end=4, output=4))}
    )
    assert [f.code for f in audit(ctx).findings] == ["CTX101"]
    assert audit(visible).findings == []


def test_waste_is_counted_once_across_rules() -> None:
    from ctxtax._counting import count_context
    from ctxtax._tokens import TiktokenCounter
    from ctxtax._waste import measure

    ctx = ctxtax.load([{"role": "user", "content": FILE}, {"role": "assistant", "content": "ok"}])
    tokens = count_context(ctx, TiktokenCounter())
    a = Finding(
        code="CTX101",
        rule="a",
        message="",
        loc=Loc(message=0, part=0, token_start=0, token_end=50),
        tokens=50,
    )
    b = Finding(
        code="CTX301",
        rule="b",
        message="",
        loc=Loc(message=0, part=0, token_start=30, token_end=80),
        tokens=50,
    )
    import numpy as np

    waste = measure([a, b], tokens, np.array([1, 0]), calls_with_tools=1, policy="none", price=None)
    assert waste.tokens == 80
    assert waste.by_rule == {"CTX101": 50, "CTX301": 50}
    assert waste.billed_tokens == 80


def test_waste_cost_follows_the_calls_that_carry_it() -> None:
    messages = [
        {"role": "user", "content": "Fix the handlers."},
        *tool_turn("call_1", "read_file", {"path": "app.py"}, FILE),
        *tool_turn("call_2", "read_file", {"path": "app.py"}, FILE),
        {"role": "assistant", "content": "Looking."},
        {"role": "user", "content": "And?"},
        {"role": "assistant", "content": "Done."},
    ]
    report = audit(messages, model="claude-sonnet-4-5")
    [finding] = report.findings
    assert finding.calls == 2  # the copy is in the prompt of the last two calls
    assert report.waste_billed_tokens == finding.tokens * 2
    # Anthropic: written to the cache once (3.75 $/M), then read (0.30 $/M)
    assert report.waste_cost_usd == pytest.approx(finding.tokens * (3.75 + 0.30) / 1e6, rel=1e-6)


def test_both_implementations_find_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    messages = [
        {"role": "user", "content": "Look at the log.\n\n" + REMINDER},
        *tool_turn("call_1", "run_shell", {"command": "tail worker.log"}, LOG),
        *tool_turn("call_2", "read_file", {"path": "app.py"}, FILE),
        {"role": "user", "content": "Again:\n" + LOG + "\n" + REMINDER},
        *tool_turn("call_3", "read_file", {"path": "app.py"}, FILE.replace("field_5", "f5")),
        {"role": "user", "content": REMINDER},
    ]
    found = {}
    for impl in ("python", "numba"):
        monkeypatch.setenv("CTXTAX_IMPL", impl)
        found[impl] = [f.model_dump() for f in audit(messages, model="gpt-4").findings]
    assert found["python"] == found["numba"]
    assert {f["code"] for f in found["python"]} == {"CTX101", "CTX102", "CTX103"}


def test_auditor_on_a_growing_session_matches_a_full_audit() -> None:
    history: list[dict[str, Any]] = [{"role": "system", "content": "You are a coding agent."}]
    auditor = ctxtax.Auditor(model="gpt-4", select=["CTX1"])
    steps = [
        tool_turn("c1", "read_file", {"path": "app.py"}, FILE),
        tool_turn("c2", "run_shell", {"command": "tail log"}, LOG),
        tool_turn("c3", "read_file", {"path": "app.py"}, FILE),
        [{"role": "user", "content": "pasted:\n" + LOG + "\n" + REMINDER}],
        tool_turn("c4", "read_file", {"path": "app.py"}, FILE.replace("field_1'", "x'")),
    ]
    for step in steps:
        history.extend(step)
        incremental = auditor.audit(history)
        full = audit(list(history), model="gpt-4")
        assert incremental.model_dump() == full.model_dump()
    assert auditor.rebuilds == 1 and auditor.audits == len(steps)
    # an edit in the middle rebuilds the index, and the result is still right
    history[2] = {**history[2], "content": "changed"}
    assert auditor.audit(history).model_dump() == audit(list(history), model="gpt-4").model_dump()
    assert auditor.rebuilds == 2


def test_findings_are_in_the_json_report(tmp_path: Any) -> None:
    messages = [
        {"role": "user", "content": FILE},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": FILE},
    ]
    data = audit(messages, model="gpt-4").to_dict()
    [finding] = data["findings"]
    assert finding["code"] == "CTX101" and finding["source"]["message"] == 0
    assert finding["edits"][0]["safety"] == "safe"
    assert (
        data["wasted_tokens"] == finding["tokens"]
        and data["waste_billed_tokens"] == finding["tokens"]
    )


def test_every_rule_has_its_documentation() -> None:
    from ctxtax.rules import SECTIONS, all_rules

    rules = all_rules()
    assert {"CTX101", "CTX102", "CTX103", "CTX104"} <= set(rules)
    for code, rule in rules.items():
        doc = rule.documentation()
        assert list(doc) == list(SECTIONS), code
        assert all(doc[s] for s in SECTIONS), code


def test_context_object_in_report_keeps_working() -> None:
    ctx = Context(messages=ctxtax.load([{"role": "user", "content": "hi"}]).messages)
    assert audit(ctx).findings == []


def test_token_boundaries_within_a_span_agree_with_decoding() -> None:
    # `boundaries_within` bisects the block's character offsets; without a vocabulary table it
    # decodes prefixes instead (counters other than tiktoken's). Both must agree, on text with
    # multi-byte characters, at every character position of a span.
    from ctxtax._dupes import DuplicateIndex

    text = "\n".join(f"zeile {i}: größe {i * 7} — naïve café ✓ {'€' * (i % 3)}" for i in range(12))
    index = DuplicateIndex.empty(ctxtax.TiktokenCounter(), {})
    index.extend(ctxtax.load([{"role": "user", "content": text}]))
    tokens = index.blocks[0].tokens
    first, last = 5, tokens - 4
    lo, hi = index.char_range(0, first, last)
    with_offsets = [
        index.boundaries_within(0, first, last, a, b)
        for a in range(lo, hi + 1, 3)
        for b in range(max(a, lo + 10), hi + 1, 7)
    ]
    index._offsets.clear()
    index._char_offsets = lambda block: None  # type: ignore[method-assign]
    decoded = [
        index.boundaries_within(0, first, last, a, b)
        for a in range(lo, hi + 1, 3)
        for b in range(max(a, lo + 10), hi + 1, 7)
    ]
    assert with_offsets == decoded
    # (a range inside one token has no boundary in it: then the start comes after the end)
    assert with_offsets[0][0] == first
    assert all(first <= s <= last and first <= e <= last for s, e in with_offsets)


class _BatchLog(ctxtax.TiktokenCounter):
    """A tiktoken counter that logs each batch of texts it had to encode."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def _encode_missing(self, texts: list[str]) -> list[Any]:
        self.batches.append(list(texts))
        return super()._encode_missing(texts)


def test_edit_texts_are_counted_in_one_batch() -> None:
    """A first audit counts the line ranges and references of its edits in one batch per session
    (`plan_edits`), not two counter calls per span; the edits are the ones counted alone."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Look at the worker logs."}]
    for i in range(8):
        log = LOG.replace("INFO", f"INFO shard-{i}")  # a log of its own: its own line range
        messages += [
            *tool_turn(f"call_{i}", "run_shell", {"command": f"tail worker-{i}.log"}, log),
            {"role": "user", "content": f"Attempt {i}: the log again.\n{log}\nStill growing."},
        ]
    counter = _BatchLog()
    counter.encode_many([m["content"] for m in messages if m.get("content")])
    counter.batches.clear()
    report = audit(messages, model="gpt-4", counter=counter)
    edits = [e for f in report.findings for e in f.edits]
    partial = [e for e in edits if e.loc.start != 0]
    assert len(partial) >= 8  # each paste's copy of its log is cut at its lines
    assert len({e.replacement for e in partial}) >= 8
    assert len(counter.batches) <= 2, [len(b) for b in counter.batches]
    for edit in partial:
        text = report_text(messages, edit.loc)
        assert edit.tokens_saved == ctxtax.TiktokenCounter().count(
            text
        ) - ctxtax.TiktokenCounter().count(edit.replacement or "")


def report_text(messages: list[dict[str, Any]], loc: Loc) -> str:
    """The text a location covers in these OpenAI messages (text content only)."""
    assert loc.message is not None and loc.start is not None and loc.end is not None
    content = messages[loc.message]["content"]
    assert isinstance(content, str)
    return content[loc.start : loc.end]
