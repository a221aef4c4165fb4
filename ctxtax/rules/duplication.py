"""Family 1, duplication: CTX101 exact copies, CTX102 near copies, CTX103 repeated injections,
CTX104 duplicated transcripts.

All four read the session's `DuplicateIndex` (computed once). Every exact repeated span gets
exactly one of CTX101 / CTX103 / CTX104, decided once per session by `classify`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator
from functools import partial
from itertools import chain
from typing import Any

from ctxtax._dupes import Block, DuplicateIndex, ExactSpan
from ctxtax._findings import Edit, Finding, Loc, trusted
from ctxtax._prefix import changes, starts_with
from ctxtax.rules._dup_classes import Classified, Classifier, NearCopy
from ctxtax.rules.base import Rule, RuleOptions, Session, register

_CLASSES_KEY = "duplication.classes"
_EDIT_PLANS_KEY = "duplication.edit-plans"
_PLANNED_KEY = "duplication.planned"
_NON_BLANK = re.compile(r"\S")  # (\S is what str.strip keeps)
_WINDOWS_KEY = "duplication.windows"


def describe_block(index: DuplicateIndex, block: int) -> str:
    """How a finding names a block: the tool result of a call, or a message and its role."""
    b: Block = index.blocks[block]
    if b.kind == "tool_result" and b.tool_call_id:
        name = f" ({b.tool_name})" if b.tool_name else ""
        return f"the tool result of {b.tool_call_id}{name}"
    if b.kind == "tool_call" and b.tool_call_id:
        return f"the arguments of tool call {b.tool_call_id}"
    return f"message {b.message}" + (f" part {b.part}" if b.part else "")


def _span_loc(index: DuplicateIndex, block: int, start: int, end: int) -> Loc:
    b = index.blocks[block]
    char_start, char_end = index.char_range(block, start, end)
    return trusted(
        Loc,
        message=b.message,
        part=b.part,
        start=char_start,
        end=char_end,
        token_start=start,
        token_end=end,
    )


def _classes_key(session: Session) -> tuple[Any, ...]:
    index = session.duplicates
    opts = session.options.get("duplicates", {})
    return (_CLASSES_KEY, len(index.spans), len(index.near), tuple(sorted(opts.items())))


def classify(session: Session) -> Classified:
    """Split the visible exact spans between CTX101, CTX103 and CTX104, and find the near copies
    (see `ctxtax.rules._dup_classes`). A kept index keeps its `Classifier`, which extends what
    it decided with the spans and pairs found since."""
    index = session.duplicates
    opts = session.options.get("duplicates", {})
    key = (_CLASSES_KEY, tuple(sorted(opts.items())))
    classifier = index.cache.get(key)
    if not isinstance(classifier, Classifier):
        classifier = index.cache[key] = Classifier(
            index,
            min_repeats=int(opts.get("min_repeats", 3)),
            min_messages=int(opts.get("min_transcript_messages", 2)),
        )
    classified = classifier.update()
    if index.cache.get(_PLANNED_KEY) is not classified:
        index.cache[_PLANNED_KEY] = classified
        plan_edits(
            session,
            chain(
                classified.exact,
                (span for span, _ in classified.injections),
                (span for span, _ in classified.transcripts),
                (span for copy in classified.near for span in copy.spans),
            ),
        )
    return classified


def classes_key(session: Session) -> Hashable:
    """While this is unchanged between two audits of a growing session (the same kept index,
    the same spans and pairs found, the same call windows), the duplication rules find the
    same things: the `Rule.memo_key` of CTX101-CTX104."""
    index = session.duplicates
    windows = session.cache.get(_WINDOWS_KEY)
    if windows is None:
        windows = session.cache[_WINDOWS_KEY] = _windows(session)
    return (index.serial, _classes_key(session), windows)


def _windows(session: Session) -> frozenset[tuple[int, int]]:
    """The (start, head) of every call window; kept between the audits of a growing session,
    where the calls are mostly the very objects of last time."""
    memory = session.memory(_WINDOWS_KEY)
    calls = session.calls
    before: tuple[Any, ...] = memory.get("calls", ())
    counts: Counter[tuple[int, int]] = memory.setdefault("counts", Counter())
    gone, new = changes(before, calls)
    counts.subtract((c.start, min(c.head, c.start)) for c in gone)
    counts.update((c.start, min(c.head, c.start)) for c in new)
    memory["calls"] = calls
    return frozenset(w for w, n in counts.items() if n > 0)


def _span_edit(session: Session, span: ExactSpan) -> Edit | None:
    """The safe edit that replaces a repeated span with a reference to its source, if it saves
    tokens. Text inside tool-call arguments is JSON: replacing a span of it would break it."""
    plans = _edit_plans(session.duplicates)
    if span not in plans:
        plan_edits(session, (span,))
    planned = plans[span]
    if planned is None:
        return None
    loc, replacement, saved = planned
    if saved <= 0:
        return None
    return trusted(
        Edit,
        action="replace_text",
        loc=loc,
        replacement=replacement,
        tokens_saved=saved,
    )


_EditPlan = tuple[Loc, str, int]
"""Where a span's edit cuts (whole lines), what it writes there, and the tokens that saves."""


