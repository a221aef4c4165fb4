"""The SWE-agent `.traj` reader: history messages, tool-call ids, config, bad input, real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctxtax._model import Context
from ctxtax.errors import InputError, MessageError
from ctxtax.formats import anthropic, load_all, mini_swe_agent, openai_chat, openhands, swe_agent
from ctxtax.formats._document import as_document, parse_text, read_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "swe_agent"
REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "swe-agent"


def _real() -> Path:
    if not REAL.exists():
        pytest.skip(f"real data not found at {REAL} (the ../shared/data/real folder is absent)")
    return REAL


def _read(value: Any) -> list[Context]:
    return swe_agent.read(as_document(value))


def _entry(role: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": content, "agent": "main", **extra}


# -- detection ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["function_calling.traj", "history_only.traj"])
def test_detects_fixtures_and_not_other_formats(name: str) -> None:
    doc = read_path(FIXTURES / name)
    assert swe_agent.detect(doc)
    assert not openai_chat.detect(doc)
    assert not anthropic.detect(doc)
    assert not mini_swe_agent.detect(doc)
    assert not openhands.detect(doc)


def test_does_not_claim_other_shapes() -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert not swe_agent.detect(as_document(messages))
    assert not swe_agent.detect(as_document({"model": "gpt-4o", "messages": messages}))
    # a history of plain chat messages (no SWE-agent ``agent`` key) is not claimed
    assert not swe_agent.detect(as_document({"history": messages}))
    events = {"instance_id": "x", "history": [{"id": 0, "source": "user", "action": "message"}]}
    assert not swe_agent.detect(as_document(events))
    mini = {"trajectory_format": "mini-swe-agent-1", "messages": messages, "info": {}}
    assert not swe_agent.detect(as_document(mini))
    assert not swe_agent.detect(parse_text("# aider chat", path=Path("h.md")))


# -- reading --------------------------------------------------------------------------------------


def test_function_calling_trajectory() -> None:
    (ctx,) = load_all(FIXTURES / "function_calling.traj", format="swe_agent")
    assert ctx.source_format == "swe_agent"
    assert ctx.title == "demo__repo-1"  # replay_config.problem_statement.id
    assert ctx.model == "gpt-4o"
    assert [m.role for m in ctx.messages] == [
        "system",
        "user",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]
    # replay_config is JSON text holding OpenAI-shaped tool definitions
    assert [t.name for t in ctx.tools] == ["bash", "submit"]
    assert ctx.tools[0].parameters["required"] == ["command"]
    assert ctx.meta["model_stats"]["api_calls"] == 2
    assert ctx.meta["exit_status"] == "submitted"
    assert ctx.meta["history_processors"] == [{"type": "last_n_observations", "n": 5}]
    assert ctx.calls is None  # no per-call record: one default call per assistant message
    assert [(c.end, c.output) for c in ctx.model_calls()] == [(3, 3), (5, 5)]


def test_tool_call_ids_become_tool_call_id_and_raw_stays_original() -> None:
    (ctx,) = load_all(FIXTURES / "function_calling.traj", format="swe_agent")
    call = ctx.messages[3].tool_calls[0]
    assert (call.tool_call_id, call.tool_name, call.text) == ("call_1", "bash", '{"command":"ls"}')
    result = ctx.messages[4].tool_results[0]
    assert (result.tool_call_id, result.tool_name, result.text) == ("call_1", "bash", "a.py")
    raw = ctx.messages[4].raw
    assert raw["tool_call_ids"] == ["call_1"] and "tool_call_id" not in raw
    assert ctx.messages[4].meta["extra"]["message_type"] == "observation"
    # list content of {type: text} parts reads as text
    assert ctx.messages[6].tool_results[0].text == "diff --git a/a.py b/a.py"


def test_demonstration_and_thinking_blocks() -> None:
    (ctx,) = load_all(FIXTURES / "function_calling.traj", format="swe_agent")
    demo = ctx.messages[1]
    assert demo.text == "Here is a demonstration."
    assert demo.meta["extra"]["is_demo"] is True
    kinds = [p.kind for p in ctx.messages[5].parts]
    assert kinds == ["reasoning", "text", "tool_call"]
    assert ctx.messages[5].parts[0].text == "The fix is ready."


def test_history_only_trajectory_titles_from_file_stem() -> None:
    (ctx,) = load_all(FIXTURES / "history_only.traj", format="swe_agent")
    assert ctx.title == "history_only"
    assert ctx.model is None and ctx.tools == ()
    assert [m.role for m in ctx.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert ctx.messages[2].meta["extra"]["action"] == "ls"
    assert len(ctx.model_calls()) == 2


def test_one_context_per_agent() -> None:
    history = [
        _entry("system", "main prompt"),
        _entry("user", "task"),
        {"role": "system", "content": "review prompt", "agent": "reviewer"},
        _entry("assistant", "answer"),
        {"role": "user", "content": "review this", "agent": "reviewer"},
    ]
    main, reviewer = _read({"trajectory": [], "history": history, "instance_id": "t-1"})
    assert (main.title, main.meta["agent"], len(main.messages)) == ("t-1:main", "main", 3)
    assert (reviewer.title, len(reviewer.messages)) == ("t-1:reviewer", 2)


def test_pseudo_models_and_config_without_tools() -> None:
    config = {"agent": {"model": {"name": "replay"}, "tools": {"bundles": [{"path": "x"}]}}}
    (ctx,) = _read({"trajectory": [], "history": [_entry("user", "hi")], "replay_config": config})
    assert ctx.model is None and ctx.tools == ()
    config["agent"]["model"] = {"model_name": "gpt4"}  # older SWE-agent configs
    (ctx,) = _read({"trajectory": [], "history": [_entry("user", "hi")], "replay_config": config})
    assert ctx.model == "gpt4"


# -- bad input ------------------------------------------------------------------------------------


def test_history_must_be_a_list() -> None:
    with pytest.raises(MessageError, match="'history' must be a list"):
        _read({"trajectory": [], "history": {"role": "user"}})


def test_bad_history_entry_names_the_message() -> None:
    with pytest.raises(MessageError) as info:
        _read({"trajectory": [], "history": [_entry("user", "hi"), "oops"]})
    assert info.value.message_index == 1
    with pytest.raises(MessageError, match="unknown role 'robot'") as info:
        _read({"trajectory": [], "history": [_entry("robot", "hi")]})
    assert info.value.message_index == 0
    with pytest.raises(InputError):
        _read({"trajectory": [], "history": [_entry("user", 42)]})


def test_bad_jsonl_record_names_the_line() -> None:
    good = json.dumps({"trajectory": [], "history": [_entry("user", "hi")]})
    bad = json.dumps({"trajectory": [], "history": [_entry("robot", "hi")]})
    doc = parse_text(good + "\n" + bad + "\n", source="t.jsonl", path=Path("t.jsonl"))
    with pytest.raises(MessageError) as info:
        swe_agent.read(doc)
    assert (info.value.source, info.value.line) == ("t.jsonl", 2)


# -- the real trajectories ------------------------------------------------------------------------


def test_real_trajectories() -> None:
    files = sorted(_real().rglob("*.traj"))
    assert len(files) == 22
    contexts = []
    for path in files:
        doc = read_path(path)
        assert swe_agent.detect(doc), path
        assert not openai_chat.detect(doc) and not anthropic.detect(doc), path
        contexts.extend(load_all(path, format="swe_agent"))
    assert len(contexts) == 22
    assert sum(len(c.messages) for c in contexts) == 489
    assert sum(1 for c in contexts for m in c.messages if m.tool_calls) == 44
    assert all(c.title for c in contexts)


def test_real_gpt4_run_and_function_calling_demo() -> None:
    root = _real()
    (pydicom,) = load_all(next(root.rglob("pydicom__pydicom-1458.traj")), format="swe_agent")
    assert pydicom.title == "pydicom__pydicom-1458"
    assert len(pydicom.messages) == 26
    assert pydicom.meta["model_stats"]["api_calls"] == 12
    assert pydicom.meta["model_stats"]["tokens_sent"] == 122612
    assert len(pydicom.model_calls()) == 12
    assert sum(1 for m in pydicom.messages if m.meta["extra"].get("is_demo")) == 1
    (simple,) = load_all(root / "demonstrations" / "function_calling_simple.traj")
    assert simple.source_format == "swe_agent"
    assert len(simple.messages) == 12
    calls = [p for m in simple.messages for p in m.tool_calls]
    results = [p for m in simple.messages for p in m.tool_results]
    assert len(calls) == len(results) == 5
    assert [r.tool_call_id for r in results] == [c.tool_call_id for c in calls]
    assert results[0].tool_name == "find_file"
