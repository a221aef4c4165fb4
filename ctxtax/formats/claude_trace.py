"""claude-trace logs: one recorded HTTP request/response pair per JSONL line.

A record is ``{"request": {"url", "method", "headers", "body"}, "response": {"status_code",
"headers", "body" | "body_raw"}, "logged_at"}``. ``request.body`` is an Anthropic Messages request;
the response is a JSON message in ``body`` or, for streamed calls, the SSE text in ``body_raw``
(``message_start`` / ``content_block_*`` / ``message_delta`` events), which is replayed into the
assistant reply and its ``usage``. Requests without ``messages`` (other endpoints) are skipped.

Every request re-sends the history, so requests are grouped into threads: same model, same
system prompt, and messages that extend (or repeat) the previous request of the thread, compared
without ``cache_control`` markers (Claude Code moves them from call to call). A thread is one
context: the longest request's messages plus the last reply, with one `Call` per request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ctxtax._model import Call, Context, Message
from ctxtax.errors import InputError, MessageError, ParseError
from ctxtax.formats._document import Document, Record
from ctxtax.formats._usage import read_usage
from ctxtax.formats.anthropic import fill_tool_names, read_body, read_message

NAME = "claude_trace"


def _records(doc: Document) -> list[Record]:
    if doc.kind != "jsonl" and isinstance(doc.value, list):
        return [Record(i + 1, v) for i, v in enumerate(doc.value)]
    return doc.records


def _is_pair(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    request, response = value.get("request"), value.get("response")
    return (
        isinstance(request, dict)
        and isinstance(response, dict)
        and ("url" in request or "body" in request)
    )


def detect(doc: Document) -> bool:
    """Records holding a ``request`` (with ``url`` / ``body``) and a ``response``."""
    if doc.kind == "text":
        return False
    head = [r.value for r in _records(doc)[:10]]
    return bool(head) and any(_is_pair(v) for v in head)


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_control(v) for v in value]
    return value


def _norm(value: Any) -> str:
    return json.dumps(_strip_cache_control(value), sort_keys=True, ensure_ascii=False)


def _finish_block(block: dict[str, Any], partial: str | None, where: tuple[str, int]) -> None:
    if partial is None:
        return
    try:
        block["input"] = json.loads(partial) if partial.strip() else {}
    except json.JSONDecodeError:
        raise ParseError(
            f"tool input of a streamed {block.get('type')} block is not valid JSON",
            source=where[0],
            line=where[1],
        ) from None


def _replay_sse(text: str, where: tuple[str, int]) -> dict[str, Any] | None:
    """The assistant message an SSE stream carried, with its final ``usage``."""
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}
    partial: dict[int, str] = {}
    usage: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:])
        except json.JSONDecodeError:
            raise ParseError(
                "malformed SSE data line in response body_raw; expected JSON events",
                source=where[0],
                line=where[1],
            ) from None
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        index = event.get("index")
        if kind == "message_start" and isinstance(event.get("message"), dict):
            message = dict(event["message"])
            if isinstance(message.get("usage"), dict):
                usage.update(message["usage"])
        elif kind == "content_block_start" and isinstance(index, int):
            block = event.get("content_block")
            blocks[index] = dict(block) if isinstance(block, dict) else {}
        elif kind == "content_block_delta" and isinstance(index, int) and index in blocks:
            raw_delta = event.get("delta")
            delta: dict[str, Any] = raw_delta if isinstance(raw_delta, dict) else {}
            block = blocks[index]
            dtype = delta.get("type")
            if dtype == "text_delta":
                block["text"] = str(block.get("text") or "") + str(delta.get("text") or "")
            elif dtype == "input_json_delta":
                partial[index] = partial.get(index, "") + str(delta.get("partial_json") or "")
            elif dtype == "thinking_delta":
                block["thinking"] = str(block.get("thinking") or "") + str(
                    delta.get("thinking") or ""
                )
            elif dtype == "signature_delta":
                block["signature"] = str(delta.get("signature") or "")
        elif kind == "message_delta":
            if isinstance(event.get("usage"), dict):
                usage.update({k: v for k, v in event["usage"].items() if v is not None})
            end_delta = event.get("delta")
            if message is not None and isinstance(end_delta, dict):
                message["stop_reason"] = end_delta.get("stop_reason")
    if message is None:
        return None
    for index, block in blocks.items():
        _finish_block(block, partial.get(index), where)
    message["content"] = [blocks[i] for i in sorted(blocks)]
    message["usage"] = usage
    return message


def _reply(response: dict[str, Any], where: tuple[str, int]) -> dict[str, Any] | None:
    body = response.get("body")
    if isinstance(body, dict) and body.get("type") == "message" and body.get("role"):
        return body
    raw = response.get("body_raw")
    if isinstance(raw, str) and "message_start" in raw:
        return _replay_sse(raw, where)
    return None


@dataclass
class _Request:
    line: int
    body: dict[str, Any]
    model: str | None
    context: Context
    norm: list[str]
    reply: dict[str, Any] | None
    timestamp: Any = None


@dataclass
class _Thread:
    key: tuple[str | None, str]
    requests: list[_Request] = field(default_factory=list)


def _extends(longer: list[str], shorter: list[str]) -> bool:
    return len(longer) >= len(shorter) and longer[: len(shorter)] == shorter


def _read_request(record: Record, source: str) -> _Request | None:
    value = record.value
    if not isinstance(value, dict):
        raise ParseError(
            f"a record is {type(value).__name__}; expected a request/response object",
            source=source,
            line=record.line,
        )
    request, response = value.get("request"), value.get("response")
    if not isinstance(request, dict):
        return None
    body = request.get("body")
    if not isinstance(body, dict) or "messages" not in body:
        return None
    try:
        context = read_body(body, source=source)
    except InputError as exc:
        raise MessageError(
            exc.what, source=source, line=record.line, message_index=exc.message_index
        ) from None
    where = (source, record.line)
    reply = _reply(response, where) if isinstance(response, dict) else None
    messages = body["messages"]
    return _Request(
        line=record.line,
        body=body,
        model=context.model,
        context=context,
        norm=[_norm(m) for m in messages],
        reply=reply,
        timestamp=request.get("timestamp"),
    )


def _thread_context(thread: _Thread, number: int, source: str) -> Context:
    last = thread.requests[-1]
    messages: list[Message] = list(last.context.messages)
    offset = len(messages) - len(last.norm)
    reply_message: Message | None = None
    if last.reply is not None:
        raw = {"role": "assistant", "content": last.reply.get("content")}
        reply_message = read_message(raw, index=len(messages), source=source)
        reply_message = reply_message.model_copy(
            update={"id": last.reply.get("id") if isinstance(last.reply.get("id"), str) else None}
        )
        messages.append(reply_message)
    calls: list[Call] = []
    for req in thread.requests:
        end = offset + len(req.norm)
        output: int | None = None
        if req is last:
            output = end if reply_message is not None else None
        elif req.reply is not None and len(last.norm) > len(req.norm):
            reply_norm = _norm({"role": "assistant", "content": req.reply.get("content")})
            output = end if last.norm[len(req.norm)] == reply_norm else None
        usage = read_usage(req.reply.get("usage")) if req.reply is not None else None
        calls.append(Call(start=0, end=end, output=output, model=req.model, usage=usage))
    meta: dict[str, Any] = {
        "lines": [r.line for r in thread.requests],
        "request_timestamps": [r.timestamp for r in thread.requests],
    }
    return Context(
        messages=fill_tool_names(messages),
        tools=last.context.tools,
        source_format=NAME,
        source=source,
        title=f"{last.model} thread {number}",
        model=last.model,
        calls=tuple(calls),
        meta=meta,
        raw=last.body,
    )


def read(doc: Document) -> list[Context]:
    """One context per thread of requests that re-send the same growing history."""
    threads: list[_Thread] = []
    for record in _records(doc):
        req = _read_request(record, doc.source)
        if req is None:
            continue
        key = (req.model, _norm(req.body.get("system")))
        target = next(
            (
                t
                for t in reversed(threads)
                if t.key == key and _extends(req.norm, t.requests[-1].norm)
            ),
            None,
        )
        if target is None:
            target = _Thread(key)
            threads.append(target)
        target.requests.append(req)
    return [_thread_context(t, n, doc.source) for n, t in enumerate(threads, start=1)]


__all__ = ["NAME", "detect", "read"]
