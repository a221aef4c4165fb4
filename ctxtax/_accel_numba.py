"""The numba kernels behind `ctxtax._accel`; import this module only through `_accel`.

Importing it imports numba and loads (or compiles, then caches) the kernels, so `_accel` imports it
lazily on the first numba call. Each kernel has a plain twin in `_accel` that must give the same
result bit for bit; the constants below are shared with those twins through `_accel`.

All arithmetic on hashes is uint64 (or uint32 for MinHash) and wraps, which is the intended
modulo 2^64 (2^32). Every literal is typed explicitly: numba widens a mix of unsigned and signed
integers to float64, which would silently break the hashes.
"""

# Numba types these kernels from their arguments at the first call; Python annotations would
# be ignored by it and only restate the `_accel` wrappers, which carry the typed signatures.
# mypy: allow-untyped-defs

from __future__ import annotations

import numpy as np
from numba import njit

KGRAM_MUL = np.uint64(0x9E3779B97F4A7C15)
BAND_MUL = np.uint64(0xD6E8FEB86659FD93)
_SM1 = np.uint64(0xBF58476D1CE4E5B9)
_SM2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_ONE64 = np.uint64(1)
_FM1 = np.uint32(0x85EBCA6B)
_FM2 = np.uint32(0xC2B2AE35)
_MAX32 = np.uint32(0xFFFFFFFF)
_EMPTY = np.int64(-1)


@njit(cache=True, nogil=True)
def _splitmix64(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> _S30)) * _SM1
    z = (z ^ (z >> _S27)) * _SM2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True)
def _fmix32(h: np.uint32) -> np.uint32:
    h = h ^ (h >> np.uint32(16))
    h = np.uint32(h * _FM1)
    h = h ^ (h >> np.uint32(13))
    h = np.uint32(h * _FM2)
    return h ^ (h >> np.uint32(16))


@njit(cache=True, nogil=True)
def _kgram_into(ids, lo, hi, k, mul_k, out, at):
    """Write the k-gram hashes of ids[lo:hi] to out[at:]; return how many were written."""
    n = hi - lo
    if n < k:
        return 0
    h = np.uint64(0)
    for i in range(n):
        h = h * KGRAM_MUL + (np.uint64(ids[lo + i]) + _ONE64)
        if i >= k:
            h = h - (np.uint64(ids[lo + i - k]) + _ONE64) * mul_k
        if i >= k - 1:
            out[at + i - k + 1] = _splitmix64(h)
    return n - k + 1


@njit(cache=True, nogil=True)
def kgram_hashes(ids, k, mul_k):
    """Rolling k-gram hashes of one block (mul_k = KGRAM_MUL**k mod 2^64)."""
    n = ids.shape[0]
    out = np.empty(max(0, n - k + 1), dtype=np.uint64)
    _kgram_into(ids, 0, n, k, mul_k, out, 0)
    return out


@njit(cache=True, nogil=True)
def kgram_hashes_many(ids, offsets, k, mul_k):
    """Rolling k-gram hashes of each block, concatenated, with their offsets."""
    nb = offsets.shape[0] - 1
    out_off = np.zeros(nb + 1, dtype=np.int64)
    for b in range(nb):
        out_off[b + 1] = out_off[b] + max(0, offsets[b + 1] - offsets[b] - k + 1)
    out = np.empty(out_off[nb], dtype=np.uint64)
    for b in range(nb):
        _kgram_into(ids, offsets[b], offsets[b + 1], k, mul_k, out, out_off[b])
    return out, out_off


@njit(cache=True, nogil=True)
def _winnow_into(hashes, lo, hi, w, out, at):
    """Robust winnowing of hashes[lo:hi]: the rightmost minimum of every window of w, each
    position once; global positions to out[at:].

    The pick moves to a new hash that is no larger, or, when it leaves the window, to the
    rightmost minimum of a fresh scan of the window: one comparison per hash, plus w about once
    every w hashes (a monotone deque costs more for the small windows used here).
    """
    if hi == lo:
        return 0
    pick = lo
    for i in range(lo + 1, min(hi, lo + w)):  # the first window, or a block shorter than it
        if hashes[i] <= hashes[pick]:
            pick = i
    out[at] = pick
    count = 1
    for i in range(lo + w, hi):
        if hashes[i] <= hashes[pick]:
            pick = i
        elif pick <= i - w:
            pick = i - w + 1
            for j in range(i - w + 2, i + 1):
                if hashes[j] <= hashes[pick]:
                    pick = j
        else:
            continue
        out[at + count] = pick
        count += 1
    return count


