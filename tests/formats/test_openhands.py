"""The OpenHands event reader: the ConversationMemory rebuild, usage, legacy shapes, real runs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ctxtax._model import Context, Usage
from ctxtax.errors import MessageError, ParseError
from ctxtax.formats import anthropic, load_all, mini_swe_agent, openai_chat, openhands, swe_agent
from ctxtax.formats._document import as_document, parse_text, read_path
from ctxtax.formats.openhands import truncate_content

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "openhands"
REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "openhands"

# (title, messages, tool calls, calls, prompt tokens, completion tokens) verified on the real file
MULTI_SWE_BENCH = [
    ("ponylang__ponyc-4595", 48, 22, 23, 565158, 2558),
    ("ponylang__ponyc-4593", 69, 32, 33, 410169, 5156),
    ("ponylang__ponyc-4588", 102, 49, 49, 938015, 5627),
]
# (file, messages, calls, model, (uncached, cache write, cache read, output)) verified on the files
SONNET = "claude-3-5-sonnet-20241022"
RUNTIME_TRAJS = [
    ("basic", 4, 2, SONNET, (10, 4640, 3482, 1312)),
    ("basic_gui_mode", 10, 5, SONNET, (22, 5482, 11793, 2024)),
    ("basic_interactions", 6, 3, "gpt-4o-2024-08-06", (169, 0, 2304, 10)),
    ("wrong_initial_state", 8, 4, SONNET, (22, 3927, 10879, 358)),
]


def _real(*parts: str) -> Path:
    path = REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (the ../shared/data/real folder is absent)")
    return path


def _events() -> Context:
    (ctx,) = load_all(FIXTURES / "events.json", format="openhands")
    return ctx


def _read(value: Any) -> list[Context]:
    return openhands.read(as_document(value))


def _user(i: int, text: str) -> dict[str, Any]:
    return {"id": i, "source": "user", "action": "message", "args": {"content": text}}


# -- detection ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["events.json", "eval.jsonl", "bad_history.jsonl"])
def test_detects_fixtures_and_not_other_formats(name: str) -> None:
    doc = read_path(FIXTURES / name)
    assert openhands.detect(doc)
    assert not openai_chat.detect(doc)
    assert not anthropic.detect(doc)
    assert not swe_agent.detect(doc) and not mini_swe_agent.detect(doc)


def test_does_not_claim_other_shapes() -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert not openhands.detect(as_document(messages))
    assert not openhands.detect(as_document({"history": messages}))
    assert not openhands.detect(as_document([{"instance_id": "x", "traj": messages}]))
    assert not openhands.detect(as_document({"type": "user", "message": {"role": "user"}}))
    assert not openhands.detect(as_document({"history": []}))
    assert not openhands.detect(parse_text("# aider chat", path=Path("h.md")))


# -- the ConversationMemory rebuild ---------------------------------------------------------------


def test_event_list_messages() -> None:
    ctx = _events()
    assert ctx.source_format == "openhands"
    assert ctx.title == "events"
    assert ctx.model == "claude-3-5-sonnet-20241022"
    assert [t.name for t in ctx.tools] == ["execute_bash", "think", "finish"]
    assert [m.role for m in ctx.messages] == [
        "system", "user", "user", "assistant", "tool", "tool",
        "assistant", "tool", "user", "user", "assistant", "assistant",
    ]  # fmt: skip
    # skipped: the recall action, agent_state_changed, and the run that never got its result
    assert [m.meta["event"] for m in ctx.messages] == [0, 1, 3, 5, 7, 8, 9, 10, 11, 12, 13, 14]
    assert ctx.messages[1].meta["timestamp"] == "2025-01-01T00:00:01"
    assert ctx.messages[1].raw["id"] == 1


def test_one_assistant_message_per_model_response() -> None:
    ctx = _events()
    assistant = ctx.messages[3]
    assert assistant.parts[0].text == "I will look around."
    assert [(p.tool_call_id, p.tool_name) for p in assistant.tool_calls] == [
        ("call_a", "execute_bash"),
        ("call_b", "execute_bash"),
    ]
    assert assistant.meta["response_id"] == "resp-1"
    assert assistant.raw["role"] == "assistant"  # the provider's message object
    results = [m.tool_results[0] for m in ctx.messages[4:6]]
    assert [(r.tool_call_id, r.tool_name) for r in results] == [
        ("call_a", "execute_bash"),
        ("call_b", "execute_bash"),
    ]
    # blank response content gives no text part; think is a tool call with its result
    assert [p.kind for p in ctx.messages[6].parts] == ["tool_call"]
    assert ctx.messages[7].tool_results[0].text == "Your thought has been logged."


def test_observation_text_as_openhands_sends_it() -> None:
    ctx = _events()
    assert ctx.messages[4].tool_results[0].text == (
        "a.py\n[The command completed with exit code 0.]\n"
        "[Current working directory: /workspace]\n[Command finished with exit code 0]"
    )
    assert ctx.messages[8].text == (
        "Parameter 'command' is invalid.\n[Error occurred in processing last action]"
    )
    # a user message right after another user message gets a leading blank line
    assert ctx.messages[9].text == "\n\nPlease also add a test."


def test_recall_is_approximated() -> None:
    ctx = _events()
    recall = ctx.messages[2]
    assert recall.meta["approximate"] is True
    assert ctx.meta["approximate"] is True
    assert "* http://localhost:5000 (port 5000)" in recall.text
    assert "Today's date is 2025-01-01 (UTC)." in recall.text
    assert 'keyword match for "github"' in recall.text
    assert "Use the GITHUB_TOKEN." in recall.text


def test_finish_and_agent_message_are_text() -> None:
    ctx = _events()
    assert ctx.messages[10].text == "Sure, working on it."
    assert ctx.messages[11].text == "Finished.\nAll done."
    assert ctx.messages[11].tool_calls == ()


def test_calls_and_usage() -> None:
    ctx = _events()
    assert ctx.calls is not None  # recorded, not derived
    assert [(c.end, c.output) for c in ctx.model_calls()] == [
        (3, 3),
        (6, 6),
        (10, 10),
        (11, 11),
        (12, None),
    ]
    usages = [c.usage for c in ctx.model_calls()]
    assert usages[0] == Usage(input_tokens=100, cache_write_tokens=900, output_tokens=60)
    assert usages[1] == Usage(
        input_tokens=50, cache_write_tokens=250, cache_read_tokens=900, output_tokens=20
    )
    assert usages[2] is None  # an agent message records no model response
    assert usages[4] == Usage(input_tokens=1600, output_tokens=5)  # billed, result never came
    assert ctx.recorded_usage == Usage(
        input_tokens=3250, cache_write_tokens=1150, cache_read_tokens=900, output_tokens=95
    )


def test_evaluation_records_truncation_and_cause() -> None:
    first, legacy = load_all(FIXTURES / "eval.jsonl", format="openhands")
    assert (first.title, first.model, first.meta["line"]) == ("demo__repo-3", "x-model", 1)
    assert first.meta["metrics"]["accumulated_token_usage"]["prompt_tokens"] == 300
    # the observation has no tool metadata: its ``cause`` points back to the tool call
    result = first.messages[3].tool_results[0]
    assert result.tool_call_id == "toolu_01"
    assert result.text == truncate_content("0123456789" * 10, 40)
    assert "[... Observation truncated due to length ...]" in result.text
    assert first.messages[3].meta["line"] == 1
    assert [(c.output, c.usage) for c in first.model_calls()] == [(2, None)]
    assert legacy.title == "octo/demo#7"
    assert legacy.meta["line"] == 2


def test_legacy_flat_events() -> None:
    _, ctx = load_all(FIXTURES / "eval.jsonl", format="openhands")
    assert [m.role for m in ctx.messages] == ["user", "assistant", "user", "assistant"]
    assert (
        ctx.messages[1].text
        == "I will add the license.\n<execute_bash>\ntouch LICENSE\n</execute_bash>"
    )
    assert ctx.messages[2].text == (
        "OBSERVATION:\n\r\nroot@host:/workspace # \n[Command -1 finished with exit code 0]"
    )
    assert ctx.messages[3].text == "The license is added."
    assert [c.output for c in ctx.model_calls()] == [1, 3]
    assert ctx.meta["approximate"] is True


def test_missing_model_response_rebuilds_the_tool_call() -> None:
    meta = {"function_name": "execute_bash", "tool_call_id": "t1"}
    history = [
        _user(0, "go"),
        {"id": 1, "source": "agent", "action": "run", "tool_call_metadata": meta,
         "args": {"command": "ls", "thought": "Listing.", "blocking": False}},
        {"id": 2, "source": "agent", "observation": "run", "cause": 1, "tool_call_metadata": meta,
         "content": "a.py", "extras": {}},
    ]  # fmt: skip
    (ctx,) = _read(history)
    call = ctx.messages[1].tool_calls[0]
    assert (call.tool_call_id, call.tool_name, json.loads(call.text)) == (
        "t1",
        "execute_bash",
        {"command": "ls"},
    )
    assert ctx.messages[1].text.startswith("Listing.")
    assert ctx.messages[1].meta["approximate"] is True
    assert ctx.messages[2].tool_results[0].text == "a.py"
    assert [(c.output, c.usage) for c in ctx.model_calls()] == [(1, None)]


def test_action_observation_pairs_and_user_commands() -> None:
    history = [
        [_user(0, "hi"), {"id": 1, "source": "user", "observation": "null", "content": ""}],
        [{"id": 2, "source": "user", "action": "run", "args": {"command": "pwd"}},
         {"id": 3, "source": "user", "observation": "run", "cause": 2, "content": "/ws",
          "extras": {"metadata": {"exit_code": 0, "prefix": "", "suffix": ""}}}],
    ]  # fmt: skip
    (ctx,) = _read({"instance_id": "pairs", "history": history})
    assert ctx.title == "pairs"
    assert [m.text for m in ctx.messages] == [
        "hi",
        "\n\nUser executed the command:\npwd",
        "\n\n\nObserved result of command executed by user:\n/ws"
        "\n[Command finished with exit code 0]",
    ]


# -- bad input ------------------------------------------------------------------------------------


def test_record_without_history_names_the_line() -> None:
    with pytest.raises(MessageError, match="'history' list of events") as info:
        load_all(FIXTURES / "bad_history.jsonl", format="openhands")
    assert info.value.line == 2
    assert info.value.source is not None and info.value.source.endswith("bad_history.jsonl")


def test_malformed_jsonl_line_names_the_line() -> None:
    record = json.dumps({"instance_id": "x", "history": [_user(0, "hi")]})
    with pytest.raises(ParseError) as info:
        parse_text(record + "\n{not json\n", source="out.jsonl", path=Path("out.jsonl"))
    assert info.value.line == 2


def test_bad_events_name_the_line() -> None:
    record = {"instance_id": "x", "history": [_user(0, "hi"), "oops"]}
    text = (
        json.dumps({"instance_id": "ok", "history": [_user(0, "hi")]}) + "\n" + json.dumps(record)
    )
    doc = parse_text(text + "\n", source="out.jsonl", path=Path("out.jsonl"))
    with pytest.raises(MessageError, match="event 1 is str") as info:
        openhands.read(doc)
    assert info.value.line == 2
    observation = {"id": 1, "source": "agent", "observation": "run", "content": ["x"]}
    with pytest.raises(MessageError, match="event 1: observation content is list"):
        _read([_user(0, "hi"), observation])
    response = {"id": "r", "choices": [{"message": {"role": "assistant", "tool_calls": ["x"]}}]}
    meta = {"tool_call_id": "t", "model_response": response}
    bad_call = {"id": 1, "source": "agent", "action": "run", "tool_call_metadata": meta, "args": {}}
    with pytest.raises(MessageError, match="event 1: a tool call has no 'function'"):
        _read([_user(0, "hi"), bad_call])
    odd_ids = [
        {"id": [0], "source": "user", "action": "message", "args": {"content": "hi"}},
        {"id": 1, "source": "agent", "observation": "run", "cause": {"x": 1}, "content": "a"},
    ]
    assert [m.text for m in _read(odd_ids)[0].messages] == [
        "hi",
        "\n\n\nObserved result of command executed by user:\na",
    ]
    bad_tools = {
        "id": 0,
        "source": "agent",
        "action": "system",
        "args": {"content": "s", "tools": "x"},
    }
    with pytest.raises(MessageError, match="'tools' must be a list"):
        _read([bad_tools])


def test_unknown_event_types_are_skipped() -> None:
    history = [
        _user(0, "hi"),
        {"id": 1, "source": "environment", "action": "change_agent_state", "args": {}},
        {"id": 2, "source": "environment", "observation": "something_new", "content": "x"},
        {"id": 3, "source": "agent", "action": "brand_new_action", "args": {}},
    ]
    (ctx,) = _read(history)
    assert [m.text for m in ctx.messages] == ["hi"]
    assert ctx.meta["events"] == 4


# -- the real event streams -----------------------------------------------------------------------


def test_real_multi_swe_bench_output() -> None:
    path = _real("multi_swe_bench_output.jsonl")
    doc = read_path(path)
    assert openhands.detect(doc)
    assert not openai_chat.detect(doc) and not anthropic.detect(doc)
    contexts = load_all(path, format="openhands")
    got = [
        (
            c.title,
            len(c.messages),
            sum(len(m.tool_calls) for m in c.messages),
            len(c.model_calls()),
            (u := c.recorded_usage) and u.prompt_tokens,
            u and u.output_tokens,
        )
        for c in contexts
    ]
    assert got == MULTI_SWE_BENCH
    for ctx in contexts:
        accumulated = ctx.meta["metrics"]["accumulated_token_usage"]
        assert ctx.recorded_usage is not None
        assert ctx.recorded_usage.prompt_tokens == accumulated["prompt_tokens"]
        assert ctx.model == "meta-llama/llama-4-maverick"
        assert [t.name for t in ctx.tools] == [
            "execute_bash",
            "think",
            "finish",
            "str_replace_editor",
        ]
        assert ctx.messages[0].role == "system" and ctx.messages[1].role == "user"


def test_real_observation_repeated_three_times() -> None:
    first = load_all(_real("multi_swe_bench_output.jsonl"), format="openhands")[0]
    results = Counter(m.tool_results[0].text for m in first.messages if m.role == "tool")
    repeated = [(len(text), n) for text, n in results.items() if n == 3]
    assert repeated == [(20740, 3)]


def test_real_resolver_output_legacy_events() -> None:
    contexts = load_all(_real("resolver_mock_output.jsonl"), format="openhands")
    assert [(c.title, len(c.messages), len(c.model_calls())) for c in contexts] == [
        ("neubig/pr-viewer#5", 8, 4),
        ("neubig/pr-viewer#1", 44, 22),
    ]
    for ctx in contexts:
        assert len(ctx.model_calls()) == len(ctx.meta["metrics"]["costs"])
        assert ctx.recorded_usage is None and ctx.meta["approximate"] is True


@pytest.mark.parametrize(("name", "messages", "calls", "model", "usage"), RUNTIME_TRAJS)
def test_real_runtime_trajectory(
    name: str, messages: int, calls: int, model: str, usage: tuple[int, int, int, int]
) -> None:
    path = _real("runtime_trajs", f"{name}.json")
    doc = read_path(path)
    assert openhands.detect(doc)
    assert not openai_chat.detect(doc) and not anthropic.detect(doc)
    (ctx,) = load_all(path, format="openhands")
    assert (ctx.title, len(ctx.messages), len(ctx.model_calls()), ctx.model) == (
        name,
        messages,
        calls,
        model,
    )
    uncached, write, read, output = usage
    assert ctx.recorded_usage == Usage(
        input_tokens=uncached,
        cache_write_tokens=write,
        cache_read_tokens=read,
        output_tokens=output,
    )
    assert all(c.output is not None for c in ctx.model_calls())
