"""The session bill: billed input is the sum of each call's prompt, priced per class."""

from __future__ import annotations

import pytest

import ctxtax
from ctxtax._counting import count_context
from ctxtax._model import Call, Context, Message, Part, Usage
from ctxtax._pricing import PRICES, Price, lookup_price, normalize_model, parse_prices
from ctxtax._session import Bill, estimate_bill, recorded_bill, residency
from ctxtax._tokens import TiktokenCounter
from ctxtax.errors import ConfigError


def _ctx(n_turns: int, words: int = 400) -> Context:
    messages = [Message(role="system", parts=(Part(kind="text", text="policy " * words),))]
    for i in range(n_turns):
        messages.append(
            Message(role="user", parts=(Part(kind="text", text=f"question {i} " * 20),))
        )
        messages.append(
            Message(role="assistant", parts=(Part(kind="text", text=f"answer {i} " * 20),))
        )
    return Context(messages=tuple(messages), model="gpt-4")


def test_billed_input_is_the_sum_of_prefixes() -> None:
    ctx = _ctx(5)
    tokens = count_context(ctx, TiktokenCounter())
    bill = estimate_bill(ctx, tokens, policy="none")
    calls = ctx.model_calls()
    assert len(calls) == 5
    assert bill.input_tokens == sum(tokens.window(c.start, c.end) for c in calls)
    assert bill.output_tokens == sum(
        int(tokens.message_tokens[c.output] - tokens.framing_tokens[c.output])
        for c in calls
        if c.output is not None
    )


def test_anthropic_caching_reads_the_shared_prefix_and_writes_the_rest() -> None:
    ctx = _ctx(3, words=2000)
    tokens = count_context(ctx, TiktokenCounter())
    bill = estimate_bill(ctx, tokens, policy="anthropic")
    plain = estimate_bill(ctx, tokens, policy="none")
    assert bill.prompt_tokens == plain.input_tokens
    first, second, _ = ctx.model_calls()
    assert bill.cache_read_tokens == tokens.messages_between(
        0, first.end
    ) + tokens.messages_between(0, second.end)
    assert bill.input_tokens == 0


def test_openai_caching_rounds_to_128_and_has_no_write_premium() -> None:
    ctx = _ctx(3, words=2000)
    tokens = count_context(ctx, TiktokenCounter())
    bill = estimate_bill(ctx, tokens, policy="openai")
    assert bill.cache_write_tokens == 0
    assert bill.cache_read_tokens % 128 == 0 and bill.cache_read_tokens > 0


def test_compaction_moves_the_window_and_breaks_the_cache() -> None:
    ctx = _ctx(4, words=2000)
    calls = (
        Call(start=0, end=2, output=2),
        Call(start=0, end=4, output=4),
        Call(start=5, end=6, output=6),
    )
    tokens = count_context(ctx, TiktokenCounter())
    bill = estimate_bill(ctx, tokens, policy="anthropic", calls=calls)
    assert bill.cache_read_tokens == tokens.messages_between(0, 2)
    assert list(residency(ctx, calls)) == [2, 2, 1, 1, 0, 1, 0, 0, 0]


def test_recorded_usage_is_summed_and_priced_per_call_model() -> None:
    ctx = _ctx(2).model_copy(
        update={
            "calls": (
                Call(
                    end=2, output=2, model="claude-sonnet-4-5", usage=Usage(input_tokens=1_000_000)
                ),
                Call(
                    end=4,
                    output=4,
                    model="claude-haiku-4-5",
                    usage=Usage(cache_read_tokens=1_000_000, output_tokens=1_000_000),
                ),
            ),
            "model": None,
        }
    )
    assert recorded_bill(ctx) == Bill(
        calls=2, input_tokens=1_000_000, cache_read_tokens=1_000_000, output_tokens=1_000_000
    )
    report = ctxtax.audit(ctx)
    assert report.bill.recorded is not None
    # sonnet input $3 + haiku cache read $0.10 + haiku output $5
    assert report.bill.recorded.cost_usd == pytest.approx(8.10)


def test_bill_pricing() -> None:
    price = Price(input=3.0, cache_write=3.75, cache_read=0.3, output=15.0)
    bill = Bill(
        input_tokens=1_000_000,
        cache_write_tokens=2_000_000,
        cache_read_tokens=10_000_000,
        output_tokens=100_000,
    )
    assert bill.priced(price).cost_usd == pytest.approx(3 + 7.5 + 3 + 1.5)
    assert bill.priced(None).cost_usd is None


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-opus-4-6", "claude-opus-4-6"),
        ("anthropic/claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("openrouter/openai/gpt-4.1-mini", "gpt-4.1-mini"),
        ("gemini/gemini-3-pro-preview", "gemini-3-pro"),
        ("gpt-5.2-codex", "gpt-5.2"),
    ],
)
def test_model_names_find_their_price(model: str, key: str) -> None:
    found = lookup_price(model)
    assert found is not None and found[0] == key


def test_unknown_model_has_no_price_and_says_so() -> None:
    assert lookup_price("my-local-llama") is None
    report = ctxtax.audit([{"role": "user", "content": "hi"}], model="my-local-model")
    assert report.bill.estimated.cost_usd is None
    assert any("no price for model 'my-local-model'" in n for n in report.notes)


def test_prices_override_and_validation() -> None:
    report = ctxtax.audit(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ho"}],
        model="my-local-model",
        prices={
            "my-local-model": {"input": 1_000_000, "cache_write": 0, "cache_read": 0, "output": 0}
        },
        cache_policy="none",
    )
    assert report.bill.estimated.cost_usd == pytest.approx(report.bill.estimated.input_tokens)
    with pytest.raises(ConfigError, match="input"):
        parse_prices({"m": {"output": 1}})
    with pytest.raises(ConfigError, match="expected an object"):
        parse_prices(["nope"])  # type: ignore[arg-type]


def test_price_table_is_consistent() -> None:
    for name, price in PRICES.items():
        assert normalize_model(name) == name
        assert price.cache_read <= price.input <= price.cache_write
