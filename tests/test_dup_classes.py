"""The Classifier kept by a growing duplicate index decides what a fresh one decides.

Each session grows one message at a time; after each, the kept `Classifier` (extended with the
new spans and pairs) must give exactly the `Classified` of a fresh `Classifier` over the same
index, on real sessions with copies, near copies, injections and transcripts.
"""

from __future__ import annotations

from collections import Counter

import pytest

import ctxtax
from ctxtax._dupes import DuplicateIndex
from ctxtax._model import Context
from ctxtax.rules._dup_classes import Classified, Classifier
from tests.conftest import real

SESSIONS = [
    ("claude-code-spotter", "4d5611e5-241a-462a-8d15-5122611a9569.jsonl"),
    ("claude-code-viewer", "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl"),
    ("mini-swe-agent-gemini3", "sphinx-doc__sphinx-9229.traj.json"),
    ("openhands", "multi_swe_bench_output.jsonl"),
    ("livemcpbench", "baseline_output_claude-sonnet-4.json"),
]


def grow(ctx: Context, counts: Counter[str]) -> None:
    index = DuplicateIndex.empty(ctxtax.TiktokenCounter(), {})
    kept = Classifier(index, min_repeats=3, min_messages=2)
    for n in range(1, len(ctx.messages) + 1):
        index.extend(ctx.model_copy(update={"messages": ctx.messages[:n]}))
        grown = kept.update()
        fresh = Classifier(index, min_repeats=3, min_messages=2).update()
        assert grown == fresh, f"{ctx.source}: after {n} messages"
    result: Classified = kept.result
    counts["exact"] += len(result.exact)
    counts["injections"] += len(result.injections)
    counts["transcripts"] += len(result.transcripts)
    counts["near"] += len(result.near)


def test_kept_classifier_matches_a_fresh_one_on_real_sessions() -> None:
    counts: Counter[str] = Counter()
    for folder, name in SESSIONS:
        contexts = ctxtax.load_all(real(folder, name))
        for ctx in sorted(contexts, key=lambda c: -len(c.messages))[:2]:
            grow(ctx, counts)
    # every kind of decision was exercised along the way
    assert all(counts[k] > 0 for k in ("exact", "injections", "transcripts", "near")), counts


@pytest.mark.parametrize("reorder", [False, True])
def test_a_repeat_in_an_old_block_starts_over(reorder: bool) -> None:
    text = "\n".join(f"line {i}: the quick brown fox jumps over the lazy dog" for i in range(20))
    messages = [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]
    messages += [{"role": "user", "content": text}]
    ctx = ctxtax.load(messages)
    index = DuplicateIndex.empty(ctxtax.TiktokenCounter(), {})
    index.extend(ctx)
    kept = Classifier(index, min_repeats=3, min_messages=2)
    assert len(kept.update().exact) == 1
    if reorder:  # a span the index did not find in a new block: the classifier starts over
        index.spans.insert(0, index.spans[0])
    assert kept.update() == Classifier(index, min_repeats=3, min_messages=2).update()
