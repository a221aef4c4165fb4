"""Family 3, staleness: CTX301 superseded results, CTX302 unreferenced old outputs, CTX303
resolved errors, CTX304 old reasoning.

A stale part was useful once and is not any more, yet every later call pays for it again. The
rules read the session's `Action` table (`ctxtax.rules._file_reads`); each tool result is
reported by one rule at most: a result answered again later is CTX301's (or CTX101's when the new
answer is the same text), a failed one CTX303's, and only the last answer to a call that
succeeded can be CTX302's. Every edit is lossy (``unsafe``) and leaves a placeholder that says
how to get the text back.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from functools import partial
from typing import Any

from pydantic import Field

from ctxtax._findings import Edit, Finding, trusted
from ctxtax.rules._file_reads import Action, actions
from ctxtax.rules._stale_parts import (
    MIN_NEW_WORDS,
    call_fields,
    carried,
    part_text,
    part_tokens,
    replace_part,
    whole_part,
    word_history,
)
from ctxtax.rules.base import Rule, RuleOptions, Session, register

_MISSING = object()


class SupersededOptions(RuleOptions):
    """Options of CTX301."""

    min_tokens: int = Field(default=50, ge=0)
    ignore_tools: tuple[str, ...] = (
        "BashOutput",
        "TaskOutput",
        "KillBash",
        "KillShell",
        "think",
        "submit",
        "scroll_up",
        "scroll_down",
        "AskUserQuestion",
    )


@register
class SupersededResult(Rule):
    """A tool result answered again later: the same call, made again, returned something new.

    What it does:
        Groups the tool calls by what they ask: the same tool with the same arguments
        (canonical JSON, without cosmetic keys such as Claude Code's ``description`` and
        ``timeout``), or, for file reads, the same file and line range whatever the tool
        (``Read``, ``read_file``, ``str_replace_editor view``, ``cat``, ``sed -n 'A,Bp'``). A
        result of at least ``min_tokens`` tokens is superseded when a later call of its group
        returns a different text: the file was edited and read again, ``git status`` run again.
        Calls that change something (a tool named like ``book_reservation``, ``Edit``,
        ``send_email``; SWE-agent's ``edit`` / ``create``) are actions, not questions: running
        one again does not make the first answer stale. Shell commands and file reads are
        compared. Failed calls on either side are CTX303's. A later answer with the same text
        is a copy, reported by CTX101 on the copy; the earlier result is then reported only
        when a still later answer differs, and a copy is never reported here.

    Why it costs:
        The old answer is out of date, and it stays in the prompt of every later call next to
        the new one. Only the calls that carried both are counted: a compaction that dropped
        the old result ended its cost.

    Example:
        ``Read(file_path=app.py)`` at message 10, an ``Edit`` of ``app.py``, and
        ``Read(file_path=app.py)`` again at message 40: the 3,000 tokens of the first read are
        paid on every call after message 40 for a version of the file that no longer exists.

    Fix:
        Replace the old result with a placeholder naming the result that supersedes it and the
        call that gets it back (``[ctxtax: superseded by the result of call_40 below; re-run
        Read(file_path=app.py) to see it]``). Unsafe: the old text is gone. CTX101 / CTX102
        may also point a later copy or near copy back at this result: apply one of the two
        edits, not both, or the text is lost from both places.

    Options:
        ``min_tokens`` (int, 50): smallest result reported, in tokens.
        ``ignore_tools`` (list of str): tools whose repeated calls return new data by design
        (``BashOutput``, ``TaskOutput``, ``scroll_down``, ``think``, ...), never superseded.
    """

    code = "CTX301"
    name = "superseded-result"
    Options = SupersededOptions

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per superseded result."""
        opts = self.options
        assert isinstance(opts, SupersededOptions)
        ignored = {t.lower() for t in opts.ignore_tools}
        # Kept between the audits of a growing session: the groups, and each group's findings.
        # A group is looked at again when it gains an answer, or while a pair in it waits for
        # a call that carries both.
        state = session.memory(f"{self.code}.groups")
        acts = actions(session)
        if state.get("done", 0) > len(acts):
            state.clear()
        groups: dict[str, list[Action]] = state.setdefault("groups", {})
        found: dict[str, list[Finding]] = state.setdefault("found", {})
        waiting: set[str] = state.setdefault("waiting", set())
        touched = set(waiting)
        for action in acts[state.get("done", 0) :]:
            if (
                action.key is not None
                and not action.failed
                and not action.mutating
                and action.name.lower() not in ignored
            ):
                groups.setdefault(action.key, []).append(action)
                touched.add(action.key)
        state["done"] = len(acts)
        for key in touched:
            group = groups[key]
            if len(group) >= 2:
                found[key] = self._group(session, group, opts.min_tokens, waiting, key)
        for key in groups:
            if key in found:
                yield from found[key]
        session.stamp_later(self.code, partial(_superseded_calls, session))

    def _group(
        self, session: Session, group: list[Action], min_tokens: int, waiting: set[str], key: str
    ) -> list[Finding]:
        """The findings of one group of answers to the same question (``key`` joins
        ``waiting`` while a pair in it waits for a call that carries both)."""
        known: dict[Any, Any] = session.memory(f"{self.code}.findings")
        texts = [part_text(session, a.result) for a in group]
        # The next answer whose text differs, computed from the end.
        following: list[int | None] = [None] * len(group)
        for i in range(len(group) - 2, -1, -1):
            following[i] = i + 1 if texts[i + 1] != texts[i] else following[i + 1]
        seen: set[str] = set()
        out: list[Finding] = []
        waiting.discard(key)
        for i, action in enumerate(group):
            copy = texts[i] in seen
            seen.add(texts[i])
            later_at = following[i]
            if copy or later_at is None:
                continue
            later = group[later_at]
            if carried(session, action.result[0], later.result[0]) == 0:
                waiting.add(key)
                continue  # no call carried both yet
            # What a finding says is fixed by the two results; only its calls move as the
            # session grows (brought up to date for the report, below).
            pair = (action.result, later.result)
            finding = known.get(pair, _MISSING)
            if finding is _MISSING:
                finding = known[pair] = self._finding(session, action, later, min_tokens)
            if isinstance(finding, Finding):
                out.append(finding)
        return out

    def _finding(
        self, session: Session, old: Action, new: Action, min_tokens: int
    ) -> Finding | None:
        tokens = part_tokens(session, old.result)
        if tokens < max(min_tokens, 1):
            return None
        calls = carried(session, old.result[0], new.result[0])
        if calls == 0:
            return None
        by = f"the result of {new.where()}" if new.call_id else f"the output in {new.where()}"
        edit, saved = replace_part(
            session,
            old.result,
            f"[ctxtax: superseded by {by} below; re-run {old.describe()} to see it]",
        )
        if saved <= 0:
            return None
        what = f"read of {old.read.describe()}" if old.read else f"result of {old.describe(60)}"
        return self.finding(
            f"{what} ({old.where()}) superseded by the later answer in {new.where()} "
            f"({tokens:,} tokens)",
            loc=whole_part(session, old.result),
            tokens=tokens,
            calls=calls,
            evidence={
                **call_fields(old),
                "superseded_by": new.call_id,
                "superseded_at": new.result[0],
            },
            edits=(edit,),
        )


def _superseded_calls(session: Session, finding: Finding) -> dict[str, Any] | None:
    """A kept CTX301 finding's calls in ``session``: those that carried both answers."""
    calls = carried(session, finding.loc.message or 0, int(finding.evidence["superseded_at"]))
    return None if calls == finding.calls else {"calls": calls}


class StaleOutputOptions(RuleOptions):
    """Options of CTX302."""

    min_tokens: int = Field(default=500, ge=1)
    keep_last: int = Field(default=3, ge=0)


@register
class StaleOutput(Rule):
    """A large old tool output that nothing after it refers to.

    What it does:
        Looks at tool results of at least ``min_tokens`` tokens (500 by default) older than the
        last ``keep_last`` results (3). The words a result brought into the conversation (an
        identifier, path part or number of three digits or more that no earlier message had)
        are its distinctive words; when no later assistant message (text, reasoning, or
        tool-call arguments) uses any of them, the model never acted on the output. Failed
        results (CTX303), results answered again later (CTX301, CTX101) and results that
        brought fewer than five new words (an edit echoing its arguments, a file the model
        wrote itself: copies of known text) are left out.

    Why it costs:
        A large output the agent looked at and moved past stays in every later prompt. Counted
        from the first call after the model's reply to it.

    Example:
        ``find . -name '*.py'`` returns 2,400 tokens of paths; the agent opens none of them
        and goes on to grep for something else. The listing is paid on every later call.

    Fix:
        Replace the output with a placeholder that names the call to run again
        (``[ctxtax: old output of `find . -name '*.py'` removed: nothing later referred to it;
        re-run the call to see it]``). Unsafe: the output is gone, and the reference test is a
        heuristic.

    Options:
        ``min_tokens`` (int, 500): smallest output reported, in tokens.
        ``keep_last`` (int, 3): the most recent tool results, never reported.
    """

    code = "CTX302"
    name = "stale-output"
    Options = StaleOutputOptions

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per unreferenced old output.

        Kept between the audits of a growing session, as a set of results that are reported
        (each with its finding and the reply after it) and results that wait for their reply:
        every condition only ever turns one way as the session grows (a result gets old, gets a
        reply, gets referred to, gets answered again), so an audit looks at the results that
        just got old, the waiting ones, and the ones just referred to or answered again.
        """
        opts = self.options
        assert isinstance(opts, StaleOutputOptions)
        acts = actions(session)
        messages = session.context.messages
        state = session.memory("CTX302.state")
        if state.get("acts", 0) > len(acts) or state.get("messages", 0) > len(messages):
            state.clear()
        last_ok: dict[str, int] = state.setdefault("last_ok", {})
        answered_again: list[tuple[int, int]] = []
        for action in acts[state.get("acts", 0) :]:
            if action.key is not None and not action.failed:
                before = last_ok.get(action.key)
                if before is not None:
                    answered_again.append(acts[before].result)
                last_ok[action.key] = action.order
        replies: list[int] = state.setdefault("replies", [])
        replies += [
            i
            for i in range(state.get("messages", 0), len(messages))
            if messages[i].role == "assistant"
        ]
        new_words, referenced, newly_referenced = word_history(session)
        reported: dict[tuple[int, int], tuple[Action, int, Finding]] = state.setdefault(
            "reported", {}
        )
        waiting: dict[tuple[int, int], Action] = state.setdefault("waiting", {})
        for at in (*answered_again, *newly_referenced):
            reported.pop(at, None)
            waiting.pop(at, None)
        part_tokens = session.tokens.part_tokens
        old = max(len(acts) - opts.keep_last, 0)
        for action in acts[state.get("old", 0) : old]:  # the results that just got old
            at = action.result
            if action.failed or at in referenced:
                continue
            if action.key is not None and last_ok.get(action.key) != action.order:
                continue  # answered again later: CTX301's
            fresh = new_words.get(at)
            if fresh is None or len(fresh) < MIN_NEW_WORDS:
                continue
            if part_tokens[at[0]][at[1]] < opts.min_tokens:
                continue
            waiting[at] = action
        last = len(acts) - 1
        for at, action in list(waiting.items()):
            k = bisect_right(replies, at[0])
            if k == len(replies):
                continue  # no reply after it yet
            calls = carried(session, at[0], replies[k])
            if calls == 0:
                continue
            del waiting[at]
            finding = self._finding(session, action, new_words[at], calls, last - action.order)
            if finding is not None:
                reported[at] = (action, replies[k], finding)
        state.update(acts=len(acts), messages=len(messages), old=max(state.get("old", 0), old))

        now = dict(reported)  # this audit's, whenever its report is built

        def stamp(finding: Finding) -> dict[str, Any] | None:
            """What moved since ``finding`` was made: the calls that carried it, the results
            after it."""
            entry = now.get((finding.loc.message or 0, finding.loc.part or 0))
            if entry is None:
                return None
            action, reply, _ = entry
            changes: dict[str, Any] = {}
            calls = carried(session, action.result[0], reply)
            if finding.calls != calls:
                changes["calls"] = calls
            newer = last - action.order
            if finding.evidence.get("newer_results") != newer:
                changes["evidence"] = {"newer_results": newer}
            return changes or None

        session.stamp_later(self.code, stamp)  # (a one-off audit made every finding just now)
        for _, _, finding in now.values():
            yield finding

    def _finding(
        self, session: Session, action: Action, fresh: list[str], calls: int, newer: int
    ) -> Finding | None:
        tokens = part_tokens(session, action.result)
        edit, saved = replace_part(
            session,
            action.result,
            f"[ctxtax: old output of {action.describe()} removed: nothing later referred to "
            "it; re-run the call to see it]",
        )
        if saved <= 0:
            return None
        return self.finding(
            f"old output of {action.describe(60)} ({action.where()}) never referred to again: "
            f"none of its {len(fresh):,} new words reappear ({tokens:,} tokens)",
            loc=whole_part(session, action.result),
            tokens=tokens,
            calls=calls,
            evidence={
                **call_fields(action),
                "new_words": len(fresh),
                "sample_words": fresh[:5],
                "newer_results": newer,
            },
            edits=(edit,),
        )


class ResolvedErrorOptions(RuleOptions):
    """Options of CTX303."""

    min_tokens: int = Field(default=30, ge=0)
    window: int = Field(default=10, ge=1)
    similarity: float = Field(default=80.0, ge=0, le=100)


def _ratio(a: str, b: str) -> float:
    """rapidfuzz's similarity of two strings, 0-100 (imported on first use: a short audit with
    no retried call does not pay for loading it)."""
    from rapidfuzz import fuzz

    return float(fuzz.ratio(a, b))


def _program_words(command: str) -> list[str]:
    """The words of a command line after any leading ``cd DIR &&``: the program comes first."""
    words = [w for w in command.split() if w != "2>&1"]
    while len(words) > 2 and words[0] == "cd" and words[2] in ("&&", ";"):
        words = words[3:]
    return words


def _similar(failed: Action, retry: Action, similarity: float) -> bool:
    """True when ``retry`` tries again what ``failed`` tried: the same tool on the same file,
    the same command with more words, or nearly the same arguments."""
    if failed.name.lower() != retry.name.lower():
        return False
    if failed.key == retry.key:
        return True
    if (failed.read is None) != (retry.read is None):
        return False  # a failed edit is not retried by viewing the file, nor a read by an edit
    if failed.read is not None and retry.read is not None:
        return failed.read.path == retry.read.path
    if failed.command is not None and retry.command is not None:
        words, again = _program_words(failed.command), _program_words(retry.command)
        if not words or not again or words[0] != again[0]:
            return False
        if set(words) <= set(again):
            return True  # the same command with more words
        # Else the same program and subcommand (``mix test``, not ``mix deps.get``), the rest
        # nearly the same.
        alike = _ratio(" ".join(words), " ".join(again))
        return words[1:2] == again[1:2] and alike >= similarity
    a, b = failed.args, retry.args
    if isinstance(a, dict) and isinstance(b, dict):
        if a.get("command") != b.get("command"):
            return False  # another sub-command of one tool (str_replace_editor create / insert)
        for key in ("file_path", "path", "filename", "notebook_path"):
            if isinstance(a.get(key), str) and isinstance(b.get(key), str):
                return bool(a[key] == b[key])
    return bool(failed.key and retry.key and _ratio(failed.key, retry.key) >= 90)


@register
class ResolvedError(Rule):
    """A failed tool call that a later call retried successfully.

    What it does:
        Finds tool results that report a failure (flagged ``is_error`` by the harness, or text
        that starts like one: ``Error:``, ``<tool_use_error>``, a traceback, ``command not
        found``, or a non-zero exit code with output) and a later successful call that retried
        it: the same tool with the same arguments at any distance, or, within the next
        ``window`` calls, the same tool (and sub-command) on the same file, the same command
        with more words (``git push`` then ``git push --set-upstream origin main``), the same
        program and subcommand with a command line at least ``similarity`` % alike, or other
        arguments at least 90 % alike. Each failed attempt before the success is reported.

    Why it costs:
        Once the retry worked, the error says nothing the model still needs, and it is paid on
        every later call. Failed edits are common: the error repeats the text that was not
        found.

    Example:
        ``Edit(file_path=app.py)`` fails with "String to replace not found in file" and 400
        tokens of the string; the next ``Edit`` of ``app.py`` succeeds.

    Fix:
        Replace the error with a placeholder naming the call that succeeded
        (``[ctxtax: error from Edit(file_path=app.py); retried successfully by call_12
        below]``). The call stays, so the pairing stays valid. Unsafe: the error text is gone.

    Options:
        ``min_tokens`` (int, 30): smallest error reported, in tokens.
        ``window`` (int, 10): how many later calls may hold a retry with changed arguments.
        ``similarity`` (float, 80): how alike (0-100) two command lines of the same program and
        subcommand must be for the later to retry the earlier.
    """

    code = "CTX303"
    name = "resolved-error"
    Options = ResolvedErrorOptions

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per failed result a later call resolved."""
        opts = self.options
        assert isinstance(opts, ResolvedErrorOptions)
        acts = actions(session)
        # Kept between the audits of a growing session: the successes by question, the failures.
        state = session.memory(f"{self.code}.actions")
        if state.get("done", 0) > len(acts):
            state.clear()
        succeeded: dict[str, list[int]] = state.setdefault("succeeded", {})
        failures: list[Action] = state.setdefault("failed", [])
        for action in acts[state.get("done", 0) :]:
            if action.key is None:
                continue
            if action.failed:
                failures.append(action)
            else:
                succeeded.setdefault(action.key, []).append(action.order)
        state["done"] = len(acts)
        for action in failures:
            if part_tokens(session, action.result) < max(opts.min_tokens, 1):
                continue
            retry: Action | None = None
            for later in acts[action.order + 1 : action.order + 1 + opts.window]:
                if not later.failed and _similar(action, later, opts.similarity):
                    retry = later
                    break
            if retry is None:
                orders = succeeded.get(action.key or "", [])
                at = bisect_right(orders, action.order)
                retry = acts[orders[at]] if at < len(orders) else None
            if retry is not None:
                finding = self._finding(session, action, retry)
                if finding is not None:
                    yield finding

    def _finding(self, session: Session, failed: Action, retry: Action) -> Finding | None:
        calls = carried(session, failed.result[0], retry.result[0])
        if calls == 0:
            return None
        tokens = part_tokens(session, failed.result)
        edit, saved = replace_part(
            session,
            failed.result,
            f"[ctxtax: error from {failed.describe()}; retried successfully by "
            f"{retry.where()} below]",
        )
        if saved <= 0:
            return None
        error = next((line for line in part_text(session, failed.result).splitlines() if line), "")
        argument_tokens = part_tokens(session, failed.call) if failed.call else 0
        return self.finding(
            f"error of {failed.describe(60)} ({failed.where()}) resolved by the retry in "
            f"{retry.where()} ({tokens:,} tokens)",
            loc=whole_part(session, failed.result),
            tokens=tokens,
            calls=calls,
            evidence={
                **call_fields(failed),
                "error": error[:200],
                "retried_by": retry.call_id,
                "retried_at": retry.result[0],
                "same_arguments": failed.key == retry.key,
                "argument_tokens": argument_tokens,
            },
            edits=(edit,),
        )


