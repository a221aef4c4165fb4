"""The Auditor's memo (`ctxtax._memo`): reused counts and findings give the full audit's report.

Every rule runs; after each appended message the kept Auditor's report must equal a fresh full
audit's, while the message-scoped rules look only at the new message and the duplication rules
are not run again when nothing new repeats.
"""

from __future__ import annotations

import json
from typing import Any

import ctxtax
from tests.conftest import real

ANSI_LOG = "\n".join(f"\x1b[32mstep {i}\x1b[0m \x1b[2K\r downloading {i * 3}%" for i in range(40))
REPEATS = "\n".join(["WARNING: deprecated call in module foo.bar (see docs)"] * 60)
BLOB = "data:image/png;base64," + "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4" * 60
SPACES = "result:" + ("   \n\n\n\n\n" * 80) + "done   "
FILE = "\n".join(
    f"def handler_{i}(request):\n    return request.params['f{i}'] * {i}" for i in range(30)
)


def tool_turn(cid: str, name: str, args: dict[str, Any], output: str) -> list[dict[str, Any]]:
    call = {
        "id": cid,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
    }
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": cid, "content": output},
    ]


def grow_and_compare(messages: list[dict[str, Any]], start: int = 1) -> ctxtax.Auditor:
    """Audit every prefix of ``messages`` with one kept Auditor; each must equal a full audit."""
    auditor = ctxtax.Auditor(model="gpt-4o")
    for n in range(start, len(messages) + 1):
        history = messages[:n]
        kept = auditor.audit(history)
        full = ctxtax.audit(list(history), model="gpt-4o")
        assert kept.model_dump() == full.model_dump(), f"after {n} messages"
    return auditor


def noisy_session() -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": "Fix the build."},
    ]
    outputs = [ANSI_LOG, REPEATS, BLOB, SPACES, FILE, "ok", FILE, ANSI_LOG + "\nmore", FILE]
    for i, output in enumerate(outputs):
        messages += tool_turn(f"c{i}", "run_shell" if i % 2 else "read_file", {"i": i % 3}, output)
    messages.append({"role": "assistant", "content": "Done."})
    return messages


def test_a_growing_noisy_session_matches_full_audits() -> None:
    auditor = grow_and_compare(noisy_session())
    report = auditor.audit(noisy_session())
    assert {"CTX101", "CTX401", "CTX402", "CTX403", "CTX404"} <= {f.code for f in report.findings}


def test_message_scoped_rules_check_only_new_messages() -> None:
    messages = noisy_session()
    auditor = ctxtax.Auditor(model="gpt-4o")
    auditor.audit(messages[:-3])
    assert auditor.memo.checked == len(messages) - 3  # the first audit checks everything
    auditor.audit(messages)
    assert auditor.memo.checked == 3
    # the same messages again: nothing to check, and the findings are the same
    before = auditor.audit(messages)
    assert auditor.memo.checked == 0
    assert before.model_dump() == ctxtax.audit(list(messages), model="gpt-4o").model_dump()


def test_duplication_rules_are_reused_until_something_new_repeats() -> None:
    messages = noisy_session()
    auditor = ctxtax.Auditor(model="gpt-4o")
    auditor.audit(messages)
    auditor.audit([*messages, {"role": "user", "content": "Something entirely new, at last."}])
    assert {"CTX101", "CTX102", "CTX103", "CTX104"} <= set(auditor.memo.reused)
    auditor.audit([*messages, {"role": "user", "content": FILE}])  # a new copy of the file
    assert "CTX101" not in auditor.memo.reused


def test_a_changed_message_is_checked_again() -> None:
    messages = noisy_session()
    auditor = ctxtax.Auditor(model="gpt-4o")
    auditor.audit(messages)
    changed = [*messages[:3], {**messages[3], "content": "clean output"}, *messages[4:]]
    report = auditor.audit(changed)
    assert auditor.memo.checked == 1
    assert report.model_dump() == ctxtax.audit(list(changed), model="gpt-4o").model_dump()


def test_real_tau_bench_conversation_grows_like_full_audits() -> None:
    path = real("tau-bench", "gpt-4o-airline.json")
    runs = json.loads(path.read_text(encoding="utf-8"))
    longest = max((r["traj"] for r in runs), key=len)
    grow_and_compare(longest, start=2)


def test_real_mini_swe_agent_session_grows_like_full_audits() -> None:
    path = real("mini-swe-agent-gemini3", "psf__requests-1142.traj.json")
    raw = json.loads(path.read_text(encoding="utf-8"))["messages"]
    messages = [{"role": m["role"], "content": str(m["content"])} for m in raw]
    grow_and_compare(messages[:40], start=2)


def listing(tag: str) -> str:
    return "\n".join(f"src/{tag}_module_{i}/handler_{tag}_{i}.py {1000 + i}" for i in range(120))


