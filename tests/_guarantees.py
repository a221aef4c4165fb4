"""The guarantees of `ctxtax.optimize`, as checks shared by the real-data and property tests.

Each ``check_*`` raises ``AssertionError`` saying what broke. ``given`` is the input as the
caller passed it (a payload or a `Context`); the *input payload* is that conversation as the API
payload `optimize` writes (the input itself for OpenAI / Anthropic, the unedited conversion for a
log), read back.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import ctxtax
from ctxtax import Context, Message, Optimized, Part
from ctxtax._counting import count_context, provider_for
from ctxtax._inputs import to_contexts
from ctxtax._pairing import find_orphans
from ctxtax._tokens import default_counter
from ctxtax.rules._terminal import render

API = ("openai", "anthropic")
REFERENCE = re.compile(r"\[ctxtax: (?:same as|near copy of) ")


@dataclass(frozen=True)
class Run:
    """One `optimize` call and what its guarantees are checked against."""

    given: Any
    options: dict[str, Any]
    out: Optimized
    input_payload: Any
    """What `ctxtax.revert` must give back: the JSON input, or a log's unedited payload."""
    before: Context
    """``input_payload`` read back: the conversation the edits were made on, unedited."""


def run(given: Any, expected_payload: Any = None, **options: Any) -> Run:
    """`optimize` ``given`` with ``options``. ``expected_payload`` is the JSON input when
    ``given`` came from one (default: ``given`` itself for a payload; for a `Context` of an API
    format, what its writer gives; for a log, the payload `optimize` makes with no rule)."""
    out = ctxtax.optimize(given, **options)
    if expected_payload is None:
        if isinstance(given, Context) and given.source_format in API:
            expected_payload = ctxtax.write(given)
        elif isinstance(given, Context):
            expected_payload = ctxtax.optimize(given, select=[], **options).payload
        else:
            expected_payload = given
    [before] = to_contexts(expected_payload, format=out.format, strict=False)
    return Run(given, options, out, expected_payload, before)


# -- 1. valid out ----------------------------------------------------------------------------


def _blank(part: Part) -> bool:
    return (
        part.kind in ("text", "reasoning", "tool_result")
        and not part.text.strip()
        and not part.children
        and not part.encrypted
    )


def _empty(message: Message) -> bool:
    return all(_blank(p) for p in message.parts)


def _tool_parts(ctx: Context) -> Counter[tuple[int, str, str | None]]:
    return Counter(
        (i, p.kind, p.tool_call_id)
        for i, m in enumerate(ctx.messages)
        for p in m.parts
        if p.kind in ("tool_call", "tool_result")
    )


def _orphans(ctx: Context) -> set[tuple[str, str]]:
    return {(o.kind, o.tool_call_id) for o in find_orphans(ctx)}


def check_valid(r: Run) -> None:
    """Every tool call keeps its result and every result its call, in the output context and in
    the written payload read back strictly; no message is left empty; the roles (so the system
    prompt first) are those of the input: no message added, removed or moved."""
    before, after = r.before, r.out.context
    paired = not find_orphans(before)
    [reread] = to_contexts(r.out.payload, format=r.out.format, strict=paired)
    roles = [m.role for m in before.messages]
    assert [m.role for m in after.messages] == roles, "the output context changed the roles"
    assert [m.role for m in reread.messages] == roles, "the written payload changed the roles"
    if roles and roles[0] == "system":
        assert reread.messages[0].role == "system"
    for ctx in (after, reread):
        assert _orphans(ctx) == _orphans(before), f"orphaned tool messages: {find_orphans(ctx)}"
        assert _tool_parts(ctx) == _tool_parts(before), "a tool call or result moved or vanished"
    for i, (old, new, back) in enumerate(
        zip(before.messages, after.messages, reread.messages, strict=True)
    ):
        if not _empty(old):
            assert not _empty(new) and not _empty(back), f"message {i} was left empty"
        for part in new.parts:
            if part not in old.parts:
                assert part.text.strip() or part.children, f"message {i}: an edit left a blank part"


# -- 2. idempotent ---------------------------------------------------------------------------


