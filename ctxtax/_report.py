"""The `Report` an audit returns, and its stable JSON form.

``Report.to_dict()`` is the documented JSON output (``schema_version`` 1). Fields are only ever
added, never renamed or removed, within a schema version. A file holding several conversations
gives one report per conversation in ``conversations`` and their sums at the top level.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ctxtax._findings import Finding
from ctxtax._session import Bill

SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Accuracy(_Frozen):
    """Which numbers are exact and which are estimates."""

    tokenizer: str
    exact: bool
    reason: str
    estimated: list[str] = Field(default_factory=list)


class PartTokens(_Frozen):
    """Tokens of one content part."""

    kind: str
    tokens: int
    tool: str | None = None


class MessageTokens(_Frozen):
    """Tokens of one message: its parts plus framing, and how many calls carried it."""

    index: int
    role: str
    tokens: int
    framing: int
    calls: int
    parts: list[PartTokens]


class ToolTokens(_Frozen):
    """One tool: its schema's tokens, how often it was called, what its results cost."""

    name: str
    server: str | None = None
    schema_tokens: int = 0
    calls: int = 0
    result_tokens: int = 0
    carried: int = 0


class SessionBill(_Frozen):
    """The session bill: every call re-reads its prompt. Estimated, and recorded where logged."""

    calls: int
    billed_input_tokens: int
    cache_policy: str
    price_model: str | None
    prices_date: str
    estimated: Bill
    recorded: Bill | None = None


class Report(_Frozen):
    """An audit of one conversation (or the sums over several, in ``conversations``)."""

    schema_version: int = SCHEMA_VERSION
    source: str | None = None
    format: str
    title: str | None = None
    model: str | None = None
    provider: str
    accuracy: Accuracy
    total_tokens: int
    message_count: int
    tool_count: int
    tokens_by_role: dict[str, int]
    tokens_by_part_kind: dict[str, int]
    tool_schema_tokens: int
    tokens_by_tool: list[ToolTokens]
    tokens_by_server: dict[str, int] = Field(default_factory=dict)
    messages: list[MessageTokens] = Field(default_factory=list)
    bill: SessionBill
    wasted_tokens: int = 0
    tax_rate: float = 0.0
    waste_by_rule: dict[str, int] = Field(default_factory=dict)
    waste_billed_tokens: int = 0
    waste_cost_usd: float | None = None
    findings: list[Finding] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    conversations: list[Report] = Field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (the documented, stable shape)."""
        return self.model_dump(mode="json")

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def _sum_counts(maps: Sequence[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for m in maps:
        total.update(m)
    return dict(total.most_common())


def _sum_bills(bills: Sequence[Bill]) -> Bill:
    total = Bill()
    for bill in bills:
        total = total + bill
    return total


def _sum_costs(costs: Sequence[float | None]) -> float | None:
    known = [c for c in costs if c is not None]
    return round(sum(known), 6) if known else None


def combine(reports: Sequence[Report], *, source: str | None, fmt: str) -> Report:
    """One report over several conversations: sums at the top, each one in ``conversations``."""
    if len(reports) == 1:
        return reports[0]
    tools: dict[tuple[str, str | None], ToolTokens] = {}
    for report in reports:
        for t in report.tokens_by_tool:
            key = (t.name, t.server)
            prev = tools.get(key)
            tools[key] = (
                t
                if prev is None
                else ToolTokens(
                    name=t.name,
                    server=t.server,
                    schema_tokens=max(prev.schema_tokens, t.schema_tokens),
                    calls=prev.calls + t.calls,
                    result_tokens=prev.result_tokens + t.result_tokens,
                    carried=prev.carried + t.carried,
                )
            )
    recorded = [r.bill.recorded for r in reports if r.bill.recorded is not None]
    models = {r.model for r in reports if r.model}
    estimated = sorted({e for r in reports for e in r.accuracy.estimated})
    total = sum(r.total_tokens for r in reports)
    wasted = sum(r.wasted_tokens for r in reports)
    first = reports[0]
    return Report(
        source=source,
        format=fmt,
        title=f"{len(reports)} conversations",
        model=models.pop() if len(models) == 1 else None,
        provider=first.provider,
        accuracy=Accuracy(
            tokenizer=first.accuracy.tokenizer,
            exact=all(r.accuracy.exact for r in reports),
            reason=first.accuracy.reason,
            estimated=estimated,
        ),
        total_tokens=total,
        message_count=sum(r.message_count for r in reports),
        tool_count=sum(1 for t in tools.values() if t.schema_tokens),
        tokens_by_role=_sum_counts([r.tokens_by_role for r in reports]),
        tokens_by_part_kind=_sum_counts([r.tokens_by_part_kind for r in reports]),
        tool_schema_tokens=sum(r.tool_schema_tokens for r in reports),
        tokens_by_tool=sorted(tools.values(), key=lambda t: -t.schema_tokens - t.result_tokens),
        tokens_by_server=_sum_counts([r.tokens_by_server for r in reports]),
        bill=SessionBill(
            calls=sum(r.bill.calls for r in reports),
            billed_input_tokens=sum(r.bill.billed_input_tokens for r in reports),
            cache_policy=first.bill.cache_policy,
            price_model=first.bill.price_model,
            prices_date=first.bill.prices_date,
            estimated=_sum_bills([r.bill.estimated for r in reports]),
            recorded=_sum_bills(recorded) if recorded else None,
        ),
        wasted_tokens=wasted,
        tax_rate=wasted / total if total else 0.0,
        waste_by_rule=_sum_counts([r.waste_by_rule for r in reports]),
        waste_billed_tokens=sum(r.waste_billed_tokens for r in reports),
        waste_cost_usd=_sum_costs([r.waste_cost_usd for r in reports]),
        notes=sorted({n for r in reports for n in r.notes}),
        conversations=list(reports),
    )


__all__ = [
    "SCHEMA_VERSION",
    "Accuracy",
    "MessageTokens",
    "PartTokens",
    "Report",
    "SessionBill",
    "ToolTokens",
    "combine",
]
