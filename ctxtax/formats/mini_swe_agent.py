"""mini-swe-agent trajectories (``*.traj.json``): a plain chat-message list with per-call responses.

Shape read::

    {"trajectory_format": "mini-swe-agent-1", "instance_id": "...",
     "info": {"model_stats": {...}, "config": {"model": {"model_name": "..."}}, ...},
     "messages": [{"role": "system" | "user" | "assistant", "content": ..., "extra": {...}}]}

The messages are exactly what the model was sent: actions are bash blocks inside the assistant
text, observations are ``user`` messages (newer versions may use ``tool_calls`` / ``role: tool``,
which read the same way). Each message goes through `openai_chat.read_message` and keeps the
original dict in ``raw``. Messages with the bookkeeping role ``exit`` are skipped.

One `Call` per assistant message, reading everything before it; its ``usage`` comes from the
chat.completion the agent stored in ``extra.response`` (``prompt_tokens``, cached tokens,
``completion_tokens``), read by `_usage.read_usage` (re-exported here). ``info.model_stats`` goes
to ``Context.meta``. The provider's ``reasoning`` text in ``extra.response`` is not a part of the
message: it was never sent back to the model.
"""

from __future__ import annotations

from typing import Any

from ctxtax._model import Call, Context, Message
from ctxtax.errors import InputError, MessageError
from ctxtax.formats._document import Document
from ctxtax.formats._usage import read_usage
from ctxtax.formats.openai_chat import read_message

NAME = "mini_swe_agent"

_SKIPPED_ROLES = frozenset({"exit"})
_INFO_KEYS = frozenset({"model_stats", "mini_version", "exit_status", "config"})


def _is_message_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value[:50])
    )


def detect(doc: Document) -> bool:
    """A ``trajectory_format: mini-swe-agent*`` dict, or ``messages`` + a mini-swe-agent info."""
    value = doc.first_value()
    if not isinstance(value, dict) or doc.kind == "text":
        return False
    fmt = value.get("trajectory_format")
    if isinstance(fmt, str):
        return fmt.startswith("mini-swe-agent")
    info = value.get("info")
    return (
        _is_message_list(value.get("messages"))
        and isinstance(info, dict)
        and bool(_INFO_KEYS & info.keys())
        and "history" not in value
    )


def _response(msg: dict[str, Any]) -> dict[str, Any] | None:
    extra = msg.get("extra")
    response = extra.get("response") if isinstance(extra, dict) else None
    return response if isinstance(response, dict) else None


def _model_name(info: dict[str, Any]) -> str | None:
    config = info.get("config")
    model = config.get("model") if isinstance(config, dict) else None
    name = model.get("model_name") if isinstance(model, dict) else None
    return name if isinstance(name, str) and name else None


def read_trajectory(value: dict[str, Any], *, source: str, title: str | None = None) -> Context:
    """One mini-swe-agent trajectory as a context."""
    raw_messages = value.get("messages")
    if not isinstance(raw_messages, list):
        raise MessageError("'messages' must be a list of chat messages", source=source)
    info = value.get("info")
    info = info if isinstance(info, dict) else {}
    model = _model_name(info)
    messages: list[Message] = []
    calls: list[Call] = []
    for i, msg in enumerate(raw_messages):
        if isinstance(msg, dict) and msg.get("role") in _SKIPPED_ROLES:
            continue
        message = read_message(msg, index=i, source=source)
        messages.append(message.model_copy(update={"meta": {**message.meta, "index": i}}))
        if message.role != "assistant" or len(messages) == 1:
            continue
        response = _response(msg)
        call_model = response.get("model") if response else None
        calls.append(
            Call(
                start=0,
                end=len(messages) - 1,
                output=len(messages) - 1,
                model=call_model if isinstance(call_model, str) else model,
                usage=read_usage(response.get("usage")) if response else None,
            )
        )
    meta: dict[str, Any] = {"trajectory_format": value.get("trajectory_format")}
    for key in ("model_stats", "exit_status", "mini_version"):
        if key in info:
            meta[key] = info[key]
    instance = value.get("instance_id")
    return Context(
        messages=tuple(messages),
        source_format=NAME,
        source=source,
        title=instance if isinstance(instance, str) and instance else title,
        model=model,
        calls=tuple(calls),
        meta=meta,
        raw=value,
    )


def read(doc: Document) -> list[Context]:
    """One context per trajectory (a JSON file, or one per JSONL line)."""
    stem = doc.path.name.removesuffix(".json").removesuffix(".traj") if doc.path else None
    contexts: list[Context] = []
    for record in doc.records:
        if not isinstance(record.value, dict):
            raise MessageError(
                "expected a mini-swe-agent trajectory object",
                source=doc.source,
                line=record.line if doc.kind == "jsonl" else None,
            )
        try:
            contexts.append(read_trajectory(record.value, source=doc.source, title=stem))
        except InputError as exc:
            if doc.kind != "jsonl":
                raise
            raise type(exc)(
                exc.what, source=doc.source, line=record.line, message_index=exc.message_index
            ) from None
    return contexts


__all__ = ["NAME", "detect", "read", "read_trajectory", "read_usage"]
