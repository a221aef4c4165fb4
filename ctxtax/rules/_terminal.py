"""Text cleaning for the noise rules: what a terminal shows, progress frames, repeated lines,
inline binary and whitespace. Pure functions of strings; the rules in `ctxtax.rules.noise` turn
their results into findings.

Every function is linear in the text and never raises on odd input (control bytes, huge lines,
unterminated escape sequences). Each starts with a pre-check made of C-speed scans (``in``,
``str.count``, ``bytes.translate``): most texts hold no noise, and a regex pass over every text
of a large session costs more than all the rules' real work.
"""

from __future__ import annotations

import operator
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

# ---------------------------------------------------------------------------------------------
# What a terminal shows

CONTROLS = re.compile(r"[\x07\x08\x0e\x0f\x1b\x9b]|\r(?!\n)")
"""Anything `render` changes: escape sequences, BEL, backspace, SO/SI, and a bare ``\\r``."""


def has_controls(text: str) -> bool:
    """True when `render` would change ``text`` (a few C-speed scans, no regex)."""
    if "\x1b" in text or "\x08" in text or "\x07" in text or "\x9b" in text:
        return True
    if "\x0e" in text or "\x0f" in text:
        return True
    return "\r" in text and text.count("\r") > text.count("\r\n")


_LINE_CONTROLS = re.compile(r"[\x07\x08\x0e\x0f\x1b\x9b\r]")
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)(?P<params>[0-?]*)[ -/]*(?P<final>[@-~])"  # CSI: colours, cursor, erase
    r"|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[PX^_][^\x1b\n]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # two-character escapes (ESC 7, ESC M, ESC ( B) and a lone ESC
)
_TOKEN = re.compile(_SEQUENCE.pattern + r"|(?P<ctl>[\r\x08\x07\x0e\x0f])")
# Sequences that move the cursor off its row (or restore a saved row): a line then depends on
# the lines around it, so the text is rendered as one screen.
VERTICAL = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[AFJsu]|\x1b[78M]")
_MOVES_IN_LINE = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@BCDEGHKPXf`]|\x1b[DE]|[\r\x08]")
_MAX_MOVE = 1000  # a cursor moved further than this is clamped (no runaway padding)


def _number(params: str, index: int = 0, default: int = 1) -> int:
    fields = params.lstrip("?>=<").split(";")
    if index >= len(fields) or not fields[index].isdigit():
        return default
    return min(int(fields[index]) or default, _MAX_MOVE)


class _Screen:
    """Rows of cells and a cursor: enough of a VT100 to replay redraws of a command's output."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = [[]]
        self.crlf: list[bool] = [False]
        self.row = 0
        self.col = 0
        self.saved = (0, 0)

    def _goto_row(self, row: int) -> None:
        self.row = max(0, row)
        while len(self.rows) <= self.row:
            self.rows.append([])
            self.crlf.append(False)

    def newline(self, crlf: bool) -> None:
        self.crlf[self.row] = crlf
        self._goto_row(self.row + 1)
        self.col = 0

    def write(self, text: str) -> None:
        cells = self.rows[self.row]
        if self.col > len(cells):
            cells.extend(" " * (self.col - len(cells)))
        cells[self.col : self.col + len(text)] = text
        self.col += len(text)

    def put(self, line: str) -> None:
        """Play one line (no ``\\n`` in it) at the cursor."""
        if not _LINE_CONTROLS.search(line):
            self.write(line)
            return
        at = 0
        for match in _TOKEN.finditer(line):
            if match.start() > at:
                self.write(line[at : match.start()])
            at = match.end()
            self._control(match)
        if at < len(line):
            self.write(line[at:])

    def _control(self, match: re.Match[str]) -> None:
        token = match.group()
        if match.group("ctl") is not None:
            if token == "\r":
                self.col = 0
            elif token == "\x08":
                self.col = max(0, self.col - 1)
            return
        final = match.group("final")
        if final is not None:
            self._csi(match.group("params"), final)
        elif token in ("\x1b7", "\x1b8"):
            if token == "\x1b7":
                self.saved = (self.row, self.col)
            else:
                self._goto_row(self.saved[0])
                self.col = self.saved[1]
        elif token == "\x1bM":
            self._goto_row(self.row - 1)
        elif token in ("\x1bD", "\x1bE"):
            self._goto_row(self.row + 1)
            if token == "\x1bE":
                self.col = 0

    def _csi(self, params: str, final: str) -> None:
        if final == "m" or params.startswith("?"):
            return
        n = _number(params)
        cells = self.rows[self.row]
        if final == "A":
            self._goto_row(self.row - n)
        elif final in "BE":
            self._goto_row(self.row + n)
            if final == "E":
                self.col = 0
        elif final == "F":
            self._goto_row(self.row - n)
            self.col = 0
        elif final == "C":
            self.col += n
        elif final == "D":
            self.col = max(0, self.col - n)
        elif final in "G`":
            self.col = n - 1
        elif final in "Hf":
            self.col = _number(params, 1) - 1  # the screen row is unknown; keep ours
        elif final == "K":
            mode = _number(params, default=0)
            if mode == 0:
                del cells[self.col :]
            elif mode == 1:
                cells[: self.col + 1] = " " * min(self.col + 1, len(cells))
            else:
                cells.clear()
        elif final == "J" and _number(params, default=0) == 0:
            del cells[self.col :]
            for below in self.rows[self.row + 1 :]:
                below.clear()
        elif final == "P":
            del cells[self.col : self.col + n]
        elif final == "X":
            end = min(self.col + n, len(cells))
            cells[self.col : end] = " " * max(0, end - self.col)
        elif final == "@" and self.col < len(cells):
            cells[self.col : self.col] = " " * n
        elif final == "s":
            self.saved = (self.row, self.col)
        elif final == "u":
            self._goto_row(self.saved[0])
            self.col = self.saved[1]

    def text(self) -> str:
        return "".join(
            "".join(cells) + ("\r\n" if crlf else "\n")
            for cells, crlf in zip(self.rows[:-1], self.crlf, strict=False)
        ) + "".join(self.rows[-1])


