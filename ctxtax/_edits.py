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
from collections.abc import Iterable, Sequence
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


def apply(
    ctx: Context, candidates: Sequence[Candidate], cache: ApplyCache | None = None
) -> Applied:
    """Make the edits of ``candidates`` that can be made together, in the order given.

    Give the candidates in order of preference; an edit that conflicts with one accepted before
    it is skipped. References (an edit with a ``source``) protect their source from later edits.
    ``cache`` (an `ApplyCache` kept between calls) reuses the messages edited before.
    """
    claims = _Claims()
    holding, named = marked_parts(ctx, cache)
    accepted: list[tuple[Candidate, tuple[int, int] | None, tuple[int, int]]] = []
    dropped_tools: list[tuple[Candidate, str]] = []
    tool_names = {t.name for t in ctx.tools}
    for cand in candidates:
        edit, finding = cand.edit, cand.finding
        if edit.action == "drop_tool":
            name = edit.loc.tool
            if name in tool_names and name not in {n for _, n in dropped_tools}:
                dropped_tools.append((cand, name))
            continue
        key = _key(edit.loc)
        if key is None or key[0] >= len(ctx.messages):
            continue
        message = ctx.messages[key[0]]
        if key[1] >= len(message.parts):
            continue
        part = message.parts[key[1]]
        if not _valid(ctx, edit, part, message):
            continue
        whole = edit.action in _WHOLE_PART
        a, b = (0, len(part.text)) if whole else _range(edit.loc, part)
        if not whole and b <= a:
            continue
        if key in named or (key in holding and (a, b) != (0, len(part.text))):
            continue
        if not claims.free(key, a, b, whole):
            continue
        source = finding.source
        # Every edit that leaves a reference protects its source, lossy ones too (a near copy
        # reduced to "near copy of X above" and the lines that differ needs X as it is).
        src_key = _key(source) if source is not None else None
        if src_key is not None and source is not None:
            src_part = ctx.messages[src_key[0]].parts[src_key[1]]
            sa, sb = _range(source, src_part)
            if not claims.source_intact(src_key, sa, sb):
                continue
            if src_key == key and sa < b and a < sb:
                continue  # a copy overlapping its own source
            claims.protected[src_key].append((sa, sb))
        if whole:
            claims.whole.add(key)
        claims.edited[key].append((a, b))
        accepted.append((cand, key, (a, b)))
    if cache is not None:
        cache.prune(ctx)
    return _build(ctx, accepted, dropped_tools, cache)


_Built = tuple[
    Message, tuple[tuple[int, tuple[int, int]], ...], list[Candidate], Message, list[AppliedEdit]
]
"""An edited message: the original, its edits (by edit object and range), the candidates (they
keep those objects alive), the result and the log of its edits."""


def _build(
    ctx: Context,
    accepted: list[tuple[Candidate, tuple[int, int] | None, tuple[int, int]]],
    dropped_tools: list[tuple[Candidate, str]],
    cache: ApplyCache | None = None,
) -> Applied:
    by_part: dict[tuple[int, int], list[tuple[Candidate, tuple[int, int]]]] = defaultdict(list)
    by_message: dict[int, list[tuple[Candidate, tuple[int, int]]]] = defaultdict(list)
    for cand, key, rng in accepted:
        if key is not None:
            by_part[key].append((cand, rng))
            by_message[key[0]].append((cand, rng))
    messages = list(ctx.messages)
    originals: dict[int, Message] = {}
    log: list[AppliedEdit] = []
    for i in sorted(by_message):
        message = ctx.messages[i]
        edits_key = tuple(sorted((id(c.edit), rng) for c, rng in by_message[i]))
        kept = cache.built.get((i, id(message))) if cache is not None else None
        if kept is not None and kept[0] is message and kept[1] == edits_key:
            originals[i] = message
            messages[i] = kept[3]
            log.extend(kept[4])
            continue
        first_logged = len(log)
        parts: list[Part | None] = list(message.parts)
        for j in sorted({k[1] for k in by_part if k[0] == i}):
            part = message.parts[j]
            text = part.text
            # Right to left, so earlier offsets stay valid.
            for cand, (a, b) in sorted(by_part[(i, j)], key=lambda item: -item[1][0]):
                edit = cand.edit
                log.append(_logged(cand, text[a:b] if edit.action == "replace_text" else text))
                if edit.action == "drop_part":
                    parts[j] = None
                    break
                if edit.action == "replace_result":
                    text = edit.replacement or ""
                    continue
                text = text[:a] + (edit.replacement or "") + text[b:]
            current = parts[j]
            if current is not None and text != part.text:
                new = _retext(part, text)
                if part.kind == "tool_result" and part.children:
                    new = new.model_copy(update={"children": (), "raw": None})
                parts[j] = new
        originals[i] = message
        messages[i] = message.model_copy(
            update={"parts": tuple(p for p in parts if p is not None), "raw": None}
        )
        if cache is not None:
            cands = [c for c, _ in by_message[i]]
            cache.built[(i, id(message))] = (
                message,
                edits_key,
                cands,
                messages[i],
                log[first_logged:],
            )
    tools = ctx.tools
    original_tools: tuple[ToolSpec, ...] | None = None
    if dropped_tools:
        gone = {name for _, name in dropped_tools}
        original_tools = ctx.tools
        tools = tuple(t for t in ctx.tools if t.name not in gone)
        log.extend(_logged(cand, name) for cand, name in dropped_tools)
    log.sort(key=lambda e: (e.loc.message if e.loc.message is not None else -1, e.loc.part or 0))
    return Applied(
        context=ctx.model_copy(update={"messages": tuple(messages), "tools": tools}),
        edits=log,
        originals=originals,
        original_tools=original_tools,
    )


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
    "apply",
    "marked_parts",
]
