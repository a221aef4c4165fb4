"""Large kernel calls split over threads give exactly what one call gives.

`ctxtax._accel_threads` cuts a block kernel's blocks into runs of about equal work and runs them
on a pool; these tests lower the size at which it splits, force the thread count, and compare
every split kernel with the same call on one thread (and record that the split happened).
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from ctxtax import _accel, _accel_threads
from ctxtax.errors import ConfigError


def cumulative(work: list[int]) -> np.ndarray:
    return np.cumsum(np.asarray(work, dtype=np.int64))


def test_chunks_cover_every_block_once_in_order() -> None:
    rng = np.random.default_rng(3)
    for parts in (1, 2, 3, 4, 7):
        for n in (1, 2, 5, 40):
            ends = cumulative(rng.integers(0, 50, size=n).tolist())
            runs = _accel_threads.chunks(ends, parts)
            assert runs[0][0] == 0 and runs[-1][1] == n
            assert all(a < b for a, b in runs)
            assert all(runs[i][1] == runs[i + 1][0] for i in range(len(runs) - 1))
            assert len(runs) <= max(1, parts)


def test_chunks_balance_the_work() -> None:
    ends = cumulative([10] * 100)
    runs = _accel_threads.chunks(ends, 4)
    assert [b - a for a, b in runs] == [25, 25, 25, 25]
    # One block holding almost all the work is never cut: it is a run of its own.
    ends = cumulative([1, 1000, 1, 1])
    runs = _accel_threads.chunks(ends, 2)
    assert (1, 2) in runs or (0, 2) in runs
    assert _accel_threads.chunks(cumulative([]), 3) == []
    assert _accel_threads.chunks(cumulative([0, 0]), 2) == [(0, 2)]


def test_threads_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTXTAX_THREADS", "3")
    assert _accel_threads.threads() == 3
    monkeypatch.delenv("CTXTAX_THREADS")
    assert 1 <= _accel_threads.threads() <= _accel_threads.MAX_THREADS
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv("CTXTAX_THREADS", bad)
        with pytest.raises(ConfigError, match="CTXTAX_THREADS"):
            _accel_threads.threads()


@pytest.fixture
def split_everything(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Split every call of a warm kernel; yields the number of runs of each split call."""
    monkeypatch.setattr(_accel_threads, "PARALLEL_INPUT", 1)
    counts: list[int] = []
    original = _accel_threads.chunks

    def recording(work_ends: np.ndarray, parts: int) -> list[tuple[int, int]]:
        runs = original(work_ends, parts)
        counts.append(len(runs))
        return runs

    monkeypatch.setattr(_accel_threads, "chunks", recording)
    yield counts


def random_blocks(rng: np.random.Generator, n: int, nblocks: int) -> tuple[np.ndarray, np.ndarray]:
    ids = rng.integers(0, 500, size=n).astype(np.uint32)
    cuts = np.sort(rng.integers(0, n + 1, size=max(nblocks - 1, 0)))
    offsets = np.concatenate(([0], cuts, [n])).astype(np.int64)
    return ids, offsets


def same(a: Any, b: Any) -> None:
    if isinstance(a, tuple):
        for x, y in zip(a, b, strict=True):
            same(x, y)
        return
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b)


KERNELS: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
    "kgram_hashes_many": lambda ids, off: _accel.kgram_hashes_many(ids, off, 5, impl="numba"),
    "winnow_many": lambda ids, off: _accel.winnow_many(
        ids.astype(np.uint64) * np.uint64(2654435761), off, 4, impl="numba"
    ),
    "shingles_many": lambda ids, off: _accel.shingles_many(
        ids, off[:-1], off[1:], np.arange(500) % 7 == 0, 3, 8, 4, impl="numba"
    ),
    "shingles_many, w=3": lambda ids, off: _accel.shingles_many(
        ids, off[:-1], off[1:], None, 0, 4, 3, impl="numba"
    ),
    "minhash_many": lambda ids, off: _accel.minhash_many(
        ids, off, *_accel.permutations(33), impl="numba"
    ),
}


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("threads", [2, 3, 4])
def test_split_calls_equal_one_call(
    name: str, threads: int, split_everything: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = KERNELS[name]
    rng = np.random.default_rng(threads * 17 + len(name))
    for n, nblocks in ((5000, 60), (3000, 3), (2000, 1), (40, 30), (0, 1), (0, 4)):
        ids, off = random_blocks(rng, n, nblocks)
        monkeypatch.setenv("CTXTAX_THREADS", "1")
        one = kernel(ids, off)
        monkeypatch.setenv("CTXTAX_THREADS", str(threads))
        before = len(split_everything)
        split = kernel(ids, off)
        same(split, one)
        if n >= 2000 and nblocks >= threads:
            assert split_everything[before:] and split_everything[-1] >= 2, "the call was not split"


def test_blocks_inside_a_larger_array_are_split_right(split_everything: list[int]) -> None:
    # Offsets that start past 0 and end before the array's end (how the engine calls them).
    rng = np.random.default_rng(8)
    ids = rng.integers(0, 300, size=10_000).astype(np.uint32)
    off = np.sort(rng.integers(2000, 8000, size=50)).astype(np.int64)
    results = {}
    for threads in ("1", "2"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("CTXTAX_THREADS", threads)
            results[threads] = (
                _accel.kgram_hashes_many(ids, off, 6, impl="numba"),
                _accel.minhash_many(ids, off, *_accel.permutations(16), impl="numba"),
            )
    same(results["1"], results["2"])
    assert max(split_everything) >= 2


def test_an_error_in_a_run_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_accel_threads, "PARALLEL_INPUT", 1)
    monkeypatch.setenv("CTXTAX_THREADS", "2")
    _accel_threads.warmed("boom")

    def run(first: int, stop: int) -> int:
        if first > 0:
            raise RuntimeError(f"run {first}-{stop} failed")
        return 0

    with pytest.raises(RuntimeError, match="failed"):
        _accel_threads.split_runs("boom", 100, lambda: cumulative([50, 50]), run)


def test_a_kernel_is_not_split_before_it_has_run_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_accel_threads, "PARALLEL_INPUT", 1)
    monkeypatch.setenv("CTXTAX_THREADS", "2")
    calls: list[tuple[int, int]] = []

    def run(first: int, stop: int) -> int:
        calls.append((first, stop))
        return stop - first

    assert _accel_threads.split_runs("never-run", 100, lambda: cumulative([50, 50]), run) is None
    assert calls == []


