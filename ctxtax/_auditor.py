"""`Auditor`: audit a growing session again and again, paying for the new messages only.

Middleware sees the same history on every call, one or two messages longer each time. An
`Auditor` keeps what it computed between calls:

- messages it already read (OpenAI and Anthropic dicts), reused while the caller passes the same
  objects with the same content objects (a dict whose ``content`` was replaced is read again);
- token ids, in the counter's cache, keyed by the text itself;
- the duplicate index (fingerprints, the first-occurrence table, MinHash signatures and LSH
  keys), extended with the new blocks while the old ones are unchanged, rebuilt otherwise;
- per-message token counts, and the findings of the rules that say how they can be reused
  (`ctxtax._memo`): message-scoped rules check only new messages, the duplication rules run
  again only when the index found a new repeat.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ctxtax._accel import load_numba_in_background
from ctxtax._context_audit import Audited, find_waste
from ctxtax._dupes import DuplicateIndex
from ctxtax._inputs import check_pairing, check_sizes, read_tool_list
from ctxtax._memo import AuditMemo
from ctxtax._model import Call, Context, Message
from ctxtax._prefix import same_prefix
from ctxtax._pricing import Price, parse_prices
from ctxtax._report import Report
from ctxtax._session import CachePolicy
from ctxtax._tokens import TokenCounter, default_counter, prefer_tiktoken
from ctxtax.formats import load_all

_API_SHAPES = ("openai", "anthropic")


NUMBA_SESSION_TOKENS = 20_000
"""Tokens a session kept by an `Auditor` holds before numba is worth loading for its calls."""


class Auditor:
    """Audits the same (growing) session repeatedly, reusing earlier work.

    Args:
        model: the model to count and price for.
        tools: tool definitions (OpenAI, Anthropic or MCP shape), unless each call passes them.
        format: the input format, instead of detecting it on the first call.
        select, ignore, rule_options: which rules run, as for `ctxtax.audit`.
        counter: a `TokenCounter` (default: tiktoken offline, shared cache).
        prices: price overrides, as for `ctxtax.audit`.
        cache_policy: the caching rules of the estimate, as for `ctxtax.audit`.
        strict: refuse broken tool-call pairing in API payloads, as for `ctxtax.audit`.

    It keeps state between audits: audits from several threads must take turns.

    Example::

        auditor = ctxtax.Auditor(model="gpt-4o")
        for turn in agent_loop():
            report = auditor.audit(messages)   # costs about the new messages only
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        tools: Any = None,
        format: str | None = None,
        select: Iterable[str] | None = None,
        ignore: Iterable[str] | None = None,
        rule_options: Mapping[str, Mapping[str, Any]] | None = None,
        counter: TokenCounter | None = None,
        prices: Mapping[str, Any] | None = None,
        cache_policy: CachePolicy | None = None,
        strict: bool = True,
        max_message_chars: int = 5_000_000,
    ) -> None:
        from ctxtax.rules import select_rules

        self.model = model
        self.format = format
        self.counter = counter or default_counter(model)
        self.prices: dict[str, Price] = parse_prices(prices) if prices else {}
        self.cache_policy: CachePolicy | None = cache_policy
        self.strict = strict
        self.max_message_chars = max_message_chars
        self.rules = select_rules(select, ignore, rule_options)
        self._tools = read_tool_list(tools) if tools is not None else None
        self._read_cache: list[_Read] = []
        self._system: tuple[Any, Message | None] | None = None
        self._checked: tuple[Message, ...] = ()
        self._derived: tuple[tuple[Message, ...], tuple[Call, ...]] = ((), ())
        self._index: DuplicateIndex | None = None
        self.memo = AuditMemo()
        """Token counts and findings kept between audits (see `ctxtax._memo`)."""
        self.audits = 0
        self.rebuilds = 0

    # -- reading ------------------------------------------------------------------------------

    def _read_api(self, messages: list[Any], system: Any) -> Context:
        from ctxtax.formats import anthropic, openai_chat

        fmt = self.format or ("anthropic" if system is not None else None)
        if fmt is None:
            fmt = "openai" if openai_chat.detect(_doc(messages)) else "anthropic"
            self.format = fmt
        module = anthropic if fmt == "anthropic" else openai_chat
        out: list[Message] = []
        offset = 0
        if fmt == "anthropic" and system is not None:
            if self._system is None or self._system[0] is not system:
                self._system = (system, anthropic.read_system(system, source="<object>"))
            head = self._system[1]
            if head is not None:
                out.append(head)
                offset = 1
        cache = self._read_cache
        # The common case first: the dicts of last time, with the same content and tool-call
        # objects, and some more after them.
        n = len(cache)
        if (
            n
            and len(messages) >= n
            and all(map(operator.is_, messages, map(_RAW, cache)))
            and all(map(operator.is_, map(_content_of, messages[:n]), map(_CONTENT, cache)))
            and all(map(operator.is_, map(_calls_of, messages[:n]), map(_CALLS, cache)))
        ):
            fresh = list(cache)
        else:
            fresh = []
        read: list[Message] = [entry.message for entry in fresh]
        for i in range(len(fresh), len(messages)):
            raw = messages[i]
            content = raw.get("content") if isinstance(raw, dict) else None
            calls = raw.get("tool_calls") if isinstance(raw, dict) else None
            hit = cache[i] if i < len(cache) else None
            if hit is None or not hit.same(raw, content, calls):
                message = module.read_message(raw, index=i + offset, source="<object>")
                hit = _Read(raw, content, calls, message)
            fresh.append(hit)
            read.append(hit.message)
        # Tool results carry the name of the tool whose call they answer; a message named
        # before with the same names is the same object again (so later caches keyed on the
        # message object hold).
        names: dict[str | None, str | None] = {}
        for entry in fresh:
            if entry.calls_named:
                names.update(entry.calls_named)
        for entry in fresh:
            if not entry.unnamed:
                out.append(entry.message)
                continue
            wanted = tuple(names.get(c) for c in entry.unnamed)
            if entry.named is None or entry.names != wanted:
                (entry.named,) = anthropic.fill_tool_names([entry.message], names)
                entry.names = wanted
            out.append(entry.named)
        self._read_cache = fresh
        named = tuple(out)
        return Context(
            messages=named,
            source_format=fmt,
            source="<object>",
            model=self.model,
            request=True,
            meta={"shape": "messages"},
            raw=messages,
        )

    def _context(self, messages: Any, tools: Any, system: Any) -> Context | None:
        if isinstance(messages, Context):
            ctx = messages
        elif (
            isinstance(messages, list)
            and messages
            and all(map(_is_dict, messages))
            and (self.format in (None, *_API_SHAPES))
        ):
            ctx = self._read_api(messages, system)
        else:
            contexts = load_all(messages, format=self.format)
            if len(contexts) != 1:
                return None
            ctx = contexts[0]
        specs = read_tool_list(tools) if tools is not None else self._tools
        if specs is not None:
            ctx = ctx.model_copy(update={"tools": specs})
        # the leading messages checked last time, the very same objects
        checked = same_prefix(self._checked, ctx.messages)
        check_sizes(ctx, self.max_message_chars, first=checked)
        self._checked = ctx.messages
        if self.strict and ctx.source_format in _API_SHAPES:
            check_pairing(ctx)
        return ctx

    # -- auditing -----------------------------------------------------------------------------

    def audit(self, messages: Any, *, tools: Any = None, system: Any = None) -> Report:
        """Audit the session as it is now; earlier work is reused where it still holds."""
        from ctxtax._gc import paused_gc

        self.audits += 1
        with paused_gc():
            ctx = self._context(messages, tools, system)
            if ctx is None:
                from ctxtax._engine import audit

                return audit(
                    messages,
                    model=self.model,
                    format=self.format,
                    counter=self.counter,
                    prices=self.prices,
                    cache_policy=self.cache_policy,
                    strict=self.strict,
                )
            return self._find(ctx).report()

    def find(self, ctx: Context) -> Audited:
        """The counts and findings of one conversation, its report built only when asked (what
        an `Optimizer` needs each call)."""
        from ctxtax._gc import paused_gc

        self.audits += 1
        with paused_gc():
            checked = self._context(ctx, None, None)
            assert checked is not None  # a Context is one conversation
            return self._find(checked)

    def _find(self, ctx: Context) -> Audited:
        index = self._index
        if index is None or index.matches_prefix(ctx) < len(index.blocks):
            from ctxtax._context_audit import shared_options

            index = DuplicateIndex.empty(self.counter, shared_options(self.rules)["duplicates"])
            self.rebuilds += 1
        calls = self._model_calls(ctx)
        if self.audits == 2:
            prefer_tiktoken(self.counter)  # kept between calls: tiktoken's encoder pays off
        index.extend(ctx, calls)
        self._index = index
        if self.audits >= 3 and index.token_count >= NUMBA_SESSION_TOKENS:
            # A kept auditor of a sizeable session: its calls are many, and each saves about a
            # millisecond on numba (see the function; it does nothing the second time).
            load_numba_in_background()
        return find_waste(
            ctx,
            model=self.model,
            counter=self.counter,
            prices=self.prices,
            cache_policy=self.cache_policy,
            rules=self.rules,
            duplicate_index=index,
            memo=self.memo,
            calls=calls,
        )

    def _model_calls(self, ctx: Context) -> tuple[Call, ...]:
        """``ctx.model_calls()``; calls derived from assistant messages seen before are kept."""
        if ctx.calls is not None:
            return ctx.calls
        from ctxtax._findings import trusted

        seen, kept = self._derived
        same = same_prefix(seen, ctx.messages) if kept and kept[0].model == ctx.model else 0
        messages = ctx.messages
        if same == len(seen):  # the session only grew: every call kept still stands
            derived = list(kept)
        else:
            derived = [c for c in kept if c.output is not None and c.output < same]
        derived += [
            trusted(Call, start=0, end=i, output=i, model=ctx.model)
            for i in range(max(same, 1), len(messages))
            if messages[i].role == "assistant"
        ]
        self._derived = (messages, tuple(derived))
        last_is_reply = bool(messages) and messages[-1].role == "assistant"
        if not derived or (ctx.request and not last_is_reply):
            derived.append(trusted(Call, start=0, end=len(messages), model=ctx.model))
        return tuple(derived)

    def reset(self) -> None:
        """Forget everything kept between audits (the counter's token cache stays)."""
        self._read_cache = []
        self._system = None
        self._checked = ()
        self._derived = ((), ())
        self._index = None
        self.memo.clear()