def test_stale_outputs_found_incrementally_match_full_audits() -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Tidy the repository."}]
    for i, tag in enumerate(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]):
        messages += tool_turn(f"s{i}", "find_files", {"pattern": tag}, listing(tag))
        # the agent acts on every other listing: those are referred to, the rest are stale
        said = f"Opening src/{tag}_module_3 next." if i % 2 else "Nothing useful there."
        messages.append({"role": "assistant", "content": said})
    auditor = grow_and_compare(messages)
    report = auditor.audit(messages)
    stale = [f for f in report.findings if f.code == "CTX302"]
    assert stale and all(messages[f.loc.message]["tool_call_id"] for f in stale)
    # a message rewritten in the middle: the kept word history is rebuilt, still right
    changed = [*messages[:4], {**messages[4], "content": "Opening src/alpha_module_1."}]
    changed += messages[5:]
    kept = auditor.audit(changed).model_dump()
    assert kept == ctxtax.audit(list(changed), model="gpt-4o").model_dump()


def test_superseded_reads_found_incrementally_match_full_audits() -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Fix handler 3."}]
    for i in range(4):
        body = FILE.replace("* 3", f"* {3 + i}")  # the file changes between reads
        messages += tool_turn(f"r{i}", "read_file", {"path": "app.py"}, body)
        messages.append({"role": "assistant", "content": f"Edit {i} made; reading it again."})
    messages += tool_turn("t0", "run_shell", {"command": "pytest -x"}, "FAILED test_app.py\n" * 9)
    messages += tool_turn("t1", "run_shell", {"command": "pytest -x"}, "1 passed")
    messages.append({"role": "assistant", "content": "Fixed."})
    auditor = grow_and_compare(messages)
    report = auditor.audit(messages)
    superseded = [f for f in report.findings if f.code == "CTX301"]
    assert len(superseded) == 3 and all(f.calls > 0 for f in superseded)


def test_a_growing_log_matches_full_audits() -> None:
    """A log (not a request): the newest tool results are carried by no call until the next
    reply, so findings about them appear one audit later, and must not be missed then."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Fix handler 3."}]
    for i in range(4):
        messages += tool_turn(f"r{i}", "read_file", {"path": "app.py"}, FILE + "\n# v" * i)
        messages.append({"role": "assistant", "content": f"Edit {i} made."})
    ctx = ctxtax.load(messages).model_copy(update={"request": False})
    auditor = ctxtax.Auditor(model="gpt-4o")
    for n in range(1, len(ctx.messages) + 1):
        grown = ctx.model_copy(update={"messages": ctx.messages[:n]})
        kept = auditor.audit(grown)
        assert kept.model_dump() == ctxtax.audit(grown, model="gpt-4o").model_dump(), n
    assert {f.code for f in kept.findings} >= {"CTX301"}


def test_kept_model_calls_equal_derived_ones() -> None:
    """The Auditor keeps the calls it derived from assistant messages; they must equal what the
    context derives, as it grows, when a message changes, and for a log or a request."""
    messages = noisy_session()
    for request in (True, False):
        auditor = ctxtax.Auditor(model="gpt-4o")
        ctx = ctxtax.load(messages).model_copy(update={"request": request})
        for n in [*range(1, len(ctx.messages) + 1), 5, len(ctx.messages)]:
            grown = ctx.model_copy(update={"messages": ctx.messages[:n]})
            assert auditor._model_calls(grown) == grown.model_calls(), (request, n)
        changed = list(ctx.messages)
        changed[2] = changed[2].model_copy(update={"role": "assistant"})
        grown = ctx.model_copy(update={"messages": tuple(changed)})
        assert auditor._model_calls(grown) == grown.model_calls()


def test_counts_kept_between_calls_equal_fresh_counts() -> None:
    from ctxtax._counting import CountMemo, count_context

    counter = ctxtax.TiktokenCounter()
    ctx = ctxtax.load(noisy_session())
    memo = CountMemo()
    for n in [*range(1, len(ctx.messages) + 1), 3, len(ctx.messages)]:
        grown = ctx.model_copy(update={"messages": ctx.messages[:n]})
        kept, fresh = count_context(grown, counter, memo=memo), count_context(grown, counter)
        assert kept.message_tokens.tolist() == fresh.message_tokens.tolist(), n
        assert kept.framing_tokens.tolist() == fresh.framing_tokens.tolist(), n
        assert (kept.part_tokens, kept.tool_tokens) == (fresh.part_tokens, fresh.tool_tokens)
        assert (kept.estimates, kept.total) == (fresh.estimates, fresh.total), n


def test_recorded_calls_kept_while_a_message_they_read_changes() -> None:
    """A log's recorded calls are the same objects from one audit to the next; when a message
    they read changes, their share of the bill must be counted again."""
    ctx = ctxtax.load(noisy_session())
    ctx = ctx.model_copy(update={"calls": ctx.model_calls(), "request": False})
    auditor = ctxtax.Auditor(model="gpt-4o")
    auditor.audit(ctx)
    messages = list(ctx.messages)
    messages[3] = messages[3].model_copy(
        update={"parts": (messages[3].parts[0].model_copy(update={"text": "short now"}),)}
    )
    changed = ctx.model_copy(update={"messages": tuple(messages)})
    kept = auditor.audit(changed)
    full = ctxtax.audit(changed, model="gpt-4o")
    assert kept.bill == full.bill and kept.model_dump() == full.model_dump()


def test_the_same_messages_counted_for_another_provider() -> None:
    """The same message objects under another model's framing: every kept count and row is
    for the old provider and must not be reused."""
    image = {"type": "image_url", "image_url": {"url": "https://example.com/chart.png"}}
    picture = {"role": "user", "content": [{"type": "text", "text": "See this."}, image]}
    ctx = ctxtax.load([*noisy_session()[:3], picture, *noisy_session()[3:]])
    auditor = ctxtax.Auditor()
    for model in ("gpt-4o", "claude-sonnet-4-5", "gpt-4o"):
        switched = ctx.model_copy(update={"model": model})
        kept = auditor.audit(switched)
        assert kept.model_dump() == ctxtax.audit(switched).model_dump(), model


def test_a_stale_output_referred_to_later_is_no_longer_reported() -> None:
    """CTX302 keeps the results it reports between audits; one that a later reply refers to
    must drop out, as a full audit would have it."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Tidy the repository."}]
    for i, tag in enumerate(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]):
        messages += tool_turn(f"s{i}", "find_files", {"pattern": tag}, listing(tag))
        messages.append({"role": "assistant", "content": "Nothing useful there."})
    middle = len(messages)
    messages.append({"role": "assistant", "content": "Back to src/alpha_module_7 after all."})
    auditor = grow_and_compare(messages)
    before = ctxtax.audit(messages[:middle], model="gpt-4o")
    after = auditor.audit(messages)
    first_listing = 2  # the tool result of s0

    def stale(report: ctxtax.Report) -> set[int]:
        return {f.loc.message for f in report.findings if f.code == "CTX302"}

    assert first_listing in stale(before) and first_listing not in stale(after)


