"""Anthropic Messages: a request body (``system`` apart, content blocks), or a list of messages.

Blocks read: ``text``, ``image``, ``document``, ``tool_use`` (and ``server_tool_use``),
``tool_result``, ``thinking``, ``redacted_thinking``; any other block is kept as ``other`` with its
JSON as text. The system prompt becomes a leading ``system`` message (``meta["anthropic_system"]``)
and goes back to the ``system`` field on writing. `read_blocks` is shared by the readers of logs
that record Anthropic messages (Claude Code, claude-trace).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ctxtax._model import Context, Image, Message, Part, Role, ToolSpec
from ctxtax.errors import MessageError
from ctxtax.formats._document import Document
from ctxtax.formats._images import image_from_base64

NAME = "anthropic"

_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant", "system": "system"}
_BLOCK_TYPES = frozenset(
    {"text", "tool_use", "tool_result", "thinking", "redacted_thinking", "image"}
)


def dumps(value: Any) -> str:
    """JSON text as a model reads tool input: compact separators kept readable, unicode kept."""
    return json.dumps(value, ensure_ascii=False)


def _has_blocks(messages: Any) -> bool:
    if not isinstance(messages, list) or not messages:
        return False
    for m in messages[:50]:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            return False
        if "tool_calls" in m or m.get("role") == "tool":
            return False
    return any(
        isinstance(m.get("content"), list)
        and any(isinstance(b, dict) and b.get("type") in _BLOCK_TYPES for b in m["content"])
        for m in messages
    )


def detect(doc: Document) -> bool:
    """A body with ``system`` or ``messages`` of content blocks, or a list of such messages."""
    value = doc.first_value()
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        msgs = value["messages"]
        return (
            "system" in value
            or _has_blocks(msgs)
            or (
                "max_tokens" in value
                and all(isinstance(m, dict) and m.get("role") != "system" for m in msgs)
            )
        )
    return _has_blocks(value)


def _image(block: dict[str, Any]) -> Image:
    source = block.get("source")
    if isinstance(source, dict):
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            return image_from_base64(source["data"], source.get("media_type"))
        if source.get("type") == "url":
            return Image(url=source.get("url"))
    return Image()


def read_block(block: Any, *, source: str, index: int) -> Part:
    """One content block as a `Part`."""
    if isinstance(block, str):
        return Part(kind="text", text=block, raw=block)
    if not isinstance(block, dict):
        raise MessageError(
            f"a content block is {type(block).__name__}; expected an object with a 'type'",
            source=source,
            message_index=index,
        )
    kind = block.get("type")
    if kind == "text":
        return Part(kind="text", text=str(block.get("text") or ""), raw=block)
    if kind in {"tool_use", "server_tool_use", "mcp_tool_use"}:
        return Part(
            kind="tool_call",
            text=dumps(block.get("input", {})),
            tool_call_id=block.get("id"),
            tool_name=block.get("name"),
            raw=block,
        )
    if kind == "tool_result":
        content = block.get("content")
        children: list[Part] = []
        texts: list[str] = []
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for sub in content:
                part = read_block(sub, source=source, index=index)
                if part.kind == "text":
                    texts.append(part.text)
                else:
                    children.append(part)
        elif content is not None:
            raise MessageError(
                "tool_result content must be a string or a list of blocks",
                source=source,
                message_index=index,
            )
        return Part(
            kind="tool_result",
            text="\n".join(texts),
            tool_call_id=block.get("tool_use_id"),
            is_error=bool(block.get("is_error")),
            children=tuple(children),
            raw=block,
        )
    if kind == "thinking":
        return Part(kind="reasoning", text=str(block.get("thinking") or ""), raw=block)
    if kind == "redacted_thinking":
        return Part(kind="reasoning", encrypted=True, raw=block)
    if kind == "image":
        return Part(kind="image", image=_image(block), raw=block)
    if kind == "document":
        source_obj = block.get("source")
        text = ""
        if isinstance(source_obj, dict) and source_obj.get("type") == "text":
            text = str(source_obj.get("data") or "")
        return Part(kind="document", text=text, raw=block)
    return Part(kind="other", text=dumps(block), raw=block)


def read_blocks(content: Any, *, source: str, index: int) -> tuple[Part, ...]:
    """Message content (a string or a list of blocks) as parts."""
    if content is None:
        return ()
    if isinstance(content, str):
        return (Part(kind="text", text=content),) if content else ()
    if not isinstance(content, list):
        raise MessageError(
            f"content must be a string or a list of blocks, got {type(content).__name__}",
            source=source,
            message_index=index,
        )
    return tuple(read_block(b, source=source, index=index) for b in content)


def fill_tool_names(
    messages: Sequence[Message], names: Mapping[str | None, str | None] | None = None
) -> tuple[Message, ...]:
    """Tool results carry the name of the tool whose call they answer (``names``: call id to
    tool name, by default from the tool calls of ``messages``)."""
    if names is None:
        names = {
            p.tool_call_id: p.tool_name for m in messages for p in m.tool_calls if p.tool_call_id
        }
    out: list[Message] = []
    for m in messages:
        if any(p.kind == "tool_result" and p.tool_name is None for p in m.parts):
            parts = tuple(
                p.model_copy(update={"tool_name": names.get(p.tool_call_id)})
                if p.kind == "tool_result" and p.tool_name is None and p.tool_call_id in names
                else p
                for p in m.parts
            )
            out.append(m.model_copy(update={"parts": parts}))
        else:
            out.append(m)
    return tuple(out)


def read_message(msg: Any, *, index: int, source: str = "<object>") -> Message:
    """One Anthropic message."""
    if not isinstance(msg, dict):
        raise MessageError(
            f"expected a message object, got {type(msg).__name__}",
            source=source,
            message_index=index,
        )
    role_name = msg.get("role")
    role = _ROLES.get(role_name) if isinstance(role_name, str) else None
    if role is None:
        raise MessageError(
            f"unknown role {msg.get('role')!r}; expected 'user' or 'assistant'",
            source=source,
            message_index=index,
        )
    content = msg.get("content")
    extra = {k: v for k, v in msg.items() if k not in {"role", "content"}}
    meta: dict[str, Any] = {"content_shape": "str" if isinstance(content, str) else "list"}
    if extra:
        meta["extra"] = extra
    return Message(
        role=role,
        parts=read_blocks(content, source=source, index=index),
        id=msg.get("id") if isinstance(msg.get("id"), str) else None,
        meta=meta,
        raw=msg,
    )


def read_system(system: Any, *, source: str) -> Message | None:
    """The ``system`` field (a string or text blocks) as a leading system message."""
    if system is None or system in ("", []):
        return None
    parts = read_blocks(system, source=source, index=0)
    shape = "str" if isinstance(system, str) else "list"
    return Message(
        role="system",
        parts=parts,
        meta={"anthropic_system": True, "content_shape": shape},
        raw=system,
    )


def read_tools(tools: Any, *, source: str = "<object>") -> tuple[ToolSpec, ...]:
    """Anthropic ``tools``: ``{name, description, input_schema}`` (server tools kept as is)."""
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise MessageError("'tools' must be a list of tool definitions", source=source)
    specs: list[ToolSpec] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise MessageError(f"tool {i} has no name", source=source)
        specs.append(
            ToolSpec(
                name=tool["name"],
                description=str(tool.get("description") or ""),
                parameters=dict(tool.get("input_schema") or {}),
                shape="anthropic",
                raw=tool,
            )
        )
    return tuple(specs)


def read_body(body: dict[str, Any], *, source: str, title: str | None = None) -> Context:
    """A request body as a context."""
    messages: list[Message] = []
    system = read_system(body.get("system"), source=source)
    if system is not None:
        messages.append(system)
    offset = len(messages)
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list):
        raise MessageError("'messages' must be a list", source=source)
    messages.extend(
        read_message(m, index=i + offset, source=source) for i, m in enumerate(raw_messages)
    )
    return Context(
        messages=fill_tool_names(messages),
        tools=read_tools(body.get("tools"), source=source),
        source_format=NAME,
        source=source,
        title=title,
        model=body.get("model") if isinstance(body.get("model"), str) else None,
        request=True,
        meta={"shape": "body"},
        raw=body,
    )


def read(doc: Document) -> list[Context]:
    """One context: the request body, or the message list."""
    value = doc.first_value()
    if isinstance(value, dict):
        return [read_body(value, source=doc.source)]
    messages = [read_message(m, index=i, source=doc.source) for i, m in enumerate(value)]
    return [
        Context(
            messages=fill_tool_names(messages),
            source_format=NAME,
            source=doc.source,
            request=True,
            meta={"shape": "messages"},
            raw=value,
        )
    ]


# -- writing -----------------------------------------------------------------------------------


def write_block(part: Part) -> Any:
    """One part as an Anthropic block: the original block when no edit touched it."""
    if part.raw is not None:
        return part.raw
    if part.kind == "tool_call":
        return {
            "type": "tool_use",
            "id": part.tool_call_id,
            "name": part.tool_name,
            "input": json.loads(part.text or "{}"),
        }
    if part.kind == "tool_result":
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_call_id}
        if part.children:
            body: list[Any] = [{"type": "text", "text": part.text}] if part.text else []
            block["content"] = body + [write_block(c) for c in part.children]
        else:
            block["content"] = part.text
        if part.is_error:
            block["is_error"] = True
        return block
    if part.kind == "reasoning":
        return {"type": "thinking", "thinking": part.text}
    if part.kind == "image" and part.image is not None and part.image.url:
        return {"type": "image", "source": {"type": "url", "url": part.image.url}}
    return {"type": "text", "text": part.text}


def _write_content(msg: Message) -> Any:
    if msg.meta.get("content_shape") == "str" and all(
        p.kind == "text" and p.raw is None for p in msg.parts
    ):
        return "\n".join(p.text for p in msg.parts)
    return [write_block(p) for p in msg.parts]


def write_message(msg: Message) -> dict[str, Any]:
    """One message in Anthropic shape."""
    if msg.raw is not None:
        raw: dict[str, Any] = msg.raw
        return raw
    out: dict[str, Any] = {"role": "user" if msg.role == "tool" else msg.role}
    out["content"] = _write_content(msg)
    out.update(msg.meta.get("extra", {}))
    return out


def write_tool(spec: ToolSpec) -> dict[str, Any]:
    """One tool in Anthropic shape."""
    if spec.raw is not None and spec.shape == "anthropic":
        raw: dict[str, Any] = spec.raw
        return raw
    tool: dict[str, Any] = {"name": spec.name}
    if spec.description:
        tool["description"] = spec.description
    tool["input_schema"] = spec.parameters or {"type": "object", "properties": {}}
    return tool


def write(ctx: Context) -> Any:
    """A request body (system apart), or a message list if the input was one."""
    leading: list[Message] = []
    messages: list[dict[str, Any]] = []
    for m in ctx.messages:
        if m.role in {"system", "developer"} and not messages:
            leading.append(m)
        elif m.role in {"system", "developer"}:
            # Anthropic has no system turn after the first message: keep the text where it was.
            messages.append({"role": "user", "content": [write_block(p) for p in m.parts]})
        else:
            messages.append(write_message(m))
    system: Any = None
    if len(leading) == 1:
        system = leading[0].raw if leading[0].raw is not None else _write_content(leading[0])
    elif leading:
        system = [write_block(p) for m in leading for p in m.parts]
    if ctx.meta.get("shape") == "messages":
        return messages
    body = dict(ctx.raw) if isinstance(ctx.raw, dict) else {}
    if ctx.model is not None:
        body["model"] = ctx.model
    if system is not None:
        body["system"] = system
    else:
        body.pop("system", None)
    body["messages"] = messages
    if ctx.tools:
        body["tools"] = [write_tool(t) for t in ctx.tools]
    else:
        body.pop("tools", None)
    return body


__all__ = [
    "NAME",
    "detect",
    "dumps",
    "fill_tool_names",
    "read",
    "read_block",
    "read_blocks",
    "read_body",
    "read_message",
    "read_system",
    "read_tools",
    "write",
    "write_block",
    "write_message",
    "write_tool",
]
