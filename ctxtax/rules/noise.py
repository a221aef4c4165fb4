"""Family 4, noise: CTX401 terminal control sequences and progress redraws, CTX402 repeated log
lines, CTX403 inline binary, CTX404 whitespace bloat.

The rules read the text of text parts and tool results (never tool-call arguments, whose JSON an
edit could break, nor reasoning, whose signature it would). The text cleaning itself is in
`ctxtax.rules._terminal`; here it becomes findings with located, token-counted edits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache, partial

import numpy as np
import numpy.typing as npt
from pydantic import Field

from ctxtax._findings import Edit, Finding, Loc, Safety, trusted
from ctxtax._tokens import char_offsets
from ctxtax.rules._terminal import (
    CONTROLS,
    VERTICAL,
    Blob,
    FrameRun,
    RepeatRun,
    changed_lines,
    collapse_whitespace,
    control_counts,
    find_blobs,
    has_controls,
    is_diff,
    line_starts,
    progress_runs,
    render,
    repeated_runs,
    whitespace_bound,
    whitespace_changes,
)
from ctxtax.rules.base import Rule, RuleOptions, Session, register

_KINDS = frozenset({"text", "tool_result"})
_GAP_LINES = 16  # clean lines between two noisy ones before they are separate findings
_QUOTE_CHARS = 160


def _runs(text: str, min_repeats: int, fold: bool) -> tuple[RepeatRun, ...]:
    """`repeated_runs` of a text, cached: middleware audits the same parts on every call (a
    string caches its hash, so a part seen before costs a lookup)."""
    runs = _RUNS.get((min_repeats, fold))
    if runs is None:
        runs = _RUNS[(min_repeats, fold)] = lru_cache(maxsize=4096)(
            partial(_repeated_runs, min_repeats=min_repeats, fold=fold)
        )
    return runs(text)


def _repeated_runs(text: str, *, min_repeats: int, fold: bool) -> tuple[RepeatRun, ...]:
    return tuple(repeated_runs(text, min_repeats=min_repeats, fold=fold))


# One cache per option pair, keyed by the text alone: a cache keyed by tuples is a dict the
# garbage collector stops tracking and tracks again at every new entry, walking it each time.
_RUNS: dict[tuple[int, bool], Callable[[str], tuple[RepeatRun, ...]]] = {}


def _parts(session: Session) -> Iterator[tuple[int, int, str]]:
    """(message, part, text) of every part whose text the noise rules may rewrite."""
    messages = session.context.messages
    for m in session.message_indices():
        for p, part in enumerate(messages[m].parts):
            if part.kind in _KINDS and part.text and not part.encrypted:
                yield m, p, part.text


def _count(n: int, one: str, many: str | None = None) -> str:
    """``1 stale frame``, ``3 stale frames`` (``many`` when the plural is not ``one + "s"``)."""
    return f"1 {one}" if n == 1 else f"{n:,} {many or one + 's'}"


def _quote(line: str) -> str:
    line = line.rstrip("\r")
    return line if len(line) <= _QUOTE_CHARS else line[: _QUOTE_CHARS - 1] + "…"


class _Located:
    """One part's text, with the character-to-token mapping its findings need (made once)."""

    def __init__(self, session: Session, message: int, part: int, text: str) -> None:
        self.session = session
        self.message = message
        self.part = part
        self.text = text
        self._offsets: npt.NDArray[np.int64] | None = None
        self._starts: list[int] | None = None

    @property
    def starts(self) -> list[int]:
        """The offset of each line."""
        if self._starts is None:
            self._starts = line_starts(self.text)
        return self._starts

    def line_end(self, line: int, *, crlf: bool = True) -> int:
        """Where line ``line`` ends: before its ``\\n`` (and before the ``\\r`` of a ``\\r\\n``
        when ``crlf``, so that the line ending stays out of the range)."""
        starts = self.starts
        if line + 1 >= len(starts):
            return len(self.text)
        end = starts[line + 1] - 1
        if crlf and end > starts[line] and self.text[end - 1] == "\r":
            end -= 1
        return end

    def _token_offsets(self) -> npt.NDArray[np.int64]:
        if self._offsets is not None:
            return self._offsets
        text = self.text
        ids = self.session.counter.encode(text)
        offsets = char_offsets(self.session.counter, ids, text)
        if offsets is None:  # a counter without a vocabulary table: spread tokens evenly
            offsets = np.linspace(0, len(text), len(ids) + 1).round().astype(np.int64)
        self._offsets = offsets
        return offsets

    def loc(self, start: int, end: int) -> Loc:
        """The location of characters ``start`` to ``end``, with the tokens that hold them."""
        offsets = self._token_offsets()
        n = len(offsets) - 1
        token_start = max(0, int(np.searchsorted(offsets[:-1], start, side="right")) - 1)
        token_end = int(np.searchsorted(offsets[:-1], end, side="left"))
        if end > start:
            token_end = max(token_end, token_start + 1)
        return trusted(
            Loc,
            message=self.message,
            part=self.part,
            start=start,
            end=end,
            token_start=min(token_start, n),
            token_end=min(token_end, n),
        )

    def saving(self, before: str, after: str) -> int:
        """Tokens saved by writing ``after`` in place of ``before``."""
        count = self.session.counter.count
        return count(before) - count(after)

    def saving_range(self, start: int, end: int, after: str) -> int:
        """Tokens saved by writing ``after`` in place of characters ``start`` to ``end``: the
        tokens of the text that lie wholly inside the range (the text is tokenized already; a
        token across either edge is not counted as saved), less those of ``after``."""
        offsets = self._token_offsets()
        first = int(np.searchsorted(offsets[:-1], start, side="left"))
        past = int(np.searchsorted(offsets, end, side="right")) - 1
        return max(0, past - first) - self.session.counter.count(after)

    def finding(
        self,
        rule: Rule,
        message: str,
        start: int,
        end: int,
        replacement: str,
        saved: int,
        safety: Safety,
        evidence: dict[str, object],
    ) -> Finding:
        """A finding of ``rule`` whose edit replaces characters ``start`` to ``end``."""
        loc = self.loc(start, end)
        edit = trusted(
            Edit,
            action="replace_text",
            loc=loc,
            replacement=replacement,
            safety=safety,
            tokens_saved=saved,
        )
        return rule.finding(
            message,
            loc=loc,
            tokens=saved,
            calls=int(self.session.residency[self.message]),
            evidence=evidence,
            edits=(edit,),
        )


