"""Codex CLI rollouts: ``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``, one context per file.

Each line is ``{timestamp, type, payload}`` with ``type`` one of:

- ``session_meta``: the session id (the title), cwd, CLI version. ``base_instructions.text``
  (newer CLIs) is the prompt Codex sends as the Responses API ``instructions``: it becomes a leading
  ``system`` message with ``meta["codex"] = "instructions"``. The older ``instructions`` field holds
  the *user* instructions (AGENTS.md), which Codex sends as a user message that the rollout records
  too; it becomes a system message only when no recorded message contains it (else the model would
  be counted reading it twice), and is kept in ``Context.meta["user_instructions"]``.
- ``response_item``: a Responses API item. ``message`` (user / assistant / developer / system;
  ``input_text`` / ``output_text`` / ``input_image`` content), ``reasoning`` (summary text,
  ``encrypted`` when only ``encrypted_content`` is there), ``function_call`` /
  ``custom_tool_call`` / ``local_shell_call`` (tool calls), ``web_search_call`` (a server-side
  search, kept as an ``other`` part),
  ``function_call_output`` / ``custom_tool_call_output`` (a ``tool`` message). The assistant items
  of one model turn (reasoning, message, calls) form one assistant message. ``ghost_snapshot``
  items are never sent to the model and are skipped.
- ``event_msg``: UI events, skipped except ``token_count``, whose ``info.last_token_usage`` is the
  usage of the model call that just ended. Codex re-emits identical ``token_count`` events; an event
  whose ``info`` equals the previous one is a repeat. OpenAI ``input_tokens`` include the cached
  ones: ``Usage.input_tokens`` is ``input - cached`` and ``cache_read_tokens`` is ``cached``.
- ``turn_context``: the model and cwd of the next turn (metadata; gives each call its model).
- ``compacted``: the history was replaced. ``replacement_history`` items (or, in older CLIs, the
  ``message`` summary as a user message) are appended and later calls read from there on. A call
  keeps reading the leading system message (``Call.head``) after a compaction.

Rollouts do not record the tool definitions sent with each call, so ``tools`` stays empty.
Rollouts written before the ``{type, payload}`` envelope (a bare ``{id, timestamp, instructions}``
first line, then bare response items and ``{"record_type": "state"}`` lines) are read too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ctxtax._model import Call, Context, Message, Part, Role, Usage
from ctxtax.errors import InputError, MessageError
from ctxtax.formats import openai_chat
from ctxtax.formats._document import Document, Record

NAME = "codex"

_RECORD_TYPES = frozenset(
    {"session_meta", "response_item", "event_msg", "turn_context", "compacted"}
)
_CALL_ITEMS = frozenset({"function_call", "custom_tool_call", "local_shell_call"})
_ASSISTANT_ITEMS = _CALL_ITEMS | {"reasoning", "web_search_call"}
_OUTPUT_ITEMS = frozenset({"function_call_output", "custom_tool_call_output"})
_MESSAGE_ROLES: dict[str, Role] = {
    "user": "user",
    "assistant": "assistant",
    "developer": "developer",
    "system": "system",
}
_ITEM_TYPES = _ASSISTANT_ITEMS | _OUTPUT_ITEMS | {"message"}
_META_KEYS = ("cwd", "cli_version", "originator", "model_provider", "source", "timestamp")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _is_envelope(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") in _RECORD_TYPES
        and isinstance(value.get("payload"), dict)
    )


def _is_legacy_meta(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "type" not in value
        and isinstance(value.get("id"), str)
        and isinstance(value.get("timestamp"), str)
        and ("instructions" in value or "git" in value)
    )


def detect(doc: Document) -> bool:
    """JSONL whose first record is a rollout ``{type, payload}`` envelope, or a legacy meta line."""
    if doc.kind == "text":
        return False
    first = doc.first_value()
    if _is_envelope(first):
        return True
    if not _is_legacy_meta(first):
        return False
    return any(
        isinstance(r.value, dict) and r.value.get("type") in _ITEM_TYPES for r in doc.records[1:6]
    )


def _envelope(record: Record, *, source: str, first: bool) -> tuple[str, dict[str, Any]] | None:
    """(record type, payload) of a line, new or legacy layout; None for lines to skip."""
    value = record.value
    if not isinstance(value, dict):
        raise MessageError(
            f"a rollout line is {type(value).__name__}; expected an object "
            "{timestamp, type, payload}",
            source=source,
            line=record.line,
        )
    kind = value.get("type")
    if "payload" in value:
        payload = value["payload"]
        if kind in _RECORD_TYPES and not isinstance(payload, dict):
            what = f"the payload of a {kind} line is {type(payload).__name__}; expected an object"
            raise MessageError(what, source=source, line=record.line)
        return (kind, payload) if kind in _RECORD_TYPES else None
    if first and _is_legacy_meta(value):
        return "session_meta", value
    if kind in _ITEM_TYPES or kind in {"ghost_snapshot", "compaction", "compaction_summary"}:
        return "response_item", value
    return None


def _usage(info: Any) -> Usage | None:
    last = info.get("last_token_usage") if isinstance(info, dict) else None
    if not isinstance(last, dict):
        return None

    def count(key: str) -> int:
        v = last.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0

    cached = count("cached_input_tokens")
    return Usage(
        input_tokens=max(count("input_tokens") - cached, 0),
        cache_read_tokens=cached,
        output_tokens=count("output_tokens"),
    )


def _history_has(records: list[Record], text: str) -> bool:
    """True when a recorded message contains ``text`` (the legacy user instructions)."""
    for record in records:
        value = record.value if isinstance(record.value, dict) else {}
        item = value.get("payload", value)
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, list) and any(
            isinstance(b, dict) and isinstance(b.get("text"), str) and text in b["text"]
            for b in content
        ):
            return True
    return False


def _meta(record: Record, item_type: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"line": record.line, "codex": item_type}
    value = record.value
    if isinstance(value, dict) and isinstance(value.get("timestamp"), str):
        meta["timestamp"] = value["timestamp"]
    return meta


def _reasoning(payload: dict[str, Any]) -> Part:
    def texts(key: str) -> list[str]:
        blocks = payload.get(key)
        if not isinstance(blocks, list):
            return []
        return [str(b.get("text") or "") for b in blocks if isinstance(b, dict) and b.get("text")]

    text = "\n".join(texts("summary") or texts("content"))
    encrypted = bool(payload.get("encrypted_content")) and not text
    return Part(kind="reasoning", text=text, encrypted=encrypted, raw=payload)


def _assistant_part(payload: dict[str, Any], *, source: str, line: int) -> list[Part]:
    kind = payload["type"]
    if kind == "reasoning":
        return [_reasoning(payload)]
    if kind == "web_search_call":
        action = payload.get("action")
        return [Part(kind="other", text=_dumps(action), tool_name="web_search", raw=payload)]
    if kind == "message":
        msg = openai_chat.read_message(
            {"role": "assistant", "content": payload.get("content")}, index=0, source=source
        )
        return list(msg.parts)
    call_id = next(
        (v for v in (payload.get("call_id"), payload.get("id")) if isinstance(v, str)), None
    )
    name: Any = "local_shell"
    text = _dumps(payload.get("action"))
    if kind != "local_shell_call":
        name = payload.get("name")
        body = payload.get("arguments" if kind == "function_call" else "input")
        if not isinstance(name, str):
            raise MessageError(
                f"a {kind} has no 'name'; expected {{name, call_id, arguments}}",
                source=source,
                line=line,
            )
        text = body if isinstance(body, str) else _dumps(body)
    return [Part(kind="tool_call", text=text, tool_call_id=call_id, tool_name=name, raw=payload)]


def _output_message(
    payload: dict[str, Any], names: dict[str, str], *, source: str, record: Record
) -> Message:
    call_id = payload.get("call_id")
    if not isinstance(call_id, str):
        raise MessageError(
            f"a {payload['type']} has no 'call_id'; expected {{call_id, output}}",
            source=source,
            line=record.line,
        )
    output = payload.get("output")
    is_error = False
    if isinstance(output, dict):  # early CLIs: {content, success}
        is_error = output.get("success") is False
        output = output.get("content")
    if output is None:
        output = ""
    if not isinstance(output, (str, list)):
        raise MessageError(
            f"a {payload['type']} output is {type(output).__name__}; expected a string "
            "or a list of content items",
            source=source,
            line=record.line,
        )
    read = openai_chat.read_message(
        {"role": "tool", "content": output, "tool_call_id": call_id}, index=0, source=source
    )
    result = read.parts[-1].model_copy(
        update={"tool_name": names.get(call_id), "is_error": is_error, "raw": payload}
    )
    return Message(role="tool", parts=(result,), meta=_meta(record, payload["type"]), raw=payload)


def _plain_message(payload: dict[str, Any], *, source: str, record: Record) -> Message:
    role_name = payload.get("role")
    role = _MESSAGE_ROLES.get(role_name) if isinstance(role_name, str) else None
    if role is None:
        raise MessageError(
            f"a message has role {role_name!r}; expected one of: {', '.join(_MESSAGE_ROLES)}",
            source=source,
            line=record.line,
        )
    read = openai_chat.read_message({"role": role, "content": payload.get("content")}, index=0)
    return Message(
        role=role,
        parts=read.parts,
        id=payload.get("id") if isinstance(payload.get("id"), str) else None,
        meta=_meta(record, "message"),
        raw=payload,
    )


@dataclass
class _Builder:
    """Messages and calls of one rollout, built line by line."""

    source: str
    messages: list[Message] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    group: list[tuple[Record, dict[str, Any], list[Part]]] = field(default_factory=list)
    window: int = 0
    head: int = 0
    model: str | None = None

    def close(self) -> None:
        """End the assistant message of the current model turn."""
        if not self.group:
            return
        first, payload, _ = self.group[0]
        meta = _meta(first, payload["type"])
        meta["lines"] = [r.line for r, _, _ in self.group]
        meta["items"] = [p["type"] for _, p, _ in self.group]
        ids = [p.get("id") for _, p, _ in self.group if p["type"] == "message"]
        self.messages.append(
            Message(
                role="assistant",
                parts=tuple(part for _, _, parts in self.group for part in parts),
                id=ids[0] if ids and isinstance(ids[0], str) else None,
                meta=meta,
                raw=[p for _, p, _ in self.group],
            )
        )
        self.group = []

    def item(self, record: Record, payload: dict[str, Any], *, live: bool) -> None:
        """One response item; ``live`` items are model output (replacement history is not)."""
        kind = payload.get("type")
        try:
            if kind in _ASSISTANT_ITEMS or (
                kind == "message" and payload.get("role") == "assistant"
            ):
                parts = _assistant_part(payload, source=self.source, line=record.line)
                for p in parts:
                    if p.kind == "tool_call" and p.tool_call_id and p.tool_name:
                        self.names[p.tool_call_id] = p.tool_name
                if live and not self.group:
                    index = len(self.messages)
                    self.calls.append(
                        Call(
                            start=self.window,
                            end=index,
                            output=index,
                            head=self.head,
                            model=self.model,
                        )
                    )
                self.group.append((record, payload, parts))
                return
            if kind in _OUTPUT_ITEMS:
                self.close()
                self.messages.append(
                    _output_message(payload, self.names, source=self.source, record=record)
                )
            elif kind == "message":
                self.close()
                self.messages.append(_plain_message(payload, source=self.source, record=record))
            elif kind in {"compaction", "compaction_summary"}:
                self.close()
                part = Part(kind="other", encrypted=True, raw=payload)
                meta = _meta(record, "compaction")
                self.messages.append(Message(role="user", parts=(part,), meta=meta, raw=payload))
        except InputError as exc:
            if exc.line is not None:
                raise
            raise MessageError(exc.what, source=self.source, line=record.line) from None

    def usage(self, usage: Usage) -> None:
        """Attach a model call's usage to the latest call, or record a call with no output."""
        self.close()
        if self.calls and self.calls[-1].usage is None:
            self.calls[-1] = self.calls[-1].model_copy(update={"usage": usage})
        else:
            end = len(self.messages)
            self.calls.append(
                Call(
                    start=self.window,
                    end=end,
                    output=None,
                    head=self.head,
                    model=self.model,
                    usage=usage,
                )
            )

    def compacted(self, record: Record, payload: dict[str, Any]) -> None:
        """Replace the history later calls read."""
        self.close()
        start = len(self.messages)
        history = payload.get("replacement_history")
        if isinstance(history, list) and history:
            for item in history:
                if not isinstance(item, dict):
                    what = "a replacement_history item is not an object"
                    raise MessageError(what, source=self.source, line=record.line)
                self.item(record, item, live=False)
            self.close()
            self.messages[start:] = [
                m.model_copy(update={"meta": {**m.meta, "codex_compacted": True}})
                for m in self.messages[start:]
            ]
        elif isinstance(payload.get("message"), str):
            part = Part(kind="text", text=payload["message"])
            meta = _meta(record, "compacted")
            self.messages.append(Message(role="user", parts=(part,), meta=meta, raw=payload))
        self.window = start


