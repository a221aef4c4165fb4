"""audit(): count, price and report one or more conversations."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctxtax._counting import ContextTokens, count_context, provider_for
from ctxtax._findings import trusted
from ctxtax._inputs import to_contexts
from ctxtax._model import Call, Context
from ctxtax._pairing import find_orphans
from ctxtax._pricing import PRICES_DATE, Price, lookup_price, parse_prices
from ctxtax._report import (
    Accuracy,
    MessageTokens,
    PartTokens,
    Report,
    SessionBill,
    ToolTokens,
    combine,
)
from ctxtax._session import (
    Bill,
    CachePolicy,
    cache_policy_for,
    estimate_bill,
    recorded_bill,
    residency,
)
from ctxtax._tokens import TokenCounter, default_counter, tokenizer_exact
from ctxtax._waste import measure

if TYPE_CHECKING:
    from ctxtax._config import Config
    from ctxtax._dupes import DuplicateIndex
    from ctxtax._memo import AuditMemo
    from ctxtax.rules.base import Rule


def mcp_server(tool_name: str) -> str | None:
    """The server of an ``mcp__server__tool`` name, or None."""
    if tool_name.startswith("mcp__"):
        server, sep, _ = tool_name[5:].partition("__")
        return server if sep else None
    return None


def _tool_table(ctx: Context, tokens: ContextTokens, carried: int) -> list[ToolTokens]:
    calls: Counter[str] = Counter()
    results: Counter[str] = Counter()
    for i, message in enumerate(ctx.messages):
        for j, part in enumerate(message.parts):
            if part.kind == "tool_call" and part.tool_name:
                calls[part.tool_name] += 1
            elif part.kind == "tool_result" and part.tool_name:
                results[part.tool_name] += tokens.part_tokens[i][j]
    table: dict[str, ToolTokens] = {}
    for spec, schema in zip(ctx.tools, tokens.tool_tokens, strict=True):
        table[spec.name] = ToolTokens(
            name=spec.name,
            server=spec.server or mcp_server(spec.name),
            schema_tokens=schema,
            calls=calls[spec.name],
            result_tokens=results[spec.name],
            carried=carried,
        )
    for name in sorted(set(calls) | set(results)):
        if name not in table:
            table[name] = ToolTokens(
                name=name,
                server=mcp_server(name),
                calls=calls[name],
                result_tokens=results[name],
            )
    return sorted(table.values(), key=lambda t: (-(t.schema_tokens + t.result_tokens), t.name))


def _price_recorded(ctx: Context, model: str | None, prices: Mapping[str, Price]) -> Bill | None:
    bill = recorded_bill(ctx)
    if bill is None:
        return None
    cost = 0.0
    for call in ctx.calls or ():
        if call.usage is None:
            continue
        found = lookup_price(call.model or model, prices)
        if found is None:
            return bill
        single = Bill(
            input_tokens=call.usage.input_tokens,
            cache_write_tokens=call.usage.cache_write_tokens,
            cache_read_tokens=call.usage.cache_read_tokens,
            output_tokens=call.usage.output_tokens,
        ).priced(found[1])
        cost += single.cost_usd or 0.0
    return bill.model_copy(update={"cost_usd": round(cost, 6)})


def _unlogged_prompt(ctx: Context, tokens: ContextTokens) -> int:
    """Mean tokens per call that the recorded usage billed beyond the logged messages."""
    gaps = [
        c.usage.prompt_tokens - tokens.window(c.start, c.end, with_tools=c.with_tools, head=c.head)
        for c in ctx.calls or ()
        if c.usage is not None and c.usage.prompt_tokens
    ]
    return round(sum(gaps) / len(gaps)) if gaps else 0


def _context_model(ctx: Context, model: str | None) -> str | None:
    if model:
        return model
    if ctx.model:
        return ctx.model
    # The model that read the most: side calls (titles, topic checks) use small models.
    weight: Counter[str] = Counter()
    for call in ctx.calls or ():
        if call.model:
            weight[call.model] += call.usage.prompt_tokens if call.usage else 1
    return weight.most_common(1)[0][0] if weight else None


def shared_options(rules: Sequence[Rule]) -> dict[str, Any]:
    """Options the shared analyses need, gathered from the selected rules' options."""
    by_code = {r.code: r.options for r in rules}
    dup: dict[str, Any] = {}
    if "CTX101" in by_code:
        dup["min_tokens"] = getattr(by_code["CTX101"], "min_tokens", 32)
    if "CTX102" in by_code:
        dup["near_min_tokens"] = getattr(by_code["CTX102"], "min_tokens", 64)
        dup["near_threshold"] = getattr(by_code["CTX102"], "threshold", 0.8)
    if "CTX103" in by_code:
        dup["min_repeats"] = getattr(by_code["CTX103"], "min_repeats", 3)
    if "CTX104" in by_code:
        dup["min_transcript_messages"] = getattr(by_code["CTX104"], "min_messages", 2)
    return {"duplicates": dup}