class TerminalNoiseOptions(RuleOptions):
    """Options of CTX401."""

    min_tokens: int = Field(default=16, ge=1)


@register
class TerminalNoise(Rule):
    """Terminal control sequences and progress-bar redraws in tool output.

    What it does:
        Finds what a terminal would have drawn over or hidden: ANSI/VT escape sequences (colours,
        bold, cursor moves, erase-line, window titles, hyperlinks), carriage-return redraws of a
        line (``\\r``: progress bars, spinners), backspaces, and progress bars whose frames were
        written one per line (tqdm, pip, pnpm, docker, git: the ``\\r`` turned into a newline by
        the harness). Noisy lines fewer than 16 lines apart are one finding; a finding must save
        at least ``min_tokens`` tokens.

    Why it costs:
        An escape sequence is 3 to 8 tokens that the model cannot see as colour; a coloured test
        report easily carries more escape tokens than text. A progress bar redrawn a hundred
        times is a hundred lines where a terminal showed one.

    Example:
        ``\\x1b[1m\\x1b[46m RUN \\x1b[49m\\x1b[22m \\x1b[36mv4.0.18 \\x1b[39m`` is 27 tokens;
        the terminal showed `` RUN  v4.0.18 `` (9 tokens).

    Fix:
        Replace the lines with what a terminal shows: escape sequences dropped, redraws and
        backspaces replayed so only the final state of each line is left (``\\r\\n`` line
        endings are kept). This edit is safe: every visible character stays. Stale progress
        frames written on lines of their own are replaced with one line saying how many were
        removed, keeping the last frame; that edit is unsafe (the frames are lines a terminal
        would have shown, though it drew over them).

    Options:
        ``min_tokens`` (int, 16): fewest tokens a finding must save.
    """

    code = "CTX401"
    name = "terminal-noise"
    Options = TerminalNoiseOptions
    scope = "message"

    def check(self, session: Session) -> Iterator[Finding]:
        """Findings per cluster of noisy lines, and per run of stale progress frames."""
        min_tokens = int(getattr(self.options, "min_tokens", 16))
        for m, p, text in _parts(session):
            controls = has_controls(text)
            vertical = controls and VERTICAL.search(text) is not None
            runs = [] if vertical else progress_runs(text)
            if not controls and not runs:
                continue
            where = _Located(session, m, p, text)
            stale: set[int] = set()
            for run in runs:
                finding = self._frames(where, run, min_tokens)
                if finding is not None:
                    stale.update(range(run.first, run.last))
                    yield finding
            if controls:
                yield from self._redraws(where, vertical, stale, min_tokens)

    def _frames(self, where: _Located, run: FrameRun, min_tokens: int) -> Finding | None:
        text = where.text
        start = where.starts[run.first]
        end = where.line_end(run.last - 1)
        frames = run.last - run.first
        replacement = f"[ctxtax: {_count(frames, 'earlier progress update')} removed]"
        saved = where.saving_range(start, end, replacement)
        if saved < min_tokens:
            return None
        last = render(text[where.starts[run.last] : where.line_end(run.last)])
        return where.finding(
            self,
            f"progress bar drawn {frames + 1:,} times: {_count(frames, 'stale frame')} "
            f"({saved:,} tokens)",
            start,
            end,
            replacement,
            saved,
            "unsafe",
            {"frames": frames + 1, "first_line": run.first + 1, "kept": _quote(last)},
        )

    def _redraws(
        self, where: _Located, vertical: bool, stale: set[int], min_tokens: int
    ) -> Iterator[Finding]:
        text = where.text
        starts = where.starts
        at = [c.start() for c in CONTROLS.finditer(text)]
        noisy = sorted(set((np.searchsorted(starts, at, side="right") - 1).tolist()) - stale)
        if vertical:
            clusters = [(0, len(starts) - 1)]  # cursor moves between rows: render it as one screen
        else:
            clusters = []
            for line in noisy:
                if (
                    clusters
                    and line - clusters[-1][1] <= _GAP_LINES + 1
                    and not any(s in stale for s in range(clusters[-1][1] + 1, line))
                ):
                    clusters[-1] = (clusters[-1][0], line)
                else:
                    clusters.append((line, line))
        for first, last in clusters:
            start, end = starts[first], where.line_end(last)
            before = text[start:end]
            after = render(before)
            saved = where.saving(before, after)
            if saved < min_tokens:
                continue
            sequences, redraws = control_counts(before)
            what = []
            if sequences:
                what.append(_count(sequences, "escape sequence"))
            if redraws:
                what.append(_count(redraws, "redraw character"))
            lines = last - first + 1
            yield where.finding(
                self,
                f"terminal control output: {' and '.join(what)} in {lines:,} "
                f"line{'s' * (lines > 1)} ({saved:,} tokens)",
                start,
                end,
                after,
                saved,
                "safe",
                {"escape_sequences": sequences, "redraws": redraws, "lines": lines},
            )


