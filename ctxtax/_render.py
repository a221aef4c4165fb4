"""The human report: text tables of where the tokens go and what the session cost."""

from __future__ import annotations

from ctxtax._findings import Finding
from ctxtax._report import Report
from ctxtax._session import Bill
from ctxtax._text_table import BOLD, BOLD_RED, RED, Page, Table


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def render_text(report: Report, *, width: int = 100, color: bool = False, top: int = 10) -> str:
    """The report as text and box-drawn tables, ``top`` rows per breakdown.

    Lines are at most ``width`` terminal cells; ``color`` adds ANSI bold and red, and without
    it the text has no escape codes at all.
    """
    page = Page(width, color)
    title = report.title or report.source or "session"
    page.print(("ctxtax audit", BOLD), f": {title}")
    page.print(
        f"format {report.format} · model {report.model or 'unknown'} · "
        f"{report.message_count:,} messages · {report.tool_count:,} tools · "
        f"{report.bill.calls:,} model calls"
        + (f" · {len(report.conversations)} conversations" if report.conversations else "")
    )
    page.print(
        (f"{report.total_tokens:,}", BOLD),
        " tokens in context"
        f" · counts are {'exact' if report.accuracy.exact else 'estimates'}: "
        f"{report.accuracy.reason}",
    )
    if report.accuracy.estimated:
        page.print(f"estimated: {', '.join(report.accuracy.estimated)}")

    total = report.total_tokens
    kinds = Table("Tokens by part kind")
    kinds.add_column("kind")
    kinds.add_column("tokens", justify="right")
    kinds.add_column("share", justify="right")
    for kind, n in list(report.tokens_by_part_kind.items())[:top]:
        kinds.add_row(kind, f"{n:,}", _share(n, total))
    roles = Table("Tokens by role")
    roles.add_column("role")
    roles.add_column("tokens", justify="right")
    roles.add_column("share", justify="right")
    for role, n in report.tokens_by_role.items():
        roles.add_row(role, f"{n:,}", _share(n, total))
    page.table(kinds)
    page.table(roles)

    if report.tokens_by_tool:
        tools = Table(f"Tools (top {top} by tokens)")
        for col in ("tool", "schema tokens", "calls", "result tokens"):
            tools.add_column(col, justify="left" if col == "tool" else "right")
        for t in report.tokens_by_tool[:top]:
            name = f"{t.name} [{t.server}]" if t.server else t.name
            tools.add_row(name, f"{t.schema_tokens:,}", f"{t.calls:,}", f"{t.result_tokens:,}")
        page.table(tools)
        idle = [t for t in report.tokens_by_tool if t.schema_tokens and not t.calls]
        if idle and report.bill.calls:
            schema = sum(t.schema_tokens for t in idle)
            page.print(
                f"{len(idle)} of {report.tool_count} tool schemas were never called: "
                f"{schema:,} tokens, sent with each of {report.bill.calls:,} calls"
            )

    bill = Table("Session bill (every call re-reads its prompt)")
    for col in ("", "calls", "input", "cache write", "cache read", "output", "cost"):
        bill.add_column(col, justify="left" if not col else "right")

    def row(label: str, b: Bill) -> None:
        bill.add_row(
            label,
            f"{b.calls:,}",
            f"{b.input_tokens:,}",
            f"{b.cache_write_tokens:,}",
            f"{b.cache_read_tokens:,}",
            f"{b.output_tokens:,}",
            _usd(b.cost_usd),
        )

    row(f"estimated ({report.bill.cache_policy} caching)", report.bill.estimated)
    if report.bill.recorded is not None:
        row("recorded in the log", report.bill.recorded)
    page.table(bill)
    price = report.bill.price_model or "no price"
    page.print(
        f"billed input: {report.bill.billed_input_tokens:,} tokens over {report.bill.calls:,} calls"
        f" · prices: {price} ({report.bill.prices_date})"
    )
    _render_errors(page, report, top)
    if report.findings or report.wasted_tokens:
        _render_waste(page, report, top)
    elif not report.conversations:
        page.print("context tax: no waste found")
    for note in report.notes:
        page.print(f"note: {note}")
    return page.text()


def _located(report: Report) -> list[tuple[str, Finding]]:
    """Every finding with the title of its conversation ("" for a single conversation)."""
    located = [(c.title or "", f) for c in report.conversations for f in c.findings]
    return located or [("", f) for f in report.findings]


def _where(title: str, finding: Finding) -> str:
    return f"{title}: {finding.loc.describe()}" if title else finding.loc.describe()


def _render_errors(page: Page, report: Report, top: int) -> None:
    """Findings of severity error (the provider would reject the request), before the waste."""
    errors = [(title, f) for title, f in _located(report) if f.severity == "error"]
    if not errors:
        return
    page.print((f"{len(errors):,} error(s)", BOLD_RED), ": the provider would reject it")
    for title, f in errors[:top]:
        page.print("  ", (f.code, RED), f" {_where(title, f)}: {f.message}")
    if len(errors) > top:
        page.print(f"  ... and {len(errors) - top:,} more")


def _render_waste(page: Page, report: Report, top: int) -> None:
    cost = (
        f", {_usd(report.waste_cost_usd)} of the bill" if report.waste_cost_usd is not None else ""
    )
    page.print(
        (
            f"context tax: {report.wasted_tokens:,} tokens wasted "
            f"({100 * report.tax_rate:.1f}% of the context)",
            BOLD,
        ),
        f", billed {report.waste_billed_tokens:,} times over the session's calls{cost}",
    )
    findings = report.findings or [f for c in report.conversations for f in c.findings]
    by_rule: dict[str, list[Finding]] = {}
    for f in findings:
        by_rule.setdefault(f.code, []).append(f)
    rules = Table("Waste by rule")
    for col in ("rule", "findings", "tokens", "billed (x calls)"):
        rules.add_column(col, justify="left" if col == "rule" else "right")
    for code, found in sorted(by_rule.items()):
        rules.add_row(
            f"{code} {found[0].rule}",
            f"{len(found):,}",
            f"{sum(f.tokens for f in found):,}",
            f"{sum(f.tokens * f.calls for f in found):,}",
        )
    page.table(rules)
    located = [(title, f) for title, f in _located(report) if f.tokens > 0]
    worst = sorted(located, key=lambda item: -item[1].tokens * max(item[1].calls, 1))[:top]
    table = Table(f"Top {len(worst)} findings by billed tokens")
    for col in ("code", "where", "tokens", "calls", "what"):
        table.add_column(col, justify="right" if col in ("tokens", "calls") else "left")
    for title, f in worst:
        table.add_row(f.code, _where(title, f), f"{f.tokens:,}", f"{f.calls:,}", f.message)
    page.table(table)


__all__ = ["render_text"]
