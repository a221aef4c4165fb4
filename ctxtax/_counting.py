"""What a context costs in tokens: every part, every tool schema, message framing and images.

`count_context` builds a `ContextTokens` table once per context. All texts are encoded in one
threaded batch through the counter's cache. Framing follows OpenAI's published recipe for chat
models (3 tokens per message, 1 per name, 3 to prime the reply), which is exact for plain cl100k
requests; everything the recipe does not cover (tool calls, tool schemas, images, other vendors)
is an estimate, and `ContextTokens.estimates` says which parts were estimated.
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from ctxtax._model import Context, Image, Message, Part, ToolSpec
from ctxtax._prefix import starts_with
from ctxtax._tokens import TokenCounter

Provider = Literal["openai", "anthropic"]


@dataclass(frozen=True, slots=True)
class Framing:
    """Tokens a provider adds around content. OpenAI's values are from its cookbook recipe."""

    provider: Provider
    per_message: int = 3
    per_name: int = 1
    reply_priming: int = 3
    per_tool_call: int = 3
    per_tool: int = 7
    tools_overhead: int = 12


OPENAI_FRAMING = Framing("openai")
# Anthropic publishes the tool-use system prompt size (346 tokens with tool_choice auto/none for
# current models); per-message framing is not published, so OpenAI's is used as the estimate.
ANTHROPIC_FRAMING = Framing("anthropic", per_tool=0, tools_overhead=346)

_ANTHROPIC_FORMATS = frozenset({"anthropic", "claude_code", "claude_trace"})


def provider_for(model: str | None, source_format: str | None = None) -> Provider:
    """The provider whose framing and caching rules apply."""
    name = (model or "").lower()
    if "claude" in name or (not name and source_format in _ANTHROPIC_FORMATS):
        return "anthropic"
    return "openai"


def framing_for(provider: Provider) -> Framing:
    """The framing constants of ``provider``."""
    return ANTHROPIC_FRAMING if provider == "anthropic" else OPENAI_FRAMING


