"""Aider chat history: ``.aider.chat.history.md``, one context per session.

Aider appends every session to one markdown file. What it writes, and how it is read:

- ``# aider chat started at <timestamp>`` starts a session (the context's title);
- ``#### `` lines are the user's input, each ending in the two-space markdown line break aider
  adds; adjacent ones are one multi-line message (``meta["aider"] = "input"``, or ``"command"``
  when it starts with ``/`` or ``!``);
- ``> `` lines are what aider showed the user: startup banners, command and test output, lint
  results, "Applied edit" notes. Adjacent ones form one message. Aider writes a multi-line output
  with ``> `` on its first line only, so an output whose line does not end with the two-space break
  goes on, blank lines and all, to the line that does and is followed by a new block. They become
  ``user`` messages with ``meta["aider"] = "output"``: some of them (``/run`` or ``/test`` output
  the user chose to add, lint errors to fix) were sent to the model as user messages, and the log
  cannot tell which, so every one is counted as such. That is an upper bound for them;
- everything else is the assistant's reply, plain markdown, kept character for character. A
  ``#### `` line without the line break is a heading in a reply, and a ``> `` line right under a
  reply line (no blank line between) is a quote in it.

Texts drop only what aider added: the ``#### `` / ``> `` prefixes and the trailing two-space line
break. ``Message.raw`` is the block exactly as written. Calls are one per reply and read the
session from its start, or from the last ``/clear`` or ``/reset``. They are estimates: aider also
sends its system prompt, the repo map and the added files, which the history does not record. The
model comes from the ``Model:`` / ``Models:`` / ``Main model:`` banner line. The ``Tokens: 5,244
sent, 604 received.`` line aider prints after a reply is that call's recorded usage (``sent``
includes the cache write and hit tokens it lists when it is larger than them; ``2.5k`` counts are
rounded).
Text before the first session header (the tail of an older session) is a context without a title;
a session with nothing under its header is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ctxtax._model import Call, Context, Message, Part, Usage
from ctxtax.formats._document import Document

NAME = "aider"

HEADER = "# aider chat started at"
_BREAK = "  "
_MODEL_LINE = re.compile(r"^(?:Main model|Models?): (\S+)")
_TOKENS_LINE = re.compile(
    r"^Tokens: ([\d.,]+k?) sent(?:, ([\d.,]+k?) cache write)?(?:, ([\d.,]+k?) cache hit)?"
    r", ([\d.,]+k?) received"
)
_MODELINE = re.compile(r"^-\*-.*-\*-\s*$")
_CLEARS = frozenset({"/clear", "/reset"})

BlockKind = Literal["input", "output", "reply"]


def detect(doc: Document) -> bool:
    """A text document with a ``# aider chat started at`` line."""
    if doc.kind != "text" or not isinstance(doc.value, str):
        return False
    text: str = doc.value
    return text.startswith(HEADER) or f"\n{HEADER}" in text


def _count(text: str | None) -> int:
    """A token count as aider prints it: ``5,244``, ``2.5k`` or ``12k`` (the last two rounded)."""
    if not text:
        return 0
    text = text.replace(",", "")
    if text.endswith("k"):
        return round(float(text[:-1]) * 1000)
    return int(float(text))


def _usage(match: re.Match[str]) -> Usage:
    sent, write, hit, received = (_count(g) for g in match.groups())
    if sent >= write + hit:  # providers whose prompt tokens include the cached ones
        sent -= write + hit
    return Usage(
        input_tokens=sent,
        cache_write_tokens=write,
        cache_read_tokens=hit,
        output_tokens=received,
    )


def _is_input(line: str) -> bool:
    return line.startswith("#### ") and line.endswith(_BREAK)


def _is_output(line: str) -> bool:
    return line.startswith("> ") or line == ">"


def _is_boundary(line: str | None) -> bool:
    """True for a line that starts a new block after a multi-line output."""
    return (
        line is None
        or not line.strip()
        or _is_output(line)
        or _is_input(line)
        or line.startswith(HEADER)
    )


@dataclass
class _Block:
    kind: BlockKind
    line: int
    raw: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


