"""Session formats: detection, readers and (for API payloads) writers.

Each format is a module in this package with:

- ``NAME``: the format's name, used by ``--input-format``;
- ``detect(doc: Document) -> bool``: cheap, looks at the shape of the parsed input only;
- ``read(doc: Document) -> list[Context]``: one context per conversation in the input;
- optionally ``write(ctx: Context) -> Any``: the API payload back, equal to the input for every
  message that no edit touched.

`detect` tries the formats in `FORMATS` order: specific shapes (logs with tell-tale keys) first,
generic message lists last. Modules load on first use so ``import ctxtax`` stays light.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

from ctxtax._model import Context
from ctxtax.errors import FormatError
from ctxtax.formats._document import Document, as_document, read_path

FORMATS: dict[str, str] = {
    "claude_code": "ctxtax.formats.claude_code",
    "claude_trace": "ctxtax.formats.claude_trace",
    "codex": "ctxtax.formats.codex",
    "swe_agent": "ctxtax.formats.swe_agent",
    "mini_swe_agent": "ctxtax.formats.mini_swe_agent",
    "openhands": "ctxtax.formats.openhands",
    "aider": "ctxtax.formats.aider",
    "mcp_tools": "ctxtax.formats.mcp_tools",
    "anthropic": "ctxtax.formats.anthropic",
    "openai": "ctxtax.formats.openai_chat",
}
"""Format name -> module, in detection order."""


class FormatModule(Protocol):
    """What a format module provides (see the package docstring)."""

    NAME: str

    def detect(self, doc: Document) -> bool:
        """True when the document has this format's shape."""
        ...

    def read(self, doc: Document) -> list[Context]:
        """One context per conversation in the document."""
        ...


def format_module(name: str) -> FormatModule:
    """The module of the format called ``name``."""
    try:
        module_name = FORMATS[name]
    except KeyError:
        known = ", ".join(FORMATS)
        raise FormatError(f"unknown input format {name!r}; expected one of: {known}") from None
    module: ModuleType = importlib.import_module(module_name)
    return cast(FormatModule, module)


def detect(doc: Document) -> str:
    """The name of the first format whose shape the document has."""
    for name in FORMATS:
        if format_module(name).detect(doc):
            return name
    shape = type(doc.first_value()).__name__ if doc.kind != "text" else "text"
    raise FormatError(
        f"unrecognized session format (a {doc.kind} {shape}); expected one of: "
        f"{', '.join(FORMATS)}; pass --input-format / format= to choose one",
        source=doc.source,
    )


def to_document(obj: Any) -> Document:
    """A `Document` from a path, bytes, or an in-memory object."""
    if isinstance(obj, (str, Path)) and not (isinstance(obj, str) and obj.lstrip()[:1] in "{["):
        return read_path(Path(obj).expanduser())
    return as_document(obj)


def load_all(obj: Any, *, format: str | None = None) -> list[Context]:
    """Every conversation in ``obj``: a path, a parsed payload, or a `Context`."""
    if isinstance(obj, Context):
        return [obj]
    doc = to_document(obj)
    name = format or detect(doc)
    module = format_module(name)
    if format is not None and not module.detect(doc):
        raise FormatError(
            f"the input does not have the shape of format {name!r}", source=doc.source
        )
    contexts = module.read(doc)
    if not contexts:
        raise FormatError(f"no conversation found (read as {name})", source=doc.source)
    return contexts


__all__ = ["FORMATS", "FormatModule", "detect", "format_module", "load_all", "to_document"]
