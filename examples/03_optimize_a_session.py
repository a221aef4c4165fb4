"""Take the waste out of the bundled coding-agent request, check the guarantees, and undo it.

python examples/03_optimize_a_session.py
"""

from __future__ import annotations

import json
from pathlib import Path

import ctxtax
from ctxtax._pairing import find_orphans

SESSION = Path(__file__).parent / "sessions" / "coding-agent.json"
body = json.loads(SESSION.read_text(encoding="utf-8"))

for unsafe in (False, True):
    result = ctxtax.optimize(body, unsafe=unsafe)
    mode = "unsafe" if unsafe else "safe"
    print(f"{mode}: {result.summary()}")
    for edit in result.edits:
        print(f"  {edit.describe()}")
    assert not find_orphans(result.context), "every tool call keeps its result"
    assert ctxtax.revert(result) == body, "revert gives the input back"
    again = ctxtax.optimize(result.payload, unsafe=unsafe)
    assert not again.edits, "optimizing twice changes nothing"

# What the edits are worth over the session's calls, under the provider's caching rules.
replayed = ctxtax.replay(SESSION, unsafe=True)
for name, bill in replayed.bills.items():
    print(f"{name:<16} {bill.prompt_tokens:>8,} prompt tokens  ${bill.cost_usd or 0:.4f}")
