"""The numba byte-pair encoder (`ctxtax._fast_bpe`) gives tiktoken's ``cl100k_base`` ids, or
hands the text back (None) for tiktoken; the counter uses it for large batches only, and its ids
are tiktoken's whichever texts it hands back."""

from __future__ import annotations

import random
import string
import unicodedata
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import regex
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

import ctxtax
from ctxtax import _bpe_numba, _fast_bpe
from ctxtax._fast_bpe import (
    LETTER,
    MAX_PIECE_BYTES,
    MIN_CHARS,
    NUMBER,
    OTHER,
    SPACE,
    UNKNOWN,
    UNSAFE,
    WHITE_SPACE,
    FastBPE,
    TokenIds,
    _offline_fast_bpe,
    class_of,
    fast_encoder,
)
from ctxtax._tokens import _offline_ranks, _shared_encoder

from .conftest import real_texts

PIECE = "qzxqzxqzxwv" * 3
"""A run of letters the vocabulary lacks: merged by the kernels, several tokens."""

LONG_PIECE = "qzxw" * (MAX_PIECE_BYTES // 4 + 1)
"""A run of letters longer than `MAX_PIECE_BYTES` that is not one token: left to tiktoken."""


@pytest.fixture(scope="module")
def enc() -> Any:
    """tiktoken's encoder (the oracle); built, it also ends the Python encoder's budget."""
    return _shared_encoder("cl100k_base")


@pytest.fixture(scope="module")
def fast() -> FastBPE:
    """One FastBPE over the offline ranks for the module (building it takes about 0.1 s)."""
    return FastBPE(_offline_ranks()["mergeable_ranks"])


@pytest.fixture(scope="module")
def numba_env(enc: Any) -> Iterator[None]:
    """``CTXTAX_IMPL=numba`` for the module's counter tests, with the offline FastBPE built (so
    that small batches use it too)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CTXTAX_IMPL", "numba")
        assert fast_encoder("cl100k_base", MIN_CHARS) is not None
        yield


def as_lists(ids: list[TokenIds | None]) -> list[list[int] | None]:
    """Each array as a list (None kept)."""
    return [None if a is None else a.tolist() for a in ids]


def assert_same_or_none(fast: FastBPE, enc: Any, texts: list[str]) -> list[TokenIds | None]:
    """Every text's ids are tiktoken's, or None; returns what FastBPE gave."""
    got = fast.encode_many(texts)
    assert len(got) == len(texts)
    for text, ids in zip(texts, got, strict=True):
        if ids is not None:
            assert ids.tolist() == enc.encode_ordinary(text), repr(text)
    return got


def assert_same(fast: FastBPE, enc: Any, texts: list[str]) -> None:
    """Every text's ids are tiktoken's, none left to tiktoken."""
    got = fast.encode_many(texts)
    assert as_lists(got) == [enc.encode_ordinary(t) for t in texts], repr(texts)


EDGE_CASES = [
    # contractions: '(?i:[sdmt]|ll|ve|re)
    "'s 'S 'll 'LL 'Ll 've 'RE 'd 'm 't",
    "it's IT'S we'll WE'LL You'Ve they'rE I'D I'M don'T",
    "x's x'S x'll x'LL x'Ll x've x'RE x'd x'm x't",  # (after a space, ' goes with it)
    "a'rex b'REx c'vex d'VEry e'llama f'LLx g'sx h'Dx i'mX j'tx",  # then letters
    "'tx",
    "x'ſa 'Ş x'ß",
    "'sa",
    "'lx",
    "'v",
    "'l",
    "'",
    "''s",
    "x'",
    " 's",
    "'ſ",  # the long s folds to s under (?i)
    "'ſa ſ 'Ş 'ß",
    # white space before letters, digits, punctuation and the end
    "  \n  x",
    "a  \n",
    "x   ",
    " \t\n\r\n y",
    "\r\n",
    "\n\n\n",
    "\t\tfoo",
    "\x0b\x0cx",
    "   123",
    " .,;",
    ". \n\nfoo",
    "a\u00a0b",
    "\u00a0.",
    "\u3000x",
    "x\u0085y",
    "\u2003\u2003z",
    "\u1680\u2028\u2029\u202f\u205f end",
    "a\r",
    "  ",
    # digits
    "1234567",
    "12a34",
    "٣٤٥٦",  # Arabic-Indic digits (Nd)
    "½⅓",  # No
    "ⅫⅣ",  # Nl
    "x1 1x 1.5 -42 1,000,000",
    # letters with combining marks
    "e\u0301te",
    "café",
    "\u0301a",
    "a\u0301\u0301",
    # CJK, emoji
    "中文测试，标点。",
    "日本語のテキスト、ｶﾀｶﾅ",
    "🚀✅ done",
    "👍🏽",
    "👩\u200d💻 🇫🇷",
    # ASCII control characters (\x1c-\x1f are not White_Space)
    "\x1c\x1d",
    "\x1c a\x1fb",
    "\x00a\x7f",
    "\x1b[31mred\x1b[0m",
    # code and JSON
    "def f(x):\n    return x+1\n",
    "    if (a && b) { return c[i]; }\n\n\n",
    '{"key": [1, 2, {"nested": null}], "s": "\\n\\t", "n": -3.5e+10}',
    # long runs
    "QmFzZTY0" * 62 + "xQ==",  # base64-like, 500 characters
    "abcdefghij" * 50,
    "x" * 500 + "!",
    "zzz qqq kkk aaaaa ~~~ *********",  # equal-rank pairs: the leftmost merges first
    " " * 300,
    "",
    "<|endoftext|>",
    "<|fim_prefix|> a <|endoftext|>b",
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_give_tiktokens_ids(fast: FastBPE, enc: Any, text: str) -> None:
    """Every branch of the split pattern, on its own and in a batch: tiktoken's ids, none left
    to tiktoken."""
    [ids] = fast.encode_many([text])
    assert ids is not None
    assert ids.tolist() == enc.encode_ordinary(text)


def test_edge_cases_in_one_batch_give_tiktokens_ids(fast: FastBPE, enc: Any) -> None:
    """The same texts in one call (the memo shared among them), forward and backward."""
    assert_same(fast, enc, EDGE_CASES)
    assert_same(fast, enc, EDGE_CASES[::-1])


def test_special_token_strings_are_read_as_plain_text(fast: FastBPE, enc: Any) -> None:
    """The text of the end-of-text token is several ordinary tokens, never the special one."""
    [ids] = fast.encode_many(["<|endoftext|>"])
    assert ids is not None
    assert enc.eot_token not in ids.tolist()
    assert len(ids) > 1


def test_every_code_point_it_vouches_for_gives_tiktokens_ids(fast: FastBPE, enc: Any) -> None:
    """Each code point the class table does not mark UNSAFE, between letters, after a space, an
    apostrophe, a letter, before a digit, a tab and a newline: tiktoken's ids (its Unicode
    tables, not Python's, decide what a letter is)."""
    vouched = [cp for cp in range(0x110000) if class_of(cp) != UNSAFE]
    assert len(vouched) > 200_000
    texts = [
        "".join(f"a{c}b {c}1 '{c}.\t{c}\n" for c in map(chr, vouched[k : k + 500]))
        for k in range(0, len(vouched), 500)
    ]
    got = fast.encode_many(texts)
    want = enc.encode_ordinary_batch(texts, num_threads=2)
    for text, ids, expected in zip(texts, got, want, strict=True):
        assert ids is not None, repr(text[:40])
        assert ids.tolist() == expected, repr(text[:40])


TRICKY = [
    *"sdmtlvreSDMTLVRExyzK",
    *"0123456789",
    *" \t\r\n\x0b\x0c'",
    *'.,;:!?-_()[]{}<>|"/\\#*',
    *"ſé\u0301\u00a0\u2000\u3000\u0085\x1c中🚀٣½Ⅻ",
]


@st.composite
def batches(draw: st.DrawFn) -> list[str]:
    """A few texts of tricky characters with one random piece repeated in several of them (the
    memo copies the ids of a piece merged in an earlier text)."""
    alphabet = st.sampled_from(TRICKY)
    texts = draw(st.lists(st.text(alphabet, max_size=40), min_size=1, max_size=6))
    piece = draw(st.text(alphabet, min_size=1, max_size=12))
    out = []
    for text in texts:
        cut = draw(st.integers(0, len(text)))
        times = draw(st.integers(0, 3))
        out.append(text[:cut] + piece * times + text[cut:])
    return [*out, piece]


def pieces(fast: FastBPE, text: str) -> list[str] | None:
    """The split pattern's pieces of ``text`` as the kernels' matcher cuts them (None when it
    stops at a code point it cannot vouch for)."""
    fast.encode_many([text])  # classifies the text's code points
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    classes = _fast_bpe._classes()
    out: list[str] = []
    i = 0
    while i < len(data):
        j = int(_bpe_numba._piece_end(data, i, len(data), classes))
        if j < 0:
            return None
        assert j > i
        out.append(data[i:j].tobytes().decode("utf-8"))
        i = j
    return out


@pytest.fixture(scope="module")
def split() -> regex.Pattern[str]:
    """tiktoken's split pattern, run by the ``regex`` module (tiktoken's educational encoder
    does the same): the pieces are visible, not only the ids they merge to."""
    return regex.compile(_offline_ranks()["pat_str"])


def test_edge_cases_are_cut_into_the_patterns_pieces(
    fast: FastBPE, split: regex.Pattern[str]
) -> None:
    """Piece by piece (an id-neutral cut, like "'ſ" then "a" against "'ſa", shows here)."""
    for text in EDGE_CASES:
        assert pieces(fast, text) == split.findall(text), repr(text)


@settings(max_examples=400, deadline=None)
@given(st.text(st.sampled_from(TRICKY), max_size=60))
def test_tricky_texts_are_cut_into_the_patterns_pieces(
    fast: FastBPE, split: regex.Pattern[str], text: str
) -> None:
    """Random texts of the characters the matcher treats specially, piece by piece."""
    assert pieces(fast, text) == split.findall(text)


@settings(max_examples=400, deadline=None)
@given(batches())
def test_tricky_texts_give_tiktokens_ids(fast: FastBPE, enc: Any, texts: list[str]) -> None:
    """Random texts of the characters the matcher treats specially: tiktoken's ids, none left
    to tiktoken."""
    assert_same(fast, enc, texts)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(), max_size=6))
