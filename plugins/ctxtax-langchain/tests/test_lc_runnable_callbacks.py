"""The runnable in a prompt | ctxtax | model chain, and the audit callback handler."""

from __future__ import annotations

from ctxtax_langchain import CtxtaxCallbackHandler, ctxtax_runnable, to_context
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from lc_fakes import LONG, ScriptedChatModel, call, script
from test_lc_agent import read_file, word_count

import ctxtax


def history() -> list:
    return [
        HumanMessage("read a.py twice", id="h1"),
        AIMessage("", tool_calls=[call("read_file", {"path": "a.py"}, "c1")], id="a1"),
        ToolMessage(LONG, tool_call_id="c1", id="t1"),
        AIMessage("", tool_calls=[call("read_file", {"path": "a.py"}, "c2")], id="a2"),
        ToolMessage(LONG, tool_call_id="c2", id="t2"),
    ]


def test_runnable_in_a_chain() -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are terse."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    model = ScriptedChatModel(replies=[AIMessage("120")])
    chain = prompt | ctxtax_runnable() | model
    answer = chain.invoke({"history": history(), "question": "How many functions?"})
    assert answer.content == "120"
    sent = model.sent[0]
    assert len(sent) == 7
    assert sent[3].content == LONG
    assert sent[5].content.startswith("[ctxtax: same as")


def test_runnable_called_with_messages() -> None:
    messages = history()
    out = ctxtax_runnable(messages, min_saving=8)
    assert out[:4] == messages[:4] and out[0] is messages[0]
    assert out[4].content.startswith("[ctxtax: same as") and out[4].id == "t2"


def test_callback_totals_match_audit() -> None:
    handler = CtxtaxCallbackHandler()
    model = ScriptedChatModel(replies=script())
    agent = create_agent(model, [read_file, word_count])
    agent.invoke({"messages": [("user", "How many functions?")]}, {"callbacks": [handler]})
    report = handler.report()
    assert report["calls"] == len(model.sent) == 3
    tools = model.bind_tools([read_file, word_count]).kwargs["tools"]
    audits = [ctxtax.audit(to_context(p, tools), strict=False) for p in model.sent]
    assert report["prompt_tokens"] == sum(a.total_tokens for a in audits)
    assert report["wasted_tokens"] == sum(a.wasted_tokens for a in audits) > 0
    assert report["usage"] == {
        "calls": 3,
        "input_tokens": 600,
        "output_tokens": 30,
        "cache_read_tokens": 150,
        "cache_creation_tokens": 15,
    }
    # audit only: the model saw the duplicates
    assert sum(m.content == LONG for m in model.sent[-1]) == 2
