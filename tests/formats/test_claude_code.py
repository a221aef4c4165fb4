"""The Claude Code session-log reader: dedup, merging, compaction, sidechains, real sessions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctxtax import formats
from ctxtax._model import Context, Usage
from ctxtax.errors import InputError, MessageError, ParseError
from ctxtax.formats import anthropic, claude_code, claude_trace, load_all, openai_chat
from ctxtax.formats._document import read_path

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"
SPOTTER = "claude-code-spotter"
VIEWER = "claude-code-viewer"
SESSION = "s-1"


def real(*parts: str) -> Path:
    path = REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data/real is absent)")
    return path


# -- hand-made records --------------------------------------------------------------------------


def rec(kind: str, uuid: str, parent: str | None = None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": kind,
        "uuid": uuid,
        "parentUuid": parent,
        "isSidechain": False,
        "sessionId": SESSION,
        "timestamp": "2026-01-01T00:00:00Z",
    }
    record.update(extra)
    return record


def user(uuid: str, content: Any, parent: str | None = None, **extra: Any) -> dict[str, Any]:
    return rec("user", uuid, parent, message={"role": "user", "content": content}, **extra)


def assistant(
    uuid: str,
    msg_id: str,
    block: dict[str, Any],
    *,
    parent: str | None = None,
    request: str = "req_1",
    output: int = 5,
    model: str = "claude-opus-4-6",
    **extra: Any,
) -> dict[str, Any]:
    usage = {
        "input_tokens": 3,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
        "output_tokens": output,
    }
    message = {
        "model": model,
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "content": [block],
        "usage": usage,
    }
    return rec("assistant", uuid, parent, message=message, requestId=request, **extra)


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def tool_use(tid: str, name: str = "Bash") -> dict[str, Any]:
    return {"type": "tool_use", "id": tid, "name": name, "input": {"command": "ls"}}


def tool_result(tid: str, out: str = "ok") -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tid, "content": out}


def write(path: Path, records: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def load(tmp_path: Path, records: list[Any], name: str = f"{SESSION}.jsonl") -> list[Context]:
    return load_all(write(tmp_path / name, records), format="claude_code")


REPEATED = [
    {"type": "file-history-snapshot", "messageId": "x", "snapshot": {}},
    rec("progress", "p0", data={"type": "hook_progress"}),
    user("u1", "list the files"),
    assistant("a1", "msg_1", {"type": "thinking", "thinking": "hmm", "signature": "s"}, output=2),
    assistant("a2", "msg_1", text("Let me look."), output=2),
    assistant("a3", "msg_1", tool_use("t1"), output=42),
    rec("progress", "p1", data={"type": "bash_progress"}),
    user("u2", [tool_result("t1", "a.py")]),
    assistant("a4", "msg_2", text("One file."), request="req_2", output=7),
    assistant("a5", "msg_2", text("One file."), request="req_2", output=7),
    {"type": "queue-operation", "operation": "enqueue", "sessionId": SESSION},
    rec("system", "y1", subtype="stop_hook_summary", hookCount=1),
    rec("system", "y2", subtype="turn_duration", durationMs=10),
    {"type": "summary", "summary": "Files", "leafUuid": "a5"},
    {"type": "some-future-record", "sessionId": SESSION},
]


def test_repeated_records_count_usage_once_and_merge_blocks(tmp_path: Path) -> None:
    [ctx] = load(tmp_path, REPEATED)
    assert [m.role for m in ctx.messages] == ["user", "assistant", "user", "assistant"]
    first = ctx.messages[1]
    assert [p.kind for p in first.parts] == ["reasoning", "text", "tool_call"]
    assert first.id == "msg_1"
    assert first.meta["requestId"] == "req_1"
    assert [r["uuid"] for r in first.meta["records"]] == ["a1", "a2", "a3"]
    # the exact repeat of the second response's only block is dropped
    assert [p.text for p in ctx.messages[3].parts] == ["One file."]
    assert len(ctx.calls) == 2
    call = ctx.calls[0]
    assert (call.start, call.end, call.output, call.model) == (0, 1, 1, "claude-opus-4-6")
    assert call.usage == Usage(
        input_tokens=3, cache_write_tokens=100, cache_read_tokens=1000, output_tokens=42
    )
    assert ctx.calls[1].end == 3
    assert ctx.recorded_usage == Usage(
        input_tokens=6, cache_write_tokens=200, cache_read_tokens=2000, output_tokens=49
    )
    assert ctx.title == SESSION
    assert ctx.model == "claude-opus-4-6"
    assert ctx.tools == ()
    assert ctx.messages[2].tool_results[0].tool_name == "Bash"
    assert ctx.messages[0].meta["line"] == 3
    assert ctx.messages[0].raw == {"role": "user", "content": "list the files"}


def test_same_record_three_times_is_one_message_and_one_usage(tmp_path: Path) -> None:
    reply = assistant("a1", "msg_1", text("hi"), output=9)
    records = [user("u1", "hello"), reply, {**reply, "uuid": "a2"}, {**reply, "uuid": "a3"}]
    [ctx] = load(tmp_path, records)
    assert len(ctx.messages) == 2
    assert ctx.messages[1].text == "hi"
    assert len(ctx.calls) == 1
    assert ctx.recorded_usage == Usage(
        input_tokens=3, cache_write_tokens=100, cache_read_tokens=1000, output_tokens=9
    )
    # the same uuid logged twice (a resumed session) is read once
    [again] = load(tmp_path, [user("u1", "hello"), reply, reply], name="again.jsonl")
    assert len(again.messages) == 2 and len(again.calls) == 1


def test_interleaved_parallel_tool_calls_merge_like_the_api_request(tmp_path: Path) -> None:
    records = [
        user("u1", "go"),
        assistant("a1", "msg_1", tool_use("t1", "Read")),
        user("u2", [tool_result("t1")]),
        assistant("a2", "msg_1", tool_use("t2", "Grep")),
        user("u3", [tool_result("t2")]),
        user("u4", [text("[Request interrupted by user]")]),
        rec("system", "s1", subtype="local_command", content="<command-name>/mcp</command-name>"),
        user("u5", "next question", isMeta=False),
        assistant("a3", "msg_2", text("ok"), request="req_2"),
    ]
    [ctx] = load(tmp_path, records)
    assert [m.role for m in ctx.messages] == ["user", "assistant", "user", "assistant"]
    assert [p.tool_name for p in ctx.messages[1].tool_calls] == ["Read", "Grep"]
    merged = ctx.messages[2]
    assert [p.kind for p in merged.parts] == ["tool_result", "tool_result", "text", "text", "text"]
    assert merged.parts[3].text == "<command-name>/mcp</command-name>"
    assert merged.meta["records"][3]["system_subtype"] == "local_command"
    assert merged.meta["content_shape"] == "list"
    assert [r["line"] for r in merged.meta["records"]] == [3, 5, 6, 7, 8]
    assert [(c.start, c.end, c.output) for c in ctx.calls] == [(0, 1, 1), (0, 3, 3)]


def test_compaction_moves_the_window_and_keeps_the_history(tmp_path: Path) -> None:
    records = [
        user("u1", "first"),
        assistant("a1", "msg_1", text("one")),
        user("u2", "second"),
        assistant("a2", "msg_2", text("two"), request="req_2"),
        user("u3", "third"),
        rec("system", "b1", subtype="compact_boundary", content="Conversation compacted"),
        user("u4", "This session is being continued...", "b1", isCompactSummary=True),
        user("u5", "<system-reminder>todo</system-reminder>", "u4", isMeta=True),
        assistant("a3", "msg_3", text("three"), request="req_3"),
        user("u6", "fourth"),
        assistant("a4", "msg_4", text("four"), request="req_4"),
    ]
    [ctx] = load(tmp_path, records)
    assert len(ctx.messages) == 9
    summary = ctx.messages[5]
    assert summary.meta["compact_summary"] is True
    assert summary.text.startswith("This session is being continued")
    assert ctx.messages[4].text == "third"  # not merged across the boundary
    assert [(c.start, c.end) for c in ctx.calls] == [(0, 1), (0, 3), (5, 6), (5, 8)]
    assert ctx.meta["compactions"] == 1


def test_synthetic_and_api_error_messages(tmp_path: Path) -> None:
    records = [
        user("u1", "hi"),
        assistant("a1", "msg_e", text("API Error: 529 Overloaded"), isApiErrorMessage=True),
        user("u2", "hi again"),
        assistant("a2", "msg_s", text("No response requested."), model="<synthetic>"),
        user("u3", "and now"),
        assistant("a3", "msg_3", text("hello"), request="req_3"),
    ]
    [ctx] = load(tmp_path, records)
    assert [m.text for m in ctx.messages] == [
        "hi\nhi again",
        "No response requested.",
        "and now",
        "hello",
    ]
    assert [(c.end, c.model) for c in ctx.calls] == [(3, "claude-opus-4-6")]


def test_sidechains_in_the_main_file_are_their_own_contexts(tmp_path: Path) -> None:
    def side(record: dict[str, Any]) -> dict[str, Any]:
        return {**record, "isSidechain": True}

    records = [
        user("m1", "orchestrate"),
        assistant("ma", "msg_m", tool_use("task1", "Task")),
        side(user("s1", "subtask A")),
        side(assistant("sa", "msg_sa", text("done A"), parent="s1", request="r_sa")),
        side(user("x1", "subtask B")),
        side(assistant("xa", "msg_xa", text("done B"), parent="x1", request="r_xa")),
        user("m2", [tool_result("task1", "done A")], "ma"),
    ]
    ctxs = load(tmp_path, records)
    assert [c.title for c in ctxs] == [SESSION, f"{SESSION} sidechain 1", f"{SESSION} sidechain 2"]
    assert [len(c.messages) for c in ctxs] == [3, 2, 2]
    assert ctxs[1].messages[0].text == "subtask A"
    assert ctxs[2].messages[1].text == "done B"
    assert ctxs[1].meta["sidechain"] is True


def test_subagent_files_next_to_the_session_are_read(tmp_path: Path) -> None:
    main = write(tmp_path / f"{SESSION}.jsonl", REPEATED)
    agent = [
        {**user("q1", "search"), "isSidechain": True, "agentId": "abc"},
        {
            **assistant("qa", "msg_q", text("found"), parent="q1"),
            "isSidechain": True,
            "agentId": "abc",
        },
    ]
    sub = write(tmp_path / SESSION / "subagents" / "agent-abc.jsonl", agent)
    ctxs = load_all(main, format="claude_code")
    assert [c.title for c in ctxs] == [SESSION, f"{SESSION} subagent agent-abc"]
    assert ctxs[1].source == str(sub)
    assert ctxs[1].meta["agent_id"] == "abc"
    [alone] = load_all(sub, format="claude_code")
    assert alone.title == f"{SESSION} subagent agent-abc"
    assert len(alone.calls) == 1


def test_detection_claims_only_claude_code_logs(tmp_path: Path) -> None:
    doc = read_path(write(tmp_path / "x.jsonl", REPEATED))
    assert claude_code.detect(doc)
    assert not openai_chat.detect(doc)
    assert not anthropic.detect(doc)
    assert not claude_trace.detect(doc)
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    assert not claude_code.detect(formats.to_document(body))
    assert not claude_code.detect(formats.to_document([{"role": "user", "content": "hi"}]))
    # an in-memory list of records is read too
    [ctx] = claude_code.read(formats.to_document(REPEATED))
    assert len(ctx.calls) == 2


def test_bad_input_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(user("u1", "hi")) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ParseError) as exc:
        load_all(path, format="claude_code")
    assert exc.value.line == 2
    with pytest.raises(MessageError) as exc2:
        load(tmp_path, [user("u1", "hi"), rec("assistant", "a1", message="oops")], "b2.jsonl")
    assert exc2.value.line == 2
    with pytest.raises(MessageError) as exc3:
        load(tmp_path, [user("u1", "hi"), user("u2", [42])], "b3.jsonl")
    assert exc3.value.line == 2
    assert "b3.jsonl" in str(exc3.value)
    with pytest.raises(InputError) as exc4:
        load(tmp_path, [user("u1", "hi"), [1, 2]], "b4.jsonl")
    assert exc4.value.line == 2


# -- real sessions ----------------------------------------------------------------------------


def naive_usage(path: Path) -> Usage:
    """The sum over every assistant record, repeats included (what dedup must avoid)."""
    total = Usage()
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("type") == "assistant":
            u = record["message"]["usage"]
            total = total + Usage(
                input_tokens=u["input_tokens"],
                cache_write_tokens=u["cache_creation_input_tokens"],
                cache_read_tokens=u["cache_read_input_tokens"],
                output_tokens=u["output_tokens"],
            )
    return total


# file -> (contexts, main messages, main calls, tool calls, usage (in, write, read, out), starts)
SPOTTER_MAIN = {
    "4d5611e5-241a-462a-8d15-5122611a9569": (
        3,
        279,
        139,
        150,
        (177, 479537, 11618567, 28755),
        {0, 123},
    ),
    "8463c716-a2ea-4c14-9efa-87158ebd9f20": (
        3,
        287,
        143,
        177,
        (2481, 260451, 15740561, 40320),
        {0, 143},
    ),
    "ae4a77f8-aedd-4bc1-888f-c94edc91af04": (
        3,
        434,
        217,
        242,
        (242, 237121, 16553628, 49467),
        {0, 276},
    ),
}


@pytest.mark.parametrize("session", sorted(SPOTTER_MAIN))
def test_real_spotter_sessions(session: str) -> None:
    path = real(SPOTTER, f"{session}.jsonl")
    n_ctx, n_msgs, n_calls, n_tools, usage, starts = SPOTTER_MAIN[session]
    ctxs = load_all(path, format="claude_code")
    assert len(ctxs) == n_ctx
    main = ctxs[0]
    assert main.title == session
    assert len(main.messages) == n_msgs
    assert len(main.calls) == n_calls
    assert sum(len(m.tool_calls) for m in main.messages) == n_tools
    u = main.recorded_usage
    assert u is not None
    assert (u.input_tokens, u.cache_write_tokens, u.cache_read_tokens, u.output_tokens) == usage
    assert {c.start for c in main.calls} == starts
    assert main.messages[max(starts)].meta["compact_summary"] is True
    assert [c.title.split()[-1] for c in ctxs[1:] if c.title] == sorted(
        p.stem for p in (path.parent / session / "subagents").glob("agent-*.jsonl")
    )
    # the logs repeat each response once per content block: the naive sum over-counts
    naive = naive_usage(path)
    assert naive.prompt_tokens > 1.5 * u.prompt_tokens
    assert naive.output_tokens >= u.output_tokens
    for ctx in ctxs:
        for call in ctx.calls:
            assert ctx.messages[call.output or 0].role == "assistant"
            assert call.start <= call.end


def test_real_spotter_small_files_and_tool_totals() -> None:
    folder = real(SPOTTER)
    short = load_all(folder / "short.jsonl", format="claude_code")
    assert [(len(c.messages), len(c.calls)) for c in short] == [(3, 1)]
    assert short[0].calls[0].usage == Usage(
        input_tokens=3, cache_write_tokens=13835, cache_read_tokens=11515, output_tokens=13
    )
    heavy = load_all(folder / "tool_heavy.jsonl", format="claude_code")
    assert [(len(c.messages), len(c.calls)) for c in heavy] == [(9, 4)]
    sub = load_all(folder / "subagent.jsonl", format="claude_code")
    assert [(len(c.messages), len(c.calls)) for c in sub] == [(24, 12)]
    contexts = [
        c for p in sorted(folder.glob("*.jsonl")) for c in load_all(p, format="claude_code")
    ]
    assert len(contexts) == 12
    # every tool_use block in the 12 files (657; SOURCE.md says 652) is read exactly once
    assert sum(len(m.tool_calls) for c in contexts for m in c.messages) == 657
    assert sum(len(m.tool_results) for c in contexts for m in c.messages) == 657


def test_real_viewer_sessions_with_sidechains() -> None:
    folder = real(VIEWER)
    expected = {
        "1af7fc5e-8455-4414-9ccd-011d40f70b2a": [(14, 7)],
        "5c0375b4-57a5-4f26-b12d-d022ee4e51b7": [(20, 10), (6, 3), (14, 7)],
        "fe5e1c67-53e7-4862-81ae-d0e013e3270b": [
            (18, 9),
            (18, 9),
            (68, 34),
            (80, 40),
            (50, 25),
            (106, 53),
        ],
    }
    tools = 0
    for stem, shape in expected.items():
        ctxs = load_all(folder / f"{stem}.jsonl", format="claude_code")
        assert [(len(c.messages), len(c.calls)) for c in ctxs] == shape
        assert ctxs[0].title == stem
        assert all(c.model == "claude-sonnet-4-20250514" for c in ctxs)
        tools += sum(len(m.tool_calls) for c in ctxs for m in c.messages)
    assert tools == 200


@pytest.mark.parametrize(
    "path",
    [
        f"{SPOTTER}/short.jsonl",
        f"{SPOTTER}/4d5611e5-241a-462a-8d15-5122611a9569.jsonl",
        f"{SPOTTER}/4d5611e5-241a-462a-8d15-5122611a9569/subagents/agent-a2898e3.jsonl",
        f"{VIEWER}/fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl",
    ],
)
def test_real_files_are_detected(path: str) -> None:
    doc = read_path(real(*path.split("/")))
    assert claude_code.detect(doc)
    assert not claude_trace.detect(doc)
    assert not openai_chat.detect(doc)
    assert not anthropic.detect(doc)
    assert formats.detect(doc) == "claude_code"
