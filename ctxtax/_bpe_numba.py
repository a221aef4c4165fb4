"""The numba kernels behind `ctxtax._fast_bpe`; import this module only through it.

tiktoken's ``cl100k_base`` encoding, done over UTF-8 bytes: its split pattern

    '(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+
    | ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+|\\s++$|\\s*[\\r\\n]|\\s+(?!\\S)|\\s

written out as the branches a backtracking matcher takes (each alternative in order, first match
wins), then for each piece its id when the vocabulary holds it, else tiktoken's merges (the
adjacent pair of lowest rank first, the leftmost of equal ones). What a code point is (letter,
number, white space, other) comes from a table `ctxtax._fast_bpe` fills; a code point it could
not vouch for stops the text, which is then left to tiktoken.
"""

# Numba types these kernels from their arguments at the first call; the `_fast_bpe` wrappers
# carry the typed signatures.
# mypy: allow-untyped-defs

from __future__ import annotations

import numpy as np
from numba import njit

# The engine's mixing constants (the golden ratio and splitmix64's two multipliers).
from ctxtax._accel_numba import _SM1 as _M2
from ctxtax._accel_numba import _SM2 as _M3
from ctxtax._accel_numba import KGRAM_MUL as _M1

OTHER = 0
LETTER = 1
NUMBER = 2
SPACE = 3
UNSAFE = 4
UNKNOWN = 255
"""Classes of a code point in the class table (shared with `_fast_bpe`, a test pins them)."""

OK = 0
STOPPED_CLASS = 1
STOPPED_PIECE = 2
"""A text's status: encoded; stopped at a code point of class UNSAFE or UNKNOWN; stopped at a
piece longer than the merge limit."""

_NO_RANK = np.int64(1 << 40)
_HASH_SHIFT = np.uint64(25)
_ID_SHIFT = np.uint64(8)
_LEN_MASK = np.uint64(0xFF)
_ID_MASK = np.uint64(0x1FFFF)
MAX_ID = (1 << 17) - 1
MAX_TOKEN_BYTES = 255
"""A table slot packs the top 39 bits of the hash, a 17-bit id and an 8-bit length."""


@njit(cache=True, nogil=True, inline="always")
def _word(data, a, b):
    """Bytes data[a:min(b, a + 8)] as a little-endian uint64 (zero-padded)."""
    w = np.uint64(0)
    n = min(b - a, 8)
    for k in range(n):
        w |= np.uint64(data[a + k]) << np.uint64(8 * k)
    return w


@njit(cache=True, nogil=True)
def _hash(data, a, b, first):
    """A 64-bit hash of data[a:b] whose first word is ``first`` (`_word` of it)."""
    h = (np.uint64(b - a) * _M1) ^ first
    h *= _M2
    k = a + 8
    while k < b:
        h ^= _word(data, k, b)
        h ^= h >> np.uint64(29)
        h *= _M2
        k += 8
    h ^= h >> np.uint64(32)
    h *= _M3
    return h ^ (h >> np.uint64(29))


@njit(cache=True, nogil=True)
def build_table(tok_bytes, tok_off, ids, bits):
    """An open-addressing table of the vocabulary: per slot, [packed hash, id and length; the
    first 8 bytes] (0 in an empty slot). Token ``j``'s bytes are
    ``tok_bytes[tok_off[j]:tok_off[j + 1]]``; ``pairs[b0 << 8 | b1]`` is the id of the two
    bytes b0 b1 (or -1)."""
    size = 1 << bits
    mask = np.uint64(size - 1)
    table = np.zeros((size, 2), np.uint64)
    pairs = np.full(1 << 16, -1, np.int64)
    for j in range(len(ids)):
        a = tok_off[j]
        b = tok_off[j + 1]
        first = _word(tok_bytes, a, b)
        h = _hash(tok_bytes, a, b, first)
        s = h & mask
        while table[s, 0] != 0:
            s = (s + np.uint64(1)) & mask
        high = (h >> _HASH_SHIFT) << _HASH_SHIFT
        table[s, 0] = high | (np.uint64(ids[j]) << _ID_SHIFT) | np.uint64(b - a)
        table[s, 1] = first
        if b - a == 2:
            pairs[(np.int64(tok_bytes[a]) << 8) | np.int64(tok_bytes[a + 1])] = ids[j]
    return table, pairs


