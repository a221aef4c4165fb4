"""SWE-agent trajectories (``*.traj``): the chat ``history`` beside the ``trajectory`` steps.

Shape read::

    {"trajectory": [{"action", "observation", "response", "thought", "state", ...}],
     "history": [{"role", "content", "agent", "message_type"?, "thought"?, "action"?,
                  "tool_calls"?, "tool_call_ids"?, "is_demo"?, "thinking_blocks"?}],
     "info": {"model_stats": {"api_calls", "tokens_sent", "tokens_received", "instance_cost"},
              "exit_status", "submission", ...},
     "environment"?: "...", "replay_config"?: {...} or its JSON text}

``history`` is the conversation the model saw; ``trajectory`` is SWE-agent's own step log and is not
read (a trajectory with ``history`` only is read too). A history entry is normalized to OpenAI
shape the way SWE-agent sends it (``tool_call_ids[0]`` becomes ``tool_call_id``; list content of
``{type: text}`` parts is kept) and read with `openai_chat.read_message`; the Message's ``raw`` is
the original entry and the SWE-agent keys (``agent``, ``message_type``, ``thought``, ``action``,
``is_demo``) sit in ``meta["extra"]``. Anthropic ``thinking_blocks`` become reasoning parts. When
the history holds several agents (``agent`` key), each agent is one context.

Not rebuilt: SWE-agent's history processors (e.g. ``last_n_observations``) elide old observations
in each request; the full history is read, and the processor settings are kept in
``meta["history_processors"]``. No per-call usage is recorded: ``calls`` are the default one per
assistant message, and ``info.model_stats`` is in ``meta["model_stats"]``. Tools are read only when
``replay_config`` holds OpenAI-shaped definitions (recorded configs usually hold tool bundles, not
schemas).
"""

from __future__ import annotations

import json
from typing import Any

from ctxtax._model import Context, Message, Part, ToolSpec
from ctxtax.errors import InputError, MessageError
from ctxtax.formats._document import Document
from ctxtax.formats.anthropic import fill_tool_names, read_block
from ctxtax.formats.openai_chat import read_message, read_tools

NAME = "swe_agent"

_PSEUDO_MODELS = frozenset({"replay", "instant_empty_submit", "human", "human_thought"})


def _is_history(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value[:20])
    )


def detect(doc: Document) -> bool:
    """A dict with ``trajectory`` and ``history``, or a ``history`` of ``agent``-tagged messages."""
    value = doc.first_value()
    if doc.kind == "text" or not isinstance(value, dict) or "messages" in value:
        return False
    history = value.get("history")
    if "trajectory" in value and isinstance(history, list):
        return True
    return (
        isinstance(history, list)
        and _is_history(history)
        and all("agent" in m for m in history[:20])
    )