def audit_context(
    ctx: Context,
    *,
    model: str | None = None,
    counter: TokenCounter | None = None,
    prices: Mapping[str, Price] | None = None,
    cache_policy: CachePolicy | None = None,
    rules: Sequence[Rule] | None = None,
    duplicate_index: DuplicateIndex | None = None,
    memo: AuditMemo | None = None,
) -> Report:
    """Audit one conversation with ``rules`` (all registered rules by default).

    ``duplicate_index`` and ``memo`` are what an `Auditor` keeps between audits of a growing
    session (see `ctxtax._memo`)."""
    from ctxtax.rules import Session, select_rules

    prices = prices or {}
    model = _context_model(ctx, model)
    counter = counter or default_counter(model)
    provider = provider_for(model, ctx.source_format)
    tokens = count_context(
        ctx, counter, provider=provider, memo=memo.counts if memo is not None else None
    )
    calls: tuple[Call, ...] = ctx.model_calls()
    carried = residency(ctx, calls)

    by_role: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    messages: list[MessageTokens] = []
    for i, message in enumerate(ctx.messages):
        by_role[message.role] += int(tokens.message_tokens[i])
        by_kind["framing"] += int(tokens.framing_tokens[i])
        parts = []
        for part, n in zip(message.parts, tokens.part_tokens[i], strict=True):
            by_kind[part.kind] += n
            parts.append(trusted(PartTokens, kind=part.kind, tokens=n, tool=part.tool_name))
        messages.append(
            trusted(
                MessageTokens,
                index=i,
                role=message.role,
                tokens=int(tokens.message_tokens[i]),
                framing=int(tokens.framing_tokens[i]),
                calls=int(carried[i]),
                parts=parts,
            )
        )
    by_kind["framing"] += tokens.framing.reply_priming
    if ctx.tools:
        by_kind["tool_schema"] += tokens.tools_total

    tools = _tool_table(ctx, tokens, carried=sum(1 for c in calls if c.with_tools))
    by_server: Counter[str] = Counter()
    for t in tools:
        if t.server:
            by_server[t.server] += t.schema_tokens

    found = lookup_price(model, prices)

    def price_of(call: Call) -> Price | None:
        own = lookup_price(call.model, prices) if call.model else found
        return own[1] if own else None

    policy = cache_policy or cache_policy_for(model, provider)
    estimated = estimate_bill(ctx, tokens, policy=policy, calls=calls, price_of=price_of)
    exact, reason = tokenizer_exact(counter, model)
    estimates = sorted(tokens.estimates)

    rules = select_rules() if rules is None else rules
    unchanged = memo.unchanged(ctx.messages) if memo is not None else 0  # may empty memories
    session = Session(
        context=ctx,
        tokens=tokens,
        calls=calls,
        residency=carried,
        counter=counter,
        options=shared_options(rules),
        duplicate_index=duplicate_index,
        unchanged=unchanged,
        memories=memo.memories if memo is not None else None,
    )
    if memo is None:
        findings = [f for rule in rules for f in rule.check(session)]
    else:
        findings = memo.run(rules, session)
    findings.sort(
        key=lambda f: (
            f.loc.message if f.loc.message is not None else -1,
            f.loc.part or 0,
            f.loc.token_start or 0,
            f.code,
        )
    )
    waste = measure(
        findings,
        tokens,
        carried,
        calls_with_tools=sum(1 for c in calls if c.with_tools),
        policy=cache_policy or cache_policy_for(model, provider),
        price=found[1] if found else None,
    )

    notes: list[str] = []
    if found is None:
        notes.append(
            f"no price for model {model!r}; pass prices= (or --prices) to price it"
            if model
            else "no model known; pass model= (or --model) to price the session"
        )
    orphans = find_orphans(ctx)
    if orphans:
        notes.append(f"{len(orphans)} broken tool-call pairing(s), first: {orphans[0].describe()}")
    if ctx.calls is None:
        notes.append("model calls inferred: one per assistant message, each reading all before it")
    gap = _unlogged_prompt(ctx, tokens)
    if gap > 500:
        notes.append(
            f"the recorded prompts average {gap:,} tokens more per call than the logged messages "
            "count: text the log does not record (system prompt, tool definitions, injected "
            "reminders) and the gap between the model's tokenizer and the one used here; the "
            "recorded bill has it, the estimate does not"
        )

    total = tokens.total
    return Report(
        source=ctx.source,
        format=ctx.source_format,
        title=ctx.title,
        model=model,
        provider=provider,
        accuracy=Accuracy(
            tokenizer=counter.encoding,
            exact=exact and not estimates,
            reason=reason,
            estimated=estimates,
        ),
        total_tokens=total,
        message_count=len(ctx.messages),
        tool_count=len(ctx.tools),
        tokens_by_role=dict(by_role.most_common()),
        tokens_by_part_kind=dict(by_kind.most_common()),
        tool_schema_tokens=tokens.tools_total,
        tokens_by_tool=tools,
        tokens_by_server=dict(by_server.most_common()),
        messages=messages,
        wasted_tokens=waste.tokens,
        tax_rate=round(waste.tokens / total, 6) if total else 0.0,
        waste_by_rule=waste.by_rule,
        waste_billed_tokens=waste.billed_tokens,
        waste_cost_usd=waste.cost_usd,
        findings=findings,
        bill=SessionBill(
            calls=len(calls),
            billed_input_tokens=estimated.prompt_tokens,
            cache_policy=policy,
            price_model=found[0] if found else None,
            prices_date=PRICES_DATE,
            estimated=estimated,
            recorded=_price_recorded(ctx, model, prices),
        ),
        notes=notes,
    )


