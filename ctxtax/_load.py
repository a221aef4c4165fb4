"""load() / load_all() / write(): sessions in and API payloads out, in the caller's own format."""

from __future__ import annotations

from typing import Any

from ctxtax._model import Context
from ctxtax.errors import FormatError
from ctxtax.formats import format_module
from ctxtax.formats import load_all as _load_all


def load_all(obj: Any, *, format: str | None = None) -> list[Context]:
    """Every conversation in ``obj`` (a path, a parsed payload or a `Context`), as `Context`s.

    ``format`` names the input format instead of detecting it (see `ctxtax.formats.FORMATS`).
    """
    return _load_all(obj, format=format)


def load(obj: Any, *, format: str | None = None) -> Context:
    """The one conversation in ``obj``; for a file of several, use `load_all`."""
    contexts = _load_all(obj, format=format)
    if len(contexts) != 1:
        raise FormatError(
            f"the input holds {len(contexts)} conversations; "
            "use ctxtax.load_all() to read them all",
            source=contexts[0].source,
        )
    return contexts[0]


def write(ctx: Context) -> Any:
    """``ctx`` as the API payload of the format it was read from (OpenAI, Anthropic, MCP tools)."""
    module = format_module(ctx.source_format)
    writer = getattr(module, "write", None)
    if writer is None:
        raise FormatError(
            f"format {ctx.source_format!r} is a log, not an API payload: it has no writer; "
            "write it as 'openai' or 'anthropic' with ctx.model_copy(update={'source_format': ...})"
        )
    return writer(ctx)


__all__ = ["load", "load_all", "write"]
