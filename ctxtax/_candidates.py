"""The edits the options allow, in order of preference: what `optimize` and an `Optimizer`
plan with, from the findings of an audit.

An `Optimizer` asks again at every call of a growing session, with mostly the same findings:
`KeptCandidates` keeps each finding's allowed edits and their last order (`ctxtax._ordered`).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from itertools import compress
from typing import TYPE_CHECKING, Any

from ctxtax._counting import ContextTokens
from ctxtax._edits import Candidate
from ctxtax._findings import Finding
from ctxtax._model import Context
from ctxtax._ordered import KeptOrder
from ctxtax._tokens import TokenCounter

if TYPE_CHECKING:
    from ctxtax._optimize import OptimizeOptions

_Allowed = tuple[Candidate, tuple[int, int] | None]
"""An allowed edit, and the part it makes unsafe changes to (kept when among the last results)."""


def preference(cand: Candidate) -> tuple[Any, ...]:
    """The order candidates are offered in: safe before unsafe, then the ones saving most, then
    by position (deterministic)."""
    edit = cand.edit
    loc = edit.loc
    return (
        edit.safety != "safe",
        -edit.tokens_saved,
        loc.message if loc.message is not None else -1,
        loc.part or 0,
        loc.start or 0,
        cand.finding.code,
    )


class KeptCandidates:
    """What `candidates` worked out, kept by an `Optimizer` between calls: each finding's
    allowed edits (while the finding is the same object), the pool of them for the findings of
    the last call, and the last order."""

    def __init__(self) -> None:
        self.allowed: dict[int, tuple[Finding, tuple[_Allowed, ...]]] = {}
        self.order: KeptOrder[Candidate] = KeptOrder(preference)
        self._ids: set[int] = set()
        self._pool: list[Candidate] = []
        self._at: dict[tuple[int, int], list[Candidate]] = {}
        """The candidates of ``_pool`` that make unsafe changes to a part, by part."""

    def pool(
        self, findings: list[Finding], opts: OptimizeOptions, names: dict[tuple[int, int], str]
    ) -> tuple[list[Candidate], dict[tuple[int, int], list[Candidate]]]:
        """The allowed edits of ``findings`` (in the order found), and the unsafe ones by part.

        A growing session mostly finds what it found last time and a few findings more: those
        are added to the last pool (found by identity, without a pass over every finding)."""
        by_id = dict(zip(map(id, findings), findings, strict=True))
        if len(by_id) != len(findings) or not self._ids <= by_id.keys():
            self._ids, self._pool, self._at = set(), [], {}  # some gone: start the pool again
        new = by_id.keys() - self._ids
        for finding in compress(findings, map(new.__contains__, map(id, findings))):
            for cand, part in self._entry(finding, opts, names):
                self._pool.append(cand)
                if part is not None:
                    self._at.setdefault(part, []).append(cand)
        self._ids |= new
        if len(self.allowed) > 2 * len(findings) + 64:
            self.allowed = {k: v for k, v in self.allowed.items() if k in by_id}
        return self._pool, self._at

    def _entry(
        self, finding: Finding, opts: OptimizeOptions, names: dict[tuple[int, int], str]
    ) -> tuple[_Allowed, ...]:
        entry = self.allowed.get(id(finding))
        if entry is None or entry[0] is not finding:
            entry = self.allowed[id(finding)] = (finding, tuple(_allowed(finding, opts, names)))
        return entry[1]


def _tool_names(ctx: Context) -> dict[tuple[int, int], str]:
    """The tool name of every tool call and tool result part, results named by their call."""
    by_id: dict[str, str] = {}
    out: dict[tuple[int, int], str] = {}
    for i, message in enumerate(ctx.messages):
        for j, part in enumerate(message.parts):
            name = part.tool_name
            if part.kind == "tool_call" and part.tool_call_id and name:
                by_id[part.tool_call_id] = name
            if part.kind == "tool_result" and not name and part.tool_call_id:
                name = by_id.get(part.tool_call_id)
            if part.kind in ("tool_call", "tool_result") and name:
                out[(i, j)] = name
    return out


def _protected_results(ctx: Context, keep_last: int) -> set[tuple[int, int]]:
    """The last ``keep_last`` tool results (found from the end)."""
    found: set[tuple[int, int]] = set()
    for i in range(len(ctx.messages) - 1, -1, -1):
        if len(found) >= keep_last:
            break
        parts = ctx.messages[i].parts
        for j in range(len(parts) - 1, -1, -1):
            if parts[j].kind == "tool_result" and len(found) < keep_last:
                found.add((i, j))
    return found


def candidates(
    ctx: Context,
    findings: Iterable[Finding],
    opts: OptimizeOptions,
    *,
    tokens: ContextTokens | None = None,
    counter: TokenCounter | None = None,
    kept: KeptCandidates | None = None,
) -> list[Candidate]:
    """The edits the options allow, in order of preference (see `preference`); with
    ``clear_old_results`` (and ``unsafe``), then the old tool results to clear (given ``tokens``
    and ``counter``). ``kept``: what an `Optimizer` keeps of the last call's."""
    filtered = opts.include_tools is not None or bool(opts.exclude_tools)
    names = _tool_names(ctx) if filtered else {}
    protected = _protected_results(ctx, opts.keep_last)
    findings = list(findings)
    out: list[Candidate]
    if kept is not None:
        pool, at = kept.pool(findings, opts, names)
        blocked = {id(c) for part in protected for c in at.get(part, ())}
        out = kept.order.sort(
            list(compress(pool, map(operator.not_, map(blocked.__contains__, map(id, pool)))))
            if blocked
            else pool
        )
    else:
        out = [
            cand
            for finding in findings
            for cand, part in _allowed(finding, opts, names)
            if part is None or part not in protected
        ]
        out.sort(key=preference)
    if opts.unsafe and opts.clear_old_results and tokens is not None and counter is not None:
        from ctxtax._clearing import clearing_candidates

        out += clearing_candidates(
            ctx,
            tokens,
            counter,
            keep_last=opts.keep_last,
            include_tools=opts.include_tools,
            exclude_tools=opts.exclude_tools,
            min_saving=opts.min_saving,
        )
    return out


def _allowed(
    finding: Finding, opts: OptimizeOptions, names: dict[tuple[int, int], str]
) -> Iterable[_Allowed]:
    """The edits of ``finding`` the options allow, each with the part it changes unsafely."""
    filtered = opts.include_tools is not None or bool(opts.exclude_tools)
    for edit in finding.edits:
        if edit.safety == "unsafe" and not opts.unsafe:
            continue
        if edit.tokens_saved < max(1, opts.min_saving):
            continue
        loc = edit.loc
        key = (loc.message, loc.part or 0) if loc.message is not None else None
        tool = (loc.tool if key is None else names.get(key)) if filtered else None
        if tool is not None:
            if opts.include_tools is not None and tool not in opts.include_tools:
                continue
            if tool in opts.exclude_tools:
                continue
        yield Candidate(finding, edit), key if edit.safety == "unsafe" else None


__all__ = ["KeptCandidates", "candidates", "preference"]
