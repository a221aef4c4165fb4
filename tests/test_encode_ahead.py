"""Tokenizing in joined chunks, on helper threads, ahead of the audit: the same ids as tiktoken's
own ``encode_ordinary``, every text stored before it is read, errors and early exits handled."""

from __future__ import annotations

import threading
import time
from functools import cache

import numpy as np
import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

import ctxtax
from ctxtax import _encode_ahead
from ctxtax._encode_ahead import (
    CHUNK_CHARS,
    FIRST_CHUNK_CHARS,
    SEPARATOR,
    EncodeAhead,
    encode_joined,
    plan_chunks,
)
from ctxtax._tokens import TiktokenCounter, _offline_ranks

from .conftest import real_texts


@cache
def encoder() -> tiktoken.Encoding:
    return tiktoken.Encoding(**_offline_ranks())


def reference(texts: list[str]) -> list[list[int]]:
    enc = encoder()
    return [enc.encode_ordinary(t) for t in texts]


def as_lists(ids: list[np.ndarray]) -> list[list[int]]:
    return [a.tolist() for a in ids]


HARD = [
    "",
    " ",
    "ends with spaces   ",
    "   starts with spaces",
    "\n\n",
    "line\n   ",
    "trailing newline\n",
    "I'll DON'T we've",
    "1234567890 3.14",
    "naïve café Ωμέγα",
    "日本語のテキスト",
    "emoji 🎉 zwj 👩‍💻",
    "e\u0301 combining",
    f"the separator itself {SEPARATOR} in a text",
    "<|fim_prefix|> another special, written out",
    "half a special <|endof",
    "text|> the other half",
    "<|",
    "|>",
    "lone \ud800 surrogate",
    "    def f(x):\n        return x\n\n\n",
]


def test_joined_chunks_give_encode_ordinarys_ids() -> None:
    # Every neighbour pair of the hard cases meets at a separator (whitespace runs at the
    # edges, half specials, a surrogate that sends its chunk text by text).
    for texts in (HARD, HARD[::-1], [t for t in HARD if "\ud800" not in t]):
        assert as_lists(encode_joined(encoder(), texts)) == reference(texts)


def test_a_text_holding_a_special_string_is_encoded_alone() -> None:
    # Joined, "<|endoftext|>" would be read as the separator and cut the text in two.
    texts = ["before", f"a{SEPARATOR}b", "after"]
    ids = encode_joined(encoder(), texts)
    assert as_lists(ids) == reference(texts)
    assert encoder().eot_token not in np.concatenate(ids)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.sampled_from(list(" \t\n\r\u00a0aZé9_'-.<>|!日🎉\u0301"))),
        max_size=12,
    )
)
def test_any_texts_joined_give_encode_ordinarys_ids(texts: list[str]) -> None:
    assert as_lists(encode_joined(encoder(), texts)) == reference(texts)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(), max_size=6))
def test_any_unicode_joined_gives_encode_ordinarys_ids(texts: list[str]) -> None:
    assert as_lists(encode_joined(encoder(), texts)) == reference(texts)


def test_an_encoder_without_the_separator_encodes_text_by_text() -> None:
    plain = tiktoken.Encoding(
        name="no_specials",
        pat_str=_offline_ranks()["pat_str"],
        mergeable_ranks=_offline_ranks()["mergeable_ranks"],
        special_tokens={},
    )
    texts = ["hello there", f"a {SEPARATOR} b", "  "]
    assert as_lists(encode_joined(plain, texts)) == reference(texts)


def test_real_sessions_joined_give_encode_ordinarys_ids() -> None:
    texts = real_texts(step=3)  # a third of the files: every format
    chunks, _ = plan_chunks([texts], lambda text: False)
    got = [ids for chunk in chunks for ids in encode_joined(encoder(), chunk)]
    want = encoder().encode_ordinary_batch(texts, num_threads=2)
    assert len(got) == len(want) == len(texts)
    for text, a, b in zip(texts, got, want, strict=True):
        assert a.tolist() == b, text[:80]
    assert sum(map(len, want)) > 300_000


