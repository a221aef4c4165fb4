"""Turning what a caller passes (dicts, a path, a `Context`, tools in any shape) into contexts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ctxtax._model import Context, ToolSpec
from ctxtax._pairing import find_orphans
from ctxtax.errors import InputError, PairingError
from ctxtax.formats import load_all

API_FORMATS = frozenset({"openai", "anthropic"})


def read_tool_list(tools: Any) -> tuple[ToolSpec, ...]:
    """Tools in OpenAI, Anthropic or MCP shape (or `ToolSpec`s) as `ToolSpec`s."""
    if tools is None:
        return ()
    if isinstance(tools, Sequence) and all(isinstance(t, ToolSpec) for t in tools):
        return tuple(tools)
    if isinstance(tools, Sequence) and not isinstance(tools, (str, bytes)) and not tools:
        return ()
    contexts = load_all(tools, format="mcp_tools")
    return tuple(spec for ctx in contexts for spec in ctx.tools)


def check_pairing(ctx: Context) -> None:
    """Raise `PairingError` at the first broken tool-call pairing of an API payload."""
    orphans = find_orphans(ctx)
    if orphans:
        first = orphans[0]
        more = f" (and {len(orphans) - 1} more)" if len(orphans) > 1 else ""
        raise PairingError(
            f"{first.describe()}{more}; the provider would reject this request "
            "(pass strict=False to audit it anyway)",
            source=ctx.source,
            message_index=first.message_index,
        )


def check_sizes(ctx: Context, max_message_chars: int, first: int = 0) -> None:
    """Raise `InputError` for a message no model could take (of the messages from ``first``
    on: the caller checked the ones before)."""
    for i in range(first, len(ctx.messages)):
        message = ctx.messages[i]
        size = sum(len(p.text) for p in message.parts)
        if size > max_message_chars:
            raise InputError(
                f"message is {size:,} characters (about {size // 4:,} tokens), over the "
                f"{max_message_chars:,}-character limit: no model accepts a message this large; "
                "pass max_message_chars= to audit it anyway",
                source=ctx.source,
                message_index=i,
            )


def to_contexts(
    messages: Any,
    *,
    tools: Any = None,
    system: Any = None,
    format: str | None = None,
    strict: bool = True,
    max_message_chars: int = 5_000_000,
) -> list[Context]:
    """Every conversation in ``messages``, with ``tools`` (if given) as their tool specs."""
    if isinstance(messages, Context):
        contexts = [messages]
    elif (
        isinstance(messages, (list, tuple))
        and messages
        and all(isinstance(m, Context) for m in messages)
    ):
        contexts = list(messages)
    else:
        obj = messages
        if system is not None:
            obj = {"system": system, "messages": list(messages)}
            format = format or "anthropic"
        contexts = load_all(obj, format=format)
    if tools is not None:
        specs = read_tool_list(tools)
        contexts = [c.model_copy(update={"tools": specs}) for c in contexts]
    for ctx in contexts:
        check_sizes(ctx, max_message_chars)
        if strict and ctx.source_format in API_FORMATS:
            check_pairing(ctx)
    return contexts


__all__ = ["API_FORMATS", "check_pairing", "check_sizes", "read_tool_list", "to_contexts"]
