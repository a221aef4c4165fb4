"""A hand-counted token case per format.

Every case is the smallest session of its format: a user says "hello", the assistant answers
"hello". In cl100k_base "hello", "user" and "assistant" are one token each, so each message is
3 (framing) + 1 (role) + 1 (content) = 5 tokens, and the request adds 3 to prime the reply:
5 + 5 + 3 = 13. The MCP case is one tool schema, counted by hand below.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import ctxtax
from ctxtax import Message, Part
from ctxtax._counting import ContextTokens, CountMemo, Provider, count_context

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


# -- counts kept between calls (`CountMemo`) ------------------------------------------------


class RecordingCounter:
    """A real tiktoken counter that records the texts it was asked to encode."""

    def __init__(self) -> None:
        from ctxtax._tokens import default_counter

        self.inner = default_counter("gpt-4o")
        self.encoding = self.inner.encoding
        self.encoded: list[str] = []

    def encode(self, text: str) -> Any:
        self.encoded.append(text)
        return self.inner.encode(text)

    def encode_many(self, texts: Sequence[str]) -> list[Any]:
        self.encoded.extend(texts)
        return self.inner.encode_many(texts)

    def count(self, text: str) -> int:
        return len(self.encode(text))


PICTURE = {"type": "image_url", "image_url": {"url": "https://example.com/chart.png"}}
ARGS = json.dumps({"path": "src/app/handlers.py", "lines": [1, 400]})


def estimated_session() -> ctxtax.Context:
    """One message of each estimated kind: an image, a tool call, reasoning (and tools)."""
    body = "\n".join(f"line {i}: value_{i} = compute({i})" for i in range(60))
    return ctxtax.load(
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "You are a coding agent."},
                {"role": "user", "content": [{"type": "text", "text": "See this."}, PICTURE]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "read_file", "arguments": ARGS},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": body},
                {
                    "role": "assistant",
                    "reasoning_content": "The handler multiplies twice. " * 20,
                    "content": "Found it.",
                },
                {"role": "user", "content": "Fix it, please. " * 10},
                {"role": "assistant", "content": "Done: " + body[:400]},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "read_file",
                        "description": "Read a file.",
                        "parameters": {"type": "object", "properties": {}},
                    },
                }
            ],
        }
    )


def plain(message: Message, text: str = "short") -> Message:
    """``message`` edited to one plain text part."""
    return message.model_copy(update={"parts": (Part(kind="text", text=text),)})


def retexted(message: Message, text: str = "short") -> Message:
    """``message`` with its first part's text replaced (the part keeps its kind)."""
    first = message.parts[0].model_copy(update={"text": text})
    return message.model_copy(update={"parts": (first, *message.parts[1:])})


def with_messages(ctx: ctxtax.Context, messages: Sequence[Message]) -> ctxtax.Context:
    return ctx.model_copy(update={"messages": tuple(messages)})


def assert_same_counts(kept: ContextTokens, fresh: ContextTokens, where: object = "") -> None:
    assert kept.message_tokens.tolist() == fresh.message_tokens.tolist(), where
    assert kept.framing_tokens.tolist() == fresh.framing_tokens.tolist(), where
    assert kept.part_tokens == fresh.part_tokens, where
    assert kept.tool_tokens == fresh.tool_tokens, where
    assert kept.estimates == fresh.estimates, where
    assert kept.total == fresh.total, where


def counted_after(ctx: ctxtax.Context, edited: ctxtax.Context) -> tuple[Any, Any]:
    """(``edited`` counted with a memo that counted ``ctx`` first, counted afresh)."""
    counter = RecordingCounter()
    memo = CountMemo()
    count_context(ctx, counter, memo=memo)
    return count_context(edited, counter, memo=memo), count_context(edited, counter)


