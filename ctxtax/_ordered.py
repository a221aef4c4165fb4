"""Sorting what a growing session finds again and again: the last order, amended.

An `Auditor` orders its findings for the report, an `Optimizer` orders its candidate edits by
preference, at every call. From one call to the next most of the items are the very objects of
last time and a few are new (or gone), so sorting everything again is wasted: `KeptOrder` keeps
the last order and puts the new items in place by bisection.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")

_MANY_NEW = 64
"""Past this many new items, sorting everything again is as cheap as putting each in place."""


class KeptOrder(Generic[_T]):
    """``sorted(items, key=key)`` for a sequence of items that changes a little between calls.

    The result is exactly what a stable sort of ``items`` gives, whatever changed; when two
    items have equal keys their order in ``items`` decides, so such a list is sorted in full
    every time. Items are told apart by identity.
    """

    __slots__ = ("_ids", "_items", "_key", "_keys")

    def __init__(self, key: Callable[[_T], Any]) -> None:
        self._key = key
        self._items: list[_T] | None = None
        self._keys: list[Any] = []
        self._ids: set[int] = set()

    def sort(self, items: Sequence[_T]) -> list[_T]:
        """``items`` in order (a new list)."""
        if self._items is not None and self._amend(items):
            return list(self._items)
        key = self._key
        keys = [key(item) for item in items]
        order = sorted(range(len(items)), key=keys.__getitem__)
        out = [items[i] for i in order]
        sorted_keys = [keys[i] for i in order]
        if any(map(operator.eq, sorted_keys, sorted_keys[1:])):
            self._items = None  # equal keys: the order of ``items`` decides, each time
            return out
        self._items, self._keys, self._ids = out, sorted_keys, set(map(id, out))
        return list(out)

    def update(
        self, items: Callable[[], Sequence[_T]], added: Sequence[_T], removed: Sequence[_T]
    ) -> list[_T]:
        """`sort` of the items of the last call with ``removed`` taken out and ``added`` put
        in, told what changed: no pass over every item (``items()`` gives them all, for when
        the change cannot be made in place)."""
        out, keys, known = self._items, self._keys, self._ids
        if out is None or len(added) + len(removed) > _MANY_NEW:
            return self.sort(items())
        key = self._key
        places = []
        for item in removed:
            k = key(item)
            lo, hi = bisect_left(keys, k), bisect_right(keys, k)
            at = next((i for i in range(lo, hi) if out[i] is item), None)
            if at is None:
                return self.sort(items())  # not among the items of the last call
            places.append(at)
        if any(id(item) in known for item in added):
            return self.sort(items())
        for at in sorted(places, reverse=True):
            known.discard(id(out[at]))
            del out[at], keys[at]
        if not self._put(added):
            return self.sort(items())
        return list(out)

    def clear(self) -> None:
        """Forget the last order."""
        self._items, self._keys, self._ids = None, [], set()

    def _amend(self, items: Sequence[_T]) -> bool:
        """Bring the kept order to ``items``: those gone dropped, the new ones put in place.
        False (the caller then sorts in full) when that is not cheaper than sorting or equal
        keys would need the order of ``items``."""
        assert self._items is not None
        out, keys, known = self._items, self._keys, self._ids
        by_id = dict(zip(map(id, items), items, strict=True))
        if len(by_id) != len(items):
            return False  # an item twice
        new_ids = by_id.keys() - known
        if len(new_ids) > _MANY_NEW:
            return False
        if len(items) - len(new_ids) != len(out):
            kept = [i for i, item in enumerate(out) if id(item) in by_id]
            known.difference_update(id(out[i]) for i in set(range(len(out))).difference(kept))
            out[:] = [out[i] for i in kept]
            keys[:] = [keys[i] for i in kept]
        return self._put([by_id[i] for i in new_ids])

    def _put(self, added: Iterable[_T]) -> bool:
        """Put ``added`` in place by bisection. False at a key already there or twice among
        them (the order is then half made: the caller sorts in full)."""
        out, keys, known = self._items, self._keys, self._ids
        assert out is not None
        key = self._key
        new = sorted(((key(item), item) for item in added), key=_first)
        if any(a == b for (a, _), (b, _) in pairwise(new)):
            return False
        for k, item in new:
            at = bisect_right(keys, k)
            if at and keys[at - 1] == k:
                return False  # equal keys: the order of the items decides
            keys.insert(at, k)
            out.insert(at, item)
            known.add(id(item))
        return True


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


__all__ = ["KeptOrder"]
