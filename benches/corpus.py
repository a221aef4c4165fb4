"""The corpora the duplication-engine benchmarks share, built from ``../shared/data/real``.

- `load_corpus`: the multi-session audit corpus (about 10 MB of text): every conversation of the
  agent logs in `AUDIT_SETS`, loaded with `ctxtax.load_all` (loading is never timed).
- `encoded_texts`: every text an audit of those conversations hands the tokenizer, once each,
  which is what the tokenize-only baseline encodes.
- `near_documents`: the blocks the near-duplicate stage sees (>= 64 tokens), as text and ids.
- `incremental_session`: a growing OpenAI-message session made of real mini-swe-agent messages,
  and a pool of real ~2 KB messages to append to it.

Nothing here is timed; the timed code is in `pipelines`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import ctxtax

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
EXAMPLE_SESSION = ROOT / "examples" / "sessions" / "coding-agent.json"

# folder -> glob patterns of its session files (SOURCE.md and tool dumps are not sessions).
AUDIT_SETS: dict[str, tuple[str, ...]] = {
    "mini-swe-agent-gemini3": ("*.traj.json",),
    "claude-code-spotter": ("**/*.jsonl",),
    "claude-code-viewer": ("**/*.jsonl",),
    "openhands": ("**/*.json", "**/*.jsonl"),
    "swe-agent": ("**/*.traj",),
    "aider": ("chat-history*.md",),
    "livemcpbench": ("baseline_output_*.json",),
}

QUICK_BYTES = 400_000
"""Corpus size in quick mode (``--benchmark-disable`` runs, ``compare.py --quick``)."""


def real_missing() -> str | None:
    """Why the real-data benchmarks cannot run here, or None when they can."""
    if not REAL.is_dir():
        return f"real data not found at {REAL} (the ../shared/data/real folder is absent)"
    missing = [name for name in AUDIT_SETS if not (REAL / name).is_dir()]
    if missing:
        return f"real data incomplete at {REAL}: no {', '.join(missing)}"
    return None


def session_files(folder: str) -> list[Path]:
    """The session files of one folder of `AUDIT_SETS`, sorted."""
    base = REAL / folder
    found = {p for pattern in AUDIT_SETS[folder] for p in base.glob(pattern) if p.is_file()}
    return sorted(found)


@dataclass
class Corpus:
    """Conversations to audit and the texts their audit tokenizes."""

    contexts: list[ctxtax.Context]
    texts: list[str]
    by_set: dict[str, int] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """UTF-8 bytes of `texts`: the amount of text one audit of the corpus tokenizes."""
        return sum(len(t.encode("utf-8")) for t in self.texts)

    @property
    def megabytes(self) -> float:
        """`nbytes` in MB (10^6 bytes)."""
        return self.nbytes / 1e6


def _contexts(folder: str) -> Iterator[ctxtax.Context]:
    seen: set[tuple[str | None, str | None, int]] = set()
    for path in session_files(folder):
        for ctx in ctxtax.load_all(path):
            # A Claude Code session file also yields its subagents' conversations, which are
            # files of their own too: keep each conversation once.
            key = (ctx.source, ctx.title, len(ctx.messages))
            if key not in seen:
                seen.add(key)
                yield ctx


def load_corpus(max_bytes: int | None = None) -> Corpus:
    """The audit corpus; with ``max_bytes``, a slice taking conversations from every set in turn
    until the texts reach that size (the quick mode of the benches)."""
    per_set = {name: list(_contexts(name)) for name in AUDIT_SETS}
    if max_bytes is None:
        chosen = [(name, ctx) for name, contexts in per_set.items() for ctx in contexts]
    else:
        chosen, size = [], 0
        queues = {name: list(reversed(contexts)) for name, contexts in per_set.items()}
        while size < max_bytes and any(queues.values()):
            for name, queue in queues.items():
                if queue and size < max_bytes:
                    ctx = queue.pop()
                    chosen.append((name, ctx))
                    size += sum(len(t.encode("utf-8")) for t in encoded_texts([ctx]))
    by_set = {name: sum(1 for n, _ in chosen if n == name) for name in per_set}
    contexts = [ctx for _, ctx in chosen]
    return Corpus(contexts=contexts, texts=encoded_texts(contexts), by_set=by_set)


def encoded_texts(contexts: Sequence[ctxtax.Context]) -> list[str]:
    """Every distinct text `count_context` hands the counter for these contexts, in order.

    That is each message's role and name, each part's texts (a tool call's name and arguments,
    a part's children) and each tool schema. The duplicate index encodes the block texts, a subset
    (`ctxtax._dupes.blocks_of`), which the counter's cache already holds by then.
    """
    from ctxtax._counting import context_texts

    texts = [t for ctx in contexts for t in context_texts(ctx)]
    return [t for t in dict.fromkeys(texts) if t]


@dataclass
class Documents:
    """Near-duplicate candidates' input: the blocks of >= ``min_tokens`` tokens, in order."""

    texts: list[str]
    ids: list[npt.NDArray[np.uint32]]

    @property
    def tokens(self) -> int:
        """Total tokens of the documents."""
        return sum(len(i) for i in self.ids)

    @property
    def nbytes(self) -> int:
        """UTF-8 bytes of the documents."""
        return sum(len(t.encode("utf-8")) for t in self.texts)


def near_documents(
    contexts: Sequence[ctxtax.Context], counter: ctxtax.TiktokenCounter, min_tokens: int = 64
) -> Documents:
    """Every block of the contexts (`blocks_of`, repeats included) with >= ``min_tokens`` tokens."""
    from ctxtax._dupes import blocks_of

    texts = [b[3] for ctx in contexts for b in blocks_of(ctx)]
    ids = counter.encode_many(texts)
    kept = [(t, i) for t, i in zip(texts, ids, strict=True) if len(i) >= min_tokens]
    return Documents(texts=[t for t, _ in kept], ids=[i for _, i in kept])


# -- a growing session --------------------------------------------------------------------------

MAX_MESSAGE_TOKENS = 8_000
"""Longer messages are left out of the incremental session, so its size grows smoothly."""


@dataclass
class GrowingSession:
    """A real session as OpenAI messages, and real messages of about 2 KB to append to it."""

    messages: list[dict[str, Any]]
    tokens: int
    appends: list[dict[str, Any]]


def _mini_swe_messages() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in session_files("mini-swe-agent-gemini3"):
        for raw in json.loads(path.read_text(encoding="utf-8"))["messages"]:
            content = raw.get("content")
            if not isinstance(content, str):
                content = json.dumps(content, ensure_ascii=False)
            out.append({"role": raw["role"], "content": content})
    return out


def incremental_session(
    target_tokens: int, counter: ctxtax.TiktokenCounter, appends: int = 40
) -> GrowingSession:
    """About ``target_tokens`` tokens of real mini-swe-agent messages (trajectories one after
    another, one system prompt), and ``appends`` real messages of 1.5-2.5 KB from later in the
    data (the agent's turns and the observations it got back), to append one at a time."""
    messages = _mini_swe_messages()
    system, rest = messages[0], [m for m in messages[1:] if m["role"] != "system"]
    sizes = [len(ids) for ids in counter.encode_many([m["content"] for m in rest])]
    session, tokens, at = [system], counter.count(system["content"]), 0
    while tokens < target_tokens and at < len(rest):
        if sizes[at] <= MAX_MESSAGE_TOKENS:
            session.append(rest[at])
            tokens += sizes[at]
        at += 1
    later = [
        m for m in rest[at:] + rest[:at] if 1_500 <= len(m["content"].encode("utf-8")) <= 2_500
    ]
    if tokens < target_tokens or len(later) < appends:
        raise ValueError(f"not enough real messages for a {target_tokens:,}-token session")
    return GrowingSession(
        messages=session, tokens=tokens, appends=[dict(m) for m in later[:appends]]
    )
