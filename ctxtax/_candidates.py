"""The edits the options allow, in order of preference: what `optimize` and an `Optimizer`
plan with, from the findings of an audit.

An `Optimizer` asks again at every call of a growing session, with mostly the same findings:
`KeptCandidates` keeps each finding's allowed edits and their last order (`ctxtax._ordered`).
"""

from __future__ import annotations

from collections.abc import Iterable
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
    """What `candidates` worked out, kept by an `Optimizer` between calls: the allowed edits of
    the last call's findings, which of them were held back (unsafe edits of the last results),
    and their order. Told what the audit found and lost since (`Audited.changes`), a call
    updates these without a pass over every finding."""

    def __init__(self) -> None:
        self.order: KeptOrder[Candidate] = KeptOrder(preference)
        self._run: int | None = None
        """The auditor's run the pool stands for."""
        self._pool: dict[int, tuple[Finding, tuple[_Allowed, ...]]] = {}
        """Each finding's allowed edits, by finding, in the order found."""
        self._at: dict[tuple[int, int], list[Candidate]] = {}
        """The candidates that make unsafe changes to a part, by part."""
        self._held: dict[int, Candidate] = {}
        """The candidates held back last call (their part is among the last results)."""

    def ordered(
        self,
        findings: list[Finding],
        opts: OptimizeOptions,
        names: dict[tuple[int, int], str],
        protected: set[tuple[int, int]],
        changes: tuple[int, list[Finding], list[Finding]] | None,
    ) -> list[Candidate]:
        """The allowed edits of ``findings`` but those held back, in order of preference."""
        if changes is not None and self._run is not None and changes[0] == self._run + 1:
            moved = self._apply(changes[1], changes[2], opts, names, protected)
            if moved is not None:
                self._run = changes[0]
                return self.order.update(self._items, *moved)
        self._pool, self._at = {}, {}
        for finding in findings:
            self._add(finding, opts, names)
        self._held = {id(c): c for part in protected for c in self._at.get(part, ())}
        self._run = changes[0] if changes is not None else None
        return self.order.sort(self._items())

    def _add(
        self, finding: Finding, opts: OptimizeOptions, names: dict[tuple[int, int], str]
    ) -> tuple[_Allowed, ...]:
        allowed = tuple(_allowed(finding, opts, names))
        self._pool[id(finding)] = (finding, allowed)
        for cand, part in allowed:
            if part is not None:
                self._at.setdefault(part, []).append(cand)
        return allowed

    def _apply(
        self,
        found: list[Finding],
        gone: list[Finding],
        opts: OptimizeOptions,
        names: dict[tuple[int, int], str],
        protected: set[tuple[int, int]],
    ) -> tuple[list[Candidate], list[Candidate]] | None:
        """The pool brought to this call: (candidates in, candidates out); None when the
        changes do not fit the pool (then it is made again)."""
        added: list[Candidate] = []
        removed: list[Candidate] = []
        for finding in gone:
            entry = self._pool.pop(id(finding), None)
            if entry is None or entry[0] is not finding:
                return None
            for cand, part in entry[1]:
                if part is not None:
                    self._at[part].remove(cand)
                if self._held.pop(id(cand), None) is None:
                    removed.append(cand)
        for finding in found:
            if id(finding) in self._pool:
                return None
            added.extend(cand for cand, _ in self._add(finding, opts, names))
        held = {id(c): c for part in protected for c in self._at.get(part, ())}
        new = {id(c) for c in added}
        added = [c for c in added if id(c) not in held]
        removed += [c for i, c in held.items() if i not in self._held and i not in new]
        added += [c for i, c in self._held.items() if i not in held and id(c.finding) in self._pool]
        self._held = held
        return added, removed

    def _items(self) -> list[Candidate]:
        held = self._held
        return [c for _, allowed in self._pool.values() for c, _ in allowed if id(c) not in held]


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
    changes: tuple[int, list[Finding], list[Finding]] | None = None,
) -> list[Candidate]:
    """The edits the options allow, in order of preference (see `preference`); with
    ``clear_old_results`` (and ``unsafe``), then the old tool results to clear (given ``tokens``
    and ``counter``). ``kept``: what an `Optimizer` keeps of the last call's; ``changes``: what
    the audit found and lost since the last (`Audited.changes`)."""
    filtered = opts.include_tools is not None or bool(opts.exclude_tools)
    names = _tool_names(ctx) if filtered else {}
    protected = _protected_results(ctx, opts.keep_last)
    findings = list(findings)
    out: list[Candidate]
    if kept is not None:
        out = kept.ordered(findings, opts, names, protected, changes)
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