def _edit_plans(index: DuplicateIndex) -> dict[ExactSpan, _EditPlan | None]:
    plans: dict[ExactSpan, _EditPlan | None] = index.cache.setdefault(_EDIT_PLANS_KEY, {})
    return plans


def _edit_place(index: DuplicateIndex, span: ExactSpan) -> tuple[Loc, str] | None:
    """Where `_span_edit` would cut (whole lines) and what it would write there; None for a span
    that gets no edit (inside tool-call arguments, or holding no whole line)."""
    if index.blocks[span.block].kind == "tool_call":
        return None
    loc = _line_loc(index, span)
    if loc is None:
        return None
    where = (
        "earlier in this part"
        if span.src_block == span.block
        else describe_block(index, span.src_block) + " above"
    )
    return loc, f"[ctxtax: same as {where}]"


def plan_edits(session: Session, spans: Iterable[ExactSpan]) -> None:
    """Plan the edits of these spans (kept by the index): where each cuts and what it saves,
    with the texts cut and written counted in one batch. One call to the counter instead of
    two per span is most of what the edits cost when the counter has not seen those texts (a
    first audit)."""
    index = session.duplicates
    plans = _edit_plans(index)
    texts: list[str] = []
    pending: list[tuple[ExactSpan, Loc, str, int | None]] = []
    for span in spans:
        if span in plans:
            continue
        place = _edit_place(index, span)
        if place is None:
            plans[span] = None
            continue
        loc, replacement = place
        text = index.blocks[span.block].text
        whole = loc.start == 0 and loc.end == len(text)
        if not whole:
            texts.append(text[loc.start : loc.end])
        texts.append(replacement)
        pending.append((span, loc, replacement, span.tokens if whole else None))
    counts = iter([len(ids) for ids in session.counter.encode_many(texts)] if texts else [])
    for span, loc, replacement, cut in pending:
        tokens = next(counts) if cut is None else cut
        plans[span] = (loc, replacement, tokens - next(counts))


def _line_loc(index: DuplicateIndex, span: ExactSpan) -> Loc | None:
    """The whole lines of a repeated span (None when it holds no whole line).

    A reference replaces whole lines only: a line cut in two around a reference is a line that
    appears nowhere any more (its head stays in the copy, its tail in the source), and a
    reference inside a line (a JSON record) cannot say which part of the source it stands for.
    """
    block = index.blocks[span.block]
    text = block.text
    start, end = chars = index.char_range(span.block, span.start, span.end)
    if start > 0 and text[start - 1] != "\n":
        start = text.find("\n", start, end) + 1
        if start <= 0:
            return None
    if end < len(text) and text[end] != "\n":
        end = text.rfind("\n", start, end)
        if end < 0:
            return None
    if end > start and text[end - 1] == "\r" and end < len(text):
        end -= 1  # the \r of a \r\n line ending stays with it
    if end <= start or _NON_BLANK.search(text, start, end) is None:
        return None
    if (start, end) == chars:
        return _span_loc(index, span.block, span.start, span.end)

    token_start, token_end = index.boundaries_within(span.block, span.start, span.end, start, end)
    return trusted(
        Loc,
        message=block.message,
        part=block.part,
        start=start,
        end=end,
        token_start=token_start,
        token_end=max(token_start, token_end),
    )