def control_counts(text: str) -> tuple[int, int]:
    """(escape sequences, redraw characters: bare ``\\r``, backspaces, BEL, SO, SI) in ``text``."""
    sequences = sum(1 for _ in _SEQUENCE.finditer(text)) if "\x1b" in text or "\x9b" in text else 0
    redraws = text.count("\r") - text.count("\r\n") + text.count("\x08")
    redraws += text.count("\x07") + text.count("\x0e") + text.count("\x0f")
    return sequences, redraws


def _render_line(line: str) -> str:
    """One line without cursor moves: escape sequences and BEL/SO/SI dropped (the fast path)."""
    return _SEQUENCE.sub("", line).translate(_INVISIBLE)


_INVISIBLE = str.maketrans("", "", "\x07\x0e\x0f")


def render(text: str) -> str:
    """What a terminal shows for ``text``: escape sequences dropped, ``\\r`` redraws and
    backspaces replayed so that only the final state of each line remains, cursor moves applied.

    ``\\r\\n`` is a line ending and is kept; every other ``\\r`` returns to the start of the line.
    Text without control characters is returned unchanged.
    """
    if not has_controls(text):
        return text
    lines = text.split("\n")
    if not VERTICAL.search(text):
        out = []
        for i, line in enumerate(lines):
            crlf = i < len(lines) - 1 and line.endswith("\r")
            body = line[:-1] if crlf else line
            if _LINE_CONTROLS.search(body):
                if _MOVES_IN_LINE.search(body):
                    screen = _Screen()
                    screen.put(body)
                    body = screen.text()
                else:
                    body = _render_line(body)
            out.append(body + "\r" if crlf else body)
        return "\n".join(out)
    screen = _Screen()
    for i, line in enumerate(lines):
        crlf = i < len(lines) - 1 and line.endswith("\r")
        screen.put(line[:-1] if crlf else line)
        if i < len(lines) - 1:
            screen.newline(crlf)
    return screen.text()


# ---------------------------------------------------------------------------------------------
# Lines


def line_starts(text: str) -> list[int]:
    """The offset at which each line of ``text`` starts (lines split on ``\\n``)."""
    lengths = [len(line) + 1 for line in text.split("\n")]
    return [0, *accumulate(lengths[:-1])]


# ---------------------------------------------------------------------------------------------
# Progress frames

