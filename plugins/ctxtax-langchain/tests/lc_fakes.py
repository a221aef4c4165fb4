"""A scripted chat model that records every prompt it was sent, and a conversation to run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

LONG = "\n".join(
    f"line {i}: def function_{i}(x): return x * {i}  # the body of a longish file"
    for i in range(120)
)


class ScriptedChatModel(BaseChatModel):
    """Answers with the next scripted `AIMessage`; records the messages of each call."""

    replies: list[AIMessage]
    sent: list[list[BaseMessage]] = Field(default_factory=list)
    position: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        from langchain_core.utils.function_calling import convert_to_openai_tool

        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.sent.append(list(messages))
        reply = self.replies[self.position % len(self.replies)]
        self.position += 1
        return ChatResult(generations=[ChatGeneration(message=reply)])


def call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    """A tool call dict."""
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def usage(i: int) -> dict[str, Any]:
    """A usage_metadata dict."""
    return {
        "input_tokens": 100 * i,
        "output_tokens": 10,
        "total_tokens": 100 * i + 10,
        "input_token_details": {"cache_read": 50, "cache_creation": 5},
    }


def script() -> list[AIMessage]:
    """Turn 1: read a.py, read it again, answer. Turn 2: read a.py a third time, answer."""
    return [
        AIMessage(
            "", tool_calls=[call("read_file", {"path": "a.py"}, "c1")], usage_metadata=usage(1)
        ),
        AIMessage(
            "", tool_calls=[call("read_file", {"path": "a.py"}, "c2")], usage_metadata=usage(2)
        ),
        AIMessage("a.py defines 120 functions.", usage_metadata=usage(3)),
        AIMessage(
            "",
            tool_calls=[
                call("read_file", {"path": "a.py"}, "c3"),
                call("word_count", {"text": "x y"}, "c4"),
            ],
            usage_metadata=usage(4),
        ),
        AIMessage("Still 120 functions.", usage_metadata=usage(5)),
    ]
