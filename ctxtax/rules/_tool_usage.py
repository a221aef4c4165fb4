"""Which tools a session used, and where: the analysis the tool rules share.

A use is a tool call naming the tool, a tool result naming it when its call is not in the
conversation, a call of ``mcp__server__tool`` (a use of the bare ``tool`` its server defines), or a
meta-tool call that runs it (``execute-tool {"tool_name": "x", ...}``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ctxtax._context_audit import mcp_server
from ctxtax._model import ToolSpec
from ctxtax.rules.base import Session

_PROXY_KEYS = ("tool_name", "toolName", "tool")
_PROXY_ARGS = ("arguments", "params", "args", "input")


def _bare(name: str) -> str:
    return name.split("__", 2)[2] if mcp_server(name) is not None else name


def server_of(spec: ToolSpec) -> str | None:
    """The MCP server of a tool: the one its source named, else from a ``mcp__server__`` name."""
    return spec.server or mcp_server(spec.name)


@dataclass(frozen=True, slots=True)
class Uses:
    """Where the tools were used: the last message naming each tool, and how many uses.

    ``exact`` is by the name called; ``bare`` by the tool part of ``mcp__server__tool`` names;
    ``proxied`` by the tool a meta-tool ran (``execute-tool {"tool_name": "x", ...}``). A use is
    a tool call, or a tool result whose call is not in the conversation.
    """

    exact: dict[str, int] = field(default_factory=dict)
    bare: dict[str, int] = field(default_factory=dict)
    proxied: dict[str, int] = field(default_factory=dict)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def _names(self, spec: ToolSpec) -> list[tuple[str, str]]:
        # A prefixed definition is called by its full name: ``mcp__b__read`` is not a use of
        # ``mcp__a__read``. A bare definition (server given by an MCP dump) matches either.
        found = [("exact", spec.name), ("proxied", _bare(spec.name))]
        return found if mcp_server(spec.name) else [*found, ("bare", spec.name)]

    def last(self, spec: ToolSpec) -> int | None:
        """The last message that used ``spec``, or None when it was never used."""
        seen = [
            getattr(self, table)[name]
            for table, name in self._names(spec)
            if name in getattr(self, table)
        ]
        return max(seen) if seen else None

    def count(self, spec: ToolSpec) -> int:
        """How many times ``spec`` was used."""
        return sum(self.counts[key] for key in self._names(spec))

    def add(self, table: str, name: str, message: int) -> None:
        """Record a use of ``name`` in ``message``."""
        found: dict[str, int] = getattr(self, table)
        found[name] = max(found.get(name, -1), message)
        self.counts[(table, name)] += 1


def _proxied(args: Any) -> str | None:
    """The tool a meta-tool call runs (``{"tool_name": "x", "params": {...}}``), if any."""
    if not isinstance(args, dict):
        return None
    for key in _PROXY_KEYS:
        if isinstance(args.get(key), str):
            return str(args[key])
    if isinstance(args.get("name"), str) and any(k in args for k in _PROXY_ARGS):
        return str(args["name"])
    return None


def tool_usage(session: Session) -> Uses:
    """The `Uses` of a session, computed once and shared by the tool rules."""
    cached = session.cache.get("tools.uses")
    if isinstance(cached, Uses):
        return cached
    uses = Uses()
    called: set[str] = set()
    for i, message in enumerate(session.context.messages):
        for part in message.parts:
            name = part.tool_name
            if not name or part.kind not in ("tool_call", "tool_result"):
                continue
            if part.kind == "tool_call" and part.tool_call_id:
                called.add(part.tool_call_id)
            elif part.kind == "tool_result" and part.tool_call_id in called:
                continue  # the result of a call already counted
            uses.add("exact", name, i)
            if mcp_server(name) is not None:
                uses.add("bare", _bare(name), i)
    for use in session.tool_uses:
        target = _proxied(use.args)
        if target and use.call_message is not None:
            uses.add("proxied", target, use.call_message)
    session.cache["tools.uses"] = uses
    return uses


__all__ = ["Uses", "server_of", "tool_usage"]
