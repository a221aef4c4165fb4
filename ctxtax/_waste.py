"""Waste accounting: a token counts as waste once however many rules flag it, and it is paid on
every call that carries it (a write or plain input the first time, a cache read after that)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ctxtax._counting import ContextTokens
from ctxtax._findings import Finding
from ctxtax._pricing import Price
from ctxtax._session import CachePolicy


@dataclass(frozen=True, slots=True)
class Waste:
    """Totals of a session's waste."""

    tokens: int
    by_rule: dict[str, int]
    by_message: dict[int, int]
    tools: int
    billed_tokens: int
    cost_usd: float | None


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _overlap(a: int, b: int, merged: list[tuple[int, int]]) -> int:
    return sum(max(0, min(b, hi) - max(a, lo)) for lo, hi in merged)


def _part_waste(
    full: list[tuple[int, int]], partial: list[tuple[int, int, int]], part_tokens: int
) -> int:
    """Waste in one part: the union of the spans that are waste whole (a duplicate), plus, for
    a finding whose fix saves less than its span (noise: the visible text stays), its saving
    scaled by how much of its span no whole-waste span already covers."""
    merged = _merge(full)
    total = sum(b - a for a, b in merged)
    for a, b, saved in partial:
        outside = 1 - _overlap(a, b, merged) / (b - a)
        total += round(saved * outside)
    return min(total, part_tokens)


def _message_waste(findings: list[Finding], tokens: ContextTokens, message: int) -> int | None:
    """The waste in one message: per part the union of its findings' spans (see `_part_waste`);
    a finding without a part range counts its tokens, the largest such one. None when no
    finding located any tokens."""
    full: dict[int, list[tuple[int, int]]] = defaultdict(list)
    partial: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    loose: int | None = None
    for f in findings:
        loc = f.loc
        if loc.part is not None and loc.token_start is not None and loc.token_end is not None:
            part_tokens = tokens.part_tokens[message][loc.part]
            a, b = loc.token_start, min(loc.token_end, part_tokens)
            if b <= a:
                continue
            if f.tokens >= b - a:
                full[loc.part].append((a, b))
            else:
                partial[loc.part].append((a, b, f.tokens))
        else:
            n = min(f.tokens, int(tokens.message_tokens[message]))
            loose = n if loose is None else max(loose, n)
    if not full and not partial:
        return loose
    total = 0
    for part in full.keys() | partial.keys():
        total += _part_waste(
            full.get(part, []), partial.get(part, []), tokens.part_tokens[message][part]
        )
    return total if loose is None else max(total, loose)


def measure(
    findings: Sequence[Finding],
    tokens: ContextTokens,
    residency: npt.NDArray[np.int64],
    *,
    calls_with_tools: int,
    policy: CachePolicy,
    price: Price | None,
    kept: dict[int, tuple[tuple[int, ...], list[Finding], list[int], int | None]] | None = None,
) -> Waste:
    """The union of the findings' waste, and what it was billed over the session.

    ``kept`` (a dict an `Auditor` keeps between audits) holds each message's waste with the
    findings it came from: a message whose findings are the very same objects, with the same
    part counts, is not measured again.
    """
    by_message_findings: dict[int, list[Finding]] = defaultdict(list)
    tools: dict[str, tuple[int, int]] = {}
    by_rule: dict[str, int] = defaultdict(int)
    for f in findings:
        by_rule[f.code] += f.tokens
        loc = f.loc
        if loc.message is None:
            if loc.tool is not None and f.tokens > 0:
                # A tool schema is carried by the calls the finding names (a cold tool: those
                # since its last use), or else by every call that sent the tools.
                # Several findings on one tool (cold and bloated) overlap: the costliest counts.
                carried = f.calls if f.calls > 0 else calls_with_tools
                old = tools.get(loc.tool, (0, 0))
                if f.tokens * carried > old[0] * old[1]:
                    tools[loc.tool] = (f.tokens, carried)
            continue
        if f.tokens <= 0:
            continue  # a finding about breakage, not waste (CTX901)
        by_message_findings[loc.message].append(f)
    by_message: dict[int, int] = {}
    fresh: dict[int, tuple[tuple[int, ...], list[Finding], list[int], int | None]] = {}
    for message, found in by_message_findings.items():
        key = tuple(map(id, found))
        counts = tokens.part_tokens[message]
        hit = kept.get(message) if kept is not None else None
        if hit is not None and hit[0] == key and hit[2] == counts:
            n = hit[3]
        else:
            n = _message_waste(found, tokens, message)
        fresh[message] = (key, found, counts, n)
        if n is not None:
            by_message[message] = n
    if kept is not None:
        kept.clear()
        kept.update(fresh)
    tool_tokens = sum(n for n, _ in tools.values())
    billed = sum(n * int(residency[m]) for m, n in by_message.items()) + sum(
        n * calls for n, calls in tools.values()
    )
    return Waste(
        tokens=sum(by_message.values()) + tool_tokens,
        by_rule=dict(sorted(by_rule.items())),
        by_message=dict(sorted(by_message.items())),
        tools=tool_tokens,
        billed_tokens=billed,
        cost_usd=_cost(
            dict(sorted(by_message.items())), list(tools.values()), residency, policy, price
        ),
    )


def _cost(
    by_message: dict[int, int],
    tools: list[tuple[int, int]],
    residency: npt.NDArray[np.int64],
    policy: CachePolicy,
    price: Price | None,
) -> float | None:
    if price is None:
        return None
    first: Callable[[Price], float] = (
        (lambda p: p.cache_write) if policy == "anthropic" else (lambda p: p.input)
    )
    later = price.input if policy == "none" else price.cache_read
    cost = 0.0
    carried = [(n, int(residency[m])) for m, n in by_message.items()]
    carried += tools
    for n, calls in carried:
        if calls <= 0 or n <= 0:
            continue
        cost += n * (first(price) + (calls - 1) * later)
    return round(cost / 1_000_000, 6)


__all__ = ["Waste", "measure"]
