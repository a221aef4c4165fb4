"""A hand-counted token case per format.

Every case is the smallest session of its format: a user says "hello", the assistant answers
"hello". In cl100k_base "hello", "user" and "assistant" are one token each, so each message is
3 (framing) + 1 (role) + 1 (content) = 5 tokens, and the request adds 3 to prime the reply:
5 + 5 + 3 = 13. The MCP case is one tool schema, counted by hand below.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ctxtax

_CC = [
    {
        "type": "user",
        "uuid": "u1",
        "parentUuid": None,
        "sessionId": "s",
        "isSidechain": False,
        "message": {"role": "user", "content": "hello"},
        "timestamp": "2026-01-01T00:00:00Z",
    },
    {
        "type": "progress",
        "uuid": "p1",
        "parentUuid": "u1",
        "sessionId": "s",
        "data": {"type": "hook_progress"},
    },
    {
        "type": "assistant",
        "uuid": "a1",
        "parentUuid": "u1",
        "sessionId": "s",
        "isSidechain": False,
        "requestId": "req_1",
        "timestamp": "2026-01-01T00:00:01Z",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "hello"}],
            "usage": {
                "input_tokens": 8,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            },
        },
    },
]
_CODEX = [
    {
        "timestamp": "2026-01-01T00:00:00Z",
        "type": "session_meta",
        "payload": {
            "id": "sess",
            "cwd": "/w",
            "originator": "codex_cli_rs",
            "cli_version": "0.77.0",
        },
    },
    {
        "timestamp": "2026-01-01T00:00:01Z",
        "type": "response_item",
        "payload": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hello"}],
        },
    },
    {
        "timestamp": "2026-01-01T00:00:02Z",
        "type": "response_item",
        "payload": {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hello"}],
        },
    },
]
_TRACE = {
    "request": {
        "timestamp": 1.0,
        "method": "POST",
        "url": "https://api.anthropic.com/v1/messages",
        "headers": {},
        "body": {
            "model": "claude-sonnet-4-5",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hello"}],
        },
    },
    "response": {
        "timestamp": 2.0,
        "status_code": 200,
        "headers": {},
        "body": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "hello"}],
            "usage": {"input_tokens": 8, "output_tokens": 1},
        },
    },
}
_OPENHANDS = [
    {
        "id": 0,
        "timestamp": "2025-01-01T00:00:00",
        "source": "user",
        "message": "hello",
        "action": "message",
        "args": {"content": "hello", "image_urls": None, "wait_for_response": False},
    },
    {
        "id": 1,
        "timestamp": "2025-01-01T00:00:01",
        "source": "agent",
        "message": "hello",
        "action": "message",
        "args": {"content": "hello", "image_urls": None, "wait_for_response": True},
    },
]
HELLO = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hello"}]

CASES: dict[str, tuple[str, str]] = {
    "openai": (".json", json.dumps(HELLO)),
    "anthropic": (
        ".json",
        json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": HELLO}),
    ),
    "claude_code": (".jsonl", "\n".join(json.dumps(r) for r in _CC) + "\n"),
    "claude_trace": (".jsonl", json.dumps(_TRACE) + "\n"),
    "codex": (".jsonl", "\n".join(json.dumps(r) for r in _CODEX) + "\n"),
    "swe_agent": (
        ".traj",
        json.dumps(
            {"trajectory": [], "history": [{**m, "agent": "main"} for m in HELLO], "info": {}}
        ),
    ),
    "mini_swe_agent": (
        ".json",
        json.dumps(
            {
                "trajectory_format": "mini-swe-agent-1",
                "instance_id": "x",
                "messages": HELLO,
                "info": {},
            }
        ),
    ),
    "openhands": (".json", json.dumps(_OPENHANDS)),
    "aider": (".md", "# aider chat started at 2024-08-05 19:33:00\n\n#### hello  \n\nhello\n"),
}


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_hello_hello_is_13_tokens(tmp_path: Path, fmt: str) -> None:
    suffix, text = CASES[fmt]
    path = tmp_path / f"session{suffix}"
    path.write_text(text)
    report = ctxtax.audit(path)
    assert report.format == fmt
    assert [(m.role, m.tokens) for m in report.messages] == [("user", 5), ("assistant", 5)]
    assert report.total_tokens == 13
    assert report.bill.calls == 1


def test_mcp_tool_schema_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "tools.json"
    path.write_text(json.dumps({"tools": [{"name": "f", "description": "", "inputSchema": {}}]}))
    report = ctxtax.audit(path, model="gpt-4")
    # '{"name":"f","description":"","parameters":{}}' is 11 cl100k tokens:
    # {" | name | ":" | f | "," | description | ":"," | parameters | ": | { | }}
    # + 7 per tool + 12 per request with tools = 30; + 3 reply priming = 33.
    assert report.format == "mcp_tools"
    assert report.tokens_by_tool[0].schema_tokens == 18
    assert report.tool_schema_tokens == 30
    assert report.total_tokens == 33


def test_claude_code_usage_is_recorded_beside_the_estimate(tmp_path: Path) -> None:
    suffix, text = CASES["claude_code"]
    path = tmp_path / f"s{suffix}"
    path.write_text(text)
    report = ctxtax.audit(path)
    assert report.bill.recorded is not None
    assert (report.bill.recorded.input_tokens, report.bill.recorded.output_tokens) == (8, 1)
    assert report.bill.estimated.prompt_tokens == 5 + 3  # the user message and the reply priming
