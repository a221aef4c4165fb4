"""The normalized session model every format reads into and writes out of.

A `Context` is one conversation as the model saw it: its `Message`s (each a tuple of `Part`s), the
`ToolSpec`s sent with it, and the model `Call`s that read it. Every model is a frozen pydantic v2
model. Readers keep the provider's original object in ``raw`` (excluded from dumps and repr) so a
writer can give back, byte for byte, every message that no edit touched.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["system", "developer", "user", "assistant", "tool"]
"""Who speaks. ``tool`` is an OpenAI-style tool message; Anthropic puts results in ``user``."""

PartKind = Literal["text", "reasoning", "tool_call", "tool_result", "image", "document", "other"]
"""What a content part holds."""

ROLES: tuple[Role, ...] = ("system", "developer", "user", "assistant", "tool")
PART_KINDS: tuple[PartKind, ...] = (
    "text",
    "reasoning",
    "tool_call",
    "tool_result",
    "image",
    "document",
    "other",
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class Image(_Frozen):
    """What is known of an image: its size drives its token cost, not its base64 length."""

    media_type: str | None = None
    width: int | None = None
    height: int | None = None
    byte_size: int | None = None
    url: str | None = None
    detail: str | None = None


class Part(_Frozen):
    """One content part of a message.

    ``text`` is the part's readable text: the text itself, the reasoning text, a tool call's
    arguments as JSON, a tool result's text (text blocks joined by a newline), or the compact JSON
    of an ``other`` block. Non-text blocks inside a tool result are its ``children``.
    """

    kind: PartKind
    text: str = ""
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False
    encrypted: bool = False
    image: Image | None = None
    children: tuple[Part, ...] = ()
    raw: Any = Field(default=None, exclude=True, repr=False)


class Usage(_Frozen):
    """Tokens a provider billed for one model call, as recorded in a log or response."""

    input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """All input tokens of the call, whatever their price class."""
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


class Message(_Frozen):
    """One message: a role and its parts, with the ids the source gave it."""

    role: Role
    parts: tuple[Part, ...] = ()
    id: str | None = None
    name: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    raw: Any = Field(default=None, exclude=True, repr=False)

    @property
    def text(self) -> str:
        """The readable text of every part, joined by newlines."""
        return "\n".join(p.text for p in self.parts if p.text)

    @property
    def tool_calls(self) -> tuple[Part, ...]:
        """The tool-call parts of this message."""
        return tuple(p for p in self.parts if p.kind == "tool_call")

    @property
    def tool_results(self) -> tuple[Part, ...]:
        """The tool-result parts of this message."""
        return tuple(p for p in self.parts if p.kind == "tool_result")


class ToolSpec(_Frozen):
    """A tool definition sent with the request: name, description and JSON-schema parameters.

    ``server`` is the MCP server the tool belongs to, when the source says so (an MCP dump, or a
    ``mcp__server__tool`` name).
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    server: str | None = None
    shape: Literal["openai", "openai_function", "anthropic", "mcp", "other"] = "other"
    raw: Any = Field(default=None, exclude=True, repr=False)


class Call(_Frozen):
    """One model call: it read ``messages[start:end]`` (plus the tools) and produced ``output``.

    ``head`` leading messages (a system prompt kept across a compaction) are read too when the
    window starts after them. ``usage`` is what the provider billed, where a log recorded it.
    """

    start: int = 0
    end: int
    head: int = 0
    output: int | None = None
    model: str | None = None
    usage: Usage | None = None
    with_tools: bool = True


SourceFormat = str
"""The name of the format a context was read from (see `ctxtax.formats.FORMATS`)."""


class Context(_Frozen):
    """One conversation as a model saw it: messages, tools, and the calls that read them.

    ``request`` is True for an API payload about to be sent (its tail is one more call's prompt),
    False for a recorded log.
    """

    messages: tuple[Message, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    source_format: SourceFormat = "object"
    source: str | None = None
    title: str | None = None
    model: str | None = None
    calls: tuple[Call, ...] | None = None
    request: bool = False
    meta: dict[str, Any] = Field(default_factory=dict)
    raw: Any = Field(default=None, exclude=True, repr=False)

    @model_validator(mode="after")
    def _calls_inside(self) -> Context:
        """A recorded call must read messages the context has."""
        n = len(self.messages)
        for i, call in enumerate(self.calls or ()):
            if not 0 <= call.start <= call.end <= n or not 0 <= call.head <= n:
                raise ValueError(
                    f"calls[{i}] reads messages[{call.start}:{call.end}] (head {call.head}), "
                    f"but the context has {n} messages"
                )
            if call.output is not None and not 0 <= call.output < n:
                raise ValueError(f"calls[{i}].output is {call.output}, outside {n} messages")
        return self

    def model_calls(self) -> tuple[Call, ...]:
        """The calls that read this context.

        ``calls`` as the source recorded them (``()`` when the log shows that no call was made);
        when the source does not say (``None``), one call per assistant message, each reading
        everything before it; and for a ``request`` (an API payload about to be sent) whose last
        message is not the assistant's, the call that will read it all.
        """
        if self.calls is not None:
            return self.calls
        from ctxtax._findings import trusted  # built from typed values: no validation

        model = self.model
        derived = [
            trusted(Call, start=0, end=i, output=i, model=model)
            for i, m in enumerate(self.messages)
            if m.role == "assistant" and i > 0
        ]
        last_is_reply = bool(self.messages) and self.messages[-1].role == "assistant"
        if not derived or (self.request and not last_is_reply):
            derived.append(trusted(Call, start=0, end=len(self.messages), model=model))
        return tuple(derived)

    @property
    def recorded_usage(self) -> Usage | None:
        """The sum of usage recorded for the calls, or None if the source recorded none."""
        usages = [c.usage for c in self.calls or () if c.usage is not None]
        if not usages:
            return None
        total = Usage()
        for u in usages:
            total = total + u
        return total


__all__ = [
    "PART_KINDS",
    "ROLES",
    "Call",
    "Context",
    "Image",
    "Message",
    "Part",
    "PartKind",
    "Role",
    "ToolSpec",
    "Usage",
]
