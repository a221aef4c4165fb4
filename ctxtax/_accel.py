"""Kernels of the duplication engine: k-gram hashes, winnowing, MinHash, LSH, exact spans.

Every kernel has two implementations that give the same result bit for bit: a numba one
(`ctxtax._accel_numba`, ``@njit(cache=True, nogil=True)``) and a plain numpy / Python twin here.
Which one runs:

- ``impl="numba"`` / ``impl="python"`` on the call;
- else the ``CTXTAX_IMPL`` environment variable (``numba`` or ``python``);
- else `impl_for`: numba only for inputs of at least `SMALL_INPUT` elements, because the first
  numba call of a process pays for importing numba and loading the cached machine code, which
  the twins beat on anything smaller.

Importing this module does not import numba; the first numba call does.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable
from functools import cache
from types import ModuleType
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt

from ctxtax import _accel_threads
from ctxtax.errors import ConfigError

Impl = Literal["numba", "python"]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
_V = TypeVar("_V", bound=np.generic)

SMALL_INPUT = 1_000_000
"""Work below this runs the plain twin when no implementation is forced (measured: below it the
plain twin beats loading numba's cached kernels, 0.55-0.95 s, in a fresh process)."""

_WORK = {"done": 0}

logger = logging.getLogger("ctxtax")

ENV_VAR = "CTXTAX_IMPL"

# Shared with `_accel_numba` (which defines the same values; a test pins them equal).
KGRAM_MUL = 0x9E3779B97F4A7C15
BAND_MUL = 0xD6E8FEB86659FD93
_CHUNK = 1 << 16


def impl_for(n: int) -> Impl:
    """The implementation a kernel uses for an input of ``n`` elements when none is passed."""
    forced = os.environ.get(ENV_VAR)
    if forced:
        forced = forced.strip().lower()
        if forced in ("numba", "python"):
            return "numba" if forced == "numba" else "python"
        if forced:
            raise ConfigError(f"{ENV_VAR}={forced!r}: expected 'numba', 'python' or unset")
    if getattr(_THIS_THREAD, "impl", None) == "numba":
        return "numba"
    # Once numba is loaded it is faster at every size; it is worth loading for one large input,
    # or once this process has done that much work in small ones (a batch of sessions).
    if _loading():  # small work does not wait for the loading thread (see below)
        return "numba" if n >= SMALL_INPUT else "python"
    if _numba_kernels.cache_info().currsize:
        return "numba"
    _WORK["done"] += n
    return "numba" if n >= SMALL_INPUT or _WORK["done"] >= 4 * SMALL_INPUT else "python"


_THIS_THREAD = threading.local()
_LOADER: dict[str, threading.Thread] = {}
_LOADER_LOCK = threading.Lock()


def _loading() -> bool:
    loader = _LOADER.get("thread")
    return loader is not None and loader.is_alive()


def load_numba_in_background() -> None:
    """Load numba's kernels on a thread of their own; the kernels run there once they are loaded.

    For a process that keeps auditing a growing session (an `Auditor` kept between calls, as
    middleware keeps one, once the session is sizeable): its calls are small, so the plain twins
    would run them until the
    work added up, and then one call would load numba itself: 0.5-1 s, or several seconds
    while numba compiles the kernels the first time after an install. On another thread (a
    small audit runs every kernel once, which loads or compiles its machine code) the calls go
    on meanwhile with the plain twins; one of them still waits about 0.7 s while LLVM's
    library loads (a C extension's loading holds the interpreter lock). Does nothing when
    ``CTXTAX_IMPL`` picks an implementation or numba is loaded (or loading) already.
    """
    if os.environ.get(ENV_VAR, "").strip() or _numba_kernels.cache_info().currsize:
        return
    with _LOADER_LOCK:
        if "thread" in _LOADER:
            return
        thread = threading.Thread(target=_load_numba, name="ctxtax-numba-load")
        _LOADER["thread"] = thread
    thread.start()


def _load_numba() -> None:
    """Run a small audit with the numba kernels (on this thread only)."""
    _THIS_THREAD.impl = "numba"
    try:
        from ctxtax._engine import audit

        lines = [f"step {i}: checked module_{i % 7}.py, {i * 3} tests passed" for i in range(60)]
        log = "\n".join(lines)
        near = log.replace("tests passed", "tests ran")
        audit([{"role": "user", "content": log}, {"role": "user", "content": log + "\n" + near}])
    except Exception:  # a failed load only means the plain twins go on running
        logger.debug("loading numba's kernels failed", exc_info=True)
    finally:
        _THIS_THREAD.impl = None


@cache
def _numba_kernels() -> ModuleType:
    """The numba kernels module, imported (and its cached code loaded) on first use."""
    from ctxtax import _accel_numba

    return _accel_numba


def _choose(impl: Impl | None, n: int) -> Impl:
    _accel_threads.threads()  # a bad CTXTAX_THREADS is refused on every call, as CTXTAX_IMPL is
    if impl is None:
        return impl_for(n)
    if impl not in ("numba", "python"):
        raise ValueError(f"impl={impl!r}: expected 'numba', 'python' or None")
    return impl


def _offsets(offsets: npt.ArrayLike, n: int, what: str) -> I64:
    off = np.ascontiguousarray(offsets, dtype=np.int64)
    if off.ndim != 1 or len(off) < 1:
        raise ValueError(f"{what}: offsets must be a 1-D array of nblocks + 1 positions")
    # (ndarray methods and plain ints: numpy's function wrappers cost more than the check)
    if int(off[0]) < 0 or int(off[-1]) > n or (off[1:] < off[:-1]).any():
        raise ValueError(f"{what}: offsets must be non-decreasing within [0, {n}]")
    return off


@cache
def _mul_k(k: int) -> np.uint64:
    """KGRAM_MUL ** k mod 2^64: what the rolling k-gram hash multiplies the leaving token by."""
    return np.uint64(pow(KGRAM_MUL, k, 1 << 64))


def _joined(
    name: str,
    work: int,
    nblocks: int,
    work_ends: Callable[[], I64],
    run: Callable[[int, int], tuple[npt.NDArray[_V], I64]],
) -> tuple[npt.NDArray[_V], I64]:
    """A block kernel's ``(values, offsets)`` over its ``nblocks`` blocks, ``run(first, stop)``
    giving those of one run: split over threads when the work is large (`_accel_threads`), then
    joined. Each run's offsets start at 0; joined, they are shifted by the values before them."""
    runs = _accel_threads.run_blocks(name, work, nblocks, work_ends, run)
    if len(runs) == 1:
        return runs[0]
    values = np.concatenate([v for v, _ in runs])
    offsets = [runs[0][1]]
    shift = runs[0][1][-1]
    for _, off in runs[1:]:
        offsets.append(off[1:] + shift)
        shift += off[-1]
    return values, np.concatenate(offsets)


def _positive(value: int, name: str) -> int:
    if int(value) < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def _splitmix64(z: U64) -> U64:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _fmix32(h: U32) -> U32:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _sorted_unique(values: I64) -> I64:
    """np.unique for int64, by sort: numpy 2's hash-based unique is several times slower here."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


# -- k-gram hashes ----------------------------------------------------------------------------


def _powers(base: int, n: int) -> U64:
    """base**0 .. base**(n-1) mod 2^64."""
    out = np.full(n, base, dtype=np.uint64)
    if n:
        out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


def _window_hashes(ids: U32, k: int) -> U64:
    """Hash of every window ids[i:i+k], i in [0, n-k], computed without a rolling loop.

    With x = ids + 1 and M odd (so invertible mod 2^64), the window polynomial
    sum_j x[i+j] * M^(k-1-j) equals M^(k-1+i) * (S[i+k] - S[i]) where S is the prefix sum of
    x[g] * M^-g: a cumsum and two products, all wrapping mod 2^64.
    """
    n = len(ids)
    if n < k:
        return np.zeros(0, dtype=np.uint64)
    x = ids.astype(np.uint64) + np.uint64(1)
    prefix = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(x * _powers(pow(KGRAM_MUL, -1, 1 << 64), n), dtype=np.uint64, out=prefix[1:])
    poly = _powers(KGRAM_MUL, n)[k - 1 :] * (prefix[k:] - prefix[: n - k + 1])
    return _splitmix64(poly)


def kgram_hashes(ids: U32, k: int, *, impl: Impl | None = None) -> U64:
    """The 64-bit hash of each k-gram ``ids[i:i+k]``, ``max(0, len(ids) - k + 1)`` of them.

    The hash is the polynomial ``sum_j (ids[i+j] + 1) * KGRAM_MUL**(k-1-j)`` mod 2^64, passed
    through the splitmix64 finalizer.
    """
    k = _positive(k, "k")
    ids = np.ascontiguousarray(ids, dtype=np.uint32)
    if _choose(impl, len(ids)) == "numba":
        mul_k = _mul_k(k)
        return _numba_kernels().kgram_hashes(ids, k, mul_k)  # type: ignore[no-any-return]
    return _window_hashes(ids, k)


def kgram_hashes_many(
    ids: U32, offsets: I64, k: int, *, impl: Impl | None = None
) -> tuple[U64, I64]:
    """k-gram hashes of each block ``ids[offsets[b]:offsets[b+1]]``, concatenated.

    Returns ``(hashes, hash_offsets)``: no k-gram spans two blocks, and block ``b``'s hashes are
    ``hashes[hash_offsets[b]:hash_offsets[b+1]]``.
    """
    k = _positive(k, "k")
    ids = np.ascontiguousarray(ids, dtype=np.uint32)
    off = _offsets(offsets, len(ids), "kgram_hashes_many")
    if _choose(impl, len(ids)) == "numba":
        mul_k = _mul_k(k)
        kernel = _numba_kernels().kgram_hashes_many

        def kgrams(first: int, stop: int) -> tuple[U64, I64]:
            return kernel(ids, off[first : stop + 1], k, mul_k)  # type: ignore[no-any-return]

        n = len(off) - 1
        return _joined(
            "kgram_hashes_many", int(off[-1] - off[0]), n, lambda: off[1:] - off[0], kgrams
        )
    counts = np.maximum(np.diff(off) - (k - 1), 0)
    out_off = np.zeros(len(off), dtype=np.int64)
    np.cumsum(counts, out=out_off[1:])
    # The hash of a window depends only on its tokens, so hash every window of the whole array
    # and keep those that start in a block and end in the same one.
    starts = np.repeat(off[:-1] - out_off[:-1], counts) + np.arange(out_off[-1], dtype=np.int64)
    return _window_hashes(ids, k)[starts], out_off


# -- winnowing --------------------------------------------------------------------------------


def _rightmost_min(hashes: U64, lo: I64, hi: I64) -> I64:
    """For each non-empty range [lo, hi), the position of its rightmost minimum."""
    if len(lo) == 0:
        return np.zeros(0, dtype=np.int64)
    lengths = hi - lo
    block = np.repeat(np.arange(len(lo)), lengths)
    pos = np.repeat(lo - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
    order = np.lexsort((-pos, hashes[pos], block))
    first = np.r_[True, block[order][1:] != block[order][:-1]]
    return pos[order][first].astype(np.int64)


def winnow_many(hashes: U64, offsets: I64, w: int, *, impl: Impl | None = None) -> tuple[I64, I64]:
    """Robust winnowing (Schleimer, Wilkerson, Aiken 2003) of each block of ``hashes``.

    In every window of ``w`` consecutive hashes of a block the minimum is selected, the rightmost
    on ties; each selected position is output once, in increasing order. A block shorter than
    ``w`` (and not empty) selects its rightmost minimum. Returns the selected positions (global
    indexes into ``hashes``) and per-block offsets into them.
    """
    w = _positive(w, "w")
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    off = _offsets(offsets, len(hashes), "winnow_many")
    if _choose(impl, len(hashes)) == "numba":
        kernel = _numba_kernels().winnow_many

        def winnowed(first: int, stop: int) -> tuple[I64, I64]:
            return kernel(hashes, off[first : stop + 1], w)  # type: ignore[no-any-return]

        n = len(off) - 1
        return _joined("winnow_many", int(off[-1] - off[0]), n, lambda: off[1:] - off[0], winnowed)
    lengths = np.diff(off)
    short = (lengths > 0) & (lengths < w)
    picks = [_rightmost_min(hashes, off[:-1][short], off[1:][short])]
    # Windows wholly inside a block; the first start of each window comes from its block's start.
    counts = np.maximum(lengths - (w - 1), 0)
    ends = np.cumsum(counts)
    starts = np.repeat(off[:-1] - (ends - counts), counts) + np.arange(
        int(ends[-1]) if len(ends) else 0
    )
    # Every window at once, scanning its slots right to left: a strictly smaller hash moves the
    # pick left, so ties keep the rightmost.
    pick = starts + (w - 1)
    low = hashes[pick]
    for slot in range(w - 2, -1, -1):
        here = hashes[starts + slot]
        better = here < low
        pick = np.where(better, starts + slot, pick)
        low = np.where(better, here, low)
    picks.append(pick)
    sel = _sorted_unique(np.concatenate(picks).astype(np.int64))
    return sel, np.searchsorted(sel, off).astype(np.int64)


def winnow(hashes: U64, w: int, *, impl: Impl | None = None) -> I64:
    """Robust winnowing of one hash sequence: the selected positions (see `winnow_many`)."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    w = _positive(w, "w")
    if _choose(impl, len(hashes)) == "numba":
        return _numba_kernels().winnow(hashes, w)  # type: ignore[no-any-return]
    sel, _ = winnow_many(hashes, np.array([0, len(hashes)], dtype=np.int64), w, impl="python")
    return sel


# -- MinHash and LSH --------------------------------------------------------------------------


def _blocks(
    ids: U32, starts: I64, ends: I64, fold: npt.NDArray[np.bool_] | None, what: str
) -> tuple[U32, I64, I64, npt.NDArray[np.bool_]]:
    """Blocks ``ids[starts[b]:ends[b]]`` checked, and the fold mask (empty: fold nothing)."""
    ids = np.ascontiguousarray(ids, dtype=np.uint32)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    if starts.shape != ends.shape or (starts > ends).any() or (starts < 0).any():
        raise ValueError(f"{what}: blocks must be ranges [start, end) inside ids")
    if len(ends) and int(ends.max()) > len(ids):
        raise ValueError(f"{what}: a block ends past the ids")
    mask = np.zeros(0, dtype=np.bool_) if fold is None else np.ascontiguousarray(fold, np.bool_)
    return ids, starts, ends, mask


def shingles_many(
    ids: U32,
    starts: I64,
    ends: I64,
    fold: npt.NDArray[np.bool_] | None,
    fold_to: int,
    k: int,
    w: int,
    *,
    impl: Impl | None = None,
) -> tuple[U32, I64]:
    """The near-duplicate shingles of each block ``ids[starts[b]:ends[b]]``: its tokens, those
    marked in ``fold`` counted as ``fold_to`` (numbers), hashed as k-grams, winnowed with window
    ``w``, each selected hash's low 32 bits. Returns the values and per-block offsets.

    The same as folding, then `kgram_hashes_many`, `winnow_many` and taking the selected
    hashes; the numba kernel does it in one pass without the intermediate arrays.
    """
    k, w = _positive(k, "k"), _positive(w, "w")
    ids, starts, ends, mask = _blocks(ids, starts, ends, fold, "shingles_many")
    lengths = ends - starts
    work = int(lengths.sum())
    if _choose(impl, work) == "numba":
        mul_k = _mul_k(k)
        kernel = _numba_kernels().shingles_many
        term = np.uint32(fold_to)

        def shingled(first: int, stop: int) -> tuple[U32, I64]:
            return kernel(  # type: ignore[no-any-return]
                ids, starts[first:stop], ends[first:stop], mask, term, k, mul_k, w
            )

        return _joined("shingles_many", work, len(starts), lambda: np.cumsum(lengths), shingled)
    offsets = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.concatenate([ids[a:b] for a, b in zip(starts, ends, strict=True)] or [ids[:0]])
    if len(mask) and len(tokens):
        folded = mask[np.minimum(tokens, len(mask) - 1)]
        tokens = np.where(folded, np.uint32(fold_to), tokens).astype(np.uint32)
    hashes, h_off = kgram_hashes_many(tokens, offsets, k, impl="python")
    selected, s_off = winnow_many(hashes, h_off, w, impl="python")
    return (hashes[selected] & np.uint64(0xFFFFFFFF)).astype(np.uint32), s_off


def permutations(num_perm: int, seed: int = 1) -> tuple[U32, U32]:
    """datasketch's ``(a, b)`` affine32 permutation parameters for ``num_perm`` and ``seed``.

    The same draws as ``datasketch.MinHash(num_perm, seed).permutations`` (datasketch 2.0's
    default scheme), so signatures built here can be compared with datasketch ones.
    """
    num_perm = _positive(num_perm, "num_perm")
    draws = _legacy_mt19937(seed).getrandbits
    a = [(draws(32) & 0x7FFFFFFF) * 2 + 1 for _ in range(num_perm)]
    b = [draws(32) for _ in range(num_perm)]
    return np.array(a, dtype=np.uint32), np.array(b, dtype=np.uint32)


def _legacy_mt19937(seed: int) -> random.Random:
    """A Mersenne Twister in the state ``numpy.random.RandomState(seed)`` starts from.

    Both generators are MT19937, but numpy seeds an int with ``init_genrand`` and the stdlib
    with ``init_by_array``; setting the state by hand gives numpy's 32-bit outputs without
    importing ``numpy.random`` (12 ms of a short audit's start). For ``uint32`` bounds
    ``[0, 2**31)`` and ``[0, 2**32)`` numpy's ``randint`` uses each output whole (masked to
    31 bits for the first), so ``getrandbits(32)`` gives the same draws; a test compares them.
    """
    if not 0 <= seed < 1 << 32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    state = [seed]
    for i in range(1, 624):
        state.append((1812433253 * (state[-1] ^ (state[-1] >> 30)) + i) & 0xFFFFFFFF)
    gen = random.Random()
    gen.setstate((3, (*state, 624), None))
    return gen


def minhash_many(values: U32, offsets: I64, a: U32, b: U32, *, impl: Impl | None = None) -> U32:
    """MinHash signatures, shape ``(nblocks, len(a))``, datasketch affine32 compatible.

    Row ``i`` column ``j`` is the minimum over the block's values ``v`` of
    ``a[j] * fmix32(v) + b[j]`` mod 2^32; an empty block's row is all ``0xFFFFFFFF``.
    """
    values = np.ascontiguousarray(values, dtype=np.uint32)
    a = np.ascontiguousarray(a, dtype=np.uint32)
    b = np.ascontiguousarray(b, dtype=np.uint32)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("minhash_many: a and b must be 1-D arrays of the same length")
    off = _offsets(offsets, len(values), "minhash_many")
    if _choose(impl, len(values)) == "numba":
        kernel = _numba_kernels().minhash_many

        def signed(first: int, stop: int) -> U32:
            return kernel(values, off[first : stop + 1], a, b)  # type: ignore[no-any-return]

        work, nb = int(off[-1] - off[0]), len(off) - 1
        runs = _accel_threads.run_blocks("minhash_many", work, nb, lambda: off[1:] - off[0], signed)
        return runs[0] if len(runs) == 1 else np.concatenate(runs)
    nb = len(off) - 1
    out = np.full((nb, len(a)), 0xFFFFFFFF, dtype=np.uint32)
    nonempty = np.nonzero(np.diff(off) > 0)[0]
    lo, hi = off[nonempty], off[nonempty + 1]
    for start in range(int(off[0]), int(off[-1]), _CHUNK):
        stop = min(start + _CHUNK, int(off[-1]))
        # Blocks overlapping [start, stop) tile it; reduce each one's rows there.
        touch = nonempty[(lo < stop) & (hi > start)]
        seg = np.maximum(off[touch], start) - start
        phv = _fmix32(values[start:stop])[:, None] * a + b
        out[touch] = np.minimum(out[touch], np.minimum.reduceat(phv, seg, axis=0))
    return out


def band_keys(signatures: U32, bands: int, rows: int, *, impl: Impl | None = None) -> U64:
    """A 64-bit key per band, shape ``(nblocks, bands)``; band ``i`` hashes columns
    ``[i*rows, (i+1)*rows)`` as datasketch's ``MinHashLSH.hashranges`` does."""
    bands, rows = _positive(bands, "bands"), _positive(rows, "rows")
    sig = np.ascontiguousarray(signatures, dtype=np.uint32)
    if sig.ndim != 2 or bands * rows > sig.shape[1]:
        raise ValueError(
            f"band_keys: need a 2-D signature array with at least {bands * rows} columns"
        )
    if _choose(impl, sig.size) == "numba":
        return _numba_kernels().band_keys(sig, bands, rows)  # type: ignore[no-any-return]
    cols = sig[:, : bands * rows].reshape(len(sig), bands, rows).astype(np.uint64)
    h = np.zeros((len(sig), bands), dtype=np.uint64)
    for r in range(rows):
        h = _splitmix64(h * np.uint64(BAND_MUL) + (cols[:, :, r] + np.uint64(1)))
    return h


def near_keys(
    ids: U32,
    starts: I64,
    ends: I64,
    fold: npt.NDArray[np.bool_] | None,
    fold_to: int,
    k: int,
    w: int,
    a: U32,
    b: U32,
    bands: int,
    rows: int,
    *,
    impl: Impl | None = None,
) -> tuple[U32, U64]:
    """The MinHash signatures and LSH band keys of each block's near-duplicate shingles:
    `shingles_many`, then `minhash_many`, then `band_keys`, with the same arguments.

    The numba kernel does the three for one block at a time, in one pass over the blocks, so the
    shingles are never written out; large inputs are split over threads (`_accel_threads`).
    """
    k, w = _positive(k, "k"), _positive(w, "w")
    bands, rows = _positive(bands, "bands"), _positive(rows, "rows")
    ids, starts, ends, mask = _blocks(ids, starts, ends, fold, "near_keys")
    a = np.ascontiguousarray(a, dtype=np.uint32)
    b = np.ascontiguousarray(b, dtype=np.uint32)
    if a.shape != b.shape or a.ndim != 1 or bands * rows > len(a):
        raise ValueError(f"near_keys: need a and b of the same length, at least {bands * rows}")
    lengths = ends - starts
    work = int(lengths.sum())
    if _choose(impl, work) != "numba":
        values, offsets = shingles_many(ids, starts, ends, fold, fold_to, k, w, impl="python")
        signatures = minhash_many(values, offsets, a, b, impl="python")
        return signatures, band_keys(signatures, bands, rows, impl="python")
    kernel = _numba_kernels().near_keys
    mul_k = _mul_k(k)
    term = np.uint32(fold_to)

    def keyed(first: int, stop: int) -> tuple[U32, U64]:
        return kernel(  # type: ignore[no-any-return]
            ids, starts[first:stop], ends[first:stop], mask, term, k, mul_k, w, a, b, bands, rows
        )

    runs = _accel_threads.run_blocks(
        "near_keys", work, len(starts), lambda: np.cumsum(lengths), keyed
    )
    if len(runs) == 1:
        return runs[0]
    return np.concatenate([sig for sig, _ in runs]), np.concatenate([key for _, key in runs])


def _keys2d(keys: U64) -> U64:
    k = np.ascontiguousarray(keys, dtype=np.uint64)
    if k.ndim != 2:
        raise ValueError("LSH keys must be a 2-D array (nblocks, bands)")
    return k


def _band_runs(column: U64) -> tuple[I64, I64, I64]:
    """Stable order of one band's keys, each sorted slot's run start, and slot numbers."""
    order = np.argsort(column, kind="stable").astype(np.int64)
    ranked = column[order]
    slot = np.arange(len(column), dtype=np.int64)
    new_run = np.r_[True, ranked[1:] != ranked[:-1]]
    start = np.maximum.accumulate(np.where(new_run, slot, 0))
    return order, start, slot


def _back_pairs(order: I64, slot: I64, counts: I64) -> tuple[I64, I64]:
    """(i, j) pairs: j = order[t] with each of the ``counts[t]`` slots before t, nearest first."""
    total = int(counts.sum())
    t = np.repeat(slot, counts)
    back = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    return order[t - back], order[t]


def _as_pairs(codes: I64, n: int) -> I64:
    codes = _sorted_unique(codes)
    return np.stack((codes // max(n, 1), codes % max(n, 1)), axis=1).astype(np.int64).reshape(-1, 2)


def lsh_pairs(keys: U64, *, impl: Impl | None = None) -> I64:
    """Every pair ``(i, j)``, ``i < j``, whose keys agree in some band; each once, sorted."""
    keys = _keys2d(keys)
    n = len(keys)
    if _choose(impl, keys.size) == "numba":
        return _numba_kernels().lsh_pairs(keys)  # type: ignore[no-any-return]
    codes = [np.zeros(0, dtype=np.int64)]
    for band in range(keys.shape[1]):
        order, start, slot = _band_runs(keys[:, band])
        i, j = _back_pairs(order, slot, slot - start)
        codes.append(i * n + j)
    return _as_pairs(np.concatenate(codes), n)


def lsh_candidates(keys: U64, limit: int, *, impl: Impl | None = None) -> I64:
    """For each block ``j``, the pairs ``(i, j)`` of `lsh_pairs` with the ``limit`` largest ``i``.

    The most recent earlier blocks sharing a band key, at most ``limit`` per ``j``: a subset of
    ``lsh_pairs(keys)`` (equal to it when ``limit`` is at least the largest count), sorted the
    same way.
    """
    keys = _keys2d(keys)
    limit = int(limit)
    if limit < 0:
        raise ValueError(f"limit must be at least 0, got {limit}")
    n = len(keys)
    if _choose(impl, keys.size) == "numba":
        return _numba_kernels().lsh_candidates(keys, limit)  # type: ignore[no-any-return]
    codes = [np.zeros(0, dtype=np.int64)]
    for band in range(keys.shape[1]):
        order, start, slot = _band_runs(keys[:, band])
        i, j = _back_pairs(order, slot, np.minimum(slot - start, limit))
        codes.append(j * n + i)
    by_j = _sorted_unique(np.concatenate(codes))
    j = by_j // max(n, 1)
    # Keep the last `limit` entries of each j's run (its largest i).
    run_end = np.searchsorted(j, j, side="right")
    kept = by_j[run_end - np.arange(len(by_j)) <= limit]
    return _as_pairs((kept % max(n, 1)) * n + kept // max(n, 1), n)


# -- exact spans --------------------------------------------------------------------------------


class FirstSeen:
    """The position where each hash was first (or, with ``keep="last"``, last) seen, kept across
    calls (a growing session).

    The numba implementation is an open-addressing table in numpy arrays (load factor at most
    0.5, doubled when full); the plain twin is a dict. A table switches representation when a
    call asks for the other implementation (by ``impl`` or by size), keeping its contents.
    """

    def __init__(
        self,
        capacity: int = 1024,
        *,
        impl: Impl | None = None,
        keep: Literal["first", "last"] = "first",
    ) -> None:
        """An empty table sized for about ``capacity`` hashes; ``impl`` fixes the implementation;
        ``keep`` says whether a seen hash keeps its first position or moves to its latest."""
        self.keep = keep
        self._capacity = 16
        while self._capacity < 2 * max(int(capacity), 1):
            self._capacity *= 2
        self._impl = impl
        self._dict: dict[int, int] | None = {}
        self._keys: U64 | None = None
        self._values: I64 | None = None
        self._used: npt.NDArray[np.bool_] | None = None
        self._size = 0

    def __len__(self) -> int:
        """How many distinct hashes are stored."""
        return len(self._dict) if self._dict is not None else self._size

    def copy(self) -> FirstSeen:
        """An independent copy: inserting into one does not change the other."""
        other = FirstSeen.__new__(FirstSeen)
        other._capacity, other._impl, other._size = self._capacity, self._impl, self._size
        other.keep = self.keep
        other._dict = None if self._dict is None else dict(self._dict)
        other._keys = None if self._keys is None else self._keys.copy()
        other._values = None if self._values is None else self._values.copy()
        other._used = None if self._used is None else self._used.copy()
        return other

    def lookup_insert(self, hashes: U64, positions: I64, *, impl: Impl | None = None) -> I64:
        """For each hash in order: the position stored for it before (-1 if unseen); an unseen
        hash stores its own position (so the first occurrence wins), and with ``keep="last"`` a
        seen one does too (so the latest earlier occurrence is returned)."""
        hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        positions = np.ascontiguousarray(positions, dtype=np.int64)
        if hashes.shape != positions.shape or hashes.ndim != 1:
            raise ValueError("lookup_insert: hashes and positions must be 1-D, of one length")
        chosen = _choose(impl or self._impl, len(self) + len(hashes))
        if chosen == "numba":
            self._to_table()
            assert self._keys is not None and self._values is not None and self._used is not None
            prior, self._keys, self._values, self._used, self._size = _numba_kernels().first_seen(
                self._keys,
                self._values,
                self._used,
                self._size,
                hashes,
                positions,
                self.keep == "last",
            )
            return prior  # type: ignore[no-any-return]
        table = self._to_dict()
        prior_list: list[int] = []
        last = self.keep == "last"
        for h, p in zip(hashes.tolist(), positions.tolist(), strict=True):
            seen = table.get(h)
            if seen is None:
                table[h] = p
                prior_list.append(-1)
            else:
                prior_list.append(seen)
                if last:
                    table[h] = p
        return np.array(prior_list, dtype=np.int64)

    def _to_dict(self) -> dict[int, int]:
        if self._dict is None:
            assert self._keys is not None and self._values is not None and self._used is not None
            self._dict = dict(
                zip(self._keys[self._used].tolist(), self._values[self._used].tolist(), strict=True)
            )
            self._keys = self._values = self._used = None
            self._size = 0
        return self._dict

    def _to_table(self) -> None:
        if self._keys is not None:
            return
        entries = self._dict or {}
        while self._capacity < 2 * (len(entries) + 1):
            self._capacity *= 2
        self._keys = np.zeros(self._capacity, dtype=np.uint64)
        self._values = np.zeros(self._capacity, dtype=np.int64)
        self._used = np.zeros(self._capacity, dtype=np.bool_)
        self._size = 0
        self._dict = None
        if entries:
            hashes = np.fromiter(entries.keys(), dtype=np.uint64, count=len(entries))
            positions = np.fromiter(entries.values(), dtype=np.int64, count=len(entries))
            _, self._keys, self._values, self._used, self._size = _numba_kernels().first_seen(
                self._keys, self._values, self._used, 0, hashes, positions, False
            )


def extend_spans(
    tokens: U32,
    block_of: I32,
    block_lo: I64,
    block_hi: I64,
    cand_pos: I64,
    cand_src: I64,
    k: int,
    min_len: int,
    *,
    impl: Impl | None = None,
) -> tuple[I64, I64, I64]:
    """Verify candidate k-gram matches and extend them to maximal repeated spans.

    ``tokens`` holds every block's token ids; block ``b`` spans ``[block_lo[b], block_hi[b])``
    and ``block_of[p]`` is the block of position ``p``. Candidate ``c`` says the k-gram at
    ``cand_pos[c]`` hashes like the earlier one at ``cand_src[c]``; candidates come sorted by
    ``cand_pos``. In order, each candidate ``(p, q)``:

    - is skipped if ``p`` is before ``covered``, the end of the last span emitted in ``p``'s
      block (the block start when the block changes), or if its k tokens differ from ``q``'s
      (a hash collision);
    - extends left while both sides stay in their blocks (``p``'s side not before ``covered``,
      nor more than ``min_len`` tokens back: the first hit of a repeat is that close to its
      start) and the tokens agree, then right while both stay in their blocks and agree;
    - when ``p`` and ``q`` share a block, is cut so the source ends by the duplicate's start;
    - is emitted as ``(dup_lo, dup_hi, src_lo)`` if at least ``min_len`` long, and then sets
      ``covered``.

    Returns the three arrays of global positions, sorted by ``dup_lo``. Without an ``impl`` the
    size deciding it is ``len(cand_pos) * k``, the token comparisons the twin makes at least.
    """
    k = _positive(k, "k")
    tokens = np.ascontiguousarray(tokens, dtype=np.uint32)
    block_of = np.ascontiguousarray(block_of, dtype=np.int32)
    block_lo = np.ascontiguousarray(block_lo, dtype=np.int64)
    block_hi = np.ascontiguousarray(block_hi, dtype=np.int64)
    cand_pos = np.ascontiguousarray(cand_pos, dtype=np.int64)
    cand_src = np.ascontiguousarray(cand_src, dtype=np.int64)
    _check_spans_input(tokens, block_of, block_lo, block_hi, cand_pos, cand_src)
    if _choose(impl, len(cand_pos) * k) == "numba":
        lo, hi, src = _numba_kernels().extend_spans(
            tokens, block_of, block_lo, block_hi, cand_pos, cand_src, k, int(min_len)
        )
        return lo, hi, src
    dup_lo: list[int] = []
    dup_hi: list[int] = []
    src_lo: list[int] = []
    cur_block, covered = -1, 0
    for p, q in zip(cand_pos.tolist(), cand_src.tolist(), strict=True):
        bp, bq = int(block_of[p]), int(block_of[q])
        if bp != cur_block:
            cur_block, covered = bp, int(block_lo[bp])
        if p < covered:
            continue
        start_p, end_p = int(block_lo[bp]), int(block_hi[bp])
        start_q, end_q = int(block_lo[bq]), int(block_hi[bq])
        if (
            p + k > end_p
            or q + k > end_q
            or not np.array_equal(tokens[p : p + k], tokens[q : q + k])
        ):
            continue
        lo_p, lo_q = p, q
        # A repeat's first hit lies within min_len tokens of its start (winnowing), so the left
        # walk needs no more; unbounded, it is quadratic on periodic text.
        floor_p = max(start_p, covered, p - int(min_len))
        while lo_p - 1 >= floor_p and lo_q - 1 >= start_q and tokens[lo_p - 1] == tokens[lo_q - 1]:
            lo_p, lo_q = lo_p - 1, lo_q - 1
        cap = lo_p - lo_q if bp == bq else end_p - lo_p
        hi_p, hi_q = p + k, q + k
        while hi_p < end_p and hi_q < end_q and hi_p - lo_p < cap and tokens[hi_p] == tokens[hi_q]:
            hi_p, hi_q = hi_p + 1, hi_q + 1
        if bp == bq:
            hi_p = min(hi_p, lo_p + cap)
        if hi_p - lo_p >= min_len:
            dup_lo.append(lo_p)
            dup_hi.append(hi_p)
            src_lo.append(lo_q)
            covered = hi_p
    return (
        np.array(dup_lo, dtype=np.int64),
        np.array(dup_hi, dtype=np.int64),
        np.array(src_lo, dtype=np.int64),
    )


def _check_spans_input(
    tokens: U32, block_of: I32, block_lo: I64, block_hi: I64, cand_pos: I64, cand_src: I64
) -> None:
    """Reject inputs the numba kernel would read out of bounds with."""
    n, nb = len(tokens), len(block_lo)
    if len(block_of) != n or len(block_hi) != nb or len(cand_src) != len(cand_pos):
        raise ValueError(
            "extend_spans: tokens and block_of, block_lo and block_hi, cand_pos and cand_src"
            " must have equal lengths"
        )
    if nb and (block_lo.min() < 0 or block_hi.max() > n or (block_hi < block_lo).any()):
        raise ValueError(f"extend_spans: block ranges must lie within [0, {n}]")
    if len(cand_pos):
        both = np.concatenate((cand_pos, cand_src))
        if both.min() < 0 or both.max() >= n:
            raise ValueError(f"extend_spans: candidate positions must lie within [0, {n})")
        blocks = block_of[both]
        if blocks.min() < 0 or blocks.max() >= nb:
            raise ValueError(f"extend_spans: block_of values must lie within [0, {nb})")


__all__ = [
    "SMALL_INPUT",
    "FirstSeen",
    "band_keys",
    "extend_spans",
    "impl_for",
    "kgram_hashes",
    "kgram_hashes_many",
    "lsh_candidates",
    "lsh_pairs",
    "minhash_many",
    "permutations",
    "shingles_many",
    "winnow",
    "winnow_many",
]
