"""Fixtures of the duplication-engine benchmarks, and how they run.

``pytest benches --benchmark-only`` times everything on the full corpus (pyproject's
``--benchmark-disable`` is overridden by ``--benchmark-only`` here). With benchmarks disabled
(``pytest benches``, the default options) every benchmark runs once, as a plain test, on a
0.4 MB slice of the corpus: a quick check that the suites still work.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus
import pipelines

import ctxtax


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # pyproject's addopts carry --benchmark-disable so the normal test run never times anything;
    # asking for --benchmark-only means timing, so it wins.
    if config.getoption("benchmark_only", default=False):
        config.option.benchmark_enable = True


@pytest.fixture(scope="session", autouse=True)
def numba_loaded() -> None:
    """numba's kernels loaded before anything is timed (a long-running process's state)."""
    pipelines.load_numba()


@pytest.fixture(scope="session")
def quick(request: pytest.FixtureRequest) -> bool:
    """True when benchmarks are disabled: run each once, on a small slice."""
    option = request.config.getoption
    return bool(option("benchmark_disable") and not option("benchmark_enable"))


@pytest.fixture(scope="session")
def rounds(quick: bool) -> int:
    """Timed rounds of the slow (pedantic) benchmarks."""
    return 1 if quick else 5


@pytest.fixture(scope="session")
def real_corpus(quick: bool) -> corpus.Corpus:
    """The audit corpus (a slice when quick); skips when ../shared/data/real is absent."""
    missing = corpus.real_missing()
    if missing:
        pytest.skip(missing)
    return corpus.load_corpus(corpus.QUICK_BYTES if quick else None)


@pytest.fixture(scope="session")
def counter() -> ctxtax.TiktokenCounter:
    """One counter for the session (its tokenizer is built once); tests empty its cache."""
    counter = ctxtax.TiktokenCounter()
    counter.count("warm")
    return counter


@pytest.fixture(scope="session")
def documents(real_corpus: corpus.Corpus, counter: ctxtax.TiktokenCounter) -> corpus.Documents:
    """The near-duplicate stage's documents: blocks of >= 64 tokens."""
    return corpus.near_documents(real_corpus.contexts, counter)


@pytest.fixture(scope="session")
def shingles(documents: corpus.Documents, counter: ctxtax.TiktokenCounter) -> pipelines.Shingles:
    """The documents' winnowed 8-gram shingles, as the engine computes them (numba warm)."""
    return pipelines.shingles(documents.ids, counter.numeric_tokens(), "numba")