_BARS = "█▉▊▋▌▍▎▏━╸╺╾╼░▒▓■"
_SPINNERS = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏⣾⣽⣻⢿⡿⣟⣯⣷"
_FRAME_CHARS = re.compile(rf"[%{_BARS}{_SPINNERS}]")
_FRAME_GLYPHS = re.compile(rf"[{_BARS}{_SPINNERS}]")
_FRAME_WORDS = re.compile(r"Progress: resolved|\[[=#>-]{3}")
_SIGNATURE = re.compile(
    r"\d{1,3}(?:\.\d+)?%\s*\|"  # tqdm: " 45%|████▌     |"
    rf"|[{_BARS}]{{2,}}"  # block and box bars: pip, rich, tqdm
    r"|\[[=#>-]{3,}[ .-]*\]"  # "[=====>    ]": docker, wget
    # "45% (123/270)", "45% 1.2MB/s", "45% ETA 0:01": git, curl, wget
    r"|\d{1,3}(?:\.\d+)?%(?=[^\n]{0,40}?(?:\(\d+/\d+\)|\d\s*(?:[kMGT]i?B|B|it)/s|\b(?:eta|ETA)\b))"
    r"|Progress: resolved \d"  # pnpm
)
_SPINNER_LINE = re.compile(rf"\s*[{_SPINNERS}]\s+(?P<desc>\S.*)")
_TOTAL = re.compile(r"/\s*(\d[\d.,]*\s*[kMGTP]?i?B?)")
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_MAX_FRAME_CHARS = 400


def _may_have_frames(text: str) -> bool:
    if "%" in text and (
        "%|" in text or "% (" in text or "it/s" in text or "B/s" in text or "ETA" in text
    ):
        return True
    if "Progress: resolved" in text or "[==" in text or "[##" in text:
        return True
    # A text of ASCII characters cannot hold a bar or spinner character (an O(1) test).
    return not text.isascii() and _FRAME_GLYPHS.search(text) is not None


def progress_key(line: str) -> str | None:
    """What identifies the progress bar a line is a frame of (its label and total), or None
    when the line is not a progress frame. Escape sequences and ``\\r`` redraws are ignored."""
    if len(line) > _MAX_FRAME_CHARS:
        return None
    if _LINE_CONTROLS.search(line):
        line = render(line.rstrip("\r"))
    spinner = _SPINNER_LINE.match(line)
    if spinner is not None:
        return "spinner:" + _DIGITS.sub("0", spinner.group("desc")).strip()
    signature = _SIGNATURE.search(line)
    if signature is None:
        return None
    total = _TOTAL.search(line, signature.start())
    return line[: signature.start()].strip() + (f" /{total.group(1)}" if total else "")


@dataclass(frozen=True, slots=True)
class FrameRun:
    """Consecutive lines ``first`` to ``last`` drawing one progress bar: all but the last are
    stale frames a terminal would have drawn over."""

    first: int
    last: int
    key: str


def progress_runs(text: str) -> list[FrameRun]:
    """Runs of two or more consecutive lines that are frames of the same progress bar."""
    if not _may_have_frames(text):
        return []
    starts = line_starts(text)
    lines = text.split("\n")
    hints = [m.start() for pattern in (_FRAME_CHARS, _FRAME_WORDS) for m in pattern.finditer(text)]
    candidates = sorted({bisect_right(starts, at) - 1 for at in hints})
    keyed = [(i, k) for i in candidates if (k := progress_key(lines[i])) is not None]
    runs: list[FrameRun] = []
    j = 0
    while j < len(keyed):
        first, key = keyed[j]
        end = j
        while end + 1 < len(keyed) and keyed[end + 1] == (keyed[end][0] + 1, key):
            end += 1
        if end > j:
            runs.append(FrameRun(first, keyed[end][0], key))
        j = end + 1
    return runs


# ---------------------------------------------------------------------------------------------
# Repeated lines

# A digit with the hex letters around it: "42", "3.14", "a3f9e2c", "0x1F", "2024-03-08".
# (Possessive: giving letters back never finds a digit, and not trying is a fifth faster.)
_FOLD = re.compile(r"[a-fA-F]{0,8}+\d[0-9a-fA-F]*+")
_HEX_BYTES = b"0123456789abcdefABCDEF"
_THREE_LETTERS = re.compile(r"[^\W\d_](?:.*?[^\W\d_]){2}", re.S)
_GUTTER = re.compile(r"\s*\d+(?:→|\t)")  # "    44→" (Claude Code Read), "    44\t" (cat -n)


