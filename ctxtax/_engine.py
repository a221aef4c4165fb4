"""audit(): count, price and report one or more conversations."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctxtax._context_audit import (
    _context_model,
    find_waste,
    mcp_server,
)
from ctxtax._inputs import to_contexts
from ctxtax._model import Context
from ctxtax._pricing import Price, parse_prices
from ctxtax._report import (
    Report,
    combine,
)
from ctxtax._session import (
    CachePolicy,
)
from ctxtax._tokens import TiktokenCounter, TokenCounter, default_counter

if TYPE_CHECKING:
    from ctxtax._config import Config
    from ctxtax.rules.base import Rule


@contextmanager
def _tokenized_in_turn(
    contexts: Sequence[Context], counters: Sequence[TokenCounter]
) -> Iterator[Iterable[int]]:
    """Yield the conversations' indices, each once its texts are tokenized.

    With one tiktoken counter for them all (the usual case), the texts are tokenized in order on
    the counter's helper threads while the caller audits the conversations already done
    (`TiktokenCounter.encode_ahead`): tiktoken runs without the GIL, so the two overlap. The
    first conversation ready comes first: a long text of one does not hold up the next. Other
    counters tokenize every conversation's texts in one batch first; many small conversations
    tokenized one by one would leave the tokenizer's threads idle.
    """
    from ctxtax._counting import context_texts

    if len(contexts) < 2:  # its own token table tokenizes it, in one batch
        yield range(len(contexts))
        return
    shared = counters[0]
    if isinstance(shared, TiktokenCounter) and all(c is shared for c in counters):
        with shared.encode_ahead([context_texts(ctx) for ctx in contexts]) as ahead:
            yield ahead.in_turn()
        return
    groups: dict[int, tuple[TokenCounter, list[str]]] = {}
    for ctx, counter in zip(contexts, counters, strict=True):
        groups.setdefault(id(counter), (counter, []))[1].extend(context_texts(ctx))
    for counter, texts in groups.values():
        counter.encode_many(list(dict.fromkeys(texts)))
    yield range(len(contexts))


def audit(
    messages: Any,
    *,
    tools: Any = None,
    model: str | None = None,
    system: Any = None,
    format: str | None = None,
    counter: TokenCounter | None = None,
    prices: Mapping[str, Any] | None = None,
    cache_policy: CachePolicy | None = None,
    strict: bool = True,
    max_message_chars: int = 5_000_000,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    rule_options: Mapping[str, Mapping[str, Any]] | None = None,
    config: Config | None = None,
) -> Report:
    """Count, price and report the tokens of a session, and find its waste.

    Args:
        messages: OpenAI or Anthropic message dicts (or a request body), a `Context`, or the path
            of any supported session file.
        tools: tool definitions in OpenAI, Anthropic or MCP shape, replacing any in ``messages``.
        model: the model to count and price for (else the one the session names).
        system: an Anthropic ``system`` prompt, when ``messages`` are Anthropic messages.
        format: the input format, instead of detecting it (see `ctxtax.formats.FORMATS`).
        counter: a `TokenCounter`; the default is tiktoken, offline.
        prices: ``{model: {input, cache_write, cache_read, output}}`` in USD per million tokens,
            added to (and overriding) the built-in table.
        cache_policy: ``"anthropic"``, ``"openai"`` or ``"none"``; the default follows the model.
        strict: raise `PairingError` when an API payload has a tool result without its call (or
            a call without its result) instead of reporting it.
        max_message_chars: a message longer than this is an `InputError`.
        select: rule codes or prefixes to run (``["CTX1"]``); all rules by default.
        ignore: rule codes or prefixes not to run.
        rule_options: options per rule code, e.g. ``{"CTX101": {"min_tokens": 64}}``.
        config: a `Config` (see `ctxtax.load_config`): its ``select`` applies when ``select`` is
            not given, its ``ignore`` and rule options add to these, its model is the default.

    Returns:
        A `Report`. For input holding several conversations, the report sums them and lists
        each in ``conversations``.
    """
    from ctxtax._gc import paused_gc
    from ctxtax.rules import select_rules

    if config is not None:
        select = select if select is not None else config.select
        ignore = [*config.ignore, *(ignore or [])]
        rule_options = {**config.rules, **(rule_options or {})}
        model = model or config.model
    table = parse_prices(prices) if prices else {}
    rules = select_rules(select, ignore, rule_options)
    with paused_gc(promote=True):
        return _audit_all(
            messages,
            tools=tools,
            model=model,
            system=system,
            format=format,
            counter=counter,
            table=table,
            cache_policy=cache_policy,
            strict=strict,
            max_message_chars=max_message_chars,
            rules=rules,
        )


def _audit_all(
    messages: Any,
    *,
    tools: Any,
    model: str | None,
    system: Any,
    format: str | None,
    counter: TokenCounter | None,
    table: Mapping[str, Price],
    cache_policy: CachePolicy | None,
    strict: bool,
    max_message_chars: int,
    rules: Sequence[Rule],
) -> Report:
    """`audit` after its options are checked: read, tokenize together, audit each, combine."""
    contexts = to_contexts(
        messages,
        tools=tools,
        system=system,
        format=format,
        strict=strict,
        max_message_chars=max_message_chars,
    )
    counters = [counter or default_counter(_context_model(ctx, model)) for ctx in contexts]
    reports: dict[int, Report] = {}
    with _tokenized_in_turn(contexts, counters) as order:
        for i in order:  # each conversation is audited on its own: any order, the same report
            waste = find_waste(
                contexts[i],
                model=model,
                counter=counters[i],
                prices=table,
                cache_policy=cache_policy,
                rules=rules,
            )
            reports[i] = waste.report()
    source = str(messages) if isinstance(messages, (str, Path)) else contexts[0].source
    in_order = [reports[i] for i in range(len(contexts))]
    return combine(in_order, source=source, fmt=contexts[0].source_format)


__all__ = ["audit", "mcp_server"]
