"""``clear_old_results``: every tool result but the last ``keep_last`` becomes a placeholder (what
LangChain's ClearToolUsesEdit does), only with ``unsafe=True``, through the cache-aware planner,
with the same guarantees as every other edit."""

from __future__ import annotations

import json
from typing import Any

import ctxtax
from ctxtax._clearing import placeholder
from ctxtax._pairing import find_orphans


def session(results: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Survey the repository."}]
    for k in range(results):
        cid, tool = f"call_{k}", ("grep" if k % 2 else "read_file")
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {"name": tool, "arguments": json.dumps({"target": k})},
                    }
                ],
            }
        )
        body = "\n".join(f"src/module_{k}/file_{i}.py: line {i * k} matches" for i in range(40))
        messages.append({"role": "tool", "tool_call_id": cid, "content": body})
    messages.append({"role": "user", "content": "Summarize."})
    return messages


def contents(result: ctxtax.Optimized) -> list[str]:
    return [m["content"] for m in result.messages if m["role"] == "tool"]


def test_clears_all_but_the_last_results() -> None:
    messages = session(6)
    options: dict[str, Any] = {
        "unsafe": True,
        "clear_old_results": True,
        "keep_last": 2,
        "cache_aware": False,
        "select": ["CTX1"],  # no staleness rule claims the results first
    }
    result = ctxtax.optimize(messages, **options)
    out = contents(result)
    assert out[:4] == [placeholder(f"call_{k}", "grep" if k % 2 else "read_file") for k in range(4)]
    assert out[4:] == [m["content"] for m in messages if m["role"] == "tool"][4:]
    assert {e.code for e in result.edits} == {"CLEAR"}
    assert not find_orphans(result.context)
    assert ctxtax.revert(result) == messages
    again = ctxtax.optimize(result.messages, **options)
    assert not again.edits and again.messages == result.messages


def test_needs_unsafe_and_respects_tool_filters() -> None:
    messages = session(6)
    safe = ctxtax.optimize(messages, clear_old_results=True, cache_aware=False)
    assert not [e for e in safe.edits if e.code == "CLEAR"]
    only_grep = ctxtax.optimize(
        messages,
        unsafe=True,
        clear_old_results=True,
        keep_last=0,
        include_tools=["grep"],
        cache_aware=False,
    )
    cleared = [json.loads(json.dumps(m)) for m in only_grep.messages if m["role"] == "tool"]
    assert [c["content"].startswith("[ctxtax:") for c in cleared] == [False, True] * 3


def test_cache_aware_clearing_waits_for_enough_calls() -> None:
    messages = session(6)
    few = ctxtax.optimize(
        messages, model="claude-sonnet-4-5", unsafe=True, clear_old_results=True, expected_calls=1
    )
    many = ctxtax.optimize(
        messages, model="claude-sonnet-4-5", unsafe=True, clear_old_results=True, expected_calls=200
    )
    assert few.deferred > 0 and len(few.edits) < len(many.edits)
    assert many.tokens_after < few.tokens_after
