"""`optimize()`: take the waste out of a conversation, in the caller's own format, and `revert()`.

The flow: audit -> keep the edits the options allow -> plan them against the prompt cache -> apply
(conflicts and protected sources resolved in `ctxtax._edits`) -> audit the result again and repeat
until nothing more is worth doing, so optimizing the output again changes nothing. A message whose
edits would cost tokens after all (tokenization at the seams) is left as it was.

`Optimizer` is the same, kept between the calls of a growing session (middleware): the edits it
made stay identical from call to call, so the prompt prefix stays byte-stable for the cache.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ctxtax._applier import apply
from ctxtax._candidates import candidates
from ctxtax._context_audit import _context_model, find_waste
from ctxtax._counting import ContextTokens, CountMemo, Provider, count_context, provider_for
from ctxtax._edits import Applied, AppliedEdit
from ctxtax._model import Context, Message
from ctxtax._planning import CacheCost, Plan, choose
from ctxtax._pricing import lookup_price, parse_prices
from ctxtax._report import Report
from ctxtax._session import CachePolicy, cache_policy_for
from ctxtax._tokens import TokenCounter, default_counter
from ctxtax.errors import InputError
from ctxtax.rules import Rule, select_rules

MAX_ROUNDS = 10
"""A bound, not a budget: the rounds stop at the first that makes no edit (two or three on real
sessions), so that optimizing the output again finds nothing left."""


@dataclass(frozen=True)
class OptimizeOptions:
    """What `optimize` may do. See `optimize` for each option."""

    unsafe: bool = False
    keep_last: int = 3
    include_tools: frozenset[str] | None = None
    exclude_tools: frozenset[str] = frozenset()
    min_saving: int = 8
    cache_aware: bool = True
    expected_calls: float | None = None
    clear_old_results: bool = False


@dataclass
class Optimized:
    """The result of `optimize`: the conversation without its waste, and the log of edits.

    ``payload`` is the output as the input came (a message list, or a request body); ``messages``
    and ``tools`` are its parts (``tools`` is None when the input had none; ``system`` is the
    Anthropic system prompt when there is one). ``edits`` lists every edit made; ``deferred``
    counts the edits left for later because breaking the prompt cache for them would cost more
    than they save; ``report`` is the audit the first edits came from (of a log, as the payload
    it is written as). `ctxtax.revert` gives the input back.
    """

    payload: Any
    messages: Any
    tools: Any
    system: Any
    context: Context
    edits: list[AppliedEdit]
    tokens_before: int
    tokens_after: int
    report: Report
    deferred: int = 0
    format: str = "openai"
    _undo: list[Applied] = field(default_factory=list, repr=False)
    _input: Context | None = field(default=None, repr=False)

    @property
    def tokens_saved(self) -> int:
        """Prompt tokens the edits took out."""
        return self.tokens_before - self.tokens_after

    def original_context(self) -> Context:
        """The context before any edit (the undo log applied in reverse)."""
        ctx = self.context
        for applied in reversed(self._undo):
            ctx = Applied(ctx, [], applied.originals, applied.original_tools).undo()
        return ctx

    def summary(self) -> str:
        """One line: tokens before and after, edits made and deferred."""
        pct = 100 * self.tokens_saved / self.tokens_before if self.tokens_before else 0.0
        deferred = f", {self.deferred} deferred (cache)" if self.deferred else ""
        return (
            f"{self.tokens_before:,} -> {self.tokens_after:,} tokens (-{pct:.1f}%), "
            f"{len(self.edits)} edit(s){deferred}"
        )


def cached_messages(ctx: Context) -> int:
    """How many leading messages the previous call sent (and the provider cached): everything
    before the last assistant message. Edits after that point break no cache."""
    for i in range(len(ctx.messages) - 1, -1, -1):
        if ctx.messages[i].role == "assistant":
            return i
    return 0


def _guard_tokens(
    applied: Applied,
    before: ContextTokens,
    counter: TokenCounter,
    provider: Provider,
    memo: CountMemo | None = None,
) -> tuple[Applied, ContextTokens]:
    """Undo the edits of any message that came out longer than it went in; ``before`` is the
    token table of the unedited context. Returns the result and its token table."""
    if not applied.originals and applied.original_tools is None:
        return applied, before
    after = count_context(applied.context, counter, provider=provider, memo=memo)
    edited = np.fromiter(applied.originals, dtype=np.int64, count=len(applied.originals))
    worse = set(edited[after.message_tokens[edited] > before.message_tokens[edited]].tolist())
    if not worse:
        return applied, after
    messages = list(applied.context.messages)
    for i in worse:
        messages[i] = applied.originals[i]
    guarded = Applied(
        context=applied.context.model_copy(update={"messages": tuple(messages)}),
        edits=[e for e in applied.edits if e.loc.message not in worse],
        originals={i: m for i, m in applied.originals.items() if i not in worse},
        original_tools=applied.original_tools,
    )
    return guarded, count_context(guarded.context, counter, provider=provider, memo=memo)


@dataclass
class _Run:
    context: Context
    undo: list[Applied]
    edits: list[AppliedEdit]
    deferred: int
    first_report: Report
    tokens_before: int
    tokens_after: int


def _optimize_context(
    ctx: Context,
    *,
    opts: OptimizeOptions,
    rules: Sequence[Rule],
    counter: TokenCounter,
    model: str | None,
    cost: CacheCost,
    cached: int,
    first: Report | None = None,
) -> _Run:
    provider = provider_for(model, ctx.source_format)
    undo: list[Applied] = []
    edits: list[AppliedEdit] = []
    deferred = 0
    report = first
    first_report: Report | None = first
    calls = len(ctx.model_calls())
    remaining = opts.expected_calls if opts.expected_calls is not None else max(1, calls)
    tokens: ContextTokens = count_context(ctx, counter, provider=provider)
    tokens_before = tokens.total
    for _ in range(MAX_ROUNDS):
        if report is None:
            report = find_waste(ctx, model=model, counter=counter, rules=rules).report()
        if first_report is None:
            first_report = report
        found = candidates(ctx, report.findings, opts, tokens=tokens, counter=counter)
        if not found:
            break
        plan: Plan = (
            choose(found, tokens, cached=cached, remaining_calls=remaining, cost=cost)
            if opts.cache_aware
            else Plan(found, None, 0, 0.0)
        )
        deferred = plan.deferred
        applied, after = _guard_tokens(apply(ctx, plan.chosen), tokens, counter, provider)
        if not applied.edits:
            break
        undo.append(applied)
        edits.extend(applied.edits)
        ctx, tokens = applied.context, after
        if plan.break_at is not None:
            cached = min(cached, plan.break_at)
        report = None
    assert first_report is not None
    return _Run(ctx, undo, edits, deferred, first_report, tokens_before, tokens.total)


def _api_context(ctx: Context, fmt: str) -> Context:
    """``ctx`` as the API payload `optimize` writes for it, read back: a log (Claude Code, agent
    trajectories) becomes an API payload of ``fmt``, rebuilt from its parts.

    The edits are planned on the payload exactly as `optimize` would read it if given it again
    (a request, its calls derived from its messages, one window over all of them): planned on the
    log instead (its recorded calls, compaction windows, roles such as ``tool`` that the payload
    spells ``user``), optimizing the output again would find edits the first pass did not.
    """
    if ctx.source_format in ("openai", "anthropic") and fmt in (ctx.source_format, "same"):
        if ctx.request and ctx.calls is None:
            return ctx
        return ctx.model_copy(update={"request": True, "calls": None})
    target = ctx.source_format if fmt == "same" else fmt
    if target not in ("openai", "anthropic"):
        target = (
            "anthropic" if provider_for(ctx.model, ctx.source_format) == "anthropic" else "openai"
        )

    def bare(message: Message) -> Message:
        parts = tuple(
            p.model_copy(update={"raw": p.raw if isinstance(p.raw, str) else None})
            for p in message.parts
        )
        return message.model_copy(update={"raw": None, "parts": parts, "meta": {}})

    converted = ctx.model_copy(
        update={
            "messages": tuple(bare(m) for m in ctx.messages),
            "tools": tuple(t.model_copy(update={"raw": None}) for t in ctx.tools),
            "source_format": target,
            "raw": None,
            "meta": {"shape": "body"},
            "calls": None,
            "model": _context_model(ctx, None),
        }
    )
    from ctxtax.formats import load_all

    [payload] = load_all(written(converted), format=target)
    return payload.model_copy(update={"source": ctx.source, "title": ctx.title})


def _split(payload: Any, fmt: str) -> tuple[Any, Any, Any]:
    """(messages, tools, system) of a written payload."""
    if isinstance(payload, dict):
        return payload.get("messages"), payload.get("tools"), payload.get("system")
    return payload, None, None


def written(ctx: Context) -> Any:
    """``ctx`` written in its format."""
    from ctxtax._load import write

    return write(ctx)


def optimize(
    messages: Any,
    *,
    tools: Any = None,
    system: Any = None,
    model: str | None = None,
    format: str | None = None,
    unsafe: bool = False,
    keep_last: int = 3,
    include_tools: Iterable[str] | None = None,
    exclude_tools: Iterable[str] = (),
    min_saving: int = 8,
    cache_aware: bool = True,
    expected_calls: float | None = None,
    clear_old_results: bool = False,
    cache_policy: CachePolicy | None = None,
    prices: Mapping[str, Any] | None = None,
    counter: TokenCounter | None = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    rule_options: Mapping[str, Mapping[str, Any]] | None = None,
    to: str = "same",
    strict: bool = True,
) -> Optimized:
    """Take the waste out of one conversation; the output is in the input's own format.

    Args:
        messages: OpenAI or Anthropic messages (or a request body), a `Context`, or the path of a
            session file (a log is written out as an OpenAI or Anthropic payload, see ``to``,
            and optimized as that payload: its recorded calls are not used).
        tools: tool definitions, replacing any in ``messages``.
        system: the Anthropic ``system`` prompt, when ``messages`` are Anthropic messages.
        model: the model to count and price for.
        format: the input format, instead of detecting it.
        unsafe: also make lossy edits: stale and superseded results become placeholders, idle
            tools are dropped, near copies shrink (each leaves a note saying what was removed).
        keep_last: never make a lossy edit to the last this many tool results.
        include_tools: only edit the results (and definitions) of these tools.
        exclude_tools: never edit the results (or definitions) of these tools.
        min_saving: skip an edit that saves fewer tokens than this.
        cache_aware: skip edits whose savings over the calls still to come do not pay for the
            prompt cache they break (edits in the part of the prompt new since the last call
            are always made).
        clear_old_results: with ``unsafe``, also clear every tool result but the last
            ``keep_last`` (what LangChain's ``ClearToolUsesEdit`` does), in cache-aware batches.
        expected_calls: how many more calls will carry the prompt (default: as many as the
            session has made so far).
        cache_policy: ``anthropic``, ``openai`` or ``none``; the default follows the model.
        prices: extra prices, as for `ctxtax.audit`.
        counter: a `TokenCounter` (tiktoken offline by default).
        select, ignore, rule_options: which rules propose edits, as for `ctxtax.audit`.
        to: ``same`` (default), ``openai`` or ``anthropic``: the output format.
        strict: refuse an API payload whose tool calls and results do not pair up.

    Returns:
        An `Optimized`; `ctxtax.revert` gives the input back exactly.
    """
    from ctxtax._inputs import to_contexts

    contexts = to_contexts(messages, tools=tools, system=system, format=format, strict=strict)
    if len(contexts) != 1:
        raise InputError(
            f"optimize takes one conversation; the input holds {len(contexts)} "
            "(load one with ctxtax.load_all(...)[i])"
        )
    ctx = contexts[0]
    opts = OptimizeOptions(
        unsafe=unsafe,
        keep_last=keep_last,
        include_tools=frozenset(include_tools) if include_tools is not None else None,
        exclude_tools=frozenset(exclude_tools),
        min_saving=min_saving,
        cache_aware=cache_aware,
        expected_calls=expected_calls,
        clear_old_results=clear_old_results,
    )
    model = _context_model(ctx, model)
    input_ctx = ctx
    ctx = _api_context(ctx, to)
    counter = counter or default_counter(model)
    # The payload's format, not the input's: it is what will be sent, framed and cached (and what
    # optimizing the output again sees).
    provider = provider_for(model, ctx.source_format)
    table = parse_prices(prices) if prices else {}
    found = lookup_price(model, table)
    policy = cache_policy or cache_policy_for(model, provider)
    rules = select_rules(select, ignore, rule_options)
    run = _optimize_context(
        ctx,
        opts=opts,
        rules=rules,
        counter=counter,
        model=model,
        cost=CacheCost.of(policy, found[1] if found else None),
        cached=cached_messages(ctx),
    )
    payload = written(run.context)
    out_messages, out_tools, out_system = _split(payload, run.context.source_format)
    if tools is not None and out_tools is None:
        out_tools = _written_tools(run.context)
    return Optimized(
        payload=payload,
        messages=out_messages,
        tools=out_tools,
        system=out_system,
        context=run.context,
        edits=run.edits,
        tokens_before=run.tokens_before,
        tokens_after=run.tokens_after,
        report=run.first_report,
        deferred=run.deferred,
        format=run.context.source_format,
        _undo=run.undo,
        _input=input_ctx if input_ctx is not ctx else None,
    )


def _written_tools(ctx: Context) -> list[Any]:
    from ctxtax.formats import anthropic, openai_chat

    module = anthropic if ctx.source_format == "anthropic" else openai_chat
    return [module.write_tool(t) for t in ctx.tools]


def revert(optimized: Optimized) -> Any:
    """The input of `optimize`, exactly: the message list (or request body) it was given.

    For a session file that was written out in another format, the payload of the unedited
    conversation in that format. Tools given apart are in ``revert_tools(optimized)``.
    """
    return written(optimized.original_context())


def revert_tools(optimized: Optimized) -> Any:
    """The tool list `optimize` was given (in the output's format), or None."""
    ctx = optimized.original_context()
    return _written_tools(ctx) if ctx.tools else None


def deepcopy_payload(payload: Any) -> Any:
    """A deep copy of a payload, so a caller mutating the output leaves the log intact."""
    return copy.deepcopy(payload)


__all__ = [
    "OptimizeOptions",
    "Optimized",
    "cached_messages",
    "candidates",
    "optimize",
    "revert",
    "revert_tools",
]
