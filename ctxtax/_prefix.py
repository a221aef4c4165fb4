"""Whether a sequence starts with the very objects another held: how kept state is reused.

What ctxtax keeps between the calls of a growing session (token counts, findings, report rows)
holds for the leading messages that are the same objects as last time. Identity, not equality:
a frozen message object stands for its content, and checking identity costs nothing.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TypeVar

_T = TypeVar("_T")

_KNOWN: dict[tuple[int, int], tuple[tuple[object, ...], tuple[object, ...], bool]] = {}
"""Recent answers of `starts_with` for pairs of tuples (which never change), by their ids; each
entry holds both tuples, so neither id is reused while it is here. One call of an `Optimizer`
asks the same question of the same two histories a dozen times."""

_KNOWN_SIZE = 32


def starts_with(seq: Sequence[object], head: Sequence[object]) -> bool:
    """True when ``seq`` starts with the very objects of ``head``."""
    if len(head) > len(seq):
        return False
    if len(head) < 64 or type(seq) is not tuple or type(head) is not tuple:
        return all(map(operator.is_, head, seq))
    key = (id(seq), id(head))
    known = _KNOWN.get(key)
    if known is not None and known[0] is seq and known[1] is head:
        return known[2]
    answer = all(map(operator.is_, head, seq))
    if len(_KNOWN) >= _KNOWN_SIZE:
        _KNOWN.clear()  # (one step, whatever other threads do)
    _KNOWN[key] = (seq, head, answer)
    return answer


def same_prefix(before: Sequence[object], now: Sequence[object]) -> int:
    """How many leading objects of ``now`` are the very objects ``before`` starts with."""
    if starts_with(now, before):
        return len(before)
    same = list(map(operator.is_, before, now))  # (C loops: this runs on whole histories)
    try:
        return same.index(False)
    except ValueError:
        return len(same)


def changes(before: Sequence[_T], now: Sequence[_T]) -> tuple[Sequence[_T], Sequence[_T]]:
    """(the objects of ``before`` past the prefix ``now`` shares with it, those of ``now``): what
    state kept for ``before`` must forget and learn to stand for ``now``."""
    same = same_prefix(before, now)
    return before[same:], now[same:]


__all__ = ["changes", "same_prefix", "starts_with"]
