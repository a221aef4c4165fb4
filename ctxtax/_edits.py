"""Applying edits to a context: conflicts, protected sources, and the log that undoes them.

Rules propose `Edit`s; only this module applies them. An edit is accepted when

- it touches nothing another accepted edit touched (two ranges of one part may not overlap; a
  whole-part action excludes every other edit of that part),
- it removes nothing that an accepted reference points at: a duplicate replaced by "same as the
  tool result of call_1 above" protects that result, so a later unsafe edit cannot remove the copy
  that stays (and a reference is refused when its source was already edited away),
- it keeps the request valid: no tool call or tool result is dropped, no message is left empty,
  no text inside tool-call arguments (JSON) is cut,
- it leaves the marks of earlier edits whole: a part that a ``[ctxtax: same as ...]`` (or ``near
  copy of ...``) reference in another part names is not edited again, and a part that holds a
  ``[ctxtax: ...]`` mark is only ever replaced as a whole. The marks are the only memory an
  output carries of the edits made to it, so this holds across the rounds of one `optimize` and
  when an optimized payload is optimized again.

Every accepted edit is logged with the text it removed, and the message (or tool list) it changed
is kept as it was, so `undo` gives back the context exactly.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ctxtax._findings import Edit, EditAction, Finding, Loc, Safety
from ctxtax._model import Context, Message, Part, ToolSpec
from ctxtax._prefix import starts_with

_WHOLE_PART: frozenset[EditAction] = frozenset({"replace_result", "drop_part"})

MARK = "[ctxtax: "
"""How every text an edit writes starts."""

# The places a reference names (see `ctxtax.rules.duplication.describe_block`).
_REFERENCE = re.compile(
    r"\[ctxtax: (?:same as|near copy of) (?:the tool result of (?P<result>[^\s\]]+)"
    r"|the arguments of tool call (?P<call>[^\s\]]+)"
    r"|message (?P<message>\d+)(?: part (?P<part>\d+))?)"
)


@dataclass(frozen=True, slots=True)
class AppliedEdit:
    """One edit made: the rule that proposed it, where, what, and what it removed."""

    code: str
    rule: str
    action: EditAction
    loc: Loc
    safety: Safety
    tokens_saved: int
    replacement: str | None
    removed: str
    """The text (or, for a dropped tool, the tool's name) the edit took out."""

    def describe(self) -> str:
        """``CTX101 replace_text message 4, part 0, chars 0-900: -233 tokens`` style text."""
        return f"{self.code} {self.action} {self.loc.describe()}: -{self.tokens_saved:,} tokens"


@dataclass
class Applied:
    """A context with edits made, the edits, and what is needed to undo them."""

    context: Context
    edits: list[AppliedEdit]
    originals: dict[int, Message] = field(default_factory=dict)
    """The messages as they were before the edits, by index."""
    original_tools: tuple[ToolSpec, ...] | None = None
    """The tool list as it was, when an edit changed it."""

    def undo(self) -> Context:
        """The context as it was before the edits."""
        messages = list(self.context.messages)
        for i, message in self.originals.items():
            messages[i] = message
        update: dict[str, object] = {"messages": tuple(messages)}
        if self.original_tools is not None:
            update["tools"] = self.original_tools
        return self.context.model_copy(update=update)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An edit proposed by a finding, as the planner hands it to `apply`."""

    finding: Finding
    edit: Edit


def _key(loc: Loc) -> tuple[int, int] | None:
    if loc.message is None or loc.part is None:
        return None
    return loc.message, loc.part


def _range(loc: Loc, part: Part) -> tuple[int, int]:
    start = 0 if loc.start is None else max(0, loc.start)
    end = len(part.text) if loc.end is None else min(len(part.text), loc.end)
    return start, end


class _Claims:
    """Which character ranges of which parts are edited, or protected as a reference's source."""

    def __init__(self) -> None:
        self.edited: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
        self.whole: set[tuple[int, int]] = set()
        self.protected: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)

    @staticmethod
    def _hits(ranges: Iterable[tuple[int, int]], a: int, b: int) -> bool:
        return any(a < hi and lo < b for lo, hi in ranges)

    def free(self, key: tuple[int, int], a: int, b: int, whole: bool) -> bool:
        if key in self.whole or self._hits(self.protected.get(key, ()), a, b):
            return False
        if whole:
            return not self.edited.get(key)
        return not self._hits(self.edited.get(key, ()), a, b)

    def source_intact(self, key: tuple[int, int], a: int, b: int) -> bool:
        return key not in self.whole and not self._hits(self.edited.get(key, ()), a, b)


