"""The text OpenHands' ``ConversationMemory`` sends for events, rebuilt from the event stream.

Used by `openhands`. Observation text (`observation_text`): command output as ``prefix + content
+ suffix`` plus the working directory / interpreter / exit-code lines, IPython images replaced by
a placeholder, errors with ``[Error occurred in processing last action]``, rejected actions,
delegate outputs, ``llm_config.max_message_chars`` middle truncation (`truncate_content`) for the
kinds OpenHands truncates, and the ``OBSERVATION:`` form of the mid-2024 (legacy) events.
Approximations of what OpenHands renders with Jinja templates or prompt text: recall observations
(`recall_text`: workspace context, microagent knowledge, each microagent once) and the CodeAct
``<execute_bash>`` text of actions without tool metadata (`codeact_action_text`). Also the blank
line OpenHands puts before a user message that follows another (`with_leading_blank_line`).
"""

from __future__ import annotations

from typing import Any

from ctxtax._model import Message

_TRUNCATED = frozenset({"edit", "think", "mcp", "condense", "download", "task_tracking"})
_UNTRUNCATED = frozenset({"read", "browse"})
_IMAGE_LINE = "![image](data:image/png;base64,"
_IMAGE_SHOWN = "![image](data:image/png;base64, ...) already displayed to user"
_HOSTS = (
    "The user has access to the following hosts for accessing a web application,\n"
    "each of which has a corresponding port:"
)
_EXTRA_INFO = (
    '<EXTRA_INFO>\nThe following information has been included based on a keyword match for "{}".'
    "\nIt may or may not be relevant to the user's request.\n\n{}\n</EXTRA_INFO>"
)


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a dict, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str:
    """``value`` if it is a string, else ``""``."""
    return value if isinstance(value, str) else ""


def truncate_content(text: str, max_chars: int | None) -> str:
    """OpenHands' middle truncation of observations longer than ``max_chars``."""
    if max_chars is None or max_chars < 0 or len(text) <= max_chars:
        return text
    half = max_chars // 2
    return text[:half] + "\n[... Observation truncated due to length ...]\n" + text[-half:]


def observation_text(
    event: dict[str, Any],
    content: str,
    max_chars: int | None,
    knowledge_seen: set[str],
    *,
    tool_call: bool,
    legacy: bool,
) -> str | None:
    """The text of an observation event, or None for kinds OpenHands does not send.

    ``tool_call`` tells whether the observation answers a tool call (a ``run`` without one was
    executed by the user); ``knowledge_seen`` holds the microagents already recalled, and grows.
    """
    kind, cut = event["observation"], max_chars
    extras = as_dict(event.get("extras")) if "extras" in event else event
    if legacy:
        text = "OBSERVATION:\n" + truncate_content(content, cut)
        if kind == "run" and "exit_code" in extras:
            code, number = extras["exit_code"], extras.get("command_id")
            text += f"\n[Command {number} finished with exit code {code}]"
        return text
    if kind == "run":
        md = as_dict(extras.get("metadata"))
        text = f"{as_str(md.get('prefix'))}{content}{as_str(md.get('suffix'))}"
        if md.get("working_dir"):
            text += f"\n[Current working directory: {md['working_dir']}]"
        if md.get("py_interpreter_path"):
            text += f"\n[Python interpreter: {md['py_interpreter_path']}]"
        if md.get("exit_code", -1) != -1:
            text += f"\n[Command finished with exit code {md['exit_code']}]"
        if not tool_call:
            text = f"\nObserved result of command executed by user:\n{text}"
        return truncate_content(text, cut)
    if kind == "run_ipython":
        lines = [_IMAGE_SHOWN if _IMAGE_LINE in line else line for line in content.split("\n")]
        return truncate_content("\n".join(lines), cut)
    if kind == "error":
        return truncate_content(content, cut) + "\n[Error occurred in processing last action]"
    if kind == "user_rejected":
        text = "OBSERVATION:\n" + truncate_content(content, cut)
        return text + "\n[Last action has been rejected by the user]"
    if kind == "delegate":
        outputs = as_dict(extras.get("outputs"))
        return truncate_content(as_str(outputs.get("content", content)), cut)
    if kind in _TRUNCATED or kind in _UNTRUNCATED:
        return truncate_content(content, cut) if kind in _TRUNCATED else content
    if kind == "recall":
        return recall_text(extras, knowledge_seen)
    return None


def codeact_action_text(kind: str, args: dict[str, Any]) -> str:
    """An agent action without tool metadata as CodeAct text: the thought, then the code block."""
    thought = as_str(args.get("thought"))
    tag, key = {
        "run": ("execute_bash", "command"),
        "run_ipython": ("execute_ipython", "code"),
        "browse_interactive": ("execute_browse", "browser_actions"),
    }.get(kind, ("", ""))
    return f"{thought}\n<{tag}>\n{as_str(args.get(key))}\n</{tag}>" if tag else thought


def recall_text(extras: dict[str, Any], seen: set[str]) -> str:
    """A recall observation: repository, runtime and microagent blocks (adds to ``seen``)."""
    blocks: list[str] = []
    if extras.get("recall_type") == "workspace_context":
        repo, directory = as_str(extras.get("repo_name")), as_str(extras.get("repo_directory"))
        if repo or directory:
            blocks.append(
                f"<REPOSITORY_INFO>\nAt the user's request, repository {repo} has been cloned to "
                f"the current working directory {directory}.\n</REPOSITORY_INFO>"
            )
        if instructions := as_str(extras.get("repo_instructions")).strip():
            blocks.append(f"<REPOSITORY_INSTRUCTIONS>\n{instructions}\n</REPOSITORY_INSTRUCTIONS>")
        hosts = as_dict(extras.get("runtime_hosts"))
        runtime = [_HOSTS, *(f"* {h} (port {p})" for h, p in hosts.items())] if hosts else []
        if more := as_str(extras.get("additional_agent_instructions")):
            runtime.append(more)
        if date := as_str(extras.get("date")):
            runtime.append(f"Today's date is {date} (UTC).")
        if runtime:
            blocks.append(
                "<RUNTIME_INFORMATION>\n" + "\n".join(runtime) + "\n</RUNTIME_INFORMATION>"
            )
    knowledge = extras.get("microagent_knowledge")
    for agent in knowledge if isinstance(knowledge, list) else []:
        name = as_str(as_dict(agent).get("name"))
        if not isinstance(agent, dict) or (
            name in seen and extras.get("recall_type") == "knowledge"
        ):
            continue
        seen.add(name)
        trigger = as_str(agent.get("trigger") or agent.get("trigger_word"))
        blocks.append(_EXTRA_INFO.format(trigger, as_str(agent.get("content"))))
    return "\n\n".join(blocks)


def with_leading_blank_line(message: Message) -> Message:
    """``message`` with ``"\\n\\n"`` before its first text part (a user message after another)."""
    for j, part in enumerate(message.parts):
        if part.kind == "text":
            text = part.model_copy(update={"text": "\n\n" + part.text})
            parts = (*message.parts[:j], text, *message.parts[j + 1 :])
            return message.model_copy(update={"parts": parts})
    return message


__all__ = [
    "as_dict",
    "as_str",
    "codeact_action_text",
    "observation_text",
    "recall_text",
    "truncate_content",
    "with_leading_blank_line",
]