def _whole_loc(block: Block) -> Loc:
    """Where a whole block is: its message and part, all its characters and tokens."""
    return trusted(
        Loc,
        message=block.message,
        part=block.part,
        start=0,
        end=len(block.text),
        token_start=0,
        token_end=block.tokens,
    )


def _near_edit(session: Session, index: DuplicateIndex, copy: NearCopy) -> Edit | None:
    """The unsafe edit that reduces a near copy to a reference plus the lines that differ from
    the earlier block (their order kept). The exact layout of the copy is lost."""
    block = index.blocks[copy.block]
    earlier = {line.strip() for line in index.blocks[copy.src_block].text.splitlines()}
    differing = [
        line for line in block.text.splitlines() if line.strip() and line.strip() not in earlier
    ]
    head = f"[ctxtax: near copy of {describe_block(index, copy.src_block)} above"
    replacement = (
        head + "; the lines that differ:]\n" + "\n".join(differing)
        if differing
        else head + ", equal line for line]"
    )
    if len(replacement) >= len(block.text):
        return None  # (most lines differ) no shorter than the copy: nothing to save
    saved = block.tokens - session.counter.count(replacement)
    if saved <= 0:
        return None
    return trusted(
        Edit,
        action="replace_text",
        loc=_whole_loc(block),
        replacement=replacement,
        safety="unsafe",
        tokens_saved=saved,
    )


def _exact_finding(
    rule: Rule,
    session: Session,
    span: ExactSpan,
    message: Callable[[], str],
    **evidence: object,
) -> Finding:
    """The finding of a repeated span, kept by the index (the rule, the span and the evidence
    fix everything but its calls); ``message`` makes its text when it is new."""
    index = session.duplicates
    key = ("finding", rule.code, span, tuple(evidence.items()))
    cached = index.cache.get(key)
    if isinstance(cached, Finding):
        return cached  # its calls may be old: see `Rule.memo_key`
    finding = _new_exact_finding(rule, session, span, message(), **evidence)
    index.cache[key] = finding
    return finding


def _copy_text(index: DuplicateIndex, span: ExactSpan, whole: bool) -> str:
    what = "exact copy" if whole else "exact repeated span"
    of = (
        "earlier text of the same part"
        if span.src_block == span.block
        else describe_block(index, span.src_block)
    )
    return f"{what} of {of} ({span.tokens:,} tokens)"


def _injection_text(index: DuplicateIndex, span: ExactSpan, copies: int) -> str:
    return (
        f"repeated injection: {span.tokens:,} tokens first seen in "
        f"{describe_block(index, span.src_block)} ({copies} copies in the session)"
    )


def _transcript_text(index: DuplicateIndex, span: ExactSpan, messages: int) -> str:
    return (
        f"duplicated transcript: {span.tokens:,} tokens repeating "
        f"{describe_block(index, span.src_block)} (part of a run over {messages} messages)"
    )


def _new_exact_finding(
    rule: Rule, session: Session, span: ExactSpan, message: str, **evidence: object
) -> Finding:
    index = session.duplicates
    loc = _span_loc(index, span.block, span.start, span.end)
    source = _span_loc(index, span.src_block, span.src_start, span.src_start + span.tokens)
    block = index.blocks[span.block]
    edit = _span_edit(session, span)
    edits = (edit,) if edit is not None else ()
    return rule.finding(
        message,
        loc=loc,
        source=source,
        similarity=1.0,
        tokens=span.tokens,
        calls=int(session.residency[block.message]),
        evidence={"source": describe_block(index, span.src_block), **evidence},
        edits=edits,
    )


