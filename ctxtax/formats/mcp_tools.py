"""Tool definitions without a conversation: MCP ``tools/list`` dumps and bare tool arrays.

Shapes read, each into one context with ``messages=()`` and the ``tools``:

- ``{"tools": [...]}``, an MCP ``tools/list`` result, optionally with ``server_info{name}`` or a
  ``server`` name beside it (``meta["shape"] = "dump"``); the tools may also be OpenAI or Anthropic
  shaped;
- ``{"jsonrpc": "2.0", "id": ..., "result": {"tools": [...]}}``: the JSON-RPC response
  (``jsonrpc``);
- a bare list of MCP tools (``mcp_list``), or one MCP tool object (``tool``);
- LiveMCPBench's ``tools.json``: a list of servers ``{name, tools: {key: {server_name, tools}}}``
  (``livemcpbench``), every server's tools with their ``server``;
- an OpenAI ``tools`` array (``[{"type": "function", "function": {...}}]``, ``openai_list``) or an
  Anthropic one (``[{name, description, input_schema}]``, ``anthropic_list``), read by
  `openai_chat.read_tools` / `anthropic.read_tools`.

An MCP tool is ``{name, title?, description, inputSchema, outputSchema?, annotations?, _meta?}``.
``ToolSpec.shape`` is ``"mcp"`` and ``parameters`` the ``inputSchema``. An MCP client sends the
model only name, description and input schema; the whole object stays in ``raw`` so a token
count can weigh the rest too. ``server`` comes from the dump, else from a ``mcp__server__tool``
name. The title is the server name, else the file stem. `write` gives back the input's shape,
equal to it when no tool was edited.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ctxtax._model import Context, ToolSpec
from ctxtax.errors import MessageError
from ctxtax.formats import anthropic, openai_chat
from ctxtax.formats._document import Document

NAME = "mcp_tools"

_PREFIXED = re.compile(r"^mcp__(.+?)__(.+)$")
_SCAN = 50
_REQUEST_KEYS = frozenset({"messages", "input", "model", "system", "prompt"})
"""Keys of a model request or a conversation: a dict with one of them is not a tools dump."""


def _is_mcp_tool(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("name"), str)
        and isinstance(obj.get("inputSchema"), dict)
        and "role" not in obj
    )


def _is_openai_tool(obj: Any) -> bool:
    if not isinstance(obj, dict) or obj.get("type") != "function":
        return False
    fn = obj.get("function")
    return isinstance(fn, dict) and isinstance(fn.get("name"), str)


def _is_anthropic_tool(obj: Any) -> bool:
    """A client tool with ``input_schema``, or a server tool (``{type, name}``)."""
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("name"), str)
        and (isinstance(obj.get("input_schema"), dict) or isinstance(obj.get("type"), str))
        and "role" not in obj
        and "inputSchema" not in obj
    )


def _is_livemcp_server(obj: Any) -> bool:
    servers = obj.get("tools") if isinstance(obj, dict) else None
    return (
        isinstance(servers, dict)
        and bool(servers)
        and all(isinstance(s, dict) and isinstance(s.get("tools"), list) for s in servers.values())
    )


def _tool_kind(tools: Any) -> str | None:
    """``mcp``, ``openai`` or ``anthropic`` for a non-empty list of tools of one shape."""
    if not isinstance(tools, list) or not tools:
        return None
    head = tools[:_SCAN]
    if all(_is_mcp_tool(t) for t in head):
        return "mcp"
    if all(_is_openai_tool(t) for t in head):
        return "openai"
    if all(_is_anthropic_tool(t) for t in head) and any("input_schema" in t for t in head):
        return "anthropic"
    return None


def _shape(value: Any) -> str | None:
    if isinstance(value, list):
        if value and all(_is_livemcp_server(s) for s in value[:_SCAN]):
            return "livemcpbench"
        kind = _tool_kind(value)
        return f"{kind}_list" if kind else None
    if not isinstance(value, dict) or not _REQUEST_KEYS.isdisjoint(value):
        return None
    result = value.get("result")
    if isinstance(result, dict) and ("jsonrpc" in value or "id" in value):
        tools = result.get("tools")
        listed = _tool_kind(tools) == "mcp" or (tools == [] and "jsonrpc" in value)
        return "jsonrpc" if listed else None
    tools = value.get("tools")
    if isinstance(tools, list):
        named = "server_info" in value or "server" in value
        return "dump" if _tool_kind(tools) or (named and not tools) else None
    return "tool" if _is_mcp_tool(value) else None


def detect(doc: Document) -> bool:
    """One of the tool-definition shapes listed in the module docstring."""
    if doc.kind not in {"json", "object"}:
        return False
    return _shape(doc.value) is not None


def server_of(name: str) -> str | None:
    """The server of a ``mcp__server__tool`` name, else None."""
    match = _PREFIXED.match(name)
    return match.group(1) if match else None


def read_mcp_tools(
    tools: Any, *, server: str | None = None, source: str = "<object>"
) -> tuple[ToolSpec, ...]:
    """MCP tool objects as `ToolSpec` s (``shape="mcp"``)."""
    if not isinstance(tools, list):
        raise MessageError("'tools' must be a list of MCP tool definitions", source=source)
    specs: list[ToolSpec] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise MessageError(
                f"tool {i} has no name; expected {{name, description, inputSchema}}", source=source
            )
        schema = tool.get("inputSchema", {})
        if not isinstance(schema, dict):
            raise MessageError(
                f"tool {i} ({tool['name']}) has an inputSchema that is not an object",
                source=source,
            )
        description = tool.get("description")
        specs.append(
            ToolSpec(
                name=tool["name"],
                description=description if isinstance(description, str) else "",
                parameters=dict(schema),
                server=server or server_of(tool["name"]),
                shape="mcp",
                raw=tool,
            )
        )
    return tuple(specs)


def _read_list(tools: Any, *, server: str | None, source: str) -> tuple[ToolSpec, ...]:
    kind = _tool_kind(tools)
    if kind == "openai":
        specs = openai_chat.read_tools(tools, source=source)
    elif kind == "anthropic":
        specs = anthropic.read_tools(tools, source=source)
    else:
        return read_mcp_tools(tools, server=server, source=source)
    return tuple(
        s if s.server else s.model_copy(update={"server": server or server_of(s.name)})
        for s in specs
    )


def _server_name(value: dict[str, Any]) -> str | None:
    info = value.get("server_info") or value.get("serverInfo")
    if isinstance(info, dict) and isinstance(info.get("name"), str):
        return str(info["name"])
    server = value.get("server")
    if isinstance(server, dict) and isinstance(server.get("name"), str):
        return str(server["name"])
    return server if isinstance(server, str) else None


def _livemcp_tools(servers: list[Any], *, source: str) -> tuple[ToolSpec, ...]:
    specs: list[ToolSpec] = []
    for i, record in enumerate(servers):
        if not _is_livemcp_server(record):
            raise MessageError(
                f"server {i} has no 'tools' map; expected {{name, tools: {{key: {{tools}}}}}}",
                source=source,
            )
        for key, entry in record["tools"].items():
            name = entry.get("server_name")
            specs.extend(
                read_mcp_tools(
                    entry["tools"], server=name if isinstance(name, str) else key, source=source
                )
            )
    return tuple(specs)


def read(doc: Document) -> list[Context]:
    """The tool definitions as one context without messages."""
    value = doc.value
    shape = _shape(value)
    server: str | None = None
    if shape == "livemcpbench":
        tools = _livemcp_tools(value, source=doc.source)
    elif shape == "jsonrpc":
        tools = read_mcp_tools(value["result"]["tools"], source=doc.source)
    elif shape == "dump":
        server = _server_name(value)
        tools = _read_list(value["tools"], server=server, source=doc.source)
    elif shape == "tool":
        tools = read_mcp_tools([value], source=doc.source)
    else:
        tools = _read_list(value, server=None, source=doc.source)
    meta: dict[str, Any] = {"shape": shape}
    kind = _tool_kind(value.get("tools") if shape == "dump" else value)
    if shape == "dump" and kind:
        meta["tool_shape"] = kind
    servers = sorted({t.server for t in tools if t.server})
    if servers:
        meta["servers"] = servers
    stem = doc.path.stem if doc.path is not None else None
    return [
        Context(
            tools=tools,
            source_format=NAME,
            source=doc.source,
            title=server or stem,
            meta=meta,
            raw=value,
        )
    ]


# -- writing -----------------------------------------------------------------------------------


def write_tool(spec: ToolSpec) -> dict[str, Any]:
    """One tool as an MCP tool object: the original one when name, description and schema match."""
    raw = spec.raw if isinstance(spec.raw, dict) and spec.shape == "mcp" else {}
    if (
        raw
        and raw.get("name") == spec.name
        and (raw.get("description") or "") == spec.description
        and (raw.get("inputSchema") or {}) == spec.parameters
    ):
        return raw
    fields: dict[str, Any] = {"name": spec.name}
    if spec.description or "description" in raw:
        fields["description"] = spec.description
    fields["inputSchema"] = spec.parameters or {"type": "object", "properties": {}}
    return {**raw, **fields}


def _writer(kind: str | None) -> Callable[[ToolSpec], dict[str, Any]]:
    if kind == "openai":
        return openai_chat.write_tool
    if kind == "anthropic":
        return anthropic.write_tool
    return write_tool


def write(ctx: Context) -> Any:
    """The tools back in the shape they were read from."""
    shape = ctx.meta.get("shape")
    raw = ctx.raw
    if shape in {"openai_list", "anthropic_list", "mcp_list"}:
        return [_writer(str(shape).removesuffix("_list"))(t) for t in ctx.tools]
    if shape == "tool" and len(ctx.tools) == 1:
        return write_tool(ctx.tools[0])
    if shape == "dump" and isinstance(raw, dict):
        write_one = _writer(ctx.meta.get("tool_shape"))
        return {**raw, "tools": [write_one(t) for t in ctx.tools]}
    if shape == "jsonrpc" and isinstance(raw, dict) and isinstance(raw.get("result"), dict):
        result = {**raw["result"], "tools": [write_tool(t) for t in ctx.tools]}
        return {**raw, "result": result}
    if shape == "livemcpbench" and isinstance(raw, list):
        out: list[Any] = []
        for record in raw:
            entries = {}
            for key, entry in record["tools"].items():
                name = (
                    entry.get("server_name") if isinstance(entry.get("server_name"), str) else key
                )
                tools = [write_tool(t) for t in ctx.tools if t.server == name]
                entries[key] = {**entry, "tools": tools}
            out.append({**record, "tools": entries})
        return out
    return {"tools": [write_tool(t) for t in ctx.tools]}


__all__ = ["NAME", "detect", "read", "read_mcp_tools", "server_of", "write", "write_tool"]