@njit(cache=True, nogil=True)
def winnow(hashes, w):
    """Positions selected by robust winnowing of one hash sequence."""
    n = hashes.shape[0]
    out = np.empty(n, dtype=np.int64)
    count = _winnow_into(hashes, 0, n, w, out, 0)
    return out[:count].copy()


@njit(cache=True, nogil=True)
def winnow_many(hashes, offsets, w):
    """Robust winnowing of each block of hashes: global positions and per-block offsets."""
    n = hashes.shape[0]
    nb = offsets.shape[0] - 1
    out = np.empty(n, dtype=np.int64)
    out_off = np.zeros(nb + 1, dtype=np.int64)
    for b in range(nb):
        out_off[b + 1] = out_off[b] + _winnow_into(
            hashes, offsets[b], offsets[b + 1], w, out, out_off[b]
        )
    return out[: out_off[nb]].copy(), out_off


@njit(cache=True, nogil=True)
def _shingle_block(ids, lo, n, fold, fold_term, k, mul_k, w, window, ring, out, at):
    """Winnowed k-gram shingles (low 32 bits) of ids[lo:lo+n] to out[at:]; how many.

    Tokens whose ``fold`` entry is set count as ``fold_term - 1``; then the block's k-gram
    hashes are winnowed as `_winnow_into` does. The last k tokens and the last w hashes are
    kept in rings (``window``, ``ring``; indexes wrapped by hand: a division per token costs
    more than the rest of the loop), so neither the hashes nor the picks are written out.
    """
    nf = fold.shape[0]
    m = n - k + 1
    first_end = min(m, w) - 1
    h = np.uint64(0)
    pick = 0
    low = np.uint64(0)
    slot = 0  # where token i goes in `window`
    where = w - 1  # where hash pos goes in `ring`
    count = 0
    for i in range(n):
        t = ids[lo + i]
        term = np.uint64(t) + _ONE64
        if nf and fold[min(np.int64(t), nf - 1)]:
            term = fold_term
        h = h * KGRAM_MUL + term
        if i >= k:
            h = h - window[slot] * mul_k
        window[slot] = term
        slot += 1
        if slot == k:
            slot = 0
        pos = i - k + 1
        if pos < 0:
            continue
        x = _splitmix64(h)
        where += 1
        if where == w:
            where = 0
        ring[where] = x
        if pos < w:  # the first window, or a block shorter than one
            if pos == 0 or x <= low:
                pick, low = pos, x
            if pos == first_end:
                out[at + count] = np.uint32(low & _MAX32)
                count += 1
        elif x <= low:
            pick, low = pos, x
            out[at + count] = np.uint32(low & _MAX32)
            count += 1
        elif pick <= pos - w:
            # the window is the whole ring, oldest first from the slot after this one
            j = where + 1
            if j == w:
                j = 0
            pick, low = pos - w + 1, ring[j]
            for step in range(1, w):
                j += 1
                if j == w:
                    j = 0
                if ring[j] <= low:
                    pick, low = pos - w + 1 + step, ring[j]
            out[at + count] = np.uint32(low & _MAX32)
            count += 1
    return count


@njit(cache=True, nogil=True)
def _shingle_block_w4(ids, lo, n, fold, fold_term, k, mul_k, window, out, at):
    """`_shingle_block` for windows of 4 (the engine's), without branching on the hashes.

    The last four hashes are held in variables; each window's rightmost minimum comes from three
    comparisons (selects, not jumps: a new hash is the window's minimum one time in four, a
    branch the processor cannot predict). Its low 32 bits are written every time and kept
    (the count advances) only when the pick moved, so ``out`` needs one slot more than the
    block's hashes. Measured 24 -> 18 ms for 2.8M tokens.
    """
    m = n - k + 1  # hashes in the block
    if m <= 0:
        return 0
    nf = fold.shape[0]
    h = np.uint64(0)
    for i in range(k - 1):
        t = ids[lo + i]
        term = np.uint64(t) + _ONE64
        if nf and fold[min(np.int64(t), nf - 1)]:
            term = fold_term
        h = h * KGRAM_MUL + term
        window[i] = term
    slot = k - 1  # where token pos + k - 1 goes in `window`
    top = np.uint64(0xFFFFFFFFFFFFFFFF)
    x0 = top
    x1 = top
    x2 = top  # the three hashes before this one, x2 the latest
    last = -1  # the position picked last
    count = 0
    for pos in range(m):
        t = ids[lo + pos + k - 1]
        term = np.uint64(t) + _ONE64
        if nf and fold[min(np.int64(t), nf - 1)]:
            term = fold_term
        old = window[slot] if pos > 0 else np.uint64(0)
        h = h * KGRAM_MUL + (term - old * mul_k)
        window[slot] = term
        slot += 1
        if slot == k:
            slot = 0
        x3 = _splitmix64(h)
        if pos >= 3:
            right = x3 <= x2
            v23 = x3 if right else x2
            d23 = 0 if right else 1
            right = x1 <= x0
            v01 = x1 if right else x0
            d01 = 2 if right else 3
            right = v23 <= v01
            low = v23 if right else v01
            p = pos - (d23 if right else d01)
            out[at + count] = np.uint32(low & _MAX32)
            count += int(p != last)
            last = p
        elif pos == m - 1:  # a block of fewer than 4 hashes: its rightmost minimum
            low = x3
            if pos >= 1 and x2 < low:
                low = x2
            if pos >= 2 and x1 < low:
                low = x1
            out[at + count] = np.uint32(low & _MAX32)
            count += 1
        x0 = x1
        x1 = x2
        x2 = x3
    return count


