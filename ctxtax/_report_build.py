"""Building the `Report` of an audited conversation (`Audited.report`): its rows per message
and part, the tool table, the waste union, the estimated and recorded bills, and the notes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from ctxtax._context_audit import Audited, mcp_server
from ctxtax._counting import ContextTokens
from ctxtax._findings import replaced, trusted
from ctxtax._model import Call, Context, Message
from ctxtax._pairing import find_orphans
from ctxtax._prefix import starts_with
from ctxtax._pricing import PRICES_DATE, Price, lookup_price
from ctxtax._report import (
    Accuracy,
    MessageTokens,
    PartTokens,
    Report,
    SessionBill,
    ToolTokens,
)
from ctxtax._session import Bill, cache_policy_for, estimate_bill, recorded_bill
from ctxtax._tokens import tokenizer_exact
from ctxtax._waste import measure


def _tool_table(
    ctx: Context, tokens: ContextTokens, carried: int, state: dict[str, Any] | None = None
) -> list[ToolTokens]:
    """Per tool: its schema tokens, calls and result tokens. ``state`` (kept by an `Auditor`)
    keeps the calls and result tokens counted over the messages of last time."""
    calls: Counter[str] = Counter()
    results: Counter[str] = Counter()
    messages = ctx.messages
    first = 0
    if state is not None and "tool_messages" in state:
        seen = state["tool_messages"]
        n = len(seen)
        if starts_with(messages, seen) and tokens.part_tokens[:n] == state["tool_counts"]:
            first, calls, results = n, Counter(state["tool_calls"]), Counter(state["tool_results"])
    for i in range(first, len(messages)):
        for j, part in enumerate(messages[i].parts):
            if part.kind == "tool_call" and part.tool_name:
                calls[part.tool_name] += 1
            elif part.kind == "tool_result" and part.tool_name:
                results[part.tool_name] += tokens.part_tokens[i][j]
    if state is not None:
        state.update(
            tool_messages=messages,
            tool_counts=tokens.part_tokens,
            tool_calls=Counter(calls),
            tool_results=Counter(results),
        )
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


def _rows(audited: Audited) -> tuple[list[MessageTokens], Counter[str], Counter[str]]:
    """The report's row per message, and the tokens by role and by part kind.

    An `Auditor` keeps them: when the context starts with the messages of last time, with the
    same counts, their rows (re-stamped if the calls that carried them moved) and the totals
    over them are taken as they were, and only the new messages are walked.
    """
    ctx, tokens = audited.context, audited.tokens
    message_tokens = tokens.message_tokens.tolist()
    framing_tokens = tokens.framing_tokens.tolist()
    calls_per_message = audited.carried.tolist()
    memo = audited.memo
    state = memo.rows_state if memo is not None else {}
    rows = memo.part_rows if memo is not None else {}
    seen: tuple[Message, ...] = state.get("messages", ())
    n = len(seen)
    messages: list[MessageTokens]
    if (
        n
        and starts_with(ctx.messages, seen)
        and message_tokens[:n] == state["tokens"]
        and framing_tokens[:n] == state["framing"]
    ):
        by_role, by_kind = Counter(state["by_role"]), Counter(state["by_kind"])
        before: list[MessageTokens] = state["rows"]
        if calls_per_message[:n] == state["calls"]:
            messages = list(before)
        else:  # only the calls that carried them moved
            messages = [
                row if row.calls == c else replaced(row, calls=c)
                for row, c in zip(before, calls_per_message, strict=False)
            ]
    else:
        n, messages, by_role, by_kind = 0, [], Counter(), Counter()
    for i in range(n, len(ctx.messages)):
        message = ctx.messages[i]
        by_role[message.role] += message_tokens[i]
        by_kind["framing"] += framing_tokens[i]
        counts = tokens.part_tokens[i]
        kept = rows.get(id(message))
        if kept is None or kept[0] is not message or kept[1] != counts:
            parts = [
                trusted(PartTokens, kind=part.kind, tokens=n, tool=part.tool_name)
                for part, n in zip(message.parts, counts, strict=True)
            ]
            kept = rows[id(message)] = (message, list(counts), parts)
        for part_row in kept[2]:
            by_kind[part_row.kind] += part_row.tokens
        messages.append(
            trusted(
                MessageTokens,
                index=i,
                role=message.role,
                tokens=message_tokens[i],
                framing=framing_tokens[i],
                calls=calls_per_message[i],
                parts=kept[2],
            )
        )
    if memo is not None:
        state.update(
            messages=ctx.messages,
            tokens=message_tokens,
            framing=framing_tokens,
            calls=calls_per_message,
            rows=messages,
            by_role=Counter(by_role),
            by_kind=Counter(by_kind),
        )
    return messages, by_role, by_kind


def build_report(audited: Audited) -> Report:
    """The report of ``audited`` (rows it kept from earlier audits are reused)."""
    ctx, model, counter, provider = (
        audited.context,
        audited.model,
        audited.counter,
        audited.provider,
    )
    tokens, calls, carried, findings = (
        audited.tokens,
        audited.calls,
        audited.carried,
        audited.findings,
    )
    prices, cache_policy = audited.prices, audited.cache_policy
    memo = audited.memo
    messages, by_role, by_kind = _rows(audited)
    by_kind["framing"] += tokens.framing.reply_priming
    if ctx.tools:
        by_kind["tool_schema"] += tokens.tools_total

    tools = _tool_table(
        ctx,
        tokens,
        carried=sum(1 for c in calls if c.with_tools),
        state=memo.rows_state if memo is not None else None,
    )
    by_server: Counter[str] = Counter()
    for t in tools:
        if t.server:
            by_server[t.server] += t.schema_tokens

    found = lookup_price(model, prices)
    by_model: dict[str | None, Price | None] = {None: found[1] if found else None}

    def price_of(call: Call) -> Price | None:
        if call.model not in by_model:
            own = lookup_price(call.model, prices)
            by_model[call.model] = own[1] if own else None
        return by_model[call.model]

    policy = cache_policy or cache_policy_for(model, provider)
    estimated = estimate_bill(
        ctx,
        tokens,
        policy=policy,
        calls=calls,
        price_of=price_of,
        kept=memo.bill if memo is not None else None,
    )
    exact, reason = tokenizer_exact(counter, model)
    estimates = sorted(tokens.estimates)

    # The raw findings: the same objects as last time where they were reused (their calls are
    # read only for tool findings, which are never reused), so a kept measure holds.
    waste = measure(
        audited.raw_findings,
        tokens,
        carried,
        calls_with_tools=sum(1 for c in calls if c.with_tools),
        policy=cache_policy or cache_policy_for(model, provider),
        price=found[1] if found else None,
        kept=memo.waste_state if memo is not None else None,
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


__all__ = ["build_report"]
