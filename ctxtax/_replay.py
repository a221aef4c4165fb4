"""`replay()`: walk a recorded session call by call, rewrite each prompt as a strategy would, and
price every call under the provider's caching rules, to show what a strategy saves (or costs).

Each recorded call read ``messages[start:end]`` (plus ``messages[:head]``) and the tools. Before
each call a strategy runs, as middleware would, and gives the prompt that would have been sent.
The part of that prompt read from the cache is the longest run of leading items (the tool list,
then each message) whose content is identical to the previous call's *sent* prompt: an edited
message breaks the prefix from there on. The rest is priced as in `ctxtax._session`: Anthropic
writes it to the cache (1.25x input; reads 0.1x; nothing is cached below 1,024 tokens), OpenAI
and Gemini send it as input (reads in 128-token steps from 1,024 tokens), ``none`` caches nothing.
Output tokens are those of the recorded reply, the same for every strategy (a strategy that
changes what the model sees may change what it answers; a replay cannot know how). Each call is
priced at its own model's price (else the session's), under the session model's caching rules.

Strategies:

- ``none``: the prompt as recorded.
- ``ctxtax``: an `ctxtax._optimizer.Optimizer` per conversation (cache-aware: it makes its earlier
  edits again byte for byte and breaks the cache only where that pays), run on the prompt so far
  before each call.
- ``context-editing``: LangChain's ``ContextEditingMiddleware()`` with its default
  ``ClearToolUsesEdit()`` (langchain ``libs/langchain_v1/.../middleware/context_editing.py``),
  re-implemented here without LangChain or a model:

  - it runs in ``wrap_model_call``: the edit changes the request only and is never persisted, so
    it is recomputed from the un-edited messages before every call;
  - ``token_count_method="approximate"``: ``count_tokens_approximately`` over the request's
    messages, which exclude the system prompt (the leading system messages here) and do not count
    tool schemas: per message, ceil(characters / 4) + 3, the characters being the content, the
    role and the name, plus a tool call's name and arguments and a tool result's call id. Each
    tool result counts as its own message (LangChain has one ``ToolMessage`` per result); images
    count no characters (LangChain counts the ``repr`` of the block, which this model does not
    keep);
  - ``trigger=100_000``: it acts when that count is over 100,000;
  - ``keep=3``: every tool result except the last 3 is a candidate, oldest first; a candidate is
    skipped unless the nearest assistant message before it has the tool call it answers;
    ``exclude_tools=()``;
  - the result's content becomes ``"[cleared]"`` (images and other blocks in it go too); the call
    and its arguments stay (``clear_tool_inputs=False``); ``clear_at_least=0``: every candidate is
    cleared.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ctxtax._counting import Provider, count_context, framing_for, provider_for, tool_schema_text
from ctxtax._model import Call, Context, Message, Part
from ctxtax._pricing import Price, lookup_price, normalize_model, parse_prices
from ctxtax._session import MIN_CACHEABLE, OPENAI_CACHE_STEP, Bill, CachePolicy, cache_policy_for
from ctxtax._tokens import TokenCounter, default_counter
from ctxtax.errors import ConfigError, InputError

Strategy = Literal["none", "ctxtax", "context-editing"]
STRATEGIES: tuple[Strategy, ...] = ("none", "ctxtax", "context-editing")
_SYSTEM = ("system", "developer")


@dataclass(frozen=True, slots=True)
class ClearToolUses:
    """LangChain's ``ClearToolUsesEdit``, with its defaults (see the module docstring)."""

    trigger: int = 100_000
    keep: int = 3
    placeholder: str = "[cleared]"
    exclude_tools: frozenset[str] = frozenset()


def _chars(part: Part) -> int:
    own = len(part.text) + (len(part.tool_name or "") if part.kind == "tool_call" else 0)
    return own + sum(_chars(child) for child in part.children)