@njit(cache=True, nogil=True)
def _shingles_into(ids, lo, n, fold, fold_term, k, mul_k, w, window, ring, out, at):
    if w == 4:
        return _shingle_block_w4(ids, lo, n, fold, fold_term, k, mul_k, window, out, at)
    return _shingle_block(ids, lo, n, fold, fold_term, k, mul_k, w, window, ring, out, at)


@njit(cache=True, nogil=True)
def shingles_many(ids, starts, ends, fold, fold_to, k, mul_k, w):
    """Winnowed k-gram shingles (low 32 bits) of each block ids[starts[b]:ends[b]], in one
    pass (see `_shingle_block`), and their per-block offsets."""
    nb = starts.shape[0]
    total = 0
    for b in range(nb):
        total += max(0, ends[b] - starts[b] - k + 1)
    out = np.empty(total + 1, dtype=np.uint32)  # + 1: see `_shingle_block_w4`
    out_off = np.zeros(nb + 1, dtype=np.int64)
    ring = np.empty(w, dtype=np.uint64)
    window = np.empty(k, dtype=np.uint64)
    fold_term = np.uint64(fold_to) + _ONE64
    count = 0
    for b in range(nb):
        n = ends[b] - starts[b]
        if n >= k:
            count += _shingles_into(
                ids, starts[b], n, fold, fold_term, k, mul_k, w, window, ring, out, count
            )
        out_off[b + 1] = count
    return out[:count].copy(), out_off


@njit(cache=True, nogil=True)
def _minhash_row(values, lo, n, a, b, mixed, row):
    """The MinHash signature of values[lo:lo+n] into ``row`` (``mixed``: room for n values).

    The mixed values go to a buffer; then each pair of permutations takes its two minimums in
    one pass over it. These inner loops are contiguous and branch-free, so LLVM vectorizes them
    over the values (measured 6.5 -> 4.5 ms for 1.1M values, 64 permutations, against one pass
    per value over the permutations).
    """
    p = a.shape[0]
    for i in range(n):
        mixed[i] = _fmix32(values[lo + i])
    j = 0
    while j + 2 <= p:
        a0, b0, a1, b1 = a[j], b[j], a[j + 1], b[j + 1]
        m0 = _MAX32
        m1 = _MAX32
        for i in range(n):
            v = mixed[i]
            m0 = min(m0, np.uint32(a0 * v + b0))
            m1 = min(m1, np.uint32(a1 * v + b1))
        row[j] = m0
        row[j + 1] = m1
        j += 2
    if j < p:  # an odd number of permutations
        m0 = _MAX32
        for i in range(n):
            m0 = min(m0, np.uint32(a[j] * mixed[i] + b[j]))
        row[j] = m0


@njit(cache=True, nogil=True)
def minhash_many(values, offsets, a, b):
    """MinHash signature of each block of values (datasketch affine32), see `_minhash_row`."""
    nb = offsets.shape[0] - 1
    out = np.empty((nb, a.shape[0]), dtype=np.uint32)
    longest = 0
    for blk in range(nb):
        longest = max(longest, offsets[blk + 1] - offsets[blk])
    mixed = np.empty(longest, dtype=np.uint32)
    for blk in range(nb):
        lo = offsets[blk]
        _minhash_row(values, lo, offsets[blk + 1] - lo, a, b, mixed, out[blk])
    return out


