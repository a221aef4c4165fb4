"""1. Full audit throughput: all duplication rules on a ~10 MB corpus vs tokenizing alone.

The ratio the target is about (audit MB/s / tokenize MB/s >= 0.85) is printed by compare.py;
here each side is a benchmark of its own (group ``audit``), the MB in ``extra_info``.
"""

from __future__ import annotations

import corpus
import pipelines
import pytest

import ctxtax

pytestmark = pytest.mark.benchmark(group="audit", warmup=False)


def test_tokenize_only(
    benchmark, real_corpus: corpus.Corpus, counter: ctxtax.TiktokenCounter, rounds: int
) -> None:
    enc = pipelines.encoder()
    benchmark.extra_info["megabytes"] = real_corpus.megabytes
    tokens = benchmark.pedantic(
        pipelines.tokenize_only,
        args=(enc, real_corpus.texts, counter.threads),
        rounds=rounds,
        warmup_rounds=0 if rounds == 1 else 1,
    )
    assert tokens == pipelines.counter_encode(pipelines.fresh_counter(counter), real_corpus.texts)


def test_counter_encode_many(
    benchmark, real_corpus: corpus.Corpus, counter: ctxtax.TiktokenCounter, rounds: int
) -> None:
    benchmark.extra_info["megabytes"] = real_corpus.megabytes
    tokens = benchmark.pedantic(
        pipelines.counter_encode,
        setup=lambda: ((pipelines.fresh_counter(counter), real_corpus.texts), {}),
        rounds=rounds,
        warmup_rounds=0 if rounds == 1 else 1,
    )
    assert tokens > 0


def test_audit_empty_token_cache(
    benchmark, real_corpus: corpus.Corpus, counter: ctxtax.TiktokenCounter, rounds: int
) -> None:
    benchmark.extra_info["megabytes"] = real_corpus.megabytes
    report = benchmark.pedantic(
        pipelines.audit_corpus,
        setup=lambda: ((real_corpus.contexts, pipelines.fresh_counter(counter)), {}),
        rounds=rounds,
        warmup_rounds=0 if rounds == 1 else 1,
    )
    assert report.total_tokens > 0
    assert report.wasted_tokens > 0  # real agent logs always repeat something


def test_audit_token_ids_cached(
    benchmark, real_corpus: corpus.Corpus, counter: ctxtax.TiktokenCounter, rounds: int
) -> None:
    """The engine's own work: the counter already holds every text's ids."""
    cold = pipelines.audit_corpus(real_corpus.contexts, pipelines.fresh_counter(counter))
    benchmark.extra_info["megabytes"] = real_corpus.megabytes
    warm = benchmark.pedantic(
        pipelines.audit_corpus, args=(real_corpus.contexts, counter), rounds=rounds
    )
    assert (warm.total_tokens, warm.wasted_tokens) == (cold.total_tokens, cold.wasted_tokens)
