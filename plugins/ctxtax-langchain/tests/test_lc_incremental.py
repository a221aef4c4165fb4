"""What the middleware keeps between calls gives what writing the messages afresh gives.

In request mode the middleware reuses the messages it wrote the call before (`Reader.sent`) and
the messages it read (`Reader`). Each call, the model must get exactly the optimizer's context
written from scratch, each edited message marked with that call's edits, also when a later call
adds an edit deep in the history or to a message edited before; and the reader must see a
message changed in place.
"""

from __future__ import annotations

import itertools
from typing import Any

from ctxtax_langchain import CtxtaxMiddleware
from ctxtax_langchain.convert import Reader, from_context, to_context
from langchain.agents.middleware import ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from lc_fakes import call

from ctxtax import AppliedEdit, Step

FILE = "\n".join(
    f"def handler_{i}(request):\n    return request.params['f{i}'] * {i}" for i in range(30)
)
ANSI = "\n".join(f"\x1b[32mstep {i}\x1b[0m \x1b[2K\r downloading {i * 3}%" for i in range(40))

# One model call per entry: a user turn, or a tool call and its result.
SCRIPT: list[tuple[str, ...]] = [
    ("human", "Refactor the handlers."),
    ("tool", "a.py", FILE),
    ("tool", "build.log", ANSI),
    ("tool", "a.py", FILE),
    ("tool", "b.py", FILE.replace("* 7", "* 71")),
    ("human", "Now the tests."),  # the reasoning of the first turn is old now
    ("tool", "build.log", ANSI + "\nagain"),
    ("tool", "b.py", FILE.replace("* 7", "* 72")),
    ("tool", "run.log", ANSI.replace("step", "stage") + "\n" + FILE),
    ("tool", "a.py", "short"),  # run.log is no longer the last result: edited again
    ("human", "And the docs."),
    ("tool", "c.py", FILE.replace("* 7", "* 73")),
]


def assistant(k: int, path: str) -> AIMessage:
    why = f"Why read {path} now (call {k}): " + "think it through. " * 30
    return AIMessage(
        [{"type": "reasoning", "reasoning": why}, {"type": "text", "text": f"Reading {path}."}],
        tool_calls=[call("read_file", {"path": path}, f"c{k}")],
        response_metadata={"model_name": "fake"},
        id=f"a{k}",
    )


def add(history: list[BaseMessage], k: int, entry: tuple[str, ...]) -> None:
    if entry[0] == "human":
        history.append(HumanMessage(entry[1], id=f"h{k}"))
    else:
        history.append(assistant(k, entry[1]))
        history.append(ToolMessage(entry[2], tool_call_id=f"c{k}", id=f"t{k}"))


def by_message(edits: list[AppliedEdit]) -> dict[int, dict[str, Any]]:
    """What each edited message's ``response_metadata["ctxtax"]`` must say: its rules' codes
    in the order of its edits, and what they save together."""
    edited = sorted({e.loc.message for e in edits if e.loc.message is not None})
    return {
        m: {
            "codes": list(dict.fromkeys(e.code for e in edits if e.loc.message == m)),
            "tokens_saved": sum(e.tokens_saved for e in edits if e.loc.message == m),
        }
        for m in edited
    }


class Recorded:
    """A middleware driven call by call, with the optimizer's steps and what the model got."""

    def __init__(self, **options: Any) -> None:
        self.mw = CtxtaxMiddleware(**options)
        self.steps: list[Step] = []
        self.received: list[list[BaseMessage]] = []
        optimizer = self.mw.optimizer("")
        step = optimizer.step

        def recording(ctx: Any) -> Step:
            out = step(ctx)
            self.steps.append(out)
            return out

        optimizer.step = recording  # type: ignore[method-assign]

    def call(self, history: list[BaseMessage]) -> list[BaseMessage]:
        def handler(request: ModelRequest) -> ModelResponse:
            self.received.append(list(request.messages))
            return ModelResponse(result=[AIMessage("ok")])

        request = ModelRequest(model=object(), messages=list(history))  # type: ignore[arg-type]
        self.mw.wrap_model_call(request, handler)
        assert self.mw.summary["errors"] == 0
        return self.received[-1]


def assert_written_afresh(history: list[BaseMessage], got: list[BaseMessage], step: Step) -> None:
    """``got`` is the step's context written from scratch, each edited message marked."""
    scratch = from_context(step.context)
    meta = by_message(step.edits)
    assert len(got) == len(history) == len(scratch)
    for i, (sent, original, fresh) in enumerate(zip(got, history, scratch, strict=True)):
        assert sent.content == fresh.content, i
        assert sent.id == original.id, i
        if isinstance(sent, AIMessage):
            assert isinstance(fresh, AIMessage)
            assert sent.tool_calls == fresh.tool_calls, i
        if i in meta:
            assert sent is not original and sent.content != original.content, i
            want = {**original.response_metadata, "ctxtax": meta[i]}
            assert sent.response_metadata == want, i
        else:
            assert sent is original, i  # unedited: the caller's own object


