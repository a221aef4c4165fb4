"""What the middleware and the runnable share: one optimizing step over LangChain messages."""

from __future__ import annotations

import gc
import operator
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from langchain_core.messages import BaseMessage

from ctxtax import AppliedEdit, Context, Optimizer
from ctxtax_langchain.convert import Reader, to_context, write_messages

# One reader per optimizer (an optimizer is one conversation): the messages it read last call.
_readers: weakref.WeakKeyDictionary[Optimizer, Reader] = weakref.WeakKeyDictionary()

OPTIMIZER_OPTIONS = frozenset(
    {
        "model",
        "unsafe",
        "keep_last",
        "include_tools",
        "exclude_tools",
        "min_saving",
        "clear_old_results",
        "cache_aware",
        "expected_calls",
        "cache_policy",
        "prices",
        "counter",
        "select",
        "ignore",
        "rule_options",
    }
)


def make_optimizer(options: dict[str, Any]) -> Optimizer:
    """A `ctxtax.Optimizer` from the options, refusing unknown ones by name."""
    unknown = sorted(set(options) - OPTIMIZER_OPTIONS)
    if unknown:
        raise TypeError(f"unknown ctxtax option(s): {', '.join(unknown)}")
    return Optimizer(**options)


@dataclass
class Step:
    """One optimizing step: the messages to send and what the edits saved."""

    messages: list[BaseMessage]
    tools: list[Any] | None
    tokens_before: int
    tokens_after: int
    edits: int
    applied: list[AppliedEdit] = field(default_factory=list, repr=False)

    @property
    def tokens_saved(self) -> int:
        """Prompt tokens the edits took out."""
        return self.tokens_before - self.tokens_after

    @cached_property
    def edited(self) -> dict[int, dict[str, Any]]:
        """Per edited message (by index): ``{"codes": [...], "tokens_saved": n}``."""
        return _by_message(self.applied)


def _by_message(edits: Iterable[AppliedEdit]) -> dict[int, dict[str, Any]]:
    edited: dict[int, dict[str, Any]] = {}
    for edit in edits:
        if edit.loc.message is None:
            continue
        info = edited.setdefault(edit.loc.message, {"codes": [], "tokens_saved": 0})
        if edit.code not in info["codes"]:
            info["codes"].append(edit.code)
        info["tokens_saved"] += edit.tokens_saved
    return edited


@contextmanager
def paused_collector() -> Iterator[None]:
    """Python's cyclic garbage collector off for the body, then as it was.

    Reading and writing messages allocates much and frees little: the collector would walk the
    whole history for nothing (ctxtax pauses it around its own work the same way)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def optimize_step(
    optimizer: Optimizer, messages: Sequence[BaseMessage], tools: Sequence[Any] | None = None
) -> Step:
    """Run ``optimizer`` on ``messages``; edited messages carry ``response_metadata["ctxtax"]``."""
    with paused_collector():
        return _optimize_step(optimizer, messages, tools)


def _optimize_step(
    optimizer: Optimizer, messages: Sequence[BaseMessage], tools: Sequence[Any] | None
) -> Step:
    reader = _readers.get(optimizer)
    if reader is None:
        reader = _readers[optimizer] = Reader()
    ctx = to_context(messages, tools, model=optimizer.model, reader=reader)
    # `step` (not `optimize_context`): the middleware reports each edit it made.
    applied = optimizer.step(ctx)
    new_tools: list[Any] | None = None
    if tools is not None and len(applied.context.tools) != len(ctx.tools):
        new_tools = [t.raw for t in applied.context.tools]
    return Step(
        messages=_written(reader, applied.context, applied.edits, messages),
        tools=new_tools,
        tokens_before=int(applied.tokens_before),
        tokens_after=int(applied.tokens_after),
        edits=len(applied.edits),
        applied=applied.edits,
    )


def _same_prefix(before: Sequence[object], now: Sequence[object]) -> int:
    """How many leading objects of ``now`` are the very objects ``before`` starts with."""
    if len(before) <= len(now) and all(map(operator.is_, before, now)):
        return len(before)
    same = 0
    for a, b in zip(before, now, strict=False):
        if a is not b:
            break
        same += 1
    return same


def _written(
    reader: Reader, ctx: Context, edits: list[AppliedEdit], messages: Sequence[BaseMessage]
) -> list[BaseMessage]:
    """The LangChain messages of ``ctx``, each edited one with what was done to it in its
    metadata. The leading messages that are the very objects written last call are taken as
    written then (an edited message object stands for its edits): only the rest are written,
    so a call costs its new messages, not the history."""
    before, sent = reader.sent
    same = _same_prefix(before, ctx.messages)
    # The edits are in message order: those of the messages written now are at the end.
    tail: list[AppliedEdit] = []
    for edit in reversed(edits):
        if edit.loc.message is not None and edit.loc.message < same:
            break
        tail.append(edit)
    edited = _by_message(reversed(tail))
    out = sent[:same] + write_messages(ctx.messages[same:], ctx.raw, reader)
    for i, info in edited.items():
        if 0 <= i < len(out) and out[i] is not messages[i]:
            key = (info["codes"], info["tokens_saved"])
            kept = reader.marked.get(id(out[i]))
            if kept is None or kept[0] is not out[i] or kept[1] != key:
                meta = {**out[i].response_metadata, "ctxtax": info}
                kept = (out[i], key, out[i].model_copy(update={"response_metadata": meta}))
                reader.marked[id(out[i])] = kept
            out[i] = kept[2]
    if len(reader.marked) > 2 * len(out) + 64:
        reader.marked = {}
    if len(reader.written) > 2 * len(out) + 64:
        alive = {id(m) for m in ctx.messages}
        reader.written = {k: v for k, v in reader.written.items() if k in alive}
    reader.sent = (ctx.messages, out)
    return list(out)


__all__ = ["OPTIMIZER_OPTIONS", "Step", "make_optimizer", "optimize_step"]