def test_any_unicode_gives_tiktokens_ids_or_none(fast: FastBPE, enc: Any, texts: list[str]) -> None:
    """Any code points (lone surrogates, unassigned ones, new letters): tiktoken's ids or None."""
    assert_same_or_none(fast, enc, texts)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8")), max_size=6))
def test_any_utf8_text_gives_tiktokens_ids_or_none(
    fast: FastBPE, enc: Any, texts: list[str]
) -> None:
    """Encodable text: tiktoken's ids or None (None only for a code point it cannot vouch for)."""
    got = assert_same_or_none(fast, enc, texts)
    for text, ids in zip(texts, got, strict=True):
        if ids is None:
            assert any(class_of(ord(c)) == UNSAFE for c in text), repr(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(), max_size=6))
def test_the_counter_gives_tiktokens_ids_for_any_unicode(
    numba_env: None, enc: Any, texts: list[str]
) -> None:
    """The public path, FastBPE forced: tiktoken's ids for every text, those FastBPE leaves
    included (tiktoken mends lone surrogates the same way either way)."""
    assert fast_encoder("cl100k_base", sum(map(len, texts))) is not None
    counter = ctxtax.TiktokenCounter()
    got = counter.encode_many(texts)
    assert [ids.tolist() for ids in got] == [enc.encode_ordinary(t) for t in texts]