class DuplicationOptions(RuleOptions):
    """Options shared by the duplication rules (set them under ``duplicates``)."""

    min_tokens: int = 32


@register
class ExactDuplicate(Rule):
    """An exact copy of text the context already carries.

    What it does:
        Finds every span of at least ``min_tokens`` tokens (32 by default) that repeats, token for
        token, text earlier in the context: a whole message or tool result sent twice, a file read
        twice, a tool output pasted into a later user message, a paragraph repeated inside one
        message. Spans that repeat three times or more as boilerplate are CTX103; runs of turns
        are CTX104.

    Why it costs:
        The copy is paid again on every later call that carries it, and it says nothing new.

    Example:
        The agent reads ``utils.py``, edits nothing, and reads it again: the second tool result
        is an exact copy of the first.

    Fix:
        Replace the copy with a short reference to the copy that stays
        (``[ctxtax: same as the tool result of call_02 (read_file) above]``). This edit is safe:
        no line is lost.

    Options:
        ``min_tokens`` (int, 32): shortest span reported, in tokens.
    """

    code = "CTX101"
    name = "exact-duplicate"
    Options = DuplicationOptions

    def memo_key(self, session: Session) -> Hashable:
        """See `classes_key`."""
        return classes_key(session)

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per repeated span."""
        index = session.duplicates
        # The finding of each span is kept by the index (its calls may be old: see `memo_key`).
        known: dict[ExactSpan, Finding] = index.cache.setdefault(("findings", self.code), {})
        for span in classify(session).exact:
            finding = known.get(span)
            if finding is None:
                whole = span.start == 0 and span.end == index.blocks[span.block].tokens
                finding = known[span] = _new_exact_finding(
                    self, session, span, _copy_text(index, span, whole), whole_part=whole
                )
            yield finding


class NearDuplicateOptions(RuleOptions):
    """Options of CTX102."""

    threshold: float = 0.8
    min_tokens: int = 64


@register
class NearDuplicate(Rule):
    """A near copy of an earlier block: the same text with a few lines changed.

    What it does:
        Finds tool results and messages of at least ``min_tokens`` tokens whose lines match an
        earlier block's with an aligned similarity of at least ``threshold`` (numbers folded, so
        the same log with other timestamps matches): a file re-read after a small edit, a test
        run repeated with one more test passing.

    Why it costs:
        Most of the later block repeats what the context already holds, on every later call.

    Example:
        ``pytest`` output read twice: identical except the summary line and the timings.

    Fix:
        Keep the earlier copy and reduce the later one to a reference plus the lines that
        differ. This loses the exact layout of the later block, so the edit is unsafe (applied
        only when asked).

    Options:
        ``threshold`` (float, 0.8): lowest similarity reported.
        ``min_tokens`` (int, 64): shortest block compared.
    """

    code = "CTX102"
    name = "near-duplicate"
    Options = NearDuplicateOptions

    def memo_key(self, session: Session) -> Hashable:
        """See `classes_key`."""
        return classes_key(session)

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per block that nearly repeats an earlier one."""
        index = session.duplicates
        threshold = float(getattr(self.options, "threshold", 0.8))
        near = classify(session).near
        # A kept index keeps the findings of the near copies, in order; the classifier only
        # adds near copies as the index grows, so the ones seen last time lead the list.
        seen, found = index.cache.get(("near-findings", self.code, threshold), ((), []))
        if not starts_with(near, seen):
            seen, found = (), []
        found = [*found, *(self._finding(session, index, c, threshold) for c in near[len(seen) :])]
        index.cache[("near-findings", self.code, threshold)] = (tuple(near), found)
        for finding in found:
            if finding is not None:
                yield finding  # its calls may be old: see `Rule.memo_key`

    def _finding(
        self, session: Session, index: DuplicateIndex, copy: NearCopy, threshold: float
    ) -> Finding | None:
        block = index.blocks[copy.block]
        src = index.blocks[copy.src_block]
        pair = copy.pair
        if pair is not None and pair.similarity < threshold:
            return None
        exact = sum(s.tokens for s in copy.spans)
        if pair is None:
            similarity = exact / block.tokens
            differing = None
        else:
            similarity = pair.similarity
            differing = pair.differing_lines
        wasted = exact if copy.spans else round(block.tokens * (pair.shared if pair else 0.0))
        if wasted <= 0:
            return None
        edits = [e for e in (_span_edit(session, span) for span in copy.spans) if e is not None]
        if pair is not None and block.kind != "tool_call":
            reduced = _near_edit(session, index, copy)
            if reduced is not None:
                edits.append(reduced)
        loc = _whole_loc(block)
        source = _whole_loc(src)
        if differing == 0:
            lines = ", equal but for numbers"
        elif differing is not None:
            lines = f", {differing} line(s) differ"
        else:
            lines = f", repeated in {len(copy.spans)} pieces"
        evidence: dict[str, object] = {
            "source": describe_block(index, copy.src_block),
            "exact_spans": len(copy.spans),
        }
        if differing is not None:
            evidence["differing_lines"] = differing
        return self.finding(
            f"near copy of {describe_block(index, copy.src_block)}: "
            f"{similarity:.0%} similar{lines}",
            loc=loc,
            source=source,
            similarity=round(similarity, 4),
            tokens=wasted,
            calls=int(session.residency[block.message]),
            evidence=evidence,
            edits=tuple(edits),
        )


