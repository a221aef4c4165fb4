"""Clearing old tool results: the lossy strategy of LangChain's ``ClearToolUsesEdit`` and of
Anthropic's context editing, offered as `optimize(..., unsafe=True, clear_old_results=True)`.

Every tool result but the last ``keep_last`` is a candidate for a placeholder that says what was
cleared and how to get it back. Unlike those strategies, the candidates go through the same
cache-aware planning as every other edit: a result deep in a cached prompt is cleared only in a
batch that saves more over the calls to come than the cache writes it causes, and a result
cleared once stays cleared, identically, on every later call.

These are not findings of a rule (an old result is not waste by itself); they carry the
pseudo-code ``CLEAR`` in the edit log.
"""

from __future__ import annotations

from collections.abc import Set

from ctxtax._counting import ContextTokens
from ctxtax._edits import Candidate
from ctxtax._findings import Edit, Finding, Loc, trusted
from ctxtax._model import Context
from ctxtax._tokens import TokenCounter

CODE = "CLEAR"
RULE = "clear-old-results"


def placeholder(call_id: str | None, tool: str | None) -> str:
    """The text a cleared result becomes."""
    what = f"the result of {call_id}" if call_id else "this tool result"
    if tool:
        what += f" ({tool})"
    return f"[ctxtax: {what} was cleared to save context; call the tool again if you need it]"


def clearing_candidates(
    ctx: Context,
    tokens: ContextTokens,
    counter: TokenCounter,
    *,
    keep_last: int,
    include_tools: Set[str] | None,
    exclude_tools: Set[str],
    min_saving: int,
) -> list[Candidate]:
    """A placeholder for every tool result but the last ``keep_last``, oldest first."""
    names: dict[str, str] = {}
    results: list[tuple[int, int]] = []
    for i, message in enumerate(ctx.messages):
        for j, part in enumerate(message.parts):
            if part.kind == "tool_call" and part.tool_call_id and part.tool_name:
                names[part.tool_call_id] = part.tool_name
            elif part.kind == "tool_result":
                results.append((i, j))
    old = results[: max(0, len(results) - max(keep_last, 0))]
    out: list[Candidate] = []
    for i, j in old:
        part = ctx.messages[i].parts[j]
        tool = part.tool_name or names.get(part.tool_call_id or "")
        if tool is not None:
            if include_tools is not None and tool not in include_tools:
                continue
            if tool in exclude_tools:
                continue
        text = placeholder(part.tool_call_id, tool)
        if part.text == text:
            continue  # cleared already
        saved = tokens.part_tokens[i][j] - counter.count(text)
        if saved < max(1, min_saving):
            continue
        loc = trusted(Loc, message=i, part=j)
        edit = trusted(
            Edit,
            action="replace_result",
            loc=loc,
            replacement=text,
            safety="unsafe",
            tokens_saved=saved,
        )
        finding = trusted(
            Finding,
            code=CODE,
            rule=RULE,
            message=f"old tool result of {part.tool_call_id} cleared ({saved:,} tokens)",
            loc=loc,
            tokens=saved,
            edits=(edit,),
        )
        out.append(Candidate(finding, edit))
    return out


__all__ = ["CODE", "RULE", "clearing_candidates", "placeholder"]
