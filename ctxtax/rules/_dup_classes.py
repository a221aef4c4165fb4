"""Which rule reports each repeated span: CTX101 copies, CTX102 near copies, CTX103 injections,
CTX104 transcripts, decided by a `Classifier` that an index keeps as it grows.

The decisions, in order:

1. every visible exact span is pointed at the copy that stays (`_first_copy`);
2. blocks nearly repeating an earlier one, with the exact spans they share, are near copies;
3. the other spans are walked in order: runs whose sources walk forward through earlier turns
   are transcripts;
4. the rest are grouped by the text they copy; a group with enough copies of harness text is
   injections, any other member a plain copy.

The index only ever adds spans and near pairs in its new blocks, so each step can be extended:
old spans keep where they point; old blocks keep their near copies; runs closed before stay
closed (only the last one may grow); and only the groups of the sources a new or re-labelled
span copies are grouped again. `classify` of a grown index gives what a fresh one would (a test
compares them at every step of real sessions).
"""

from __future__ import annotations

import hashlib
import weakref
from bisect import bisect_right, insort
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from ctxtax._dupes import DuplicateIndex, ExactSpan, NearPair


@dataclass(frozen=True, slots=True)
class NearCopy:
    """A block that nearly repeats an earlier one: the exact spans they share, and the pair."""

    block: int
    src_block: int
    spans: tuple[ExactSpan, ...]
    pair: NearPair | None


@dataclass(frozen=True, slots=True)
class Classified:
    """The exact spans of a session, split by the rule that reports them."""

    exact: list[ExactSpan]
    injections: list[tuple[ExactSpan, int]]
    transcripts: list[tuple[ExactSpan, int]]
    near: list[NearCopy]


def _content_key(index: DuplicateIndex, span: ExactSpan) -> bytes:
    return hashlib.blake2b(
        index.block_ids(span.block)[span.start : span.end].tobytes(), digest_size=16
    ).digest()