@njit(cache=True, nogil=True)
def _band_row(signature, bands, rows, out):
    for band in range(bands):
        h = np.uint64(0)
        for r in range(band * rows, (band + 1) * rows):
            h = _splitmix64(h * BAND_MUL + (np.uint64(signature[r]) + _ONE64))
        out[band] = h


@njit(cache=True, nogil=True)
def band_keys(signatures, bands, rows):
    """A 64-bit key for each band of each signature."""
    n = signatures.shape[0]
    out = np.empty((n, bands), dtype=np.uint64)
    for i in range(n):
        _band_row(signatures[i], bands, rows, out[i])
    return out


@njit(cache=True, nogil=True)
def near_keys(ids, starts, ends, fold, fold_to, k, mul_k, w, a, b, bands, rows):
    """`shingles_many`, `minhash_many` and `band_keys` in one pass over the blocks: each block's
    shingles go to a buffer, its signature and band keys are made from them there. Returns
    the signatures and the keys."""
    nb = starts.shape[0]
    longest = 0
    for blk in range(nb):
        longest = max(longest, ends[blk] - starts[blk])
    shingles = np.empty(longest + 1, dtype=np.uint32)
    mixed = np.empty(longest + 1, dtype=np.uint32)
    signatures = np.empty((nb, a.shape[0]), dtype=np.uint32)
    keys = np.empty((nb, bands), dtype=np.uint64)
    ring = np.empty(w, dtype=np.uint64)
    window = np.empty(k, dtype=np.uint64)
    fold_term = np.uint64(fold_to) + _ONE64
    for blk in range(nb):
        n = ends[blk] - starts[blk]
        count = 0
        if n >= k:
            count = _shingles_into(
                ids, starts[blk], n, fold, fold_term, k, mul_k, w, window, ring, shingles, 0
            )
        _minhash_row(shingles, 0, count, a, b, mixed, signatures[blk])
        _band_row(signatures[blk], bands, rows, keys[blk])
    return signatures, keys


@njit(cache=True, nogil=True)
def _slot(keys, used, h):
    """The slot of h in an open-addressing table: where it is, or the free slot it would take."""
    mask = np.uint64(keys.shape[0] - 1)
    i = np.int64(_splitmix64(h) & mask)
    while used[i] and keys[i] != h:
        i = np.int64((np.uint64(i) + _ONE64) & mask)
    return i


@njit(cache=True, nogil=True)
def _previous_same_key(keys):
    """prev[band, j]: the largest i < j with the same key in that band, or -1.

    Following prev from j lists every earlier block sharing j's key in a band, nearest first;
    a hash table per band finds them without sorting (numba's sorts are slow to compile).
    """
    n, bands = keys.shape
    cap = 16
    while cap < 2 * n:
        cap *= 2
    prev = np.empty((bands, n), dtype=np.int64)
    for band in range(bands):
        table = np.zeros(cap, dtype=np.uint64)
        last = np.empty(cap, dtype=np.int64)
        used = np.zeros(cap, dtype=np.bool_)
        for j in range(n):
            s = _slot(table, used, keys[j, band])
            if used[s]:
                prev[band, j] = last[s]
            else:
                prev[band, j] = -1
                table[s] = keys[j, band]
                used[s] = True
            last[s] = j
    return prev


@njit(cache=True, nogil=True)
def _doubled(values):
    # An element loop: numba's slice assignment costs seconds of compile time.
    out = np.empty(2 * values.shape[0], dtype=values.dtype)
    for t in range(values.shape[0]):
        out[t] = values[t]
    return out


@njit(cache=True, nogil=True)
def _pairs_by_band_chains(keys, limit):
    """For each j, the `limit` largest i < j sharing a band key, as (i, j) rows sorted."""
    n, bands = keys.shape
    prev = _previous_same_key(keys)
    left = np.empty(16, dtype=np.int64)
    right = np.empty(16, dtype=np.int64)
    m = 0
    ptr = np.empty(bands, dtype=np.int64)
    for j in range(n):
        # Each band's chain is descending; merge them, dropping repeats, until `limit` are kept.
        for band in range(bands):
            ptr[band] = prev[band, j]
        kept = 0
        while kept < limit:
            best = np.int64(-1)
            for band in range(bands):
                best = max(best, ptr[band])
            if best < 0:
                break
            if m == left.shape[0]:
                left = _doubled(left)
                right = _doubled(right)
            left[m] = best
            right[m] = j
            m += 1
            kept += 1
            for band in range(bands):
                if ptr[band] == best:
                    ptr[band] = prev[band, best]
    # Rows come ordered by j; a counting sort on i (stable) orders them by (i, j).
    starts = np.zeros(n + 1, dtype=np.int64)
    for t in range(m):
        starts[left[t] + 1] += 1
    for i in range(n):
        starts[i + 1] += starts[i]
    out = np.empty((m, 2), dtype=np.int64)
    for t in range(m):
        at = starts[left[t]]
        out[at, 0] = left[t]
        out[at, 1] = right[t]
        starts[left[t]] = at + 1
    return out


