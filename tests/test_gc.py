"""Pausing the garbage collector: the caller's state comes back, survivors can be promoted."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ctxtax._gc import paused_gc


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def in_generation(obj: object, generation: int) -> bool:
    return any(o is obj for o in gc.get_objects(generation))


@pytest.mark.usefixtures("collector_on")
def test_the_collector_is_off_inside_and_as_it_was_after() -> None:
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc(promote=True):
            pass
        assert not gc.isenabled()  # left off: the caller had it off
    finally:
        gc.enable()


@pytest.mark.usefixtures("collector_on")
def test_promote_moves_survivors_to_the_oldest_generation() -> None:
    with paused_gc():
        kept = [{"row": i} for i in range(10)]
    assert not in_generation(kept, 2)  # a young object, owed a young collection
    with paused_gc(promote=True):
        promoted = [{"row": i} for i in range(10)]
    assert in_generation(promoted, 2)
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("collector_on")
def test_promote_leaves_the_callers_frozen_objects_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with paused_gc(promote=True):
            young = [{"row": i} for i in range(10)]
        assert gc.get_freeze_count() == frozen
        assert not in_generation(young, 2)
    finally:
        gc.unfreeze()