class RepeatedLinesOptions(RuleOptions):
    """Options of CTX402."""

    min_repeats: int = Field(default=5, ge=2)
    min_tokens: int = Field(default=32, ge=1)
    fold_numbers: bool = True


@register
class RepeatedLines(Rule):
    """The same log line (or block of up to four lines) repeated many times in a row.

    What it does:
        Finds, inside one part, a line or a block of 2 to 4 lines repeated at least
        ``min_repeats`` times in a row (5 by default): the same warning 200 times, a retry loop,
        ``Downloading ...`` lines. Exact repeats are found first; with ``fold_numbers``, lines
        that differ only in numbers, timestamps and hex ids (``Epoch 3/50 loss=0.31``) repeat
        too, in tool output and user messages (not in what the assistant wrote, nor in a diff
        or a file listed with line numbers: there the numbers are the content). Blank lines
        (CTX404) and progress frames (CTX401) are left to their own rules, and a folded line
        needs letters (a table of numbers is data). A finding must save at least ``min_tokens``
        tokens.

    Why it costs:
        Every copy after the first is paid on every later call and tells the model nothing the
        first did not.

    Example:
        ``npm warn deprecated inflight@1.0.6: This module is not supported`` 40 times in an
        install log.

    Fix:
        Exact repeats: keep the first copy and write ``[ctxtax: the line above repeated 39 more
        times]``; safe, since the text can be rebuilt exactly. Repeats that differ in numbers:
        keep the first and the last copy and write ``[ctxtax: 38 more lines like this, differing
        only in numbers]``; unsafe, the numbers in between are lost.

    Options:
        ``min_repeats`` (int, 5): copies in a row (the first included) to report.
        ``min_tokens`` (int, 32): fewest tokens a finding must save.
        ``fold_numbers`` (bool, true): also collapse lines that differ only in numbers.
    """

    code = "CTX402"
    name = "repeated-lines"
    Options = RepeatedLinesOptions
    scope = "message"

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per run of repeated lines."""
        opts = self.options
        min_repeats = int(getattr(opts, "min_repeats", 5))
        min_tokens = int(getattr(opts, "min_tokens", 32))
        fold = bool(getattr(opts, "fold_numbers", True))
        messages = session.context.messages
        for m, p, text in _parts(session):
            if text.count("\n") < min_repeats - 1:
                continue
            # Numbers in what the assistant wrote, and in a diff, are its content (a list of
            # flights and prices, a patched table); only exact repeats are noise there.
            folding = fold and messages[m].role != "assistant" and not is_diff(text)
            runs = _runs(text, min_repeats, folding)
            if not runs:
                continue
            where = _Located(session, m, p, text)
            for run in runs:
                finding = self._finding(where, run, min_tokens)
                if finding is not None:
                    yield finding

    def _finding(self, where: _Located, run: RepeatRun, min_tokens: int) -> Finding | None:
        text = where.text
        period, copies = run.period, run.copies
        kept = 1 if run.exact else 2  # a folded run keeps its last copy: the final numbers
        removed = copies - kept
        if removed <= 0:
            return None
        first_removed = run.first + period
        last_removed = first_removed + removed * period - 1
        start = where.starts[first_removed]
        end = where.line_end(last_removed, crlf=False)
        what = "line" if period == 1 else f"{period} lines"
        if run.exact:
            marker = f"[ctxtax: the {what} above repeated {removed:,} more times]"
        elif period == 1:
            marker = f"[ctxtax: {removed:,} more lines like this, differing only in numbers]"
        else:
            marker = (
                f"[ctxtax: {removed:,} more blocks of {period} lines like this, differing only "
                "in numbers]"
            )
        if text[end - 1 : end] == "\r":
            marker += "\r"
        saved = where.saving_range(start, end, marker)
        if saved < min_tokens:
            return None
        line = _quote(text[where.starts[run.first] : where.line_end(run.first)])
        how = "exactly" if run.exact else "differing only in numbers"
        return where.finding(
            self,
            f"{what} repeated {copies:,} times in a row ({how}): {line!r} ({saved:,} tokens)",
            start,
            end,
            marker,
            saved,
            "safe" if run.exact else "unsafe",
            {
                "line": line,
                "repeats": copies,
                "first_line": run.first + 1,
                "lines_per_copy": period,
                "exact": run.exact,
            },
        )


class InlineBinaryOptions(RuleOptions):
    """Options of CTX403."""

    min_chars: int = Field(default=1000, ge=64)


def _size(chars: int) -> str:
    if chars >= 1024 * 1024:
        return f"{chars / (1024 * 1024):.1f} MB"
    if chars >= 10 * 1024:
        return f"{round(chars / 1024)} KB"
    return f"{chars / 1024:.1f} KB"


@register
class InlineBinary(Rule):
    """Binary data pasted into text: base64, data URIs, hex dumps, undecodable bytes.

    What it does:
        Finds stretches of at least ``min_chars`` characters (1000 by default) of encoded or
        raw binary inside text parts and tool results: base64 (data URIs, images and files in a
        JSON tool result, PEM-style wrapped lines), long hex strings, hex dumps (``xxd``,
        ``hexdump -C``), byte arrays (``0x89, 0x50, ...``), escaped byte strings
        (``b'\\x89PNG...'``), and text of replacement characters and control bytes (a binary file
        printed with ``cat``). Image parts are not looked at: they are billed by size.

    Why it costs:
        Base64 costs a token per 1.4 characters (prose: one per 4) and the model cannot read it:
        50 KB of base64 (a small screenshot) is some 36,000 tokens of nothing, paid again on
        every later call.

    Example:
        A browser tool returns ``{"type": "image", "data": "/9j/4AAQSkZJRg..."}`` as text: 48 KB
        of JPEG in base64.

    Fix:
        Replace the blob with ``[ctxtax: 48 KB base64 (image/jpeg) removed]``, or send images as
        image parts. The data is gone, so the edit is unsafe.

    Options:
        ``min_chars`` (int, 1000): shortest stretch reported, in characters.
    """

    code = "CTX403"
    name = "inline-binary"
    Options = InlineBinaryOptions
    scope = "message"

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per blob."""
        min_chars = int(getattr(self.options, "min_chars", 1000))
        for m, p, text in _parts(session):
            if len(text) < min_chars:
                continue
            blobs = find_blobs(text, min_chars)
            if not blobs:
                continue
            where = _Located(session, m, p, text)
            for blob in blobs:
                finding = self._finding(where, blob)
                if finding is not None:
                    yield finding

    def _finding(self, where: _Located, blob: Blob) -> Finding | None:
        chars = blob.end - blob.start
        kind = blob.kind + (f" ({blob.media_type})" if blob.media_type else "")
        placeholder = f"[ctxtax: {_size(chars)} {kind} removed]"
        saved = where.saving_range(blob.start, blob.end, placeholder)
        if saved <= 0:
            return None
        evidence: dict[str, object] = {"kind": blob.kind, "chars": chars}
        if blob.media_type:
            evidence["media_type"] = blob.media_type
        return where.finding(
            self,
            f"inline {kind}: {chars:,} characters ({saved:,} tokens)",
            blob.start,
            blob.end,
            placeholder,
            saved,
            "unsafe",
            evidence,
        )


