"""Pausing Python's cyclic garbage collector around allocation-heavy work.

An audit allocates hundreds of thousands of small objects (token rows, findings, their edits) and
frees almost none of them until it returns. Each time allocations pass the collector's threshold
it walks every live object, the session's parsed messages included: on a 10 MB corpus that was a
quarter of the audit's time, for nothing, since an audit builds no reference cycles to reclaim.
The collector is switched off for the duration and back on after (only if it was on), so the
caller's settings are left as they were.

Switched back on, the collector still owes a young collection over everything allocated in the
pause: the first allocation after sets it off, and it walks the whole report to find it alive
(0.14 s after a 10 MB audit). ``promote=True`` moves the survivors to the oldest generation
instead (``gc.freeze()`` then ``gc.unfreeze()``: two list splices, no walk), so they are looked
at with the next full collection like any long-lived data. Young objects of the caller are
promoted with them, and a cycle among them is reclaimed at that full collection rather than the
next young one. It is skipped when the caller has frozen objects of its own (``unfreeze`` would
release them), and meant for one-shot calls, not for each call of a long session.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc(*, promote: bool = False) -> Iterator[None]:
    """Run the body with the cyclic garbage collector off; restore its previous state after.

    ``promote``: move what survived the body to the oldest generation rather than leave it to a
    young collection (see the module docstring).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if promote and gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()