class Classifier:
    """`Classified` of a growing `DuplicateIndex`, extended with its new spans and pairs."""

    def __init__(self, index: DuplicateIndex, min_repeats: int, min_messages: int) -> None:
        # The index keeps its classifier (in ``index.cache``): a strong reference back would
        # make the pair a cycle, and every audit's index, spans and findings would wait for the
        # cycle collector (about 130 MB after each audit of the bench corpus).
        self._index = weakref.ref(index)
        self.min_repeats = min_repeats
        self.min_messages = min_messages
        self.reset()

    @property
    def index(self) -> DuplicateIndex:
        """The index classified (alive while anyone can call this: it holds the classifier)."""
        index = self._index()
        if index is None:  # only the index holds a classifier
            raise RuntimeError("the DuplicateIndex of this Classifier is gone")
        return index

    def reset(self) -> None:
        """Forget everything: the next `update` classifies the whole index."""
        self._spans_seen = 0
        self._near_seen = 0
        self._blocks_seen = 0
        self._holders: dict[int, list[ExactSpan]] = defaultdict(list)
        self._holder_starts: dict[int, list[int]] = defaultdict(list)
        self._sizes: dict[int, int] = defaultdict(int)
        self._near: list[NearCopy] = []
        self._spans: list[ExactSpan] = []
        self._closed: dict[int, int] = {}
        self._run: list[int] = []
        self._open: dict[int, int] = {}
        self._by_source: dict[int, list[int]] = defaultdict(list)
        self._decided: dict[int, tuple[list[ExactSpan], list[tuple[ExactSpan, int]]]] = {}
        self.result = Classified([], [], [], [])

    def update(self) -> Classified:
        """Classify what the index found since the last update."""
        index = self.index
        new_spans = index.spans[self._spans_seen :]
        new_pairs = index.near[self._near_seen :]
        touched = {s.block for s in new_spans} | {p.block for p in new_pairs}
        if touched and min(touched) < self._blocks_seen:
            self.reset()  # a repeat found in an old block: not the growth this class extends
            return self.update()
        for block in index.blocks[self._blocks_seen :]:
            self._sizes[block.message] += block.tokens
        self._blocks_seen = len(index.blocks)
        if not new_spans and not new_pairs:
            return self.result
        self._spans_seen = len(index.spans)
        self._near_seen = len(index.near)

        visible = [s for s in new_spans if index.visible(s.src_block, index.blocks[s.block].window)]
        for span in visible:
            at = bisect_right(self._holder_starts[span.block], span.start)
            self._holder_starts[span.block].insert(at, span.start)
            self._holders[span.block].insert(at, span)
        mapped = [self._first_copy(span) for span in visible]
        near, in_near = self._near_copies(mapped, new_pairs)
        self._near.extend(near)
        first_new = len(self._spans)
        self._spans.extend(s for s in mapped if (s.block, s.start) not in in_near)
        dirty = self._extend_runs(first_new)
        for src in sorted(dirty):
            self._decided[src] = self._decide(self._by_source.get(src, []))
        exact = sorted(
            (s for spans, _ in self._decided.values() for s in spans),
            key=lambda s: (s.block, s.start),
        )
        injections = sorted(
            (i for _, found in self._decided.values() for i in found),
            key=lambda item: (item[0].block, item[0].start),
        )
        chains = {**self._closed, **self._open}
        transcripts = [(self._spans[p], n) for p, n in sorted(chains.items())]
        self.result = Classified(exact, injections, transcripts, list(self._near))
        return self.result

    # -- 1. the copy that stays ---------------------------------------------------------------

    def _first_copy(self, span: ExactSpan) -> ExactSpan:
        """Point a span at the copy that stays: a source inside another span's copy is moved to
        that span's own source (the matcher finds the latest earlier copy, which may be a copy).

        A source may stick out of that copy by a few tokens at its edges, where the text next to
        two copies of a boilerplate happens to agree (``"Log it.\\n<reminder>"`` and ``"Ship
        it.\\n<reminder>"`` share `` it.\\n``): the span is clipped to the copy when what sticks
        out is shorter than ``min_tokens``, too short to report on its own. The copies found in
        one block never overlap, so the copy holding a source is found by bisecting by start.
        """
        min_tokens = self.index.min_tokens
        current = span
        for _ in range(8):  # chains are short; the bound guards against cycles
            holders = self._holders.get(current.src_block)
            if not holders:
                break
            src_end = current.src_start + current.tokens
            at = bisect_right(self._holder_starts[current.src_block], src_end - 1) - 1
            outer = holders[at] if at >= 0 else None
            if outer is None or outer == current:
                break
            lo, hi = max(current.src_start, outer.start), min(src_end, outer.end)
            if hi - lo < min_tokens or current.tokens - (hi - lo) >= min_tokens:
                break
            shift = lo - current.src_start
            current = ExactSpan(
                current.block,
                current.start + shift,
                current.start + shift + (hi - lo),
                outer.src_block,
                outer.src_start + (lo - outer.start),
            )
        return current

    # -- 2. near copies -----------------------------------------------------------------------

    def _near_copies(
        self, spans: list[ExactSpan], pairs_found: Iterable[NearPair]
    ) -> tuple[list[NearCopy], set[tuple[int, int]]]:
        """Near copies among new blocks: a verified near pair, with the exact spans the two
        blocks share. A block that is an exact copy but for a few lines shows as several exact
        spans from one source block; they are reported once, by CTX102, with their safe edits.
        """
        index = self.index
        pairs = {(p.block, p.src_block): p for p in pairs_found}
        shared: dict[tuple[int, int], list[ExactSpan]] = defaultdict(list)
        covered: dict[int, int] = defaultdict(int)
        for span in spans:
            shared[(span.block, span.src_block)].append(span)
            covered[span.block] += span.tokens
        copies: list[NearCopy] = []
        members: set[tuple[int, int]] = set()
        for key in sorted(set(pairs) | {k for k, v in shared.items() if len(v) >= 2}):
            block, src = key
            found = shared.get(key, [])
            pair = pairs.get(key)
            if block == src or not index.visible(src, index.blocks[block].window):
                continue  # a part repeating itself is CTX101 ("earlier text of the same part")
            # One span reproducing its source whole is an exact copy (CTX101), pasted or not; a
            # near copy is verified text with no exact span, the source repeated with gaps
            # (several spans), or one span and an edit near an end of the source.
            if len(found) == 1 and (
                pair is None or found[0].tokens >= 0.98 * index.blocks[src].tokens
            ):
                continue
            tokens = index.blocks[block].tokens
            if pair is None and sum(s.tokens for s in found) < index.near_threshold * tokens:
                continue
            if not found and covered[block] >= 0.5 * tokens:
                continue  # exact copies of other blocks already account for it
            copies.append(NearCopy(block, src, tuple(found), pair))
            members.update((s.block, s.start) for s in found)
        return copies, members

    # -- 3. transcripts -----------------------------------------------------------------------

    def _extend_runs(self, first_new: int) -> set[int]:
        """Walk the spans from ``first_new`` on, continuing the open run; return the sources
        whose groups changed (new free spans, or spans that joined or left a transcript)."""
        index, spans = self.index, self._spans
        before = set(self._open)
        closed_before = len(self._closed)
        for position in range(first_new, len(spans)):
            span = spans[position]
            source = index.blocks[span.src_block].message
            copy = index.blocks[span.block].message
            if self._run:
                last = spans[self._run[-1]]
                last_source = index.blocks[last.src_block].message
                last_copy = index.blocks[last.block].message
                if (
                    0 <= source - last_source <= 2
                    and copy >= last_copy
                    and source < copy
                    and last_source < copy
                ):
                    self._run.append(position)
                    continue
                self._closed.update(self._chain(self._run))
            self._run = [position]
        self._open = self._chain(self._run)
        chained = set(self._closed) | set(self._open)
        free_new = [p for p in range(first_new, len(spans)) if p not in chained]
        # Old spans of the run that was open: chained before and not now, or the other way.
        left = {p for p in before if p not in chained}
        joined = {
            p
            for p in list(self._closed)[closed_before:] + list(self._open)
            if p < first_new and p not in before
        }
        dirty: set[int] = set()
        for p in left:
            insort(self._by_source[spans[p].src_block], p)
            dirty.add(spans[p].src_block)
        for p in joined:
            self._by_source[spans[p].src_block].remove(p)
            dirty.add(spans[p].src_block)
        for p in free_new:
            self._by_source[spans[p].src_block].append(p)
            dirty.add(spans[p].src_block)
        return dirty

    def _chain(self, run: list[int]) -> dict[int, int]:
        """The run's spans and the messages it walks through, when it is a duplicated run of
        turns: its sources walk forward through at least ``min_messages`` distinct earlier
        messages, a step of at most two at a time, while the copies also move forward, and it
        reproduces each of those earlier parts nearly whole (70 % of its tokens)."""
        if not run:
            return {}
        index, spans = self.index, self._spans
        reproduced: dict[int, int] = defaultdict(int)
        for position in run:
            reproduced[spans[position].src_block] += spans[position].tokens
        whole = [b for b, n in reproduced.items() if n >= 0.7 * index.blocks[b].tokens]
        messages = {index.blocks[b].message for b in whole}
        copies = {index.blocks[spans[p].block].message for p in run}
        distinct = len({_content_key(index, spans[p]) for p in run}) == len(run)
        # The turns must be a contiguous stretch: every message between the first and the last
        # source with text of its own is reproduced too. Two unrelated copies (a pasted log and
        # a re-read file) with an unrepeated turn between them are two copies, not a transcript.
        contiguous = bool(messages) and all(
            m in messages or self._sizes.get(m, 0) < index.min_tokens
            for m in range(min(messages), max(messages) + 1)
        )
        # Echoed into one message (a summary quoting the turns), or replayed turn for turn with
        # their roles (a tool output pasted by the user is a copy, not a replayed turn).
        echoed = len({spans[p].block for p in run}) == 1
        replayed = all(
            index.blocks[spans[p].block].role == index.blocks[spans[p].src_block].role for p in run
        )
        # A chain of copies of one text (each copy the source of the next) is an injection,
        # not a run of turns: the turns of a transcript are different texts.
        if (
            len(messages) >= self.min_messages
            and len(whole) == len(reproduced)
            and distinct
            and contiguous
            and (echoed or replayed)
            and not messages & copies
        ):
            return dict.fromkeys(run, len(messages))
        return {}

    # -- 4. injections and plain copies -------------------------------------------------------

    def _decide(self, positions: list[int]) -> tuple[list[ExactSpan], list[tuple[ExactSpan, int]]]:
        """Plain copies and injections among the free spans copying one source block."""
        index, spans = self.index, self._spans
        exact: list[ExactSpan] = []
        injections: list[tuple[ExactSpan, int]] = []
        for members in _source_groups(spans, positions):
            copies = len(members) + 1
            messages = {index.blocks[spans[p].block].message for p in members}
            messages.add(index.blocks[spans[members[0]].src_block].message)
            for position in members:
                # Every copy already refers to the first one, the copy that stays.
                span = spans[position]
                block = index.blocks[span.block]
                whole_tool = (
                    block.kind in ("tool_result", "tool_call")
                    and span.start == 0
                    and span.end == block.tokens
                )
                # Boilerplate is injected by the harness; text the model wrote again is a copy.
                injected = block.role != "assistant"
                if len(messages) >= self.min_repeats and not whole_tool and injected:
                    injections.append((span, copies))
                else:
                    exact.append(span)
        return exact, injections


def _source_groups(spans: list[ExactSpan], positions: list[int]) -> list[list[int]]:
    """Positions (of spans copying one source block) that copy the same text: source ranges
    that overlap by most of the shorter one (copies of one boilerplate can differ by a token at
    their edges, so equal token content would split them)."""
    ordered = sorted(positions, key=lambda p: (spans[p].src_start, -spans[p].tokens, p))
    groups: list[list[int]] = []
    current: list[int] = []
    lo = hi = 0
    for p in ordered:
        a, b = spans[p].src_start, spans[p].src_start + spans[p].tokens
        if current and min(b, hi) - max(a, lo) >= 0.8 * min(b - a, hi - lo):
            lo, hi = min(lo, a), max(hi, b)
            current.append(p)
            continue
        if current:
            groups.append(sorted(current))
        current, lo, hi = [p], a, b
    if current:
        groups.append(sorted(current))
    return groups


__all__ = ["Classified", "Classifier", "NearCopy"]