@njit(cache=True, nogil=True)
def lsh_pairs(keys):
    """Every pair i < j sharing a band key, as sorted unique rows."""
    return _pairs_by_band_chains(keys, keys.shape[0])


@njit(cache=True, nogil=True)
def lsh_candidates(keys, limit):
    """For each j, the `limit` largest i < j sharing a band key with j, as sorted rows."""
    return _pairs_by_band_chains(keys, limit)


@njit(cache=True, nogil=True)
def first_seen(keys, values, used, size, hashes, positions, keep_last):
    """Look up then insert each hash in order in an open-addressing table.

    With ``keep_last`` a seen hash moves to its newest position. Returns (prior, keys, values,
    used, size): the table arrays are new when it grew.
    """
    prior = np.empty(hashes.shape[0], dtype=np.int64)
    for t in range(hashes.shape[0]):
        h = hashes[t]
        i = _slot(keys, used, h)
        if used[i]:
            prior[t] = values[i]
            if keep_last:
                values[i] = positions[t]
            continue
        prior[t] = _EMPTY
        if 2 * (size + 1) > keys.shape[0]:
            cap = 2 * keys.shape[0]
            new_keys = np.zeros(cap, dtype=np.uint64)
            new_values = np.zeros(cap, dtype=np.int64)
            new_used = np.zeros(cap, dtype=np.bool_)
            for s in range(keys.shape[0]):
                if used[s]:
                    d = _slot(new_keys, new_used, keys[s])
                    new_keys[d] = keys[s]
                    new_values[d] = values[s]
                    new_used[d] = True
            keys, values, used = new_keys, new_values, new_used
            i = _slot(keys, used, h)
        keys[i] = h
        values[i] = positions[t]
        used[i] = True
        size += 1
    return prior, keys, values, used, size


@njit(cache=True, nogil=True)
def extend_spans(tokens, block_of, block_lo, block_hi, cand_pos, cand_src, k, min_len):
    """Verify and extend candidate k-gram matches to maximal repeated spans (see `_accel`)."""
    m = cand_pos.shape[0]
    dup_lo = np.empty(m, dtype=np.int64)
    dup_hi = np.empty(m, dtype=np.int64)
    src_lo = np.empty(m, dtype=np.int64)
    count = 0
    cur_block = -1
    covered = np.int64(0)
    for c in range(m):
        p = cand_pos[c]
        q = cand_src[c]
        bp = block_of[p]
        bq = block_of[q]
        if bp != cur_block:
            cur_block = bp
            covered = block_lo[bp]
        if p < covered:
            continue
        hp = block_hi[bp]
        hq = block_hi[bq]
        if p + k > hp or q + k > hq:
            continue
        same = True
        for t in range(k):
            if tokens[p + t] != tokens[q + t]:
                same = False
                break
        if not same:
            continue
        floor_p = max(block_lo[bp], covered, p - min_len)
        floor_q = block_lo[bq]
        lo_p = p
        lo_q = q
        while lo_p - 1 >= floor_p and lo_q - 1 >= floor_q and tokens[lo_p - 1] == tokens[lo_q - 1]:
            lo_p -= 1
            lo_q -= 1
        # Inside one block the source must end by the duplicate's start: at most p - q long.
        cap = lo_p - lo_q if bp == bq else hp - lo_p
        hi_p = p + k
        hi_q = q + k
        while hi_p < hp and hi_q < hq and hi_p - lo_p < cap and tokens[hi_p] == tokens[hi_q]:
            hi_p += 1
            hi_q += 1
        length = min(hi_p - lo_p, cap)
        if length >= min_len:
            dup_lo[count] = lo_p
            dup_hi[count] = lo_p + length
            src_lo[count] = lo_q
            count += 1
            covered = lo_p + length
    return dup_lo[:count].copy(), dup_hi[:count].copy(), src_lo[:count].copy()
