"""OpenHands event streams: a JSON list of events, or evaluation records holding a ``history``.

Shapes read: a saved trajectory ``[{id, timestamp, source, action | observation, message, args |
content + extras, cause, tool_call_metadata{function_name, tool_call_id, model_response}}]`` (title
= the file stem); JSONL (or one JSON object) of evaluation records ``{instance_id | issue,
instruction, history, metrics, metadata{llm_config}}``, one context each (``history`` may also hold
``[action, observation]`` pairs); and the flat events of mid-2024 (no ``source``/``id``).

The messages are rebuilt as OpenHands' ``ConversationMemory`` builds what it sends: the ``system``
action (its ``args.tools`` are the OpenAI tools), user messages, ONE assistant message per model
response (its content and all its ``tool_calls``; actions sharing a response id share it), added
once every call has its observation, then one ``role: tool`` message per call. The text of
observations and of actions without tool metadata follows ``ConversationMemory``'s templates, see
`_openhands_text` (command output with its working directory / exit-code lines, error markers,
``llm_config.max_message_chars`` truncation, a blank line before a user message that follows
another). ``finish`` is an assistant text message (thought, then response content), as OpenHands
sends it. One `Call` per model response, with its ``usage`` (`_usage.read_usage`); agent messages
without a response are calls without usage; a response whose calls never all got results
(OpenHands drops it) is a call with ``output=None``. ``metrics`` go to ``Context.meta``.

Approximated (``meta["approximate"]``): recall observations (workspace context, microagent
knowledge), which OpenHands renders with Jinja templates; tool calls rebuilt from ``function_name``
and ``args`` when ``model_response`` is missing; agent actions without tool metadata (non-function-
calling agents, the mid-2024 format), rendered as CodeAct ``<execute_bash>`` text with
``OBSERVATION:`` results. Not rebuilt: condensers, images, a system prompt or examples the stream
does not record, and the text form of tools under non-native function calling.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ctxtax._model import Call, Context, Message, ToolSpec, Usage
from ctxtax.errors import InputError, MessageError
from ctxtax.formats._document import Document
from ctxtax.formats._openhands_text import (
    as_dict,
    as_str,
    codeact_action_text,
    observation_text,
    truncate_content,
    with_leading_blank_line,
)
from ctxtax.formats._usage import read_usage
from ctxtax.formats.openai_chat import read_message, read_tools

NAME = "openhands"

# fmt: off
_TOOL_ACTIONS = frozenset({"run", "run_ipython", "edit", "read", "browse", "browse_interactive",
                           "think", "delegate", "call_tool_mcp", "task_tracking"})
_BOOKKEEPING_ARGS = frozenset({
    "thought", "blocking", "hidden", "is_static", "cwd", "confirmation_state", "impl_source",
    "translated_ipython_code", "kernel_init_code", "security_risk", "is_confirmed", "action_risk",
    "keep_prompt", "content", "start", "end",
})
# fmt: on

_Rec = tuple[str | None, Usage | None]
"""The model and usage of one model call."""


def _is_event(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and "role" not in obj
        and (isinstance(obj.get("action"), str) or isinstance(obj.get("observation"), str))
    )


def _is_event_list(value: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    head = [e for item in value[:20] for e in (item if isinstance(item, list) else [item])]
    return bool(head) and all(_is_event(e) for e in head)


def detect(doc: Document) -> bool:
    """A list of events, or a record whose ``history`` is a list of events."""
    value = doc.first_value()
    if doc.kind == "text":
        return False
    if isinstance(value, dict):
        return _is_event_list(value.get("history"))
    return _is_event_list(value)


def _key(value: Any, default: int | None) -> int | str | None:
    return value if isinstance(value, (int, str)) else default


def _metadata(event: dict[str, Any] | None) -> dict[str, Any] | None:
    meta = event.get("tool_call_metadata") if event else None
    return meta if isinstance(meta, dict) and isinstance(meta.get("tool_call_id"), str) else None


def _response(meta: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    response = as_dict(meta).get("model_response")
    choices = as_dict(response).get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    message = as_dict(first).get("message")
    if isinstance(response, dict) and isinstance(message, dict):
        return response, message
    return None


@dataclass
class _Pending:
    message: Message
    call_ids: list[str]
    end: int
    rec: _Rec


@dataclass
class _Builder:
    source: str
    line: int | None
    max_chars: int | None
    default_model: str | None
    messages: list[Message] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    tools: tuple[ToolSpec, ...] = ()
    model: str | None = None
    pending: dict[str, _Pending] = field(default_factory=dict)
    results: dict[str, Message] = field(default_factory=dict)
    actions: dict[int | str | None, dict[str, Any]] = field(default_factory=dict)
    knowledge_seen: set[str] = field(default_factory=set)
    agent_acted: bool = False

    def message(self, msg: dict[str, Any], raw: Any, index: int, **meta: Any) -> Message:
        try:
            read = read_message(msg, index=len(self.messages), source=self.source)
        except InputError as exc:
            what, at = f"event {index}: {exc.what}", exc.message_index
            raise type(exc)(what, source=self.source, line=self.line, message_index=at) from None
        extra = {"event": index, "line": self.line, **meta}
        extra = {k: v for k, v in extra.items() if v is not None and v is not False}
        if isinstance(raw, dict) and "timestamp" in raw:
            extra["timestamp"] = raw["timestamp"]
        return read.model_copy(update={"raw": raw, "meta": {**read.meta, **extra}})

    def add(self, message: Message, call: _Rec | None = None) -> None:
        if call is not None:
            end, (model, usage) = len(self.messages), call
            model = model or self.default_model
            self.calls.append(Call(start=0, end=end, output=end, model=model, usage=usage))
        self.messages.append(message)

    def say(
        self, role: str, text: str, event: Any, index: int, call: _Rec | None = None, **meta: Any
    ) -> None:
        self.add(self.message({"role": role, "content": text}, event, index, **meta), call)

    def rec(self, response: dict[str, Any] | None) -> _Rec:
        if response is None:
            return None, None
        model = response.get("model") if isinstance(response.get("model"), str) else None
        self.model = self.model or model
        return model, read_usage(response.get("usage"))

    def action(self, event: dict[str, Any], index: int) -> None:
        kind, source = event["action"], event.get("source")
        args = event["args"] if isinstance(event.get("args"), dict) else event
        text = as_str(args.get("content")) or as_str(event.get("content"))
        found = _response(as_dict(event.get("tool_call_metadata")))
        if kind == "system":
            tools = args.get("tools", event.get("tools"))
            if tools is not None:
                self.tools = read_tools(tools, source=self.source)
            self.say("system", text, event, index)
        elif kind == "message":
            by_user = source == "user" or (source is None and not self.agent_acted)
            call = None if by_user else self.rec(found[0] if found else None)
            self.say("user" if by_user else "assistant", text, event, index, call)
        elif kind == "finish" and source != "user":
            self.agent_acted = True
            thought = as_str(args.get("thought"))
            if found and thought != (content := as_str(found[1].get("content"))):
                thought = f"{thought}\n{content}" if thought else content
            self.say("assistant", thought, event, index, self.rec(found[0] if found else None))
        elif kind == "run" and source == "user":
            command = as_str(args.get("command"))
            self.say("user", f"User executed the command:\n{command}", event, index)
        elif kind in _TOOL_ACTIONS and source != "user":
            self.agent_acted = True
            self.actions[_key(event.get("id"), index)] = event
            meta = _metadata(event)
            if meta is None:
                text = codeact_action_text(kind, args)
                self.say("assistant", text, event, index, (None, None), approximate=True)
            else:
                self.tool_action(event, meta, args, index)

    def tool_action(
        self, event: dict[str, Any], meta: dict[str, Any], args: dict[str, Any], index: int
    ) -> None:
        found = _response(meta)
        if found is not None:
            response, msg = found
            key = str(response.get("id") or f"event:{index}")
            if key in self.pending:  # another action of the same model response
                return
            content = msg.get("content")
            blank = isinstance(content, str) and not content.strip()
            normalized = {"role": "assistant", "content": None if blank else content}
            normalized["tool_calls"] = msg.get("tool_calls")
            message = self.message(normalized, msg, index, response_id=response.get("id"))
            rec = self.rec(response)
        else:
            key = f"event:{index}"
            arguments = {k: v for k, v in args.items() if k not in _BOOKKEEPING_ARGS}
            name = as_str(meta.get("function_name"))
            function = {"name": name, "arguments": json.dumps(arguments)}
            call = {"id": meta["tool_call_id"], "type": "function", "function": function}
            normalized = {"role": "assistant", "content": as_str(args.get("thought")) or None}
            normalized["tool_calls"] = [call]
            message = self.message(normalized, event, index, approximate=True)
            rec = (None, None)
        ids = [p.tool_call_id for p in message.tool_calls if p.tool_call_id]
        self.pending[key] = _Pending(
            message, ids or [meta["tool_call_id"]], len(self.messages), rec
        )

    def observation(self, event: dict[str, Any], index: int) -> None:
        meta = _metadata(event) or _metadata(self.actions.get(_key(event.get("cause"), None)))
        legacy = "source" not in event and "id" not in event
        content = event.get("content") or ""
        if not isinstance(content, str):
            raise MessageError(
                f"event {index}: observation content is {type(content).__name__}; expected text",
                source=self.source,
                line=self.line,
            )
        cut, seen = self.max_chars, self.knowledge_seen
        text = observation_text(
            event, content, cut, seen, tool_call=meta is not None, legacy=legacy
        )
        if text is None:
            return
        if meta is not None:
            call_id, name = meta["tool_call_id"], as_str(meta.get("function_name")) or None
            msg = {"role": "tool", "content": text, "tool_call_id": call_id, "name": name}
            self.results[call_id] = self.message(msg, event, index)
        elif text:
            approximate = legacy or event["observation"] == "recall"
            self.say("user", text, event, index, approximate=approximate)

    def flush(self) -> None:
        for key in list(self.pending):
            pending = self.pending[key]
            if all(i in self.results for i in pending.call_ids):
                self.add(pending.message, pending.rec)
                for call_id in pending.call_ids:
                    self.add(self.results.pop(call_id))
                del self.pending[key]

    def finish(self) -> None:
        for p in self.pending.values():  # dropped by OpenHands, but the call was made and billed
            model = p.rec[0] or self.default_model
            self.calls.append(Call(start=0, end=p.end, output=None, model=model, usage=p.rec[1]))
        self.calls.sort(key=lambda c: c.end)
        previous: str | None = None
        for i, message in enumerate(self.messages):
            if message.role == "user" and previous == "user":
                self.messages[i] = with_leading_blank_line(message)
            previous = message.role


def _events(history: list[Any], *, source: str, line: int | None) -> Iterator[dict[str, Any]]:
    for i, item in enumerate(history):
        for event in item if isinstance(item, list) else [item]:
            if not isinstance(event, dict):
                what = f"event {i} is {type(event).__name__}; expected an event object"
                raise MessageError(what, source=source, line=line)
            yield event


def read_events(
    history: list[Any],
    *,
    source: str,
    line: int | None = None,
    record: Any = None,
    title: Any = None,
) -> Context:
    """One event stream (and the evaluation record holding it, if any) as a context."""
    record = as_dict(record)
    llm_config = as_dict(as_dict(record.get("metadata")).get("llm_config"))
    max_chars, model = llm_config.get("max_message_chars"), llm_config.get("model")
    model = model if isinstance(model, str) else None
    builder = _Builder(source, line, max_chars if isinstance(max_chars, int) else None, model)
    events = list(_events(history, source=source, line=line))
    for index, event in enumerate(events):
        if isinstance(event.get("action"), str):
            builder.action(event, index)
        elif isinstance(event.get("observation"), str):
            builder.observation(event, index)
        builder.flush()
    builder.finish()
    meta: dict[str, Any] = {"events": len(events), **({"line": line} if line is not None else {})}
    meta.update({k: record[k] for k in ("metrics", "instance_id", "error") if record.get(k)})
    if any(m.meta.get("approximate") for m in builder.messages):
        meta["approximate"] = True
    return Context(
        messages=tuple(builder.messages),
        tools=builder.tools,
        source_format=NAME,
        source=source,
        title=title if isinstance(title, str) else None,
        model=builder.model or model,
        calls=tuple(builder.calls),
        meta=meta,
        raw=record or history,
    )


def _title(record: dict[str, Any], fallback: str | None) -> str | None:
    if isinstance(record.get("instance_id"), str):
        return str(record["instance_id"])
    issue = as_dict(record.get("issue"))
    if issue.get("repo") and issue.get("number") is not None:
        return f"{issue.get('owner')}/{issue['repo']}#{issue['number']}"
    return fallback


def read(doc: Document) -> list[Context]:
    """One context per event stream: the file's list, or each evaluation record."""
    stem = doc.path.stem if doc.path else None
    value = doc.first_value()
    if doc.kind != "jsonl" and isinstance(value, list):
        return [read_events(value, source=doc.source, title=stem)]
    contexts: list[Context] = []
    for record in doc.records:
        line = record.line if doc.kind == "jsonl" else None
        history = as_dict(record.value).get("history")
        if not isinstance(history, list):
            what = "expected an evaluation record with a 'history' list of events"
            raise MessageError(what, source=doc.source, line=line)
        title = _title(record.value, f"{stem}:{line}" if stem and line else stem)
        contexts.append(
            read_events(history, source=doc.source, line=line, record=record.value, title=title)
        )
    return contexts


__all__ = ["NAME", "detect", "read", "read_events", "truncate_content"]
