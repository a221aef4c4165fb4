"""Integrity rules (family 9): tool calls and results that must come in pairs."""

from __future__ import annotations

from collections.abc import Iterator

from ctxtax._findings import Edit, Finding, Loc, trusted
from ctxtax._pairing import find_orphans
from ctxtax.rules.base import Rule, Session, register


@register
class BrokenToolPairing(Rule):
    """A tool result without its call, or a tool call without its result.

    What it does:
        Checks that every tool result answers a tool call made before it, and that every tool
        call the conversation moved past has its result. A call in the last assistant turn is
        pending (its results come next) and is not reported.

    Why it costs:
        Providers reject such a request outright (HTTP 400: "tool_result block(s) that reference
        non-existent tool_use ids", "tool_calls must be followed by tool messages"). The usual
        cause is a trimmer or summarizer that cut between a call and its result, and the whole
        call is lost, with the tokens already spent getting there.

    Example:
        A history trimmed to its last 20 messages starts with a ``tool`` message whose
        ``tool_call_id`` names a call in a message that was cut.

    Fix:
        Drop the orphaned result (or restore its call); give a dangling call a result. ctxtax's
        own rewrites never split a pair. Dropping a result loses its text, so that edit is
        unsafe; a dangling call has no automatic fix.

    Options:
        None.
    """

    code = "CTX901"
    name = "broken-tool-pairing"
    severity = "error"

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per orphaned call or result."""
        messages = session.context.messages
        # (the scan reading an API payload made, or the last one extended: see find_orphans)
        for orphan in find_orphans(session.context):
            message = messages[orphan.message_index]
            kind = "tool_result" if orphan.kind == "result_without_call" else "tool_call"
            part = next(
                (
                    j
                    for j, p in enumerate(message.parts)
                    if p.kind == kind and p.tool_call_id == orphan.tool_call_id
                ),
                None,
            )
            loc = trusted(Loc, message=orphan.message_index, part=part)
            edits: tuple[Edit, ...] = ()
            if orphan.kind == "result_without_call" and part is not None:
                edits = (
                    trusted(
                        Edit,
                        action="drop_part",
                        loc=loc,
                        safety="unsafe",
                        tokens_saved=session.tokens.part_tokens[orphan.message_index][part],
                    ),
                )
            yield self.finding(
                orphan.describe() + "; the provider would reject this request",
                loc=loc,
                calls=int(session.residency[orphan.message_index]),
                evidence={
                    "kind": orphan.kind,
                    "tool_call_id": orphan.tool_call_id,
                    "tool": orphan.tool_name,
                },
                edits=edits,
            )


__all__ = ["BrokenToolPairing"]