def _encode_together(contexts: Sequence[Context], counters: Sequence[TokenCounter]) -> None:
    """Tokenize every conversation's texts in one threaded batch per counter, into its cache.

    Many small conversations tokenized one by one leave the tokenizer's threads idle; the
    per-conversation audits then find their token ids cached.
    """
    from ctxtax._counting import context_texts

    groups: dict[int, tuple[TokenCounter, list[str]]] = {}
    for ctx, counter in zip(contexts, counters, strict=True):
        groups.setdefault(id(counter), (counter, []))[1].extend(context_texts(ctx))
    for counter, texts in groups.values():
        counter.encode_many(list(dict.fromkeys(texts)))


def audit(
    messages: Any,
    *,
    tools: Any = None,
    model: str | None = None,
    system: Any = None,
    format: str | None = None,
    counter: TokenCounter | None = None,
    prices: Mapping[str, Any] | None = None,
    cache_policy: CachePolicy | None = None,
    strict: bool = True,
    max_message_chars: int = 5_000_000,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    rule_options: Mapping[str, Mapping[str, Any]] | None = None,
    config: Config | None = None,
) -> Report:
    """Count, price and report the tokens of a session, and find its waste.

    Args:
        messages: OpenAI or Anthropic message dicts (or a request body), a `Context`, or the path
            of any supported session file.
        tools: tool definitions in OpenAI, Anthropic or MCP shape, replacing any in ``messages``.
        model: the model to count and price for (else the one the session names).
        system: an Anthropic ``system`` prompt, when ``messages`` are Anthropic messages.
        format: the input format, instead of detecting it (see `ctxtax.formats.FORMATS`).
        counter: a `TokenCounter`; the default is tiktoken, offline.
        prices: ``{model: {input, cache_write, cache_read, output}}`` in USD per million tokens,
            added to (and overriding) the built-in table.
        cache_policy: ``"anthropic"``, ``"openai"`` or ``"none"``; the default follows the model.
        strict: raise `PairingError` when an API payload has a tool result without its call (or
            a call without its result) instead of reporting it.
        max_message_chars: a message longer than this is an `InputError`.
        select: rule codes or prefixes to run (``["CTX1"]``); all rules by default.
        ignore: rule codes or prefixes not to run.
        rule_options: options per rule code, e.g. ``{"CTX101": {"min_tokens": 64}}``.
        config: a `Config` (see `ctxtax.load_config`): its ``select`` applies when ``select`` is
            not given, its ``ignore`` and rule options add to these, its model is the default.

    Returns:
        A `Report`. For input holding several conversations, the report sums them and lists
        each in ``conversations``.
    """
    from ctxtax._gc import paused_gc
    from ctxtax.rules import select_rules

    if config is not None:
        select = select if select is not None else config.select
        ignore = [*config.ignore, *(ignore or [])]
        rule_options = {**config.rules, **(rule_options or {})}
        model = model or config.model
    table = parse_prices(prices) if prices else {}
    rules = select_rules(select, ignore, rule_options)
    with paused_gc():
        return _audit_all(
            messages,
            tools=tools,
            model=model,
            system=system,
            format=format,
            counter=counter,
            table=table,
            cache_policy=cache_policy,
            strict=strict,
            max_message_chars=max_message_chars,
            rules=rules,
        )


def _audit_all(
    messages: Any,
    *,
    tools: Any,
    model: str | None,
    system: Any,
    format: str | None,
    counter: TokenCounter | None,
    table: Mapping[str, Price],
    cache_policy: CachePolicy | None,
    strict: bool,
    max_message_chars: int,
    rules: Sequence[Rule],
) -> Report:
    """`audit` after its options are checked: read, tokenize together, audit each, combine."""
    contexts = to_contexts(
        messages,
        tools=tools,
        system=system,
        format=format,
        strict=strict,
        max_message_chars=max_message_chars,
    )
    counters = [counter or default_counter(_context_model(ctx, model)) for ctx in contexts]
    if len(contexts) > 1:
        _encode_together(contexts, counters)
    reports = [
        audit_context(
            ctx, model=model, counter=c, prices=table, cache_policy=cache_policy, rules=rules
        )
        for ctx, c in zip(contexts, counters, strict=True)
    ]
    source = str(messages) if isinstance(messages, (str, Path)) else contexts[0].source
    return combine(reports, source=source, fmt=contexts[0].source_format)


__all__ = ["audit", "audit_context", "mcp_server"]
