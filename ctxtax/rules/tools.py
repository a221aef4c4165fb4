"""Tool rules (family 2): idle, cold, duplicate and bloated tool definitions.

Every tool schema is sent with every call that carries the tools, so these findings are located
by the tool's name (``Loc(tool=name)``) and billed over the calls that carried the schema.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, TypeVarTuple

from pydantic import Field

from ctxtax._findings import Edit, Finding, Loc, Safety, trusted
from ctxtax._model import ToolSpec
from ctxtax.rules._tool_schemas import near_copy, schema_text, shape, skeleton
from ctxtax.rules._tool_usage import Uses, server_of, tool_usage
from ctxtax.rules.base import Rule, RuleOptions, Session, register

_T = TypeVar("_T")
_O = TypeVar("_O", bound=RuleOptions)
_Args = TypeVarTuple("_Args")
_SPEC_CACHE: dict[tuple[Any, ...], tuple[ToolSpec, Any]] = {}


def _per_spec(compute: Callable[[ToolSpec, *_Args], _T], spec: ToolSpec, *args: *_Args) -> _T:
    """``compute(spec, *args)``, once per tool object: a tool list given with many conversations
    (the same `ToolSpec`s in every context of a file) is analysed once."""
    key = (id(spec), compute, *args)
    hit = _SPEC_CACHE.get(key)
    if hit is not None and hit[0] is spec:
        value: _T = hit[1]
        return value
    if len(_SPEC_CACHE) > 50_000:
        _SPEC_CACHE.clear()
    value = compute(spec, *args)
    _SPEC_CACHE[key] = (spec, value)
    return value


def _options(rule: Rule, kind: type[_O]) -> _O:
    return rule.options if isinstance(rule.options, kind) else kind()


def _drop(name: str, tokens: int, safety: Safety = "unsafe") -> tuple[Edit, ...]:
    loc = trusted(Loc, tool=name)
    return (trusted(Edit, action="drop_tool", loc=loc, safety=safety, tokens_saved=tokens),)


def _carried(session: Session) -> int:
    """The calls that carried the tool schemas (counted once per audit)."""
    carried = session.cache.get("tools.carried")
    if not isinstance(carried, int):
        carried = session.cache["tools.carried"] = sum(1 for c in session.calls if c.with_tools)
    return carried


class IdleToolOptions(RuleOptions):
    """Options of CTX201."""

    min_calls: int = Field(2, ge=1)


@register
class IdleTool(Rule):
    """A tool defined in the request and never called in the session.

    What it does:
        Lists every tool of the session's tool definitions that no tool call (and no tool
        result) names, in a session of at least ``min_calls`` model calls that carried the
        tools. A call named ``mcp__server__tool`` uses a tool defined as ``tool``; a call
        through a meta-tool (``execute-tool {"tool_name": "x", ...}``) uses ``x``. A tool list
        without a conversation (an MCP ``tools/list`` dump) is not a session: nothing is idle.

    Why it costs:
        Every schema is sent with every call: a tool never called was paid for on each of them.
        A big MCP server (GitHub's has over a hundred tools) adds tens of thousands of tokens to
        every prompt, mostly for tools the agent never touches.

    Example:
        A session with the GitHub MCP server calls ``get_file_contents`` and
        ``create_pull_request``; the 115 other GitHub tools are idle.

    Fix:
        Enable only the toolsets the task needs, or load tools on demand (tool search). The
        proposed edit drops the tool; it is unsafe (the model can no longer call it).

    Options:
        ``min_calls`` (int, 2): fewest model calls carrying the tools before a tool is judged.
    """

    code = "CTX201"
    name = "idle-tool"
    Options = IdleToolOptions

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per idle tool name."""
        tools = session.context.tools
        carried = _carried(session)
        min_calls = _options(self, IdleToolOptions).min_calls
        if not tools or not session.context.messages or carried < min_calls:
            return
        uses = tool_usage(session)
        first = {t.name: i for i, t in reversed(list(enumerate(tools)))}
        idle = {name: i for name, i in first.items() if uses.last(tools[i]) is None}
        defined = Counter(server_of(tools[i]) for i in first.values())
        idle_by_server = Counter(server_of(tools[i]) for i in idle.values())
        for name, i in sorted(idle.items(), key=lambda item: item[1]):
            server = server_of(tools[i])
            schema = session.tokens.tool_tokens[i]
            evidence: dict[str, Any] = {
                "tool": name,
                "server": server,
                "schema_tokens": schema,
                "calls_carried": carried,
                "idle_tools": len(idle),
                "defined_tools": len(first),
            }
            scope = f"{len(idle)} of {len(first)} tools idle"
            if server is not None:
                evidence["server_idle_tools"] = idle_by_server[server]
                evidence["server_tools"] = defined[server]
                scope = f"server {server}: {idle_by_server[server]} of {defined[server]} tools idle"
            yield self.finding(
                f"tool {name!r} is defined but never called: {schema:,} schema tokens on each of "
                f"{carried} calls ({scope})",
                loc=trusted(Loc, tool=name),
                tokens=schema,
                calls=carried,
                evidence=evidence,
                edits=_drop(name, schema),
            )


class ColdToolOptions(RuleOptions):
    """Options of CTX202."""

    last_calls: int = Field(20, ge=1)


@register
class ColdTool(Rule):
    """A tool used earlier in the session and by none of its last calls.

    What it does:
        Finds tools used at least once (named as CTX201 says) whose last use was followed by
        ``last_calls`` model calls or more, carrying the tools, none of which used them: a tool
        needed for one phase and carried for the rest of a long session.

    Why it costs:
        The schema is paid on every call since the last use; the finding counts those calls.

    Example:
        An agent calls ``think`` once early in a 49-call run and never again: its schema rode
        along on the 40 calls that followed.

    Fix:
        Load the tool for the phase that needs it, or drop it after its last expected use.
        Dropping a tool is unsafe (the model could need it again) and changes the tool list,
        which invalidates a cached prompt prefix: worth it only in long sessions.

    Options:
        ``last_calls`` (int, 20): calls without a use before a tool counts as cold.
    """

    code = "CTX202"
    name = "cold-tool"
    severity = "info"
    Options = ColdToolOptions

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per cold tool name."""
        tools = session.context.tools
        if not tools or not session.context.messages:
            return
        last_calls = _options(self, ColdToolOptions).last_calls
        uses = tool_usage(session)
        # A call reading messages[:end] came after every message before ``end``.
        ends = sorted(c.end for c in session.calls if c.with_tools)
        first = {t.name: i for i, t in reversed(list(enumerate(tools)))}
        for name, i in sorted(first.items(), key=lambda item: item[1]):
            last = uses.last(tools[i])
            since = len(ends) - bisect_right(ends, last) if last is not None else 0
            if last is None or since < last_calls:
                continue
            schema = session.tokens.tool_tokens[i]
            yield self.finding(
                f"tool {name!r} was last used in message {last} and by none of the {since} "
                f"calls since: {schema:,} schema tokens on each",
                loc=trusted(Loc, tool=name),
                tokens=schema,
                calls=since,
                evidence={
                    "tool": name,
                    "server": server_of(tools[i]),
                    "schema_tokens": schema,
                    "uses": uses.count(tools[i]),
                    "last_used_message": last,
                    "calls_since": since,
                    "calls_carried": len(ends),
                },
                edits=_drop(name, schema),
            )


class DuplicateToolOptions(RuleOptions):
    """Options of CTX203."""

    threshold: float = Field(0.9, ge=0.0, le=1.0)


@register
class DuplicateTool(Rule):
    """A tool defined twice: under one name, or under two names doing the same thing.

    What it does:
        Finds a definition that repeats an earlier one: the same name (of the same server)
        defined again, whatever its text; or a tool of another server taking the same
        parameters (their help text aside) with a description at least ``threshold`` similar
        (rapidfuzz ratio, case folded): one MCP server connected twice, two servers offering
        the same tools. Tools of one server are meant to differ, and so are two tools whose
        descriptions differ where their names do (``star_repository`` / ``unstar_repository``).
        The later definition is reported, the earlier one is its ``source``.

    Why it costs:
        The later schema is paid on every call and offers the model nothing new; two tools that
        do the same thing also make the choice harder. Providers reject two tools of one name.

    Example:
        ``puppeteer_click`` and ``playwright_click`` from two browser servers: "Click an element
        on the page", the same ``selector`` parameter.

    Fix:
        Remove the second definition (or the second server). Dropping an exact copy is safe;
        dropping a near copy or one under another name is unsafe.

    Options:
        ``threshold`` (float, 0.9): lowest description similarity of two tools of different
        servers that take the same parameters.
    """

    code = "CTX203"
    name = "duplicate-tool"
    Options = DuplicateToolOptions

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per repeated definition."""
        from rapidfuzz import fuzz

        tools = session.context.tools
        cutoff = 100 * _options(self, DuplicateToolOptions).threshold
        first: dict[tuple[str, str | None], int] = {}
        groups: dict[str, list[int]] = {}
        for j, spec in enumerate(tools):
            identity = (spec.name, server_of(spec))
            match: tuple[int, float] | None = None
            if identity in first:
                i = first[identity]
                match = (i, fuzz.ratio(schema_text(tools[i]), schema_text(spec)) / 100)
            else:
                first[identity] = j
                group = groups.setdefault(_per_spec(skeleton, spec), [])
                if group and spec.description.strip():
                    match = near_copy(spec, [(i, tools[i]) for i in group], cutoff)
                group.append(j)
            if match is not None:
                yield self._finding(session, j, *match)

    def _finding(self, session: Session, j: int, i: int, similarity: float) -> Finding:
        spec, earlier = session.context.tools[j], session.context.tools[i]
        schema = session.tokens.tool_tokens[j]
        same_name = spec.name == earlier.name
        identical = same_name and schema_text(spec) == schema_text(earlier)
        what = "is defined again" if same_name else f"duplicates tool {earlier.name!r}"
        return self.finding(
            f"tool {spec.name!r} {what} ({similarity:.0%} similar): {schema:,} schema tokens "
            "on each call",
            loc=trusted(Loc, tool=spec.name),
            source=trusted(Loc, tool=earlier.name),
            similarity=round(similarity, 4),
            tokens=schema,
            calls=_carried(session),
            evidence={
                "tool": spec.name,
                "server": server_of(spec),
                "duplicates": earlier.name,
                "duplicates_server": server_of(earlier),
                "same_name": same_name,
                "same_parameters": spec.parameters == earlier.parameters,
                "similarity": round(similarity, 4),
                "schema_tokens": schema,
            },
            edits=_drop(spec.name, schema, "safe" if identical else "unsafe"),
        )


class BloatedSchemaOptions(RuleOptions):
    """Options of CTX204."""

    max_tokens: int = Field(1000, ge=1)
    max_description_tokens: int = Field(500, ge=1)
    max_enum: int = Field(50, ge=1)
    max_depth: int = Field(5, ge=1)


@register
class BloatedSchema(Rule):
    """A tool schema larger than it needs to be.

    What it does:
        Checks each tool against four budgets: its whole schema (name, description, parameters)
        over ``max_tokens``, its description over ``max_description_tokens``, an ``enum`` with
        more than ``max_enum`` values, and parameters nested deeper than ``max_depth`` levels
        (a parameter is level 1, a field of an object parameter level 2, an array's items one
        level below the array). One finding per tool names each budget it exceeds (``over``).

    Why it costs:
        The schema is sent with every call. The waste counted is the tokens over the budgets:
        the larger of (schema tokens - ``max_tokens``) and the sum of (description tokens -
        ``max_description_tokens``), the tokens of the enum values past ``max_enum`` and the
        tokens of the subschemas below ``max_depth``; never more than the schema.

    Example:
        A game-stats MCP tool whose ``champion`` parameter enumerates all 169 champions: 119
        values past the budget, about 470 tokens on every call.

    Fix:
        Cut the description to what the model needs to choose and call the tool (move manuals
        to the system prompt or a help tool), replace a long enum with a string the server
        checks, flatten deep parameters. No automatic edit: shortening a schema needs judgement.

    Options:
        ``max_tokens`` (int, 1000): budget of a whole tool schema.
        ``max_description_tokens`` (int, 500): budget of a tool description.
        ``max_enum`` (int, 50): most values of one enum.
        ``max_depth`` (int, 5): deepest nesting of parameters.
    """

    code = "CTX204"
    name = "bloated-schema"
    severity = "info"
    Options = BloatedSchemaOptions

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per tool over a budget."""
        opts = _options(self, BloatedSchemaOptions)
        count = session.counter.count
        for i, spec in enumerate(session.context.tools):
            schema = session.tokens.tool_tokens[i]
            over: dict[str, dict[str, int]] = {}
            if schema > opts.max_tokens:
                over["schema_tokens"] = _over(schema, opts.max_tokens, schema - opts.max_tokens)
            # A token is at least one character: short descriptions need no counting.
            if len(spec.description) > opts.max_description_tokens:
                n = count(spec.description)
                if n > opts.max_description_tokens:
                    limit = opts.max_description_tokens
                    over["description_tokens"] = _over(n, limit, n - limit)
            found = _per_spec(shape, spec, opts.max_enum, opts.max_depth)
            if found.extra_enum:
                extra = sum(count(_compact(values)) for values in found.extra_enum)
                most = opts.max_enum + max(len(v) for v in found.extra_enum)
                over["enum_values"] = _over(most, opts.max_enum, extra)
            if found.too_deep:
                extra = sum(count(_compact(node)) for node in found.too_deep)
                over["depth"] = _over(found.depth, opts.max_depth, extra)
            if not over:
                continue
            whole = over.get("schema_tokens", {}).get("excess", 0)
            parts = sum(v["excess"] for k, v in over.items() if k != "schema_tokens")
            waste = min(schema, max(whole, parts))
            said = ", ".join(
                f"{k.replace('_', ' ')} {v['value']:,} > {v['limit']:,}" for k, v in over.items()
            )
            yield self.finding(
                f"tool {spec.name!r} has a bloated schema ({said}): {waste:,} of its "
                f"{schema:,} tokens over budget",
                loc=trusted(Loc, tool=spec.name),
                tokens=waste,
                calls=_carried(session),
                evidence={
                    "tool": spec.name,
                    "server": server_of(spec),
                    "schema_tokens": schema,
                    "over": over,
                },
            )


def _over(value: int, limit: int, excess: int) -> dict[str, int]:
    return {"value": value, "limit": limit, "excess": excess}


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


__all__ = ["BloatedSchema", "ColdTool", "DuplicateTool", "IdleTool", "Uses", "tool_usage"]
