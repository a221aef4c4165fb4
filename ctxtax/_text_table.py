"""Plain-text tables and word-wrapped lines for the terminal, measured in terminal cells.

A small stand-in for the parts of ``rich`` the report used: tables drawn in rich's default
``HEAVY_HEAD`` box style with the same column sizing, text wrapped at word boundaries, and
bold/red/italic as ANSI codes only when asked for. It imports in under a millisecond.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Literal, TypeAlias

Justify = Literal["left", "right"]
Part: TypeAlias = str | tuple[str, str]
"""A piece of a line: plain text, or ``(text, style)`` with ``style`` an SGR code like ``BOLD``."""

BOLD = "1"
ITALIC = "3"
RED = "31"
BOLD_RED = "1;31"

_WORD = re.compile(r"\s*\S+\s*")
# Text from a session could move the cursor or start escape sequences in the user's terminal.
_CONTROL = {c: None for c in [*range(0x20), 0x7F] if c != 0x0A}


def cell_width(text: str) -> int:
    """How many terminal cells ``text`` takes: wide and fullwidth characters 2, marks 0."""
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


@lru_cache(maxsize=4096)
def _char_width(ch: str) -> int:
    if unicodedata.category(ch) in ("Mn", "Me", "Cf") or unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def clean(text: str) -> str:
    """``text`` with tabs expanded and control characters other than newline removed."""
    return text.expandtabs(8).translate(_CONTROL) if not text.isprintable() else text


def _chop(word: str, width: int) -> list[str]:
    """``word`` cut into pieces of at most ``width`` cells (a lone wide char may exceed it)."""
    pieces: list[str] = []
    start = used = 0
    for i, ch in enumerate(word):
        w = _char_width(ch)
        if used + w > width and i > start:
            pieces.append(word[start:i])
            start, used = i, 0
        used += w
    pieces.append(word[start:])
    return pieces


def _line_spans(text: str, width: int) -> list[tuple[int, int]]:
    """Offsets ``(start, end)`` of the lines ``text`` (no newlines) wraps into, greedily.

    Lines break before a word that does not fit; a word longer than a whole line is cut. As in
    rich, a word fits if it does without its trailing spaces; the spans keep them, to be stripped.
    """
    spans: list[tuple[int, int]] = []
    start = used = 0
    for match in _WORD.finditer(text):
        word = match.group()
        stem = word.rstrip()
        need = cell_width(stem)
        if used + need <= width:
            used += cell_width(word)
            continue
        if match.start() > start:
            spans.append((start, match.start()))
            start = match.start()
        used = cell_width(word)
        if need > width:
            pieces = _chop(stem, width)
            for piece in pieces[:-1]:
                spans.append((start, start + len(piece)))
                start += len(piece)
            used = cell_width(pieces[-1]) + len(word) - len(stem)
    spans.append((start, len(text)))
    return spans


def wrap(text: str, width: int) -> list[str]:
    """``text`` as lines of at most ``width`` cells, broken at newlines and word boundaries."""
    return [
        line[a:b].rstrip()
        for line in clean(text).split("\n")
        for a, b in _line_spans(line, max(width, 1))
    ]


def paragraph(*parts: Part, width: int = 100, color: bool = False) -> list[str]:
    """The ``parts`` joined and wrapped to ``width`` cells, styled with ANSI codes if ``color``."""
    texts = [clean(p) if isinstance(p, str) else clean(p[0]) for p in parts]
    plain = "".join(texts)
    if not color or all(isinstance(p, str) for p in parts):
        return wrap(plain, width)
    styled: list[tuple[int, int, str]] = []
    offset = 0
    for part, text in zip(parts, texts, strict=True):
        styled.append((offset, offset + len(text), "" if isinstance(part, str) else part[1]))
        offset += len(text)
    lines: list[str] = []
    base = 0
    for line in plain.split("\n"):
        for a, b in _line_spans(line, max(width, 1)):
            start, end = base + a, base + a + len(line[a:b].rstrip())
            lines.append(
                "".join(_sgr(plain[max(start, s) : min(end, e)], style) for s, e, style in styled)
            )
        base += len(line) + 1
    return lines


def _sgr(text: str, style: str) -> str:
    return f"\x1b[{style}m{text}\x1b[0m" if style and text else text


def _ratio_reduce(total: int, ratios: list[int], most: int, values: list[int]) -> list[int]:
    """``values`` less ``total`` shared out by ``ratios``, no one losing more than ``most``."""
    left, weight = total, sum(ratios)
    out: list[int] = []
    for ratio, value in zip(ratios, values, strict=True):
        if ratio and weight > 0:
            cut = min(most, round(ratio * left / weight))
            out.append(value - cut)
            left -= cut
            weight -= ratio
        else:
            out.append(value)
    return out


def _fit(widths: list[int], total: int) -> list[int]:
    """Column ``widths`` shrunk to sum to at most ``total``, the widest first (as rich does).

    The widest columns are narrowed to the next widest, then together, so narrow columns such
    as numbers keep their width while long text wraps. No column goes below 3 (1 + padding).
    """
    total = max(total, 3 * len(widths))
    widths = [min(w, total) for w in widths]
    excess = sum(widths) - total
    while excess > 0:
        widest = max(widths)
        second = max([w for w in widths if w != widest] + [3])
        ratios = [1 if w == widest else 0 for w in widths]
        widths = _ratio_reduce(excess, ratios, min(excess, widest - second), widths)
        excess = sum(widths) - total
    return widths


class Table:
    """A titled table with a header row, drawn in rich's ``HEAVY_HEAD`` box style.

    Cells are padded with one space either side and wrap onto several lines when the table
    would be wider than the width it is rendered at.
    """

    def __init__(self, title: str = "") -> None:
        self.title = title
        self.headers: list[str] = []
        self.justify: list[Justify] = []
        self.rows: list[list[str]] = []

    def add_column(self, header: str, justify: Justify = "left") -> None:
        """Add a column headed ``header``, its cells aligned by ``justify``."""
        self.headers.append(header)
        self.justify.append(justify)

    def add_row(self, *cells: str) -> None:
        """Add a row, one cell per column."""
        if len(cells) != len(self.headers):
            raise ValueError(f"{len(cells)} cells for {len(self.headers)} columns")
        self.rows.append(list(cells))

    def render(self, width: int = 100, color: bool = False) -> str:
        """The table as lines of at most ``width`` cells (more only if too narrow for it)."""
        rows = [[clean(c) for c in row] for row in [self.headers, *self.rows]]
        natural = [
            2 + max(cell_width(line) for row in rows for line in row[i].split("\n"))
            for i in range(len(self.headers))
        ]
        widths = _fit(natural, width - len(natural) - 1)
        title = wrap(self.title, sum(widths) + len(widths) + 1) if self.title else []
        out = [_sgr(line, ITALIC) if color else line for line in title]
        out.append("┏" + "┳".join("━" * w for w in widths) + "┓")
        for n, row in enumerate(rows):
            cells = [wrap(cell, w - 2) for cell, w in zip(row, widths, strict=True)]
            height = max((len(c) for c in cells), default=1)
            # rich bottom-aligns the header cells and top-aligns the rest
            cells = [[""] * (height - len(c)) + c if n == 0 else c for c in cells]
            edge = "┃" if n == 0 else "│"
            for i in range(height):
                padded = [
                    self._pad(c[i] if i < len(c) else "", w - 2, j)
                    for j, (c, w) in enumerate(zip(cells, widths, strict=True))
                ]
                if n == 0 and color:
                    padded = [_sgr(p, BOLD) for p in padded]
                out.append(edge + edge.join(padded) + edge)
            if n == 0:
                out.append("┡" + "╇".join("━" * w for w in widths) + "┩")
        out.append("└" + "┴".join("─" * w for w in widths) + "┘")
        return "\n".join(out)

    def _pad(self, text: str, width: int, column: int) -> str:
        gap = " " * max(width - cell_width(text), 0)
        return f" {gap}{text} " if self.justify[column] == "right" else f" {text}{gap} "


class Page:
    """Lines of text and tables, gathered into one report string of ``width`` cells."""

    def __init__(self, width: int = 100, color: bool = False) -> None:
        self.width = width
        self.color = color
        self.lines: list[str] = []

    def print(self, *parts: Part) -> None:
        """Add the ``parts`` as one paragraph, wrapped to the page width."""
        self.lines.extend(paragraph(*parts, width=self.width, color=self.color))

    def table(self, table: Table) -> None:
        """Add ``table``, rendered to the page width."""
        self.lines.append(table.render(self.width, self.color))

    def text(self) -> str:
        """Everything added so far, one line each, ending in a newline."""
        return "".join(line + "\n" for line in self.lines)


__all__ = ["BOLD", "BOLD_RED", "ITALIC", "RED", "Page", "Part", "Table", "cell_width", "wrap"]
