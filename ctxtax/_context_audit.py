"""Auditing one conversation: its token table, the rules' findings, then the report.

`find_waste` does what every audit needs (counting, the calls and what they carried, the rules);
`Audited.report` builds the report from that (rows per message, the tool table, the waste union,
the bill), once, when asked: middleware that only wants the findings skips it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ctxtax._counting import ContextTokens, Provider, count_context, provider_for
from ctxtax._findings import Finding, replaced
from ctxtax._memo import report_order, with_calls
from ctxtax._model import Call, Context
from ctxtax._pricing import Price
from ctxtax._report import (
    Report,
)
from ctxtax._session import (
    CachePolicy,
    residency,
)
from ctxtax._tokens import TokenCounter, default_counter

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


@dataclass
class Audited:
    """One conversation counted and checked (`Auditor.find`): its token table, the calls that
    read it, the findings, and the `Report` on demand (`report()`, built once).

    ``findings`` have the calls that carried them in this session; ``raw_findings`` are the same
    findings, some kept from earlier audits with the calls they had then (enough for edits, and
    cheaper).
    """

    context: Context
    model: str | None
    counter: TokenCounter
    provider: Provider
    tokens: ContextTokens
    calls: tuple[Call, ...]
    carried: npt.NDArray[np.int64]
    raw_findings: list[Finding]
    """The findings in report order; the ``calls`` of those in ``stale`` (reused from an
    earlier audit) may be out of date, which edits do not mind: `findings` has them
    right."""
    prices: Mapping[str, Price]
    cache_policy: CachePolicy | None
    memo: AuditMemo | None = None
    """What an `Auditor` keeps between audits: the report reuses its rows, waste and bill."""
    stale: list[Sequence[Finding]] = field(default_factory=list)
    """The findings reused with the calls they were made with, in groups."""
    stampers: dict[str, Callable[[Finding], dict[str, Any] | None]] = field(default_factory=dict)
    """What brings a rule's reused findings up to date, by rule code (`Session.stamp_later`)."""
    changes: tuple[int, list[Finding], list[Finding]] | None = None
    """(the memo's run, found, gone): what this audit found that the audit of the run before
    did not, and the reverse (see `AuditMemo.changes`); None when unknown."""
    _findings: list[Finding] | None = field(default=None, repr=False)
    _report: Report | None = field(default=None, repr=False)

    @property
    def findings(self) -> list[Finding]:
        """The findings, each with the calls that carried it in this session."""
        if self._findings is None:
            stale = {id(f) for group in self.stale for f in group}
            carried, stampers = self.carried, self.stampers
            out: list[Finding] = []
            for f in self.raw_findings:
                if id(f) in stale:
                    f = with_calls(f, carried)  # noqa: PLW2901
                elif f.code in stampers:
                    stamped = stampers[f.code](f)
                    if stamped:
                        if "evidence" in stamped:
                            stamped["evidence"] = {**f.evidence, **stamped["evidence"]}
                        f = replaced(f, **stamped)  # noqa: PLW2901
                out.append(f)
            self._findings = out
        return self._findings

    def report(self) -> Report:
        """The full report (built once)."""
        if self._report is None:
            from ctxtax._report_build import build_report

            self._report = build_report(self)
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
    carried = residency(ctx, calls, memo.residency if memo is not None else None)
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
        stampers={} if memo is not None else None,
    )
    if memo is None:
        findings = [f for rule in rules for f in rule.check(session)]
    else:
        findings = memo.run(rules, session)
    if memo is None:
        findings.sort(key=report_order)
    else:
        findings = memo.ordered(findings)
    return Audited(
        context=ctx,
        model=model,
        counter=counter,
        provider=provider,
        tokens=tokens,
        calls=calls,
        carried=carried,
        raw_findings=findings,
        stale=list(memo.stale) if memo is not None else [],
        changes=(memo.runs, *memo.changes) if memo is not None and memo.changes else None,
        stampers=session.stampers or {},
        prices=prices or {},
        cache_policy=cache_policy,
        memo=memo,
    )