def test_plan_cuts_distinct_uncached_texts_into_growing_chunks() -> None:
    groups = [["a" * 10_000, "b" * 10_000], ["a" * 10_000, "cached"], ["c" * 600_000], []]
    chunks, needs = plan_chunks(groups, lambda text: text == "cached")
    assert chunks == [["a" * 10_000, "b" * 10_000], ["c" * 600_000]]
    assert needs == [(0,), (0,), (1,), ()]
    many = [[str(i) * 1000 for i in range(10, 1000)]]
    sizes = [sum(map(len, c)) for c in plan_chunks(many, lambda text: False)[0]]
    assert sizes[0] >= FIRST_CHUNK_CHARS and sizes[0] < 2 * FIRST_CHUNK_CHARS
    assert sizes[1] >= 2 * FIRST_CHUNK_CHARS
    assert max(sizes) < CHUNK_CHARS + 3000  # a chunk ends at the text that fills it


def test_a_group_needs_the_chunks_of_its_texts_seen_before() -> None:
    chunks, needs = plan_chunks([["x"], ["x"]], lambda text: False)
    assert chunks == [["x"]] and needs == [(0,), (0,)]
    assert plan_chunks([["seen"], []], lambda text: True) == ([], [(), ()])
    big = "b" * FIRST_CHUNK_CHARS
    chunks, needs = plan_chunks([[big], ["y"], ["y", big]], lambda text: False)
    assert chunks == [[big], ["y"]] and needs == [(0,), (1,), (0, 1)]


