"""Waste accounting: a token is waste once however many findings cover it; a fix that saves less
than its span (noise: the visible text stays) counts its saving, not the span; a finding about
breakage counts nothing; a tool schema is billed over the calls its finding names."""

from __future__ import annotations

import numpy as np

from ctxtax._counting import OPENAI_FRAMING, ContextTokens
from ctxtax._findings import Finding, Loc
from ctxtax._waste import measure


def table() -> ContextTokens:
    # Two messages of one part each: 1,000 and 400 tokens (framing left out).
    return ContextTokens(
        provider="openai",
        framing=OPENAI_FRAMING,
        message_tokens=np.array([1000, 400], dtype=np.int64),
        framing_tokens=np.array([0, 0], dtype=np.int64),
        part_tokens=[[1000], [400]],
        tool_tokens=[300, 200],
    )


def finding(code: str, tokens: int, **loc: int | str | None) -> Finding:
    return Finding(code=code, rule=code.lower(), message="m", loc=Loc(**loc), tokens=tokens)


def span(code: str, tokens: int, start: int, end: int, message: int = 0) -> Finding:
    return finding(code, tokens, message=message, part=0, token_start=start, token_end=end)


def run(*findings: Finding) -> tuple[int, dict[int, int], int]:
    residency = np.array([5, 2], dtype=np.int64)
    waste = measure(
        list(findings), table(), residency, calls_with_tools=7, policy="none", price=None
    )
    return waste.tokens, waste.by_message, waste.billed_tokens


def test_overlapping_duplicates_count_once() -> None:
    assert run(span("CTX101", 100, 0, 100), span("CTX103", 100, 50, 150)) == (150, {0: 150}, 750)


def test_noise_counts_its_saving_not_its_span() -> None:
    # Whitespace over a 600-token span saves 16 tokens: 16 are waste, not 600.
    assert run(span("CTX404", 16, 100, 700))[0] == 16


def test_noise_inside_a_duplicate_is_not_counted_again() -> None:
    # Half the noisy span lies inside a duplicated span already counted whole.
    tokens, _, _ = run(span("CTX101", 300, 0, 300), span("CTX401", 40, 200, 400))
    assert tokens == 300 + 20


def test_breakage_findings_are_not_waste() -> None:
    assert run(finding("CTX901", 0, message=1, part=0)) == (0, {}, 0)


def test_waste_never_exceeds_the_part() -> None:
    assert (
        run(span("CTX101", 400, 0, 400, message=1), span("CTX402", 90, 0, 400, message=1))[0] == 400
    )


def test_tool_waste_is_billed_over_the_calls_named() -> None:
    idle = finding("CTX201", 300, tool="search")
    cold = Finding(
        code="CTX202", rule="cold-tool", message="m", loc=Loc(tool="fetch"), tokens=200, calls=3
    )
    bloated = Finding(
        code="CTX204", rule="bloated", message="m", loc=Loc(tool="search"), tokens=50, calls=7
    )
    # search: idle over all 7 calls (the bloated part is inside it); fetch: cold for 3 calls.
    assert run(idle, cold, bloated) == (500, {}, 300 * 7 + 200 * 3)