def thinking(text: str, reply: str | None, *calls: dict[str, Any]) -> dict[str, Any]:
    """An assistant message with readable reasoning (OpenAI chat ``reasoning_content``)."""
    message: dict[str, Any] = {"role": "assistant", "reasoning_content": text, "content": reply}
    if calls:
        message["tool_calls"] = list(calls)
    return message


def reasoning_session() -> list[dict[str, Any]]:
    """Five user turns; each reasons before it answers, some inside a tool loop."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a coding agent."}]
    for turn in range(5):
        messages.append({"role": "user", "content": f"Step {turn}: fix handler {turn}."})
        why = f"Turn {turn}: handler {turn} multiplies twice; check the callers first. " * 12
        if turn % 2:
            [call, result] = tool_turn(f"r{turn}", "read_file", {"path": f"h{turn}.py"}, FILE)
            messages.append(thinking(why, None, *call["tool_calls"]))
            messages.append(result)
            messages.append(thinking(f"The file confirms it (turn {turn}). " * 8, "Fixed."))
        else:
            messages.append(thinking(why, f"Handler {turn} fixed."))
    return messages


def test_a_growing_session_with_reasoning_matches_full_audits() -> None:
    messages = reasoning_session()
    auditor = grow_and_compare(messages)
    report = auditor.audit(messages)
    old = [f for f in report.findings if f.code == "CTX304"]
    last_turn = max(i for i, m in enumerate(messages) if m["role"] == "user")
    reasoned = {i for i, m in enumerate(messages[:last_turn]) if m.get("reasoning_content")}
    assert old and {f.loc.message for f in old} == reasoned  # every earlier turn's reasoning
    # the session rewritten under the kept turns: a user message in the middle removed,
    # then the history cut back and grown again
    assert messages[7]["role"] == "user" and messages[8].get("reasoning_content")
    changed = messages[:7] + messages[8:]  # turn 2's reasoning now ends turn 1
    kept = auditor.audit(changed)
    assert kept.model_dump() == ctxtax.audit(list(changed), model="gpt-4o").model_dump()
    for n in (4, 9, len(changed)):
        kept = auditor.audit(changed[:n])
        full = ctxtax.audit(list(changed[:n]), model="gpt-4o")
        assert kept.model_dump() == full.model_dump(), n
    # as many messages, one in the middle changed: a user turn becomes reasoning
    swapped = [*messages[:7], thinking("On second thought. " * 30, "Wait."), *messages[8:]]
    kept = auditor.audit(swapped)
    assert kept.model_dump() == ctxtax.audit(list(swapped), model="gpt-4o").model_dump()
    assert 7 in {f.loc.message for f in kept.findings if f.code == "CTX304"}


def test_reasoning_kept_for_more_turns_matches_full_audits() -> None:
    messages = reasoning_session()
    options = {"CTX304": {"keep_last_turns": 2}}
    auditor = ctxtax.Auditor(model="gpt-4o", rule_options=options)
    for n in range(1, len(messages) + 1):
        kept = auditor.audit(messages[:n])
        full = ctxtax.audit(list(messages[:n]), model="gpt-4o", rule_options=options)
        assert kept.model_dump() == full.model_dump(), n
    assert any(f.code == "CTX304" for f in kept.findings)