def test_request_mode_sends_what_writing_afresh_gives_at_every_call() -> None:
    rec = Recorded(unsafe=True, keep_last=1, cache_aware=False)
    history: list[BaseMessage] = []
    metas: list[dict[int, dict[str, Any]]] = []
    for k, entry in enumerate(SCRIPT):
        add(history, k, entry)
        got = rec.call(history)
        assert_written_afresh(history, got, rec.steps[-1])
        metas.append(by_message(rec.steps[-1].edits))
    # What the kept messages are tested against did happen: a call edited messages written
    # unedited by the call before, deep in the history, and one edited a message again.
    deep = [i for before, now in itertools.pairwise(metas) for i in now.keys() - before.keys()]
    assert min(deep) <= 1
    again = [
        i
        for before, now in itertools.pairwise(metas)
        for i in now.keys() & before.keys()
        if now[i] != before[i]
    ]
    assert again
    assert rec.mw.optimizer("").rebuilt == 0


def test_a_rewritten_history_is_written_afresh() -> None:
    """The caller rewrites earlier messages between calls (new objects): nothing kept for
    them may be sent."""
    rec = Recorded(unsafe=True, keep_last=1, cache_aware=False)
    history: list[BaseMessage] = []
    for k, entry in enumerate(SCRIPT[:9]):
        add(history, k, entry)
        rec.call(history)
    old = history[1]
    assert isinstance(old, AIMessage)
    history[1] = old.model_copy(update={"content": "Reading a.py (rewritten)."})
    history[2] = ToolMessage("a.py is gone", tool_call_id="c1", id="t1")
    got = rec.call(history)
    assert_written_afresh(history, got, rec.steps[-1])
    assert got[2].content == "a.py is gone"
    for k, entry in enumerate(SCRIPT[9:], start=9):
        add(history, k, entry)
        assert_written_afresh(history, rec.call(history), rec.steps[-1])


def parts(messages: list[BaseMessage], reader: Reader | None = None) -> list[Any]:
    ctx = to_context(messages, reader=reader)
    return [[(p.kind, p.text, p.tool_name, p.tool_call_id) for p in m.parts] for m in ctx.messages]


def test_reader_sees_content_replaced_in_place() -> None:
    human = HumanMessage("old text", id="h")
    blocks = HumanMessage([{"type": "text", "text": "old block"}], id="b")
    messages: list[BaseMessage] = [human, blocks]
    reader = Reader()
    assert parts(messages, reader) == parts(messages)
    human.content = "new text"
    blocks.content = [{"type": "text", "text": "new block"}]  # as many blocks as before
    assert parts(messages, reader) == parts(messages)
    assert parts(messages, reader)[0] == [("text", "new text", None, None)]


def test_reader_sees_an_equal_copy_of_a_message_changed_in_place() -> None:
    """A checkpoint gives equal copies: equal to the message as it is now, not as read."""
    human = HumanMessage("old text", id="h")
    reader = Reader()
    parts([human], reader)
    human.content = "new text"
    copy = human.model_copy()
    assert parts([copy], reader) == parts([copy]) == [[("text", "new text", None, None)]]


def test_reader_sees_tool_calls_replaced_in_place() -> None:
    ai = AIMessage("", tool_calls=[call("read_file", {"path": "a.py"}, "c1")], id="a")
    result = ToolMessage("done", tool_call_id="c1", id="t")
    messages: list[BaseMessage] = [HumanMessage("go", id="h"), ai, result]
    reader = Reader()
    assert parts(messages, reader) == parts(messages)
    ai.tool_calls = [tool_call(name="write_file", args={"path": "b.py"}, id="c1")]
    assert parts(messages, reader) == parts(messages)
    assert parts(messages, reader)[1] == [("tool_call", '{"path": "b.py"}', "write_file", "c1")]
    assert parts(messages, reader)[2][0][2] == "write_file"  # the result named by its call


def test_request_mode_sends_a_message_changed_in_place() -> None:
    """A tool result replaced in place after it was edited as a copy: the model must get the
    new text, not the edit of the old one."""
    rec = Recorded()
    history: list[BaseMessage] = [HumanMessage("Read a.py twice.", id="h")]
    add(history, 1, ("tool", "a.py", FILE))
    add(history, 2, ("tool", "a.py", FILE))
    got = rec.call(history)
    assert "[ctxtax: same as" in str(got[4].content)
    history[4].content = "a.py changed: it is empty now"
    got = rec.call(history)
    assert got[4].content == "a.py changed: it is empty now"
    assert_written_afresh(history, got, rec.steps[-1])
