"""Reading an input into a `Document`: parsed JSON, JSONL records with their line numbers, or text.

Every failure is an `InputError` that names the file and line: malformed JSON, a bad JSONL line,
invalid UTF-8, binary bytes. Nothing here guesses a format; `ctxtax.formats.detect` does that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ctxtax.errors import ParseError

DocumentKind = Literal["json", "jsonl", "text", "object"]

TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt"})


@dataclass(frozen=True, slots=True)
class Record:
    """One JSONL line: its 1-based line number and parsed value."""

    line: int
    value: Any


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed input, before any format is chosen.

    ``value`` is the JSON value (``json`` / ``object``), a list of `Record` (``jsonl``), or the
    decoded text (``text``). ``path`` is set when the input came from a file.
    """

    kind: DocumentKind
    value: Any
    source: str = "<object>"
    path: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def records(self) -> list[Record]:
        """The JSONL records (a one-record list for a JSON object or array)."""
        if self.kind == "jsonl":
            records: list[Record] = self.value
            return records
        return [Record(1, self.value)]

    def first_value(self) -> Any:
        """The first JSONL record's value, or the JSON value itself."""
        if self.kind == "jsonl":
            return self.value[0].value if self.value else None
        return self.value


def _decode(data: bytes, source: str) -> str:
    nul = data.find(b"\x00")
    if nul != -1:
        line = data.count(b"\n", 0, nul) + 1
        raise ParseError(
            f"binary data (NUL byte at offset {nul}); expected a UTF-8 text or JSON session",
            source=source,
            line=line,
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ParseError(
            f"invalid UTF-8 at byte offset {exc.start} ({exc.reason}); expected UTF-8 text",
            source=source,
            line=line,
        ) from None


def _parse_jsonl(text: str, source: str) -> list[Record]:
    records: list[Record] = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        stripped = raw_line.strip()
        if not stripped:
            continue
        try:
            records.append(Record(number, json.loads(stripped)))
        except json.JSONDecodeError as exc:
            raise ParseError(
                f"malformed JSONL line: {exc.msg} at column {exc.colno}; "
                "expected one JSON object per line",
                source=source,
                line=number,
            ) from None
    return records


def parse_text(text: str, *, source: str = "<object>", path: Path | None = None) -> Document:
    """Parse text as JSON, JSONL or (for markdown and plain text) leave it as text."""
    suffix = path.suffix.lower() if path else ""
    if suffix in TEXT_SUFFIXES:
        return Document("text", text, source, path)
    stripped = text.lstrip()
    if not stripped:
        raise ParseError("the input is empty; expected a session", source=source)
    if suffix == ".jsonl" or (stripped[0] == "{" and "\n{" in stripped.rstrip()):
        try:
            return Document("json", json.loads(text), source, path)
        except json.JSONDecodeError:
            return Document("jsonl", _parse_jsonl(text, source), source, path)
    if stripped[0] in "{[":
        try:
            return Document("json", json.loads(text), source, path)
        except json.JSONDecodeError as exc:
            raise ParseError(
                f"malformed JSON: {exc.msg} at column {exc.colno}; expected valid JSON",
                source=source,
                line=exc.lineno,
            ) from None
    return Document("text", text, source, path)


def read_path(path: Path) -> Document:
    """Read and parse one file."""
    source = str(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ParseError("is a directory; expected a file", source=source) from None
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror}", source=source) from None
    return parse_text(_decode(data, source), source=source, path=path)


def as_document(obj: Any) -> Document:
    """Wrap an in-memory object (already parsed JSON, e.g. a list of message dicts)."""
    if isinstance(obj, Document):
        return obj
    if isinstance(obj, bytes):
        return parse_text(_decode(obj, "<bytes>"), source="<bytes>")
    return Document("object", obj)


__all__ = ["Document", "DocumentKind", "Record", "as_document", "parse_text", "read_path"]