@dataclass(slots=True)
class _Read:
    """A message dict as read last time (kept while the caller passes the same objects)."""

    raw: Any
    content: Any
    calls: Any
    message: Message
    named: Message | None = None
    names: tuple[str | None, ...] = ()
    calls_named: tuple[tuple[str, str | None], ...] = ()
    """(call id, tool name) of its tool calls."""
    unnamed: tuple[str | None, ...] = ()
    """The call ids of its tool results that carry no tool name."""

    def __post_init__(self) -> None:
        parts = self.message.parts
        self.calls_named = tuple(
            (p.tool_call_id, p.tool_name) for p in parts if p.kind == "tool_call" and p.tool_call_id
        )
        self.unnamed = tuple(
            p.tool_call_id for p in parts if p.kind == "tool_result" and p.tool_name is None
        )

    def same(self, raw: Any, content: Any, calls: Any) -> bool:
        """True when the caller passed the very same objects again."""
        return self.raw is raw and self.content is content and self.calls is calls


_RAW, _CONTENT, _CALLS = (operator.attrgetter(f) for f in ("raw", "content", "calls"))


def _is_dict(raw: Any) -> bool:
    return isinstance(raw, dict)


def _content_of(raw: Any) -> Any:
    return raw.get("content") if isinstance(raw, dict) else None


def _calls_of(raw: Any) -> Any:
    return raw.get("tool_calls") if isinstance(raw, dict) else None


def _doc(messages: list[Any]) -> Any:
    from ctxtax.formats._document import Document

    return Document("object", messages)


__all__ = ["Auditor"]