def approximate_tokens(messages: Sequence[Message]) -> int:
    """LangChain's ``count_tokens_approximately`` (4 characters a token, 3 per message)."""
    total = 0
    for message in messages:
        chars = len(message.role) + len(message.name or "")
        own = False
        for part in message.parts:
            if part.kind == "tool_result":
                result = len("tool") + len(part.tool_call_id or "") + len(part.tool_name or "")
                total += math.ceil((result + _chars(part)) / 4) + 3
            else:
                own = True
                chars += _chars(part)
        if own or not message.parts:
            total += math.ceil(chars / 4) + 3
    return total


def clear_tool_uses(
    messages: tuple[Message, ...], edit: ClearToolUses | None = None
) -> tuple[tuple[Message, ...], bool]:
    """``messages`` as ``ClearToolUsesEdit`` sends them, and whether its trigger was crossed."""
    edit = edit or ClearToolUses()
    # LangChain keeps the system prompt apart from the request's messages, uncounted.
    start = next((i for i, m in enumerate(messages) if m.role not in _SYSTEM), len(messages))
    if approximate_tokens(messages[start:]) <= edit.trigger:
        return messages, False
    results = [
        (i, j)
        for i, message in enumerate(messages)
        for j, part in enumerate(message.parts)
        if part.kind == "tool_result"
    ]
    candidates = set(results[: -edit.keep] if edit.keep > 0 else results)
    out = list(messages)
    calls: dict[str, Part] = {}  # the tool calls of the nearest assistant message before
    for i, message in enumerate(messages):
        if message.role == "assistant":
            calls = {p.tool_call_id: p for p in message.tool_calls if p.tool_call_id}
        parts = list(message.parts)
        for j, part in enumerate(parts):
            call = calls.get(part.tool_call_id or "") if (i, j) in candidates else None
            if call is not None and (part.tool_name or call.tool_name) not in edit.exclude_tools:
                parts[j] = part.model_copy(
                    update={"text": edit.placeholder, "children": (), "raw": None}
                )
        if any(a is not b for a, b in zip(parts, message.parts, strict=True)):
            out[i] = message.model_copy(update={"parts": tuple(parts), "raw": None})
    return (
        tuple(out) if any(a is not b for a, b in zip(out, messages, strict=True)) else messages
    ), True