_CHANGES = (
    ("trailing", "line with trailing blanks", "lines with trailing blanks"),
    ("blank_runs", "run of blank lines", "runs of blank lines"),
    ("crlf", "CRLF line ending", "CRLF line endings"),
)


class WhitespaceOptions(RuleOptions):
    """Options of CTX404."""

    min_tokens: int = Field(default=16, ge=1)


@register
class WhitespaceBloat(Rule):
    """Whitespace that costs tokens and means nothing: trailing blanks, blank-line runs, CRLF.

    What it does:
        Per part, measures what removing trailing spaces and tabs, collapsing runs of three or
        more blank lines to one, and writing ``\\r\\n`` as ``\\n`` would save, and reports the
        part when that is at least ``min_tokens`` tokens (16 by default). Leading indentation is
        never touched (Python needs it), nor spaces inside a line (tables and diagrams need
        them, and cl100k encodes a run of spaces as one token), nor a unified diff (its
        blank context lines are a single space that a patch needs).

    Why it costs:
        Usually little: cl100k folds a run of blanks and the newline after it into one token.
        It costs where a blank sits between punctuation and the line end (``", \\n"`` is
        two tokens, ``",\\n"`` one) and in blank lines that hold spaces, on every later call.

    Example:
        A JSON dump written with Python 2's ``json.dumps(obj, indent=2)``, which leaves a blank
        after every comma: one token per line.

    Fix:
        Replace the lines from the first to the last change with the collapsed text. Safe: no
        visible character changes.

    Options:
        ``min_tokens`` (int, 16): fewest tokens a part must save to be reported.
    """

    code = "CTX404"
    name = "whitespace-bloat"
    Options = WhitespaceOptions
    scope = "message"

    def check(self, session: Session) -> Iterator[Finding]:
        """At most one finding per part."""
        min_tokens = int(getattr(self.options, "min_tokens", 16))
        for m, p, text in _parts(session):
            if whitespace_bound(text) < min_tokens:
                continue
            collapsed = collapse_whitespace(text)
            if len(text) - len(collapsed) < min_tokens:
                continue  # each token saved removes at least one character
            changed = changed_lines(text, collapsed)
            if changed is None:
                continue
            start, end, after_end = changed
            before, after = text[start:end], collapsed[start:after_end]
            where = _Located(session, m, p, text)
            saved = where.saving(before, after)
            if saved < min_tokens:
                continue
            changes = whitespace_changes(before)
            what = ", ".join(
                _count(changes[key], one, many) for key, one, many in _CHANGES if changes[key]
            )
            yield where.finding(
                self,
                f"whitespace bloat: {what} ({saved:,} tokens)",
                start,
                end,
                after,
                saved,
                "safe",
                dict(changes),
            )


__all__ = ["InlineBinary", "RepeatedLines", "TerminalNoise", "WhitespaceBloat"]
