"""Auditing one conversation: its token table, the rules' findings, then the report.

`find_waste` does what every audit needs (counting, the calls and what they carried, the rules);
`Audited.report` builds the report from that (rows per message, the tool table, the waste union,
the bill), once, when asked: middleware that only wants the findings skips it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ctxtax._counting import ContextTokens, Provider, count_context, provider_for
from ctxtax._findings import Finding, replaced, trusted
from ctxtax._memo import with_calls
from ctxtax._model import Call, Context, Message
from ctxtax._pairing import find_orphans
from ctxtax._pricing import PRICES_DATE, Price, lookup_price
from ctxtax._report import (
    Accuracy,
    MessageTokens,
    PartTokens,
    Report,
    SessionBill,
    ToolTokens,
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


_Rows = tuple[
    Message, list[int], list[PartTokens], tuple[int, int, int, int] | None, MessageTokens | None
]
"""A message's report rows: the message, its part counts, part rows, the key of its message row
(index, tokens, framing, calls) and that row."""


@dataclass
class Audited:
    """One conversation counted and checked: what `find_waste` found, and its report on demand."""

    context: Context
    model: str | None
    counter: TokenCounter
    provider: Provider
    tokens: ContextTokens
    calls: tuple[Call, ...]
    carried: npt.NDArray[np.int64]
    raw_findings: list[Finding]
    """The findings in report order; the ``calls`` of those whose ids are in ``stale`` (reused
    from an earlier audit) may be out of date, which edits do not mind: `findings` has them
    right."""
    prices: Mapping[str, Price]
    cache_policy: CachePolicy | None
    part_rows: dict[int, _Rows] | None = None
    """Report rows by message, kept by an `Auditor` between audits."""
    bill: dict[str, Any] | None = None
    """The shares of the bill per call, kept by an `Auditor` between audits."""
    stale: set[int] = field(default_factory=set)
    restamps: dict[int, tuple[Finding, dict[str, Any]]] = field(default_factory=dict)
    """Changes rules asked for on findings they reused (`Session.later`), by finding id."""
    _findings: list[Finding] | None = field(default=None, repr=False)
    _report: Report | None = field(default=None, repr=False)

    @property
    def findings(self) -> list[Finding]:
        """The findings, each with the calls that carried it in this session."""
        if self._findings is None:
            stale, carried, restamps = self.stale, self.carried, self.restamps
            out: list[Finding] = []
            for f in self.raw_findings:
                if id(f) in stale:
                    f = with_calls(f, carried)  # noqa: PLW2901
                elif id(f) in restamps:
                    changes = dict(restamps[id(f)][1])
                    if "evidence" in changes:
                        changes["evidence"] = {**f.evidence, **changes["evidence"]}
                    f = replaced(f, **changes)  # noqa: PLW2901
                out.append(f)
            self._findings = out
        return self._findings

    def report(self) -> Report:
        """The full report (built once)."""
        if self._report is None:
            self._report = _build_report(self)
        return self._report


def find_waste(
    ctx: Context,
    *,
    model: str | None = None,
    counter: TokenCounter | None = None,
    prices: Mapping[str, Price] | None = None,
    cache_policy: CachePolicy | None = None,
    rules: Sequence[Rule] | None = None,
    duplicate_index: DuplicateIndex | None = None,
    memo: AuditMemo | None = None,
    calls: tuple[Call, ...] | None = None,
) -> Audited:
    """Count ``ctx`` and run ``rules`` (all registered rules by default) over it.

    ``duplicate_index`` and ``memo`` are what an `Auditor` keeps between audits of a growing
    session (see `ctxtax._memo`); ``calls`` its model calls, when the caller has them."""
    from ctxtax.rules import Session, select_rules

    model = _context_model(ctx, model)
    counter = counter or default_counter(model)
    provider = provider_for(model, ctx.source_format)
    tokens = count_context(
        ctx, counter, provider=provider, memo=memo.counts if memo is not None else None
    )
    calls = ctx.model_calls() if calls is None else calls
    carried = residency(ctx, calls)
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
        restamps={} if memo is not None else None,
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
    return Audited(
        context=ctx,
        model=model,
        counter=counter,
        provider=provider,
        tokens=tokens,
        calls=calls,
        carried=carried,
        raw_findings=findings,
        stale=set(memo.stale) if memo is not None else set(),
        restamps=session.restamps or {},
        prices=prices or {},
        cache_policy=cache_policy,
        part_rows=memo.part_rows if memo is not None else None,
        bill=memo.bill if memo is not None else None,
    )


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
    """Audit one conversation with ``rules`` (all registered rules by default): `find_waste`
    and its report."""
    return find_waste(
        ctx,
        model=model,
        counter=counter,
        prices=prices,
        cache_policy=cache_policy,
        rules=rules,
        duplicate_index=duplicate_index,
        memo=memo,
    ).report()


def _build_report(audited: Audited) -> Report:
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
    by_role: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    messages: list[MessageTokens] = []
    rows = audited.part_rows if audited.part_rows is not None else {}
    message_tokens = tokens.message_tokens.tolist()
    framing_tokens = tokens.framing_tokens.tolist()
    calls_per_message = carried.tolist()
    for i, message in enumerate(ctx.messages):
        by_role[message.role] += message_tokens[i]
        by_kind["framing"] += framing_tokens[i]
        counts = tokens.part_tokens[i]
        # The row of a message seen before, at the same place with the same counts, is reused.
        key = (i, message_tokens[i], framing_tokens[i], calls_per_message[i])
        kept = rows.get(id(message))
        if kept is None or kept[0] is not message or kept[1] != counts:
            parts = [
                trusted(PartTokens, kind=part.kind, tokens=n, tool=part.tool_name)
                for part, n in zip(message.parts, counts, strict=True)
            ]
            kept = rows[id(message)] = (message, list(counts), parts, None, None)
        for part_row in kept[2]:
            by_kind[part_row.kind] += part_row.tokens
        row = kept[4]
        if row is not None and kept[3] is not None and kept[3][:3] == key[:3]:
            if kept[3][3] != key[3]:  # only the calls that carried it moved
                row = replaced(row, calls=calls_per_message[i])
                rows[id(message)] = (message, kept[1], kept[2], key, row)
        else:
            row = trusted(
                MessageTokens,
                index=i,
                role=message.role,
                tokens=message_tokens[i],
                framing=framing_tokens[i],
                calls=calls_per_message[i],
                parts=kept[2],
            )
            rows[id(message)] = (message, kept[1], kept[2], key, row)
        messages.append(row)
    by_kind["framing"] += tokens.framing.reply_priming
    if ctx.tools:
        by_kind["tool_schema"] += tokens.tools_total

    tools = _tool_table(ctx, tokens, carried=sum(1 for c in calls if c.with_tools))
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
        ctx, tokens, policy=policy, calls=calls, price_of=price_of, kept=audited.bill
    )
    exact, reason = tokenizer_exact(counter, model)
    estimates = sorted(tokens.estimates)

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