def read(doc: Document) -> list[Context]:
    """The rollout as one context."""
    records = doc.records
    builder = _Builder(source=doc.source)
    title: str | None = None
    first_model: str | None = None
    meta: dict[str, Any] = {}
    previous_info: Any = None
    for position, record in enumerate(records):
        envelope = _envelope(record, source=doc.source, first=position == 0)
        if envelope is None:
            continue
        kind, payload = envelope
        if kind == "session_meta":
            if title is not None:
                continue  # a resumed or forked rollout repeats its parent's meta
            title = payload.get("id") if isinstance(payload.get("id"), str) else None
            meta.update({k: payload[k] for k in _META_KEYS if k in payload})
            base = payload.get("base_instructions")
            text = base.get("text") if isinstance(base, dict) else base
            legacy = payload.get("instructions")
            if isinstance(legacy, str) and legacy:
                meta["user_instructions"] = legacy
                if not isinstance(text, str) and not _history_has(records, legacy):
                    text = legacy
            if isinstance(text, str) and text:
                system = Message(
                    role="system",
                    parts=(Part(kind="text", text=text),),
                    meta={"line": record.line, "codex": "instructions"},
                    raw=base if isinstance(base, dict) else text,
                )
                builder.messages.append(system)
                builder.head = len(builder.messages)
        elif kind == "turn_context":
            model = payload.get("model")
            if isinstance(model, str):
                builder.model = model
                first_model = first_model or model
        elif kind == "response_item":
            builder.item(record, payload, live=True)
        elif kind == "compacted":
            builder.compacted(record, payload)
        elif kind == "event_msg" and payload.get("type") == "token_count":
            info = payload.get("info")
            if info is None or info == previous_info:
                continue
            previous_info = info
            usage = _usage(info)
            if usage is not None:
                builder.usage(usage)
            if isinstance(info, dict) and isinstance(info.get("total_token_usage"), dict):
                meta["total_token_usage"] = info["total_token_usage"]
    builder.close()
    # Calls before the first turn_context carry no model; the session has one when any was seen.
    calls = tuple(
        c if c.model is not None else c.model_copy(update={"model": first_model})
        for c in builder.calls
    )
    return [
        Context(
            messages=tuple(builder.messages),
            source_format=NAME,
            source=doc.source,
            title=title or (doc.path.stem if doc.path is not None else None),
            model=first_model,
            calls=calls,
            meta=meta,
        )
    ]


__all__ = ["NAME", "detect", "read"]
