"""The Codex CLI rollout reader: items, turns, usage, compaction, bad lines, the real sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxtax._model import Context, Usage
from ctxtax.errors import InputError, ParseError
from ctxtax.formats import anthropic, codex, load_all, openai_chat
from ctxtax.formats._document import parse_text, read_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "codex"
REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "codex-cli"
SAMPLE = REAL / "sample_codex_session.jsonl"


def _load(name: str) -> Context:
    (ctx,) = load_all(FIXTURES / name, format="codex")
    return ctx


def _jsonl(*records: object) -> str:
    return "\n".join(json.dumps(r) for r in records) + "\n"


def _read_text(text: str) -> list[Context]:
    doc = parse_text(text, source="mem.jsonl", path=Path("mem.jsonl"))
    return codex.read(doc)


# -- detection ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tool_calls.jsonl", "compacted.jsonl", "legacy.jsonl"])
def test_detects_fixtures_and_not_other_formats(name: str) -> None:
    doc = read_path(FIXTURES / name)
    assert codex.detect(doc)
    assert not openai_chat.detect(doc)
    assert not anthropic.detect(doc)


def test_does_not_claim_other_shapes() -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert not codex.detect(parse_text(json.dumps(messages)))
    claude_code = _jsonl({"type": "user", "message": {"role": "user", "content": "hi"}})
    assert not codex.detect(parse_text(claude_code, path=Path("x.jsonl")))
    assert not codex.detect(parse_text("# aider chat started at 2024-01-01", path=Path("h.md")))


# -- items and turns ------------------------------------------------------------------------------


def test_tool_call_session_messages() -> None:
    ctx = _load("tool_calls.jsonl")
    assert ctx.source_format == "codex"
    assert ctx.title == "019a4a1c-3e7b-7c41-9d2e-5b0f8e6a1d23"
    assert ctx.model == "gpt-5-codex"
    assert ctx.meta["cwd"] == "/home/dev/todo-app"
    roles = [m.role for m in ctx.messages]
    assert roles == ["system", "user", "user", "user", "assistant", "tool", "assistant", "tool",
                     "assistant", "tool", "assistant"]  # fmt: skip
    system = ctx.messages[0]
    assert system.meta["codex"] == "instructions"
    assert system.text.startswith("You are Codex")
    # base_instructions win: the legacy user instructions stay in the recorded user message
    assert "Run `pytest -q`" in ctx.meta["user_instructions"]


def test_reasoning_and_calls_of_one_turn_form_one_message() -> None:
    ctx = _load("tool_calls.jsonl")
    first = ctx.messages[4]
    assert [p.kind for p in first.parts] == ["reasoning", "tool_call"]
    reasoning, call = first.parts
    assert reasoning.encrypted and reasoning.text == ""
    assert call.tool_name == "shell" and call.tool_call_id == "call_Qm3cT8Vh2a"
    assert json.loads(call.text)["command"][-1] == "pytest -q tests/test_due.py"
    assert first.meta["items"] == ["reasoning", "function_call"]
    assert first.meta["lines"] == [8, 9]
    second = ctx.messages[6]
    assert not second.parts[0].encrypted
    assert second.parts[0].text.startswith("**Fixing the date comparison**")
    patch = second.parts[1]
    assert patch.kind == "tool_call" and patch.tool_name == "apply_patch"
    assert patch.text.startswith("*** Begin Patch")


def test_outputs_are_tool_messages_named_after_their_call() -> None:
    ctx = _load("tool_calls.jsonl")
    tool_messages = [m for m in ctx.messages if m.role == "tool"]
    names = [m.parts[0].tool_name for m in tool_messages]
    assert names == ["shell", "apply_patch", "shell"]
    assert all(m.parts[0].kind == "tool_result" for m in tool_messages)
    assert "AssertionError" in tool_messages[0].text
    assert tool_messages[1].meta["codex"] == "custom_tool_call_output"
    assert tool_messages[1].meta["line"] == 18


def test_ghost_snapshots_and_ui_events_are_skipped() -> None:
    ctx = _load("tool_calls.jsonl")
    assert all("ghost" not in str(m.meta.get("codex")) for m in ctx.messages)
    assert sum(m.role == "assistant" for m in ctx.messages) == 4


# -- calls and usage ------------------------------------------------------------------------------


def test_one_call_per_turn_with_deduped_usage() -> None:
    ctx = _load("tool_calls.jsonl")
    assert [(c.start, c.end, c.output) for c in ctx.calls] == [
        (0, 4, 4),
        (0, 6, 6),
        (0, 8, 8),
        (0, 10, 10),
    ]
    assert all(c.model == "gpt-5-codex" for c in ctx.calls)
    # input_tokens in OpenAI usage include the cached ones
    assert ctx.calls[0].usage == Usage(input_tokens=1024, cache_read_tokens=4096, output_tokens=64)
    assert ctx.calls[3].usage == Usage(input_tokens=178, cache_read_tokens=5632, output_tokens=25)
    # the repeated token_count events were not counted twice: totals match total_token_usage
    total = ctx.recorded_usage
    assert total is not None
    recorded = ctx.meta["total_token_usage"]
    assert total.prompt_tokens == recorded["input_tokens"] == 22022
    assert total.cache_read_tokens == recorded["cached_input_tokens"]
    assert total.output_tokens == recorded["output_tokens"] == 339


def test_usage_without_a_new_output_is_a_call_without_output() -> None:
    records = [
        {"type": "session_meta", "payload": {"id": "s"}},
        {"type": "response_item", "payload": {"type": "message", "role": "user",
                                              "content": [{"type": "input_text", "text": "hi"}]}},
        {"type": "event_msg", "payload": {"type": "token_count", "info": {
            "last_token_usage": {"input_tokens": 10, "cached_input_tokens": 0, "output_tokens": 2}
        }}},
    ]  # fmt: skip
    (ctx,) = _read_text(_jsonl(*records))
    (call,) = ctx.calls
    assert call.output is None and (call.start, call.end) == (0, 1)
    assert call.usage == Usage(input_tokens=10, output_tokens=2)


# -- compaction, other items ----------------------------------------------------------------------


def test_compaction_moves_the_window() -> None:
    ctx = _load("compacted.jsonl")
    assert ctx.title == "01996a2f-8c11-7e30-a4f2-31d6c9be0f7a"
    assert ctx.messages[4].meta["codex"] == "compacted"
    assert ctx.messages[4].role == "user"
    assert ctx.messages[4].text.startswith("The user asked for the nginx version")
    assert ctx.messages[7].meta["codex_compacted"] is True
    assert ctx.messages[8].parts[0].encrypted  # the encrypted compaction item
    assert [(c.start, c.end, c.output, c.model) for c in ctx.calls] == [
        (0, 1, 1, "gpt-5"),
        (0, 3, 3, "gpt-5"),
        (4, 6, 6, "gpt-5"),
        (7, 10, 10, "gpt-5-mini"),
    ]
    assert ctx.calls[3].usage == Usage(input_tokens=144, cache_read_tokens=256, output_tokens=30)


def test_local_shell_web_search_images_and_failed_outputs() -> None:
    ctx = _load("compacted.jsonl")
    user = ctx.messages[0]
    assert [p.kind for p in user.parts] == ["text", "image"]
    assert user.parts[1].image is not None and user.parts[1].image.width == 1
    shell = ctx.messages[1].parts[0]
    assert shell.kind == "tool_call" and shell.tool_name == "local_shell"
    assert shell.tool_call_id == "call_ls_01"
    result = ctx.messages[2].parts[0]
    assert result.is_error and result.tool_name == "local_shell"
    assert result.text == "bash: nginx: command not found"
    search, answer = ctx.messages[3].parts
    assert search.kind == "other" and search.tool_name == "web_search"
    assert answer.kind == "text"


def test_legacy_layout_and_legacy_instructions() -> None:
    ctx = _load("legacy.jsonl")
    assert ctx.title == "5973b6c0-94b8-487b-a530-2aeb6098ae0e"
    assert [m.role for m in ctx.messages] == ["system", "user", "assistant"]
    # not in the history: older CLIs sent them inside the request instructions
    assert ctx.messages[0].text == "Always answer in French."
    assert ctx.messages[2].id == "msg_1"
    assert ctx.calls[0].output == 2


# -- bad input ------------------------------------------------------------------------------------


def test_malformed_line_names_the_line() -> None:
    text = (FIXTURES / "tool_calls.jsonl").read_text().splitlines()
    text[4] = text[4][:-3]
    with pytest.raises(ParseError) as info:
        parse_text("\n".join(text), source="broken.jsonl", path=Path("broken.jsonl"))
    assert info.value.line == 5


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"type": "message", "role": "robot", "content": []}, "role 'robot'"),
        ({"type": "message", "role": "user", "content": 7}, "content must be"),
        ({"type": "function_call", "arguments": "{}", "call_id": "c"}, "no 'name'"),
        ({"type": "function_call_output", "output": "x"}, "no 'call_id'"),
        ({"type": "function_call_output", "call_id": "c", "output": 3}, "expected a string"),
    ],
)
def test_bad_items_name_their_line(payload: dict[str, object], expected: str) -> None:
    text = _jsonl({"type": "session_meta", "payload": {"id": "s"}},
                  {"type": "response_item", "payload": payload})  # fmt: skip
    with pytest.raises(InputError) as info:
        _read_text(text)
    assert info.value.line == 2
    assert expected in str(info.value)
    assert "mem.jsonl:2" in str(info.value)


def test_non_object_lines_and_payloads_are_errors() -> None:
    with pytest.raises(InputError) as info:
        _read_text(_jsonl({"type": "session_meta", "payload": {"id": "s"}}, [1, 2]))
    assert info.value.line == 2
    with pytest.raises(InputError) as info:
        _read_text(_jsonl({"type": "session_meta", "payload": {"id": "s"}},
                          {"type": "response_item", "payload": "text"}))  # fmt: skip
    assert info.value.line == 2


def test_unknown_records_are_skipped() -> None:
    text = _jsonl(
        {"type": "session_meta", "payload": {"id": "s"}},
        {"type": "future_record", "payload": {"x": 1}},
        {"type": "response_item", "payload": {"type": "future_item", "x": 1}},
        {"type": "event_msg", "payload": {"type": "future_event"}},
        {"type": "event_msg", "payload": {"type": "token_count", "info": None}},
    )
    (ctx,) = _read_text(text)
    assert ctx.messages == () and ctx.calls == ()


# -- the real sample ------------------------------------------------------------------------------


def _real() -> Path:
    if not SAMPLE.exists():
        pytest.skip(f"real Codex sample not found at {SAMPLE} (../shared/data/real/codex-cli)")
    return SAMPLE


def test_real_sample() -> None:
    path = _real()
    doc = read_path(path)
    assert codex.detect(doc)
    assert not openai_chat.detect(doc) and not anthropic.detect(doc)
    (ctx,) = load_all(path, format="codex")
    assert ctx.title == "019b64e5-57fa-7463-b644-fba7e456f905"
    assert ctx.model == "gpt-5.2-codex"
    assert ctx.meta["cli_version"] == "0.77.0"
    # 3 user messages; the session_meta instructions (2,831 chars) are the AGENTS.md text the
    # first message already carries, so they are not read a second time as a system message
    assert [m.role for m in ctx.messages] == ["user", "user", "user"]
    assert len(ctx.meta["user_instructions"]) == 2831
    assert ctx.meta["user_instructions"] in ctx.messages[0].text
    assert ctx.messages[0].text.startswith("# AGENTS.md instructions for")
    assert ctx.messages[2].text.startswith("can you analyse the MD files")
    # no model output and no token_count in the trimmed sample
    assert ctx.calls == () and ctx.recorded_usage is None
    assert ctx.model_calls() == ()  # the log shows no call was made: nothing is invented


def test_title_falls_back_to_the_file_stem() -> None:
    text = _jsonl({"type": "turn_context", "payload": {"model": "gpt-5"}})
    (ctx,) = _read_text(text)
    assert ctx.title == "mem" and ctx.model == "gpt-5"
