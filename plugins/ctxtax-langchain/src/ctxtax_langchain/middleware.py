"""`CtxtaxMiddleware`: ctxtax in front of every model call of a `langchain.agents.create_agent`.

``mode="request"`` (default) optimizes the messages of each model request
(``request.override(messages=...)``): the model sees the optimized prompt, the graph state keeps
the originals. ``mode="persist"`` edits the state before the model node (``before_model``),
returning the edited messages with their ids so the ``add_messages`` reducer replaces them: the
work is not redone at every step, and the checkpoint holds the smaller history.

One `ctxtax.Optimizer` per thread (the ``thread_id`` of the run's config, else one per middleware
instance) keeps earlier edits byte-stable from call to call, so the provider's prompt cache holds.
Any internal error passes the request through unchanged and logs a warning (fail open).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.messages import BaseMessage

from ctxtax import Optimizer
from ctxtax_langchain._core import Step, make_optimizer, optimize_step, paused_collector

logger = logging.getLogger("ctxtax_langchain")

Mode = Literal["request", "persist"]


def _thread_id() -> str:
    """The ``thread_id`` of the running graph's config, or ``""`` outside a threaded run."""
    try:
        from langgraph.config import get_config

        configurable = get_config().get("configurable") or {}
    except Exception:
        return ""
    thread = configurable.get("thread_id")
    return "" if thread is None else str(thread)


class CtxtaxMiddleware(AgentMiddleware):
    """Take the waste out of the prompt before every model call of an agent.

    Args:
        mode: ``"request"`` (the model sees optimized messages, the state keeps the originals) or
            ``"persist"`` (the edits are written into the state).
        unsafe, keep_last, include_tools, exclude_tools, min_saving, clear_old_results, model:
            the options of `ctxtax.optimize`; other `ctxtax.Optimizer` options pass through.

    ``summary`` holds what it did: calls, tokens before and after, tokens saved, edits, errors.
    """

    def __init__(
        self,
        *,
        mode: Mode = "request",
        unsafe: bool = False,
        keep_last: int = 3,
        include_tools: Iterable[str] | None = None,
        exclude_tools: Iterable[str] = (),
        min_saving: int = 8,
        clear_old_results: bool = False,
        model: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if mode not in ("request", "persist"):
            raise ValueError(f"mode must be 'request' or 'persist', got {mode!r}")
        self.mode: Mode = mode
        self.options: dict[str, Any] = {
            "unsafe": unsafe,
            "keep_last": keep_last,
            "include_tools": None if include_tools is None else list(include_tools),
            "exclude_tools": list(exclude_tools),
            "min_saving": min_saving,
            "clear_old_results": clear_old_results,
            "model": model,
            **options,
        }
        make_optimizer(self.options)  # unknown options fail here, not at the first call
        self._optimizers: dict[str, Optimizer] = {}
        self._thread_locks: dict[str, threading.Lock] = {}
        self._written: dict[str, dict[str, tuple[BaseMessage, BaseMessage]]] = {}
        """Per thread: the messages persist mode wrote into the state, by id, with the originals."""
        self._lock = threading.Lock()
        self.summary: dict[str, int] = {
            "calls": 0,
            "tokens_before": 0,
            "tokens_after": 0,
            "tokens_saved": 0,
            "edits": 0,
            "errors": 0,
        }

    def optimizer(self, thread_id: str = "") -> Optimizer:
        """The `ctxtax.Optimizer` of a thread (``""``: runs without a thread id)."""
        with self._lock:
            opt = self._optimizers.get(thread_id)
            if opt is None:
                opt = self._optimizers[thread_id] = make_optimizer(self.options)
                self._thread_locks[thread_id] = threading.Lock()
            return opt

    def _serial(self, thread_id: str) -> threading.Lock:
        """The lock of a thread's optimizer: its calls (parallel branches, async runs) take
        turns, since it keeps state between them."""
        self.optimizer(thread_id)
        with self._lock:
            return self._thread_locks[thread_id]

    def _record(self, step: Step) -> None:
        with self._lock:
            s = self.summary
            s["calls"] += 1
            s["tokens_before"] += step.tokens_before
            s["tokens_after"] += step.tokens_after
            s["tokens_saved"] += step.tokens_saved
            s["edits"] += step.edits

    def _failed(self, where: str, exc: BaseException) -> None:
        with self._lock:
            self.summary["errors"] += 1
        logger.warning("ctxtax %s failed, passing the messages through unchanged: %r", where, exc)

    # -- request mode ---------------------------------------------------------------------------

    def _optimized_request(self, request: ModelRequest) -> ModelRequest:
        if self.mode != "request" or not request.messages:
            return request
        try:
            thread = _thread_id()
            with self._serial(thread):
                step = optimize_step(self.optimizer(thread), request.messages, request.tools)
            self._record(step)
            if not step.edits and step.tools is None:
                return request
            update: dict[str, Any] = {"messages": step.messages}
            if step.tools is not None:
                update["tools"] = step.tools
            return request.override(**update)
        except Exception as exc:
            self._failed("wrap_model_call", exc)
            return request

    def wrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse],
    ) -> ModelResponse:
        """Request mode: hand the model the optimized messages."""
        return handler(self._optimized_request(request))

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        """Request mode, async."""
        return await handler(self._optimized_request(request))

    # -- persist mode ---------------------------------------------------------------------------

    def _persisted(self, state: AgentState) -> dict[str, Any] | None:
        if self.mode != "persist":
            return None
        try:
            messages: list[BaseMessage] = list(state.get("messages") or [])
            if not messages:
                return None
            thread = _thread_id()
            with self._serial(thread), paused_collector():
                return self._persist_step(thread, messages)
        except Exception as exc:
            self._failed("before_model", exc)
            return None

    def _persist_step(self, thread: str, messages: list[BaseMessage]) -> dict[str, Any] | None:
        with self._lock:
            written = self._written.setdefault(thread, {})
        # A message this middleware wrote into the state (the state may hold an equal copy)
        # stands for the original it edited: the optimizer sees the history it saw before
        # (so it extends its work instead of starting over) and makes the same edit again,
        # which the state already holds.
        originals = []
        for message in messages:
            kept = written.get(message.id) if message.id is not None else None
            same = kept is not None and (kept[0] is message or kept[0] == message)
            originals.append(kept[1] if kept is not None and same else message)
        step = optimize_step(self.optimizer(thread), originals)
        self._record(step)
        changed = []
        for held, original, new in zip(messages, originals, step.messages, strict=True):
            if new is held or new is original or new.id is None:
                continue
            if new.content != held.content or new.response_metadata != held.response_metadata:
                changed.append(new)
                written[new.id] = (new, original)
        return {"messages": changed} if changed else None

    def before_model(self, state: AgentState, runtime: Any) -> dict[str, Any] | None:
        """Persist mode: write the edited messages back into the state (same ids)."""
        return self._persisted(state)

    async def abefore_model(self, state: AgentState, runtime: Any) -> dict[str, Any] | None:
        """Persist mode, async."""
        return self._persisted(state)


__all__ = ["CtxtaxMiddleware"]