class ApplyCache:
    """What `apply` worked out for the messages of a growing session, kept by an `Optimizer`
    between calls: each message's marked parts, and each edited message with its log, reused
    while the message object and its edits are the same (so a prompt sent again holds the very
    objects it held before)."""

    def __init__(self) -> None:
        self.marks: dict[int, tuple[Message, tuple[int, ...]]] = {}
        self.built: dict[tuple[int, int], _Built] = {}
        self.holding: tuple[tuple[Message, ...], frozenset[tuple[int, int]]] | None = None

    def prune(self, ctx: Context) -> None:
        """Forget the entries of messages ``ctx`` no longer holds, once there are many."""
        if len(self.marks) + len(self.built) > 8 * len(ctx.messages) + 128:
            alive = {id(m) for m in ctx.messages}
            self.marks = {k: v for k, v in self.marks.items() if k in alive}
            self.built = {k: v for k, v in self.built.items() if k[1] in alive}


def _marks(message: Message, cache: ApplyCache | None) -> tuple[int, ...]:
    if cache is not None:
        kept = cache.marks.get(id(message))
        if kept is not None and kept[0] is message:
            return kept[1]
    found = tuple(j for j, part in enumerate(message.parts) if MARK in part.text)
    if cache is not None:
        cache.marks[id(message)] = (message, found)
    return found


def _holding(ctx: Context, cache: ApplyCache | None) -> set[tuple[int, int]]:
    """The parts of ``ctx`` that hold a mark; a cache extends what it found for the messages
    the context starts with (the same objects) instead of looking at every message again."""
    messages = ctx.messages
    first = 0
    holding: set[tuple[int, int]] = set()
    if cache is not None and cache.holding is not None:
        seen, found = cache.holding
        if starts_with(messages, seen):
            first, holding = len(seen), set(found)
    for i in range(first, len(messages)):
        for j in _marks(messages[i], cache):
            holding.add((i, j))
    if cache is not None:
        cache.holding = (messages, frozenset(holding))
    return holding


def marked_parts(
    ctx: Context, cache: ApplyCache | None = None
) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """(the parts that hold a ``[ctxtax: ...]`` mark, the parts a reference in another part
    names): what earlier edits left, to be kept as they are."""
    holding = _holding(ctx, cache)
    named: set[tuple[int, int]] = set()
    if not holding:
        return holding, named
    by_id: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for i, message in enumerate(ctx.messages):
        for j, part in enumerate(message.parts):
            if part.tool_call_id is not None:
                by_id[(part.kind, part.tool_call_id)].append((i, j))
    for key in holding:
        for found in _REFERENCE.finditer(ctx.messages[key[0]].parts[key[1]].text):
            if found["result"] is not None:
                targets = by_id.get(("tool_result", found["result"]), [])
            elif found["call"] is not None:
                targets = by_id.get(("tool_call", found["call"]), [])
            else:
                targets = [(int(found["message"]), int(found["part"] or 0))]
            named.update(t for t in targets if t != key)
    return holding, named


def _valid(ctx: Context, edit: Edit, part: Part, message: Message) -> bool:
    """Edits that would make the request invalid are never made."""
    if edit.action == "drop_part":
        if part.kind in ("tool_call", "tool_result"):
            return False
        return sum(1 for p in message.parts) > 1
    if edit.action == "replace_text":
        return part.kind != "tool_call"
    if edit.action == "replace_result":
        return part.kind in ("tool_result", "text")
    return False


def _retext(part: Part, text: str) -> Part:
    """``part`` with new text; its source block is kept when it holds the text in a known field,
    so fields beside it (``cache_control``, ``is_error``) survive."""
    raw = part.raw
    if isinstance(raw, dict):
        if isinstance(raw.get("text"), str):
            return part.model_copy(update={"text": text, "raw": {**raw, "text": text}})
        if raw.get("type") == "tool_result" and not part.children:
            return part.model_copy(update={"text": text, "raw": {**raw, "content": text}})
    if isinstance(raw, str):
        return part.model_copy(update={"text": text, "raw": text})
    return part.model_copy(update={"text": text, "raw": None})


_Built = tuple[
    Message, tuple[tuple[int, tuple[int, int]], ...], list[Candidate], Message, list[AppliedEdit]
]
"""An edited message: the original, its edits (by edit object and range), the candidates (they
keep those objects alive), the result and the log of its edits."""


def _logged(cand: Candidate, removed: str) -> AppliedEdit:
    edit, finding = cand.edit, cand.finding
    return AppliedEdit(
        code=finding.code,
        rule=finding.rule,
        action=edit.action,
        loc=edit.loc,
        safety=edit.safety,
        tokens_saved=edit.tokens_saved,
        replacement=edit.replacement,
        removed=removed,
    )


__all__ = [
    "MARK",
    "Applied",
    "AppliedEdit",
    "ApplyCache",
    "Candidate",
    "marked_parts",
]
