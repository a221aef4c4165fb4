"""What the staleness rules share: the parts they point at, the calls that carried them, the
edit that replaces a result with a placeholder, findings kept between audits, and the word
history CTX302 reads (each part's new words, and which of them a later reply used)."""

from __future__ import annotations

import re
from bisect import bisect_right, insort
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from ctxtax._findings import Edit, Loc, trusted
from ctxtax._prefix import changes
from ctxtax._session import from_start
from ctxtax.rules._file_reads import Action
from ctxtax.rules.base import Session

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{3,}|\d{3,}")
_CARRY_KEY = "staleness.carry"
_PART_BITS = 24
# Fewer new words than this and an output mostly repeats known text (a file the model wrote, an
# edit echoing its arguments): whether it was used cannot be told, and it is a copy's waste.
MIN_NEW_WORDS = 5


def carried(session: Session, first: int, later: int) -> int:
    """Model calls whose prompt held both message ``first`` and the later message ``later``:
    the calls that paid for ``first`` after ``later`` made it stale."""
    arrays = session.cache.get(_CARRY_KEY)
    if arrays is None:
        calls = session.calls
        sorted_ends = _call_ends(session)
        if sorted_ends is not None:
            # No compaction: a call holds both exactly when it reaches past ``later``.
            arrays = sorted_ends
        else:
            arrays = (
                np.array([c.start for c in calls], dtype=np.int64),
                np.array([c.end for c in calls], dtype=np.int64),
                np.array([min(c.head, c.start) for c in calls], dtype=np.int64),
            )
        session.cache[_CARRY_KEY] = arrays
    if isinstance(arrays, list):
        return len(arrays) - bisect_right(arrays, max(first, later))
    starts, ends, heads = arrays

    def holds(m: int) -> npt.NDArray[np.bool_]:
        return ((starts <= m) & (m < ends)) | (m < heads)

    return int(np.count_nonzero(holds(first) & holds(later)))


def _call_ends(session: Session) -> list[int] | None:
    """Where each call's window ends, sorted; None when a call starts past the first message
    (a compaction). Kept between the audits of a growing session, where the calls are mostly
    the very objects of last time."""
    memory = session.memory(_CARRY_KEY)
    calls = session.calls
    if not from_start(calls):
        return None
    ends: list[int] | None = memory.get("ends")
    gone, new = changes(memory.get("calls", ()), calls)
    if ends is None or len(gone) > 8:
        ends = sorted(c.end for c in calls)
    else:
        for call in gone:
            ends.remove(call.end)
        for call in new:
            insort(ends, call.end)
    memory.update(calls=calls, ends=ends)
    return list(ends)


def part_text(session: Session, at: tuple[int, int]) -> str:
    return session.context.messages[at[0]].parts[at[1]].text


def part_tokens(session: Session, at: tuple[int, int]) -> int:
    return int(session.tokens.part_tokens[at[0]][at[1]])


def whole_part(session: Session, at: tuple[int, int]) -> Loc:
    return trusted(
        Loc,
        message=at[0],
        part=at[1],
        start=0,
        end=len(part_text(session, at)),
        token_start=0,
        token_end=part_tokens(session, at),
    )


def replace_part(session: Session, at: tuple[int, int], placeholder: str) -> tuple[Edit, int]:
    """The unsafe edit that puts ``placeholder`` in place of a whole result, and what it saves.
    The observation of a text-acting agent is a plain text part: its text is replaced."""
    saved = part_tokens(session, at) - session.counter.count(placeholder)
    kind = session.context.messages[at[0]].parts[at[1]].kind
    edit = trusted(
        Edit,
        action="replace_result" if kind == "tool_result" else "replace_text",
        loc=whole_part(session, at),
        replacement=placeholder,
        safety="unsafe",
        tokens_saved=saved,
    )
    return edit, saved


def call_fields(action: Action) -> dict[str, object]:
    """Evidence naming a call: its id, tool, and the file it read."""
    out: dict[str, object] = {"call": action.call_id, "tool": action.name}
    if action.command is not None:
        out["command"] = action.command[:200]
    if action.read is not None:
        out["file"] = action.read.path
        out["lines"] = [action.read.start, action.read.end]
    return out


@lru_cache(maxsize=8192)
def distinct_words(text: str) -> frozenset[str]:
    """The distinctive words of a text (cached: middleware sees the same parts every call)."""
    return frozenset(_WORD.findall(text.lower()))


def word_history(
    session: Session,
) -> tuple[dict[tuple[int, int], list[str]], set[tuple[int, int]], set[tuple[int, int]]]:
    """For each part, the words no earlier part had (sorted); the parts some of whose new words
    a later assistant message used; and which of those this audit found. Kept between the
    audits of a growing session: only the messages appended since are read."""
    memory = session.memory("CTX302.words")
    if "owner" not in memory:
        memory.update(messages=0, owner={}, referenced=set(), new_words={})
    done = int(memory["messages"])
    # Each word's part as one int (message << 24 | part): a dict of str to int is one the
    # garbage collector never tracks; with tuples it would walk every word at each collection.
    owner: dict[str, int] = memory["owner"]
    referenced: set[tuple[int, int]] = memory["referenced"]
    new_words: dict[tuple[int, int], list[str]] = memory["new_words"]
    messages = session.context.messages
    newly: set[tuple[int, int]] = set()
    for i in range(done, len(messages)):
        message = messages[i]
        for j, part in enumerate(message.parts):
            words = distinct_words(part.text)
            fresh = sorted(w for w in words if w not in owner)
            for w in fresh:
                owner[w] = i << _PART_BITS | j
            new_words[(i, j)] = fresh
            if message.role == "assistant":
                for w in words:
                    code = owner[w]
                    if code >> _PART_BITS < i:
                        at = divmod(code, 1 << _PART_BITS)
                        if at not in referenced:
                            referenced.add(at)
                            newly.add(at)
    memory["messages"] = len(messages)
    return new_words, referenced, newly


__all__ = [
    "MIN_NEW_WORDS",
    "call_fields",
    "carried",
    "distinct_words",
    "part_text",
    "part_tokens",
    "replace_part",
    "whole_part",
    "word_history",
]
