"""What an `Auditor` keeps between audits of a growing session, besides the duplicate index.

- token counts per message and per tool schema (`CountMemo`);
- the findings of each rule that says how they may be reused:
  - a rule with ``scope = "message"`` finds in each message from that message alone, so only
    messages it has not seen (a new object, or one at a new position) are checked again;
  - a rule with a ``memo_key`` finds the same things while its key is unchanged (the duplication
    rules: the same repeated spans and near pairs), so it is not run again until the key moves.

Reused findings are the same objects, except ``calls``: both kinds of rule report the calls that
carried the finding's message (its residency), which grows with the session, so a reused finding
gets the message's residency of this audit.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ctxtax._counting import CountMemo
from ctxtax._findings import Finding, replaced
from ctxtax._model import Message
from ctxtax._ordered import KeptOrder
from ctxtax._prefix import same_prefix, starts_with

if TYPE_CHECKING:
    from ctxtax.rules.base import Rule, Session

_Entry = tuple[Message, tuple[Finding, ...]]
_SortKey = tuple[int, int, int, str]


def report_order(finding: Finding) -> _SortKey:
    """Where a finding sorts in a report: by message, part, first token, then rule code."""
    loc = finding.loc
    return (
        loc.message if loc.message is not None else -1,
        loc.part or 0,
        loc.token_start or 0,
        finding.code,
    )


def with_calls(finding: Finding, residency: npt.NDArray[np.int64]) -> Finding:
    """``finding`` with ``calls`` set to its message's residency (itself when unchanged)."""
    message = finding.loc.message
    if message is None or message >= len(residency):
        return finding
    calls = int(residency[message])
    if finding.calls == calls:
        return finding
    return replaced(finding, calls=calls)