def fold_numbers(text: str) -> str:
    """``text`` with every number and hex id (timestamps, sizes, counters, hashes) made ``0``."""
    return _FOLD.sub("0", text)


@dataclass(frozen=True, slots=True)
class RepeatRun:
    """Lines ``first`` onwards: a block of ``period`` lines repeated ``copies`` times in a row,
    ``exact`` when every copy is identical, else equal once numbers are folded."""

    first: int
    period: int
    copies: int
    exact: bool

    @property
    def end(self) -> int:
        """The line after the run."""
        return self.first + self.period * self.copies


def _stretches(
    keys: Sequence[object], period: int, need: int, blocked: bytearray | None = None
) -> list[tuple[int, int]]:
    """Maximal ranges ``[i, j)`` of at least ``need`` positions where ``keys[k] == keys[k +
    period]`` (and neither line is ``blocked``): lines ``i`` to ``j + period`` repeat a block."""
    same = bytes(map(operator.eq, keys, keys[period:]))
    if blocked is not None and 1 in blocked:
        busy = bytes(map(operator.or_, blocked, blocked[period:]))
        same = bytes(map(operator.gt, same, busy))  # equal, and neither line is blocked
    if b"\x01" * need not in same:
        return []
    return [m.span() for m in re.finditer(b"\x01{%d,}" % need, same)]


def repeated_runs(
    text: str, *, min_repeats: int, max_period: int = 4, fold: bool = True
) -> list[RepeatRun]:
    """Blocks of 1 to ``max_period`` lines repeated at least ``min_repeats`` times in a row.

    Exact runs are found first; runs equal only once numbers are folded (``fold``) are then
    looked for in the lines left. Blank lines and progress frames are not repeats here (they are
    whitespace and terminal noise); a folded block needs a few letters and no line-number
    gutter: a table of numbers or a file's lines are data, not a log.
    """
    if text.count("\n") < min_repeats - 1:
        return []
    lines = text.split("\n")
    # Lines equal once folded are equal once every hex digit is deleted (folding only replaces
    # runs of hex digits), and that coarser key is one C-speed pass: it finds where to look.
    coarse = text.encode("utf-8", "surrogatepass").translate(None, _HEX_BYTES).split(b"\n")
    if len(coarse) - len(set(coarse)) < min_repeats - 1:
        return []  # a run of c copies repeats c - 1 lines at least
    regions: list[tuple[int, int]] = []
    for period in range(1, max_period + 1):
        need = period * (min_repeats - 1)
        regions += [(i, j + period) for i, j in _stretches(coarse, period, need)]
    if not regions:
        return []
    covered = bytearray(len(lines))
    runs: list[RepeatRun] = []
    for first, end in _merge(regions):
        chunk = lines[first:end]
        passes: list[tuple[list[str], bool]] = [(chunk, True)]
        if fold:
            passes.append((fold_numbers("\n".join(chunk)).split("\n"), False))
        for keys, exact in passes:
            blocked = covered[first:end]
            for start, period, copies in _select(keys, blocked, min_repeats, max_period, exact):
                covered[first + start : first + start + period * copies] = b"\x01" * (
                    period * copies
                )
                runs.append(RepeatRun(first + start, period, copies, exact))
    return sorted(runs, key=lambda r: r.first)


def _merge(ranges: list[tuple[int, int]], gap: int = 64) -> list[tuple[int, int]]:
    # Ranges a few lines apart are searched together: one pass over a longer range costs less
    # than one per range, and runs never cross the lines between (they match nothing).
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1] + gap:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _select(
    keys: list[str], blocked: bytearray, min_repeats: int, max_period: int, exact: bool
) -> list[tuple[int, int, int]]:
    """The runs to report among ``keys``: the longest first, the shortest period on a tie; a
    run that overlaps one already chosen keeps the stretches of it that are still free."""
    candidates: list[tuple[int, int, int, int]] = []
    for period in range(1, max_period + 1):
        need = period * (min_repeats - 1)
        if len(keys) <= need:
            break
        for i, j in _stretches(keys, period, need, blocked):
            copies = (j - i + period) // period
            candidates.append((-copies * period, period, i, j + period))
    chosen: list[tuple[int, int, int]] = []
    taken = bytearray(blocked)
    for _, period, start, stop in sorted(candidates):
        at = taken.find(0, start, stop)
        while 0 <= at < stop:
            free_end = taken.find(1, at, stop)
            free_end = stop if free_end < 0 else free_end
            copies = (free_end - at) // period
            if copies >= min_repeats and _is_log_block(keys[at : at + period], exact):
                taken[at : at + copies * period] = b"\x01" * (copies * period)
                chosen.append((at, period, copies))
            at = taken.find(0, free_end, stop)
    return chosen


