"""The tool uses of a conversation: each call paired with its result, in order.

The tool rules (which tools were called, and when), the staleness rules (the same call answered
again, a failed call retried) and the integrity rule (a call without its result) all read this one
table, built once per audit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ctxtax._model import Context


@dataclass(frozen=True, slots=True)
class ToolUse:
    """One tool call and, when the conversation has it, its result.

    ``call`` / ``result`` are ``(message, part)`` positions (``None`` when absent: a result
    without its call has no ``call``, a pending or orphaned call no ``result``). ``arguments`` is
    the call's JSON text; ``args`` the parsed object, or ``None`` when it is not valid JSON.
    """

    tool_call_id: str
    name: str | None
    call: tuple[int, int] | None
    result: tuple[int, int] | None
    arguments: str
    args: Any
    is_error: bool

    @property
    def call_message(self) -> int | None:
        """The message holding the call, if any."""
        return self.call[0] if self.call else None

    @property
    def result_message(self) -> int | None:
        """The message holding the result, if any."""
        return self.result[0] if self.result else None

    def args_key(self) -> str:
        """The arguments in a canonical form (sorted keys), for comparing two calls."""
        if self.args is None:
            return self.arguments.strip()
        return json.dumps(self.args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _parse(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return None


def tool_uses(ctx: Context) -> list[ToolUse]:
    """Every tool call of ``ctx`` with its result, in the order of the calls; results that answer
    no call come last, in their own order. A call id used twice pairs each result with the latest
    call before it."""
    return ToolUseScan().extend(ctx)


class ToolUseScan:
    """`tool_uses` of a growing conversation, kept up to date: `extend` reads only the messages
    appended since the last call (the earlier ones must be unchanged), and returns the same
    `ToolUse` objects again for the uses it did not touch."""

    def __init__(self) -> None:
        self.messages = 0
        self._uses: list[dict[str, Any]] = []
        self._orphans: list[dict[str, Any]] = []
        self._open_by_id: dict[str, int] = {}
        self._objects: list[ToolUse | None] = []
        self._orphan_objects: list[ToolUse] = []
        self._stale: list[int] = []
        """The uses whose `ToolUse` must be made again (new, or answered since)."""

    def extend(self, ctx: Context) -> list[ToolUse]:
        """The tool uses of ``ctx``, which starts with the messages scanned before."""
        uses, objects, open_by_id = self._uses, self._objects, self._open_by_id
        messages = ctx.messages
        for i in range(self.messages, len(messages)):
            for j, part in enumerate(messages[i].parts):
                if part.kind == "tool_call" and part.tool_call_id:
                    open_by_id[part.tool_call_id] = len(uses)
                    uses.append(
                        {
                            "tool_call_id": part.tool_call_id,
                            "name": part.tool_name,
                            "call": (i, j),
                            "result": None,
                            "arguments": part.text,
                            "args": _parse(part.text),
                            "is_error": False,
                        }
                    )
                    self._stale.append(len(objects))
                    objects.append(None)
                elif part.kind == "tool_result" and part.tool_call_id is not None:
                    at = open_by_id.pop(part.tool_call_id, None)
                    if at is None:
                        orphan: dict[str, Any] = {
                            "tool_call_id": part.tool_call_id,
                            "name": part.tool_name,
                            "call": None,
                            "result": (i, j),
                            "arguments": "",
                            "args": None,
                            "is_error": part.is_error,
                        }
                        self._orphans.append(orphan)
                        self._orphan_objects.append(ToolUse(**orphan))
                    else:
                        uses[at]["result"] = (i, j)
                        uses[at]["is_error"] = part.is_error
                        if uses[at]["name"] is None:
                            uses[at]["name"] = part.tool_name
                        self._stale.append(at)
        self.messages = len(messages)
        for at in self._stale:
            objects[at] = ToolUse(**uses[at])
        self._stale.clear()
        return [*objects, *self._orphan_objects]  # type: ignore[list-item]


__all__ = ["ToolUse", "ToolUseScan", "tool_uses"]
