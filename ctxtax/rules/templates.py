"""Template rules (family 5): prompt templates over budget, cache-breaking order, copied paragraphs.

These rules read prompt templates: a context that `ctxtax lint` built (``source_format ==
"template"``), where each prompt file is one model call and the file's messages are its prompt.
In a session audit they stay silent unless their ``sessions`` option is true, so an ordinary
conversation is not flooded with template advice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ctxtax._findings import Edit, Finding, Loc
from ctxtax.lint.placeholders import placeholders
from ctxtax.rules.base import Rule, RuleOptions, Session, register

TEMPLATE_FORMAT = "template"
"""The ``Context.source_format`` of contexts built from prompt templates."""

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SPACE = re.compile(r"\s+")
_COMMENT = re.compile(r"\{#.*?#\}|<!--.*?-->|#\s*ctxtax:[^\n]*", re.DOTALL)
"""Comments left out when paragraphs are compared: a suppression comment must not make a copy
look different from the paragraph it copies."""


class TemplateOptions(RuleOptions):
    """Options every template rule has."""

    sessions: bool = False


def _applies(session: Session, options: RuleOptions) -> bool:
    return session.context.source_format == TEMPLATE_FORMAT or bool(
        getattr(options, "sessions", False)
    )


class BudgetOptions(TemplateOptions):
    """Options of CTX501."""

    max_tokens: int = 4000
    max_total_tokens: int | None = 32000


@register
class OverBudget(Rule):
    """A prompt template, or a set of them, over its token budget.

    What it does:
        Counts each prompt file's tokens (every message, its framing and any tool schemas) and
        reports a file over ``max_tokens``; for a template set (every file `ctxtax lint` read in
        one run) it also reports the sum over ``max_total_tokens``.

    Why it costs:
        A template's tokens are paid on every call that uses it, before the conversation adds
        anything; a long system prompt is the most repeated text an application sends.

    Example:
        ``prompts/agent.md`` is 6,800 tokens of instructions with a budget of 4,000.

    Fix:
        Cut what the model does not need on every call: move reference material behind a tool
        or retrieval, drop examples that repeat the instructions. There is no automatic edit.

    Options:
        ``max_tokens`` (int, 4000): budget of one prompt file (one model call in a session).
        ``max_total_tokens`` (int or null, 32000): budget of the whole template set.
        ``sessions`` (bool, false): also check session audits (each model call's prompt).
    """

    code = "CTX501"
    name = "over-budget"
    Options = BudgetOptions

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per prompt over budget, and one for the set."""
        options = self.options
        assert isinstance(options, BudgetOptions)
        if not _applies(session, options):
            return
        windows = sorted({(c.start, c.end, c.head, c.with_tools) for c in session.calls})
        total = 0
        for start, end, head, with_tools in windows:
            tokens = session.tokens.window(start, end, with_tools=with_tools, head=head)
            total += tokens
            if tokens > options.max_tokens:
                yield self.finding(
                    f"prompt is {tokens:,} tokens, over the budget of {options.max_tokens:,}",
                    loc=Loc(message=start) if end > start else Loc(),
                    tokens=tokens - options.max_tokens,
                    calls=1,
                    evidence={"tokens": tokens, "max_tokens": options.max_tokens},
                )
        limit = options.max_total_tokens
        set_wide = session.context.source_format == TEMPLATE_FORMAT and len(windows) > 1
        if set_wide and limit is not None and total > limit:
            yield self.finding(
                f"template set is {total:,} tokens in {len(windows)} prompts, over the budget "
                f"of {limit:,}",
                loc=Loc(message=0) if session.context.messages else Loc(),
                tokens=total - limit,
                evidence={"tokens": total, "max_total_tokens": limit, "prompts": len(windows)},
            )


class OrderOptions(TemplateOptions):
    """Options of CTX502."""

    min_static_tokens: int = 256
    roles: tuple[str, ...] = ("system", "developer")


@register
class DynamicBeforeStatic(Rule):
    """A template variable ahead of long static text: the prompt cache breaks at the variable.

    What it does:
        In system (and developer) prompts, finds the first placeholder (Jinja ``{{ var }}`` or
        ``{% ... %}``, mustache, f-string / LangChain ``{var}``) that is followed by at least
        ``min_static_tokens`` tokens of static text. Placeholders are found by pattern; the
        template is never rendered.

    Why it costs:
        Providers cache the longest prefix that repeats between calls. A variable near the top
        changes that prefix on every call, so all the static text after it is billed at the full
        input price (or as a cache write) instead of as a cache read, at about a tenth.

    Example:
        ``Today is {{ date }}. The user is {{ user_name }}.`` followed by 2,000 tokens of fixed
        instructions.

    Fix:
        Move the variable parts after the stable instructions (or into the user message) so the
        static prefix is identical on every call. There is no automatic edit: order is meaning.

    Options:
        ``min_static_tokens`` (int, 256): static tokens after the variable that are reported.
        ``roles`` (list, ["system", "developer"]): the roles whose messages are checked.
        ``sessions`` (bool, false): also check session audits.
    """

    code = "CTX502"
    name = "dynamic-before-static"
    Options = OrderOptions

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per message whose first variable precedes enough static text."""
        options = self.options
        assert isinstance(options, OrderOptions)
        if not _applies(session, options):
            return
        count = session.counter.count
        for i, message in enumerate(session.context.messages):
            if message.role not in options.roles:
                continue
            for j, part in enumerate(message.parts):
                if part.kind != "text":
                    continue
                found = [p for p in placeholders(part.text) if not p.is_comment]
                if not found:
                    continue
                first = found[0]
                edges = [p.end for p in found]
                starts = [p.start for p in found[1:]] + [len(part.text)]
                static = sum(count(part.text[a:b]) for a, b in zip(edges, starts, strict=True))
                if static < options.min_static_tokens:
                    continue
                yield self.finding(
                    f"template variable {first.text} comes before {static:,} tokens of static "
                    "text: the prompt cache breaks there; move it after the stable prefix",
                    loc=Loc(message=i, part=j, start=first.start, end=first.end),
                    tokens=static,
                    calls=1,
                    evidence={"variable": first.text, "static_tokens": static},
                )


class ParagraphOptions(TemplateOptions):
    """Options of CTX503."""

    min_tokens: int = 16


def paragraphs(text: str) -> Iterator[tuple[int, int, int]]:
    """``(start, end, next_start)`` of each paragraph: blocks separated by blank lines."""
    pos = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        if match.start() > pos:
            yield pos, match.start(), match.end()
        pos = match.end()
    if pos < len(text.rstrip()):
        yield pos, len(text.rstrip()), len(text)


@register
class DuplicatedParagraph(Rule):
    """The same paragraph twice in a prompt, or copied into several prompts of a template set.

    What it does:
        Splits every message of a prompt template into paragraphs (blocks between blank lines)
        and reports a paragraph of at least ``min_tokens`` tokens that repeats an earlier one
        (whitespace folded): within one prompt file, or across the files of a template set (the
        same instruction block copied into several prompts).

    Why it costs:
        A copy inside one prompt is paid on every call and tells the model nothing new. Copies
        across prompts drift apart when one is edited and the others are not.

    Example:
        ``Always answer in JSON. Never include comments.`` appears in the system prompt's rules
        and again at its end; or in ``support.md``, ``billing.md`` and ``sales.md``.

    Fix:
        Within one prompt the later exact copy is removed (a safe edit; `ctxtax lint --fix`).
        Across prompts there is no automatic edit: keep the block in one shared file and include
        it (``{% include "rules.md" %}``) where it is needed.

    Options:
        ``min_tokens`` (int, 16): shortest paragraph reported, in tokens.
        ``sessions`` (bool, false): also check session audits.
    """

    code = "CTX503"
    name = "duplicated-paragraph"
    Options = ParagraphOptions

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per later copy of a paragraph."""
        options = self.options
        assert isinstance(options, ParagraphOptions)
        if not _applies(session, options):
            return
        seen: dict[str, list[Loc]] = {}
        calls = session.calls
        for i, message in enumerate(session.context.messages):
            for j, part in enumerate(message.parts):
                if part.kind not in ("text", "document"):
                    continue
                for start, end, after in paragraphs(part.text):
                    text = part.text[start:end]
                    key = _SPACE.sub(" ", _COMMENT.sub("", text)).strip()
                    if not key:
                        continue
                    here = Loc(message=i, part=j, start=start, end=end)
                    earlier = seen.setdefault(key, [])
                    earlier.append(here)
                    if len(earlier) == 1:
                        continue
                    tokens = session.counter.count(text)
                    if tokens < options.min_tokens:
                        continue
                    near = [
                        loc
                        for loc in earlier[:-1]
                        if any(c.start <= (loc.message or 0) and i < c.end for c in calls)
                    ]
                    together = bool(near)
                    first = near[0] if near else earlier[0]
                    edits: tuple[Edit, ...] = ()
                    if together:
                        cut = _cut(part.text, start, end, after)
                        edits = (
                            Edit(
                                action="replace_text",
                                loc=Loc(message=i, part=j, start=cut[0], end=cut[1]),
                                replacement="",
                                safety="safe",
                                tokens_saved=tokens,
                            ),
                        )
                    where = "earlier in this prompt" if together else "in another prompt"
                    yield self.finding(
                        f"duplicated paragraph ({tokens:,} tokens), also {where}",
                        loc=here,
                        source=first,
                        similarity=1.0,
                        tokens=tokens,
                        calls=1,
                        evidence={"paragraph": key[:80]},
                        edits=edits,
                    )


def _cut(text: str, start: int, end: int, after: int) -> tuple[int, int]:
    """The range to delete with a paragraph: it and the blank lines after it (or before it,
    for the last paragraph), so the text around keeps one paragraph break."""
    if after < len(text):
        return start, after
    before = start
    while before > 0 and text[before - 1] in " \t\r\n":
        before -= 1
    return before, end


__all__ = ["TEMPLATE_FORMAT", "DuplicatedParagraph", "DynamicBeforeStatic", "OverBudget"]
