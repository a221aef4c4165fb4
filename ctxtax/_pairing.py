"""Tool-call pairing: every tool result answers a call, every call that the conversation moved past
has its result. Providers reject a request that breaks this (HTTP 400), so API payloads are checked
on reading and every rewrite keeps it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from ctxtax._model import Context, Message
from ctxtax._prefix import starts_with

OrphanKind = Literal["result_without_call", "call_without_result"]


@dataclass(frozen=True, slots=True)
class Orphan:
    """A tool result with no call before it, or a call with no result after it."""

    kind: OrphanKind
    message_index: int
    tool_call_id: str
    tool_name: str | None

    def describe(self) -> str:
        """One line saying what is wrong."""
        name = f" ({self.tool_name})" if self.tool_name else ""
        if self.kind == "result_without_call":
            return f"tool result for call {self.tool_call_id!r}{name} has no tool call before it"
        return f"tool call {self.tool_call_id!r}{name} has no tool result after it"


_LAST: dict[str, tuple[tuple[Message, ...], OrphanScan, list[Orphan]]] = {}
_LAST_LOCK = threading.Lock()


def find_orphans(ctx: Context) -> list[Orphan]:
    """Every broken pairing in ``ctx``, in message order.

    A call in the last message that has tool calls is pending (its results come next), not orphaned.
    The last scan is kept: an audit checks the same messages when it reads them and when it
    writes the report's notes, and a session that grew by a message (the same objects first) is
    scanned from where the last scan stopped.
    """
    with _LAST_LOCK:
        kept = _LAST.get("last")
        if kept is not None and kept[0] is ctx.messages:
            return list(kept[2])
        grown = kept is not None and starts_with(ctx.messages, kept[0])
        scan = kept[1] if kept is not None and grown else OrphanScan()
        orphans = scan.extend(ctx)
        _LAST["last"] = (ctx.messages, scan, orphans)
        return list(orphans)


class OrphanScan:
    """`find_orphans` of a growing conversation: `extend` reads only the messages appended since
    the last call (the earlier ones must be unchanged)."""

    def __init__(self) -> None:
        self.messages = 0
        self._called: set[str] = set()
        self._answered: set[str] = set()
        self._unanswered: dict[str, tuple[int, str | None]] = {}
        """The calls with no result yet, in the order they were first seen."""
        self._results: list[Orphan] = []
        self._last_with_calls = -1

    def extend(self, ctx: Context) -> list[Orphan]:
        """The broken pairings of ``ctx``, which starts with the messages scanned before."""
        messages = ctx.messages
        for i in range(self.messages, len(messages)):
            for part in messages[i].parts:
                if part.kind == "tool_call":
                    self._last_with_calls = i
                    if part.tool_call_id:
                        self._called.add(part.tool_call_id)
                        if part.tool_call_id not in self._answered:
                            self._unanswered[part.tool_call_id] = (i, part.tool_name)
                elif part.kind == "tool_result" and part.tool_call_id is not None:
                    if part.tool_call_id not in self._called:
                        self._results.append(
                            Orphan("result_without_call", i, part.tool_call_id, part.tool_name)
                        )
                    self._answered.add(part.tool_call_id)
                    self._unanswered.pop(part.tool_call_id, None)
        self.messages = len(messages)
        last = self._last_with_calls
        # A call in the last message with tool calls is pending (its results come next) when
        # nothing but tool results follows it.
        trailing = all(
            not m.parts or all(p.kind == "tool_result" for p in m.parts)
            for m in messages[last + 1 :]
        )
        orphans = list(self._results)
        for call_id, (index, name) in self._unanswered.items():
            if index == last and trailing:
                continue
            orphans.append(Orphan("call_without_result", index, call_id, name))
        orphans.sort(key=lambda o: o.message_index)
        return orphans


__all__ = ["Orphan", "OrphanKind", "OrphanScan", "find_orphans"]
