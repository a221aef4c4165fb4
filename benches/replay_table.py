"""The bill with and without: every real agent session replayed call by call, three ways.

For each data set under ../shared/data/real (Claude Code, SWE-agent, mini-swe-agent, OpenHands),
every conversation is replayed with `ctxtax.replay`: as recorded (``none``), with ctxtax's
optimizer before each call (safe edits, and with ``--unsafe`` lossy edits too), and with
LangChain's ``ContextEditingMiddleware()`` at its defaults (``context-editing``). A second table
replays context editing with a lower trigger (20,000 tokens), since at its default (100,000) it
never acts on these sessions. Dollars are at each call's model's list price; a session that names
no known model is priced as gpt-4o (its cache policy follows the format: OpenAI-style).

    python benches/replay_table.py            # prints markdown tables (timings on stderr)
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import ctxtax
from ctxtax._pricing import PRICES
from ctxtax._replay import ClearToolUses, Replay, replay
from ctxtax._session import Bill

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
DATA_SETS = {
    "Claude Code": ["claude-code-spotter/*.jsonl", "claude-code-viewer/*.jsonl"],
    "SWE-agent": ["swe-agent/**/*.traj"],
    "mini-swe-agent": ["mini-swe-agent-gemini3/*.traj.json"],
    "OpenHands": ["openhands/*.jsonl", "openhands/runtime_trajs/*.json"],
}
DEFAULT_PRICE = "gpt-4o"
LOW_TRIGGER = 20_000
CLEARING = "ctxtax --unsafe --clear-old-results"
DEFAULT = ClearToolUses()


@dataclass
class Totals:
    """Sums over the sessions of one data set, per strategy."""

    sessions: int = 0
    unknown_model: int = 0
    triggered: dict[str, int] = field(default_factory=dict)
    cleared: dict[str, int] = field(default_factory=dict)
    bills: dict[str, Bill] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    duels: list[tuple[str, float, float, float]] = field(default_factory=list)
    """Sessions where context editing @20k cleared something: (session, none, it, ctxtax
    clearing old results)."""

    def add(self, name: str, result: Replay, strategy: str, seconds: float) -> None:
        bill = result.bills[strategy]
        if bill.cost_usd is None:
            bill = bill.priced(PRICES[DEFAULT_PRICE])
        self.bills[name] = self.bills[name] + bill if name in self.bills else bill
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        if strategy == "context-editing":  # by name: the default and the low trigger
            self.triggered[name] = self.triggered.get(name, 0) + (result.triggered_calls > 0)
            edited = result.edited_calls.get(strategy, 0) > 0
            self.cleared[name] = self.cleared.get(name, 0) + edited


def replay_all(unsafe: bool) -> dict[str, Totals]:
    """Replay every conversation of every data set; the sums per data set."""
    out: dict[str, Totals] = {}
    for label, patterns in DATA_SETS.items():
        totals = out.setdefault(label, Totals())
        for path in sorted(p for pattern in patterns for p in REAL.glob(pattern)):
            for ctx in ctxtax.load_all(path):
                totals.sessions += 1
                low = ClearToolUses(trigger=LOW_TRIGGER)
                # (names in the table, strategies replayed, unsafe, context-editing settings)
                runs: list[tuple[list[str], list[str], bool, ClearToolUses]] = [
                    (["none", "context-editing"], ["none", "context-editing"], False, DEFAULT),
                    (["ctxtax"], ["ctxtax"], False, DEFAULT),
                    (["context-editing @20k"], ["context-editing"], False, low),
                ]
                if unsafe:
                    runs.append((["ctxtax --unsafe"], ["ctxtax"], True, DEFAULT))
                    runs.append(([CLEARING], ["ctxtax"], True, DEFAULT))
                costs: dict[str, float] = {}
                ce_acted = False
                for names, strategies, lossy, edit in runs:
                    start = time.perf_counter()
                    result = replay(
                        ctx,
                        strategies=strategies,
                        unsafe=lossy,
                        clear_old_results=CLEARING in names,
                        context_editing=edit,
                    )
                    seconds = time.perf_counter() - start
                    if "none" in strategies:
                        totals.unknown_model += result.bills["none"].cost_usd is None
                    for name, strategy in zip(names, strategies, strict=True):
                        totals.add(name, result, strategy, seconds / len(strategies))
                        bill = result.bills[strategy]
                        costs[name] = (
                            bill.cost_usd
                            if bill.cost_usd is not None
                            else bill.priced(PRICES[DEFAULT_PRICE]).cost_usd or 0.0
                        )
                    if names == ["context-editing @20k"]:
                        ce_acted = result.edited_calls.get("context-editing", 0) > 0
                if ce_acted and CLEARING in costs:
                    totals.duels.append(
                        (
                            f"{path.name}#{totals.sessions}",
                            costs["none"],
                            costs["context-editing @20k"],
                            costs[CLEARING],
                        )
                    )
        print(
            f"{label}: {totals.sessions} sessions, {sum(totals.seconds.values()):.1f} s",
            file=sys.stderr,
        )
    return out


def _pct(base: float, value: float) -> str:
    return f"{100 * (base - value) / base:+.1f}%" if base else ""


def table(out: dict[str, Totals], names: list[str]) -> str:
    """One markdown table: per data set and strategy, tokens of each class and dollars."""
    rows = [
        "| data set | sessions | calls | strategy | input | cache writes | cache reads | USD | "
        "saving vs none |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    grand: dict[str, Bill] = {}
    for label, totals in out.items():
        base = totals.bills["none"].cost_usd or 0.0
        for i, name in enumerate(n for n in names if n in totals.bills):
            bill = totals.bills[name]
            grand[name] = grand[name] + bill if name in grand else bill
            head = f"{label} | {totals.sessions} | {bill.calls:,}" if i == 0 else " | | "
            rows.append(
                f"| {head} | {name} | {bill.input_tokens:,} | {bill.cache_write_tokens:,} | "
                f"{bill.cache_read_tokens:,} | ${bill.cost_usd or 0:,.2f} | "
                f"{'' if name == 'none' else _pct(base, bill.cost_usd or 0.0)} |"
            )
    base = grand["none"].cost_usd or 0.0
    sessions = sum(t.sessions for t in out.values())
    for i, name in enumerate(n for n in names if n in grand):
        bill = grand[name]
        head = f"**all** | {sessions} | {bill.calls:,}" if i == 0 else " | | "
        rows.append(
            f"| {head} | {name} | {bill.input_tokens:,} | {bill.cache_write_tokens:,} | "
            f"{bill.cache_read_tokens:,} | ${bill.cost_usd or 0:,.2f} | "
            f"{'' if name == 'none' else _pct(base, bill.cost_usd or 0.0)} |"
        )
    return "\n".join(rows)


def main() -> None:
    """Replay everything and print the tables."""
    unsafe = "--no-unsafe" not in sys.argv
    start = time.perf_counter()
    out = replay_all(unsafe)
    names = ["none", "ctxtax", *(["ctxtax --unsafe"] if unsafe else []), "context-editing"]
    print(table(out, names))
    print()
    print("Context editing acted (crossed its trigger) in:")
    for label, totals in out.items():
        print(
            f"- {label}: {totals.triggered.get('context-editing', 0)} of {totals.sessions} "
            f"sessions at 100,000 tokens, {totals.triggered.get('context-editing @20k', 0)} at "
            f"20,000 (cleared a result in {totals.cleared.get('context-editing @20k', 0)}); "
            f"{totals.unknown_model} priced as {DEFAULT_PRICE} (model unknown)"
        )
    print()
    print(table(out, ["none", "ctxtax", "ctxtax --unsafe", CLEARING, "context-editing @20k"]))
    print()
    print("Sessions where context editing @20k cleared a result (USD: none, it, ctxtax clearing):")
    for totals in out.values():
        for name, none, it, ours in totals.duels:
            verdict = "ctxtax cheaper" if ours < it else "context editing cheaper"
            print(f"- {name}: ${none:.3f}, ${it:.3f}, ${ours:.3f} ({verdict})")
    print()
    seconds = {
        name: sum(t.seconds.get(name, 0.0) for t in out.values())
        for name in [*names, CLEARING, "context-editing @20k"]
    }
    timing = ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items())
    print(f"Replay time: {time.perf_counter() - start:.0f} s in all ({timing}).")


if __name__ == "__main__":
    main()