def test_real_sessions_give_tiktokens_ids(fast: FastBPE, enc: Any) -> None:
    """Every text an audit of the real sessions tokenizes: tiktoken's ids, or None for very few
    characters."""
    texts = real_texts()
    chars = sum(map(len, texts))
    assert chars > 1_000_000
    got = fast.encode_many(texts)
    want = enc.encode_ordinary_batch(texts, num_threads=2)
    left = 0
    for text, ids, expected in zip(texts, got, want, strict=True):
        if ids is None:
            left += len(text)
        else:
            assert ids.tolist() == expected, text[:80]
    assert left < chars // 100


def test_a_long_piece_outside_the_vocabulary_is_left_to_tiktoken(fast: FastBPE, enc: Any) -> None:
    """Past `MAX_PIECE_BYTES` a piece the vocabulary lacks is handed back (letters or white
    space alike); at the limit it is merged; a long text of short pieces is encoded."""
    at_limit = LONG_PIECE[:MAX_PIECE_BYTES]
    texts = [LONG_PIECE, at_limit, "a " + LONG_PIECE + " b", " " * 5000, "word " * 2000]
    got = assert_same_or_none(fast, enc, texts)
    assert [ids is None for ids in got] == [True, False, True, True, False]


def test_texts_it_cannot_vouch_for_are_left_to_tiktoken(fast: FastBPE, enc: Any) -> None:
    """A lone surrogate, an unassigned code point, a letter newer than Unicode 3.2: None, and
    the texts around them still get tiktoken's ids."""
    texts = ["before", "a\ud800b", "x\u0378y", "Stra\u1e9ee", "\ud83d\ude00", "after 's"]
    got = assert_same_or_none(fast, enc, texts)
    assert [ids is None for ids in got] == [False, True, True, True, True, False]