def _is_log_block(block: list[str], exact: bool) -> bool:
    joined = "\n".join(block)
    if not joined.strip():
        return False
    if not exact and (
        _THREE_LETTERS.search(joined) is None or any(_GUTTER.match(line) for line in block)
    ):
        return False  # numbers only, or a file's lines: data whose numbers matter
    return not all(progress_key(line) is not None for line in block)


# ---------------------------------------------------------------------------------------------
# Inline binary


@dataclass(frozen=True, slots=True)
class Blob:
    """Characters ``start`` to ``end`` of a text that encode binary data."""

    start: int
    end: int
    kind: str
    media_type: str | None = None


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_MARK = bytes(b"a"[0] if c in _B64_ALPHABET else b" "[0] for c in range(256))
_B64_LINE = 64
_B64_BODY = re.compile(r"[A-Za-z0-9+/]+(?:(?:\r?\n|\\r\\n|\\n)[A-Za-z0-9+/]{16,})*=?=?")
_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+)(?:;[\w.+-]+=[\w.+-]*)*;base64,\Z")
_SEPARATORS = re.compile(r"\r?\n|\\r\\n|\\n|=")
_HEX_ONLY = re.compile(r"[0-9a-fA-F]+")
# Patterns open with a literal (a newline, "0x", a backslash): the regex engine then skips to
# each occurrence instead of trying every position.
_DUMP_LINE = r"(?:0x)?[0-9a-fA-F]{4,16}:?(?:[ \t]{1,2}[0-9a-fA-F]{2,8}){4,}[^\n]*"
_HEX_DUMP = re.compile(rf"\n{_DUMP_LINE}(?:\n{_DUMP_LINE})+")
_HEX_ARRAY = re.compile(r"0x[0-9a-fA-F]{2},(?:\s*0x[0-9a-fA-F]{2},){63,}")
_ESCAPE = r"\\(?:x[0-9a-fA-F]{2}|[0-7]{1,3}|[abfnrtv'\"\\])"
_ESCAPED = re.compile(rf"{_ESCAPE}(?:[^\\\n]{{0,3}}{_ESCAPE}){{63,}}")
_GARBAGE = re.compile(r"[\x00-\x06\x10-\x1a\x1c-\x1f\x7f-\x9a\x9c-\x9f\ufffd]")
_GARBAGE_ASCII = bytes([*range(0x00, 0x07), *range(0x10, 0x1B), *range(0x1C, 0x20), 0x7F])
_NOT_GARBAGE_ASCII = bytes(c for c in range(256) if c not in _GARBAGE_ASCII)
_GARBAGE_GAP = 32
_GARBAGE_DENSITY = 0.1
_MAGIC = (
    ("iVBORw0KGgo", "image/png"),
    ("/9j/", "image/jpeg"),
    ("R0lGOD", "image/gif"),
    ("UklGR", "image/webp"),
    ("PHN2Zy", "image/svg+xml"),
    ("AAABAA", "image/x-icon"),
    ("JVBERi0", "application/pdf"),
    ("UEsDB", "application/zip"),
    ("H4sI", "application/gzip"),
    ("f0VMRg", "application/x-elf"),
    ("TVqQ", "application/x-msdownload"),
    ("T2dnUw", "audio/ogg"),
    ("SUQz", "audio/mpeg"),
    ("d09GMg", "font/woff2"),
    ("d09GR", "font/woff"),
    ("PD94bW", "text/xml"),
)


def sniff_media_type(base64_text: str) -> str | None:
    """The media type a base64 text decodes to, from its first bytes (PNG, JPEG, PDF, ...)."""
    if base64_text[6:10] == "Z0eX":  # "....ftyp": an MP4 / QuickTime box
        return "video/mp4"
    for magic, media_type in _MAGIC:
        if base64_text.startswith(magic):
            return media_type
    return None


