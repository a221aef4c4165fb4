"""Loading prompt templates: text, Markdown, Jinja, .prompty, YAML / JSON prompts and tool files.

Every loaded text keeps a `SourceMap` back to its file, so a finding maps to ``path:line:col``.
Templates are never rendered; YAML is read with ``yaml.safe_load``. Broken input is a
`ParseError` naming the file and line.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ctxtax.errors import InputError, ParseError

if TYPE_CHECKING:
    from ctxtax._model import Role, ToolSpec

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".prompt", ".j2", ".jinja", ".jinja2"})
DATA_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
SUFFIXES = TEXT_SUFFIXES | DATA_SUFFIXES | {".prompty"}
"""Every file suffix `ctxtax lint` reads."""

_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "developer",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
}
_ROLE_MARKER = re.compile(
    r"^[ \t]*(system|user|assistant|developer)[ \t]*:[ \t]*\r?$", re.MULTILINE | re.IGNORECASE
)
_PROMPT_KEYS: dict[str, Role] = {
    "system": "system",
    "system_prompt": "system",
    "instructions": "system",
    "template": "system",
    "prompt": "system",
    "user": "user",
    "user_prompt": "user",
}


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Where each character of a loaded text sits in its file.

    ``anchors`` are ``(text offset, file offset)`` pairs sorted by text offset; a character maps
    to its anchor's file offset plus its distance from the anchor. ``kind`` says how exact that
    is: ``verbatim`` (the text is a slice of the file), ``json`` (a JSON string literal at
    ``literal``, exact through escapes) or ``yaml`` (a scalar, anchored line by line).
    """

    anchors: tuple[tuple[int, int], ...]
    kind: Literal["verbatim", "json", "yaml"] = "verbatim"
    literal: tuple[int, int] | None = None

    def file_offset(self, offset: int) -> int:
        """The file offset of the text's character ``offset``."""
        i = bisect.bisect_right(self.anchors, (offset, float("inf"))) - 1
        text_at, file_at = self.anchors[max(i, 0)]
        return file_at + max(offset - text_at, 0)


@dataclass(frozen=True, slots=True)
class Segment:
    """One prompt message of a file: its role, text and source map."""

    role: Role
    text: str
    map: SourceMap


@dataclass
class TemplateFile:
    """A loaded file: its raw text, the prompt messages or tools it holds, and where they sit."""

    path: Path
    source: str
    segments: list[Segment] = field(default_factory=list)
    tools: tuple[ToolSpec, ...] = ()
    tool_offsets: dict[str, int] = field(default_factory=dict)
    noqa_codes: frozenset[str] | None = None
    _lines: list[int] = field(default_factory=list, repr=False)

    @property
    def kind(self) -> Literal["prompt", "tools", "empty"]:
        """``tools`` for a tool schema file, ``prompt`` for messages, else ``empty``."""
        return "tools" if self.tools else "prompt" if self.segments else "empty"

    def position(self, offset: int) -> tuple[int, int]:
        """1-based ``(line, column)`` of a file offset."""
        if not self._lines:
            self._lines = [0] + [m.end() for m in re.finditer("\n", self.source)]
        line = bisect.bisect_right(self._lines, offset) - 1
        return line + 1, offset - self._lines[line] + 1


