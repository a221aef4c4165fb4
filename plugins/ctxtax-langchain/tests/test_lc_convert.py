"""LangChain messages -> ctxtax Context -> LangChain messages, lossless."""

from __future__ import annotations

from ctxtax_langchain import from_context, to_context
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from lc_fakes import LONG, call


def conversation() -> list:
    return [
        SystemMessage("You are terse.", id="s"),
        HumanMessage(
            [
                {"type": "text", "text": "What is in this picture and in a.py?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
            ],
            id="h1",
            name="alice",
        ),
        AIMessage(
            [
                {"type": "reasoning", "reasoning": "Read both files."},
                {"type": "text", "text": "Reading."},
            ],
            tool_calls=[
                call("read_file", {"path": "a.py"}, "c1"),
                call("read_file", {"path": "b.py"}, "c2"),
            ],
            additional_kwargs={"refusal": None},
            response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
            usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
            id="a1",
        ),
        ToolMessage(LONG, tool_call_id="c1", id="t1", artifact={"bytes": 9000}),
        ToolMessage("no such file", tool_call_id="c2", id="t2", status="error"),
        AIMessage("", tool_calls=[call("read_file", {"path": "a.py"}, "c3")], id="a2"),
        ToolMessage([{"type": "text", "text": LONG}], tool_call_id="c3", id="t3"),
        HumanMessage("thanks", id="h2"),
    ]


def test_round_trip_gives_the_same_objects() -> None:
    messages = conversation()
    ctx = to_context(messages)
    back = from_context(ctx)
    assert back == messages
    assert all(a is b for a, b in zip(back, messages, strict=True))


def test_parts_are_read() -> None:
    ctx = to_context(conversation())
    kinds = [[p.kind for p in m.parts] for m in ctx.messages]
    assert kinds[1] == ["text", "image"]
    assert kinds[2] == ["reasoning", "text", "tool_call", "tool_call"]
    result = ctx.messages[4].parts[0]
    assert result.kind == "tool_result" and result.is_error and result.tool_name == "read_file"
    assert ctx.messages[2].tool_calls[1].text == '{"path": "b.py"}'
    assert [m.role for m in ctx.messages][:3] == ["system", "user", "assistant"]


def test_edited_messages_keep_ids_and_metadata() -> None:
    messages = conversation()
    ctx = to_context(messages)
    edited = []
    for m in ctx.messages:
        parts = tuple(
            p.model_copy(update={"text": "short", "raw": None})
            if p.kind in {"text", "tool_result"}
            else p
            for p in m.parts
        )
        edited.append(m.model_copy(update={"parts": parts, "raw": None}))
    back = from_context(ctx.model_copy(update={"messages": tuple(edited)}))
    for old, new in zip(messages, back, strict=True):
        assert type(new) is type(old)
        assert new.id == old.id and new.name == old.name
        assert new.additional_kwargs == old.additional_kwargs
        assert new.response_metadata == old.response_metadata
    assert back[2].tool_calls == messages[2].tool_calls
    assert back[2].usage_metadata == messages[2].usage_metadata
    assert back[2].content[0] == {"type": "reasoning", "reasoning": "Read both files."}
    assert back[2].content[1] == {"type": "text", "text": "short"}
    assert back[3].content == "short" and back[3].artifact == {"bytes": 9000}
    assert back[4].status == "error"
    assert back[6].content == [{"type": "text", "text": "short"}]
    assert back[7].content == "short"


def test_unread_messages_are_built_by_role() -> None:
    ctx = to_context(conversation())
    fresh = tuple(m.model_copy(update={"raw": None, "meta": {}}) for m in ctx.messages)
    back = from_context(ctx.model_copy(update={"messages": fresh}))
    assert [type(m).__name__ for m in back] == [type(m).__name__ for m in conversation()]
    assert back[2].tool_calls == conversation()[2].tool_calls
    assert back[3].content == LONG and back[3].tool_call_id == "c1"
