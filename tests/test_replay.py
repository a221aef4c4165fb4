"""`replay()`: the bill of a session call by call, as recorded, with ctxtax, with context editing."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import ctxtax
from ctxtax._cli import main
from ctxtax._counting import count_context
from ctxtax._model import Context, Message, Part
from ctxtax._pricing import PRICES
from ctxtax._replay import (
    ClearToolUses,
    Replay,
    approximate_tokens,
    clear_tool_uses,
    replay,
)
from ctxtax._session import Bill
from ctxtax._tokens import TokenIds
from ctxtax.errors import ConfigError
from tests.conftest import real


class WordCounter:
    """One token per word, so bills can be worked out by hand."""

    encoding = "words"

    def encode(self, text: str) -> TokenIds:
        return np.array([zlib.crc32(w.encode()) for w in text.split()], dtype=np.uint32)

    def encode_many(self, texts: Sequence[str]) -> list[TokenIds]:
        return [self.encode(t) for t in texts]

    def count(self, text: str) -> int:
        return len(text.split())


def _text(role: str, words: int, word: str = "w") -> Message:
    return Message(role=role, parts=(Part(kind="text", text=f"{word} " * words),))  # type: ignore[arg-type]


def _three_calls(model: str = "claude-sonnet-4-5") -> Context:
    # Anthropic framing with one token per word: 3 per message + 1 for the role word.
    # Message tokens: A 2004, B 14, C 504, D 14, E 14, F 9.
    return Context(
        messages=(
            _text("user", 2000, "a"),
            _text("assistant", 10, "b"),
            _text("user", 500, "c"),
            _text("assistant", 10, "d"),
            _text("user", 10, "e"),
            _text("assistant", 5, "f"),
        ),
        model=model,
    )


def test_three_calls_by_hand_anthropic() -> None:
    # Prompts (+3 reply priming): 2007, 2525, 2553. Shared with the call before: 0, A, A+B+C.
    bill = replay(_three_calls(), counter=WordCounter(), strategies=["none"]).bills["none"]
    assert bill.calls == 3
    assert bill.cache_read_tokens == 2004 + 2522
    assert bill.cache_write_tokens == 2007 + (2525 - 2004) + (2553 - 2522)
    assert bill.input_tokens == 0
    assert bill.output_tokens == 10 + 10 + 5
    price = PRICES["claude-sonnet-4-5"]
    expected = (4526 * price.cache_read + 2559 * price.cache_write + 25 * price.output) / 1e6
    assert bill.cost_usd == pytest.approx(expected, abs=1e-6)


def test_three_calls_by_hand_openai_and_none() -> None:
    ctx = _three_calls()
    openai = replay(ctx, counter=WordCounter(), strategies=["none"], cache_policy="openai")
    # Cached prefixes round down to 128-token steps: 2004 -> 1920, 2522 -> 2432.
    assert openai.bills["none"].cache_read_tokens == 1920 + 2432
    assert openai.bills["none"].input_tokens == 2007 + 2525 + 2553 - 1920 - 2432
    assert openai.bills["none"].cache_write_tokens == 0
    plain = replay(ctx, counter=WordCounter(), strategies=["none"], cache_policy="none")
    assert plain.bills["none"].input_tokens == 2007 + 2525 + 2553
    assert plain.bills["none"].cache_read_tokens == 0


def test_small_prefixes_are_not_cached() -> None:
    ctx = Context(
        messages=(
            _text("user", 100),
            _text("assistant", 5),
            _text("user", 5),
            _text("assistant", 5),
        )
    )
    bill = replay(ctx, counter=WordCounter(), strategies=["none"], cache_policy="anthropic")
    assert bill.bills["none"].cache_read_tokens == 0
    assert bill.bills["none"].cache_write_tokens == 0
    assert bill.bills["none"].input_tokens == (104 + 3) + (104 + 9 + 9 + 3)


def test_none_is_the_audit_estimate() -> None:
    ctx = _three_calls()
    counter = WordCounter()
    for policy in ("anthropic", "openai", "none"):
        report = ctxtax.audit(ctx, counter=counter, cache_policy=policy)
        bill = replay(ctx, counter=counter, strategies=["none"], cache_policy=policy)
        assert bill.bills["none"] == report.bill.estimated


# -- context editing ---------------------------------------------------------------------------


def _tool_session(results: int, words: int, system: int = 2) -> Context:
    """A user asks; the assistant calls ``read`` ``results`` times; each result has ``words``."""
    messages = [
        _text("system", system),
        _text("user", 5),
    ]
    for i in range(results):
        call = Part(kind="tool_call", text=f'{{"n": {i}}}', tool_call_id=f"c{i}", tool_name="read")
        result = Part(
            kind="tool_result", text=f"r{i} " * words, tool_call_id=f"c{i}", tool_name="read"
        )
        messages += [
            Message(role="assistant", parts=(call,)),
            Message(role="tool", parts=(result,)),
        ]
    messages.append(_text("assistant", 5))
    return Context(messages=tuple(messages), model="claude-sonnet-4-5")


def test_approximate_count_is_four_characters_a_token() -> None:
    message = Message(role="user", parts=(Part(kind="text", text="x" * 400),))
    assert approximate_tokens([message]) == 100 + 1 + 3  # 404 characters with the role
    result = Part(kind="tool_result", text="y" * 92, tool_call_id="abcd")
    # "tool" + "abcd" + 92 characters = 100 -> 25, plus 3 for the message.
    assert approximate_tokens([Message(role="tool", parts=(result,))]) == 28


def test_context_editing_waits_for_its_trigger() -> None:
    ctx = _tool_session(results=8, words=1000)  # ~2,000 approximate tokens in all
    sent, crossed = clear_tool_uses(ctx.messages)
    assert not crossed and sent is ctx.messages
    sent, crossed = clear_tool_uses(ctx.messages, ClearToolUses(trigger=1000))
    assert crossed


def test_context_editing_clears_all_but_the_last_three() -> None:
    ctx = _tool_session(results=8, words=34_000)  # each result: 102,000 characters
    sent, crossed = clear_tool_uses(ctx.messages)
    assert crossed
    results = [p for m in sent for p in m.tool_results]
    assert [p.text for p in results[:5]] == ["[cleared]"] * 5
    assert all(p.text.startswith(f"r{i} ") for i, p in enumerate(results) if i >= 5)
    assert [p.text for m in sent for p in m.tool_calls] == [
        m.parts[0].text for m in ctx.messages if m.tool_calls
    ]
    assert sent[:2] == ctx.messages[:2]


def test_context_editing_skips_results_without_their_call() -> None:
    ctx = _tool_session(results=5, words=34_000)
    messages = list(ctx.messages)
    messages[2] = _text("assistant", 3)  # the first result's call is gone
    sent, _ = clear_tool_uses(tuple(messages))
    first, second = [p for m in sent for p in m.tool_results][:2]
    assert first.text.startswith("r0 ") and second.text == "[cleared]"
    assert clear_tool_uses(tuple(messages), ClearToolUses(exclude_tools=frozenset({"read"})))[
        0
    ] == tuple(messages)


def test_context_editing_replay_re_clears_on_every_call() -> None:
    # Calls read 0..8 results of 306 approximate tokens each (the system prompt is not counted),
    # so a 1,000-token trigger is crossed from the call that reads 4 results on, and each such
    # call clears one result more than the call before: the prompt changes one result deeper
    # each time, which is what breaks the cache (langchain-ai/langchain#37815).
    ctx = _tool_session(results=8, words=400, system=1500)
    edit = ClearToolUses(trigger=1000)
    strategies = ["none", "context-editing"]
    result = replay(ctx, counter=WordCounter(), strategies=strategies, context_editing=edit)
    assert result.bills["none"].calls == 9
    assert result.triggered_calls == 5
    assert result.edited_calls == {"none": 0, "context-editing": 5}
    none, editing = result.bills["none"], result.bills["context-editing"]
    assert editing.prompt_tokens < none.prompt_tokens
    assert editing.cache_read_tokens < none.cache_read_tokens
    assert editing.output_tokens == none.output_tokens
    # Call 6 reads results 0-4 and clears 0-1; call 5 sent result 1 whole: the cache is read up
    # to result 1 (system, user, call 0, result 0 cleared, call 1) and written from there on.
    calls = ctx.model_calls()
    five, six = (
        replay(
            ctx.model_copy(update={"calls": calls[:n]}),
            counter=WordCounter(),
            strategies=["context-editing"],
            context_editing=edit,
        ).bills["context-editing"]
        for n in (5, 6)
    )
    sent, _ = clear_tool_uses(ctx.messages[: calls[5].end], edit)
    counted = count_context(Context(messages=sent), WordCounter(), provider="anthropic")
    assert six.cache_read_tokens - five.cache_read_tokens == counted.message_tokens[:5].sum()
    assert six.cache_write_tokens - five.cache_write_tokens == counted.message_tokens[5:].sum() + 3


# -- ctxtax ------------------------------------------------------------------------------------


def _rereads(model: str = "claude-sonnet-4-5") -> Context:
    """The same 1,500-token file read four times, with turns in between."""
    body = "\n".join(f"line {i}: value = compute({i}, {i * 7 % 13})" for i in range(150))
    messages = [Message(role="system", parts=(Part(kind="text", text="You fix bugs. " * 100),))]
    for i in range(4):
        messages += [
            Message(role="user", parts=(Part(kind="text", text=f"step {i}: look again"),)),
            Message(
                role="assistant",
                parts=(
                    Part(
                        kind="tool_call",
                        text='{"path": "a.py"}',
                        tool_call_id=f"t{i}",
                        tool_name="read",
                    ),
                ),
            ),
            Message(
                role="tool",
                parts=(
                    Part(kind="tool_result", text=body, tool_call_id=f"t{i}", tool_name="read"),
                ),
            ),
            Message(role="assistant", parts=(Part(kind="text", text=f"noted {i}"),)),
        ]
    return Context(messages=tuple(messages), model=model)


@pytest.mark.parametrize("policy", ["anthropic", "openai", "none"])
def test_ctxtax_saves_on_repeated_reads(policy: str) -> None:
    result = replay(_rereads(), cache_policy=policy, strategies=["none", "ctxtax"])  # type: ignore[arg-type]
    none, ours = result.bills["none"], result.bills["ctxtax"]
    assert result.edited_calls["ctxtax"] > 0
    assert ours.prompt_tokens < none.prompt_tokens
    assert none.cost_usd is not None and ours.cost_usd is not None
    assert ours.cost_usd < none.cost_usd
    assert ours.output_tokens == none.output_tokens and ours.calls == none.calls


def test_several_conversations_are_summed() -> None:
    one, two = _three_calls(), _rereads()
    both = replay([one, two], strategies=["none", "ctxtax"])
    apart = [replay(c, strategies=["none", "ctxtax"]) for c in (one, two)]
    assert both.conversations == 2
    for name in ("none", "ctxtax"):
        assert both.bills[name] == apart[0].bills[name] + apart[1].bills[name]


def test_unknown_strategy_and_unpriced_model() -> None:
    with pytest.raises(ConfigError, match="unknown strategy 'fast'"):
        replay(_three_calls(), strategies=["none", "fast"])
    result = replay(_three_calls(model="my-model"), counter=WordCounter(), strategies=["none"])
    assert result.bills["none"].cost_usd is None
    assert result.saving("none") is None
    assert any("my-model" in note for note in result.notes)


def test_table_and_dict() -> None:
    result = replay(_rereads())
    table = result.table()
    assert table.splitlines()[0].startswith("| strategy | calls |")
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == [
        "none",
        "ctxtax",
        "context-editing",
    ]
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data["bills"]) == {"none", "ctxtax", "context-editing"}
    assert data["saving"]["ctxtax"] == pytest.approx(result.saving("ctxtax"))
    assert Replay.model_validate({k: v for k, v in data.items() if k != "saving"}) == result


def test_cli_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "session.json"
    path.write_text(
        json.dumps(
            [
                {"role": "user", "content": "hi " * 600},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "again"},
            ]
        )
    )
    assert main(["replay", str(path), "--model", "gpt-4o"]) == 0
    out = capsys.readouterr().out
    assert "| ctxtax |" in out and "| context-editing |" in out and "openai caching" in out
    assert main(["replay", str(path), "--format", "json", "--strategies", "none,ctxtax"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["bills"]) == {"none", "ctxtax"}
    assert main(["replay", str(path), "--strategies", "nope"]) == 2


# -- real sessions -----------------------------------------------------------------------------

# Every small and medium real session, and one of the three long Claude Code sessions (the
# other two take 6-9 s each; benches/replay_table.py replays them all).
REAL_SESSIONS = [
    "claude-code-spotter/4d5611e5-241a-462a-8d15-5122611a9569.jsonl",
    "claude-code-spotter/short.jsonl",
    "claude-code-spotter/subagent.jsonl",
    "claude-code-spotter/tool_heavy.jsonl",
    "claude-code-viewer/*.jsonl",
    "swe-agent/**/*.traj",
    "mini-swe-agent-gemini3/sympy__sympy-23413.traj.json",
    "mini-swe-agent-gemini3/pylint-dev__pylint-7080.traj.json",
    "openhands/multi_swe_bench_output.jsonl",
    "openhands/resolver_mock_output.jsonl",
    "openhands/runtime_trajs/*.json",
]


def _dollars(bill: Bill) -> float:
    """The bill's cost, at gpt-4o's price when the session names no known model."""
    cost = bill.cost_usd if bill.cost_usd is not None else bill.priced(PRICES["gpt-4o"]).cost_usd
    assert cost is not None
    return cost


@pytest.mark.parametrize("pattern", REAL_SESSIONS)
def test_ctxtax_never_costs_more_than_nothing_on_real_sessions(pattern: str) -> None:
    folder, _, glob = pattern.partition("/")
    paths = sorted(real(folder).glob(glob))
    assert paths
    for path in paths:
        result = replay(path)
        none, ours = result.bills["none"], result.bills["ctxtax"]
        assert _dollars(ours) <= _dollars(none) + 1e-9, path
        assert ours.prompt_tokens <= none.prompt_tokens, path
        assert ours.calls == none.calls == result.bills["context-editing"].calls


def test_replay_of_a_claude_code_session_matches_its_audit() -> None:
    path = real("claude-code-viewer") / "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl"
    report = ctxtax.audit(path, strict=False)
    result = replay(path, strategies=["none"])
    assert result.conversations == 6
    assert result.bills["none"].model_dump(
        exclude={"cost_usd"}
    ) == report.bill.estimated.model_dump(exclude={"cost_usd"})
    assert result.bills["none"].cost_usd == pytest.approx(report.bill.estimated.cost_usd, abs=1e-5)
