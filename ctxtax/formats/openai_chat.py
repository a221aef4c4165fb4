"""OpenAI Chat Completions: a message list, a request body, or records holding a message list.

Accepted shapes:

- ``[{"role": ..., "content": ...}, ...]``: a message list (``tool_calls`` / ``role: tool``);
- ``{"model": ..., "messages": [...], "tools": [...]}``: a request body;
- a list of records each holding a message list under ``messages``, ``traj`` or ``history``
  (tau-bench, LiveMCPBench and similar evaluation dumps): one context per record.

The writer gives back a message list, or a request body when the input was one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from ctxtax._model import Context, Message, Part, Role, ToolSpec
from ctxtax.errors import MessageError
from ctxtax.formats._document import Document
from ctxtax.formats._images import image_from_url

NAME = "openai"

_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "developer",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
_CONVERSATION_KEYS = ("messages", "traj", "history", "conversation")
_KNOWN_KEYS = frozenset(
    {"role", "content", "name", "tool_calls", "tool_call_id", "function_call", "reasoning_content"}
)


def _is_message(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("role"), str)
        and ("content" in obj or "tool_calls" in obj or "function_call" in obj)
    )


def is_message_list(obj: Any) -> bool:
    """True for a non-empty list of OpenAI-shaped messages (string or part-list content)."""
    if not isinstance(obj, list) or not obj or not all(isinstance(m, dict) for m in obj[:50]):
        return False
    if not all(_is_message(m) for m in obj[:50]):
        return False
    for m in obj[:50]:
        content = m.get("content")
        if isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") in {"tool_use", "tool_result", "thinking"}
            for b in content
        ):
            return False
    return True


def _conversation_key(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    for key in _CONVERSATION_KEYS:
        if is_message_list(record.get(key)):
            return key
    return None


def detect(doc: Document) -> bool:
    """A message list, a request body with ``messages``, or records holding message lists."""
    value = doc.first_value()
    if doc.kind == "text":
        return False
    if is_message_list(value):
        return True
    if isinstance(value, dict):
        return is_message_list(value.get("messages")) and "system" not in value
    if isinstance(value, list) and value:
        return _conversation_key(value[0]) is not None
    return False


def read_tools(tools: Any, *, source: str = "<object>") -> tuple[ToolSpec, ...]:
    """OpenAI ``tools`` (``{"type": "function", "function": {...}}``) or bare function specs."""
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise MessageError("'tools' must be a list of tool definitions", source=source)
    specs: list[ToolSpec] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise MessageError(f"tool {i} is not an object", source=source)
        fn = tool.get("function") if tool.get("type") == "function" else tool
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise MessageError(f"tool {i} has no function name", source=source)
        specs.append(
            ToolSpec(
                name=fn["name"],
                description=str(fn.get("description") or ""),
                parameters=dict(fn.get("parameters") or {}),
                shape="openai" if fn is not tool else "openai_function",
                raw=tool,
            )
        )
    return tuple(specs)


def _content_parts(content: Any, *, where: str, index: int) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [Part(kind="text", text=content)] if content else []
    if not isinstance(content, list):
        raise MessageError(
            f"content must be a string or a list of parts, got {type(content).__name__}",
            source=where,
            message_index=index,
        )
    parts: list[Part] = []
    for block in content:
        if isinstance(block, str):
            parts.append(Part(kind="text", text=block, raw=block))
            continue
        if not isinstance(block, dict):
            raise MessageError("a content part is not an object", source=where, message_index=index)
        kind = block.get("type")
        if kind in {"text", "input_text", "output_text"}:
            parts.append(Part(kind="text", text=str(block.get("text") or ""), raw=block))
        elif kind == "refusal":
            parts.append(Part(kind="text", text=str(block.get("refusal") or ""), raw=block))
        elif kind in {"image_url", "input_image"}:
            spec = block.get("image_url", block)
            url = spec.get("url") if isinstance(spec, dict) else spec
            detail = spec.get("detail") if isinstance(spec, dict) else None
            image = image_from_url(str(url or ""), detail=detail)
            parts.append(Part(kind="image", image=image, raw=block))
        elif kind in {"file", "input_file", "input_audio"}:
            parts.append(Part(kind="document", text="", raw=block))
        else:
            text = json.dumps(block, ensure_ascii=False)
            parts.append(Part(kind="other", text=text, raw=block))
    return parts


def _tool_call_parts(msg: dict[str, Any], *, where: str, index: int) -> list[Part]:
    parts: list[Part] = []
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            raise MessageError(
                "a tool call has no 'function'; expected {id, type, function{name, arguments}}",
                source=where,
                message_index=index,
            )
        arguments = fn.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        parts.append(
            Part(
                kind="tool_call",
                text=arguments,
                tool_call_id=call.get("id"),
                tool_name=fn.get("name"),
                raw=call,
            )
        )
    legacy = msg.get("function_call")
    if isinstance(legacy, dict):
        parts.append(
            Part(
                kind="tool_call",
                text=str(legacy.get("arguments") or ""),
                tool_name=legacy.get("name"),
                raw=legacy,
            )
        )
    return parts


def read_message(msg: Any, *, index: int, source: str = "<object>") -> Message:
    """One OpenAI chat message."""
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
            f"unknown role {role_name!r}; expected one of: {', '.join(sorted(_ROLES))}",
            source=source,
            message_index=index,
        )
    parts: list[Part] = []
    reasoning = msg.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append(Part(kind="reasoning", text=reasoning))
    content = msg.get("content")
    if role == "tool":
        result_parts = _content_parts(content, where=source, index=index)
        text = "\n".join(p.text for p in result_parts if p.kind == "text")
        children = tuple(p for p in result_parts if p.kind != "text")
        parts.append(
            Part(
                kind="tool_result",
                text=text,
                tool_call_id=msg.get("tool_call_id"),
                tool_name=msg.get("name"),
                children=children,
            )
        )
    else:
        parts.extend(_content_parts(content, where=source, index=index))
        parts.extend(_tool_call_parts(msg, where=source, index=index))
    meta: dict[str, Any] = {
        "content_shape": "list"
        if isinstance(content, list)
        else "none"
        if content is None
        else "str"
    }
    if role_name == "function":
        meta["legacy_role"] = "function"
    extra = {k: v for k, v in msg.items() if k not in _KNOWN_KEYS}
    if extra:
        meta["extra"] = extra
    return Message(
        role=role,
        parts=tuple(parts),
        name=msg.get("name"),
        meta=meta,
        raw=msg,
    )


def read_messages(messages: Sequence[Any], *, source: str = "<object>") -> tuple[Message, ...]:
    """A message list, with tool-result names filled in from their calls."""
    read = [read_message(m, index=i, source=source) for i, m in enumerate(messages)]
    names: dict[str, str] = {}
    for m in read:
        for p in m.tool_calls:
            if p.tool_call_id and p.tool_name:
                names[p.tool_call_id] = p.tool_name
    out: list[Message] = []
    for message in read:
        result = message.parts[-1] if message.role == "tool" and message.parts else None
        name = names.get(result.tool_call_id or "") if result and result.tool_name is None else None
        if result is not None and name:
            named = result.model_copy(update={"tool_name": name})
            message = message.model_copy(update={"parts": (*message.parts[:-1], named)})  # noqa: PLW2901
        out.append(message)
    return tuple(out)


def _context(
    messages: Sequence[Any], *, doc: Document, body: dict[str, Any] | None, title: str | None
) -> Context:
    tools = read_tools(body.get("tools") if body else None, source=doc.source)
    return Context(
        messages=read_messages(messages, source=doc.source),
        tools=tools,
        source_format=NAME,
        source=doc.source,
        title=title,
        model=body.get("model") if body else None,
        request=True,
        meta={"shape": "body" if body is not None else "messages"},
        raw=body if body is not None else messages,
    )


def read(doc: Document) -> list[Context]:
    """One context per message list in the document."""
    value = doc.first_value()
    if is_message_list(value):
        return [_context(value, doc=doc, body=None, title=None)]
    if isinstance(value, dict):
        return [_context(value["messages"], doc=doc, body=value, title=None)]
    contexts: list[Context] = []
    for i, record in enumerate(value):
        key = _conversation_key(record)
        if key is None:
            continue
        title = str(record.get("task_id") or record.get("instance_id") or record.get("id") or i)
        ctx = _context(record[key], doc=doc, body=None, title=title)
        meta = {**ctx.meta, "record": i, "key": key}
        contexts.append(ctx.model_copy(update={"meta": meta, "request": False}))
    return contexts


# -- writing -----------------------------------------------------------------------------------


def _write_part(part: Part) -> Any:
    if part.raw is not None:
        return part.raw
    if part.kind == "image" and part.image is not None:
        spec: dict[str, Any] = {"url": part.image.url or ""}
        if part.image.detail:
            spec["detail"] = part.image.detail
        return {"type": "image_url", "image_url": spec}
    return {"type": "text", "text": part.text}


def _write_content(parts: Iterable[Part], shape: str) -> Any:
    parts = list(parts)
    if not parts:
        return None if shape == "none" else "" if shape == "str" else []
    if shape != "list" and all(p.kind == "text" and p.raw is None for p in parts):
        return "\n".join(p.text for p in parts)
    return [_write_part(p) for p in parts]


def write_tool(spec: ToolSpec) -> dict[str, Any]:
    """One tool in OpenAI ``tools`` shape."""
    if spec.raw is not None and spec.shape in {"openai", "openai_function"}:
        raw: dict[str, Any] = spec.raw
        return raw
    fn: dict[str, Any] = {"name": spec.name, "description": spec.description}
    if spec.parameters:
        fn["parameters"] = spec.parameters
    return {"type": "function", "function": fn}


def write_message(msg: Message) -> dict[str, Any]:
    """One message in OpenAI shape: the original object when no edit touched it."""
    if msg.raw is not None:
        raw: dict[str, Any] = msg.raw
        return raw
    shape = str(msg.meta.get("content_shape", "str"))
    out: dict[str, Any] = {"role": msg.meta.get("legacy_role", msg.role)}
    if msg.role in {"developer", "system", "user"}:
        out["content"] = _write_content(msg.parts, shape)
    elif msg.role == "tool":
        result = next((p for p in msg.parts if p.kind == "tool_result"), None)
        body = [Part(kind="text", text=result.text)] if result and result.text else []
        if result is not None:
            body.extend(result.children)
        out["content"] = _write_content(body, shape)
        if result is not None and result.tool_call_id is not None:
            out["tool_call_id"] = result.tool_call_id
    else:
        reasoning = [p for p in msg.parts if p.kind == "reasoning"]
        if reasoning:
            out["reasoning_content"] = "\n".join(p.text for p in reasoning)
        body_parts = [p for p in msg.parts if p.kind not in {"tool_call", "reasoning"}]
        out["content"] = _write_content(body_parts, shape)
        calls = [p for p in msg.parts if p.kind == "tool_call"]
        if calls and calls[0].tool_call_id is None and shape != "list" and len(calls) == 1:
            out["function_call"] = {"name": calls[0].tool_name, "arguments": calls[0].text}
        elif calls:
            out["tool_calls"] = [
                p.raw
                if p.raw is not None
                else {
                    "id": p.tool_call_id,
                    "type": "function",
                    "function": {"name": p.tool_name, "arguments": p.text},
                }
                for p in calls
            ]
    if msg.name is not None:
        out["name"] = msg.name
    out.update(msg.meta.get("extra", {}))
    return out


def _one_result_each(msg: Message) -> list[Message]:
    """``msg`` as OpenAI can hold it: one tool result per ``tool`` message.

    A message converted from another format may hold several results, or results beside text
    (an Anthropic user turn): written as one message, the results would be lost (their calls
    orphaned, which the provider rejects). Each result becomes a ``tool`` message, in order, and
    what else the message held follows as a message of its own.
    """
    results = [p for p in msg.parts if p.kind == "tool_result"]
    if msg.raw is not None or not results or (msg.role == "tool" and len(msg.parts) == 1):
        return [msg]
    out = [Message(role="tool", parts=(p,)) for p in results]
    rest = tuple(p for p in msg.parts if p.kind != "tool_result")
    if rest:
        role: Role = "user" if msg.role == "tool" else msg.role
        out.append(msg.model_copy(update={"role": role, "parts": rest}))
    return out


def write(ctx: Context) -> Any:
    """The context as an OpenAI message list, or a request body if it was read from one."""
    messages = [write_message(m) for msg in ctx.messages for m in _one_result_each(msg)]
    if ctx.meta.get("shape") != "body":
        return messages
    body = dict(ctx.raw) if isinstance(ctx.raw, dict) else {}
    if ctx.model is not None:
        body["model"] = ctx.model
    body["messages"] = messages
    if ctx.tools:
        body["tools"] = [write_tool(t) for t in ctx.tools]
    else:
        body.pop("tools", None)
    return body


__all__ = [
    "NAME",
    "detect",
    "is_message_list",
    "read",
    "read_message",
    "read_messages",
    "read_tools",
    "write",
    "write_message",
    "write_tool",
]
