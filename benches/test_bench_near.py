"""2. Text -> near-duplicate candidate pairs: ctxtax's steps and its peers on the same documents.

Every block of the corpus with >= 64 tokens; 64 permutations, 16 bands x 4 rows everywhere. What
each pipeline does (shingles, hashing, threads) is in `pipelines`' docstring; compare.py prints
the ratios. Peers that are not installed skip (``pip install -e .[dev,bench]``).
"""

from __future__ import annotations

import corpus
import numpy as np
import pipelines
import pytest

import ctxtax

pytestmark = pytest.mark.benchmark(group="near-duplicates")


@pytest.fixture(scope="module")
def numeric(counter: ctxtax.TiktokenCounter) -> np.ndarray:
    return counter.numeric_tokens()


def test_ctxtax_from_token_ids(benchmark, documents: corpus.Documents, numeric: np.ndarray) -> None:
    pairs = benchmark(pipelines.ctxtax_from_ids, documents.ids, numeric, "numba")
    assert len(pairs) > 0
    assert np.array_equal(pairs, pipelines.ctxtax_from_ids(documents.ids, numeric, "python"))


def test_ctxtax_from_token_ids_one_thread(
    benchmark, documents: corpus.Documents, numeric: np.ndarray
) -> None:
    # The same pipeline with the kernels kept on the calling thread (CTXTAX_THREADS=1).
    pairs = benchmark(
        pipelines.one_thread, lambda: pipelines.ctxtax_from_ids(documents.ids, numeric, "numba")
    )
    assert np.array_equal(pairs, pipelines.ctxtax_from_ids(documents.ids, numeric, "numba"))


def test_ctxtax_plain_twins_from_token_ids(
    benchmark, documents: corpus.Documents, numeric: np.ndarray
) -> None:
    pairs = benchmark(pipelines.ctxtax_from_ids, documents.ids, numeric, "python")
    assert len(pairs) > 0


def test_ctxtax_from_shingles(benchmark, shingles: pipelines.Shingles) -> None:
    pairs = benchmark(pipelines.ctxtax_from_shingles, shingles, "numba")
    assert len(pairs) > 0


def test_ctxtax_from_raw_text(
    benchmark, documents: corpus.Documents, counter: ctxtax.TiktokenCounter, numeric: np.ndarray
) -> None:
    enc = pipelines.encoder()
    pairs = benchmark(
        pipelines.ctxtax_from_text, documents.texts, enc, counter.threads, numeric, "numba"
    )
    assert np.array_equal(pairs, pipelines.ctxtax_from_ids(documents.ids, numeric, "numba"))


@pytest.mark.parametrize("identity", [True, False], ids=["identity-hash", "sha1"])
def test_datasketch(benchmark, shingles: pipelines.Shingles, identity: bool) -> None:
    pytest.importorskip("datasketch", reason="datasketch is not installed (pip install -e .[dev])")
    lists = shingles.lists()
    if not identity:
        lists = [[v.to_bytes(4, "little") for v in row] for row in lists]
    found = benchmark.pedantic(
        pipelines.datasketch_pairs, args=(lists,), kwargs={"identity": identity}, rounds=3
    )
    assert pipelines.pair_count(found) > 0
    if identity:  # the same hash family and draws: ctxtax's signatures, bit for bit
        theirs = [m.hashvalues for m in pipelines.datasketch_minhashes(lists, identity=True)]
        ours = pipelines.signatures(shingles, "numba")
        assert np.array_equal(ours, np.array(theirs, dtype=np.uint32))


def test_rensa_shingles(benchmark, shingles: pipelines.Shingles) -> None:
    pytest.importorskip("rensa", reason="rensa is not installed (pip install -e .[bench])")
    as_bytes = [[v.to_bytes(4, "little") for v in row] for row in shingles.lists()]
    assert pipelines.pair_count(benchmark(pipelines.rensa_pairs, as_bytes)) > 0


def test_rensa_flat_matrix(benchmark, shingles: pipelines.Shingles) -> None:
    pytest.importorskip("rensa", reason="rensa is not installed (pip install -e .[bench])")
    flat, offsets = shingles.values.astype(np.uint64), shingles.offsets.astype(np.uint64)
    assert benchmark(pipelines.rensa_flat, flat, offsets) > 0


def test_rensa_words(benchmark, documents: corpus.Documents) -> None:
    pytest.importorskip("rensa", reason="rensa is not installed (pip install -e .[bench])")
    assert pipelines.pair_count(benchmark(pipelines.rensa_words, documents.texts)) > 0


def test_gaoya_shingles(benchmark, shingles: pipelines.Shingles) -> None:
    pytest.importorskip("gaoya", reason="gaoya is not installed (pip install -e .[bench])")
    as_str = [[str(v) for v in row] for row in shingles.lists()]
    assert pipelines.pair_count(benchmark(pipelines.gaoya_tokens, as_str)) > 0


def test_gaoya_words(benchmark, documents: corpus.Documents) -> None:
    pytest.importorskip("gaoya", reason="gaoya is not installed (pip install -e .[bench])")
    assert pipelines.pair_count(benchmark(pipelines.gaoya_words, documents.texts)) > 0
