"""`read_usage`: provider usage objects (OpenAI, OpenRouter, LiteLLM, Anthropic) as a `Usage`."""

from __future__ import annotations

from typing import Any

import pytest

from ctxtax._model import Usage
from ctxtax.formats._usage import read_usage


def test_openai_prompt_tokens_include_the_cached_tokens() -> None:
    usage = {
        "prompt_tokens": 1200,
        "completion_tokens": 35,
        "total_tokens": 1235,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    got = read_usage(usage)
    assert got == Usage(input_tokens=176, cache_read_tokens=1024, output_tokens=35)
    assert got is not None and got.prompt_tokens == 1200  # nothing counted twice


def test_openai_without_cache() -> None:
    usage = {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55}
    assert read_usage(usage) == Usage(input_tokens=50, output_tokens=5)


def test_openai_null_details() -> None:
    usage = {"prompt_tokens": 50, "completion_tokens": 5, "prompt_tokens_details": None}
    assert read_usage(usage) == Usage(input_tokens=50, output_tokens=5)


@pytest.mark.parametrize("key", ["cache_write_tokens", "cache_creation_tokens"])
def test_openrouter_cache_writes_in_prompt_details(key: str) -> None:
    usage = {
        "prompt_tokens": 3000,
        "completion_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 1000, key: 1500},
    }
    assert read_usage(usage) == Usage(
        input_tokens=500, cache_write_tokens=1500, cache_read_tokens=1000, output_tokens=12
    )


def test_litellm_over_anthropic_prompt_tokens_include_reads_and_writes() -> None:
    usage = {
        "prompt_tokens": 4646,
        "completion_tokens": 177,
        "total_tokens": 4823,
        "prompt_tokens_details": {"cached_tokens": 3482},
        "cache_creation_input_tokens": 1158,
        "cache_read_input_tokens": 3482,
    }
    got = read_usage(usage)
    assert got == Usage(
        input_tokens=6, cache_write_tokens=1158, cache_read_tokens=3482, output_tokens=177
    )
    assert got is not None and got.prompt_tokens == 4646


def test_litellm_cache_read_only_at_the_top_level() -> None:
    usage = {"prompt_tokens": 900, "completion_tokens": 3, "cache_read_input_tokens": 800}
    assert read_usage(usage) == Usage(input_tokens=100, cache_read_tokens=800, output_tokens=3)


def test_older_litellm_left_cache_writes_out_of_prompt_tokens() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 1, "cache_creation_input_tokens": 500}
    assert read_usage(usage) == Usage(input_tokens=10, cache_write_tokens=500, output_tokens=1)


def test_older_litellm_with_reads_takes_only_the_reads_out() -> None:
    usage = {
        "prompt_tokens": 300,
        "completion_tokens": 2,
        "cache_read_input_tokens": 200,
        "cache_creation_input_tokens": 400,
    }
    assert read_usage(usage) == Usage(
        input_tokens=100, cache_write_tokens=400, cache_read_tokens=200, output_tokens=2
    )


def test_anthropic_input_tokens_are_uncached_only() -> None:
    usage = {
        "input_tokens": 4,
        "cache_creation_input_tokens": 900,
        "cache_read_input_tokens": 12000,
        "output_tokens": 31,
        "service_tier": "standard",
    }
    assert read_usage(usage) == Usage(
        input_tokens=4, cache_write_tokens=900, cache_read_tokens=12000, output_tokens=31
    )


def test_anthropic_stream_end_usage_with_only_output_tokens() -> None:
    assert read_usage({"output_tokens": 31}) == Usage(output_tokens=31)


def test_anthropic_null_cache_fields() -> None:
    usage = {
        "input_tokens": 8,
        "output_tokens": 1,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
    }
    assert read_usage(usage) == Usage(input_tokens=8, output_tokens=1)


@pytest.mark.parametrize("usage", [None, [], "12 tokens", 12, {}, {"cost": 0.1}])
def test_nothing_recorded_is_none(usage: Any) -> None:
    assert read_usage(usage) is None


def test_counts_that_are_not_positive_ints_read_as_zero() -> None:
    garbage: dict[str, Any] = {
        "prompt_tokens": "many",
        "completion_tokens": None,
        "prompt_tokens_details": [],
        "cache_read_input_tokens": True,
        "cache_creation_input_tokens": -5,
    }
    assert read_usage(garbage) == Usage()
    assert read_usage({"input_tokens": 2.5, "output_tokens": False}) == Usage()


def test_cached_larger_than_prompt_never_goes_negative() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 1,
        "prompt_tokens_details": {"cached_tokens": 150},
    }
    assert read_usage(usage) == Usage(cache_read_tokens=150, output_tokens=1)