@njit(cache=True, nogil=True)
def _rank(data, a, b, tok_bytes, tok_off, table):
    """The id of the bytes data[a:b], or _NO_RANK when the vocabulary lacks them."""
    first = _word(data, a, b)
    return _lookup(data, a, b, first, _hash(data, a, b, first), tok_bytes, tok_off, table)


@njit(cache=True, nogil=True)
def _lookup(data, a, b, first, h, tok_bytes, tok_off, table):
    """`_rank` of data[a:b] whose `_word` and `_hash` are ``first`` and ``h``."""
    n = b - a
    mask = np.uint64(len(table) - 1)
    s = h & mask
    want = (h >> _HASH_SHIFT) << _HASH_SHIFT
    length = np.uint64(n)
    while True:
        w = table[s, 0]
        if w == 0:
            return _NO_RANK
        same_hash = ((w >> _HASH_SHIFT) << _HASH_SHIFT) == want
        if (w & _LEN_MASK) == length and same_hash and table[s, 1] == first:
            j = np.int64((w >> _ID_SHIFT) & _ID_MASK)
            if n <= 8:
                return j
            lo = tok_off[j]
            same = True
            for k in range(8, n):
                if tok_bytes[lo + k] != data[a + k]:
                    same = False
                    break
            if same:
                return j
        s = (s + np.uint64(1)) & mask