@pytest.mark.parametrize(
    ("texts", "left"),
    [
        (["hello\n" + PIECE, PIECE + "\u0378", PIECE, "12" + PIECE], 1),
        ([PIECE + " \u0378", "hello\n" + PIECE, PIECE, "\n" + PIECE], 0),
        ([PIECE + " " + LONG_PIECE, "1" + PIECE, PIECE + ".", PIECE], 0),
        (["1" + PIECE + " x\ud800", PIECE, "a\n" + PIECE + " " + PIECE], 0),
    ],
    ids=["unsafe-before-merge", "unsafe-after-merge", "too-long-after-merge", "surrogate"],
)
def test_the_memo_across_a_text_left_to_tiktoken(
    fast: FastBPE, enc: Any, texts: list[str], left: int
) -> None:
    """A piece merged in a text that is then handed back (its ids stay where the memo points):
    the other copies of the piece still get tiktoken's ids."""
    assert len(enc.encode_ordinary(PIECE)) > 1  # not one token: merged, then remembered
    got = fast.encode_many(texts)
    assert [ids is None for ids in got] == [i == left for i in range(len(texts))]
    for text, ids in zip(texts, got, strict=True):
        if ids is not None:
            assert ids.tolist() == enc.encode_ordinary(text), repr(text)


def test_the_memo_filling_up_still_gives_tiktokens_ids(fast: FastBPE, enc: Any) -> None:
    """More distinct merged pieces than the memo holds, each twice: those not remembered are
    merged again, with the same ids."""
    rng = random.Random(0)
    words = list(dict.fromkeys("".join(rng.choices("qxzjkvw", k=7)) for _ in range(3000)))
    texts = [" ".join(words), " ".join(words[::-1]), *words[:50]]
    assert_same(fast, enc, texts)


def test_merges_follow_tiktokens_order_on_a_small_vocabulary() -> None:
    """A made-up vocabulary: the lowest rank merges first, the leftmost of equal ranks, the
    ranks around a merge are looked up again, and the ids are the merged tokens' (checked
    against a tiktoken encoder of the same vocabulary)."""
    ranks = {bytes([b]): b for b in range(256)}
    for token in (b"ab", b"bc", b"abc", b"aa", b"aaa", b"aaaa"):
        ranks[token] = len(ranks)
    small = FastBPE(ranks)
    oracle = tiktoken.Encoding(
        name="small", pat_str=_offline_ranks()["pat_str"], mergeable_ranks=ranks, special_tokens={}
    )
    texts = ["abc", "bcab", "aaaaa", "abcabc", "aaaaaaa", "aaaaaaaaa", "xabcx bc"]
    got = as_lists(small.encode_many(texts))
    assert got == [oracle.encode_ordinary(t) for t in texts]
    # aaaaa: aa a a a (leftmost of equal ranks), aa aa a, then aa aaa (aaa ranks below aaaa)
    assert got[:5] == [[258], [257, 256], [259, 260], [258, 258], [261, 260]]


@pytest.mark.parametrize(
    ("ranks", "message"),
    [
        ({bytes([b]): b + 1 for b in range(256)}, "ids 0 .. n - 1"),
        ({bytes([b]): b for b in range(255)}, "every single byte"),
        ({**{bytes([b]): b for b in range(256)}, b"x" * 256: 256}, "1 to 255 bytes"),
    ],
)
def test_a_vocabulary_it_cannot_hold_is_refused(ranks: dict[bytes, int], message: str) -> None:
    """Ids with gaps, a missing single byte, a token longer than a table slot can say."""
    with pytest.raises(ValueError, match=message):
        FastBPE(ranks)


def test_the_kernels_say_why_a_text_stopped(fast: FastBPE) -> None:
    """The status per text: OK, stopped at a code point, stopped at a long piece."""
    texts = ["fine text", "x\u0378", LONG_PIECE]
    fast.encode_many(texts)  # classifies the code points
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    _, starts, ends, status = _bpe_numba.encode_many(
        np.frombuffer(b"".join(encoded), dtype=np.uint8),
        offsets,
        _fast_bpe._classes(),
        fast._tok_bytes,
        fast._tok_off,
        fast._table,
        fast._pairs,
        fast._singles,
        MAX_PIECE_BYTES,
    )
    assert status.tolist() == [_bpe_numba.OK, _bpe_numba.STOPPED_CLASS, _bpe_numba.STOPPED_PIECE]
    assert ends[0] > starts[0] and ends[1] == starts[1] and ends[2] == starts[2]


