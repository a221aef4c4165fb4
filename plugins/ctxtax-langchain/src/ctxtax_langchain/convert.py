"""LangChain messages <-> ctxtax `Context`, lossless.

`to_context` reads System / Human / AI / Tool messages into ctxtax parts, keeping each original
message object on its ctxtax `Message` (``raw``) and the list of originals on the context. An
unedited message converts back to the identical object; an edited one is rebuilt from its original
with ``model_copy(update={"content": ...})``, so its id, name, ``additional_kwargs``,
``response_metadata``, tool calls and usage stay as they were.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from ctxtax import Context, Message, Part, ToolSpec

FORMAT = "langchain"
"""The ``source_format`` of a context read from LangChain messages."""

_ROLE_OF_TYPE = {
    "system": "system",
    "human": "user",
    "ai": "assistant",
    "tool": "tool",
    "function": "tool",
}
_TEXT_TYPES = frozenset({"text", "input_text", "output_text"})
_REASONING_KEYS = ("reasoning", "thinking")


def _role(message: BaseMessage) -> str:
    if isinstance(message, ChatMessage):
        role = message.role
        return role if role in {"system", "developer", "user", "assistant", "tool"} else "user"
    return _ROLE_OF_TYPE.get(message.type, "user")


def _block_part(block: Any) -> Part:
    """One content block (a string or a dict) as a ctxtax part, the block kept in ``raw``."""
    if isinstance(block, str):
        return Part(kind="text", text=block, raw=block)
    if not isinstance(block, dict):
        return Part(kind="other", text=str(block), raw=block)
    kind = block.get("type")
    if kind in _TEXT_TYPES and isinstance(block.get("text"), str):
        return Part(kind="text", text=block["text"], raw=block)
    if kind in _REASONING_KEYS:
        text = block.get("reasoning") or block.get("thinking") or ""
        return Part(kind="reasoning", text=str(text), encrypted="signature" in block, raw=block)
    if kind in {"image", "image_url"}:
        return Part(kind="image", raw=block)
    if kind in {"file", "audio", "input_file", "input_audio", "document"}:
        return Part(kind="document", raw=block)
    return Part(kind="other", text=json.dumps(block, ensure_ascii=False, default=str), raw=block)


def _content_parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        # No raw: an edit of a string content writes the new string back.
        return [Part(kind="text", text=content)] if content else []
    return [_block_part(block) for block in content or []]


def _call_text(args: Any) -> str:
    return json.dumps(args, ensure_ascii=False, sort_keys=False, default=str)


def read_message(message: BaseMessage, *, index: int = 0) -> Message:
    """One LangChain message as a ctxtax `Message` (the original object in ``raw``)."""
    role = _role(message)
    content = message.content
    meta: dict[str, Any] = {
        "lc_index": index,
        "lc_type": message.type,
        "content_shape": "str" if isinstance(content, str) else "list",
    }
    parts: list[Part]
    if isinstance(message, ToolMessage) or role == "tool":
        blocks = _content_parts(content)
        text = "\n".join(p.text for p in blocks if p.kind == "text")
        children = tuple(p for p in blocks if p.kind != "text")
        parts = [
            Part(
                kind="tool_result",
                text=text,
                tool_call_id=getattr(message, "tool_call_id", None),
                tool_name=message.name,
                is_error=getattr(message, "status", "success") == "error",
                children=children,
            )
        ]
    else:
        parts = _content_parts(content)
        if isinstance(message, AIMessage):
            parts.extend(
                Part(
                    kind="tool_call",
                    text=_call_text(call.get("args", {})),
                    tool_call_id=call.get("id"),
                    tool_name=call.get("name"),
                    raw=call,
                )
                for call in message.tool_calls
            )
    return Message(
        role=role,
        parts=tuple(parts),
        id=message.id,
        name=message.name,
        meta=meta,
        raw=message,
    )


def read_tools(tools: Sequence[Any] | None) -> tuple[ToolSpec, ...]:
    """LangChain tools (``BaseTool``, functions, or OpenAI / Anthropic dicts) as `ToolSpec`s."""
    if not tools:
        return ()
    from langchain_core.utils.function_calling import convert_to_openai_tool

    specs: list[ToolSpec] = []
    for tool in tools:
        try:
            fn = convert_to_openai_tool(tool)["function"]
        except Exception:
            name = getattr(tool, "name", None) or (
                tool.get("name") if isinstance(tool, dict) else None
            )
            if name:
                specs.append(ToolSpec(name=str(name), raw=tool))
            continue
        specs.append(
            ToolSpec(
                name=fn["name"],
                description=str(fn.get("description") or ""),
                parameters=dict(fn.get("parameters") or {}),
                shape="openai",
                raw=tool,
            )
        )
    return tuple(specs)


class Reader:
    """`to_context` kept between the calls of a growing conversation (middleware keeps one per
    thread): a message already read is reused while the caller passes the same object at the
    same place with the same ``content`` and ``tool_calls`` objects, so the `Context` it builds
    holds the same `Message` objects again and ctxtax's own caches (token counts, findings)
    hold for them. Tools are read again only when the list of tool objects changes.
    """

    def __init__(self) -> None:
        self._read: list[tuple[BaseMessage, Any, Any, int, Message]] = []
        """Per message read: (the object, its content, its tool calls, its number of content
        blocks or -1, the `Message` read)."""
        self._read_messages: list[Message] = []
        """The `Message`s of ``_read``."""
        self._objects: list[BaseMessage] = []
        self._contents: list[Any] = []
        self._watched: tuple[list[int], list[Any], list[int], list[int]] = ([], [], [], [])
        """(AI messages, their tool calls, messages with block content, their sizes): what
        else `_unchanged` compares."""
        self._out: list[Message] = []
        self._names: dict[str, str] = {}
        self._unnamed: set[str] = set()
        self._tools: tuple[tuple[Any, ...], tuple[ToolSpec, ...]] | None = None
        self.written: dict[int, tuple[Message, BaseMessage]] = {}
        """Edited messages as written back (see `from_context`), by message object."""
        self.marked: dict[int, tuple[BaseMessage, Any, BaseMessage]] = {}
        """Written messages with what the middleware recorded in their metadata."""
        self.sent: tuple[tuple[Message, ...], list[BaseMessage]] = ((), [])
        """The messages written last call (see `ctxtax_langchain._core`), and what they were
        written as."""

    def _unchanged(self, messages: Sequence[BaseMessage]) -> bool:
        """True when ``messages`` starts with the messages read last time, the same objects
        holding the same ``content`` and ``tool_calls`` objects (compared without a Python-level
        loop: this runs on the whole history at every call)."""
        n = len(self._objects)
        if not n or len(messages) < n:
            return False
        if not all(map(operator.is_, messages, self._objects)):
            return False
        if not all(map(operator.is_, map(_CONTENT, messages), self._contents)):
            return False
        ai, calls, blocks, sizes = self._watched
        at = messages.__getitem__
        return (
            all(map(operator.is_, map(_TOOL_CALLS, map(at, ai)), calls))
            and list(map(len, map(_CONTENT, map(at, blocks)))) == sizes
        )

    def messages(self, messages: Sequence[BaseMessage]) -> tuple[Message, ...]:
        """The messages as ctxtax `Message`s, tool results named after their calls."""
        previous = self._read
        # The common case first: the same messages as last time, with the same content and
        # tool calls, and some more after them (then the lists kept grow in place).
        n = len(previous)
        if self._unchanged(messages):
            fresh, read, same = previous, self._read_messages, n
        else:
            fresh, read, same = [], [], 0
            self._objects, self._contents, self._watched = [], [], ([], [], [], [])
        ai, calls_seen, blocks, sizes = self._watched
        for i in range(len(fresh), len(messages)):
            message = messages[i]
            content = message.content
            # (getattr on a message without tool calls goes through pydantic's slow path)
            calls = message.tool_calls if isinstance(message, AIMessage) else None
            size = len(content) if isinstance(content, list) else -1
            entry = previous[i] if i < n else None
            if (
                entry is None
                or entry[0] is not message
                or entry[1] is not content
                or entry[2] is not calls
                or entry[3] != size
            ):
                # A checkpoint read back gives equal messages that are new objects: an equal
                # message read before at this place is read as it was (it writes back as the
                # object read first, which is equal to this one). Equal as read: the content
                # and tool calls it was read from, not the first object as it is now (a caller
                # may have changed that one in place).
                if (
                    entry is not None
                    and entry[1] == content
                    and entry[2] == calls
                    and entry[3] == size
                    and entry[0] == message
                    and entry[4].meta.get("lc_index") == i
                ):
                    entry = (message, content, calls, size, entry[4])
                    if same == i:
                        same += 1
                else:
                    entry = (message, content, calls, size, read_message(message, index=i))
            elif same == i:
                same += 1
            fresh.append(entry)
            read.append(entry[4])
            self._objects.append(message)
            self._contents.append(content)
            if isinstance(message, AIMessage):
                ai.append(i)
                calls_seen.append(calls)
            if size >= 0:
                blocks.append(i)
                sizes.append(size)
        self._read, self._read_messages = fresh, read
        new_ids = {
            p.tool_call_id
            for m in read[same:]
            for p in m.parts
            if p.kind == "tool_call" and p.tool_call_id
        }
        if same < n or new_ids & self._unnamed:
            # Not a plain growth: name every result again.
            self._out, self._names, self._unnamed, same = [], {}, set(), 0
        for m in read[same:]:
            for p in m.parts:
                if p.kind == "tool_call" and p.tool_call_id and p.tool_name:
                    self._names[p.tool_call_id] = p.tool_name
        out = self._out
        del out[same:]
        for m in read[same:]:
            result = m.parts[0] if m.role == "tool" and m.parts else None
            if result is None or result.tool_name is not None:
                out.append(m)
                continue
            name = self._names.get(result.tool_call_id or "")
            if name is None:
                if result.tool_call_id:
                    self._unnamed.add(result.tool_call_id)
                out.append(m)
                continue
            part = result.model_copy(update={"tool_name": name})
            out.append(m.model_copy(update={"parts": (part, *m.parts[1:])}))
        self._out = out
        return tuple(out)

    def tools(self, tools: Sequence[Any] | None) -> tuple[ToolSpec, ...]:
        """`read_tools`, reused while the same tool objects come in the same order."""
        key = tuple(tools or ())
        if (
            self._tools is None
            or len(self._tools[0]) != len(key)
            or any(a is not b for a, b in zip(self._tools[0], key, strict=True))
        ):
            self._tools = (key, read_tools(tools))
        return self._tools[1]


_CONTENT = operator.attrgetter("content")
_TOOL_CALLS = operator.attrgetter("tool_calls")


def to_context(
    messages: Sequence[BaseMessage],
    tools: Sequence[Any] | None = None,
    *,
    model: str | None = None,
    request: bool = True,
    reader: Reader | None = None,
) -> Context:
    """LangChain messages (and the tools bound to the model) as a ctxtax `Context`.

    ``request`` says the list is a prompt about to be sent (its tail is one more call's input).
    ``reader`` (a `Reader` kept between calls) reuses the messages it read before.
    """
    originals = list(messages)
    reader = reader or Reader()
    return Context(
        messages=reader.messages(originals),
        tools=reader.tools(tools),
        source_format=FORMAT,
        model=model,
        request=request,
        raw=originals,
    )


def _block(part: Part) -> Any:
    if part.raw is not None and not isinstance(part.raw, BaseMessage):
        return part.raw
    if part.kind == "reasoning":
        return {"type": "reasoning", "reasoning": part.text}
    return {"type": "text", "text": part.text}


def _content(parts: Sequence[Part], shape: str) -> str | list[Any]:
    if shape == "str" and all(p.kind == "text" for p in parts):
        return "\n".join(p.text for p in parts)
    return [_block(p) for p in parts]


def _tool_calls(parts: Sequence[Part]) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for p in parts:
        if p.kind != "tool_call":
            continue
        if isinstance(p.raw, dict) and _call_text(p.raw.get("args", {})) == p.text:
            calls.append(p.raw)
            continue
        try:
            args = json.loads(p.text) if p.text else {}
        except ValueError:
            args = {"input": p.text}
        calls.append({"name": p.tool_name or "", "args": args, "id": p.tool_call_id})
        calls[-1]["type"] = "tool_call"
    return calls


def _fresh(message: Message) -> BaseMessage:
    """A message built from nothing (no original): by role."""
    shape = str(message.meta.get("content_shape", "str"))
    if message.role == "tool":
        result = message.parts[0] if message.parts else Part(kind="tool_result")
        return ToolMessage(
            content=_content([Part(kind="text", text=result.text), *result.children], shape),
            tool_call_id=result.tool_call_id or "",
            status="error" if result.is_error else "success",
            id=message.id,
        )
    body = [p for p in message.parts if p.kind != "tool_call"]
    content = _content(body, shape)
    if message.role == "assistant":
        return AIMessage(content=content, tool_calls=_tool_calls(message.parts), id=message.id)
    if message.role in {"system", "developer"}:
        return SystemMessage(content=content, id=message.id)
    return HumanMessage(content=content, id=message.id)


def write_message(message: Message, original: BaseMessage | None = None) -> BaseMessage:
    """One ctxtax `Message` as a LangChain message: the original object when no edit touched it,
    else the original with its new content (``model_copy``), else a new message by role."""
    if isinstance(message.raw, BaseMessage):
        return message.raw
    if original is None:
        return _fresh(message)
    shape = "str" if isinstance(original.content, str) else "list"
    update: dict[str, Any] = {}
    if isinstance(original, ToolMessage) or message.role == "tool":
        result = next((p for p in message.parts if p.kind == "tool_result"), None)
        if result is not None:
            if shape == "str" and not result.children:
                update["content"] = result.text
            else:
                body = [Part(kind="text", text=result.text)] if result.text else []
                update["content"] = [
                    *(_block(p) for p in body),
                    *(_block(c) for c in result.children),
                ]
    else:
        body = [p for p in message.parts if p.kind != "tool_call"]
        update["content"] = _content(body, shape)
        if isinstance(original, AIMessage):
            calls = _tool_calls(message.parts)
            if calls != original.tool_calls:
                update["tool_calls"] = calls
    return original.model_copy(update=update)


def from_context(ctx: Context, reader: Reader | None = None) -> list[BaseMessage]:
    """The context as LangChain messages: unedited messages are the very objects read.

    With the ``reader`` that read them, an edited message written before is written once."""
    out = write_messages(ctx.messages, ctx.raw, reader)
    if reader is not None and len(reader.written) > 2 * len(ctx.messages) + 64:
        alive = {id(m) for m in ctx.messages}
        reader.written = {k: v for k, v in reader.written.items() if k in alive}
    return out


def write_messages(
    messages: Sequence[Message], originals: Any, reader: Reader | None = None
) -> list[BaseMessage]:
    """`from_context` for some messages of a context (``originals``: its ``raw``, the list of
    LangChain messages it was read from)."""
    originals = originals if isinstance(originals, list) else []
    written = reader.written if reader is not None else {}
    out: list[BaseMessage] = []
    for message in messages:
        raw = message.raw
        if isinstance(raw, BaseMessage):
            out.append(raw)
            continue
        kept = written.get(id(message))
        if kept is not None and kept[0] is message:
            out.append(kept[1])
            continue
        index = message.meta.get("lc_index")
        original = (
            originals[index] if isinstance(index, int) and 0 <= index < len(originals) else None
        )
        out.append(write_message(message, original if isinstance(original, BaseMessage) else None))
        if reader is not None:
            written[id(message)] = (message, out[-1])
    return out


__all__ = [
    "FORMAT",
    "Reader",
    "from_context",
    "read_message",
    "read_tools",
    "to_context",
    "write_message",
    "write_messages",
]
