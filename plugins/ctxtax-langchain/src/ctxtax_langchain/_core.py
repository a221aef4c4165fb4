"""What the middleware and the runnable share: one optimizing step over LangChain messages."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage

from ctxtax import Optimizer
from ctxtax_langchain.convert import Reader, from_context, to_context

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
    edited: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Per edited message (by index): ``{"codes": [...], "tokens_saved": n}``."""

    @property
    def tokens_saved(self) -> int:
        """Prompt tokens the edits took out."""
        return self.tokens_before - self.tokens_after


def optimize_step(
    optimizer: Optimizer, messages: Sequence[BaseMessage], tools: Sequence[Any] | None = None
) -> Step:
    """Run ``optimizer`` on ``messages``; edited messages carry ``response_metadata["ctxtax"]``."""
    reader = _readers.get(optimizer)
    if reader is None:
        reader = _readers[optimizer] = Reader()
    ctx = to_context(messages, tools, model=optimizer.model, reader=reader)
    # `step` (not `optimize_context`): the middleware reports each edit it made.
    applied = optimizer.step(ctx)
    before, after = int(applied.tokens_before), int(applied.tokens_after)
    edited: dict[int, dict[str, Any]] = {}
    for edit in applied.edits:
        if edit.loc.message is None:
            continue
        info = edited.setdefault(edit.loc.message, {"codes": [], "tokens_saved": 0})
        if edit.code not in info["codes"]:
            info["codes"].append(edit.code)
        info["tokens_saved"] += edit.tokens_saved
    out = from_context(applied.context, reader)
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
    new_tools: list[Any] | None = None
    if tools is not None and len(applied.context.tools) != len(ctx.tools):
        new_tools = [t.raw for t in applied.context.tools]
    return Step(
        messages=out,
        tools=new_tools,
        tokens_before=before,
        tokens_after=after,
        edits=len(applied.edits),
        edited=edited,
    )


__all__ = ["OPTIMIZER_OPTIONS", "Step", "make_optimizer", "optimize_step"]
