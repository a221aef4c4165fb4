"""3. Incremental audits: one ~2 KB message appended to a 10k / 50k / 200k-token session.

A kept `ctxtax.Auditor` re-audits the grown session (each round appends the next real message),
against a full audit of a grown session with a fresh `Auditor` and an empty token cache. The
target (append < 5 % of the full audit at 200k tokens) is checked by compare.py.
"""

from __future__ import annotations

from typing import Any

import corpus
import pipelines
import pytest

import ctxtax

pytestmark = pytest.mark.benchmark(group="incremental", warmup=False)

SIZES = [10_000, 50_000, 200_000]


@pytest.fixture(scope="module")
def sessions(counter: ctxtax.TiktokenCounter) -> dict[int, corpus.GrowingSession]:
    missing = corpus.real_missing()
    if missing:
        pytest.skip(missing)
    return {size: corpus.incremental_session(size, counter, appends=24) for size in SIZES}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s // 1000}k")
def test_append_one_message(
    benchmark, sessions: dict[int, corpus.GrowingSession], size: int, rounds: int
) -> None:
    session = sessions[size]
    auditor = pipelines.new_auditor(ctxtax.TiktokenCounter())
    auditor.audit(list(session.messages))
    grown = list(session.messages)
    appends = iter(session.appends)

    def append() -> tuple[tuple[Any, ...], dict[str, Any]]:
        nonlocal grown
        grown = [*grown, next(appends)]
        return (grown,), {}

    benchmark.extra_info["session_tokens"] = session.tokens
    report = benchmark.pedantic(
        auditor.audit, setup=append, rounds=4 * rounds, warmup_rounds=0 if rounds == 1 else 1
    )
    assert auditor.rebuilds == 1  # every append extended the index, none rebuilt it
    full = pipelines.full_audit(grown, ctxtax.TiktokenCounter())
    assert (report.total_tokens, report.wasted_tokens) == (full.total_tokens, full.wasted_tokens)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s // 1000}k")
def test_full_audit_of_grown_session(
    benchmark,
    sessions: dict[int, corpus.GrowingSession],
    counter: ctxtax.TiktokenCounter,
    size: int,
    rounds: int,
) -> None:
    session = sessions[size]
    grown = [*session.messages, session.appends[0]]
    benchmark.extra_info["session_tokens"] = session.tokens
    report = benchmark.pedantic(
        pipelines.full_audit, args=(grown, counter), rounds=rounds, warmup_rounds=1
    )
    assert report.total_tokens > session.tokens
