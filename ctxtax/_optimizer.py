"""`Optimizer`: `optimize()` kept between the calls of a growing session, cache-aware.

Middleware calls it before every model call with the whole history. It audits incrementally (an
`Auditor` keeps the token ids and the duplicate index), makes again exactly the edits it made last
time (so the prompt it sends starts with the bytes it sent before, and the provider's cache still
holds them), and adds new edits only where they pay for the cache they break: free in the part of
the prompt that is new since the last call, in a batch deeper in the history when the batch saves
more over the calls to come than the cache writes it causes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ctxtax._applier import Applier
from ctxtax._auditor import Auditor
from ctxtax._candidates import KeptCandidates, candidates
from ctxtax._context_audit import Audited
from ctxtax._counting import count_context, provider_for
from ctxtax._edits import Applied, AppliedEdit, ApplyCache, Candidate
from ctxtax._gc import paused_gc
from ctxtax._model import Context, Message
from ctxtax._optimize import (
    Optimized,
    OptimizeOptions,
    _guard_tokens,
    _split,
    cached_messages,
    written,
)
from ctxtax._planning import CacheCost, choose
from ctxtax._prefix import same_prefix
from ctxtax._pricing import lookup_price, parse_prices
from ctxtax._report import Report
from ctxtax._session import CachePolicy, cache_policy_for
from ctxtax._tokens import TokenCounter, default_counter


def _identity(cand: Candidate) -> tuple[Any, ...]:
    edit = cand.edit
    loc = edit.loc
    return (
        cand.finding.code,
        edit.action,
        loc.message,
        loc.part,
        loc.start,
        loc.end,
        loc.tool,
        edit.replacement,
    )


def _same_message(a: Message, b: Message) -> bool:
    return a.role == b.role and [(p.kind, p.text) for p in a.parts] == [
        (p.kind, p.text) for p in b.parts
    ]


@dataclass(frozen=True)
class Step:
    """One call of an `Optimizer`: the context to send and what was done to it."""

    context: Context
    edits: list[AppliedEdit]
    tokens_before: int
    tokens_after: int
    deferred: int
    audited: Audited = field(repr=False)

    @property
    def report(self) -> Report:
        """The audit of the context before the edits (built on first use: middleware that does
        not read it does not pay for it)."""
        return self.audited.report()


class Optimizer:
    """Optimize every call of a growing session, keeping earlier edits byte-stable.

    Takes the options of `ctxtax.optimize`. Call `optimize` (message payloads, returns an
    `Optimized`) or `optimize_context` (a `Context`, returns the context to send) before each
    model call with the whole history; keep one `Optimizer` per conversation. It keeps state
    between calls: calls from several threads must take turns (the LangChain middleware does).
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        unsafe: bool = False,
        keep_last: int = 3,
        include_tools: Iterable[str] | None = None,
        exclude_tools: Iterable[str] = (),
        min_saving: int = 8,
        cache_aware: bool = True,
        expected_calls: float | None = None,
        clear_old_results: bool = False,
        cache_policy: CachePolicy | None = None,
        prices: Mapping[str, Any] | None = None,
        counter: TokenCounter | None = None,
        select: Iterable[str] | None = None,
        ignore: Iterable[str] | None = None,
        rule_options: Mapping[str, Mapping[str, Any]] | None = None,
        format: str | None = None,
    ) -> None:
        self.model = model
        self.options = OptimizeOptions(
            unsafe=unsafe,
            keep_last=keep_last,
            include_tools=frozenset(include_tools) if include_tools is not None else None,
            exclude_tools=frozenset(exclude_tools),
            min_saving=min_saving,
            cache_aware=cache_aware,
            expected_calls=expected_calls,
            clear_old_results=clear_old_results,
        )
        self.counter = counter or default_counter(model)
        self.cache_policy = cache_policy
        self.prices = parse_prices(prices) if prices else {}
        self.auditor = Auditor(
            model=model,
            counter=self.counter,
            select=select,
            ignore=ignore,
            rule_options=rule_options,
            format=format,
            strict=False,
        )
        self.calls = 0
        self.rebuilt = 0
        """How many times the history changed under the kept edits (they were dropped)."""
        self._made: list[Candidate] = []
        self._made_ctx: Context | None = None
        """The context the edits in ``_made`` were made on."""
        self._sent: Context | None = None
        self._applied = ApplyCache()
        self._applier: Applier | None = None
        """The last call's edits on its context, to go on from while the session only grows."""
        self._candidates = KeptCandidates()

    def reset(self) -> None:
        """Forget the edits made and the prompt sent (the next call starts afresh)."""
        self._made, self._made_ctx, self._sent = [], None, None
        self._applied = ApplyCache()
        self._applier = None
        self._candidates = KeptCandidates()
        self.auditor.reset()

    def _still_valid(self, ctx: Context) -> bool:
        """True when every part the edits made touched has the text it had when they were
        made, and every tool they dropped is still there."""
        before = self._made_ctx
        for c in self._made:
            m, p = c.edit.loc.message, c.edit.loc.part or 0
            if m is None or before is None:
                continue
            if m >= len(ctx.messages) or p >= len(ctx.messages[m].parts):
                return False
            if ctx.messages[m].parts[p].text != before.messages[m].parts[p].text:
                return False
        names = {t.name for t in ctx.tools}
        return all(c.edit.loc.tool in names for c in self._made if c.edit.action == "drop_tool")

    def _cached(self, ctx: Context) -> int:
        """Leading messages of ``ctx`` (with the kept edits) identical to the prompt sent last."""
        if self._sent is None:
            # First call: the history before the last reply was sent (and cached) already,
            # with or without an optimizer in front of it.
            return cached_messages(ctx)
        if [t.name for t in ctx.tools] != [t.name for t in self._sent.tools]:
            return 0
        same = same_prefix(self._sent.messages, ctx.messages)
        for a, b in zip(ctx.messages[same:], self._sent.messages[same:], strict=False):
            if a is not b and not _same_message(a, b):
                break
            same += 1
        return same

    def optimize_context(self, ctx: Context) -> Context:
        """The context to send for this call: the kept edits, plus the new ones worth making."""
        return self._run(ctx)[1].context

    def step(self, ctx: Context) -> Step:
        """`optimize_context` with what it did: the edits, the tokens before and after, the
        edits deferred for the cache, and the audit of ``ctx`` (for middleware that reports)."""
        return self._run(ctx)[1]

    def _run(self, ctx: Context) -> tuple[Applied, Step]:
        with paused_gc():  # see `ctxtax._gc`: the edits allocate much and free little
            return self._run_paused(ctx)

    def _run_paused(self, ctx: Context) -> tuple[Applied, Step]:
        self.calls += 1
        audited = self.auditor.find(ctx)
        applier = self._applier
        if applier is None or not applier.extend(ctx):
            # Not a plain growth of the last call's context: apply the edits made again.
            if self._made and not self._still_valid(ctx):
                self._made, self._sent = [], None
                self.rebuilt += 1
            applier = Applier(ctx, self._applied)
            applier.add(self._made)
        kept = applier.build()
        cached = self._cached(kept.context)
        model = self.model or ctx.model
        provider = provider_for(model, ctx.source_format)
        counts = self.auditor.memo.counts
        table = (
            audited.tokens
            if audited.provider == provider
            else count_context(ctx, self.counter, provider=provider, memo=counts)
        )
        # The raw findings: edits do not depend on the calls that carried them.
        found = candidates(
            ctx,
            audited.raw_findings,
            self.options,
            tokens=table,
            counter=self.counter,
            kept=self._candidates,
            changes=audited.changes,
        )
        fresh = self._not_made(found)
        deferred = 0
        chosen = fresh
        if self.options.cache_aware and fresh:
            policy = self.cache_policy or cache_policy_for(model, provider)
            priced = lookup_price(model, self.prices)
            remaining = self.options.expected_calls or max(1, self.calls)
            plan = choose(
                fresh,
                count_context(kept.context, self.counter, provider=provider, memo=counts),
                cached=cached,
                remaining_calls=remaining,
                cost=CacheCost.of(policy, priced[1] if priced else None),
            )
            chosen, deferred = plan.chosen, plan.deferred
        together = kept
        if chosen:
            applier.add(chosen)
            together = applier.build()
        applied, after = _guard_tokens(together, table, self.counter, provider, counts)
        if applied is together:
            self._made, self._applier = list(applier.made), applier
        else:  # some edits were undone: the next call applies the rest afresh
            done = {(e.code, e.action, e.loc) for e in applied.edits}
            self._made = [
                c for c in applier.made if (c.finding.code, c.edit.action, c.edit.loc) in done
            ]
            self._applier = None
        self._made_ctx = ctx
        self._sent = applied.context
        return applied, Step(
            context=applied.context,
            edits=applied.edits,
            tokens_before=table.total,
            tokens_after=after.total,
            deferred=deferred,
            audited=audited,
        )

    def _not_made(self, found: list[Candidate]) -> list[Candidate]:
        """The candidates whose edits are not among those made (the same candidate objects
        mostly: quick; else the same edit of the same rule)."""
        made_ids = set(map(id, self._made))
        rest = [c for c in found if id(c) not in made_ids]
        if not rest:
            return rest
        made = {_identity(c) for c in self._made}
        return [c for c in rest if _identity(c) not in made]

    def optimize(self, messages: Any, *, tools: Any = None, system: Any = None) -> Optimized:
        """`optimize_context` for message payloads: the result in the caller's own format."""
        ctx = self.auditor._context(messages, tools, system)
        if ctx is None:
            from ctxtax.errors import InputError

            raise InputError("the Optimizer takes one conversation of OpenAI or Anthropic messages")
        applied, step = self._run(ctx)
        payload = written(applied.context)
        out_messages, out_tools, out_system = _split(payload, applied.context.source_format)
        return Optimized(
            payload=payload,
            messages=out_messages,
            tools=out_tools,
            system=out_system,
            context=applied.context,
            edits=applied.edits,
            tokens_before=step.tokens_before,
            tokens_after=step.tokens_after,
            report=step.report,
            deferred=step.deferred,
            format=applied.context.source_format,
            _undo=[applied],
        )


__all__ = ["Optimizer", "Step"]