class Recorder:
    """An `encode` for `EncodeAhead` that records which thread took each chunk."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.stored: dict[str, int] = {}
        self.threads: list[str] = []
        self.delay = delay
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, texts: list[str]) -> None:
        time.sleep(self.delay)
        if self.fail_on in texts:
            raise RuntimeError(f"cannot encode {self.fail_on!r}")
        with self.lock:
            self.threads.append(threading.current_thread().name)
            for text in texts:
                self.stored[text] = len(text)


def groups_of(n: int, size: int = 9_000) -> list[list[str]]:
    return [[f"{g}-{i}-" + "x" * size for i in range(3)] for g in range(n)]


def test_every_group_is_stored_when_ready_returns() -> None:
    groups = groups_of(40)
    recorder = Recorder(delay=0.002)
    with EncodeAhead(groups, recorder, helpers=2) as ahead:
        for g, texts in enumerate(groups):
            ahead.ready(g)
            assert all(t in recorder.stored for t in texts)
    assert len(recorder.stored) == 120
    assert any(name.startswith("ctxtax-tokenize") for name in recorder.threads)
    assert threading.current_thread().name in recorder.threads or len(set(recorder.threads)) > 1


def test_without_helpers_the_caller_encodes_each_group_when_it_needs_it() -> None:
    groups = groups_of(10)
    recorder = Recorder()
    with EncodeAhead(groups, recorder, helpers=0) as ahead:
        ahead.ready(0)
        first = len(recorder.stored)
        assert 3 <= first < 30  # the first chunk only, not everything
        ahead.ready(9)
    assert set(recorder.threads) == {threading.current_thread().name}
    assert len(recorder.stored) == 30


def test_in_turn_gives_every_group_once_and_only_when_stored() -> None:
    groups = groups_of(40)
    recorder = Recorder(delay=0.002)
    order = []
    with EncodeAhead(groups, recorder, helpers=1) as ahead:
        for g in ahead.in_turn():
            assert all(t in recorder.stored for t in groups[g])
            order.append(g)
    assert sorted(order) == list(range(40))


class SlowOn(Recorder):
    """A helper takes long over the chunk holding one text (the caller would not go on with
    other groups meanwhile if it took that chunk itself, so the helper alone is slow)."""

    def __init__(self, slow: str) -> None:
        super().__init__(delay=0.005)  # every chunk takes a while: the helper gets its share
        self.slow = slow
        self.helper_took_it = False

    def __call__(self, texts: list[str]) -> None:
        if self.slow in texts and threading.current_thread() is not threading.main_thread():
            self.helper_took_it = True
            time.sleep(0.3)
        super().__call__(texts)


def test_in_turn_goes_on_with_later_groups_while_an_earlier_one_is_encoded() -> None:
    groups = groups_of(30)
    checked = 0
    for _ in range(20):  # who takes which chunk is up to the threads: until a helper took it
        recorder = SlowOn(groups[3][0])
        with EncodeAhead(groups, recorder, helpers=1) as ahead:
            order = list(ahead.in_turn())
        assert sorted(order) == list(range(30))
        if recorder.helper_took_it:
            assert order.index(3) > order.index(10)  # later groups did not wait for it
            checked += 1
            if checked == 2:
                break
    assert checked


def test_a_helpers_error_reaches_the_caller_in_turn() -> None:
    groups = groups_of(30)
    with (
        pytest.raises(RuntimeError, match="cannot encode"),
        EncodeAhead(groups, Recorder(fail_on=groups[20][1]), helpers=1) as ahead,
    ):
        for _ in ahead.in_turn():
            pass


def test_a_helpers_error_reaches_the_caller() -> None:
    groups = groups_of(30)
    bad = groups[20][1]
    with (
        pytest.raises(RuntimeError, match="cannot encode"),
        EncodeAhead(groups, Recorder(fail_on=bad), helpers=1) as ahead,
    ):
        for g in range(30):
            ahead.ready(g)


def test_leaving_early_stops_the_helpers() -> None:
    groups = groups_of(60)
    recorder = Recorder(delay=0.01)
    with EncodeAhead(groups, recorder, helpers=1) as ahead:
        ahead.ready(0)
    done = len(recorder.stored)
    time.sleep(0.05)
    assert len(recorder.stored) == done < 180  # nothing encoded after the exit


def test_the_counter_encodes_a_large_batch_with_tiktokens_ids() -> None:
    texts = [f"{i} {'word ' * (i % 50)} {SEPARATOR if i % 97 == 0 else ''}\n" for i in range(9000)]
    texts = list(dict.fromkeys(texts))
    assert sum(map(len, texts)) > CHUNK_CHARS  # the threaded path
    counter = TiktokenCounter(threads=2)
    counter._encoder()  # past the Python encoder's budget: tiktoken's chunks
    got = counter.encode_many(texts)
    assert as_lists(got) == reference(texts)
    assert counter._cached_tokens == sum(map(len, got))
    with pytest.raises(ValueError, match="read-only"):
        got[0][0] = 1  # cached ids are shared: nobody may change them


def test_two_threads_encoding_the_same_texts_count_them_once() -> None:
    texts = [f"text {i} " * 20 for i in range(3000)]
    counter = TiktokenCounter(threads=2)
    counter._encoder()
    workers = [threading.Thread(target=counter.encode_many, args=(texts,)) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert counter._cached_tokens == sum(len(counter.encode(t)) for t in texts)


def test_an_audit_of_many_conversations_tokenized_ahead_equals_one_by_one() -> None:
    base = [
        {"role": "system", "content": "You are terse. " * 40},
        {"role": "user", "content": "Read the file."},
    ]
    log = "\n".join(f"line {i}: value={i * 7} status=ok" for i in range(400))
    contexts = [
        ctxtax.load([*base, {"role": "user", "content": f"run {n}\n{log}\n{log if n % 2 else ''}"}])
        for n in range(24)
    ]
    ahead = ctxtax.audit(contexts, counter=TiktokenCounter(threads=2), select=["CTX1"])
    alone = [ctxtax.audit(c, counter=TiktokenCounter(threads=1), select=["CTX1"]) for c in contexts]
    assert ahead.total_tokens == sum(r.total_tokens for r in alone)
    assert [[(f.code, f.loc, f.tokens) for f in c.findings] for c in ahead.conversations] == [
        [(f.code, f.loc, f.tokens) for f in r.findings] for r in alone
    ]
    assert ahead.wasted_tokens > 0


def test_encoders_are_remembered_by_identity() -> None:
    enc = encoder()
    encode_joined(enc, ["a"])
    assert _encode_ahead._SEPARATORS[id(enc)] == (enc, enc.eot_token)