class AuditMemo:
    """Token counts and rule findings kept between the audits of one growing session."""

    __slots__ = (
        "_by_message",
        "_codes",
        "_flat",
        "_keyed",
        "_messages",
        "_order",
        "_outputs",
        "_previous",
        "bill",
        "changes",
        "checked",
        "counts",
        "memories",
        "part_rows",
        "residency",
        "reused",
        "rows_state",
        "runs",
        "stale",
        "waste_state",
    )

    def __init__(self) -> None:
        self.counts = CountMemo()
        self._by_message: dict[str, dict[tuple[int, int], _Entry]] = {}
        self._keyed: dict[str, tuple[Hashable, tuple[Finding, ...]]] = {}
        self._flat: dict[str, tuple[tuple[Message, ...], list[Finding]]] = {}
        self.stale: list[Sequence[Finding]] = []
        """The findings the last audit reused with the ``calls`` they were made with (in groups:
        `ctxtax._context_audit.Audited` makes the set of their ids when a report asks)."""
        self._order: KeptOrder[Finding] = KeptOrder(report_order)
        self.runs = 0
        """How many times `run` ran (`changes` are from the run before this one)."""
        self._codes: tuple[str, ...] = ()
        self._outputs: dict[str, Sequence[Finding]] = {}
        """What each rule found in the last audit (see `changes`)."""
        self.changes: tuple[list[Finding], list[Finding]] | None = None
        """(found, gone): the findings the last audit found that the one before did not, and
        the reverse; None when unknown (the first audit, other rules)."""
        self._messages: tuple[Message, ...] = ()
        self._previous: tuple[Message, ...] = ()
        self.memories: dict[str, dict[str, Any]] = {}
        """What rules keep between audits (`Session.memory`)."""
        self.part_rows: dict[int, Any] = {}
        """The report's part rows by message (see `ctxtax._context_audit.Audited`)."""
        self.residency: dict[str, Any] = {}
        """The calls counted in the last audit's residency (see `ctxtax._session.residency`)."""
        self.bill: dict[str, Any] = {}
        """The bill's shares per call (see `ctxtax._session.estimate_bill`)."""
        self.rows_state: dict[str, Any] = {}
        """The report's rows and totals of the last audit (see `ctxtax._report_build`)."""
        self.waste_state: dict[int, Any] = {}
        """Each message's waste and the findings it came from (see `ctxtax._waste.measure`)."""
        self.checked = 0
        """Messages the message-scoped rules checked in the last audit (for tests and benches)."""
        self.reused: list[str] = []
        """Codes of the keyed rules whose findings the last audit reused without running them."""

    def clear(self) -> None:
        """Forget everything kept."""
        self.counts = CountMemo()
        self._by_message.clear()
        self._keyed.clear()
        self._flat.clear()
        self._messages = self._previous = ()
        self._order.clear()
        self._codes, self._outputs, self.changes = (), {}, None
        self.memories = {}
        self.part_rows = {}
        self.residency = {}
        self.bill = {}
        self.rows_state = {}
        self.waste_state = {}

    def unchanged(self, messages: tuple[Message, ...]) -> int:
        """How many leading ``messages`` are the very objects of the previous audit's (then
        remember these for the next audit)."""
        same = same_prefix(self._messages, messages)
        if same < len(self._messages):
            self.memories = {}  # an earlier message changed: what rules kept may not hold
        if len(self.part_rows) > 2 * len(messages) + 64:
            alive = {id(m) for m in messages}
            self.part_rows = {k: v for k, v in self.part_rows.items() if k in alive}
        self._previous, self._messages = self._messages, messages
        return same

    def run(self, rules: Sequence[Rule], session: Session) -> list[Finding]:
        """The findings of ``rules`` in ``session``, reusing what still holds.

        Reused findings keep the ``calls`` they had when they were made; `stale` holds them
        (in groups), and `with_calls` brings them up to date (the report does; edits do not
        need it). `changes` says what this run found and lost against the last one.
        """
        out: list[Finding] = []
        self.checked = 0
        self.reused = []
        self.stale = []
        self.runs += 1
        codes = tuple(rule.code for rule in rules)
        if codes != self._codes:
            self._codes, self._outputs = codes, {}
            self.changes = None
        else:
            self.changes = ([], [])
        for rule in rules:
            found: Sequence[Finding]
            if rule.scope == "message":
                found = self._per_message(rule, session)
            elif (key := rule.memo_key(session)) is None:
                found = list(rule.check(session))
            elif (kept := self._keyed.get(rule.code)) is not None and kept[0] == key:
                self.reused.append(rule.code)
                self.stale.append(kept[1])
                found = kept[1]
            else:
                # A keyed rule reports its findings' messages' residency as their calls: it may
                # hand back findings it kept with their old calls; the report brings them up.
                found = tuple(rule.check(session))
                self._keyed[rule.code] = (key, found)
                self.stale.append(found)
            self._changed(rule.code, found)
            out.extend(found)
        return out

    def _changed(self, code: str, now: Sequence[Finding]) -> None:
        """Add what rule ``code`` found now and not last time, and the reverse, to `changes`
        (mostly the rule's list grew at its end: no pass over its findings)."""
        before = self._outputs.get(code, ())
        self._outputs[code] = now
        if self.changes is None or now is before:
            return
        added, removed = self.changes
        if starts_with(now, before):
            added.extend(now[len(before) :])
            return
        was, has = set(map(id, before)), set(map(id, now))
        added.extend(f for f in now if id(f) not in was)
        removed.extend(f for f in before if id(f) not in has)

    def ordered(self, found: list[Finding]) -> list[Finding]:
        """``found`` (what `run` returned) in report order (`report_order`, ties in the order
        found): the last audit's order, amended with `changes` (see `ctxtax._ordered`)."""
        if self.changes is None:
            return self._order.sort(found)
        added, removed = self.changes
        return self._order.update(lambda: found, added, removed)

    def _per_message(self, rule: Rule, session: Session) -> list[Finding]:
        messages = session.context.messages
        before = self._flat.get(rule.code)
        if (
            before is not None
            and before[0] is self._previous
            and len(before[0]) <= min(session.unchanged, len(messages))
        ):
            # The session only grew: the findings kept stand, the new messages are checked.
            seen, flat = before
            self.stale.append(flat)
            todo = range(len(seen), len(messages))
            new = self._check(rule, session, list(todo)) if todo else {}
            flat = [*flat, *(f for i in todo for f in new[i])]
            self._flat[rule.code] = (messages, flat)
            return flat
        store = self._by_message.get(rule.code, {})
        kept: dict[tuple[int, int], _Entry] = {}
        todo_list: list[int] = []
        for i, message in enumerate(messages):
            key = (i, id(message))
            entry = store.get(key)
            if entry is None:
                todo_list.append(i)
            else:
                kept[key] = entry
        found = self._check(rule, session, todo_list) if todo_list else {}
        for i in todo_list:
            kept[(i, id(messages[i]))] = (messages[i], tuple(found[i]))
        self._by_message[rule.code] = kept
        flat = []
        for i, message in enumerate(messages):
            entry_findings = kept[(i, id(message))][1]
            if i not in found:
                self.stale.append(entry_findings)
            flat.extend(entry_findings)
        self._flat[rule.code] = (messages, flat)
        return flat

    def _check(self, rule: Rule, session: Session, todo: list[int]) -> dict[int, list[Finding]]:
        """The findings of a message-scoped rule in the messages ``todo``, by message."""
        self.checked = max(self.checked, len(todo))
        found: dict[int, list[Finding]] = {i: [] for i in todo}
        for finding in rule.check(session.only_messages(todo)):
            at = finding.loc.message
            if at is not None and at in found:
                found[at].append(finding)
        return found


__all__ = ["AuditMemo", "report_order", "with_calls"]
