"""The guarantees of `ctxtax.optimize` on generated OpenAI and Anthropic conversations.

Hypothesis draws the shape of a session (system prompt, turns, parallel tool calls, what each
tool returns) and a seed for the text; the text is built to hold what the rules edit: exact
copies of earlier tool outputs, spans of them pasted into user messages, near copies, re-reads
of a file after an edit, failed calls retried, boilerplate injected again and again, ANSI colour
and ``\\r`` redraws, progress bars, base64 blobs, repeated log lines, whitespace bloat, unused
tools. Each example is checked for every guarantee (`tests._guarantees`) and for a second run
giving the same output. ``CTXTAX_PROPERTY_EXAMPLES`` sets the number of examples per test.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ctxtax
from tests import _guarantees as g

EXAMPLES = int(os.environ.get("CTXTAX_PROPERTY_EXAMPLES", "25"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

WORDS = (
    "request",
    "response",
    "value",
    "field",
    "handler",
    "status",
    "config",
    "token",
    "cache",
    "session",
    "model",
    "user",
    "result",
    "output",
    "error",
    "retry",
    "timeout",
    "path",
    "file",
    "line",
    "column",
    "index",
    "buffer",
    "stream",
    "parser",
    "module",
    "package",
    "import",
    "export",
    "build",
    "suite",
    "fixture",
    "expected",
    "actual",
    "warning",
    "deprecated",
    "install",
    "download",
    "version",
    "branch",
    "commit",
    "merge",
)
PATHS = ("app.py", "src/models.py", "tests/test_app.py", "README.md")
REMINDER = (
    "<system-reminder>\nThe task list is empty. Keep working on the request above; do not ask "
    "the user to confirm each step, and run the test suite after every change you make to "
    "the code.\n</system-reminder>"
)
TOOLS = {
    "read_file": "Read a file of the repository.",
    "run": "Run a shell command in the sandbox and return its output.",
    "search": "Search the repository for a pattern.",
    "apply_patch": "Replace text in a file.",
    "browse": "Open a web page (never used in these sessions).",
}


@dataclass
class Call:
    """A tool call and its result."""

    id: str
    name: str
    args: dict[str, Any]
    output: str
    error: bool = False


@dataclass
class Turn:
    """One message: who speaks, its text, and for an assistant the calls it makes."""

    role: str
    text: str | None
    calls: list[Call] = field(default_factory=list)
    reasoning: str | None = None


@dataclass
class Session:
    """A generated conversation, before it is written in a provider's format."""

    system: str | None
    turns: list[Turn]
    body: bool
    tools: bool


