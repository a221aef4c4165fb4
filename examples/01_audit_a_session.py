"""Audit the bundled coding-agent session: where its tokens go and what its calls cost.

python examples/01_audit_a_session.py
"""

from __future__ import annotations

from pathlib import Path

import ctxtax

SESSION = Path(__file__).parent / "sessions" / "coding-agent.json"

report = ctxtax.audit(SESSION)
print(f"{report.total_tokens:,} tokens in context ({report.accuracy.reason})")
for kind, tokens in report.tokens_by_part_kind.items():
    print(f"  {kind:<12} {tokens:>7,}")
idle = [t.name for t in report.tokens_by_tool if t.schema_tokens and not t.calls]
print(f"{len(idle)} of {report.tool_count} tools never called: {', '.join(idle)}")
bill = report.bill.estimated
print(
    f"{bill.calls} calls billed {report.bill.billed_input_tokens:,} input tokens "
    f"({bill.cache_read_tokens:,} from the cache), "
    f"${bill.cost_usd:.4f} at {report.bill.price_model} prices"
)
