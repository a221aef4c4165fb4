"""What the tool calls of a session did: each call with its result as an `Action`, the file and
line range a call read, and whether its result reports a failure.

The staleness rules (family 3) read this one table, built once per session. Calls come from
`Session.tool_uses`. Agents that act in text have no tool-call parts: mini-swe-agent writes one
bash block per assistant message and SWE-agent (without function calling) records its action
in the message's metadata; there the action is that command and its result the observation
message that follows.

File reads are recognised across harnesses, so that ``Read(file_path=a.py)`` and
``bash: cat a.py`` both read ``a.py`` lines 1 to the end: Claude Code ``Read``, ``read_file`` /
``view_file`` / ``open_file`` style tools, ``str_replace_editor`` ``view``, and shell commands
``cat``, ``head``, ``tail``, ``nl``, ``sed -n 'A,Bp'`` (alone or piped into ``sed``/``head``).
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ctxtax._model import Context
from ctxtax._tool_uses import ToolUse
from ctxtax.rules.base import Session

_CACHE_KEY = "staleness.actions"

COSMETIC_ARGS = frozenset({"description", "timeout", "explanation"})
"""Argument keys that do not change what a call does (Claude Code's ``description``)."""

SHELL_TOOLS = frozenset(
    {
        "bash", "shell", "execute_bash", "run_shell_command", "run_terminal_cmd", "exec_command",
        "terminal", "run_command", "execute_command", "local_shell",
    }
)  # fmt: skip
READ_TOOLS = frozenset(
    {"read", "read_file", "readfile", "view", "view_file", "open_file", "cat", "read_text_file"}
)
EDITOR_TOOLS = frozenset({"str_replace_editor", "str_replace_based_edit_tool", "text_editor"})
_PATH_KEYS = ("file_path", "path", "filename", "file", "target_file", "absolute_path")
_TEXT_FORMATS = frozenset({"mini_swe_agent", "swe_agent"})
_RETURNCODE = re.compile(r"<returncode>\s*(-?\d+)\s*</returncode>")
_EXIT_NOTE = re.compile(r"\[The command completed with exit code (-?\d+)\.\]")
_FAILED = re.compile(
    r"^\s*(?:<tool_use_error>|(?:error|exception)\s*[:!]|fatal:|"
    r"traceback \(most recent call last\)|exit code [1-9]|[^\n]{0,200}: command not found|"
    r"[^\n]{0,200}: no such file or directory)",
    re.IGNORECASE,
)
_NAME_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_MUTATING = frozenset(
    {
        "add", "append", "apply", "book", "cancel", "commit", "create", "delete", "edit",
        "exchange", "insert", "kill", "modify", "move", "patch", "post", "push", "put", "remove",
        "rename", "replace", "send", "set", "submit", "transfer", "update", "upload", "write",
    }
)  # fmt: skip
_REDIRECT = re.compile(r"\s*2>(?:&1|/dev/null)")
_SED_RANGE = re.compile(r"^(\d+)(?:,(\d+|\$))?p$")


@dataclass(frozen=True, slots=True)
class FileRead:
    """A file and the lines read from it: ``start`` (1-based) to ``end`` (None: to the end)."""

    path: str
    start: int = 1
    end: int | None = None

    def describe(self) -> str:
        """``a.py`` or ``a.py lines 10-40``."""
        if self.start == 1 and self.end is None:
            return self.path
        return f"{self.path} lines {self.start}-{self.end if self.end is not None else 'end'}"


@dataclass(frozen=True, slots=True)
class Action:
    """One tool call (or text action) and its result.

    ``key`` is what two calls are compared by: the file and range for a file read, else the tool
    name and the canonical arguments without cosmetic keys (None when the call is unknown: a
    result without its call). ``order`` is the position in result order.
    """

    order: int
    call_id: str | None
    name: str
    call: tuple[int, int] | None
    result: tuple[int, int]
    args: Any
    command: str | None
    read: FileRead | None
    key: str | None
    failed: bool

    @property
    def mutating(self) -> bool:
        """True when the call changes something (its name, or a text action's first word, is a
        verb like create, edit, book, send): running it again is a new action, not a fresh
        answer. File reads never mutate."""
        if self.read is not None:
            return False
        if self.call_id is None and self.command is not None:
            first = self.command.split(maxsplit=1)[0].lower() if self.command.strip() else ""
            return first in _MUTATING
        if self.command is not None:
            return False
        return any(w.lower() in _MUTATING for w in _NAME_WORDS.findall(self.name))

    def describe(self, limit: int = 100) -> str:
        """How a placeholder names the call, e.g. ``Read(file_path=a.py)`` or ```cat a.py```."""
        if self.call_id is None and self.command is not None:
            return f"`{_clip(self.command, limit)}`"
        if isinstance(self.args, dict):
            shown = ", ".join(
                f"{k}={_clip(v if isinstance(v, str) else _dumps(v), 60)}"
                for k, v in self.args.items()
                if k not in COSMETIC_ARGS
            )
            return f"{self.name}({_clip(shown, limit)})"
        return f"{self.name}(...)"

    def where(self) -> str:
        """``call_07`` or ``message 12`` for a text action."""
        return self.call_id if self.call_id else f"message {self.result[0]}"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _norm_path(path: str) -> str:
    path = path.strip().strip("'\"")
    return posixpath.normpath(path) if path else path


def _range(start: Any, end: Any) -> tuple[int, int | None]:
    first = _int(start)
    last = _int(end)
    first = first if first is not None and first > 0 else 1
    return first, (last if last is not None and last >= first else None)


def tool_read(name: str, args: Any) -> FileRead | None:
    """The file a structured tool call reads, if it is a file read."""
    if not isinstance(args, dict):
        return None
    lowered = name.lower()
    if lowered in EDITOR_TOOLS:
        if args.get("command") != "view":
            return None
    elif lowered not in READ_TOOLS:
        return None
    path = next((args[k] for k in _PATH_KEYS if isinstance(args.get(k), str)), None)
    if not path:
        return None
    view = args.get("view_range")
    if isinstance(view, list) and len(view) == 2:
        start, end = _range(view[0], view[1])
    elif "offset" in args or "limit" in args:
        offset = _int(args.get("offset"))
        limit = _int(args.get("limit"))
        start = offset if offset is not None and offset > 0 else 1
        end = start + limit - 1 if limit is not None and limit > 0 else None
    else:
        start, end = _range(args.get("start_line"), args.get("end_line"))
    return FileRead(_norm_path(path), start, end)


def _words(command: str) -> list[str] | None:
    words = _split_command(command)
    return list(words) if words is not None else None


@lru_cache(maxsize=4096)
def _split_command(command: str) -> tuple[str, ...] | None:
    """Shell words of a command; cached: an incremental audit (and each call of a replay) reads
    the same commands again, and shlex is slow."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return tuple(lexer)
    except ValueError:
        return None


def _pipeline_range(stage: list[str]) -> tuple[int, int | None] | None:
    """The lines a ``sed -n 'A,Bp'`` / ``head -n N`` stage keeps, or None if it is neither."""
    if len(stage) == 3 and stage[0] == "sed" and stage[1] == "-n":
        m = _SED_RANGE.match(stage[2])
        if m:
            start = int(m.group(1))
            end = m.group(2)
            return start, (start if end is None else None if end == "$" else int(end))
    if stage and stage[0] == "head":
        rest = stage[1:]
        if rest[:1] == ["-n"] and len(rest) == 2 and rest[1].isdigit():
            return 1, int(rest[1])
        if len(rest) == 1 and rest[0].startswith("-") and rest[0][1:].isdigit():
            return 1, int(rest[0][1:])
    return None


def shell_read(command: str) -> FileRead | None:
    """The file a shell command reads, for the plain forms (``cat F``, ``sed -n '1,50p' F``,
    ``nl -ba F | sed -n '10,20p'``, ``head -n 40 F``), optionally after ``cd DIR &&``."""
    words = _words(_REDIRECT.sub("", command))
    if not words:
        return None
    cwd = ""
    while len(words) > 3 and words[0] == "cd" and words[2] in ("&&", ";"):
        cwd = posixpath.join(cwd, words[1])
        words = words[3:]
    stages: list[list[str]] = [[]]
    for word in words:
        if word == "|":
            stages.append([])
        elif word in ("&&", ";", "||", ">", ">>", "<", "&"):
            return None
        else:
            stages[-1].append(word)
    if len(stages) > 2 or any(not s for s in stages):
        return None
    head, *rest = stages
    program, args = head[0], head[1:]
    flags = [a for a in args if a.startswith("-")]
    files = [a for a in args if not a.startswith("-")]
    start: int = 1
    end: int | None = None
    if (
        program in ("cat", "nl")
        and len(files) == 1
        and all(f in ("-n", "-ba", "-b") for f in flags)
    ):
        pass
    elif program in ("head", "sed") and (found := _pipeline_range(head[:-1])) is not None:
        start, end = found
        files = head[-1:]
    else:
        return None
    if rest:
        piped = _pipeline_range(rest[0])
        if piped is None or (start, end) != (1, None):
            return None
        start, end = piped
    path = files[0]
    if cwd and not path.startswith("/"):
        path = posixpath.join(cwd, path)
    return FileRead(_norm_path(path), start, end)


def shell_command(name: str, args: Any) -> str | None:
    """The command line of a shell tool call, or None for other tools."""
    if name.lower() not in SHELL_TOOLS or not isinstance(args, dict):
        return None
    command = args.get("command", args.get("cmd"))
    if isinstance(command, list) and all(isinstance(w, str) for w in command):
        if (
            len(command) == 3
            and command[0] in ("bash", "sh", "zsh")
            and command[1] in ("-lc", "-c")
        ):
            return str(command[2])
        return shlex.join(command)
    return command if isinstance(command, str) else None


def looks_failed(text: str, is_error: bool = False) -> bool:
    """True when a result reports a failure: flagged by the provider, or (conservatively) text
    that starts like an error, or a non-zero exit code with some output."""
    if is_error:
        return True
    head = text[:2000]
    if _FAILED.match(head):
        return True
    code = _RETURNCODE.search(head) or _EXIT_NOTE.search(text[-300:])
    if code and int(code.group(1)) != 0:
        rest = _RETURNCODE.sub("", _EXIT_NOTE.sub("", text))
        rest = rest.replace("<output>", "").replace("</output>", "")
        return bool(rest.strip())
    return False


def _key(name: str, args: Any, arguments: str, read: FileRead | None) -> str:
    if read is not None:
        return _dumps(["read", read.path, read.start, read.end])
    if isinstance(args, dict):
        args = {k: v for k, v in args.items() if k not in COSMETIC_ARGS}
        command = shell_command(name, args)
        if command is not None:
            return _dumps(["shell", " ".join(command.split())])
        return _dumps([name, args])
    return _dumps([name, arguments.strip() if args is None else args])


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """The fenced code blocks of a markdown text: (language, body), in order."""
    blocks: list[tuple[str, str]] = []
    lang: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if lang is None:
            if stripped.startswith("```"):
                lang, body = stripped[3:].strip().lower(), []
        elif stripped == "```":
            blocks.append((lang, "\n".join(body)))
            lang = None
        else:
            body.append(line)
    return blocks


def _text_action(ctx: Context, i: int) -> str | None:
    """The command of assistant message ``i`` of a text-acting agent, if it has one."""
    message = ctx.messages[i]
    if message.role != "assistant" or any(p.kind == "tool_call" for p in message.parts):
        return None
    extra = message.meta.get("extra")
    if isinstance(extra, dict) and isinstance(extra.get("action"), str):
        action = extra["action"].strip()
        return action or None
    if ctx.source_format != "mini_swe_agent":
        return None
    blocks = [body for lang, body in fenced_blocks(message.text) if lang in ("bash", "sh")]
    return blocks[0].strip() or None if len(blocks) == 1 else None


def _text_actions(ctx: Context, first: int = 0) -> list[dict[str, Any]]:
    """The text actions whose output is in message ``first`` or later."""
    out: list[dict[str, Any]] = []
    messages = ctx.messages
    for i in range(max(first - 1, 0), len(messages) - 1):
        nxt = messages[i + 1]
        if nxt.role not in ("user", "tool") or any(p.kind == "tool_result" for p in nxt.parts):
            continue
        texts = [j for j, p in enumerate(nxt.parts) if p.kind == "text" and p.text]
        command = _text_action(ctx, i) if texts else None
        if command is None:
            continue
        j = texts[0]
        read = shell_read(command)
        out.append(
            {
                "call_id": None,
                "name": "shell",
                "call": None,
                "result": (i + 1, j),
                "args": {"command": command},
                "command": command,
                "read": read,
                "key": _key("shell", {"command": command}, command, read),
                "failed": looks_failed(nxt.parts[j].text),
            }
        )
    return out


def _tool_action(ctx: Context, use: ToolUse) -> dict[str, Any]:
    assert use.result is not None
    m, p = use.result
    part = ctx.messages[m].parts[p]
    name = use.name or part.tool_name or ""
    known = use.call is not None and bool(name)
    command = shell_command(name, use.args) if known else None
    read = (
        (tool_read(name, use.args) or (shell_read(command) if command else None)) if known else None
    )
    return {
        "call_id": use.tool_call_id,
        "name": name or "tool",
        "call": use.call,
        "result": use.result,
        "args": use.args,
        "command": command,
        "read": read,
        "key": _key(name, use.args, use.arguments, read) if known else None,
        "failed": looks_failed(part.text, part.is_error or use.is_error),
    }


def actions(session: Session) -> list[Action]:
    """Every tool call with a result (and every text action), in the order of the results.

    Kept between the audits of a growing session: an action's result is in a message, so only
    the results in messages appended since the last audit are new actions, after the others.
    """
    cached = session.cache.get(_CACHE_KEY)
    if isinstance(cached, list):
        return cached
    ctx = session.context
    memory = session.memory("file_reads.actions")
    done = int(memory.get("messages", 0))
    out: list[Action] = list(memory.get("actions", ()))
    if done > len(ctx.messages):
        done, out = 0, []
    rows = [
        _tool_action(ctx, use)
        for use in session.tool_uses
        if use.result is not None and use.result[0] >= done
    ]
    if ctx.source_format in _TEXT_FORMATS:
        rows += _text_actions(ctx, done)
    rows.sort(key=lambda r: r["result"])
    out += [Action(order=len(out) + i, **row) for i, row in enumerate(rows)]
    memory.update(messages=len(ctx.messages), actions=out)
    session.cache[_CACHE_KEY] = out
    return out


__all__ = [
    "COSMETIC_ARGS",
    "Action",
    "FileRead",
    "actions",
    "looks_failed",
    "shell_command",
    "shell_read",
    "tool_read",
]