class Replay(BaseModel):
    """The bill of a session replayed under each strategy.

    ``bills`` has one `Bill` per strategy (calls, input, cache write, cache read and output
    tokens, and the cost when every call's model has a price); ``edited_calls`` counts the calls
    whose prompt a strategy changed; ``triggered_calls`` the calls at which context editing's
    trigger was crossed.
    """

    model_config = ConfigDict(frozen=True)

    source: str | None = None
    model: str | None = None
    cache_policy: str = "none"
    conversations: int = 1
    bills: dict[str, Bill] = Field(default_factory=dict)
    edited_calls: dict[str, int] = Field(default_factory=dict)
    triggered_calls: int = 0
    notes: list[str] = Field(default_factory=list)

    def saving(self, strategy: str) -> float | None:
        """The share of the ``none`` bill's dollars that ``strategy`` saves (negative: costs)."""
        base, bill = self.bills.get("none"), self.bills.get(strategy)
        if base is None or bill is None or not base.cost_usd or bill.cost_usd is None:
            return None
        return (base.cost_usd - bill.cost_usd) / base.cost_usd

    def table(self) -> str:
        """The bills as a markdown table, with each strategy's saving against ``none``."""
        rows = [
            "| strategy | calls | edited | input | cache write | cache read | output | USD | "
            "saving |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, bill in self.bills.items():
            cost = f"${bill.cost_usd:,.4f}" if bill.cost_usd is not None else "n/a"
            saving = self.saving(name)
            pct = "" if name == "none" or saving is None else f"{100 * saving:+.1f}%"
            rows.append(
                f"| {name} | {bill.calls:,} | {self.edited_calls.get(name, 0):,} | "
                f"{bill.input_tokens:,} | {bill.cache_write_tokens:,} | "
                f"{bill.cache_read_tokens:,} | {bill.output_tokens:,} | {cost} | {pct} |"
            )
        return "\n".join(rows) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with ``saving`` per strategy."""
        data = self.model_dump(mode="json")
        data["saving"] = {name: self.saving(name) for name in self.bills}
        return data

    def __add__(self, other: Replay) -> Replay:
        bills = dict(self.bills)
        for name, bill in other.bills.items():
            total = bills[name] + bill if name in bills else bill
            unpriced = bill.cost_usd is None or bills.get(name, bill).cost_usd is None
            bills[name] = total.model_copy(update={"cost_usd": None}) if unpriced else total
        edited = dict(self.edited_calls)
        for name, n in other.edited_calls.items():
            edited[name] = edited.get(name, 0) + n
        same = self.cache_policy == other.cache_policy
        return Replay(
            source=self.source if self.source == other.source else None,
            model=self.model if self.model == other.model else None,
            cache_policy=self.cache_policy if same else "mixed",
            conversations=self.conversations + other.conversations,
            bills=bills,
            edited_calls=edited,
            triggered_calls=self.triggered_calls + other.triggered_calls,
            notes=list(dict.fromkeys([*self.notes, *other.notes])),
        )


def _key(message: Message) -> tuple[Any, ...]:
    """What the provider sees of a message: equal keys, equal bytes sent."""

    def part(p: Part) -> tuple[Any, ...]:
        children = tuple(part(c) for c in p.children)
        return (p.kind, p.text, p.tool_call_id, p.tool_name, p.is_error, p.image, children)

    return (message.role, message.name, tuple(part(p) for p in message.parts))


class _Meter:
    """One strategy's running bill: tokens of each class, cost, and the prompt last sent."""

    def __init__(self, policy: CachePolicy, counter: TokenCounter, provider: Provider) -> None:
        self.policy, self.counter, self.provider = policy, counter, provider
        self.priming = framing_for(provider).reply_priming
        self.tokens = {"input": 0, "write": 0, "read": 0, "output": 0}
        self.cost: float | None = 0.0
        self.calls = self.edited = 0
        self._sent: list[Any] = []
        self._known: dict[int, tuple[Message, tuple[Any, ...], int]] = {}
        self._tools: dict[tuple[str, ...], int] = {}

    def _items(self, prompt: Context) -> list[tuple[Any, int]]:
        known = self._known
        fresh = [m for m in prompt.messages if known.get(id(m), (None,))[0] is not m]
        if fresh:
            counted = count_context(
                Context(messages=tuple(fresh)), self.counter, provider=self.provider
            )
            for message, n in zip(fresh, counted.message_tokens, strict=True):
                known[id(message)] = (message, _key(message), int(n))
        items: list[tuple[Any, int]] = []
        if prompt.tools:
            names = tuple(tool_schema_text(t) for t in prompt.tools)
            if names not in self._tools:
                tools = Context(tools=prompt.tools)
                counted = count_context(tools, self.counter, provider=self.provider)
                self._tools[names] = counted.tools_total
            items.append((("tools", names), self._tools[names]))
        items.extend(known[id(m)][1:] for m in prompt.messages)
        if len(known) > 2 * len(prompt.messages) + 64:
            self._known = {id(m): known[id(m)] for m in prompt.messages}
        return items

    def add(self, prompt: Context, sent: Context, output: int, price: Price | None) -> None:
        """Bill one call that sent ``sent`` (``prompt`` as recorded) and got ``output`` tokens."""
        items = self._items(sent)
        shared = 0
        for n, (key, tokens) in enumerate(items):
            if n >= len(self._sent) or self._sent[n] != key:
                break
            shared += tokens
        whole = sum(tokens for _, tokens in items) + self.priming
        cached = 0
        if self.policy != "none" and shared >= MIN_CACHEABLE:
            cached = shared if self.policy == "anthropic" else shared - shared % OPENAI_CACHE_STEP
        delta = {"input": 0, "write": 0, "read": cached, "output": output}
        written = self.policy == "anthropic" and whole >= MIN_CACHEABLE
        delta["write" if written else "input"] += whole - cached
        for kind, n in delta.items():
            self.tokens[kind] += n
        if price is None:
            self.cost = None
        elif self.cost is not None:
            self.cost += (
                delta["input"] * price.input
                + delta["write"] * price.cache_write
                + delta["read"] * price.cache_read
                + delta["output"] * price.output
            ) / 1_000_000
        self.calls += 1
        if (sent.messages is not prompt.messages or sent.tools is not prompt.tools) and [
            key for key, _ in self._items(prompt)
        ] != [key for key, _ in items]:
            self.edited += 1
        self._sent = [key for key, _ in items]

    def bill(self) -> Bill:
        """The bill so far."""
        return Bill(
            calls=self.calls,
            input_tokens=self.tokens["input"],
            cache_write_tokens=self.tokens["write"],
            cache_read_tokens=self.tokens["read"],
            output_tokens=self.tokens["output"],
            cost_usd=round(self.cost, 6) if self.cost is not None else None,
        )


class _ContextEditing:
    """The ``context-editing`` strategy: recomputed from the recorded prompt before every call."""

    def __init__(self, edit: ClearToolUses) -> None:
        self.edit = edit
        self.triggered = 0

    def send(self, prompt: Context) -> Context:
        messages, crossed = clear_tool_uses(prompt.messages, self.edit)
        self.triggered += crossed
        return (
            prompt
            if messages is prompt.messages
            else prompt.model_copy(update={"messages": messages})
        )


def _prompt(ctx: Context, call: Call, model: str | None) -> Context:
    """What ``call`` read, as a request: its messages (with the pinned head) and tools."""
    head = min(call.head, call.start)
    messages = ctx.messages[:head] + ctx.messages[call.start : call.end]
    tools = ctx.tools if call.with_tools else ()
    update = {"messages": messages, "tools": tools, "calls": None, "request": True, "model": model}
    return ctx.model_copy(update=update)


def _replay_context(
    ctx: Context,
    *,
    strategies: Sequence[Strategy],
    model: str | None,
    cache_policy: CachePolicy | None,
    prices: Mapping[str, Price],
    counter: TokenCounter | None,
    options: Mapping[str, Any],
    edit: ClearToolUses,
) -> Replay:
    from ctxtax._context_audit import _context_model

    explicit = model is not None
    model = _context_model(ctx, model)
    counter = counter or default_counter(model)
    provider = provider_for(model, ctx.source_format)
    # normalize_model strips a provider prefix (google/gemini-3-pro-preview is Gemini).
    policy = cache_policy or cache_policy_for(normalize_model(model or ""), provider)
    found = lookup_price(model, prices)
    unpriced: set[str | None] = set()

    def price_of(call: Call) -> Price | None:
        own = lookup_price(call.model, prices) if call.model and not explicit else found
        if own is None:
            unpriced.add(call.model if call.model and not explicit else model)
        return own[1] if own else None

    editing = _ContextEditing(edit)
    send: dict[str, Callable[[Context], Context]] = {
        "none": lambda prompt: prompt,
        "context-editing": editing.send,
    }
    if "ctxtax" in strategies:
        from ctxtax._optimizer import Optimizer

        optimizer = Optimizer(model=model, cache_policy=policy, counter=counter, **options)
        send["ctxtax"] = optimizer.optimize_context
    meters = {name: _Meter(policy, counter, provider) for name in strategies}
    tokens = count_context(ctx, counter, provider=provider)
    for call in ctx.model_calls():
        prompt = _prompt(ctx, call, model)
        out = call.output
        output = 0 if out is None else int(tokens.message_tokens[out] - tokens.framing_tokens[out])
        price = price_of(call)
        for name in strategies:
            meters[name].add(prompt, send[name](prompt), output, price)
    return Replay(
        source=ctx.source,
        model=model,
        cache_policy=policy,
        bills={name: meters[name].bill() for name in strategies},
        edited_calls={name: meters[name].edited for name in strategies},
        triggered_calls=editing.triggered,
        notes=[
            f"no price for model {m!r}: pass prices= (--prices)" if m else "no model: pass model="
            for m in sorted(unpriced, key=str)
        ],
    )


def replay(
    session: Any,
    *,
    model: str | None = None,
    strategies: Sequence[str] = STRATEGIES,
    unsafe: bool = False,
    clear_old_results: bool = False,
    cache_policy: CachePolicy | None = None,
    prices: Mapping[str, Any] | None = None,
    counter: TokenCounter | None = None,
    format: str | None = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    rule_options: Mapping[str, Mapping[str, Any]] | None = None,
    keep_last: int = 3,
    min_saving: int = 8,
    context_editing: ClearToolUses | None = None,
) -> Replay:
    """Replay a recorded session call by call under each strategy, and price every call.

    Args:
        session: a session file's path, a `Context`, or anything `ctxtax.load_all` reads; a file
            of several conversations replays each and sums them.
        model: count, cache and price every call for this model (default: each call's own
            model, else the session's).
        strategies: any of ``none`` (the prompts as recorded), ``ctxtax`` (the optimizer before
            each call) and ``context-editing`` (LangChain's default ``ContextEditingMiddleware``).
        unsafe: let the optimizer make lossy edits too.
        clear_old_results: with ``unsafe``, let it also clear old tool results (cache-aware).
        cache_policy: ``anthropic``, ``openai`` or ``none``; the default follows the model.
        prices: extra prices, as for `ctxtax.audit`.
        counter: a `TokenCounter` (tiktoken offline by default).
        format: the input format, instead of detecting it.
        select, ignore, rule_options: which rules propose the optimizer's edits.
        keep_last, min_saving: as for `ctxtax.optimize`.
        context_editing: the ``ClearToolUsesEdit`` settings (LangChain's defaults if None).

    Returns:
        A `Replay`: a `Bill` per strategy, ``table()`` and ``to_dict()``.
    """
    from ctxtax._inputs import to_contexts

    unknown = [s for s in strategies if s not in STRATEGIES] or ([] if strategies else [""])
    if unknown:
        raise ConfigError(f"unknown strategy {unknown[0]!r}; expected {', '.join(STRATEGIES)}")
    chosen = [s for s in STRATEGIES if s in strategies]
    table = parse_prices(prices) if prices else {}
    options = {
        "unsafe": unsafe,
        "clear_old_results": clear_old_results,
        "keep_last": keep_last,
        "min_saving": min_saving,
        "prices": table,
    }
    for key, value in (("select", select), ("ignore", ignore), ("rule_options", rule_options)):
        if value is not None:
            options[key] = value
    results = [
        _replay_context(
            ctx,
            strategies=chosen,
            model=model,
            cache_policy=cache_policy,
            prices=table,
            counter=counter,
            options=options,
            edit=context_editing or ClearToolUses(),
        )
        for ctx in to_contexts(session, format=format, strict=False)
    ]
    if not results:
        raise InputError(f"{session}: no conversation to replay")
    total = results[0]
    for result in results[1:]:
        total = total + result
    source = str(session) if isinstance(session, (str, os.PathLike)) else total.source
    return total.model_copy(update={"source": source})


__all__ = [
    "STRATEGIES",
    "ClearToolUses",
    "Replay",
    "Strategy",
    "approximate_tokens",
    "clear_tool_uses",
    "replay",
]
