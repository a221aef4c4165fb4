"""Every error ctxtax raises, under one root.

The tree::

    CtxtaxError
    ├── InputError (also ValueError)       bad input: where it is and what was expected
    │   ├── FormatError                    the input matches no known format / the named format
    │   ├── ParseError                     malformed JSON, JSONL line, invalid UTF-8, binary bytes
    │   ├── MessageError                   a message with an unknown role or an unreadable part
    │   └── PairingError                   a tool result without its call, or a call without result
    └── ConfigError (also ValueError)      bad options: unknown model, price or key

Each message names the file, line or message index and what was expected, so the CLI can print it
on one line and exit 2.
"""

from __future__ import annotations


class CtxtaxError(Exception):
    """Root of every error ctxtax raises on purpose."""


class InputError(CtxtaxError, ValueError):
    """The input cannot be read as a session; the message says where and what was expected.

    Attributes:
        source: the file path (or ``"<object>"`` for in-memory input).
        line: the 1-based line number in the file, when known.
        message_index: the 0-based index of the offending message, when known.
    """

    def __init__(
        self,
        what: str,
        *,
        source: str | None = None,
        line: int | None = None,
        message_index: int | None = None,
    ) -> None:
        self.what = what
        self.source = source
        self.line = line
        self.message_index = message_index
        super().__init__(self._render())

    def _render(self) -> str:
        where: list[str] = []
        if self.source:
            where.append(self.source if self.line is None else f"{self.source}:{self.line}")
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.message_index is not None:
            where.append(f"message {self.message_index}")
        return f"{', '.join(where)}: {self.what}" if where else self.what


class FormatError(InputError):
    """The input matches no known format, or not the format that was asked for."""


class ParseError(InputError):
    """Malformed JSON or JSONL, invalid UTF-8, or binary bytes where text was expected."""


class MessageError(InputError):
    """A message with an unknown role, or a content part that cannot be read."""


class PairingError(InputError):
    """A tool result without its tool call, or a tool call without its result."""


class ConfigError(CtxtaxError, ValueError):
    """Bad options: an unknown model or key, or a malformed price table."""


__all__ = [
    "ConfigError",
    "CtxtaxError",
    "FormatError",
    "InputError",
    "MessageError",
    "PairingError",
    "ParseError",
]