def image_tokens(image: Image | None, provider: Provider) -> tuple[int, bool]:
    """(tokens, size_known) for an image, by the provider's published formula."""
    width = image.width if image else None
    height = image.height if image else None
    if provider == "anthropic":
        if not width or not height:
            return 1600, False
        scale = min(1.0, 1568 / max(width, height), math.sqrt(1_150_000 / (width * height)))
        return max(1, round(width * scale) * round(height * scale) // 750), True
    if image is not None and image.detail == "low":
        return 85, True
    if not width or not height:
        return 765, False
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    shortest = min(w, h)
    if shortest > 768:
        w, h = w * 768 / shortest, h * 768 / shortest
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return 85 + 170 * tiles, True


def tool_schema_text(spec: ToolSpec) -> str:
    """The text a tool costs: its name, description and parameter schema as compact JSON."""
    body = {"name": spec.name, "description": spec.description, "parameters": spec.parameters}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


@dataclass(slots=True)
class ContextTokens:
    """Token counts of one context: per message (with framing), per part, per tool.

    ``message_tokens[i]`` includes the framing of message ``i``; ``part_tokens[i][j]`` is part
    ``j`` of message ``i`` (a tool result includes its images). ``window(start, end)`` is what a
    call reading ``messages[start:end]`` pays for its prompt.
    """

    provider: Provider
    framing: Framing
    message_tokens: npt.NDArray[np.int64]
    framing_tokens: npt.NDArray[np.int64]
    part_tokens: list[list[int]]
    tool_tokens: list[int]
    estimates: set[str] = field(default_factory=set)
    _cumulative: npt.NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._cumulative = np.concatenate(([0], np.cumsum(self.message_tokens, dtype=np.int64)))

    @property
    def tools_total(self) -> int:
        """Tokens of all tool schemas plus the once-per-request tool overhead."""
        if not self.tool_tokens:
            return 0
        return sum(self.tool_tokens) + self.framing.tools_overhead

    def messages_between(self, start: int, end: int) -> int:
        """Tokens of ``messages[start:end]`` with their framing."""
        return int(self._cumulative[end] - self._cumulative[start])

    def window(self, start: int, end: int, *, with_tools: bool = True, head: int = 0) -> int:
        """Prompt tokens of a call that reads ``messages[start:end]`` (and ``messages[:head]``)."""
        tools = self.tools_total if with_tools else 0
        pinned = self.messages_between(0, min(head, start)) if head else 0
        return pinned + self.messages_between(start, end) + tools + self.framing.reply_priming

    @property
    def total(self) -> int:
        """The whole context as one request: every message, every tool, the reply priming."""
        return self.window(0, len(self.message_tokens))


def _part_texts(part: Part) -> list[str]:
    if part.kind == "tool_call":
        return [part.tool_name or "", part.text]
    texts = [part.text]
    for child in part.children:
        texts.extend(_part_texts(child))
    return texts


def _part_count(part: Part, lookup: dict[str, int], framing: Framing, estimates: set[str]) -> int:
    if part.kind == "image":
        tokens, known = image_tokens(part.image, framing.provider)
        estimates.add("images" if known else "images of unknown size")
        return tokens
    if part.kind == "tool_call":
        estimates.add("tool calls")
        return lookup[part.tool_name or ""] + lookup[part.text] + framing.per_tool_call
    if part.kind == "reasoning":
        estimates.add("reasoning")
        if part.encrypted and not part.text:
            estimates.add("encrypted reasoning (not counted)")
    total = lookup[part.text]
    for child in part.children:
        total += _part_count(child, lookup, framing, estimates)
    return total


def context_texts(ctx: Context) -> list[str]:
    """Every text `count_context` encodes: roles, names, part texts, then the tool schemas."""
    texts: list[str] = []
    for message in ctx.messages:
        _message_texts(message, texts)
    texts.extend(tool_schema_text(t) for t in ctx.tools)
    return texts


class CountMemo:
    """Per-message and per-tool counts kept between calls of a growing session.

    Keyed by the message (or tool) object itself: contexts are immutable, and an `Auditor` or an
    `Optimizer` hands the same message objects in again while the caller's messages are
    unchanged, so a message counted once is looked up, not walked again. Each entry holds its
    object, so the id it is keyed by cannot be reused by another object while it is here.
    """

    __slots__ = ("_messages", "_recent", "_tools")

    def __init__(self) -> None:
        self._messages: dict[tuple[int, str], tuple[Message, int, list[int], frozenset[str]]] = {}
        self._tools: dict[tuple[int, str], tuple[ToolSpec, str]] = {}
        self._recent: list[tuple[Context, Provider, ContextTokens]] = []

    def nearest(
        self, ctx: Context, provider: Provider
    ) -> tuple[Context, ContextTokens, list[int]] | None:
        """A table counted lately for a context that ``ctx`` mostly repeats: the same tools, at
        most as many messages, all but a few of them (returned) the very same objects at the
        same positions. An optimizer counts the history, then the history with its edits; a
        growing session extends the last count (nothing changed: the first such table wins)."""
        best: tuple[Context, ContextTokens, list[int]] | None = None
        for old, old_provider, table in self._recent:
            if old_provider != provider or old.tools is not ctx.tools:
                continue
            n = len(old.messages)
            if n > len(ctx.messages):
                continue
            if starts_with(ctx.messages, old.messages):
                return old, table, []
            same = np.fromiter(
                map(operator.is_, old.messages, ctx.messages), dtype=np.bool_, count=n
            )
            changed = np.flatnonzero(~same).tolist()
            if len(changed) <= max(16, len(ctx.messages) // 8) and (
                best is None or len(changed) < len(best[2])
            ):
                best = (old, table, changed)
        return best

    def remember(self, ctx: Context, provider: Provider, table: ContextTokens) -> None:
        """Keep ``table`` as one of the last few counted (see `nearest`)."""
        self._recent = [(ctx, provider, table), *self._recent[:2]]

    def prune(self, ctx: Context, *, slack: int = 4) -> None:
        """Forget entries of objects ``ctx`` no longer holds, once they outnumber its own."""
        if len(self._messages) > slack * len(ctx.messages) + 64:
            alive = {id(m) for m in ctx.messages}
            self._messages = {k: v for k, v in self._messages.items() if k[0] in alive}
        if len(self._tools) > slack * len(ctx.tools) + 64:
            alive = {id(t) for t in ctx.tools}
            self._tools = {k: v for k, v in self._tools.items() if k[0] in alive}


def _message_texts(message: Message, texts: list[str]) -> None:
    texts.append(message.role)
    if message.name:
        texts.append(message.name)
    for part in message.parts:
        texts.extend(_part_texts(part))


def count_context(
    ctx: Context,
    counter: TokenCounter,
    *,
    provider: Provider | None = None,
    memo: CountMemo | None = None,
) -> ContextTokens:
    """Count every message, part and tool of ``ctx`` with ``counter``.

    With a ``memo`` (kept by middleware between calls), messages and tools counted before are
    looked up; only new ones are encoded and walked.
    """
    provider = provider or provider_for(ctx.model, ctx.source_format)
    if memo is not None:
        near = memo.nearest(ctx, provider)
        if near is not None and not near[2] and len(near[0].messages) == len(ctx.messages):
            return near[1]
        patched = (
            _patch_table(ctx, counter, provider, memo, *near)
            if near is not None and near[0].messages
            else None
        )
        if patched is not None:
            memo.prune(ctx)
            memo.remember(ctx, provider, patched)
            return patched
    table = _count(ctx, counter, provider, memo)
    if memo is not None:
        memo.prune(ctx)
        memo.remember(ctx, provider, table)
    return table


def _patch_table(
    ctx: Context,
    counter: TokenCounter,
    provider: Provider,
    memo: CountMemo,
    old: Context,
    before: ContextTokens,
    changed: list[int],
) -> ContextTokens | None:
    """``before`` (the table of ``old``) with the ``changed`` messages counted again and the
    messages past ``old``'s added; None when a replaced message took an estimate with it (the
    whole count then says which estimates still hold)."""
    n = len(old.messages)
    todo = [*changed, *range(n, len(ctx.messages))]
    rest = _count(
        ctx.model_copy(update={"messages": tuple(ctx.messages[i] for i in todo)}),
        counter,
        provider,
        memo,
    )
    for i in changed:
        entry = memo._messages.get((id(old.messages[i]), provider))
        if entry is None or not entry[3] <= rest.estimates:
            return None
    message_tokens = np.concatenate((before.message_tokens, rest.message_tokens[len(changed) :]))
    framing_tokens = np.concatenate((before.framing_tokens, rest.framing_tokens[len(changed) :]))
    part_tokens = before.part_tokens + rest.part_tokens[len(changed) :]
    for k, i in enumerate(changed):
        message_tokens[i] = rest.message_tokens[k]
        framing_tokens[i] = rest.framing_tokens[k]
        part_tokens[i] = rest.part_tokens[k]
    return ContextTokens(
        provider=provider,
        framing=before.framing,
        message_tokens=message_tokens,
        framing_tokens=framing_tokens,
        part_tokens=part_tokens,
        tool_tokens=before.tool_tokens,
        estimates=before.estimates | rest.estimates,
    )


def _count(
    ctx: Context, counter: TokenCounter, provider: Provider, memo: CountMemo | None
) -> ContextTokens:
    framing = framing_for(provider)
    messages = ctx.messages
    known: list[tuple[Message, int, list[int], frozenset[str]] | None]
    if memo is None:
        known = [None] * len(messages)
    else:
        entries = memo._messages
        known = [entries.get((id(m), provider)) for m in messages]
    texts: list[str] = []
    for message, hit in zip(messages, known, strict=True):
        if hit is None:
            _message_texts(message, texts)
    schema_texts = _schema_texts(ctx.tools, provider, memo)
    texts.extend(schema_texts)
    unique = list(dict.fromkeys(texts))
    lookup = dict(zip(unique, (len(ids) for ids in counter.encode_many(unique)), strict=True))
    lookup[""] = 0

    estimates: set[str] = set()
    message_tokens: list[int] = []
    framing_tokens: list[int] = []
    part_tokens: list[list[int]] = []
    for message, known_counts in zip(messages, known, strict=True):
        hit = known_counts
        if hit is None:
            frame = framing.per_message + lookup[message.role]
            if message.name:
                frame += lookup[message.name] + framing.per_name
            own: set[str] = set()
            counts = [_part_count(p, lookup, framing, own) for p in message.parts]
            hit = (message, frame, counts, frozenset(own))
            if memo is not None:
                memo._messages[(id(message), provider)] = hit
        _, frame, counts, own_estimates = hit
        if own_estimates:
            estimates.update(own_estimates)
        part_tokens.append(counts)
        framing_tokens.append(frame)
        message_tokens.append(frame + sum(counts))
    tool_tokens = [lookup[s] + framing.per_tool for s in schema_texts]
    if tool_tokens:
        estimates.add("tool schemas")
    if provider != "openai":
        estimates.add("message framing")
    return ContextTokens(
        provider=provider,
        framing=framing,
        message_tokens=np.array(message_tokens, dtype=np.int64),
        framing_tokens=np.array(framing_tokens, dtype=np.int64),
        part_tokens=part_tokens,
        tool_tokens=tool_tokens,
        estimates=estimates,
    )


def _schema_texts(
    tools: tuple[ToolSpec, ...], provider: Provider, memo: CountMemo | None
) -> list[str]:
    if memo is None:
        return [tool_schema_text(t) for t in tools]
    out: list[str] = []
    for spec in tools:
        hit = memo._tools.get((id(spec), provider))
        if hit is None:
            hit = memo._tools[(id(spec), provider)] = (spec, tool_schema_text(spec))
        out.append(hit[1])
    return out


__all__ = [
    "ANTHROPIC_FRAMING",
    "OPENAI_FRAMING",
    "ContextTokens",
    "CountMemo",
    "Framing",
    "Provider",
    "count_context",
    "framing_for",
    "image_tokens",
    "provider_for",
    "tool_schema_text",
]
