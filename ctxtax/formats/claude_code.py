"""Claude Code session logs: ``~/.claude/projects/<project>/<session>.jsonl``.

One JSON record per line. The records that make the prompt are ``user`` and ``assistant`` records
(``message`` is an Anthropic message) and ``system`` records of subtype ``local_command`` (the
slash-command lines older versions logged as user records; they reach the model as user text).
Everything else (``progress``, ``file-history-snapshot``, ``queue-operation``, ``summary``, other
``system`` subtypes such as ``stop_hook_summary`` / ``turn_duration``) is UI bookkeeping and
skipped, as are unknown record types.

The conversation is rebuilt as Claude Code sent it:

- Claude Code writes one assistant record per content block, each a copy of the same API
  response (same ``message.id`` + ``requestId``) with the same ``usage``. The blocks of one
  response are merged into one assistant message (exact repeats dropped) and the response is one
  `Call`: input and cache counts from the records (they are equal), ``output_tokens`` the largest
  seen (streamed records carry a partial count; the last record of a response carries the final
  one when the log has it).
- Consecutive user records (parallel tool results, interruptions, injected reminders) are merged
  into one user message, as the API request does. Tool results that land between two records of
  the same response (streaming tool execution) join the user message after it.
- ``compact_boundary`` + ``isCompactSummary``: later calls read from the summary message on;
  earlier messages stay in the context.
- ``isApiErrorMessage`` records are dropped (the model never wrote them and they are not sent
  back); other ``<synthetic>`` assistant messages are kept as messages but are not model calls.
- Sidechain records (``isSidechain``) are subagent conversations, one context each (grouped by
  ``agentId``, else by their ``parentUuid`` chain). Reading ``<session>.jsonl`` from a path also
  reads ``<session>/subagents/agent-*.jsonl``.

Claude Code logs neither the system prompt nor the tool definitions: ``tools`` is empty.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxtax._model import Call, Context, Message, Part, Role, Usage
from ctxtax.errors import InputError, MessageError, ParseError
from ctxtax.formats._document import Document, Record, read_path
from ctxtax.formats._usage import read_usage
from ctxtax.formats.anthropic import fill_tool_names, read_blocks

NAME = "claude_code"

_MESSAGE_TYPES = frozenset({"user", "assistant"})
_LOG_TYPES = frozenset(
    {
        "user",
        "assistant",
        "progress",
        "system",
        "file-history-snapshot",
        "queue-operation",
        "summary",
    }
)
_LOG_KEYS = ("sessionId", "uuid", "parentUuid", "isSidechain", "leafUuid", "messageId")
_PROMPT_SYSTEM_SUBTYPES = frozenset({"local_command"})
_SYNTHETIC = "<synthetic>"


def _records(doc: Document) -> list[Record]:
    value = doc.value
    if doc.kind == "jsonl":
        return doc.records
    if isinstance(value, list):
        return [Record(i + 1, v) for i, v in enumerate(value)]
    return [Record(1, value)]


def _is_log_record(value: Any) -> bool:
    if not isinstance(value, dict) or value.get("type") not in _LOG_TYPES:
        return False
    if value.get("type") in _MESSAGE_TYPES and not isinstance(value.get("message"), dict):
        return False
    return any(k in value for k in _LOG_KEYS)


def detect(doc: Document) -> bool:
    """Records with a Claude Code ``type`` and session keys (``sessionId``, ``uuid``, ...)."""
    if doc.kind == "text":
        return False
    head = _records(doc)[:20]
    return any(_is_log_record(r.value) for r in head) and any(
        isinstance(r.value, dict) and r.value.get("type") in _MESSAGE_TYPES for r in _records(doc)
    )


@dataclass
class _Msg:
    role: Role
    blocks: list[Any] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    records: list[dict[str, Any]] = field(default_factory=list)
    string_content: bool = False
    msg_id: str | None = None
    compact_summary: bool = False


@dataclass
class _Response:
    index: int
    start: int
    model: str | None
    usage: Usage | None


@dataclass
class _Conversation:
    key: str
    sidechain: bool
    agent_id: str | None = None
    session_id: str | None = None
    messages: list[_Msg] = field(default_factory=list)
    responses: dict[tuple[str, str | None], _Response] = field(default_factory=dict)
    window: int = 0
    boundary: bool = False
    compactions: int = 0
    info: dict[str, Any] = field(default_factory=dict)


def _record_meta(rec: dict[str, Any], line: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"line": line}
    for key in ("uuid", "timestamp", "requestId", "isMeta"):
        if rec.get(key) is not None:
            meta[key] = rec[key]
    return meta


def _parts(content: Any, *, source: str, line: int, index: int) -> tuple[Part, ...]:
    try:
        return read_blocks(content, source=source, index=index)
    except InputError as exc:
        raise MessageError(exc.what, source=source, line=line, message_index=index) from None


def _add_user(
    conv: _Conversation, content: Any, rec: dict[str, Any], line: int, source: str
) -> None:
    summary = bool(rec.get("isCompactSummary"))
    last = conv.messages[-1] if conv.messages else None
    if last is None or last.role != "user" or conv.boundary or summary:
        last = _Msg(role="user", string_content=isinstance(content, str))
        conv.messages.append(last)
        if conv.boundary or summary:
            conv.window = len(conv.messages) - 1
            conv.boundary = False
            last.compact_summary = summary
    else:
        last.string_content = False
    index = len(conv.messages) - 1
    last.parts.extend(_parts(content, source=source, line=line, index=index))
    if isinstance(content, str):
        if content:
            last.blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        last.blocks.extend(content)
    meta = _record_meta(rec, line)
    if rec.get("type") == "system":
        meta["system_subtype"] = rec.get("subtype")
    last.records.append(meta)


def _add_assistant(conv: _Conversation, rec: dict[str, Any], line: int, source: str) -> None:
    message: dict[str, Any] = rec["message"]
    model = message.get("model") if isinstance(message.get("model"), str) else None
    msg_id = message.get("id") if isinstance(message.get("id"), str) else None
    request_id = rec.get("requestId") if isinstance(rec.get("requestId"), str) else None
    key = (msg_id, request_id) if msg_id else (f"uuid:{rec.get('uuid') or line}", None)
    usage = read_usage(message.get("usage"))
    response = conv.responses.get(key)
    if response is None:
        conv.messages.append(_Msg(role="assistant", msg_id=msg_id))
        index = len(conv.messages) - 1
        if conv.boundary:
            conv.window, conv.boundary = index, False
        synthetic = model == _SYNTHETIC
        response = _Response(index, conv.window, model, None if synthetic else usage)
        conv.responses[key] = response
    elif usage is not None and response.usage is not None:
        output_tokens = max(response.usage.output_tokens, usage.output_tokens)
        response.usage = response.usage.model_copy(update={"output_tokens": output_tokens})
    msg = conv.messages[response.index]
    content = message.get("content")
    blocks = (
        ([{"type": "text", "text": content}] if content else [])
        if isinstance(content, str)
        else content
    )
    parts = _parts(content, source=source, line=line, index=response.index)
    if isinstance(blocks, list) and len(blocks) == len(parts):
        for block, part in zip(blocks, parts, strict=True):
            digest = json.dumps(block, sort_keys=True, ensure_ascii=False)
            if digest not in msg.seen:
                msg.seen.add(digest)
                msg.blocks.append(block)
                msg.parts.append(part)
    else:
        msg.parts.extend(parts)
    meta = _record_meta(rec, line)
    if model is not None:
        meta["model"] = model
    msg.records.append(meta)


def _group(rec: dict[str, Any], groups: dict[str, str], last: str | None) -> str:
    agent = rec.get("agentId")
    if isinstance(agent, str) and agent:
        return f"agent:{agent}"
    parent = rec.get("parentUuid")
    if isinstance(parent, str) and parent in groups:
        return groups[parent]
    if parent is None or last is None:
        return f"chain:{rec.get('uuid')}"
    return last


def _conversations(records: list[Record], source: str) -> list[_Conversation]:
    convs: dict[str, _Conversation] = {}
    groups: dict[str, str] = {}
    seen_uuids: set[str] = set()
    last_side: str | None = None
    for record in records:
        rec = record.value
        if not isinstance(rec, dict):
            raise ParseError(
                f"a record is {type(rec).__name__}; expected a JSON object",
                source=source,
                line=record.line,
            )
        uuid = rec.get("uuid")
        if isinstance(uuid, str):
            if uuid in seen_uuids:
                continue
            seen_uuids.add(uuid)
        if rec.get("isSidechain") is True:
            key = _group(rec, groups, last_side)
            last_side = key
            if isinstance(uuid, str):
                groups[uuid] = key
        else:
            key = "main"
        kind = rec.get("type")
        prompt_system = kind == "system" and rec.get("subtype") in _PROMPT_SYSTEM_SUBTYPES
        boundary = kind == "system" and rec.get("subtype") == "compact_boundary"
        if kind not in _MESSAGE_TYPES and not prompt_system and not boundary:
            continue
        conv = convs.get(key)
        if conv is None:
            agent = rec.get("agentId") if isinstance(rec.get("agentId"), str) else None
            conv = convs[key] = _Conversation(key, key != "main", agent_id=agent)
        if conv.session_id is None and isinstance(rec.get("sessionId"), str):
            conv.session_id = rec["sessionId"]
        for name in ("version", "cwd", "gitBranch"):
            if name not in conv.info and isinstance(rec.get(name), str):
                conv.info[name] = rec[name]
        if boundary:
            conv.boundary = True
            conv.compactions += 1
            continue
        if prompt_system:
            _add_user(conv, rec.get("content") or "", rec, record.line, source)
            continue
        message = rec.get("message")
        if not isinstance(message, dict):
            raise MessageError(
                f"a {kind} record has no 'message' object; expected an Anthropic message",
                source=source,
                line=record.line,
            )
        if kind == "user":
            _add_user(conv, message.get("content"), rec, record.line, source)
        elif not rec.get("isApiErrorMessage"):
            _add_assistant(conv, rec, record.line, source)
    return [c for c in convs.values() if c.messages]


def _message(msg: _Msg) -> Message:
    first = msg.records[0] if msg.records else {}
    meta: dict[str, Any] = {k: v for k, v in first.items() if k != "model"}
    meta["content_shape"] = "str" if msg.string_content else "list"
    if len(msg.records) > 1:
        meta["records"] = msg.records
    if msg.compact_summary:
        meta["compact_summary"] = True
    if msg.role == "assistant" and first.get("model"):
        meta["model"] = first["model"]
    content: Any = msg.blocks
    if msg.string_content and len(msg.blocks) <= 1:
        content = msg.blocks[0]["text"] if msg.blocks else ""
    return Message(
        role=msg.role,
        parts=tuple(msg.parts),
        id=msg.msg_id,
        meta=meta,
        raw={"role": msg.role, "content": content},
    )


def _context(conv: _Conversation, *, source: str, title: str | None) -> Context:
    calls = tuple(
        Call(
            start=r.start,
            end=r.index,
            output=r.index,
            model=r.model,
            usage=r.usage,
        )
        for r in sorted(conv.responses.values(), key=lambda r: r.index)
        if r.model != _SYNTHETIC
    )
    models = Counter(c.model for c in calls if c.model)
    meta: dict[str, Any] = {"sidechain": conv.sidechain, "compactions": conv.compactions}
    if conv.session_id:
        meta["session_id"] = conv.session_id
    if conv.agent_id:
        meta["agent_id"] = conv.agent_id
    meta.update(conv.info)
    return Context(
        messages=fill_tool_names([_message(m) for m in conv.messages]),
        source_format=NAME,
        source=source,
        title=title,
        model=models.most_common(1)[0][0] if models else None,
        calls=calls,
        meta=meta,
    )


def _is_agent_file(path: Path, agent_id: str | None) -> bool:
    stem = path.stem
    return stem.startswith("agent-") and agent_id in {None, stem.removeprefix("agent-")}


def _read_records(
    records: list[Record], *, source: str, path: Path | None, session: str | None
) -> list[Context]:
    contexts: list[Context] = []
    side = 0
    for conv in _conversations(records, source):
        sid = session or conv.session_id or (path.stem if path else None)
        if not conv.sidechain:
            title = sid
        elif path is not None and _is_agent_file(path, conv.agent_id):
            title = f"{sid} subagent {path.stem}"
        else:
            side += 1
            title = f"{sid} sidechain {conv.agent_id or side}"
        contexts.append(_context(conv, source=source, title=title))
    return contexts


def read(doc: Document) -> list[Context]:
    """The main conversation, each sidechain, and the subagent files next to the session."""
    contexts = _read_records(_records(doc), source=doc.source, path=doc.path, session=None)
    path = doc.path
    if path is not None and not path.stem.startswith("agent-"):
        folder = path.parent / path.stem / "subagents"
        session = contexts[0].meta.get("session_id") if contexts else None
        for sub in sorted(folder.glob("agent-*.jsonl")) if folder.is_dir() else []:
            if sub.stat().st_size == 0:
                continue
            sub_doc = read_path(sub)
            contexts.extend(
                _read_records(
                    _records(sub_doc),
                    source=sub_doc.source,
                    path=sub,
                    session=session or path.stem,
                )
            )
    return contexts


__all__ = ["NAME", "detect", "read"]
