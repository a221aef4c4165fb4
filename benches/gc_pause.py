"""What pausing Python's cyclic garbage collector saves an audit (ctxtax pauses it inside
`ctxtax.audit`): the engine's work on the multi-session corpus, token ids cached, with the
collector left on around the audit's allocations versus switched off, alternating rounds.

    .venv/bin/python benches/gc_pause.py
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus
import pipelines

import ctxtax
from ctxtax import _gc


def main() -> None:
    """Alternate rounds with the pause in place and patched out; print the medians."""
    data = corpus.load_corpus()
    counter = ctxtax.TiktokenCounter()
    pipelines.load_numba()
    pipelines.audit_corpus(data.contexts, counter)  # fills the token cache
    times: dict[str, list[float]] = {"collector paused (default)": [], "collector on": []}
    for _ in range(3):
        for label, found in times.items():
            # "on": the pause's gc.disable() does nothing, so the collector runs as usual.
            patch = (
                mock.patch.object(_gc.gc, "disable", lambda: None)
                if label == "collector on"
                else contextlib.nullcontext()
            )
            with patch:
                gc.collect()
                start = time.perf_counter()
                pipelines.audit_corpus(data.contexts, counter)
                found.append(time.perf_counter() - start)
    print("| audit of the corpus, ids cached | median s | min s |")
    print("| --- | ---: | ---: |")
    for label, values in times.items():
        print(f"| {label} | {statistics.median(values):.3f} | {min(values):.3f} |")


if __name__ == "__main__":
    main()
