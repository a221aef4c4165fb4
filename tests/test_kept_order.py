"""`KeptOrder`: the last order amended gives exactly what a stable sort of the items gives.

Items are told apart by identity, so every check compares the lists object by object. The
sequences of calls mix the amended path (a few new items, none tying) with the ones that must
sort in full (many new items, equal keys, an item twice), and go back and forth between them.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from ctxtax._ordered import KeptOrder


class Item:
    """A small object told apart by identity (two items may have equal keys)."""

    __slots__ = ("key",)

    def __init__(self, key: int) -> None:
        self.key = key

    def __repr__(self) -> str:
        return f"Item({self.key})@{id(self):x}"


def counting_key(asked: list[Item]) -> Callable[[Item], int]:
    """`key_of` that also notes each item it is asked for in ``asked``."""

    def key(item: Item) -> int:
        asked.append(item)
        return item.key

    return key


def key_of(item: Item) -> int:
    return item.key


def same(got: list[Item], want: list[Item]) -> bool:
    """The very same objects, in the same order."""
    return len(got) == len(want) and all(a is b for a, b in zip(got, want, strict=True))


def check(order: KeptOrder[Item], items: list[Item]) -> None:
    want = sorted(items, key=key_of)
    got = order.sort(items)
    assert same(got, want), f"{got} != {want}"
    got.clear()  # a new list each time: the caller may change it
    assert same(order.sort(items), want)


def fresh(rng: random.Random, k: int, wide: bool = True) -> list[Item]:
    """``k`` new items, keys from a wide range (ties rare) or a narrow one (ties likely)."""
    return [Item(rng.randrange(10**9 if wide else 40)) for _ in range(k)]


def insert_at_random(rng: random.Random, items: list[Item], new: list[Item]) -> None:
    for item in new:
        items.insert(rng.randrange(len(items) + 1), item)


def step(rng: random.Random, items: list[Item]) -> list[Item]:
    """The item list of the next call: one random change to ``items``."""
    items = list(items)
    kind = rng.choice(
        ["add", "add", "remove", "both", "same", "shuffle", "many", "tie", "twice", "narrow"]
    )
    if kind == "add":
        insert_at_random(rng, items, fresh(rng, rng.randint(1, 5)))
    elif kind == "remove" and items:
        for _ in range(rng.randint(1, min(5, len(items)))):
            items.pop(rng.randrange(len(items)))
    elif kind == "both":
        if items:
            items.pop(rng.randrange(len(items)))
        insert_at_random(rng, items, fresh(rng, rng.randint(1, 3)))
    elif kind == "shuffle":
        rng.shuffle(items)  # the same items in another input order
    elif kind == "many":
        insert_at_random(rng, items, fresh(rng, rng.randint(65, 90)))
    elif kind == "tie" and items:
        twin = Item(rng.choice(items).key)  # a new object with a key already there
        insert_at_random(rng, items, [twin])
    elif kind == "twice" and items:
        insert_at_random(rng, items, [rng.choice(items)])  # the same object twice
    elif kind == "narrow":
        insert_at_random(rng, items, fresh(rng, rng.randint(2, 6), wide=False))
    # Keep the list from growing without bound and let the tie-free regime come back: drop
    # the duplicates and the tying items now and then.
    if len(items) > 300 or rng.random() < 0.15:
        seen_ids: set[int] = set()
        seen_keys: set[int] = set()
        kept = []
        for item in items:
            if id(item) not in seen_ids and item.key not in seen_keys:
                kept.append(item)
                seen_ids.add(id(item))
                seen_keys.add(item.key)
        items = kept[: rng.randint(100, 200)] if len(kept) > 200 else kept
    return items


@pytest.mark.parametrize("seed", range(6))
def test_random_sequences_equal_a_stable_sort(seed: int) -> None:
    rng = random.Random(seed)
    order: KeptOrder[Item] = KeptOrder(key_of)
    items = fresh(rng, 30)
    for _ in range(400):
        check(order, items)
        if rng.random() < 0.02:
            order.clear()
        items = step(rng, items)


def test_equal_keys_are_ordered_by_the_input_each_time() -> None:
    a, b, c = Item(1), Item(2), Item(3)
    order: KeptOrder[Item] = KeptOrder(key_of)
    check(order, [c, a, b])
    a2 = Item(1)  # ties with ``a``: the input order decides, here ``a2`` first
    check(order, [a2, c, a, b])
    check(order, [c, a, b, a2])  # the same items, ``a`` first now
    check(order, [c, b])  # the tie gone: the kept order starts again
    check(order, [c, b, a])


def test_the_same_object_twice_is_kept_twice() -> None:
    a, b, c = Item(5), Item(1), Item(9)
    order: KeptOrder[Item] = KeptOrder(key_of)
    check(order, [a, b, c])
    check(order, [a, b, c, b])
    check(order, [a, b, c])
    check(order, [b, b, b])


def test_new_items_tying_with_each_other_or_with_gone_ones() -> None:
    a, b = Item(10), Item(20)
    order: KeptOrder[Item] = KeptOrder(key_of)
    check(order, [a, b])
    x, y = Item(15), Item(15)  # two new items tying with each other
    check(order, [y, a, b, x])
    check(order, [a, b])
    a_again = Item(10)  # takes the key of ``a``, which leaves in the same call
    check(order, [a_again, b])
    check(order, [b, a_again, Item(5)])


def test_more_than_64_new_items_at_once() -> None:
    rng = random.Random(7)
    order: KeptOrder[Item] = KeptOrder(key_of)
    items = [Item(k) for k in rng.sample(range(10**6), 20)]
    check(order, items)
    keys = rng.sample(range(10**6, 2 * 10**6), 200)
    for size in (64, 65, 200):
        grown = list(items)
        insert_at_random(rng, grown, [Item(k) for k in keys[:size]])
        check(order, grown)
        check(order, items)


def test_amending_looks_only_at_the_new_items() -> None:
    """The kept order is used (the key is asked for the new items only), so the equality
    checks above do test the amended path and not only the full sort."""
    asked: list[Item] = []
    order: KeptOrder[Item] = KeptOrder(counting_key(asked))
    items = [Item(k) for k in (40, 10, 30, 20)]
    order.sort(items)
    asked.clear()
    new = [Item(25), Item(5)]
    got = order.sort([new[0], *items[1:], new[1]])  # one gone, two new
    assert sorted(asked, key=id) == sorted(new, key=id)
    assert [i.key for i in got] == [5, 10, 20, 25, 30]


def test_clear_forgets_the_last_order() -> None:
    asked: list[Item] = []
    order: KeptOrder[Item] = KeptOrder(counting_key(asked))
    items = [Item(k) for k in (3, 1, 2)]
    order.sort(items)
    order.clear()
    asked.clear()
    got = order.sort(items)
    assert len(asked) == 3  # sorted afresh
    assert same(got, sorted(items, key=key_of))
    order.clear()
    assert order.sort([]) == []
    assert same(order.sort(items[:1]), items[:1])


def _changes(before: list[Item], after: list[Item]) -> tuple[list[Item], list[Item]]:
    """(in, out) between two item lists, by identity (what an audit's memo hands over)."""
    was, has = {id(i) for i in before}, {id(i) for i in after}
    return [i for i in after if id(i) not in was], [i for i in before if id(i) not in has]


@pytest.mark.parametrize("seed", range(4))
def test_update_told_the_changes_equals_a_stable_sort(seed: int) -> None:
    rng = random.Random(100 + seed)
    order: KeptOrder[Item] = KeptOrder(key_of)
    items = fresh(rng, 30)
    order.sort(items)
    for _ in range(400):
        after = step(rng, items)
        if len({id(i) for i in after}) != len(after):
            after = list({id(i): i for i in after}.values())  # changes are of distinct items
        added, removed = _changes(items, after)
        got = order.update(lambda after=after: after, added, removed)  # type: ignore[misc]
        assert same(got, sorted(after, key=key_of))
        items = after


def test_update_does_not_look_at_every_item() -> None:
    seen: list[Item] = []
    order: KeptOrder[Item] = KeptOrder(counting_key(seen))
    items = [Item(k) for k in range(0, 1000, 10)]
    order.sort(items)
    new, gone = Item(55), items[3]
    after = [i for i in items if i is not gone] + [new]
    seen.clear()

    def everything() -> list[Item]:
        raise AssertionError("the changes fit: no item list needed")

    got = order.update(everything, [new], [gone])
    assert same(got, sorted(after, key=key_of))
    assert seen == [gone, new]  # keys of the changed items only
