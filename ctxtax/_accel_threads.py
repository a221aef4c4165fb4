"""Large kernel calls split over threads: the numba kernels release the GIL (``nogil=True``).

A kernel that works block by block (k-gram hashes, winnowing, shingles, MinHash) gives the
same result when its blocks are cut into runs and each run is done on its own, so a call
with at least `PARALLEL_INPUT` elements of work is cut, at block boundaries, into runs of about
equal work, a few per thread. The calling thread and helpers from a small pool take the runs in
turn, and the runs' results are joined in order: bit for bit what one call returns.

These are plain Python threads, each running an ordinary compiled kernel: no numba threading
layer is involved (its default ``workqueue`` layer aborts the process when two threads run
parallel kernels at once, as threaded servers would). A kernel is only run on several threads
once it has finished one call in this process, so it is never compiled by two threads at once.

``CTXTAX_THREADS`` sets the number of threads (``1``: never split); by default, the CPUs this
process may run on, at most 4.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

import numpy as np
import numpy.typing as npt

from ctxtax.errors import ConfigError

if TYPE_CHECKING:  # concurrent.futures is imported on the first split: start-up stays lean
    from concurrent.futures import Future, ThreadPoolExecutor

T = TypeVar("T")
I64 = npt.NDArray[np.int64]

PARALLEL_INPUT = 1 << 18
"""Work (tokens or shingles) from which a kernel call is split over threads: about 2 ms of
kernel time, against some 0.1 ms to hand runs to the pool and join their results."""

RUNS_PER_THREAD = 4
"""Runs of blocks per thread (see `split_runs`)."""

ENV_VAR = "CTXTAX_THREADS"
MAX_THREADS = 4

_POOL: dict[str, tuple[int, ThreadPoolExecutor]] = {}
_POOL_LOCK = threading.Lock()
_WARM: set[str] = set()
_PARSED: dict[str, int] = {}  # CTXTAX_THREADS as read, parsed (the variable is read every call)


def threads() -> int:
    """How many threads a large kernel call is split over (``CTXTAX_THREADS``, else the CPUs
    this process may use, at most `MAX_THREADS`). Raises `ConfigError` for a value that is not
    a whole number >= 1."""
    raw = os.environ.get(ENV_VAR, "")
    known = _PARSED.get(raw)
    if known is None:
        known = _PARSED[raw] = _parse(raw)
    return known


def _parse(raw: str) -> int:
    text = raw.strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise ConfigError(f"{ENV_VAR}={raw!r}: expected a whole number of threads, >= 1")
        return value
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cpus))


def chunks(work_ends: I64, parts: int) -> list[tuple[int, int]]:
    """Cut blocks ``0 .. len(work_ends)`` into at most ``parts`` runs ``(first, stop)`` of about
    equal work, where ``work_ends[b]`` is the work of blocks ``0 .. b`` together (a cumulative
    sum). Empty runs are dropped; one block is never cut."""
    n = len(work_ends)
    if n == 0:
        return []
    total = int(work_ends[-1])
    if parts <= 1 or total <= 0:
        return [(0, n)]
    targets = total * np.arange(1, parts, dtype=np.float64) / parts
    cuts = np.searchsorted(work_ends, targets, side="left") + 1
    bounds = sorted({0, n, *(int(c) for c in cuts if 0 < c < n)})
    return list(itertools.pairwise(bounds))


def pool(size: int, purpose: str = "kernel") -> ThreadPoolExecutor:
    """This process's pool of at least ``size`` threads for ``purpose`` (one pool each: the
    tokenizer's long runs never hold up a kernel's split), made on first use and forgotten
    in a forked child."""
    with _POOL_LOCK:
        held = _POOL.get(purpose)
        if held is not None and held[0] >= size:
            return held[1]
        if held is not None:  # more threads asked for (CTXTAX_THREADS changed): a bigger pool
            held[1].shutdown(wait=False)
        from concurrent.futures import ThreadPoolExecutor

        made = ThreadPoolExecutor(size, thread_name_prefix=f"ctxtax-{purpose}")
        _POOL[purpose] = (size, made)
        return made


def _forget_pool() -> None:
    """A forked child has the pool object but none of its threads."""
    _POOL.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def split_runs(
    name: str, work: int, work_ends: Callable[[], I64], run: Callable[[int, int], T]
) -> list[T] | None:
    """``run(first, stop)`` for each run of blocks, split over threads; None when the call
    should not be split (small work, one thread, or the kernel ``name`` not warm yet), and the
    caller then makes its one ordinary call.

    The blocks are cut into `RUNS_PER_THREAD` runs per thread, which the threads take in turn
    as they finish one: a thread slowed down (a busy CPU, a virtual CPU the host has lent to
    another machine) does fewer runs instead of holding up the call (measured on this 2-core
    virtual machine: a fixed half each took up to twice as long as one thread alone).
    """
    n_threads = threads()
    if n_threads < 2 or name not in _WARM or work < PARALLEL_INPUT:
        return None
    runs = chunks(work_ends(), n_threads * RUNS_PER_THREAD)
    if len(runs) < 2:
        return None
    results: list[T | None] = [None] * len(runs)
    turns = iter(range(len(runs)))  # next() on it is atomic: the GIL is held while it runs
    failed: list[BaseException] = []

    def worker() -> None:
        for i in turns:
            if failed:
                return
            try:
                results[i] = run(*runs[i])
            except BaseException as exc:  # re-raised on the calling thread
                failed.append(exc)
                return

    helpers: list[Future[None]] = []
    try:
        kernel_pool = pool(n_threads - 1)
        for _ in range(n_threads - 1):
            helpers.append(kernel_pool.submit(worker))
    except RuntimeError:  # no new threads now (the interpreter is exiting): fewer helpers
        pass
    worker()
    for helper in helpers:
        helper.result()  # always waited for: the runs read the caller's arrays
    if failed:
        raise failed[0]
    return cast("list[T]", results)  # every run has set its result


def run_blocks(
    name: str,
    work: int,
    nblocks: int,
    work_ends: Callable[[], I64],
    run: Callable[[int, int], T],
) -> list[T]:
    """``run`` over all ``nblocks`` blocks of kernel ``name``: the results of its runs in order
    when the call is split over threads (`split_runs`), else the one result of
    ``run(0, nblocks)``, which also marks the kernel warm."""
    runs = split_runs(name, work, work_ends, run)
    if runs is None:
        runs = [run(0, nblocks)]
        warmed(name)
    return runs


def warmed(name: str) -> None:
    """Record that kernel ``name`` has finished a call in this process (it is compiled)."""
    _WARM.add(name)