class OldReasoningOptions(RuleOptions):
    """Options of CTX304."""

    keep_last_turns: int = Field(default=1, ge=1)
    include_anthropic: bool = False


def _turn_starts(session: Session) -> tuple[list[int], list[tuple[int, int]]]:
    """Messages that open a turn (user input that is neither a tool result nor the observation
    of a text action), and the readable reasoning parts.

    Kept between the audits of a growing session: only the messages appended since are read;
    which user messages observe a text action is asked of the action table each time."""
    memory = session.memory("CTX304.messages")
    messages = session.context.messages
    done = int(memory.get("done", 0))
    users: list[int] = memory.setdefault("users", [])
    reasoning: list[tuple[int, int]] = memory.setdefault("reasoning", [])
    if done > len(messages):
        done = 0
        users.clear()
        reasoning.clear()
    for i in range(done, len(messages)):
        message = messages[i]
        if message.role == "user":
            if not any(p.kind == "tool_result" for p in message.parts):
                users.append(i)
        elif message.role == "assistant":
            reasoning.extend(
                (i, j)
                for j, part in enumerate(message.parts)
                if part.kind == "reasoning" and not part.encrypted and part.text.strip()
            )
    memory["done"] = len(messages)
    acts = actions(session)
    observed = {a.result[0] for a in acts if a.call is None and a.call_id is None}
    return [i for i in users if i not in observed], reasoning