def read_text(path: Path) -> str:
    """The file's text: UTF-8 (a BOM is dropped), no NUL bytes; else a `ParseError`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    nul = data.find(b"\x00")
    if nul != -1:
        line = data.count(b"\n", 0, nul) + 1
        raise ParseError(
            "binary file (NUL byte); expected a text template", source=str(path), line=line
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ParseError(
            f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            source=str(path),
            line=line,
        ) from None
    return text.removeprefix("\ufeff")


def load_file(path: Path) -> TemplateFile:
    """Load one template file by its suffix (see `SUFFIXES`)."""
    text = read_text(path)
    suffix = path.suffix.lower()
    out = TemplateFile(path=path, source=text)
    if suffix in TEXT_SUFFIXES:
        if text.strip():
            out.segments.append(Segment("system", text, SourceMap(((0, 0),))))
    elif suffix == ".prompty":
        _load_prompty(out)
    elif suffix in DATA_SUFFIXES:
        _load_data(out, json_syntax=suffix == ".json")
    else:
        raise InputError(f"unsupported file type {suffix!r}", source=str(path))
    return out


def _sections(out: TemplateFile, start: int, end: int) -> None:
    """Split ``source[start:end]`` at role markers into verbatim segments."""
    text = out.source
    role: Role = "system"
    pos = start
    for match in _ROLE_MARKER.finditer(text, start, end):
        _verbatim(out, role, pos, match.start())
        role = _ROLES[match.group(1).lower()]
        pos = match.end() + 1
    _verbatim(out, role, pos, end)


def _verbatim(out: TemplateFile, role: Role, start: int, end: int) -> None:
    chunk = out.source[start:end]
    lead = len(chunk) - len(chunk.lstrip())
    body = chunk.strip()
    if body:
        out.segments.append(Segment(role, body, SourceMap(((0, start + lead),))))


def _load_prompty(out: TemplateFile) -> None:
    text = out.source
    first = text.split("\n", 1)[0].strip()
    if first != "---":
        _sections(out, 0, len(text))
        return
    close = re.compile(r"^---[ \t]*\r?$", re.MULTILINE).search(
        text, len(text.split("\n", 1)[0]) + 1
    )
    if close is None:
        raise ParseError(
            "front matter opened by '---' on line 1 is never closed by a '---' line",
            source=str(out.path),
            line=1,
        )
    import yaml

    front = text[len(text.split("\n", 1)[0]) + 1 : close.start()]
    try:
        yaml.safe_load(front)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = 2 + mark.line if mark is not None else 1
        raise ParseError(
            f"front matter is not valid YAML: {_problem(exc)}", source=str(out.path), line=line
        ) from None
    _sections(out, close.end() + 1, len(text))


def _problem(exc: Exception) -> str:
    problem = getattr(exc, "problem", None)
    return str(problem) if problem else str(exc).splitlines()[0]


# -- YAML and JSON --------------------------------------------------------------------------------


class _Strings:
    """The string literals of a YAML or JSON file in document order, found by value."""

    def __init__(self, items: list[tuple[str, int, int]], source: str, kind: str) -> None:
        self.items = items
        self.source = source
        self.kind = kind
        self.cursor = 0

    def _find(self, value: str) -> tuple[str, int, int] | None:
        for lo, hi in ((self.cursor, len(self.items)), (0, self.cursor)):
            for i in range(lo, hi):
                if self.items[i][0] == value:
                    self.cursor = i + 1
                    return self.items[i]
        return None

    def offset(self, value: str) -> int | None:
        """File offset of the next literal equal to ``value``."""
        item = self._find(value)
        return item[1] if item else None

    def locate(self, value: str) -> SourceMap:
        """A source map for the next literal equal to ``value``."""
        item = self._find(value)
        if item is None:
            return SourceMap(((0, 0),), kind="yaml")
        _, lo, hi = item
        if self.kind == "json":
            return SourceMap(_json_anchors(self.source, lo, hi), kind="json", literal=(lo, hi))
        return SourceMap(_line_anchors(value, self.source, lo, hi), kind="yaml")


def _json_strings(source: str) -> list[tuple[str, int, int]]:
    from json.decoder import scanstring  # type: ignore[attr-defined]

    items: list[tuple[str, int, int]] = []
    i = source.find('"')
    while i != -1:
        value, end = scanstring(source, i + 1)
        items.append((value, i, end))
        i = source.find('"', end)
    return items


def _json_anchors(source: str, lo: int, hi: int) -> tuple[tuple[int, int], ...]:
    """Exact anchors through a JSON string literal ``source[lo:hi]`` (quotes included)."""
    anchors = [(0, lo + 1)]
    t, r = 0, lo + 1
    while r < hi - 1:
        if source[r] == "\\":
            width = 6 if source[r + 1] == "u" else 2
            code = int(source[r + 2 : r + 6], 16) if width == 6 else 0
            if 0xD800 <= code < 0xDC00 and source.startswith("\\u", r + 6):
                width = 12
            r += width
            t += 1
            anchors.append((t, r))
        else:
            r += 1
            t += 1
    return tuple(anchors)


def _line_anchors(value: str, source: str, lo: int, hi: int) -> tuple[tuple[int, int], ...]:
    """Anchors for a YAML scalar: each text line found in the scalar's source, in order."""
    anchors: list[tuple[int, int]] = []
    cursor, t = lo, 0
    for line in value.split("\n"):
        stripped = line.lstrip()
        if stripped:
            probe = stripped[:40]
            found = source.find(probe, cursor, hi)
            if found != -1:
                anchors.append((t + len(line) - len(stripped), found))
                cursor = found + len(probe)
        t += len(line) + 1
    if not anchors or anchors[0][0] > 0:
        anchors.insert(0, (0, lo))
    return tuple(anchors)


def _yaml_strings(source: str, node: Any) -> list[tuple[str, int, int]]:
    import yaml

    items: list[tuple[str, int, int]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.ScalarNode):
            items.append((current.value, current.start_mark.index, current.end_mark.index))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(reversed(current.value))
        elif isinstance(current, yaml.MappingNode):
            stack.extend(n for pair in reversed(current.value) for n in reversed(pair))
    return items


