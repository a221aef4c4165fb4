"""OpenAI and Anthropic payloads: detection, reading, writing back, hand-counted tokens."""

from __future__ import annotations

import json
from typing import Any

import pytest

import ctxtax
from ctxtax._model import Context
from ctxtax.formats import anthropic, openai_chat
from tests.conftest import real

OPENAI_BODY: dict[str, Any] = {
    "model": "gpt-4o",
    "temperature": 0,
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, cloudy"},
        {"role": "assistant", "content": "18C and cloudy.", "name": "bot"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ],
}

ANTHROPIC_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Call the tool.", "signature": "abc"},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "18C, cloudy"}],
                }
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "18C and cloudy."}]},
    ],
    "tools": [
        {
            "name": "get_weather",
            "description": "Weather for a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ],
}


def _without_raw(ctx: Context) -> Context:
    """The context as if every message had been edited: writers must rebuild it from parts."""
    return ctx.model_copy(
        update={"messages": tuple(m.model_copy(update={"raw": None}) for m in ctx.messages)}
    )


def test_openai_body_reads_into_the_model() -> None:
    ctx = ctxtax.load(OPENAI_BODY)
    assert ctx.source_format == "openai" and ctx.model == "gpt-4o"
    assert [m.role for m in ctx.messages] == ["system", "user", "assistant", "tool", "assistant"]
    call = ctx.messages[2].parts[0]
    assert (call.kind, call.tool_name, call.tool_call_id, call.text) == (
        "tool_call",
        "get_weather",
        "call_1",
        '{"city": "Paris"}',
    )
    result = ctx.messages[3].parts[0]
    assert (result.kind, result.tool_name, result.text) == (
        "tool_result",
        "get_weather",
        "18C, cloudy",
    )
    assert [t.name for t in ctx.tools] == ["get_weather"]


def test_openai_round_trip_untouched_and_rebuilt() -> None:
    ctx = ctxtax.load(OPENAI_BODY)
    assert ctxtax.write(ctx) == OPENAI_BODY
    assert openai_chat.write(_without_raw(ctx)) == OPENAI_BODY
    messages = OPENAI_BODY["messages"]
    assert ctxtax.write(ctxtax.load(messages)) == messages


def test_anthropic_body_reads_into_the_model() -> None:
    ctx = ctxtax.load(ANTHROPIC_BODY)
    assert ctx.source_format == "anthropic"
    assert [m.role for m in ctx.messages] == ["system", "user", "assistant", "user", "assistant"]
    kinds = [p.kind for p in ctx.messages[2].parts]
    assert kinds == ["reasoning", "tool_call"]
    result = ctx.messages[3].parts[0]
    assert (result.kind, result.tool_name, result.tool_call_id, result.text) == (
        "tool_result",
        "get_weather",
        "toolu_1",
        "18C, cloudy",
    )


def test_anthropic_round_trip_untouched_and_rebuilt() -> None:
    ctx = ctxtax.load(ANTHROPIC_BODY)
    assert ctxtax.write(ctx) == ANTHROPIC_BODY
    assert anthropic.write(_without_raw(ctx)) == ANTHROPIC_BODY


def test_audit_takes_anthropic_messages_with_system() -> None:
    body = ANTHROPIC_BODY
    report = ctxtax.audit(
        body["messages"], system=body["system"], tools=body["tools"], model=body["model"]
    )
    assert report.format == "anthropic"
    assert report.tokens_by_role["system"] > 0 and report.tool_count == 1


def test_hand_counted_anthropic_request() -> None:
    # cl100k estimate: "user" 1 + "hello" 1 + 3 framing = 5; reply priming 3 -> 8 (same framing
    # as OpenAI's recipe: Anthropic does not publish its own).
    report = ctxtax.audit(
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hello"}],
        }
    )
    assert report.format == "anthropic"
    assert report.total_tokens == 8
    assert report.accuracy.exact is False


def test_hand_counted_tool_call_and_result() -> None:
    # tool call: name "f" 1 + arguments "{}" 1 + 3 per call; the assistant's framing 3 + "assistant" 1.
    messages = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": "hello"},
    ]
    report = ctxtax.audit(messages, model="gpt-4")
    assert report.messages[0].tokens == 3 + 1 + (1 + 1 + 3)
    assert report.messages[1].tokens == 3 + 1 + 1
    assert report.total_tokens == 9 + 5 + 3


@pytest.mark.parametrize("line_no", range(0, 64, 7))
def test_real_claude_trace_bodies_round_trip(line_no: int) -> None:
    path = real("anthropic-api-claude-trace", "test-traffic.jsonl")
    record = json.loads(path.read_text().splitlines()[line_no])
    body = record["request"]["body"]
    if "messages" not in body:
        pytest.skip("not a messages request")
    ctx = anthropic.read_body(body, source=str(path))
    assert anthropic.write(ctx) == body
    assert anthropic.write(_without_raw(ctx)) == body


def test_real_tau_bench_conversations_round_trip() -> None:
    path = real("tau-bench", "gpt-4o-airline.json")
    data = json.loads(path.read_text())
    contexts = ctxtax.load_all(path)
    assert len(contexts) == 200
    for ctx in contexts:
        original = data[ctx.meta["record"]]["traj"]
        assert openai_chat.write(ctx) == original
        assert openai_chat.write(_without_raw(ctx)) == original