def test_the_counter_uses_it_and_mends_what_it_leaves(
    monkeypatch: pytest.MonkeyPatch, enc: Any
) -> None:
    """``CTXTAX_IMPL=numba`` and a batch past `MIN_CHARS`: the counter's ids are tiktoken's for
    every text, those FastBPE handed back (lone surrogate, long piece, unassigned code point)
    included, and FastBPE did encode the batch."""
    monkeypatch.setenv("CTXTAX_IMPL", "numba")
    calls: list[int] = []
    encode_many = FastBPE.encode_many

    def spy(self: FastBPE, texts: list[str]) -> list[TokenIds | None]:
        out = encode_many(self, texts)
        calls.append(sum(ids is None for ids in out))
        return out

    monkeypatch.setattr(FastBPE, "encode_many", spy)
    left = ["a\ud800b", "x " + LONG_PIECE + " y", "x\u0378y", "\ud83d\ude00 pair"]
    texts = [*left, *(f"line {i}: {PIECE} value={i * 7} 's ok\n" for i in range(2000))]
    texts.insert(700, left[0] + " again")
    assert sum(map(len, texts)) > MIN_CHARS
    assert fast_encoder("cl100k_base", MIN_CHARS) is not None
    counter = ctxtax.TiktokenCounter()
    got = counter.encode_many(texts)
    assert [ids.tolist() for ids in got] == [enc.encode_ordinary(t) for t in texts]
    assert calls and sum(calls) == 5
    for ids in got:
        assert ids.dtype == np.uint32 and not ids.flags.writeable


