"""The mini-swe-agent `.traj.json` reader: messages, per-call usage, bad input, real runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctxtax._model import Usage
from ctxtax.errors import MessageError
from ctxtax.formats import (
    FORMATS,
    anthropic,
    load_all,
    mini_swe_agent,
    openai_chat,
    openhands,
    swe_agent,
)
from ctxtax.formats._document import as_document, parse_text, read_path
from ctxtax.formats.mini_swe_agent import read_usage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "mini_swe_agent"
FIXTURE = FIXTURES / "demo__repo-2.traj.json"
REAL = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "real"
    / "mini-swe-agent-gemini3"
)

# (instance id, messages, api calls, uncached input, cache read, output) verified on the real files
REAL_RUNS = [
    ("django__django-14349", 186, 92, 310079, 2100806, 27206),
    ("django__django-16263", 176, 87, 299786, 2164995, 42541),
    ("psf__requests-1142", 144, 71, 175843, 1396464, 12553),
    ("pylint-dev__pylint-7080", 136, 67, 236844, 1926749, 22820),
    ("scikit-learn__scikit-learn-25102", 88, 43, 167588, 3075482, 86287),
    ("sphinx-doc__sphinx-9229", 286, 142, 371812, 4946474, 26937),
    ("sympy__sympy-15976", 94, 46, 269523, 1133125, 75420),
    ("sympy__sympy-23413", 42, 20, 94025, 237019, 17616),
]


def _real(name: str) -> Path:
    path = REAL / f"{name}.traj.json"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (the ../shared/data/real folder is absent)")
    return path


def _messages() -> list[dict[str, Any]]:
    return [{"role": "system", "content": "sys"}, {"role": "user", "content": "task"}]


# -- detection ------------------------------------------------------------------------------------


def test_detects_fixture_and_is_ahead_of_openai_in_the_registry() -> None:
    doc = read_path(FIXTURE)
    assert mini_swe_agent.detect(doc)
    assert not anthropic.detect(doc)
    assert not swe_agent.detect(doc) and not openhands.detect(doc)
    # an OpenAI body reader would also take {"messages": [...]}: the registry tries us first
    assert openai_chat.detect(doc)
    order = list(FORMATS)
    assert order.index("mini_swe_agent") < order.index("openai")


def test_detects_older_trajectories_without_a_format_tag() -> None:
    value = {"info": {"model_stats": {"api_calls": 1}}, "messages": _messages()}
    assert mini_swe_agent.detect(as_document(value))


def test_does_not_claim_other_shapes() -> None:
    assert not mini_swe_agent.detect(as_document(_messages()))
    assert not mini_swe_agent.detect(as_document({"model": "gpt-4o", "messages": _messages()}))
    assert not mini_swe_agent.detect(as_document({"messages": _messages(), "info": {"a": 1}}))
    tagged = {"trajectory_format": "other-agent", "messages": _messages(), "info": {}}
    assert not mini_swe_agent.detect(as_document(tagged))
    assert not mini_swe_agent.detect(as_document({"trajectory": [], "history": _messages()}))
    assert not mini_swe_agent.detect(parse_text("# aider chat", path=Path("h.md")))


# -- reading --------------------------------------------------------------------------------------


def test_fixture_messages_and_calls() -> None:
    (ctx,) = load_all(FIXTURE, format="mini_swe_agent")
    assert ctx.source_format == "mini_swe_agent"
    assert ctx.title == "demo__repo-2"
    assert ctx.model == "google/gemini-3-pro-preview"
    # the bookkeeping ``exit`` message is skipped
    assert [m.role for m in ctx.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert ctx.messages[2].text.endswith("```bash\nls\n```")
    assert ctx.messages[2].raw["extra"]["response"]["id"] == "gen-1"
    assert all(p.kind == "text" for p in ctx.messages[2].parts)  # provider reasoning not a part
    assert ctx.calls is not None  # recorded from the responses, not derived
    assert [(c.start, c.end, c.output) for c in ctx.model_calls()] == [(0, 2, 2), (0, 4, 4)]
    assert ctx.model_calls()[0].usage == Usage(input_tokens=1000, output_tokens=50)
    assert ctx.model_calls()[1].usage == Usage(
        input_tokens=300, cache_read_tokens=900, output_tokens=40
    )
    assert ctx.recorded_usage == Usage(input_tokens=1300, cache_read_tokens=900, output_tokens=90)
    assert ctx.meta["model_stats"] == {"instance_cost": 0.01, "api_calls": 2}
    assert ctx.meta["trajectory_format"] == "mini-swe-agent-1"


def test_title_falls_back_to_the_file_stem_and_calls_without_response() -> None:
    value = {
        "info": {"mini_version": "1.0"},
        "messages": [*_messages(), {"role": "assistant", "content": "x"}],
    }
    doc = parse_text(json.dumps(value), source="run.traj.json", path=Path("dir/run.traj.json"))
    (ctx,) = mini_swe_agent.read(doc)
    assert ctx.title == "run"
    assert ctx.model is None
    assert [(c.end, c.output, c.usage) for c in ctx.model_calls()] == [(2, 2, None)]


def test_trajectory_without_assistant_message_made_no_call() -> None:
    (ctx,) = mini_swe_agent.read(
        as_document({"trajectory_format": "mini-swe-agent-1", "messages": _messages()})
    )
    assert ctx.calls == ()


def test_read_usage_shapes() -> None:
    openai = {
        "prompt_tokens": 120,
        "completion_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 100},
    }
    assert read_usage(openai) == Usage(input_tokens=20, cache_read_tokens=100, output_tokens=7)
    # LiteLLM over Anthropic: prompt_tokens includes the cache write and the cache read
    litellm = {
        "prompt_tokens": 4646,
        "completion_tokens": 177,
        "prompt_tokens_details": {"cached_tokens": 3482},
        "cache_creation_input_tokens": 1158,
        "cache_read_input_tokens": 3482,
    }
    assert read_usage(litellm) == Usage(
        input_tokens=6, cache_write_tokens=1158, cache_read_tokens=3482, output_tokens=177
    )
    # an older LiteLLM kept the cache write out of prompt_tokens
    older = {"prompt_tokens": 10, "completion_tokens": 1, "cache_creation_input_tokens": 500}
    assert read_usage(older) == Usage(input_tokens=10, cache_write_tokens=500, output_tokens=1)
    anthropic_usage = {"input_tokens": 5, "output_tokens": 9, "cache_read_input_tokens": 70}
    assert read_usage(anthropic_usage) == Usage(
        input_tokens=5, cache_read_tokens=70, output_tokens=9
    )
    assert read_usage(None) is None
    assert read_usage({"cost": 0.1}) is None
    garbage: dict[str, Any] = {
        "prompt_tokens": "many",
        "completion_tokens": None,
        "prompt_tokens_details": [],
    }
    assert read_usage(garbage) == Usage()


# -- bad input ------------------------------------------------------------------------------------


def test_messages_must_be_a_list() -> None:
    value = {"trajectory_format": "mini-swe-agent-1", "info": {}, "messages": "hi"}
    with pytest.raises(MessageError, match="'messages' must be a list"):
        mini_swe_agent.read(as_document(value))


def test_bad_message_names_its_index() -> None:
    value = {"trajectory_format": "mini-swe-agent-1", "messages": [*_messages(), {"role": "robot"}]}
    with pytest.raises(MessageError, match="unknown role 'robot'") as info:
        mini_swe_agent.read(as_document(value))
    assert info.value.message_index == 2


def test_bad_jsonl_record_names_the_line() -> None:
    good = {"trajectory_format": "mini-swe-agent-1", "messages": _messages()}
    bad = {"trajectory_format": "mini-swe-agent-1", "messages": [{"role": "user", "content": 3}]}
    text = json.dumps(good) + "\n" + json.dumps(bad) + "\n"
    doc = parse_text(text, source="runs.jsonl", path=Path("runs.jsonl"))
    with pytest.raises(MessageError) as info:
        mini_swe_agent.read(doc)
    assert (info.value.source, info.value.line, info.value.message_index) == ("runs.jsonl", 2, 0)
    doc = parse_text(json.dumps(good) + "\n[1]\n", source="runs.jsonl", path=Path("runs.jsonl"))
    with pytest.raises(MessageError, match="expected a mini-swe-agent trajectory") as info:
        mini_swe_agent.read(doc)
    assert info.value.line == 2


# -- the real runs --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "messages", "calls", "uncached", "read", "output"), REAL_RUNS)
def test_real_run(
    name: str, messages: int, calls: int, uncached: int, read: int, output: int
) -> None:
    path = _real(name)
    doc = read_path(path)
    assert mini_swe_agent.detect(doc)
    assert not anthropic.detect(doc) and not swe_agent.detect(doc) and not openhands.detect(doc)
    (ctx,) = load_all(path, format="mini_swe_agent")
    assert ctx.title == name
    assert ctx.model == "google/gemini-3-pro-preview"
    assert len(ctx.messages) == messages
    assert len(ctx.model_calls()) == calls == ctx.meta["model_stats"]["api_calls"]
    assert all(c.usage is not None and c.output == c.end for c in ctx.model_calls())
    assert ctx.recorded_usage == Usage(
        input_tokens=uncached, cache_read_tokens=read, output_tokens=output
    )


def test_real_runs_total_and_the_huge_final_observation() -> None:
    total = sum(
        len(load_all(_real(name), format="mini_swe_agent")[0].messages) for name, *_ in REAL_RUNS
    )
    assert total == 1152
    (ctx,) = load_all(_real("psf__requests-1142"))
    # the 868,167-char `git diff --cached` comes after the last call: no call reads it
    assert (ctx.messages[-1].role, len(ctx.messages[-1].text)) == ("user", 868167)
    assert ctx.model_calls()[-1].end == len(ctx.messages) - 2