def _parse(out: TemplateFile, json_syntax: bool) -> tuple[Any, _Strings]:
    where = str(out.path)
    if json_syntax:
        try:
            value = json.loads(out.source)
        except json.JSONDecodeError as exc:
            raise ParseError(
                f"not valid JSON: {exc.msg} (column {exc.colno})", source=where, line=exc.lineno
            ) from None
        return value, _Strings(_json_strings(out.source), out.source, "json")
    import yaml

    try:
        value = yaml.safe_load(out.source)
        node = yaml.compose(out.source, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ParseError(f"not valid YAML: {_problem(exc)}", source=where, line=line) from None
    items = _yaml_strings(out.source, node) if node is not None else []
    return value, _Strings(items, out.source, "yaml")


def _load_data(out: TemplateFile, *, json_syntax: bool) -> None:
    value, strings = _parse(out, json_syntax)
    if isinstance(value, dict) and isinstance(value.get("ctxtax"), dict):
        noqa = value["ctxtax"].get("noqa", [])
        out.noqa_codes = frozenset(str(c).upper() for c in noqa) if isinstance(noqa, list) else None
        value = {k: v for k, v in value.items() if k != "ctxtax"}
    if isinstance(value, str):
        out.segments.append(Segment("system", value, strings.locate(value)))
        return
    tools_value = _tools_value(value)
    if tools_value is not None:
        _load_tools(out, tools_value, strings)
        strings.cursor = 0
    for role, text in _messages(value):
        if text.strip():
            out.segments.append(Segment(role, text, strings.locate(text)))


def _tools_value(value: Any) -> Any:
    from ctxtax.formats.mcp_tools import _shape

    if _shape(value) is not None:
        return value
    if isinstance(value, dict) and isinstance(value.get("tools"), list):
        only = {"tools": value["tools"], "server": None}
        if _shape(only) == "dump":
            return only
    return None


def _load_tools(out: TemplateFile, value: Any, strings: _Strings) -> None:
    from ctxtax.formats import mcp_tools
    from ctxtax.formats._document import Document

    doc = Document(kind="json", value=value, source=str(out.path), path=out.path)
    (ctx,) = mcp_tools.read(doc)
    out.tools = ctx.tools
    for spec in ctx.tools:
        offset = strings.offset(spec.name)
        if offset is not None:
            out.tool_offsets.setdefault(spec.name, offset)


def _messages(value: Any) -> list[tuple[Role, str]]:
    """The ``(role, text)`` prompt messages in a parsed YAML / JSON value (see the README)."""
    out: list[tuple[Role, str]] = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], str):
                role = _ROLES.get(str(item[0]).lower())
                if role is not None:
                    out.append((role, item[1]))
            else:
                out += _messages(item)
        return out
    if not isinstance(value, dict):
        return out
    lc_id = value.get("id")
    kwargs = value.get("kwargs")
    if isinstance(lc_id, list) and lc_id and isinstance(kwargs, dict):
        return _langchain(str(lc_id[-1]), kwargs)
    if isinstance(value.get("role"), str) and "content" in value:
        role = _ROLES.get(value["role"].lower())
        content = value["content"]
        if role is not None:
            if isinstance(content, str):
                out.append((role, content))
            elif isinstance(content, list):
                for block in content:
                    if isinstance(block, dict) and isinstance(block.get("text"), str):
                        out.append((role, block["text"]))
        return out
    for key, role in _PROMPT_KEYS.items():
        if isinstance(value.get(key), str):
            out.append((role, value[key]))
    if isinstance(value.get("messages"), list):
        out += _messages(value["messages"])
    return out


def _langchain(kind: str, kwargs: dict[str, Any]) -> list[tuple[Role, str]]:
    """A LangChain ``dumpd`` object: ChatPromptTemplate, *MessagePromptTemplate, PromptTemplate."""
    if kind.endswith("MessagePromptTemplate"):
        name = kind.removesuffix("MessagePromptTemplate").lower()
        role = _ROLES.get(str(kwargs.get("role", name)).lower(), "user")
        return [(role, text) for _, text in _messages(kwargs.get("prompt"))]
    if kind.endswith("Message") and isinstance(kwargs.get("content"), str):
        name = kind.removesuffix("Message").removesuffix("Chat").lower()
        return [(_ROLES.get(str(kwargs.get("role", name)).lower(), "user"), kwargs["content"])]
    if kind == "PromptTemplate" and isinstance(kwargs.get("template"), str):
        return [("system", kwargs["template"])]
    return _messages(kwargs.get("messages", []))


__all__ = ["SUFFIXES", "Segment", "SourceMap", "TemplateFile", "load_file", "read_text"]
