"""The human report: rich tables of where the tokens go and what the session cost."""

from __future__ import annotations

from io import StringIO
from typing import Any

from ctxtax._findings import Finding
from ctxtax._report import Report
from ctxtax._session import Bill


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def render_text(report: Report, *, width: int = 100, color: bool = False, top: int = 10) -> str:
    """The report as text tables (rich), ``top`` rows per breakdown."""
    from rich.console import Console
    from rich.table import Table

    out = StringIO()
    console = Console(
        file=out, width=width, force_terminal=color, color_system="auto" if color else None
    )
    title = report.title or report.source or "session"
    console.print(f"[bold]ctxtax audit[/bold]: {title}")
    console.print(
        f"format {report.format} · model {report.model or 'unknown'} · "
        f"{report.message_count:,} messages · {report.tool_count:,} tools · "
        f"{report.bill.calls:,} model calls"
        + (f" · {len(report.conversations)} conversations" if report.conversations else "")
    )
    console.print(
        f"[bold]{report.total_tokens:,}[/bold] tokens in context"
        f" · counts are {'exact' if report.accuracy.exact else 'estimates'}: "
        f"{report.accuracy.reason}"
    )
    if report.accuracy.estimated:
        console.print(f"estimated: {', '.join(report.accuracy.estimated)}")

    total = report.total_tokens
    kinds = Table(title="Tokens by part kind", title_justify="left")
    kinds.add_column("kind")
    kinds.add_column("tokens", justify="right")
    kinds.add_column("share", justify="right")
    for kind, n in list(report.tokens_by_part_kind.items())[:top]:
        kinds.add_row(kind, f"{n:,}", _share(n, total))
    roles = Table(title="Tokens by role", title_justify="left")
    roles.add_column("role")
    roles.add_column("tokens", justify="right")
    roles.add_column("share", justify="right")
    for role, n in report.tokens_by_role.items():
        roles.add_row(role, f"{n:,}", _share(n, total))
    console.print(kinds)
    console.print(roles)

    if report.tokens_by_tool:
        tools = Table(title=f"Tools (top {top} by tokens)", title_justify="left")
        for col in ("tool", "schema tokens", "calls", "result tokens"):
            tools.add_column(col, justify="left" if col == "tool" else "right")
        for t in report.tokens_by_tool[:top]:
            name = f"{t.name} [{t.server}]" if t.server else t.name
            tools.add_row(name, f"{t.schema_tokens:,}", f"{t.calls:,}", f"{t.result_tokens:,}")
        console.print(tools)
        idle = [t for t in report.tokens_by_tool if t.schema_tokens and not t.calls]
        if idle and report.bill.calls:
            schema = sum(t.schema_tokens for t in idle)
            console.print(
                f"{len(idle)} of {report.tool_count} tool schemas were never called: "
                f"{schema:,} tokens, sent with each of {report.bill.calls:,} calls"
            )

    bill = Table(title="Session bill (every call re-reads its prompt)", title_justify="left")
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
    console.print(bill)
    price = report.bill.price_model or "no price"
    console.print(
        f"billed input: {report.bill.billed_input_tokens:,} tokens over {report.bill.calls:,} calls"
        f" · prices: {price} ({report.bill.prices_date})"
    )
    _render_errors(console, report, top)
    if report.findings or report.wasted_tokens:
        _render_waste(console, report, top)
    elif not report.conversations:
        console.print("context tax: no waste found")
    for note in report.notes:
        console.print(f"note: {note}")
    return out.getvalue()


def _render_errors(console: Any, report: Report, top: int) -> None:
    """Findings of severity error (the provider would reject the request), before the waste."""
    located = [(c.title or "", f) for c in report.conversations for f in c.findings]
    located = located or [("", f) for f in report.findings]
    errors = [(title, f) for title, f in located if f.severity == "error"]
    if not errors:
        return
    console.print(f"[bold red]{len(errors):,} error(s)[/bold red]: the provider would reject it")
    for title, f in errors[:top]:
        where = f"{title}: {f.loc.describe()}" if title else f.loc.describe()
        console.print(f"  [red]{f.code}[/red] {where}: {f.message}", highlight=False)
    if len(errors) > top:
        console.print(f"  ... and {len(errors) - top:,} more")


def _render_waste(console: Any, report: Report, top: int) -> None:
    from rich.table import Table

    cost = (
        f", {_usd(report.waste_cost_usd)} of the bill" if report.waste_cost_usd is not None else ""
    )
    console.print(
        f"[bold]context tax: {report.wasted_tokens:,} tokens wasted "
        f"({100 * report.tax_rate:.1f}% of the context)[/bold], billed "
        f"{report.waste_billed_tokens:,} times over the session's calls{cost}"
    )
    findings = report.findings or [f for c in report.conversations for f in c.findings]
    by_rule: dict[str, list[Finding]] = {}
    for f in findings:
        by_rule.setdefault(f.code, []).append(f)
    rules = Table(title="Waste by rule", title_justify="left")
    for col in ("rule", "findings", "tokens", "billed (x calls)"):
        rules.add_column(col, justify="left" if col == "rule" else "right")
    for code, found in sorted(by_rule.items()):
        rules.add_row(
            f"{code} {found[0].rule}",
            f"{len(found):,}",
            f"{sum(f.tokens for f in found):,}",
            f"{sum(f.tokens * f.calls for f in found):,}",
        )
    console.print(rules)
    located = [(c.title or "", f) for c in report.conversations for f in c.findings]
    located = located or [("", f) for f in report.findings]
    located = [(title, f) for title, f in located if f.tokens > 0]
    worst = sorted(located, key=lambda item: -item[1].tokens * max(item[1].calls, 1))[:top]
    table = Table(title=f"Top {len(worst)} findings by billed tokens", title_justify="left")
    for col in ("code", "where", "tokens", "calls", "what"):
        table.add_column(col, justify="right" if col in ("tokens", "calls") else "left")
    for title, f in worst:
        where = f"{title}: {f.loc.describe()}" if title else f.loc.describe()
        table.add_row(f.code, where, f"{f.tokens:,}", f"{f.calls:,}", f.message)
    console.print(table)


__all__ = ["render_text"]
