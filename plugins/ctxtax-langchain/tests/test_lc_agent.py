"""A real `create_agent` agent, real tools, a scripted model, a checkpointer: the middleware."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from ctxtax_langchain import CtxtaxMiddleware
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from lc_fakes import LONG, ScriptedChatModel, script


@tool
def read_file(path: str) -> str:
    """Read a file."""
    return LONG


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


def run(middleware: list[Any]) -> tuple[ScriptedChatModel, Any, dict[str, Any]]:
    model = ScriptedChatModel(replies=script())
    agent = create_agent(
        model, [read_file, word_count], middleware=middleware, checkpointer=InMemorySaver()
    )
    config: dict[str, Any] = {"configurable": {"thread_id": "t1"}}
    agent.invoke({"messages": [("user", "How many functions in a.py?")]}, config)
    final = agent.invoke({"messages": [("user", "Check again?")]}, config)
    return model, agent, final


def assert_every_call_has_its_result(sent: list[Any]) -> None:
    for prompt in sent:
        calls = {c["id"] for m in prompt if isinstance(m, AIMessage) for c in m.tool_calls}
        results = {m.tool_call_id for m in prompt if isinstance(m, ToolMessage)}
        assert calls == results


def test_baseline_without_middleware_sends_the_duplicates() -> None:
    model, _, final = run([])
    assert not any("[ctxtax:" in str(m.content) for p in model.sent for m in p)
    assert final["messages"][-1].content == "Still 120 functions."


def test_request_mode_optimizes_what_the_model_sees_only() -> None:
    mw = CtxtaxMiddleware()
    model, _, final = run([mw])
    assert len(model.sent) == 5
    refs = [m for m in model.sent[-1] if "[ctxtax: same as" in str(m.content)]
    assert len(refs) == 2  # c2 and c3 point at c1
    assert all(isinstance(m, ToolMessage) and "ctxtax" in m.response_metadata for m in refs)
    assert_every_call_has_its_result(model.sent)
    state = final["messages"]
    assert [m.content for m in state if isinstance(m, ToolMessage) and m.tool_call_id != "c4"] == [
        LONG
    ] * 3
    assert state[-1].content == "Still 120 functions."
    assert mw.summary["calls"] == 5 and mw.summary["tokens_saved"] > 0 and mw.summary["edits"] > 0
    assert mw.summary["tokens_after"] == mw.summary["tokens_before"] - mw.summary["tokens_saved"]
    assert list(mw._optimizers) == ["t1"]


def test_request_mode_edits_are_byte_stable_between_calls() -> None:
    model, _, _ = run([CtxtaxMiddleware()])
    later = model.sent[-1]
    for prompt in model.sent[2:-1]:
        for i, m in enumerate(prompt):
            if "[ctxtax:" in str(m.content):
                assert later[i].content == m.content


def test_persist_mode_writes_the_edits_into_the_state() -> None:
    mw = CtxtaxMiddleware(mode="persist")
    model, agent, final = run([mw])
    assert_every_call_has_its_result(model.sent)
    state = final["messages"]
    results = [m for m in state if isinstance(m, ToolMessage) and m.tool_call_id != "c4"]
    assert results[0].content == LONG
    assert all(m.content.startswith("[ctxtax: same as") for m in results[1:])
    assert all("ctxtax" in m.response_metadata for m in results[1:])
    assert len({m.id for m in state}) == len(state)  # replaced in place, not appended
    assert state[-1].content == "Still 120 functions."
    saved = agent.get_state({"configurable": {"thread_id": "t1"}}).values["messages"]
    assert [m.content for m in saved] == [m.content for m in state]
    # The edited messages read back from the state stand for their originals: the optimizer
    # kept its edits and its index over both turns instead of starting over.
    optimizer = mw.optimizer("t1")
    assert optimizer.rebuilt == 0 and optimizer.auditor.rebuilds == 1


def test_a_history_read_back_from_the_checkpoint_is_not_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second turn reloads the history from the checkpointer: equal messages, new objects.
    The reader keeps what it read, so each message is read once and the audit goes on."""
    from ctxtax_langchain import convert

    reads: list[int] = []
    read_message = convert.read_message

    def counting(message: Any, *, index: int = 0) -> Any:
        reads.append(index)
        return read_message(message, index=index)

    monkeypatch.setattr(convert, "read_message", counting)
    mw = CtxtaxMiddleware()
    _, _, final = run([mw])
    assert sorted(reads) == list(range(len(final["messages"]) - 1))  # each message once
    auditor = mw.optimizer("t1").auditor
    assert auditor.rebuilds == 1


def test_fail_open(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from ctxtax_langchain import middleware

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("optimizer exploded")

    monkeypatch.setattr(middleware, "optimize_step", boom)
    mw = CtxtaxMiddleware()
    with caplog.at_level(logging.WARNING, logger="ctxtax_langchain"):
        model, _, final = run([mw])
    assert final["messages"][-1].content == "Still 120 functions."
    assert mw.summary["errors"] == 5
    assert "optimizer exploded" in caplog.text
    assert not any("[ctxtax:" in str(m.content) for p in model.sent for m in p)


def test_async_request_mode() -> None:
    import asyncio

    model = ScriptedChatModel(replies=script()[:3])
    agent = create_agent(model, [read_file], middleware=[CtxtaxMiddleware()])
    final = asyncio.run(agent.ainvoke({"messages": [("user", "How many?")]}))
    assert final["messages"][-1].content == "a.py defines 120 functions."
    assert any("[ctxtax: same as" in str(m.content) for m in model.sent[-1])


def test_unknown_option_and_mode() -> None:
    with pytest.raises(TypeError, match="nonsense"):
        CtxtaxMiddleware(nonsense=1)
    with pytest.raises(ValueError, match="mode"):
        CtxtaxMiddleware(mode="sometimes")  # type: ignore[arg-type]
