"""The claude-trace reader: SSE replay, usage, threads of re-sent history, real traffic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctxtax import formats
from ctxtax._model import Context, Usage
from ctxtax.errors import MessageError, ParseError
from ctxtax.formats import anthropic, claude_code, claude_trace, load_all, openai_chat
from ctxtax.formats._document import read_path

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"
TRAFFIC = ("anthropic-api-claude-trace", "test-traffic.jsonl")
SONNET = "claude-sonnet-4-20250514"
HAIKU = "claude-3-5-haiku-20241022"
URL = "https://api.anthropic.com/v1/messages?beta=true"


def real(*parts: str) -> Path:
    path = REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data/real is absent)")
    return path


def sse(*events: dict[str, Any]) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def pair(body: Any, response: dict[str, Any], url: str = URL) -> dict[str, Any]:
    return {
        "request": {"timestamp": 1.0, "method": "POST", "url": url, "headers": {}, "body": body},
        "response": {"timestamp": 2.0, "status_code": 200, "headers": {}, **response},
        "logged_at": "2025-05-29T23:38:25",
    }


TOOLS = [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}]
SYSTEM = [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}]
U1 = {"role": "user", "content": [{"type": "text", "text": "list files"}]}
A1 = {
    "role": "assistant",
    "content": [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls -la"}},
    ],
}
U2 = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a.py"}]}

STREAMED = sse(
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": SONNET,
            "content": [],
            "usage": {
                "input_tokens": 4,
                "cache_creation_input_tokens": 900,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            },
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " look."}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"command": "ls'},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": ' -la"}'},
    },
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use"},
        "usage": {"output_tokens": 31},
    },
    {"type": "message_stop"},
)

FINAL = {
    "id": "msg_2",
    "type": "message",
    "role": "assistant",
    "model": SONNET,
    "content": [{"type": "text", "text": "One file: a.py"}],
    "usage": {
        "input_tokens": 6,
        "cache_creation_input_tokens": 40,
        "cache_read_input_tokens": 900,
        "output_tokens": 8,
    },
}


def haiku(text: str, answer: str) -> dict[str, Any]:
    body = {"model": HAIKU, "max_tokens": 1, "messages": [{"role": "user", "content": text}]}
    reply = {
        "id": "msg_h",
        "type": "message",
        "role": "assistant",
        "model": HAIKU,
        "content": [{"type": "text", "text": answer}],
        "usage": {"input_tokens": 8, "output_tokens": 1},
    }
    return pair(body, {"body": reply})


def sonnet(messages: list[Any], response: dict[str, Any]) -> dict[str, Any]:
    body = {
        "model": SONNET,
        "system": SYSTEM,
        "tools": TOOLS,
        "messages": messages,
        "stream": True,
    }
    return pair(body, response)


def last_with_cache_control(msg: dict[str, Any]) -> dict[str, Any]:
    content = [dict(b) for b in msg["content"]]
    content[-1]["cache_control"] = {"type": "ephemeral"}
    return {**msg, "content": content}


RECORDS = [
    haiku("quota", "A"),
    sonnet([last_with_cache_control(U1)], {"body": None, "body_raw": STREAMED}),
    pair(None, {"body": {"ok": True}}, url="https://api.anthropic.com/api/hello"),
    haiku("quota", "A"),
    sonnet([U1, last_with_cache_control(A1), U2], {"body": FINAL}),
]


def load(tmp_path: Path, records: list[Any], name: str = "trace.jsonl") -> list[Context]:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return load_all(path, format="claude_trace")


def test_threads_calls_and_usage(tmp_path: Path) -> None:
    ctxs = load(tmp_path, RECORDS)
    assert [c.title for c in ctxs] == [f"{HAIKU} thread 1", f"{SONNET} thread 2"]
    quota, agent = ctxs
    # the same request sent twice is one thread with two calls; only the last reply is kept
    assert [m.role for m in quota.messages] == ["user", "assistant"]
    assert [(c.start, c.end, c.output) for c in quota.calls] == [(0, 1, None), (0, 1, 1)]
    assert quota.meta["lines"] == [1, 4]
    # system + the longest request (3 messages) + the final reply
    assert [m.role for m in agent.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert agent.messages[-1].text == "One file: a.py"
    assert agent.messages[-1].id == "msg_2"
    assert [(c.start, c.end, c.output, c.model) for c in agent.calls] == [
        (0, 2, 2, SONNET),
        (0, 4, 4, SONNET),
    ]
    assert agent.calls[0].usage == Usage(input_tokens=4, cache_write_tokens=900, output_tokens=31)
    assert agent.calls[1].usage == Usage(
        input_tokens=6, cache_write_tokens=40, cache_read_tokens=900, output_tokens=8
    )
    assert [t.name for t in agent.tools] == ["Bash"]
    assert agent.model == SONNET
    assert agent.messages[3].tool_results[0].tool_name == "Bash"


def test_streamed_reply_is_rebuilt(tmp_path: Path) -> None:
    [ctx] = load(tmp_path, [sonnet([U1], {"body_raw": STREAMED})])
    reply = ctx.messages[-1]
    assert reply.role == "assistant"
    assert [p.kind for p in reply.parts] == ["text", "tool_call"]
    assert reply.parts[0].text == "Let me look."
    assert json.loads(reply.parts[1].text) == {"command": "ls -la"}
    assert reply.parts[1].tool_call_id == "t1"
    assert ctx.calls[0].output == 2


def test_a_different_system_prompt_starts_a_new_thread(tmp_path: Path) -> None:
    other = sonnet([U1, A1, U2], {"body": FINAL})
    other["request"]["body"]["system"] = "Summarize the conversation."
    ctxs = load(tmp_path, [sonnet([U1], {"body_raw": STREAMED}), other])
    assert [len(c.messages) for c in ctxs] == [3, 5]
    # a reply the next request did not send back is not in the context: no output index
    diverged = sonnet([U1, {"role": "assistant", "content": "something else"}, U2], {"body": FINAL})
    [ctx] = load(tmp_path, [sonnet([U1], {"body_raw": STREAMED}), diverged], name="d.jsonl")
    assert [(c.end, c.output) for c in ctx.calls] == [(2, None), (4, 4)]


def test_detection_claims_only_trace_records(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    doc = read_path(path)
    assert claude_trace.detect(doc)
    assert not claude_code.detect(doc)
    assert not openai_chat.detect(doc)
    assert not anthropic.detect(doc)
    assert not claude_trace.detect(formats.to_document({"model": "m", "messages": []}))
    assert not claude_trace.detect(formats.to_document([{"role": "user", "content": "x"}]))


def test_bad_input_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(haiku("quota", "A")) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(ParseError) as exc:
        load_all(path, format="claude_trace")
    assert exc.value.line == 2
    broken = sonnet([U1], {"body_raw": "event: message_start\ndata: {not json\n\n"})
    with pytest.raises(ParseError) as exc2:
        load(tmp_path, [haiku("q", "A"), broken], name="b2.jsonl")
    assert exc2.value.line == 2
    bad_messages = haiku("q", "A")
    bad_messages["request"]["body"]["messages"] = "hello"
    with pytest.raises(MessageError) as exc3:
        load(tmp_path, [haiku("q", "A"), bad_messages], name="b3.jsonl")
    assert exc3.value.line == 2
    bad_role = haiku("q", "A")
    bad_role["request"]["body"]["messages"] = [{"role": "robot", "content": "x"}]
    with pytest.raises(MessageError) as exc4:
        load(tmp_path, [bad_role], name="b4.jsonl")
    assert exc4.value.line == 1
    assert "b4.jsonl" in str(exc4.value)


def test_real_traffic() -> None:
    path = real(*TRAFFIC)
    doc = read_path(path)
    assert claude_trace.detect(doc)
    assert not claude_code.detect(doc)
    assert not openai_chat.detect(doc)
    assert not anthropic.detect(doc)
    assert formats.detect(doc) == "claude_trace"
    ctxs = load_all(path, format="claude_trace")
    assert len(ctxs) == 30
    assert sum(len(c.calls) for c in ctxs) == 64  # every request is one call
    sonnet_threads = [c for c in ctxs if c.model == SONNET]
    assert [c.title for c in sonnet_threads] == [
        f"{SONNET} thread 5",
        f"{SONNET} thread 7",
        f"{SONNET} thread 28",
    ]
    agent = sonnet_threads[0]
    # 13 requests re-send 1, 3, ..., 25 messages; + system + the last reply
    assert len(agent.messages) == 27
    assert [c.end for c in agent.calls] == list(range(2, 27, 2))
    assert [c.output for c in agent.calls] == list(range(2, 27, 2))
    assert len(agent.tools) == 17
    assert sum(len(m.tool_calls) for m in agent.messages) == 11
    used = {p.tool_name for m in agent.messages for p in m.tool_calls}
    assert used == {"TodoWrite", "LS", "Bash", "Write", "Edit"}
    assert agent.recorded_usage == Usage(
        input_tokens=41, cache_write_tokens=25105, cache_read_tokens=222555, output_tokens=6602
    )
    compact = sonnet_threads[1]
    assert (len(compact.messages), len(compact.tools), len(compact.calls)) == (29, 1, 1)
    quota = ctxs[0]
    assert len(quota.calls) == 18
    assert {m.text for m in quota.messages if m.role == "user"} == {"quota"}
    total = Usage()
    for ctx in ctxs:
        total = total + (ctx.recorded_usage or Usage())
    assert total == Usage(
        input_tokens=5853, cache_write_tokens=45598, cache_read_tokens=279790, output_tokens=8225
    )
