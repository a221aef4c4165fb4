"""Whether a sequence starts with the very objects another held: how kept state is reused.

What ctxtax keeps between the calls of a growing session (token counts, findings, report rows)
holds for the leading messages that are the same objects as last time. Identity, not equality:
a frozen message object stands for its content, and checking identity costs nothing.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence


def starts_with(seq: Sequence[object], head: Sequence[object]) -> bool:
    """True when ``seq`` starts with the very objects of ``head``."""
    return len(head) <= len(seq) and all(map(operator.is_, head, seq))


def same_prefix(before: Sequence[object], now: Sequence[object]) -> int:
    """How many leading objects of ``now`` are the very objects ``before`` starts with."""
    if starts_with(now, before):
        return len(before)
    same = 0
    for a, b in zip(before, now, strict=False):
        if a is not b:
            break
        same += 1
    return same


__all__ = ["same_prefix", "starts_with"]