@dataclass
class _Session:
    title: str | None
    line: int
    preamble: bool = False
    messages: list[Message] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    model: str | None = None
    first_model: str | None = None
    window: int = 0

    def add(self, block: _Block) -> None:
        """Close a block into a message (and a call, for a reply)."""
        if block.kind == "reply":
            while block.raw and not block.raw[-1].strip():
                block.raw.pop()
                block.text.pop()
        text = "\n".join(block.text)
        meta: dict[str, Any] = {"aider": block.kind, "line": block.line}
        meta["end_line"] = block.line + len(block.raw) - 1
        index = len(self.messages)
        if block.kind == "reply":
            self.calls.append(Call(start=self.window, end=index, output=index, model=self.model))
        elif block.kind == "output":
            for line in block.text:
                match = _MODEL_LINE.match(line)
                if match:
                    self.model = match.group(1)
                    self.first_model = self.first_model or self.model
                tokens = _TOKENS_LINE.match(line)
                if tokens and self.calls and self.calls[-1].usage is None:
                    self.calls[-1] = self.calls[-1].model_copy(update={"usage": _usage(tokens)})
        elif text[:1] in {"/", "!"}:
            meta["aider"] = "command"
        self.messages.append(
            Message(
                role="assistant" if block.kind == "reply" else "user",
                parts=(Part(kind="text", text=text),),
                meta=meta,
                raw="\n".join(block.raw),
            )
        )
        if block.kind == "input" and text.strip() in _CLEARS:
            self.window = len(self.messages)

    def context(self, source: str) -> Context:
        """The session as a context."""
        meta: dict[str, Any] = {"line": self.line}
        if self.preamble:
            meta["aider_preamble"] = True
        return Context(
            messages=tuple(self.messages),
            source_format=NAME,
            source=source,
            title=self.title,
            model=self.first_model,
            calls=tuple(self.calls),
            meta=meta,
        )


def _strip_break(line: str) -> str:
    return line[: -len(_BREAK)] if line.endswith(_BREAK) else line


def read(doc: Document) -> list[Context]:
    """Every session in the history, in order (one pass over the lines)."""
    text: str = doc.value
    lines = (text.replace("\r\n", "\n") if "\r\n" in text else text).split("\n")
    sessions: list[_Session] = [_Session(title=None, line=1, preamble=True)]
    block: _Block | None = None
    raw_open = False  # inside a multi-line output whose closing line break is still to come
    previous_blank = True
    for number, line in enumerate(lines, start=1):
        if line.startswith(HEADER):
            if block is not None:
                sessions[-1].add(block)
            block, raw_open, previous_blank = None, False, True
            sessions.append(_Session(title=line[len(HEADER) :].strip() or None, line=number))
            continue
        if block is not None and block.kind == "output" and raw_open:
            following = lines[number] if number < len(lines) else None
            raw_open = not (line.endswith(_BREAK) and _is_boundary(following))
            block.raw.append(line)
            block.text.append(line if raw_open else _strip_break(line))
            continue
        blank = not line.strip()
        kind: BlockKind | None
        if _is_input(line):
            kind, text = "input", line[5 : -len(_BREAK)]
        elif _is_output(line) and not (
            block is not None and block.kind == "reply" and not previous_blank
        ):
            kind, text = "output", _strip_break(line)[2:]
            raw_open = not line.endswith(_BREAK)
        elif blank:
            kind, text = None, line
        elif number == 1 and _MODELINE.match(line):
            continue
        else:
            kind, text = "reply", line
        previous_blank = blank
        if kind is None:  # a blank line ends an input or an output; a reply goes on
            if block is not None and block.kind != "reply":
                sessions[-1].add(block)
                block = None
            elif block is not None:
                block.raw.append(line)
                block.text.append(text)
            continue
        if block is None or block.kind != kind:
            if block is not None:
                sessions[-1].add(block)
            block = _Block(kind=kind, line=number)
        block.raw.append(line)
        block.text.append(text)
    if block is not None:
        sessions[-1].add(block)
    # a header with nothing under it (aider started and quit at once) is no conversation
    return [s.context(doc.source) for s in sessions if s.messages]


__all__ = ["HEADER", "NAME", "detect", "read"]