def find_blobs(text: str, min_chars: int) -> list[Blob]:
    """Stretches of at least ``min_chars`` characters of ``text`` that encode binary data:
    base64 (data URIs included), long hex strings, hex dumps and byte arrays, escaped bytes,
    and undecodable garbage. Non-overlapping, in text order."""
    if len(text) < min_chars:
        return []
    data = text.encode("utf-8", "surrogatepass")
    found: list[Blob] = []
    marked = data.translate(_B64_MARK)
    if b"a" * _B64_LINE in marked:
        found += _base64(text, data, marked, min_chars)
    if "0000" in text:
        dumps = _matches(_HEX_DUMP, "\n" + text, min_chars, "hex dump")
        found += [Blob(b.start, b.end - 1, b.kind) for b in dumps]
    if text.count("0x") >= 64:
        found += _matches(_HEX_ARRAY, text, min_chars, "hex bytes")
    if text.count("\\") >= 64:
        found += _matches(_ESCAPED, text, min_chars, "escaped bytes")
    # Garbage characters: ASCII controls, and (in UTF-8) C1 controls led by 0xC2 and U+FFFD.
    garbage = len(data.translate(None, _NOT_GARBAGE_ASCII))
    if not text.isascii():
        garbage += data.count(b"\xc2") + data.count(b"\xef\xbf\xbd")
    if garbage >= _GARBAGE_DENSITY * min_chars:
        found += _garbage(text, min_chars)
    found.sort(key=lambda b: (b.start, b.start - b.end))
    out: list[Blob] = []
    for blob in found:
        if not out or blob.start >= out[-1].end:
            out.append(blob)
    return out


def _base64(text: str, data: bytes, marked: bytes, min_chars: int) -> list[Blob]:
    """Base64 blobs, found from the runs of base64 characters in ``marked`` (the UTF-8 bytes of
    ``text`` with every base64 character made ``a``): C-speed scans to each run, then a regex
    anchored there."""
    found: list[Blob] = []
    needle = b"a" * _B64_LINE
    ascii = text.isascii()
    byte = char = 0  # a byte offset and its character offset, moved forward as runs are found
    at = marked.find(needle)
    while at >= 0:
        if not ascii:
            char += len(data[byte:at].decode("utf-8", "surrogatepass"))
            byte = at
        start = at if ascii else char
        match = _B64_BODY.match(text, start)
        end = match.end() if match else start + _B64_LINE
        blob = _base64_blob(text, start, end, min_chars)
        if blob is not None:
            found.append(blob)
        if ascii:
            at = marked.find(needle, end)
        else:
            at_byte = byte + len(text[char:end].encode("utf-8", "surrogatepass"))
            byte, char = at_byte, end
            at = marked.find(needle, at_byte)
    return found


def _base64_blob(text: str, start: int, end: int, min_chars: int) -> Blob | None:
    uri = _DATA_URI.search(text, max(0, start - 200), start)
    if uri is not None:
        start = uri.start()
    if end - start < min_chars:
        return None
    body = _SEPARATORS.sub("", text[uri.end() if uri else start : end])
    if len(body) < min_chars:
        return None
    if uri is None and _HEX_ONLY.fullmatch(body):
        if not any(c.isdigit() for c in body[:4096]):
            return None  # "AAAA...", "deadbeefcafe...": one long word, not a number
        return Blob(start, end, "bits" if not body.strip("01") else "hex")
    if uri is not None or _looks_like_base64(body):
        return Blob(start, end, "base64", uri.group(1) if uri else sniff_media_type(body))
    return None


def _matches(pattern: re.Pattern[str], text: str, min_chars: int, kind: str) -> list[Blob]:
    found: list[Blob] = []
    for match in pattern.finditer(text):
        end = match.end() - (1 if match.group().endswith("\n") else 0)
        if end - match.start() >= min_chars:
            found.append(Blob(match.start(), end, kind))
    return found


def _looks_like_base64(body: str) -> bool:
    # A thousand characters of the base64 alphabet with no space is encoded data unless it is
    # one long word (a run of one letter case); real base64 mixes cases and digits or + and /.
    head = body[:4096]
    has_upper = any(c.isupper() for c in head)
    has_lower = any(c.islower() for c in head)
    has_other = any(c.isdigit() or c in "+/" for c in head)
    return has_upper and has_lower and has_other


