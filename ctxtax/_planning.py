"""Which proposed edits to make: the user's options, and what the prompt cache makes them cost.

Providers bill a cached prefix at a fraction of the input price. An edit at message ``i`` makes
every token from ``i`` on a cache write (Anthropic: 1.25x input) instead of a cache read (0.1x)
on the next call, once. What it saves is its tokens on every later call, each of which would have
been a cache read. So an edit deep in the history pays only when the session goes on long enough;
an edit in the part of the prompt that is new since the last call costs nothing.

Edits are chosen in batches: once the cache breaks at ``i`` anyway, every other edit after ``i`` is
free. `choose` tries each break point and keeps the one that saves the most money, net.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ctxtax._counting import ContextTokens
from ctxtax._edits import Candidate
from ctxtax._pricing import Price
from ctxtax._session import CachePolicy

# Relative prices (input = 1) by policy, when the model's price is unknown.
_RATIOS: dict[str, tuple[float, float, float]] = {
    "anthropic": (1.0, 1.25, 0.1),
    "openai": (1.0, 1.0, 0.5),
    "none": (1.0, 1.0, 1.0),
}


@dataclass(frozen=True, slots=True)
class CacheCost:
    """Per-token prices of the three input classes under one caching policy."""

    input: float
    write: float
    read: float

    @classmethod
    def of(cls, policy: CachePolicy, price: Price | None) -> CacheCost:
        """The prices that apply: the model's own when known, else the policy's usual ratios."""
        if policy == "none":
            return cls(1.0, 1.0, 1.0)
        if price is not None and price.input > 0:
            write = price.cache_write if policy == "anthropic" else price.input
            return cls(price.input, write, price.cache_read or price.input)
        return cls(*_RATIOS[policy])

    @property
    def break_premium(self) -> float:
        """What one cached token costs more when the cache breaks before it: written (or sent
        as plain input) once instead of read."""
        return max(0.0, self.write - self.read)


@dataclass(frozen=True, slots=True)
class Plan:
    """The edits chosen, where the cache breaks (None: it does not), and why the rest waited."""

    chosen: list[Candidate]
    break_at: int | None
    deferred: int
    net_saving: float


def _message(cand: Candidate) -> int:
    loc = cand.edit.loc
    return loc.message if loc.message is not None else -1


def choose(
    candidates: Sequence[Candidate],
    tokens: ContextTokens,
    *,
    cached: int,
    remaining_calls: float,
    cost: CacheCost,
) -> Plan:
    """The candidates worth making, in their given order.

    ``cached`` is how many leading messages the provider already holds in its cache (the prompt
    the previous call sent, unchanged); edits at or after it are free. A tool-list edit
    (``drop_tool``) breaks the cache from the start: tools come before the messages.
    ``remaining_calls`` is how many more calls will carry the saved tokens.
    """
    if cost.break_premium <= 0 or cached <= 0:
        return Plan(list(candidates), None, 0, 0.0)
    total = tokens.total

    def suffix(i: int) -> int:
        """Prompt tokens from message ``i`` on (tools count at position -1)."""
        if i < 0:
            return total
        return total - tokens.messages_between(0, min(i, len(tokens.message_tokens)))

    # Tokens the edits save at each position, and from each position on (summed from the end).
    at_position: dict[int, int] = {}
    for c in candidates:
        at_position[_message(c)] = at_position.get(_message(c), 0) + c.edit.tokens_saved
    from_here: dict[int, int] = {}
    running = 0
    for at in sorted(at_position, reverse=True):
        running += at_position[at]
        from_here[at] = running
    best_at: int | None = None
    best_net = 0.0
    for at in sorted(p for p in at_position if p < cached):
        net = from_here[at] * remaining_calls * cost.read - suffix(at) * cost.break_premium
        if net > best_net:
            best_at, best_net = at, net
    floor = cached if best_at is None else best_at
    chosen = [c for c in candidates if _message(c) >= floor]
    return Plan(chosen, best_at, len(candidates) - len(chosen), best_net)


__all__ = ["CacheCost", "Plan", "choose"]