@register
class OldReasoning(Rule):
    """Reasoning from earlier turns still sent with every request.

    What it does:
        Finds readable reasoning parts (``reasoning`` parts that are not ``encrypted``: those
        have no text to count) in assistant messages before the last ``keep_last_turns`` turns.
        A turn starts at a user message that is not a tool result (nor the observation of a
        text-acting agent), so the reasoning of the current tool loop is always kept.

    Why it costs:
        Reasoning guides the reply it came with; on later turns it is history the model does
        not need, and a client that sends it back (``reasoning_content`` in chat messages,
        summaries) pays for it on every call. Anthropic's API drops the thinking blocks of
        earlier turns itself (newer models may keep them), so Anthropic sessions are skipped
        unless ``include_anthropic`` is set; ctxtax's token table counts them either way.

    Example:
        A chat with ``reasoning_content`` on every assistant message: ten turns in, the
        reasoning of the first nine (8,000 tokens) is still in each prompt.

    Fix:
        Drop the reasoning parts of earlier turns (the client should not send them back).
        Unsafe: the reasoning is gone, and a provider that checks signatures of thinking
        blocks in the current tool loop must keep those (they are never reported).

    Options:
        ``keep_last_turns`` (int, 1): the most recent turns whose reasoning is kept.
        ``include_anthropic`` (bool, false): report Anthropic sessions too.
    """

    code = "CTX304"
    name = "old-reasoning"
    Options = OldReasoningOptions

    def check(self, session: Session) -> Iterator[Finding]:
        """One finding per old reasoning part."""
        opts = self.options
        assert isinstance(opts, OldReasoningOptions)
        if session.tokens.provider == "anthropic" and not opts.include_anthropic:
            return
        starts, reasoning = _turn_starts(session)
        keep = opts.keep_last_turns
        if len(starts) < keep or not reasoning:
            return
        cutoff = starts[-keep]
        for i, j in reasoning:
            if i >= cutoff:
                break
            turn = bisect_right(starts, i) - 1
            stale_from = starts[turn + keep]
            finding = self._finding(session, (i, j), turn, stale_from, len(starts))
            if finding is not None:
                yield finding

    def _finding(
        self, session: Session, at: tuple[int, int], turn: int, stale_from: int, turns: int
    ) -> Finding | None:
        tokens = part_tokens(session, at)
        calls = carried(session, at[0], stale_from)
        if tokens <= 0 or calls == 0:
            return None
        others = [p for p in session.context.messages[at[0]].parts if p.kind != "reasoning"]
        loc = whole_part(session, at)
        edits = (
            (trusted(Edit, action="drop_part", loc=loc, safety="unsafe", tokens_saved=tokens),)
            if others
            else ()
        )
        back = turns - 1 - turn
        return self.finding(
            f"reasoning of an assistant message {back} turn(s) back still sent ({tokens:,} tokens)",
            loc=loc,
            tokens=tokens,
            calls=calls,
            evidence={
                "turns_back": back,
                "stale_from": stale_from,
                "provider": session.tokens.provider,
            },
            edits=edits,
        )


__all__ = ["OldReasoning", "ResolvedError", "StaleOutput", "SupersededResult"]
