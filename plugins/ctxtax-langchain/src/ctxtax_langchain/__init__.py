"""ctxtax for LangChain: agent middleware, a LCEL runnable, an audit callback, and converters.

    from ctxtax_langchain import CtxtaxMiddleware, CtxtaxCallbackHandler, ctxtax_runnable

`CtxtaxMiddleware` needs the ``agents`` extra (``langchain`` and ``langgraph``); it is imported on
first use, so the rest works with ``langchain-core`` alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ctxtax_langchain.callbacks import CtxtaxCallbackHandler
from ctxtax_langchain.convert import from_context, to_context
from ctxtax_langchain.runnable import ctxtax_runnable

__version__ = "0.1.0"

__all__ = [
    "CtxtaxCallbackHandler",
    "CtxtaxMiddleware",
    "__version__",
    "ctxtax_runnable",
    "from_context",
    "to_context",
]


def __getattr__(name: str) -> Any:
    if name == "CtxtaxMiddleware":
        from ctxtax_langchain.middleware import CtxtaxMiddleware

        return CtxtaxMiddleware
    raise AttributeError(f"module 'ctxtax_langchain' has no attribute {name!r}")


if TYPE_CHECKING:
    from ctxtax_langchain.middleware import CtxtaxMiddleware as CtxtaxMiddleware