class InjectionOptions(RuleOptions):
    """Options of CTX103."""

    min_repeats: int = 3


@register
class RepeatedInjection(Rule):
    """The same boilerplate injected again and again.

    What it does:
        Finds a block of text that appears ``min_repeats`` times or more (3 by default), each
        later copy inside or as a message: system reminders, re-injected instruction files
        (CLAUDE.md, AGENTS.md), startup banners, the same warning header before every long output.

    Why it costs:
        Every copy after the first is paid on every later call; injected boilerplate grows with
        the session and is never read again by the model.

    Example:
        An agent harness prepends the same 120-token "output was too long" warning to every
        truncated observation: 13 copies, 12 of them waste.

    Fix:
        Replace every copy after the first with a short reference to the first (safe), or stop
        the harness from injecting it more than once.

    Options:
        ``min_repeats`` (int, 3): copies needed (the first included) to call it an injection.
    """

    code = "CTX103"
    name = "repeated-injection"
    Options = InjectionOptions

    def memo_key(self, session: Session) -> Hashable:
        """See `classes_key`."""
        return classes_key(session)

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per repeated copy."""
        index = session.duplicates
        for span, copies in classify(session).injections:
            yield _exact_finding(
                self,
                session,
                span,
                partial(_injection_text, index, span, copies),
                copies=copies,
            )


class TranscriptOptions(RuleOptions):
    """Options of CTX104."""

    min_messages: int = 2


@register
class DuplicatedTranscript(Rule):
    """A run of turns repeated: the conversation, or a stretch of it, carried twice.

    What it does:
        Finds exact repeated spans whose sources walk forward through at least ``min_messages``
        consecutive earlier messages: turns replayed into the history, or a transcript pasted
        or echoed into a later message.

    Why it costs:
        The whole run is paid twice on every later call; transcripts are the largest duplicates.

    Example:
        A summary message that quotes the last four turns verbatim.

    Fix:
        Replace the repeated run with a reference to the turns it repeats (safe).

    Options:
        ``min_messages`` (int, 2): distinct earlier messages the run must walk through.
    """

    code = "CTX104"
    name = "duplicated-transcript"
    Options = TranscriptOptions

    def memo_key(self, session: Session) -> Hashable:
        """See `classes_key`."""
        return classes_key(session)

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per repeated span of the run."""
        index = session.duplicates
        for span, messages in classify(session).transcripts:
            yield _exact_finding(
                self,
                session,
                span,
                partial(_transcript_text, index, span, messages),
                run_messages=messages,
            )


__all__ = [
    "DuplicatedTranscript",
    "ExactDuplicate",
    "NearDuplicate",
    "RepeatedInjection",
    "classify",
]
