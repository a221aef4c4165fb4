"""Median per-call overhead of `CtxtaxMiddleware` on growing histories.

    .venv/bin/python plugins/ctxtax-langchain/benches/overhead.py            # request mode
    .venv/bin/python plugins/ctxtax-langchain/benches/overhead.py --persist  # persist mode

In persist mode each call's edited messages replace theirs in the history, as the
``add_messages`` reducer does, and the next call starts from that history; the slowest call is
reported too (a call after edits landed in the history used to rebuild everything).

For each target history size (10k / 50k / 200k tokens) a tool loop is built up to that size,
then each timed call adds one new tool call and its result (as an agent's next step does) and
runs the middleware's request path once, on the same thread's `ctxtax.Optimizer`. The first
calls are not timed: the first builds the index, and from the third a kept optimizer loads
numba's kernels on another thread (waited for here, once per process: the timed calls are the
steady state), and a first session warms the process up unreported. Each line also gives the median per call over the time tiktoken takes to tokenize
one new result alone: the machine's speed moves it less than the milliseconds.
"""

from __future__ import annotations

import statistics
import sys
import time

from ctxtax_langchain import CtxtaxMiddleware
from langchain.agents.middleware import ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

STEPS = 30
WARM_UP = 3
"""Calls before the timed ones: the first builds the index, the third starts loading numba."""


def result(i: int, stem: str = "file") -> str:
    return "\n".join(
        f"{stem}_{i}.py line {j}: value_{i}_{j} = compute({i}, {j})" for j in range(40)
    )


def history(tokens: int, stem: str = "file") -> list[BaseMessage]:
    messages: list[BaseMessage] = [HumanMessage("Refactor the project.", id="h0")]
    i = 0
    while sum(len(str(m.content)) for m in messages) // 4 < tokens:
        add_step(messages, i, stem)
        i += 1
    return messages


def add_step(messages: list[BaseMessage], i: int, stem: str = "file") -> None:
    call = {"name": "read_file", "args": {"path": f"f{i}.py"}, "id": f"c{i}", "type": "tool_call"}
    messages.append(AIMessage("", tool_calls=[call], id=f"a{i}"))
    # every fifth read repeats an earlier file: there is something to edit
    text = result(i if i % 5 else i // 2, stem)
    messages.append(ToolMessage(text, tool_call_id=f"c{i}", id=f"t{i}"))


def loaded() -> None:
    """Wait for numba's kernels, if a kept optimizer started loading them (see
    `ctxtax._accel.load_numba_in_background`): the calls timed are the steady state."""
    from ctxtax import _accel

    loader = _accel._LOADER.get("thread")
    if loader is not None:
        loader.join()


def persist() -> int:
    request_mode(10_000, stem="warm")  # the process's first session: not reported
    for size in (10_000, 50_000, 200_000):
        mw = CtxtaxMiddleware(mode="persist")
        messages = history(size)
        n = len(messages) // 2
        times: list[float] = []
        for step in range(WARM_UP + STEPS):
            add_step(messages, n + step)
            t0 = time.perf_counter()
            update = mw.before_model({"messages": list(messages)}, None)  # type: ignore[arg-type]
            elapsed = time.perf_counter() - t0
            if update:
                by_id = {m.id: m for m in update["messages"]}
                messages = [by_id.get(m.id, m) for m in messages]
            if step >= WARM_UP:
                times.append(elapsed)
            elif step == WARM_UP - 1:
                loaded()
        optimizer = mw.optimizer("")
        print(
            f"{size:>7,} tokens ({len(messages)} messages): median "
            f"{statistics.median(times) * 1000:.2f} ms/call, slowest {max(times) * 1000:.1f} ms, "
            f"index rebuilds {optimizer.auditor.rebuilds - 1}",
            flush=True,
        )
    return 0


def tokenizing() -> float:
    """Median ms tiktoken takes to tokenize one new tool result (``encode_ordinary``): this
    machine's speed, for a ratio that moves less than the milliseconds when the machine is
    busy."""
    from ctxtax import TiktokenCounter

    encoder = TiktokenCounter()._encoder()
    times = []
    for i in range(STEPS):
        text = result(10_000 + i)
        t0 = time.perf_counter()
        encoder.encode_ordinary(text)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def request_mode(size: int, stem: str = "file") -> tuple[float, int]:
    """(median ms per call, tokens saved per call) of request mode at ``size`` tokens
    (``stem``: other texts for a session whose tokens must not be cached for the next)."""
    mw = CtxtaxMiddleware()
    messages = history(size, stem)
    model = object()

    def handler(request: ModelRequest) -> ModelResponse:
        return ModelResponse(result=[AIMessage("ok")])

    n = len(messages) // 2
    times: list[float] = []
    for step in range(WARM_UP + STEPS):
        add_step(messages, n + step, stem)
        request = ModelRequest(model=model, messages=list(messages))  # type: ignore[arg-type]
        t0 = time.perf_counter()
        mw.wrap_model_call(request, handler)
        if step >= WARM_UP:
            times.append(time.perf_counter() - t0)
        elif step == WARM_UP - 1:
            loaded()
    return statistics.median(times) * 1000, mw.summary["tokens_saved"] // mw.summary["calls"]


def main() -> int:
    if "--persist" in sys.argv[1:]:
        return persist()
    # The process's first session (imports, caches, numba), on texts of its own: not reported.
    request_mode(10_000, stem="warm")
    for size in (10_000, 50_000, 200_000):
        med, saved = request_mode(size)
        print(
            f"{size:>7,} tokens: median {med:.2f} ms/call, saved {saved:,} tokens/call; "
            f"{med / tokenizing():.1f}x tokenizing the new result alone",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
