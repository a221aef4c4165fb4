"""The session bill: every model call re-reads its whole prompt, so input is paid again per call.

Billed input = the sum over calls of the prompt at that call. How much of each prompt is a cache
read, a cache write or plain input depends on the provider's caching rules (`CachePolicy`):

- ``anthropic``: explicit caching as Claude Code and most agents use it: the prefix shared with the
  previous call is read from the cache, the rest is written to it (1.25x input, 0.1x for reads);
- ``openai``: automatic prefix caching for prompts of 1,024 tokens or more, in 128-token steps,
  reads discounted, no write premium (Google's implicit caching works the same way);
- ``none``: every prompt token is plain input.

The estimate assumes the cache never expires between calls (Anthropic's is 5 minutes by default).
Where a log recorded what the provider billed, `recorded_bill` gives that beside the estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from ctxtax._counting import ContextTokens
from ctxtax._model import Call, Context, Usage
from ctxtax._prefix import changes
from ctxtax._pricing import Price

CachePolicy = Literal["anthropic", "openai", "none"]

MIN_CACHEABLE = 1024
OPENAI_CACHE_STEP = 128


class Bill(BaseModel):
    """Tokens of each price class over a session's calls, and what they cost."""

    model_config = ConfigDict(frozen=True)

    calls: int = 0
    input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None

    @property
    def prompt_tokens(self) -> int:
        """Every input token billed, whatever its price class."""
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens

    def priced(self, price: Price | None) -> Bill:
        """The same bill with ``cost_usd`` from ``price`` (None when the price is unknown)."""
        if price is None:
            return self.model_copy(update={"cost_usd": None})
        cost = (
            self.input_tokens * price.input
            + self.cache_write_tokens * price.cache_write
            + self.cache_read_tokens * price.cache_read
            + self.output_tokens * price.output
        ) / 1_000_000
        return self.model_copy(update={"cost_usd": round(cost, 6)})

    def __add__(self, other: Bill) -> Bill:
        # A sum has a cost only when every bill with calls in it has one: a partial sum would
        # read as the whole cost.
        priced = [b for b in (self, other) if b.calls > 0 or b.cost_usd is not None]
        cost: float | None = None
        if priced and all(b.cost_usd is not None for b in priced):
            cost = round(sum(b.cost_usd or 0.0 for b in priced), 6)
        return Bill(
            calls=self.calls + other.calls,
            input_tokens=self.input_tokens + other.input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=cost,
        )


def cache_policy_for(model: str | None, provider: str) -> CachePolicy:
    """The caching rules that apply to ``model``."""
    from ctxtax._pricing import normalize_model

    name = normalize_model(model).lower() if model else ""
    if provider == "anthropic" or "claude" in name:
        return "anthropic"
    if name.startswith(("gpt-", "o1", "o3", "o4", "gemini", "codex")) or "/gpt-" in name:
        return "openai"
    return "openai" if provider == "openai" and not name else "none"


def _shared_prefix(prev: Call | None, call: Call, tokens: ContextTokens) -> int:
    """Prompt tokens of ``call`` that the previous call's prompt also began with."""
    if prev is None or prev.with_tools != call.with_tools:
        return 0  # the tools come first: a different tool list shares no prefix
    tools = tokens.tools_total if call.with_tools else 0
    head = min(call.head, call.start, prev.head, prev.start)
    pinned = tokens.messages_between(0, head) if head else 0
    if prev.start != call.start:
        return tools + pinned
    return tools + pinned + tokens.messages_between(call.start, min(prev.end, call.end))


_Share = tuple[int, int, int, int, float | None]


def _call_share(
    prev: Call | None, call: Call, tokens: ContextTokens, policy: CachePolicy, price: Price | None
) -> _Share:
    """What one call adds to the bill: input, cache write, cache read and output tokens, and
    their cost (None without a price)."""
    input_tokens = write = read = output = 0
    prompt = tokens.window(call.start, call.end, with_tools=call.with_tools, head=call.head)
    shared = min(_shared_prefix(prev, call, tokens), prompt)
    if policy == "anthropic":
        cached = shared if shared >= MIN_CACHEABLE else 0
        read += cached
        if prompt >= MIN_CACHEABLE:
            write += prompt - cached
        else:
            input_tokens += prompt - cached
    elif policy == "openai":
        cached = shared - shared % OPENAI_CACHE_STEP if shared >= MIN_CACHEABLE else 0
        read += cached
        input_tokens += prompt - cached
    else:
        input_tokens += prompt
    if call.output is not None and call.output < len(tokens.message_tokens):
        output += int(tokens.message_tokens[call.output] - tokens.framing_tokens[call.output])
    if price is None:
        return input_tokens, write, read, output, None
    cost = (
        input_tokens * price.input
        + write * price.cache_write
        + read * price.cache_read
        + output * price.output
    ) / 1_000_000
    return input_tokens, write, read, output, cost


def _reach(prev: Call | None, call: Call) -> int:
    """How many leading messages a call's share of the bill depends on."""
    reach = max(call.end, call.head, (call.output or 0) + 1)
    if prev is not None:
        reach = max(reach, prev.end, prev.head)
    return reach


