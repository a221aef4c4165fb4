"""The duplicate index: every block of context the session already carries, found once.

Blocks are the text-bearing parts of a context (text, reasoning, tool-call arguments, tool-result
text, documents), in message order, as token ids from the counter's cache.

- Exact repeats: k-gram hashes of token ids (k=16), winnowed (w=17, so any repeat of 32 tokens or
  more shares a fingerprint); the first occurrence of each fingerprint is kept in a `FirstSeen`
  table; a later fingerprint that hits it is verified and extended to the maximal repeated span.
- Near-duplicates: MinHash (64 permutations, datasketch's affine32 family) over winnowed 8-gram
  hashes of token ids with every all-digit token folded to one id (so a log with other timestamps
  still matches); LSH banding (16 bands x 4 rows) proposes earlier blocks; rapidfuzz verifies each
  pair on the aligned lines (numbers folded too) and measures the similarity.

The index grows: `DuplicateIndex.extend` processes only new blocks, so an auditor kept between
calls of a growing session pays for the new messages only. Kernels are in `ctxtax._accel`.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from ctxtax import _accel
from ctxtax._lsh import LshBuckets
from ctxtax._model import Call, Context, Message, PartKind
from ctxtax._prefix import starts_with
from ctxtax._session import from_start
from ctxtax._tokens import char_offsets

if TYPE_CHECKING:
    from ctxtax._tokens import TokenCounter
    from ctxtax.rules.base import Session

EXACT_K = 16
NEAR_K = 8
NEAR_W = 4
NUM_PERM = 64
BANDS = 16
ROWS = 4
NEAR_CANDIDATES = 8
NUMERIC_ID = np.uint32(0xFFFFFFFE)

_T = TypeVar("_T", bound=np.generic)

_TEXT_KINDS: frozenset[PartKind] = frozenset(
    {"text", "reasoning", "tool_call", "tool_result", "document", "other"}
)
_DIGITS = re.compile(r"\d+")
_SERIALS = itertools.count()


class Block(NamedTuple):
    """One text-bearing part: where it is and its global token range in the index.

    (A named tuple, not a frozen dataclass: an audit makes tens of thousands of blocks and
    spans, and a frozen dataclass's constructor costs two to three times as much.)"""

    message: int
    part: int
    kind: PartKind
    text: str
    lo: int
    hi: int
    tool_name: str | None = None
    tool_call_id: str | None = None
    role: str = "user"
    window: tuple[int, int] = (0, 0)

    @property
    def tokens(self) -> int:
        """Its length in tokens."""
        return self.hi - self.lo


class ExactSpan(NamedTuple):
    """``blocks[block]`` tokens [start, end) repeat ``blocks[src_block]`` from ``src_start``."""

    block: int
    start: int
    end: int
    src_block: int
    src_start: int

    @property
    def tokens(self) -> int:
        """Its length in tokens."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class NearPair:
    """``blocks[block]`` nearly repeats the earlier ``blocks[src_block]``.

    ``similarity`` is the aligned similarity of their lines (numbers folded), ``shared`` the
    fraction of the later block's characters on lines equal to a line of the earlier one.
    """

    block: int
    src_block: int
    similarity: float
    shared: float
    differing_lines: int


def blocks_of(
    ctx: Context, min_chars: int = 1, first: int = 0
) -> list[tuple[int, int, PartKind, str, str | None, str | None]]:
    """(message, part, kind, text, tool_name, tool_call_id) of every text-bearing part (of the
    messages from ``first`` on)."""
    out: list[tuple[int, int, PartKind, str, str | None, str | None]] = []
    messages = ctx.messages
    for i in range(first, len(messages)):
        for j, part in enumerate(messages[i].parts):
            if part.kind in _TEXT_KINDS and len(part.text) >= min_chars:
                out.append((i, j, part.kind, part.text, part.tool_name, part.tool_call_id))
    return out


def _lines(text: str) -> tuple[list[int], list[int]]:
    """Keys (digits folded) and lengths of a text's non-blank lines."""
    keys: list[int] = []
    lengths: list[int] = []
    # Folding the digits of the whole text at once keeps its lines (digits are no line breaks).
    for line, folded in zip(text.splitlines(), _DIGITS.sub("0", text).splitlines(), strict=True):
        stripped = line.strip()
        if stripped:
            keys.append(hash(folded.strip()))
            lengths.append(len(stripped) + 1)
    return keys, lengths


def call_windows(
    ctx: Context, calls: Sequence[Call] | None = None, first: int = 0
) -> list[tuple[int, int]]:
    """For each message from ``first`` on, the (start, head) of the first call window that
    carries it (``calls``: the context's model calls, when the caller has them already).

    A message no call carries (the tail of a log) belongs to the last window that starts
    before it.
    """
    calls = ctx.model_calls() if calls is None else calls
    if from_start(calls):  # no compaction: one window holds everything
        return [(0, 0)] * max(0, len(ctx.messages) - first)
    reach: dict[int, tuple[int, int]] = {}
    for call in calls:
        end, head = reach.get(call.start, (0, 0))
        reach[call.start] = (max(end, call.end), max(head, min(call.head, call.start)))
    windows = sorted((start, end, head) for start, (end, head) in reach.items())
    out: list[tuple[int, int]] = []
    for i in range(first, len(ctx.messages)):
        found = (0, 0)
        for start, end, head in windows:
            if start > i:
                break
            found = (start, head)
            if i < end:
                break
        out.append(found)
    return out


@dataclass
class DuplicateIndex:
    """Exact repeated spans and near-duplicate pairs over a growing list of blocks."""

    counter: TokenCounter
    min_tokens: int = 32
    near_min_tokens: int = 64
    near_threshold: float = 0.8
    blocks: list[Block] = field(default_factory=list)
    spans: list[ExactSpan] = field(default_factory=list)
    near: list[NearPair] = field(default_factory=list)
    _tokens: npt.NDArray[np.uint32] = field(default_factory=lambda: np.zeros(0, np.uint32))
    _block_of: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    _block_lo: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    _block_hi: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    _first_seen: _accel.FirstSeen = field(default_factory=lambda: _accel.FirstSeen(keep="last"))
    _sig_blocks: list[int] = field(default_factory=list)
    _buckets: LshBuckets = field(default_factory=lambda: LshBuckets(BANDS))
    _numeric: npt.NDArray[np.bool_] | None = None
    _offsets: dict[int, npt.NDArray[np.int64]] = field(default_factory=dict)
    _window: tuple[int, int] | None = None
    _lines_cache: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict)
    cache: dict[Any, Any] = field(default_factory=dict)
    """What the rules derive from the index, kept while the index lives (an Auditor's)."""
    _indexed: tuple[Message, ...] = ()
    serial: int = field(default_factory=lambda: next(_SERIALS))
    """Distinct for every index a process builds (unlike ``id``, never reused)."""

    @classmethod
    def build(cls, session: Session) -> DuplicateIndex:
        """The index of a session's context, with the rule options it carries."""
        index = cls.empty(session.counter, session.options.get("duplicates", {}))
        index.extend(session.context)
        return index

    @classmethod
    def empty(cls, counter: TokenCounter, options: dict[str, Any]) -> DuplicateIndex:
        """An empty index with the duplication options (``min_tokens`` and the near ones)."""
        return cls(
            counter=counter,
            min_tokens=int(options.get("min_tokens", 32)),
            near_min_tokens=int(options.get("near_min_tokens", 64)),
            near_threshold=float(options.get("near_threshold", 0.8)),
        )

    # -- growing ------------------------------------------------------------------------------

    @property
    def token_count(self) -> int:
        """How many tokens the index holds."""
        return len(self._tokens)

    def matches_prefix(self, ctx: Context) -> int:
        """How many of this index's blocks are, unchanged, the first blocks of ``ctx``."""
        if self._same_messages(ctx):
            return len(self.blocks)
        new = blocks_of(ctx)
        same = 0
        for old, (message, part, kind, text, _, _) in zip(self.blocks, new, strict=False):
            if (old.message, old.part, old.kind) != (message, part, kind) or old.text != text:
                break
            same += 1
        return same

    def _same_messages(self, ctx: Context) -> bool:
        """True when ``ctx`` starts with the very message objects indexed last."""
        return bool(self._indexed) and starts_with(ctx.messages, self._indexed)

    def extend(self, ctx: Context, calls: Sequence[Call] | None = None) -> int:
        """Index the blocks of ``ctx`` past the ones already indexed; return how many were new.

        ``ctx`` must start with the blocks already indexed (see `matches_prefix`). A block is
        only matched against text in its own call window: after a compaction the earlier history
        is out of reach (its pinned head, the system prompt, stays in). ``calls``: the
        context's model calls, when the caller has them.
        """
        if self._same_messages(ctx):  # only the messages past the ones indexed are read
            fresh = blocks_of(ctx, first=len(self._indexed))
        else:
            fresh = blocks_of(ctx)[len(self.blocks) :]
        self._indexed = ctx.messages
        if not fresh:
            return 0
        first_new = len(self.blocks)
        window_from = fresh[0][0]
        windows = call_windows(ctx, calls, first=window_from)
        ids = self.counter.encode_many([b[3] for b in fresh])
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        base = len(self._tokens)
        lo = base + np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        hi = lo + lengths
        for (message, part, kind, text, name, call_id), a, b in zip(fresh, lo, hi, strict=True):
            role = ctx.messages[message].role
            window = windows[message - window_from]
            self.blocks.append(
                Block(message, part, kind, text, int(a), int(b), name, call_id, role, window)
            )
        new_tokens = np.concatenate(ids) if ids else np.zeros(0, np.uint32)
        self._tokens = _appended(self._tokens, new_tokens.astype(np.uint32, copy=False))
        block_ids = np.repeat(np.arange(first_new, len(self.blocks), dtype=np.int32), lengths)
        self._block_of = _appended(self._block_of, block_ids)
        self._block_lo = np.concatenate((self._block_lo, lo))
        self._block_hi = np.concatenate((self._block_hi, hi))
        # Blocks in runs of one call window: a new window starts a new first-occurrence table.
        group_start = first_new
        for i in range(first_new, len(self.blocks) + 1):
            if i < len(self.blocks) and self.blocks[i].window == self.blocks[group_start].window:
                continue
            self._index_group(group_start, i)
            group_start = i
        return len(fresh)

    def _index_group(self, first: int, last: int) -> None:
        window = self.blocks[first].window
        if window != self._window:
            self._window = window
            self._first_seen = _accel.FirstSeen(keep="last")
            kept = [b for b in range(first) if self.visible(b, window)]
            if kept:
                self._fingerprint(kept, insert_only=True)
        self._fingerprint(list(range(first, last)))
        self._near(first, last)

    def visible(self, block: int, window: tuple[int, int]) -> bool:
        """True when ``block`` is inside a call window (start, head)."""
        message = self.blocks[block].message
        return message >= window[0] or message < window[1]

    def _fingerprint(self, blocks: list[int], *, insert_only: bool = False) -> None:
        """Winnowed k-gram fingerprints of ``blocks`` into the table; then find their repeats."""
        k = min(EXACT_K, max(2, self.min_tokens // 2))
        w = max(1, self.min_tokens - k + 1)
        # A block of fewer than k tokens has no k-gram: nothing of it goes into the table.
        lengths = self._block_hi[blocks] - self._block_lo[blocks]
        blocks = [b for b, n in zip(blocks, lengths.tolist(), strict=True) if n >= k]
        if not blocks:
            return
        tokens, offsets, starts = self._gather(blocks)
        hashes, h_off = _accel.kgram_hashes_many(tokens, offsets, k)
        selected, _ = _accel.winnow_many(hashes, h_off, w)
        if len(selected) == 0:
            return
        # The k-gram at index h of gathered block b starts at its first token + h - h_off[b].
        local = np.searchsorted(h_off, selected, side="right") - 1
        positions = (starts[local] + (selected - h_off[local])).astype(np.int64)
        prior = self._first_seen.lookup_insert(hashes[selected], positions)
        hit = prior >= 0
        if insert_only or not hit.any():
            return
        dup_lo, dup_hi, src_lo = _accel.extend_spans(
            self._tokens,
            self._block_of,
            self._block_lo,
            self._block_hi,
            positions[hit],
            prior[hit],
            k,
            self.min_tokens,
        )
        for a, b, s in zip(dup_lo.tolist(), dup_hi.tolist(), src_lo.tolist(), strict=True):
            bi = int(self._block_of[a])
            si = int(self._block_of[s])
            self.spans.append(
                ExactSpan(
                    bi,
                    a - int(self._block_lo[bi]),
                    b - int(self._block_lo[bi]),
                    si,
                    s - int(self._block_lo[si]),
                )
            )

    def _gather(
        self, blocks: list[int]
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The token ids of ``blocks`` back to back, their offsets, and their global starts."""
        starts = self._block_lo[blocks]
        ends = self._block_hi[blocks]
        lengths = ends - starts
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        if len(blocks) and blocks == list(range(blocks[0], blocks[-1] + 1)):
            tokens = self._tokens[starts[0] : ends[-1]]
        else:
            tokens = (
                np.concatenate([self._tokens[a:b] for a, b in zip(starts, ends, strict=True)])
                if blocks
                else np.zeros(0, np.uint32)
            )
        return tokens, offsets, starts.astype(np.int64)

    def _numeric_mask(self) -> npt.NDArray[np.bool_] | None:
        if self._numeric is None:
            table = getattr(self.counter, "numeric_tokens", None)
            self._numeric = table() if callable(table) else None
        return self._numeric

    def _near(self, first: int, last: int) -> None:
        lengths = self._block_hi[first:last] - self._block_lo[first:last]
        eligible = np.flatnonzero(lengths >= self.near_min_tokens)
        if len(eligible) == 0:
            return
        # Every block from first to last, eligible or not: a run of blocks is a view of the
        # index's tokens, where the eligible ones alone would be copied out.
        tokens, offsets, _ = self._gather(list(range(first, last)))
        a, b = _permutations()
        _, keys = _accel.near_keys(
            tokens,
            offsets[eligible],
            offsets[eligible + 1],
            self._numeric_mask(),
            int(NUMERIC_ID),
            NEAR_K,
            NEAR_W,
            a,
            b,
            BANDS,
            ROWS,
        )
        self._sig_blocks.extend(int(first + e) for e in eligible)
        pairs = self._buckets.add(keys, NEAR_CANDIDATES)
        best: dict[int, tuple[int, float, float, int]] = {}
        for i, j in pairs:
            src, dup = self._sig_blocks[i], self._sig_blocks[j]
            if not self.visible(src, self.blocks[dup].window):
                continue
            found = self._verify(src, dup)
            if found is not None and found[0] >= self.near_threshold:
                prev = best.get(dup)
                if prev is None or found[0] > prev[1]:
                    best[dup] = (src, *found)
        for dup in sorted(best):
            src, similarity, shared, differing = best[dup]
            self.near.append(NearPair(dup, src, similarity, shared, differing))

    def _block_lines(self, block: int) -> tuple[list[int], list[int]]:
        lines = self._lines_cache.get(block)
        if lines is None:
            lines = self._lines_cache[block] = _lines(self.blocks[block].text)
        return lines

    def _verify(self, src: int, dup: int) -> tuple[float, float, int] | None:
        """(similarity, shared fraction, differing lines) of two blocks, aligned by line.

        Lines are compared with digits folded; the similarity weighs each aligned line by its
        length (a paragraph counts more than a brace), and ``shared`` is the fraction of the later
        block's characters on lines equal to the earlier block's. Blocks of fewer than three
        lines are not compared: one-line records (JSON) share their keys and little else.
        """
        from rapidfuzz.distance import Indel

        a_keys, a_lens = self._block_lines(src)
        b_keys, b_lens = self._block_lines(dup)
        if min(len(a_keys), len(b_keys)) < 3:
            return None
        if Indel.normalized_similarity(a_keys, b_keys) < self.near_threshold / 2:
            return None
        equal_a = equal_b = differing = 0
        for op in Indel.opcodes(a_keys, b_keys):
            if op.tag == "equal":
                equal_a += sum(a_lens[op.src_start : op.src_end])
                equal_b += sum(b_lens[op.dest_start : op.dest_end])
            elif op.tag in ("insert", "replace"):
                differing += op.dest_end - op.dest_start
        total_a, total_b = sum(a_lens), sum(b_lens)
        similarity = (equal_a + equal_b) / (total_a + total_b) if total_a + total_b else 0.0
        return similarity, equal_b / total_b if total_b else 0.0, differing

    # -- reading ------------------------------------------------------------------------------

    def block_ids(self, block: int) -> npt.NDArray[np.uint32]:
        """The token ids of a block."""
        b = self.blocks[block]
        return self._tokens[b.lo : b.hi]

    def char_range(self, block: int, start: int, end: int) -> tuple[int, int]:
        """Character offsets in the block's text of its tokens [start, end)."""
        b = self.blocks[block]
        if start <= 0 and end >= b.tokens:
            return 0, len(b.text)
        offsets = self._char_offsets(block)
        if offsets is None:
            return _decoded_range(self.counter, self.block_ids(block), start, end)
        return int(offsets[start]), int(offsets[end])

    def boundaries_within(
        self, block: int, first: int, last: int, char_start: int, char_end: int
    ) -> tuple[int, int]:
        """Of a block's token boundaries ``first .. last`` (a boundary is where a token starts,
        or the block's end): the first at or after character ``char_start``, and the last at or
        before ``char_end``."""
        offsets = self._char_offsets(block) if self.blocks[block].tokens else None
        if offsets is not None:
            seg = offsets[first : last + 1]
            lo = int(np.searchsorted(seg, char_start, side="left"))
            hi = int(np.searchsorted(seg, char_end, side="right")) - 1
            return first + lo, first + hi

        def char_at(token: int) -> int:
            return self.char_range(block, token, token)[0]

        bounds = range(first, last + 1)
        return (
            bounds[bisect_left(bounds, char_start, key=char_at)],
            bounds[bisect_right(bounds, char_end, key=char_at) - 1],
        )

    def _char_offsets(self, block: int) -> npt.NDArray[np.int64] | None:
        """The character offset at which each token of a block starts (and its end), cached."""
        cached = self._offsets.get(block)
        if cached is not None:
            return cached
        offsets = char_offsets(self.counter, self.block_ids(block), self.blocks[block].text)
        if offsets is None:
            return None
        self._offsets[block] = offsets
        return offsets


def _decoded_range(
    counter: TokenCounter, ids: npt.NDArray[np.uint32], start: int, end: int
) -> tuple[int, int]:
    decode = getattr(counter, "decode", None)
    if not callable(decode):
        return 0, 0
    head = len(decode(ids[:start].tolist()))
    return head, head + len(decode(ids[start:end].tolist()))


def _appended(array: npt.NDArray[_T], more: npt.NDArray[_T]) -> npt.NDArray[_T]:
    """``array`` with ``more`` after it, as a view of a buffer with room to grow: a growing
    index appends a message's tokens without copying every token it holds. (Earlier views stay
    as they were: only the space past them is written.)"""
    n = len(array)
    base = array.base if isinstance(array.base, np.ndarray) else array
    if n + len(more) > len(base) or base[:n].ctypes.data != array.ctypes.data:
        base = np.empty(max(2 * (n + len(more)), 1024), dtype=array.dtype)
        base[:n] = array
    base[n : n + len(more)] = more
    return base[: n + len(more)]


@cache
def _permutations() -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    return _accel.permutations(NUM_PERM, seed=1)


__all__ = ["Block", "DuplicateIndex", "ExactSpan", "NearPair", "blocks_of"]