@njit(cache=True, nogil=True)
def _code_point(data, i):
    """(code point, its byte length) of the UTF-8 sequence at ``data[i]`` (valid UTF-8)."""
    b0 = np.int64(data[i])
    if b0 < 0x80:
        return b0, 1
    if b0 < 0xE0:
        return ((b0 & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F), 2
    if b0 < 0xF0:
        return (
            ((b0 & 0x0F) << 12)
            | ((np.int64(data[i + 1]) & 0x3F) << 6)
            | (np.int64(data[i + 2]) & 0x3F)
        ), 3
    return (
        ((b0 & 0x07) << 18)
        | ((np.int64(data[i + 1]) & 0x3F) << 12)
        | ((np.int64(data[i + 2]) & 0x3F) << 6)
        | (np.int64(data[i + 3]) & 0x3F)
    ), 4


@njit(cache=True, nogil=True)
def unknown_code_points(data, classes):
    """Every non-ASCII code point in ``data`` whose class is still UNKNOWN (with repeats)."""
    out = np.empty(0, np.int64)
    found = []
    i = 0
    n = len(data)
    while i < n:
        if data[i] < 0x80:
            i += 1
            continue
        cp, w = _code_point(data, i)
        if classes[cp] == UNKNOWN:
            found.append(cp)
        i += w
    if len(found) > 0:
        out = np.empty(len(found), np.int64)
        for k in range(len(found)):
            out[k] = found[k]
    return out


@njit(cache=True, nogil=True)
def _class_at(data, i, hi, classes):
    """(class, code point, byte length) at ``i``; (-1, -1, 0) past ``hi``."""
    if i >= hi:
        return -1, np.int64(-1), 0
    cp, w = _code_point(data, i)
    return np.int64(classes[cp]), cp, w


@njit(cache=True, nogil=True)
def _is_s(cp):
    """Whether ``cp`` is one of [sdmt] under (?i): ASCII either case, or the long s (it folds
    to s)."""
    lower = cp | 32 if cp < 128 else cp
    return lower in (115, 100, 109, 116) or cp == 0x17F


@njit(cache=True, nogil=True)
def _run_end(data, j, hi, classes, kind):
    """Where the run of code points of class ``kind`` from byte ``j`` ends; -1 at an UNSAFE or
    UNKNOWN code point on the way."""
    while True:
        cj, _, wj = _class_at(data, j, hi, classes)
        if cj >= UNSAFE:
            return -1
        if cj != kind:
            return j
        j += wj


@njit(cache=True, nogil=True)
def _piece_end(data, i, hi, classes):
    """The end of the split pattern's piece that starts at byte ``i`` (< hi), or -1 when a code
    point on the way is UNSAFE or UNKNOWN."""
    c, cp, w = _class_at(data, i, hi, classes)
    if c >= UNSAFE:
        return -1
    c1, cp1, w1 = _class_at(data, i + w, hi, classes)
    if c1 >= UNSAFE:
        return -1
    # '(?i:[sdmt]|ll|ve|re)
    if cp == 39 and c1 >= 0:
        if _is_s(cp1):
            return i + w + w1
        c2, cp2, w2 = _class_at(data, i + w + w1, hi, classes)
        if c2 >= UNSAFE:
            return -1
        lo1 = cp1 | 32 if cp1 < 128 else cp1
        lo2 = cp2 | 32 if 0 <= cp2 < 128 else cp2
        if (lo1 == 108 and lo2 == 108) or (lo1 in (118, 114) and lo2 == 101):
            return i + w + w1 + w2
    # [^\r\n\p{L}\p{N}]?+\p{L}++
    j = -1
    if c == LETTER:
        j = i + w
    elif cp not in (13, 10) and c != NUMBER and c1 == LETTER:
        j = i + w + w1
    if j >= 0:
        return _run_end(data, j, hi, classes, LETTER)
    # \p{N}{1,3}+
    if c == NUMBER:
        j = i + w
        if c1 == NUMBER:
            j += w1
            c2, cp2, w2 = _class_at(data, j, hi, classes)
            if c2 >= UNSAFE:
                return -1
            if c2 == NUMBER:
                j += w2
        return j
    #  ?[^\s\p{L}\p{N}]++[\r\n]*+
    j = -1
    if c == OTHER:
        j = i + w
    elif cp == 32 and c1 == OTHER:
        j = i + w + w1
    if j >= 0:
        j = _run_end(data, j, hi, classes, OTHER)
        if j < 0:
            return -1
        while j < hi and (data[j] == 13 or data[j] == 10):
            j += 1
        return j
    # c is SPACE: the run of white space from i
    r = i
    last_newline = -1
    last_start = i
    count = 0
    while True:
        cr, cpr, wr = _class_at(data, r, hi, classes)
        if cr >= UNSAFE:
            return -1
        if cr != SPACE:
            break
        if cpr in (13, 10):
            last_newline = r
        last_start = r
        count += 1
        r += wr
    if r >= hi:
        return r  # \s++$
    if last_newline >= 0:
        return last_newline + 1  # \s*[\r\n]
    if count >= 2:
        return last_start  # \s+(?!\S)
    return i + w  # \s


@njit(cache=True, nogil=True)
def _merge_into(data, a, b, tok_bytes, tok_off, table, pairs, singles, out, at, pos, ranks):
    """tiktoken's byte-pair merge of data[a:b] (not itself in the vocabulary): write the ids to
    out[at:] and return how many. ``pos`` and ``ranks`` are scratch of at least b - a + 1."""
    m = b - a
    for k in range(m + 1):
        pos[k] = a + k
    for k in range(m - 1):
        r = pairs[(np.int64(data[a + k]) << 8) | np.int64(data[a + k + 1])]
        ranks[k] = r if r >= 0 else _NO_RANK
    ranks[m - 1] = _NO_RANK
    ranks[m] = _NO_RANK
    n = m + 1  # entries in pos (the last is the end)
    while True:
        best = _NO_RANK
        at_best = -1
        for k in range(n - 1):
            if ranks[k] < best:
                best = ranks[k]
                at_best = k
        if at_best < 0:
            break
        i = at_best
        # tiktoken's order: the ranks around the merged pair first, then part i + 1 removed
        if i > 0:
            ranks[i - 1] = (
                _rank(data, pos[i - 1], pos[i + 2], tok_bytes, tok_off, table)
                if i + 2 < n
                else _NO_RANK
            )
        ranks[i] = (
            _rank(data, pos[i], pos[i + 3], tok_bytes, tok_off, table) if i + 3 < n else _NO_RANK
        )
        for k in range(i + 1, n - 1):
            pos[k] = pos[k + 1]
            ranks[k] = ranks[k + 1]
        n -= 1
    for k in range(n - 1):
        if pos[k + 1] - pos[k] == 1:
            out[at + k] = np.uint32(singles[data[pos[k]]])
        else:
            out[at + k] = _rank(data, pos[k], pos[k + 1], tok_bytes, tok_off, table)
    return n - 1


@njit(cache=True, nogil=True)
def _same(data, a, b, n):
    """Whether data[a:a + n] equals data[b:b + n]."""
    k = 0
    while k < n and data[a + k] == data[b + k]:
        k += 1
    return k == n


@njit(cache=True, nogil=True)
def encode_many(data, offsets, classes, tok_bytes, tok_off, table, pairs, singles, max_piece):
    """The ids of each text ``data[offsets[t]:offsets[t + 1]]`` (UTF-8), all in one array:
    returns (ids, start and end of each text's ids, status per text). A text whose status is
    not OK has an empty range. ``singles[b]`` is the id of byte b.

    A piece the vocabulary lacks is merged once per call: later copies of it copy the ids the
    first one got (a memo keyed by the piece's bytes)."""
    texts = len(offsets) - 1
    out = np.empty(max(len(data), 1), np.uint32)
    starts = np.zeros(texts, np.int64)
    ends = np.zeros(texts, np.int64)
    status = np.zeros(texts, np.int8)
    pos = np.empty(max_piece + 1, np.int64)
    ranks = np.empty(max_piece + 1, np.int64)
    bits = 10
    while (1 << bits) < len(data) // 16 and bits < 22:
        bits += 1
    memo_mask = np.uint64((1 << bits) - 1)
    memo_room = (1 << bits) // 2
    memo_hash = np.zeros(1 << bits, np.uint64)
    memo_src = np.full(1 << bits, -1, np.int64)  # where the piece's bytes are in data
    memo_len = np.zeros(1 << bits, np.int64)
    memo_out = np.zeros(1 << bits, np.int64)  # where its ids are in out
    memo_count = np.zeros(1 << bits, np.int64)
    at = 0
    for t in range(texts):
        hi = offsets[t + 1]
        starts[t] = at
        i = offsets[t]
        while i < hi:
            j = _piece_end(data, i, hi, classes)
            if j < 0:
                status[t] = STOPPED_CLASS
                break
            n = j - i
            if n == 1:
                out[at] = np.uint32(singles[data[i]])
                at += 1
                i = j
                continue
            first = _word(data, i, j)
            h = _hash(data, i, j, first)  # (for the vocabulary, then for the memo)
            if n == 2:
                whole = pairs[(np.int64(data[i]) << 8) | np.int64(data[i + 1])]
                if whole < 0:
                    whole = _NO_RANK
            else:
                whole = _lookup(data, i, j, first, h, tok_bytes, tok_off, table)
            if whole != _NO_RANK:
                out[at] = np.uint32(whole)
                at += 1
                i = j
                continue
            if n > max_piece:
                status[t] = STOPPED_PIECE
                break
            h |= np.uint64(1)  # (a memo key is never 0)
            s = h & memo_mask
            found = np.int64(-1)
            while memo_src[s] >= 0:
                if memo_hash[s] == h and memo_len[s] == n and _same(data, memo_src[s], i, n):
                    found = np.int64(s)
                    break
                s = (s + np.uint64(1)) & memo_mask
            if found >= 0:
                src = memo_out[found]
                for k in range(memo_count[found]):
                    out[at + k] = out[src + k]
                at += memo_count[found]
            else:
                count = _merge_into(
                    data, i, j, tok_bytes, tok_off, table, pairs, singles, out, at, pos, ranks
                )
                if memo_room > 0:
                    memo_room -= 1
                    memo_hash[s] = h
                    memo_src[s] = i
                    memo_len[s] = n
                    memo_out[s] = at
                    memo_count[s] = count
                at += count
            i = j
        if status[t] == OK:
            ends[t] = at
        else:
            ends[t] = starts[t]  # (its ids so far stay in out: the memo may point at them)
    return out[:at].copy(), starts, ends, status
