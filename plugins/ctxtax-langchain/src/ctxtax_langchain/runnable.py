"""`ctxtax_runnable`: ctxtax as a step of a LCEL chain, after the ``trim_messages`` convention.

chain = prompt | ctxtax_runnable() | model      # a Runnable between prompt and model
optimized = ctxtax_runnable(messages)            # or: the optimized list, right away
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, overload

from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import RunnableLambda

from ctxtax_langchain._core import make_optimizer, optimize_step


def _messages_of(value: Any) -> list[BaseMessage]:
    if isinstance(value, PromptValue):
        return value.to_messages()
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    raise TypeError(
        f"ctxtax_runnable takes a list of messages or a ChatPromptValue, got {type(value).__name__}"
    )


@overload
def ctxtax_runnable(
    messages: None = None, **options: Any
) -> RunnableLambda[Any, list[BaseMessage]]: ...


@overload
def ctxtax_runnable(
    messages: Sequence[BaseMessage] | PromptValue, **options: Any
) -> list[BaseMessage]: ...


def ctxtax_runnable(
    messages: Sequence[BaseMessage] | PromptValue | None = None, **options: Any
) -> list[BaseMessage] | RunnableLambda[Any, list[BaseMessage]]:
    """Optimize LangChain messages with ctxtax, or make the `Runnable` that does.

    Args:
        messages: a list of messages or a ``ChatPromptValue``; without it, a ``RunnableLambda``
            taking either and returning the optimized list.
        **options: the options of `ctxtax.Optimizer` (``unsafe``, ``keep_last``,
            ``include_tools``, ``exclude_tools``, ``min_saving``, ``clear_old_results``,
            ``model``, ...).

    The runnable keeps one `ctxtax.Optimizer` across its calls, so a chat loop sending the growing
    history through it gets the same edits, byte for byte, at every turn.
    """
    optimizer = make_optimizer(options)
    if messages is not None:
        return optimize_step(optimizer, _messages_of(messages)).messages
    lock = threading.Lock()

    def run(value: Any) -> list[BaseMessage]:
        with lock:
            return optimize_step(optimizer, _messages_of(value)).messages

    return RunnableLambda(run, name="ctxtax")


__all__ = ["ctxtax_runnable"]
