"""Calls of one thread's optimizer from several Python threads at once take turns."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ctxtax_langchain import CtxtaxMiddleware
from langchain.agents.middleware import ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from lc_fakes import LONG


def history(steps: int) -> list[BaseMessage]:
    messages: list[BaseMessage] = [HumanMessage("Count the functions.", id="h")]
    for i in range(steps):
        call = {"name": "read_file", "args": {"path": "a.py"}, "id": f"c{i}", "type": "tool_call"}
        messages.append(AIMessage("", tool_calls=[call], id=f"a{i}"))
        messages.append(ToolMessage(LONG, tool_call_id=f"c{i}", id=f"t{i}"))
    return messages


def sent(mw: CtxtaxMiddleware, messages: list[BaseMessage]) -> list[Any]:
    seen: list[Any] = []

    def handler(request: ModelRequest) -> ModelResponse:
        seen.append([m.content for m in request.messages])
        return ModelResponse(result=[AIMessage("ok")])

    mw.wrap_model_call(ModelRequest(model=object(), messages=messages), handler)  # type: ignore[arg-type]
    return seen[0]


def test_parallel_calls_of_one_thread_take_turns() -> None:
    prompts = [history(n) for n in range(1, 13)] * 3
    shared = CtxtaxMiddleware()
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda p: sent(shared, p), prompts))
    assert shared.summary["errors"] == 0 and shared.summary["calls"] == len(prompts)
    # Whatever order they ran in, each prompt keeps its messages, in order, and the repeated
    # reads are only ever replaced by references to the first one.
    for prompt, contents in zip(prompts, got, strict=True):
        assert len(contents) == len(prompt)
        for original, content in zip(prompt, contents, strict=True):
            assert content == original.content or content.startswith("[ctxtax: same as")
        if len(prompt) > 5:
            assert any(str(c).startswith("[ctxtax: same as") for c in contents)