class Text:
    """Text built from a seed: lines of words, code, logs, noise."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def line(self, low: int = 5, high: int = 12) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(low, high)))

    def lines(self, low: int, high: int) -> list[str]:
        return [self.line() for _ in range(self.rng.randint(low, high))]

    def code(self) -> str:
        out = []
        for i in range(self.rng.randint(3, 8)):
            name = f"{self.rng.choice(WORDS)}_{i}"
            out += [
                f"def {name}(request, response):",
                f"    value = request.params.get({self.rng.choice(WORDS)!r}, {i})",
                f"    return response.json({{'status': 'ok', 'value': value * {i}}})",
                "",
            ]
        return "\n".join(out)

    def ansi(self) -> str:
        out = []
        for _ in range(self.rng.randint(6, 14)):
            words = self.line().split()
            k = self.rng.randrange(len(words))
            words[k] = f"\x1b[1m\x1b[3{self.rng.randint(1, 6)}m{words[k]}\x1b[39m\x1b[22m"
            out.append(" ".join(words))
        if self.rng.random() < 0.5:
            frames = "\r".join(f"Installing {p}% [{'#' * (p // 10):<10}]" for p in range(0, 101, 5))
            out.insert(self.rng.randrange(len(out)), frames)
        return "\n".join(out)

    def progress(self) -> str:
        total = self.rng.randint(20, 90)
        frames = [
            f"Downloading model.bin {p:3d}%|{'█' * (p // 10)}{' ' * (10 - p // 10)}| "
            f"{p * total // 100}/{total} MB"
            for p in range(0, 101, self.rng.choice((2, 4, 5)))
        ]
        return "\n".join([self.line(), *frames, "Download complete."])

    def blob(self) -> str:
        data = base64.b64encode(self.rng.randbytes(self.rng.randint(900, 2400))).decode()
        return json.dumps({"type": "image", "mime": "image/png", "data": data, "note": self.line()})

    def repeated(self) -> str:
        head = self.lines(1, 3)
        if self.rng.random() < 0.5:
            copies = [self.line()] * self.rng.randint(6, 16)
        else:
            step = self.line(3, 5)
            copies = [f"Epoch {i}/40 {step} loss={0.9 / (i + 1):.4f}" for i in range(6, 26)]
        return "\n".join([*head, *copies, *self.lines(1, 2)])

    def whitespace(self) -> str:
        out = []
        for i in range(self.rng.randint(12, 24)):
            out.append(f'  "{self.rng.choice(WORDS)}_{i}": "{self.line(1, 3)}", ')
            if self.rng.random() < 0.2:
                out += ["   "] * self.rng.randint(3, 5)
        sep = "\r\n" if self.rng.random() < 0.5 else "\n"
        return sep.join(["{", *out, "}"])

    def traceback(self) -> str:
        frames = [
            f'  File "{self.rng.choice(PATHS)}", line {self.rng.randint(1, 400)}, in '
            f"{self.rng.choice(WORDS)}\n    {self.line(3, 6)}"
            for _ in range(self.rng.randint(2, 5))
        ]
        return "\n".join(["Traceback (most recent call last):", *frames, "Error: " + self.line()])

    def near(self, text: str) -> str:
        lines = text.split("\n")
        at = self.rng.randrange(len(lines))
        lines[at] = self.line()
        if self.rng.random() < 0.5:
            lines.append(self.line())
        return "\n".join(lines)

    def paste(self, text: str) -> str:
        lines = text.split("\n")
        start = self.rng.randrange(max(1, len(lines) - 4))
        return "\n".join(lines[start : start + self.rng.randint(4, 12)])


OUTPUTS = (
    "fresh",
    "code",
    "copy",
    "near",
    "ansi",
    "progress",
    "blob",
    "repeated",
    "whitespace",
    "error",
)
USERS = ("ask", "paste", "reminder", "paste_reminder")


@st.composite
def sessions(draw: st.DrawFn) -> Session:
    """A session: a system prompt, turns of a user asking and an assistant calling tools (some
    in parallel) and answering."""
    text = Text(draw(st.integers(0, 2**32 - 1)))
    outputs: list[Call] = []
    turns: list[Turn] = []
    ids = iter(range(1000))
    retry: list[Call] = []

    def output_call() -> Call:
        kind = draw(st.sampled_from(OUTPUTS))
        cid = f"call_{next(ids):03d}"
        if kind in ("copy", "near") and outputs:
            earlier = outputs[draw(st.integers(0, len(outputs) - 1))]
            out = earlier.output if kind == "copy" else text.near(earlier.output)
            return Call(cid, earlier.name, dict(earlier.args), out)
        if retry:
            failed = retry.pop()
            return Call(cid, failed.name, dict(failed.args), "\n".join(text.lines(3, 8)))
        if kind == "error":
            failed = Call(
                cid, "run", {"cmd": "pytest -x " + text.line(1, 2)}, text.traceback(), True
            )
            if draw(st.booleans()):
                retry.append(failed)
            return failed
        if kind in ("code", "near", "copy"):
            path = draw(st.sampled_from(PATHS))
            return Call(cid, "read_file", {"path": path}, text.code())
        made = {
            "fresh": text.lines(6, 20),
            "ansi": [text.ansi()],
            "progress": [text.progress()],
            "blob": [text.blob()],
            "repeated": [text.repeated()],
            "whitespace": [text.whitespace()],
        }[kind]
        name = draw(st.sampled_from(("run", "search")))
        return Call(
            cid, name, {"cmd" if name == "run" else "query": text.line(2, 4)}, "\n".join(made)
        )

    for _ in range(draw(st.integers(1, 4))):
        asked = draw(st.sampled_from(USERS))
        said = text.line()
        if "paste" in asked and outputs:
            source = outputs[draw(st.integers(0, len(outputs) - 1))].output
            said = f"Here is what I see:\n{text.paste(source)}\nWhat does it mean?"
        if "reminder" in asked:
            said += "\n" + REMINDER
        turns.append(Turn("user", said))
        if turns[1:] and draw(st.integers(0, 5)) == 0:
            # A note the harness adds mid-session (OpenAI: a system message; Anthropic: text).
            turns.append(Turn("system", "Note: " + text.line()))
        for _ in range(draw(st.integers(0, 3))):
            calls = [output_call() for _ in range(draw(st.integers(1, 3)))]
            if draw(st.booleans()) and calls[0].name == "read_file":
                patch = Call(
                    f"call_{next(ids):03d}", "apply_patch", dict(calls[0].args), "Patched."
                )
                calls.append(patch)
            thought = text.line() if draw(st.booleans()) else None
            reasoning = " ".join(text.lines(3, 8)) if draw(st.booleans()) else None
            turns.append(Turn("assistant", thought, calls, reasoning))
            outputs.extend(calls)
        if draw(st.booleans()):
            quote = bool(outputs) and draw(st.booleans())
            answer = outputs[-1].output if quote else text.line()
            turns.append(Turn("assistant", f"Done. The output was:\n{answer}"))
    system = "\n".join(text.lines(2, 6)) if draw(st.booleans()) else None
    return Session(system, turns, body=draw(st.booleans()), tools=draw(st.booleans()))


def openai_payload(s: Session) -> Any:
    messages: list[dict[str, Any]] = []
    if s.system is not None:
        messages.append({"role": "system", "content": s.system})
    for turn in s.turns:
        if turn.role in ("user", "system"):
            messages.append({"role": turn.role, "content": turn.text})
            continue
        message: dict[str, Any] = {"role": "assistant", "content": turn.text}
        if turn.reasoning is not None:
            message["reasoning_content"] = turn.reasoning
        if turn.calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.args)},
                }
                for c in turn.calls
            ]
        messages.append(message)
        for i, c in enumerate(turn.calls):
            content: Any = c.output if i % 2 == 0 else [{"type": "text", "text": c.output}]
            messages.append({"role": "tool", "tool_call_id": c.id, "content": content})
    if not s.body:
        return messages
    body: dict[str, Any] = {"model": "gpt-4o", "messages": messages, "temperature": 0}
    if s.tools:
        body["tools"] = [
            {"type": "function", "function": {"name": n, "description": d, "parameters": {}}}
            for n, d in TOOLS.items()
        ]
    return body


def anthropic_payload(s: Session) -> Any:
    messages: list[dict[str, Any]] = []
    for turn in s.turns:
        if turn.role in ("user", "system"):
            if (
                messages
                and isinstance(messages[-1]["content"], list)
                and messages[-1]["role"] == "user"
            ):
                # Text after tool results goes in their message, as Claude Code sends it.
                messages[-1]["content"].append({"type": "text", "text": turn.text})
            else:
                content: Any = (
                    turn.text if len(messages) % 3 == 0 else [{"type": "text", "text": turn.text}]
                )
                messages.append({"role": "user", "content": content})
            continue
        blocks: list[dict[str, Any]] = []
        if turn.reasoning is not None:
            blocks.append({"type": "thinking", "thinking": turn.reasoning, "signature": "c2ln"})
        if turn.text is not None:
            blocks.append({"type": "text", "text": turn.text})
        blocks += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.args} for c in turn.calls
        ]
        messages.append({"role": "assistant", "content": blocks})
        if turn.calls:
            results: list[dict[str, Any]] = []
            for i, c in enumerate(turn.calls):
                result: dict[str, Any] = {"type": "tool_result", "tool_use_id": c.id}
                result["content"] = c.output if i % 2 == 0 else [{"type": "text", "text": c.output}]
                if c.error:
                    result["is_error"] = True
                results.append(result)
            messages.append({"role": "user", "content": results})
    if not s.body and s.system is None:
        if not any(isinstance(m["content"], list) for m in messages):
            # Plain strings only would read as OpenAI messages: blocks say Anthropic.
            messages[0]["content"] = [{"type": "text", "text": messages[0]["content"]}]
        return messages
    body: dict[str, Any] = {
        "model": "claude-3-5-sonnet-20241022",
        "max_tokens": 1024,
        "messages": messages,
    }
    if s.system is not None:
        body["system"] = s.system
    if s.tools:
        body["tools"] = [
            {"name": n, "description": d, "input_schema": {"type": "object", "properties": {}}}
            for n, d in TOOLS.items()
        ]
    return body


WRITERS = {"openai": openai_payload, "anthropic": anthropic_payload}
OPTIONS = st.fixed_dictionaries(
    {
        "keep_last": st.sampled_from((0, 3)),
        "cache_aware": st.booleans(),
        "min_saving": st.sampled_from((1, 8)),
        "clear_old_results": st.booleans(),
    }
)


@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe"])
@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
@SETTINGS
@given(session=sessions(), options=OPTIONS)
def test_optimize_guarantees_hold(
    fmt: str, unsafe: bool, session: Session, options: dict[str, Any]
) -> None:
    payload = WRITERS[fmt](session)
    given_payload = copy.deepcopy(payload)
    r = g.run(payload, copy.deepcopy(payload), unsafe=unsafe, **options)
    assert payload == given_payload, "optimize changed its input"
    assert r.out.format == fmt
    g.check_all(r)
    assert g.fingerprint(ctxtax.optimize(payload, unsafe=unsafe, **options)) == g.fingerprint(
        r.out
    ), "not deterministic"


@pytest.mark.parametrize(("fmt", "to"), [("openai", "anthropic"), ("anthropic", "openai")])
@settings(SETTINGS, max_examples=max(1, EXAMPLES // 3))
@given(session=sessions())
def test_optimize_into_the_other_format_keeps_the_guarantees(
    fmt: str, to: str, session: Session
) -> None:
    """``to=``: the payload is written in the other provider's format (OpenAI holds one tool
    result per ``tool`` message, Anthropic has no system turn after the first message), and the
    guarantees hold against the unedited conversation in that format."""
    payload = WRITERS[fmt](session)
    unedited = ctxtax.optimize(payload, to=to, select=[]).payload
    r = g.run(payload, unedited, to=to)
    assert r.out.format == to
    g.check_all(r)
