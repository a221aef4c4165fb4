"""The Python byte-pair encoder gives tiktoken's ids, and the counter uses it only while small."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

import ctxtax
from ctxtax._counting import context_texts
from ctxtax._python_bpe import BUDGET_CHARS, MAX_PIECE_BYTES, PythonBPE
from ctxtax._tokens import _offline_ranks

from .conftest import REAL, real_files


@cache
def encoders() -> tuple[PythonBPE, tiktoken.Encoding]:
    constructor = _offline_ranks()
    python = PythonBPE(constructor["mergeable_ranks"], constructor["pat_str"])
    return python, tiktoken.Encoding(**constructor)


def same_ids(text: str) -> bool:
    python, reference = encoders()
    ids = python.encode_ordinary(text)
    return ids is None or ids == reference.encode_ordinary(text)


EDGE_CASES = [
    "",
    " ",
    "   \n",
    "hello world  \n",
    "trailing spaces   ",
    "\r\n\r\n  \r\n",
    "tabs\tand\t\tmore\t",
    "I'll DON'T we've THEY'RE it's",
    "1234567890 3.14159 -42 1,000,000",
    "naïve café Ωμέγα Привет мир",
    "日本語のテキスト、中文文本。",
    "emoji 🎉🚀 and flags 🇫🇷 and zwj 👩‍💻",
    "e\u0301 combining a\u0308",
    "<|endoftext|> is read as text <|fim_prefix|>",
    "lone \ud800 surrogate and \udfff another",
    "a pair \ud83d\ude00 of surrogates",
    "    def f(x):\n        return x  # comment\n\n\n",
    '{"key": [1, 2, {"nested": null}], "s": "\\n\\t"}',
    "x" * 200 + "!",
    "zzz qqq kkk aaaaa ~~~ *********",  # equal-rank pairs: the leftmost merges first
    "\x00\x01\x1b[31mred\x1b[0m\x7f",
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_give_tiktokens_ids(text: str) -> None:
    python, reference = encoders()
    assert python.encode_ordinary(text) == reference.encode_ordinary(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(" \t\n\r\u00a0aZé9_'-.,;:!?()[]{}<>|\"日🎉\u0301"))))
def test_random_text_gives_tiktokens_ids(text: str) -> None:
    assert same_ids(text)


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_any_unicode_gives_tiktokens_ids(text: str) -> None:
    assert same_ids(text)


def test_a_piece_too_long_to_merge_is_left_to_tiktoken() -> None:
    python, _ = encoders()
    assert python.encode_ordinary("q" * (MAX_PIECE_BYTES + 1)) is None
    assert python.encode_ordinary("q" * MAX_PIECE_BYTES) is not None


def test_real_sessions_give_tiktokens_ids() -> None:
    files = real_files()
    if not files:
        pytest.skip(f"real data not found at {REAL} (the ../shared/data/real folder is absent)")
    python, reference = encoders()
    checked = 0
    for path in files[::4]:  # a quarter of the files: every format, a few MB of text
        try:
            contexts = ctxtax.load_all(path)
        except ctxtax.CtxtaxError:
            continue
        for ctx in contexts:
            for text in context_texts(ctx):
                ids = python.encode_ordinary(text)
                if ids is not None:
                    assert ids == reference.encode_ordinary(text), (path, text[:80])
                    checked += len(ids)
    assert checked > 100_000


def test_the_counter_builds_tiktokens_encoder_only_past_the_budget() -> None:
    # In a fresh process: small encodings import no tiktoken at all; past the budget the real
    # encoder is built. The ids are the same either way.
    small = ["short text to count", "another one, with numbers 12345"]
    large = ["words and more words " * (BUDGET_CHARS // 20)]
    code = (
        "import json, sys\n"
        "from ctxtax import TiktokenCounter\n"
        "texts = json.loads(sys.argv[1])\n"
        "counter = TiktokenCounter()\n"
        "small = [ids.tolist() for ids in counter.encode_many(texts[:2])]\n"
        "print(json.dumps([small, 'tiktoken' in sys.modules]))\n"
        "large = [ids.tolist() for ids in counter.encode_many(texts[2:])]\n"
        "print(json.dumps([large, 'tiktoken' in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(small + large)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    (small_ids, loaded_early), (large_ids, loaded_late) = map(json.loads, out)
    _, reference = encoders()
    assert small_ids == [reference.encode_ordinary(t) for t in small]
    assert large_ids == [reference.encode_ordinary(t) for t in large]
    assert (loaded_early, loaded_late) == (False, True)


def test_a_kept_auditor_builds_tiktokens_encoder_from_its_second_audit() -> None:
    code = (
        "import sys\n"
        "from ctxtax import Auditor\n"
        "auditor = Auditor()\n"
        "messages = [{'role': 'user', 'content': 'hello there'}]\n"
        "auditor.audit(messages)\n"
        "first = 'tiktoken' in sys.modules\n"
        "messages.append({'role': 'assistant', 'content': 'hi, how can I help?'})\n"
        "auditor.audit(messages)\n"
        "print(first, 'tiktoken' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "True"]