def estimate_bill(
    ctx: Context,
    tokens: ContextTokens,
    *,
    policy: CachePolicy,
    calls: Sequence[Call] | None = None,
    price_of: Callable[[Call], Price | None] | None = None,
    kept: dict[str, Any] | None = None,
) -> Bill:
    """The bill of ``ctx``'s calls, estimated from its token counts under ``policy``.

    ``price_of`` gives each call's price (calls of one session may use different models); the
    bill has a cost only when every call has a price. ``kept`` (a dict an `Auditor` keeps
    between audits of a growing session) holds the running totals after each call, reused for
    the leading calls that are the same objects, reading messages whose counts are unchanged.
    """
    calls = ctx.model_calls() if calls is None else calls
    counts = (tokens.message_tokens, tokens.framing_tokens)
    input_tokens = write = read = output = 0
    cost: float | None = 0.0
    prev: Call | None = None
    prices: list[Price | None] = []
    reaches: list[int] = []
    totals: list[tuple[int, int, int, int, float | None]] = []
    # The leading calls that are the very calls of last time, reading unchanged messages at
    # the same prices, add what they added then: start from the running totals after them.
    start = 0
    if kept and kept["policy"] == policy and kept["tools"] == tokens.tools_total:
        same_upto = min(_same_prefix(a, b) for a, b in zip(kept["counts"], counts, strict=True))
        old_calls, old_prices, old_reaches = kept["calls"], kept["prices"], kept["reaches"]
        limit = min(len(calls), len(old_calls))
        while (
            start < limit
            and calls[start] is old_calls[start]
            and old_reaches[start] <= same_upto
            and (price_of is None or price_of(calls[start]) is old_prices[start])
        ):
            start += 1
        if start:
            input_tokens, write, read, output, cost = kept["totals"][start - 1]
            prices = old_prices[:start]
            reaches = old_reaches[:start]
            totals = kept["totals"][:start]
            prev = calls[start - 1]
    for call in calls[start:]:
        price = price_of(call) if price_of is not None else None
        share = _call_share(prev, call, tokens, policy, price)
        prices.append(price)
        reaches.append(_reach(prev, call))
        input_tokens += share[0]
        write += share[1]
        read += share[2]
        output += share[3]
        cost = None if share[4] is None or cost is None else cost + share[4]
        totals.append((input_tokens, write, read, output, cost))
        prev = call
    if kept is not None:
        kept.update(
            policy=policy,
            tools=tokens.tools_total,
            calls=tuple(calls),
            prices=prices,
            counts=counts,
            reaches=reaches,
            totals=totals,
        )
    return Bill(
        calls=len(calls),
        input_tokens=input_tokens,
        cache_write_tokens=write,
        cache_read_tokens=read,
        output_tokens=output,
        cost_usd=round(cost, 6) if cost is not None and calls else None,
    )


def _same_prefix(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> int:
    """How many leading values two arrays share."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


def recorded_bill(ctx: Context) -> Bill | None:
    """What the log says the provider billed, or None if it recorded no usage."""
    recorded = [c.usage for c in ctx.calls or () if c.usage is not None]
    if not recorded:
        return None
    total = Usage()
    for usage in recorded:
        total = total + usage
    return Bill(
        calls=len(recorded),
        input_tokens=total.input_tokens,
        cache_write_tokens=total.cache_write_tokens,
        cache_read_tokens=total.cache_read_tokens,
        output_tokens=total.output_tokens,
    )


def residency(
    ctx: Context, calls: Sequence[Call] | None = None, kept: dict[str, Any] | None = None
) -> npt.NDArray[np.int64]:
    """For each message, the number of calls whose prompt carried it.

    ``kept`` (a dict an `Auditor` keeps between audits) holds the calls counted last time: the
    calls that are the very same objects are not counted again."""
    calls = ctx.model_calls() if calls is None else calls
    n = len(ctx.messages)
    before: Sequence[Call] = kept.get("calls", ()) if kept is not None else ()
    delta = kept.get("delta") if kept is not None else None
    if delta is not None and len(delta) <= n + 1:
        gone, new = changes(before, calls)
        delta = np.concatenate((delta, np.zeros(n + 1 - len(delta), dtype=np.int64)))
        _add_calls(delta, gone, -1)
        _add_calls(delta, new, 1)
    else:
        delta = np.zeros(n + 1, dtype=np.int64)
        _add_calls(delta, calls, 1)
    if kept is not None:
        kept.update(calls=calls, delta=delta)
    return np.cumsum(delta[:-1])


_LATER: dict[str, tuple[Sequence[Call], int]] = {}
"""The calls last asked about, and how many of them start past the first message."""


def from_start(calls: Sequence[Call]) -> bool:
    """True when every call reads from the first message (no compaction moved a window).

    The last answer is kept: the index and the staleness rules ask of the same calls in one
    audit, and the next audit's calls are mostly the very same objects, which are not looked
    at again."""
    kept = _LATER.get("last")
    if kept is None:
        later = sum(1 for c in calls if c.start)
    elif kept[0] is calls:
        return kept[1] == 0
    else:
        gone, new = changes(kept[0], calls)
        later = kept[1] + sum(1 for c in new if c.start) - sum(1 for c in gone if c.start)
    _LATER["last"] = (calls, later)  # (one step: a thread that reads it reads a whole pair)
    return later == 0


def _add_calls(delta: npt.NDArray[np.int64], calls: Sequence[Call], sign: int) -> None:
    for call in calls:
        head = min(call.head, call.start)
        if head:
            delta[0] += sign
            delta[head] -= sign
        delta[call.start] += sign
        delta[call.end] -= sign


__all__ = [
    "Bill",
    "CachePolicy",
    "cache_policy_for",
    "estimate_bill",
    "from_start",
    "recorded_bill",
    "residency",
]