def test_fast_encoder_only_for_the_offline_encoding_and_numba(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """None under ``CTXTAX_IMPL=python``, for another encoding, and for a small batch until a
    large one has built it (then for every size)."""
    built = _offline_fast_bpe.cache_info().currsize
    monkeypatch.setenv("CTXTAX_IMPL", "python")
    assert fast_encoder("cl100k_base", 10 * MIN_CHARS) is None
    monkeypatch.setenv("CTXTAX_IMPL", "numba")
    assert fast_encoder("o200k_base", 10 * MIN_CHARS) is None
    try:
        _offline_fast_bpe.cache_clear()
        assert fast_encoder("cl100k_base", 100) is None
        assert fast_encoder("cl100k_base", MIN_CHARS - 1) is None
        assert _offline_fast_bpe.cache_info().currsize == 0
        first = fast_encoder("cl100k_base", MIN_CHARS)
        assert isinstance(first, FastBPE)
        assert fast_encoder("cl100k_base", 100) is first
        monkeypatch.setenv("CTXTAX_IMPL", "python")
        assert fast_encoder("cl100k_base", 100) is None
    finally:
        _offline_fast_bpe.cache_clear()
        if built:
            _offline_fast_bpe()


@pytest.mark.parametrize(
    ("char", "expected"),
    [
        ("a", LETTER),
        ("Z", LETTER),
        ("é", LETTER),
        ("中", LETTER),
        ("ſ", LETTER),
        ("1", NUMBER),
        ("٣", NUMBER),
        ("½", NUMBER),
        ("Ⅻ", NUMBER),
        (" ", SPACE),
        ("\t", SPACE),
        ("\n", SPACE),
        ("\u00a0", SPACE),
        ("\u0085", SPACE),
        ("\u3000", SPACE),
        ("\u2028", SPACE),
        ("\x1c", OTHER),  # Python's isspace says yes, Unicode's White_Space says no
        ("\x1f", OTHER),
        ("\u180e", OTHER),  # White_Space until Unicode 6.3
        ("\u200b", OTHER),
        ("\u0301", OTHER),
        (".", OTHER),
        ("'", OTHER),
        ("🚀", OTHER),
        ("\x00", OTHER),
        ("\u0378", UNSAFE),  # unassigned: perhaps a letter in tiktoken's tables
        ("\U000e0080", UNSAFE),
        ("\u1e9e", UNSAFE),  # ẞ, a letter since Unicode 5.1 only
        ("\u0c5d", UNSAFE),  # a letter since Unicode 14
        ("\ud800", UNSAFE),
        ("\udfff", UNSAFE),
    ],
)
def test_class_of(char: str, expected: int) -> None:
    """The split pattern's class of a code point, UNSAFE where this Python cannot vouch."""
    assert class_of(ord(char)) == expected


def test_white_space_is_unicodes_list() -> None:
    """The 25 code points of Unicode's White_Space (PropList.txt), what ``\\s`` matches."""
    assert sorted(WHITE_SPACE) == [
        *range(0x09, 0x0E),
        0x20,
        0x85,
        0xA0,
        0x1680,
        *range(0x2000, 0x200B),
        0x2028,
        0x2029,
        0x202F,
        0x205F,
        0x3000,
    ]
    assert len(WHITE_SPACE) == 25
    assert all(chr(cp).isspace() for cp in WHITE_SPACE)
    assert {cp for cp in range(0x3001) if chr(cp).isspace()} - WHITE_SPACE == set(range(0x1C, 0x20))
    assert all(class_of(cp) == SPACE for cp in WHITE_SPACE)


def test_the_class_table_fills_in_as_texts_need_it(fast: FastBPE, enc: Any) -> None:
    """ASCII is classified from the start, other code points when a text holds them."""
    table = _fast_bpe._classes()
    assert [int(c) for c in table[:128]] == [class_of(cp) for cp in range(128)]
    cp = 0x1D4D0  # MATHEMATICAL BOLD SCRIPT CAPITAL A: unlikely to be met before
    text = "x" + chr(cp) + "y"
    assert unicodedata.category(chr(cp)) == "Lu"
    fast.encode_many([text])
    assert table[cp] == LETTER
    assert table[cp] != UNKNOWN
    assert_same(fast, enc, [text])


def test_the_constants_are_the_kernels() -> None:
    """`_fast_bpe` and `_bpe_numba` read the same classes; a text's status is falsy only when
    it is OK (what `FastBPE.encode_many` reads)."""
    names = ("OTHER", "LETTER", "NUMBER", "SPACE", "UNSAFE", "UNKNOWN")
    assert [getattr(_fast_bpe, n) for n in names] == [getattr(_bpe_numba, n) for n in names]
    assert len({getattr(_bpe_numba, n) for n in names}) == len(names)
    assert UNSAFE < UNKNOWN  # the kernels stop at a class >= UNSAFE
    assert max(OTHER, LETTER, NUMBER, SPACE) < UNSAFE
    assert _bpe_numba.OK == 0
    assert _bpe_numba.STOPPED_CLASS and _bpe_numba.STOPPED_PIECE
    assert _bpe_numba.STOPPED_CLASS != _bpe_numba.STOPPED_PIECE


def test_the_ids_are_read_only_uint32(fast: FastBPE) -> None:
    """Views of one buffer that nobody may change (the counter caches and shares them)."""
    got = fast.encode_many(["hello world", PIECE, "", "x" * 300])
    for ids in got:
        assert ids is not None
        assert ids.dtype == np.uint32
        assert not ids.flags.writeable
    assert got[0] is not None
    with pytest.raises(ValueError, match="read-only"):
        got[0][0] = 1


def test_an_empty_batch_and_ascii_only_batches(fast: FastBPE, enc: Any) -> None:
    """No texts, only empty texts, and every ASCII character in one text."""
    assert fast.encode_many([]) == []
    assert as_lists(fast.encode_many(["", ""])) == [[], []]
    assert_same(fast, enc, ["".join(map(chr, range(128))), string.printable * 3])


def test_a_tokenizer_that_fails_to_build_leaves_tiktoken_to_encode(
    monkeypatch: pytest.MonkeyPatch, enc: Any
) -> None:
    """Building the kernels' tables failing (numba broken, say) only means tiktoken encodes: the
    counter gives the same ids, and the build is not tried again."""

    def broken() -> FastBPE:
        raise RuntimeError("no numba here")

    monkeypatch.setenv("CTXTAX_IMPL", "numba")
    monkeypatch.setattr(_fast_bpe, "_offline_fast_bpe", broken)
    monkeypatch.setattr(_fast_bpe, "_FAILED", [])
    assert fast_encoder("cl100k_base", 10 * MIN_CHARS) is None
    assert _fast_bpe._FAILED == [True]
    text = "def f(x):\n    return x + 1\n" * (MIN_CHARS // 20)
    counter = ctxtax.TiktokenCounter()
    assert counter.encode_many([text])[0].tolist() == enc.encode_ordinary(text)