def _garbage(text: str, min_chars: int) -> list[Blob]:
    positions = [m.start() for m in _GARBAGE.finditer(text)]
    if len(positions) < min_chars * _GARBAGE_DENSITY:
        return []
    out: list[Blob] = []
    first = last = positions[0]
    count = 0
    for position in [*positions, len(text) + 2 * _GARBAGE_GAP]:
        if position - last > _GARBAGE_GAP:
            end = last + 1
            if end - first >= min_chars and count >= _GARBAGE_DENSITY * (end - first):
                out.append(Blob(first, end, "binary"))
            first, count = position, 0
        last = position
        count += 1
    return out


# ---------------------------------------------------------------------------------------------
# Whitespace

# A line's trailing blanks, with the carriage returns of its line ending: "\r\n" becomes "\n".
_TRAILING = re.compile(r"(?<![ \t\r])[ \t\r]+(?=\n|\Z)")
_TRAILING_BLANKS = re.compile(r"(?<![ \t])[ \t]+(?=\r*\n|\Z)")
_BLANK_RUN = re.compile(r"\n(?:[ \t\r]*\n){3,}")
_NEWLINES = re.compile(r"\n{4,}")
_DIFF_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@", re.M)
_TOKENS_PER_TRAILING = 4


def is_diff(text: str) -> bool:
    """True when ``text`` holds a unified diff, whose context lines keep their whitespace."""
    return ("\n@@ -" in text or text.startswith("@@ -")) and _DIFF_HUNK.search(text) is not None


def whitespace_bound(text: str) -> int:
    """A cheap upper bound of the tokens `collapse_whitespace` can save on ``text`` (a few
    C-speed counts): a few tokens per trailing blank, one per CRLF, two per run of blank lines.
    Checked against the real sessions in the tests."""
    bound = _TOKENS_PER_TRAILING * text.count(" \n")
    if text.endswith((" ", "\t")):
        bound += _TOKENS_PER_TRAILING
    if "\t" in text:
        bound += _TOKENS_PER_TRAILING * text.count("\t\n")
    if "\r" in text:
        crlf = text.count("\r\n")
        bound += crlf + text.count("\r\r")
        if crlf:
            trailing = text.count(" \r\n") + text.count("\t\r\n")
            bound += _TOKENS_PER_TRAILING * trailing
    if "\n\n\n\n" in text:
        bound += 2 * text.count("\n\n\n\n")
    return bound


def collapse_whitespace(text: str) -> str:
    """``text`` with trailing whitespace removed, runs of three or more blank lines made one, and
    ``\\r\\n`` made ``\\n``. Leading indentation and spaces inside a line are kept. A unified
    diff is returned unchanged: its blank context lines are a single space that patches need."""
    if is_diff(text):
        return text
    return _NEWLINES.sub("\n\n", _TRAILING.sub("", text))


def changed_lines(before: str, after: str) -> tuple[int, int, int] | None:
    """Where ``after`` differs from ``before``, as whole lines: ``(start, end, after_end)`` such
    that ``before[start:end]`` became ``after[start:after_end]`` and the rest is the same. The
    range ends after a newline (or at the end of the text). None when nothing changed."""
    if before == after:
        return None
    shortest = min(len(before), len(after))
    lo, hi = 0, shortest
    while lo < hi:  # the common prefix, by halving (slice comparisons run at C speed)
        mid = (lo + hi + 1) // 2
        if before[:mid] == after[:mid]:
            lo = mid
        else:
            hi = mid - 1
    prefix = lo
    lo, hi = 0, shortest - prefix
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if before[len(before) - mid :] == after[len(after) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    start = before.rfind("\n", 0, prefix) + 1
    newline = before.find("\n", max(start, len(before) - lo - 1))
    end = len(before) if newline < 0 else newline + 1
    return start, end, len(after) - (len(before) - end)


def whitespace_changes(text: str) -> dict[str, int]:
    """What `collapse_whitespace` changes in ``text``: lines with trailing whitespace, runs of
    blank lines, CRLF line endings."""
    return {
        "trailing": len(_TRAILING_BLANKS.findall(text)),
        "blank_runs": len(_BLANK_RUN.findall(text)),
        "crlf": text.count("\r\n"),
    }
