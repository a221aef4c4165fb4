"""Pausing the garbage collector: the caller's state comes back, survivors can be promoted."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

import ctxtax
from ctxtax._gc import paused_gc

from .conftest import EXAMPLES


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


def ctxtax_garbage(run: Callable[[], object]) -> Counter[str]:
    """The ctxtax objects that ``run`` leaves in reference cycles (freed only by the cycle
    collector, not when the last reference goes)."""
    run()
    gc.collect()
    flags = gc.get_debug()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run()
        gc.collect()
        return Counter(
            type(o).__qualname__ for o in gc.garbage if type(o).__module__.startswith("ctxtax")
        )
    finally:
        gc.set_debug(flags)
        gc.garbage.clear()


def test_an_audit_leaves_no_cycles_behind() -> None:
    # A DuplicateIndex keeps its Classifier, which once held the index back: every audit's
    # index, spans and findings then lived until the next full collection.
    log = "\n".join(f"step {i}: compiled module_{i}.py ok" for i in range(60))
    messages = [
        {"role": "user", "content": f"first run\n{log}"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": f"again\n{log}\n{log}"},
    ]

    def audit() -> object:
        report = ctxtax.audit(messages)
        assert report.wasted_tokens > 0  # the duplication engine ran
        return report

    assert ctxtax_garbage(audit) == Counter()
    assert (
        ctxtax_garbage(lambda: ctxtax.audit(EXAMPLES / "sessions" / "coding-agent.json"))
        == Counter()
    )
