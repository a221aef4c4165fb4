"""The aider chat-history reader: sessions, input / output / reply blocks, calls, the real file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ctxtax._model import Context, Usage
from ctxtax.errors import FormatError
from ctxtax.formats import aider, anthropic, load_all, openai_chat
from ctxtax.formats._document import parse_text, read_path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "aider" / "history.md"
REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "aider"
HISTORY = REAL / "chat-history.part1.md"


def _contexts() -> list[Context]:
    return load_all(FIXTURE, format="aider")


def _kinds(ctx: Context) -> list[str]:
    return [m.meta["aider"] for m in ctx.messages]


def test_detect() -> None:
    doc = read_path(FIXTURE)
    assert aider.detect(doc)
    assert not openai_chat.detect(doc) and not anthropic.detect(doc)
    assert not aider.detect(parse_text("# notes\n\nnothing here\n", path=Path("notes.md")))
    assert not aider.detect(parse_text(json.dumps([{"role": "user", "content": "hi"}])))
    with pytest.raises(FormatError):
        load_all(parse_text("# notes\n", source="notes.md", path=Path("notes.md")), format="aider")


def test_sessions_and_titles() -> None:
    contexts = _contexts()
    # the empty session of 19:40:00 (a header and nothing under it) is left out
    assert [c.title for c in contexts] == [None, "2024-08-05 19:33:02", "2024-08-05 19:41:00"]
    assert contexts[0].meta["aider_preamble"] is True
    assert contexts[1].meta["line"] == 6
    assert all(c.source_format == "aider" for c in contexts)


def test_preamble_skips_the_modeline() -> None:
    preamble = _contexts()[0]
    assert [m.text for m in preamble.messages] == ["leftover lint output", "# Fix any errors below"]
    assert _kinds(preamble) == ["output", "input"]


def test_blocks_of_a_session() -> None:
    ctx = _contexts()[1]
    assert _kinds(ctx) == [
        "output", "input", "reply", "output", "command", "output", "reply", "output", "command",
        "input", "reply",
    ]  # fmt: skip
    assert [m.role for m in ctx.messages] == [
        "user", "user", "assistant", "user", "user", "user", "assistant", "user", "user", "user",
        "assistant",
    ]  # fmt: skip
    banner = ctx.messages[0]
    assert banner.text.splitlines()[1] == "Aider v0.47.2-dev"
    assert banner.meta["line"] == 8 and banner.meta["end_line"] == 12
    # a multi-line input is one message; the two-space breaks and prefixes are gone
    assert ctx.messages[1].text == "Use the Spinner class\n\nin utils.py please"
    assert ctx.messages[1].raw.splitlines()[0] == "#### Use the Spinner class  "


def test_reply_keeps_headings_quotes_and_edit_blocks() -> None:
    reply = _contexts()[1].messages[2].text
    assert reply.startswith("Certainly! Here is the change:\n\n#### Step 1\n> quoted right under")
    assert reply.endswith(">>>>>>> REPLACE\n```")
    assert "\n\n\n" not in reply


def test_multi_line_output_runs_to_its_line_break() -> None:
    output = _contexts()[1].messages[5]
    lines = output.text.split("\n")
    assert lines[0] == "============ test session starts ============"
    assert "" in lines and "    " in lines  # blank and indented lines of the raw output kept
    assert ">       assert f() == 1" in lines  # pytest's marker, not a new block
    assert lines[-3] == "========= 1 failed in 0.1s ========="
    assert lines[-2:] == ["Add the output to the chat?", "(y/n/instructions) y"]


def test_calls_usage_model_and_clear() -> None:
    ctx = _contexts()[1]
    assert ctx.model == "claude-3-5-sonnet-20240620"
    assert [(c.start, c.end, c.output) for c in ctx.calls] == [(0, 2, 2), (0, 6, 6), (9, 10, 10)]
    assert ctx.calls[0].usage == Usage(input_tokens=5244, output_tokens=604)
    # 2.5k sent is less than the 13.2k cached: sent is the uncached part here
    assert ctx.calls[1].usage == Usage(
        input_tokens=2500, cache_write_tokens=1200, cache_read_tokens=12000, output_tokens=88
    )
    assert ctx.calls[2].usage is None
    assert all(c.model == "claude-3-5-sonnet-20240620" for c in ctx.calls)


def test_commands_and_a_session_without_replies() -> None:
    ctx = _contexts()[2]
    assert ctx.model == "gpt-4o-mini"
    assert _kinds(ctx) == ["output", "command", "output"]
    assert ctx.messages[1].text == "!ls"
    assert ctx.calls == ()


# -- the real history -----------------------------------------------------------------------------


def _real() -> Path:
    if not HISTORY.exists():
        pytest.skip(f"real aider history not found at {HISTORY} (../shared/data/real/aider)")
    return HISTORY


def test_real_history() -> None:
    path = _real()
    doc = read_path(path)
    assert aider.detect(doc)
    assert not openai_chat.detect(doc) and not anthropic.detect(doc)
    started = time.perf_counter()
    contexts = load_all(path, format="aider")
    assert time.perf_counter() - started < 2.0
    # the preamble (the tail of an older session) and the 535 sessions of SOURCE.md, less the 81
    # that are a header and nothing else
    assert len(contexts) == 455
    assert contexts[0].title is None
    assert sum(c.title is not None for c in contexts) == 535 - 81
    assert all(c.messages for c in contexts)
    assert contexts[1].title == "2024-08-05 19:33:02"
    assert contexts[-1].title == "2024-08-12 20:55:57"
    messages = [m for c in contexts for m in c.messages]
    kinds = {k: sum(m.meta["aider"] == k for m in messages) for k in
             ("input", "command", "output", "reply")}  # fmt: skip
    assert kinds == {"input": 466, "command": 457, "output": 1247, "reply": 412}
    # 7,700 lines start with '#### ': 7 of them are headings inside replies
    user_lines = sum(len(m.raw.split("\n")) for m in messages if m.meta["aider"] != "output"
                     and m.role == "user")  # fmt: skip
    assert user_lines == 7693
    calls = [c for ctx in contexts for c in ctx.calls]
    assert len(calls) == 412
    with_usage = [c.usage for c in calls if c.usage is not None]
    assert len(with_usage) == 376  # every 'Tokens: ... sent' line
    total = sum(with_usage, Usage())
    assert (total.input_tokens, total.output_tokens) == (3521905, 145896)


def test_real_history_banners_are_character_exact() -> None:
    contexts = load_all(_real(), format="aider")
    banner = next(m for m in contexts[2].messages if m.meta["aider"] == "output")
    assert 'Use /help <question> for help, run "aider --help" to see cmd line args' in banner.text
    help_lines = sum(
        line == 'Use /help <question> for help, run "aider --help" to see cmd line args'
        for c in contexts
        for m in c.messages
        if m.meta["aider"] == "output"
        for line in m.text.split("\n")
    )
    assert help_lines == 373  # SOURCE.md: the line appears 373 times


def test_windows_line_endings() -> None:
    text = FIXTURE.read_text(encoding="utf-8").replace("\n", "\r\n")
    doc = parse_text(text, source="history.md", path=Path("history.md"))
    crlf = aider.read(doc)
    assert [[m.text for m in c.messages] for c in crlf] == [
        [m.text for m in c.messages] for c in _contexts()
    ]


def test_text_before_any_header_only_when_there_is_some() -> None:
    doc = parse_text("# aider chat started at 2024-01-01 10:00:00\n\n#### hi  \n\nhello\n",
                     path=Path("h.md"))  # fmt: skip
    (ctx,) = aider.read(doc)
    assert ctx.title == "2024-01-01 10:00:00" and "aider_preamble" not in ctx.meta
    assert [(m.role, m.text) for m in ctx.messages] == [("user", "hi"), ("assistant", "hello")]
    assert [(c.start, c.end, c.output, c.model) for c in ctx.calls] == [(0, 1, 1, None)]