def test_edited_messages_counted_with_a_memo_equal_fresh_counts() -> None:
    ctx = estimated_session()
    messages = list(ctx.messages)
    messages[5] = retexted(messages[5])
    messages[6] = plain(messages[6], "Done.")
    edited = with_messages(ctx, messages)
    counter = RecordingCounter()
    memo = CountMemo()
    count_context(ctx, counter, memo=memo)
    counter.encoded.clear()
    kept = count_context(edited, counter, memo=memo)
    # only the edited messages were encoded again: the table was patched, not rebuilt
    assert ctx.messages[3].parts[0].text not in counter.encoded
    assert "Done." in counter.encoded
    assert_same_counts(kept, count_context(edited, counter))
    assert kept.total < count_context(ctx, counter).total


def test_edited_and_appended_messages_equal_fresh_counts() -> None:
    ctx = estimated_session()
    messages = list(ctx.messages)
    messages[3] = retexted(messages[3], "[ctxtax: same as message 6 above]")
    messages[5] = plain(messages[5])
    messages += [ctx.messages[1], plain(ctx.messages[5], "More, please.")]  # an image again
    assert_same_counts(*counted_after(ctx, with_messages(ctx, messages)))


@pytest.mark.parametrize(
    ("at", "estimate"),
    [(1, "images of unknown size"), (2, "tool calls"), (4, "reasoning")],
)
def test_an_estimate_leaves_with_the_message_that_carried_it(at: int, estimate: str) -> None:
    ctx = estimated_session()
    assert estimate in count_context(ctx, RecordingCounter()).estimates
    messages = list(ctx.messages)
    messages[at] = plain(messages[at], "replaced by plain text")
    for grown in (messages, [*messages, plain(ctx.messages[5], "and one more")]):
        kept, fresh = counted_after(ctx, with_messages(ctx, grown))
        assert estimate not in fresh.estimates
        assert_same_counts(kept, fresh, estimate)


def test_an_estimate_stays_while_another_message_carries_it() -> None:
    ctx = estimated_session()
    messages = [*ctx.messages, ctx.messages[1]]  # the picture twice
    grown = with_messages(ctx, messages)
    messages[1] = plain(messages[1])
    kept, fresh = counted_after(grown, with_messages(ctx, messages))
    assert "images of unknown size" in fresh.estimates
    assert_same_counts(kept, fresh)


def test_a_session_growing_message_by_message_equals_fresh_counts() -> None:
    """Each estimate arrives with a later message: the extended table must take it in."""
    ctx = estimated_session()
    counter = RecordingCounter()
    memo = CountMemo()
    for n in range(1, len(ctx.messages) + 1):
        grown = with_messages(ctx, ctx.messages[:n])
        assert_same_counts(count_context(grown, counter, memo=memo), count_context(grown, counter))


def test_random_edits_of_a_session_counted_with_one_memo() -> None:
    """An optimizer's calls: the history grows, edited copies of it are counted beside it,
    edits come and go, for one provider or another, with one tool list or another; one memo
    throughout."""
    rng = random.Random(3)
    base = estimated_session()
    more_tools = (*base.tools, base.tools[0].model_copy(update={"name": "write_file"}))
    pool = list(base.messages)
    counter = RecordingCounter()
    memo = CountMemo()
    history = list(base.messages[:3])
    for n in range(120):
        if rng.random() < 0.3:
            history.append(rng.choice(pool))
        current = list(history)
        for i in rng.sample(range(len(current)), rng.randint(0, min(3, len(current)))):
            if rng.random() < 0.3:
                current[i] = rng.choice(pool)  # another message of the session at this place
            else:
                edit = rng.choice([plain, retexted])
                current[i] = edit(current[i], f"edit {rng.randrange(4)}")
        if len(history) > 30:
            history = history[: rng.randint(3, 12)]  # a rewritten history
        tools = more_tools if n % 5 == 4 else base.tools
        for messages in (history, current):
            ctx = base.model_copy(update={"messages": tuple(messages), "tools": tools})
            provider: Provider = "anthropic" if n % 7 == 6 else "openai"
            kept = count_context(ctx, counter, provider=provider, memo=memo)
            fresh = count_context(ctx, counter, provider=provider)
            assert_same_counts(kept, fresh, n)
