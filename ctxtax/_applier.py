"""`apply`, and the `Applier` it runs on: edits accepted one by one, the context built after.

The rules an edit must keep are in `ctxtax._edits`. An `Applier` keeps what it worked out (which
ranges are claimed, the edits accepted, the messages built), so an `Optimizer` continues the
last call's work on a session that only grew: the edits made before are not applied again, and
only the messages that new edits touch are built.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence

from ctxtax._edits import (
    _WHOLE_PART,
    Applied,
    AppliedEdit,
    ApplyCache,
    Candidate,
    _Claims,
    _key,
    _logged,
    _range,
    _retext,
    _valid,
    marked_parts,
)
from ctxtax._model import Context, Message, Part, ToolSpec
from ctxtax._prefix import starts_with

_Accepted = tuple[Candidate, tuple[int, int]]
"""An accepted edit of a message part: its candidate and the character range it edits."""


class Applier:
    """The edits accepted so far on a context, and the context they make.

    Candidates are offered in order of preference (`add`); one that conflicts with an edit
    accepted before it is skipped. `build` gives the edited context and the log of the edits.
    """

    def __init__(self, ctx: Context, cache: ApplyCache | None = None) -> None:
        self.ctx = ctx
        self.cache = cache
        self.made: list[Candidate] = []
        """The candidates accepted, in the order they were."""
        self._claims = _Claims()
        self._holding, self._named = marked_parts(ctx, cache)
        self._tool_names = {t.name for t in ctx.tools}
        self._dropped: list[tuple[Candidate, str]] = []
        self._by_message: dict[int, list[_Accepted]] = defaultdict(list)
        self._dirty: set[int] = set()
        # What `build` made: the messages, the originals of the edited ones, and the log of
        # the message edits (in message order, with each entry's message alongside).
        self._messages: list[Message] = []
        self._originals: dict[int, Message] = {}
        self._log: list[AppliedEdit] = []
        self._log_at: list[int] = []

    def extend(self, ctx: Context) -> bool:
        """Go on with ``ctx``, the context so far with messages added after (the very same
        objects first, the same tool list). False, and nothing changed, when ``ctx`` is not
        that, or its new messages hold ``[ctxtax: ...]`` marks (which may protect parts the
        accepted edits touch: the edits must be applied again)."""
        if not starts_with(ctx.messages, self.ctx.messages):
            return False
        if ctx.tools is not self.ctx.tools and ctx.tools != self.ctx.tools:
            return False
        holding, named = marked_parts(ctx, self.cache)
        if holding != self._holding:
            return False
        self.ctx, self._named = ctx, named
        return True

    def add(self, candidates: Sequence[Candidate]) -> None:
        """Accept each candidate that can be made with the edits accepted before it."""
        ctx, claims, named, holding = self.ctx, self._claims, self._named, self._holding
        for cand in candidates:
            edit, finding = cand.edit, cand.finding
            if edit.action == "drop_tool":
                name = edit.loc.tool
                if name in self._tool_names and name not in {n for _, n in self._dropped}:
                    self._dropped.append((cand, name))
                    self.made.append(cand)
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
            # Every edit that leaves a reference protects its source, lossy ones too (a near
            # copy reduced to "near copy of X above" and the lines that differ needs X as it is).
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
            self._by_message[key[0]].append((cand, (a, b)))
            self._dirty.add(key[0])
            self.made.append(cand)

    def build(self) -> Applied:
        """The context with the accepted edits made (only the messages edited since the last
        build are built again)."""
        ctx, cache = self.ctx, self.cache
        if cache is not None:
            cache.prune(ctx)
        messages = self._messages
        messages.extend(ctx.messages[len(messages) :])
        for i in sorted(self._dirty):
            built, log = _build_message(i, ctx.messages[i], self._by_message[i], cache)
            messages[i] = built
            self._originals[i] = ctx.messages[i]
            lo, hi = bisect_left(self._log_at, i), bisect_right(self._log_at, i)
            self._log[lo:hi] = log
            self._log_at[lo:hi] = [i] * len(log)
        self._dirty.clear()
        tools = ctx.tools
        original_tools: tuple[ToolSpec, ...] | None = None
        tool_log: list[AppliedEdit] = []
        if self._dropped:
            gone = {name for _, name in self._dropped}
            original_tools = ctx.tools
            tools = tuple(t for t in ctx.tools if t.name not in gone)
            tool_log = [_logged(cand, name) for cand, name in self._dropped]
        return Applied(
            context=ctx.model_copy(update={"messages": tuple(messages), "tools": tools}),
            edits=[*tool_log, *self._log],
            originals=dict(self._originals),
            original_tools=original_tools,
        )


def apply(
    ctx: Context, candidates: Sequence[Candidate], cache: ApplyCache | None = None
) -> Applied:
    """Make the edits of ``candidates`` that can be made together, in the order given.

    Give the candidates in order of preference; an edit that conflicts with one accepted before
    it is skipped. References (an edit with a ``source``) protect their source from later edits.
    ``cache`` (an `ApplyCache` kept between calls) reuses the messages edited before.
    """
    applier = Applier(ctx, cache)
    applier.add(candidates)
    return applier.build()


def _build_message(
    i: int, message: Message, accepted: list[_Accepted], cache: ApplyCache | None
) -> tuple[Message, list[AppliedEdit]]:
    """Message ``i`` with its accepted edits made, and the log of them (by part, each part's
    edits from right to left); the cache gives back the message built before for the same
    edits."""
    edits_key = tuple(sorted((id(c.edit), rng) for c, rng in accepted))
    kept = cache.built.get((i, id(message))) if cache is not None else None
    if kept is not None and kept[0] is message and kept[1] == edits_key:
        return kept[3], kept[4]
    by_part: dict[int, list[_Accepted]] = defaultdict(list)
    for cand, rng in accepted:
        key = _key(cand.edit.loc)
        assert key is not None
        by_part[key[1]].append((cand, rng))
    log: list[AppliedEdit] = []
    parts: list[Part | None] = list(message.parts)
    for j in sorted(by_part):
        part = message.parts[j]
        text = part.text
        # Right to left, so earlier offsets stay valid.
        for cand, (a, b) in sorted(by_part[j], key=lambda item: -item[1][0]):
            edit = cand.edit
            log.append(_logged(cand, text[a:b] if edit.action == "replace_text" else text))
            if edit.action == "drop_part":
                parts[j] = None
                break
            if edit.action == "replace_result":
                text = edit.replacement or ""
                continue
            text = text[:a] + (edit.replacement or "") + text[b:]
        if parts[j] is not None and text != part.text:
            new = _retext(part, text)
            if part.kind == "tool_result" and part.children:
                new = new.model_copy(update={"children": (), "raw": None})
            parts[j] = new
    built = message.model_copy(
        update={"parts": tuple(p for p in parts if p is not None), "raw": None}
    )
    if cache is not None:
        cache.built[(i, id(message))] = (message, edits_key, [c for c, _ in accepted], built, log)
    return built, log


__all__ = ["Applier", "apply"]