def test_callers_on_several_threads_at_once_get_their_own_results(
    split_everything: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A threaded server: several requests split their kernel calls over the one shared pool at
    # the same time. Nobody waits forever, and everybody gets exactly their own result.
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(11)
    inputs = [random_blocks(rng, 20_000, 80) for _ in range(6)]
    a, b = _accel.permutations(64)

    def keys(ids: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _accel.near_keys(ids, off[:-1], off[1:], None, 0, 8, 4, a, b, 16, 4, impl="numba")

    monkeypatch.setenv("CTXTAX_THREADS", "1")
    expected = [keys(ids, off) for ids, off in inputs]
    monkeypatch.setenv("CTXTAX_THREADS", "3")
    with ThreadPoolExecutor(4) as callers:
        for _ in range(3):
            got = list(callers.map(lambda io: keys(*io), inputs))
            for mine, theirs in zip(got, expected, strict=True):
                same(mine, theirs)
    assert len(split_everything) >= 3 * len(inputs)


def test_without_helper_threads_the_caller_does_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # At interpreter exit no new thread can start (the pool refuses new work): the call still
    # completes, on the calling thread.
    monkeypatch.setattr(_accel_threads, "PARALLEL_INPUT", 1)
    monkeypatch.setenv("CTXTAX_THREADS", "2")
    _accel_threads.warmed("no-helpers")

    def refuse(size: int, purpose: str = "kernel") -> Any:
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    monkeypatch.setattr(_accel_threads, "pool", refuse)
    done: list[tuple[int, int]] = []

    def run(first: int, stop: int) -> int:
        done.append((first, stop))
        return stop - first

    runs = _accel_threads.split_runs("no-helpers", 100, lambda: cumulative([50, 50]), run)
    assert runs == [1, 1] and done == [(0, 1), (1, 2)]


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "1.5"])
def test_a_bad_thread_count_is_refused_on_any_input(
    bad: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused on a short session too (whose kernels never split), as CTXTAX_IMPL is: a setting
    # that only failed on large inputs would surprise in production.
    from ctxtax._cli import main
    from tests.conftest import ROOT

    monkeypatch.setenv("CTXTAX_THREADS", bad)
    assert main(["audit", str(ROOT / "examples" / "sessions" / "coding-agent.json")]) == 2
    assert "CTXTAX_THREADS" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="whole number"):
        _accel.kgram_hashes(np.arange(40, dtype=np.uint32), 8, impl="python")
    monkeypatch.setenv("CTXTAX_THREADS", " 3 ")
    assert _accel_threads.threads() == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_splits_with_threads_of_its_own(split_everything: list[int]) -> None:
    # The child inherits the pool object but none of its threads: it must start its own, or
    # a split call would wait forever for helpers that do not exist.
    os.environ["CTXTAX_THREADS"] = "2"
    try:
        rng = np.random.default_rng(5)
        ids, off = random_blocks(rng, 20_000, 40)
        _accel.kgram_hashes_many(ids, off, 6, impl="numba")  # the kernel is warm after this,
        expected = _accel.kgram_hashes_many(ids, off, 6, impl="numba")  # the pool exists now
        assert split_everything
        read, write = os.pipe()
        with warnings.catch_warnings():  # 3.12+ warns of fork in a threaded process: intended
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: report 1 when its split call gives the parent's result
            ok = b"0"
            try:
                got = _accel.kgram_hashes_many(ids, off, 6, impl="numba")
                ok = (
                    b"1"
                    if all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
                    else b"0"
                )
            finally:
                os.write(write, ok)
                os._exit(0)
        os.close(write)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child's split call never returned")
        assert os.read(read, 1) == b"1"
        os.close(read)
    finally:
        del os.environ["CTXTAX_THREADS"]