def check_idempotent(r: Run) -> None:
    """Optimizing the output again, with the same options, makes no edit and changes nothing."""
    again = ctxtax.optimize(r.out.payload, **r.options)
    assert [e.describe() for e in again.edits] == [], "a second optimize made more edits"
    assert again.payload == r.out.payload


# -- 3. revert -------------------------------------------------------------------------------


def check_revert(r: Run) -> None:
    """`revert` gives the input back exactly."""
    back = ctxtax.revert(r.out)
    assert back == r.input_payload, "revert did not give the input back"
    if r.out.edits:
        assert r.out.payload != r.input_payload


# -- 4. tokens -------------------------------------------------------------------------------


def check_tokens(r: Run) -> None:
    """Fewer tokens or as many, in total and in every message."""
    out = r.out
    assert out.tokens_after <= out.tokens_before
    model = out.context.model
    counter = default_counter(model)
    provider = provider_for(model, out.format)
    before = count_context(r.before, counter, provider=provider)
    after = count_context(out.context, counter, provider=provider)
    assert before.total == out.tokens_before
    assert after.total == out.tokens_after
    up = [
        i
        for i, (a, b) in enumerate(zip(before.message_tokens, after.message_tokens, strict=True))
        if b > a
    ]
    assert not up, f"messages {up} came out longer"
    if not out.edits:
        assert out.tokens_after == out.tokens_before


# -- 5. nothing unique lost ------------------------------------------------------------------


def visible_lines(text: str) -> set[str]:
    """The non-blank lines of ``text`` as a terminal shows them, stripped.

    The safe noise edits change only what this folds away: CTX401 writes what a terminal shows
    (escape sequences dropped, ``\\r`` and backspace redraws replayed: `render`), CTX404 drops
    trailing blanks, blank-line runs and the ``\\r`` of ``\\r\\n``.
    """
    return {line.strip() for line in render(text).split("\n") if line.strip()}


def shown(ctx: Context) -> str:
    """Every part's text as a terminal shows it, joined."""
    return "\n".join(render(p.text) for m in ctx.messages for p in m.parts)


def check_nothing_unique_lost(r: Run) -> None:
    """Safe mode: every non-blank line of the input (as `visible_lines` sees it) is somewhere in
    the output's text."""
    text = shown(r.out.context)
    kept = {line.strip() for line in text.split("\n")}
    lost = sorted(
        line
        for m in r.before.messages
        for p in m.parts
        for line in visible_lines(p.text)
        if line not in kept and line not in text
    )
    assert not lost, f"{len(lost)} line(s) lost, e.g. {lost[0][:200]!r}"


def check_references(r: Run) -> None:
    """Both modes: every reference still in the output (``same as X above``, ``near copy of X
    above``) stands for text the output still has: each line the edit removed is there."""
    messages = r.out.context.messages
    text = shown(r.out.context)
    for edit in r.out.edits:
        marker = edit.replacement or ""
        if not REFERENCE.match(marker) or edit.loc.message is None:
            continue
        holder = "\n".join(render(p.text) for p in messages[edit.loc.message].parts)
        if marker.split("]")[0] not in holder:
            continue  # the part holding it was replaced since (a lossy edit, with its own note)
        where = holder if "earlier in this part" in marker else text
        missing = [line for line in visible_lines(edit.removed) if line not in where]
        assert not missing, (
            f"{edit.describe()}: {marker[:80]!r} stands for text the output lost: {missing[0]!r}"
        )


# -- 6. deterministic ------------------------------------------------------------------------


def fingerprint(out: Optimized) -> tuple[str, list[str], int]:
    """What must not change between two runs on the same input."""
    return (
        json.dumps(out.payload, sort_keys=True, ensure_ascii=False),
        [f"{e.describe()} {e.replacement!r}" for e in out.edits],
        out.deferred,
    )


def check_all(r: Run) -> None:
    """Guarantees 1 to 5 (6 needs a second run: compare `fingerprint`s)."""
    check_valid(r)
    check_revert(r)
    check_tokens(r)
    check_references(r)
    if not r.options.get("unsafe", False):
        check_nothing_unique_lost(r)
    check_idempotent(r)