def _config(value: dict[str, Any]) -> dict[str, Any]:
    config = value.get("replay_config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError:
            return {}
    return config if isinstance(config, dict) else {}


def _agent_config(config: dict[str, Any]) -> dict[str, Any]:
    agent = config.get("agent")
    return agent if isinstance(agent, dict) else {}


def _model(config: dict[str, Any]) -> str | None:
    model = _agent_config(config).get("model")
    if not isinstance(model, dict):
        return None
    name = model.get("name", model.get("model_name"))
    return name if isinstance(name, str) and name and name not in _PSEUDO_MODELS else None


def _is_openai_tool(tool: Any) -> bool:
    if not isinstance(tool, dict):
        return False
    fn = tool.get("function") if tool.get("type") == "function" else tool
    return isinstance(fn, dict) and isinstance(fn.get("name"), str) and "parameters" in fn


def _tools(config: dict[str, Any], *, source: str) -> tuple[ToolSpec, ...]:
    tools = _agent_config(config).get("tools")
    candidates: list[Any] = [tools]
    if isinstance(tools, dict):
        candidates += [tools.get("tools"), tools.get("commands")]
    for candidate in candidates:
        if isinstance(candidate, list) and candidate and all(map(_is_openai_tool, candidate)):
            return read_tools(candidate, source=source)
    return ()


def _title(value: dict[str, Any], config: dict[str, Any], doc: Document) -> str | None:
    statement = config.get("problem_statement")
    if isinstance(statement, dict) and isinstance(statement.get("id"), str):
        return str(statement["id"])
    for key in ("instance_id", "id"):
        if isinstance(value.get(key), str):
            return str(value[key])
    return doc.path.name.removesuffix(".traj") if doc.path else None


def read_history_entry(entry: Any, *, index: int, source: str) -> Message:
    """One SWE-agent history entry, normalized as SWE-agent sends it, with the entry as ``raw``."""
    if not isinstance(entry, dict):
        raise MessageError(
            f"expected a history message object, got {type(entry).__name__}",
            source=source,
            message_index=index,
        )
    normalized = dict(entry)
    ids = entry.get("tool_call_ids")
    first = ids[0] if isinstance(ids, list) and ids else None
    if entry.get("role") == "tool" and "tool_call_id" not in entry and isinstance(first, str):
        normalized["tool_call_id"] = first
    message = read_message(normalized, index=index, source=source)
    blocks = entry.get("thinking_blocks")
    if isinstance(blocks, list) and blocks and message.role == "assistant":
        thinking: list[Part] = [read_block(b, source=source, index=index) for b in blocks]
        message = message.model_copy(update={"parts": (*thinking, *message.parts)})
    return message.model_copy(update={"raw": entry, "meta": {**message.meta, "index": index}})


def read_trajectory(value: dict[str, Any], *, doc: Document) -> list[Context]:
    """The contexts of one trajectory: one per agent in its history (usually one)."""
    source = doc.source
    history = value.get("history")
    if not isinstance(history, list):
        raise MessageError("'history' must be a list of chat messages", source=source)
    config = _config(value)
    info = value.get("info")
    info = info if isinstance(info, dict) else {}
    meta: dict[str, Any] = {}
    for key in ("model_stats", "exit_status"):
        if key in info:
            meta[key] = info[key]
    agent_config = _agent_config(config)
    processors = agent_config.get("history_processors", agent_config.get("history_processor"))
    if processors:
        meta["history_processors"] = processors
    if isinstance(value.get("environment"), str):
        meta["environment"] = value["environment"]
    by_agent: dict[str, list[Message]] = {}
    for i, entry in enumerate(history):
        message = read_history_entry(entry, index=i, source=source)
        agent = entry.get("agent") if isinstance(entry.get("agent"), str) else ""
        by_agent.setdefault(agent, []).append(message)
    title = _title(value, config, doc)
    tools = _tools(config, source=source)
    contexts: list[Context] = []
    for agent, messages in by_agent.items():
        several = len(by_agent) > 1
        contexts.append(
            Context(
                messages=fill_tool_names(messages),
                tools=tools,
                source_format=NAME,
                source=source,
                title=f"{title}:{agent}" if several and title else title,
                model=_model(config),
                meta={**meta, "agent": agent} if agent else dict(meta),
                raw=value,
            )
        )
    return contexts


def read(doc: Document) -> list[Context]:
    """One context per trajectory (and per agent inside it)."""
    contexts: list[Context] = []
    for record in doc.records:
        line = record.line if doc.kind == "jsonl" else None
        if not isinstance(record.value, dict):
            raise MessageError(
                "expected a SWE-agent trajectory object", source=doc.source, line=line
            )
        try:
            contexts.extend(read_trajectory(record.value, doc=doc))
        except InputError as exc:
            if line is None:
                raise
            raise type(exc)(
                exc.what, source=doc.source, line=line, message_index=exc.message_index
            ) from None
    return contexts


__all__ = ["NAME", "detect", "read", "read_history_entry", "read_trajectory"]
