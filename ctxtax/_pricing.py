"""The price table: USD per million tokens for input, cache write, cache read and output.

Prices are the providers' published list prices on `PRICES_DATE`, for standard (non-batch) calls
and prompts under any long-context threshold. They drift: pass ``prices=`` to `ctxtax.audit`
(or ``--prices FILE`` on the command line) to override or add models. OpenAI and Google charge no
premium to write the cache, so their cache-write price is the input price; Anthropic charges 1.25x
input for a 5-minute cache write and 0.1x for a read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ctxtax.errors import ConfigError

PRICES_DATE = "2026-11-01"


class Price(BaseModel):
    """USD per million tokens of each class."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float
    cache_write: float
    cache_read: float
    output: float


def _anthropic(inp: float, out: float) -> Price:
    return Price(input=inp, cache_write=inp * 1.25, cache_read=inp * 0.1, output=out)


def _openai(inp: float, cached: float, out: float) -> Price:
    return Price(input=inp, cache_write=inp, cache_read=cached, output=out)


PRICES: dict[str, Price] = {
    # Anthropic
    "claude-opus-4-6": _anthropic(5.0, 25.0),
    "claude-opus-4-5": _anthropic(5.0, 25.0),
    "claude-opus-4-1": _anthropic(15.0, 75.0),
    "claude-opus-4": _anthropic(15.0, 75.0),
    "claude-sonnet-4-6": _anthropic(3.0, 15.0),
    "claude-sonnet-4-5": _anthropic(3.0, 15.0),
    "claude-sonnet-4": _anthropic(3.0, 15.0),
    "claude-3-7-sonnet": _anthropic(3.0, 15.0),
    "claude-3-5-sonnet": _anthropic(3.0, 15.0),
    "claude-haiku-4-5": _anthropic(1.0, 5.0),
    "claude-3-5-haiku": _anthropic(0.8, 4.0),
    "claude-3-haiku": _anthropic(0.25, 1.25),
    # OpenAI
    "gpt-5.2": _openai(1.75, 0.175, 14.0),
    "gpt-5.1": _openai(1.25, 0.125, 10.0),
    "gpt-5-mini": _openai(0.25, 0.025, 2.0),
    "gpt-5-nano": _openai(0.05, 0.005, 0.4),
    "gpt-5": _openai(1.25, 0.125, 10.0),
    "gpt-4.1-mini": _openai(0.4, 0.1, 1.6),
    "gpt-4.1-nano": _openai(0.1, 0.025, 0.4),
    "gpt-4.1": _openai(2.0, 0.5, 8.0),
    "gpt-4o-mini": _openai(0.15, 0.075, 0.6),
    "gpt-4o": _openai(2.5, 1.25, 10.0),
    "gpt-4-turbo": _openai(10.0, 10.0, 30.0),
    "gpt-4": _openai(30.0, 30.0, 60.0),
    "gpt-3.5-turbo": _openai(0.5, 0.5, 1.5),
    "o4-mini": _openai(1.1, 0.275, 4.4),
    "o3-mini": _openai(1.1, 0.55, 4.4),
    "o3": _openai(2.0, 0.5, 8.0),
    "o1": _openai(15.0, 7.5, 60.0),
    # Meta Llama 4 (OpenRouter list prices, no prompt caching)
    "llama-4-maverick": _openai(0.15, 0.15, 0.6),
    "llama-4-scout": _openai(0.08, 0.08, 0.3),
    # Google (prompts up to 200k tokens)
    "gemini-3-pro": _openai(2.0, 0.2, 12.0),
    "gemini-2.5-pro": _openai(1.25, 0.125, 10.0),
    "gemini-2.5-flash": _openai(0.3, 0.03, 2.5),
}

_DATE_SUFFIX = re.compile(r"(-\d{8}|-\d{4}-\d{2}-\d{2}|@\d{8}|-latest|-preview.*)$")


def normalize_model(model: str) -> str:
    """A model id without provider prefix or date suffix.

    ``openrouter/x/claude-3-5-sonnet-20241022`` becomes ``claude-3-5-sonnet``.
    """
    name = model.strip().lower().rsplit("/", 1)[-1]
    name = name.removeprefix("anthropic.").removeprefix("us.anthropic.")
    while True:
        stripped = _DATE_SUFFIX.sub("", name)
        if stripped == name:
            return name
        name = stripped


def lookup_price(
    model: str | None, overrides: Mapping[str, Price] | None = None
) -> tuple[str, Price] | None:
    """The (table key, price) for ``model``: an exact key, else the longest key it starts with."""
    if not model:
        return None
    table = {**PRICES, **(overrides or {})}
    for candidate in (model, model.lower(), normalize_model(model)):
        if candidate in table:
            return candidate, table[candidate]
    name = normalize_model(model)
    best = max((k for k in table if name.startswith(k)), key=len, default=None)
    return (best, table[best]) if best else None


def parse_prices(data: Mapping[str, Any], *, source: str = "prices") -> dict[str, Price]:
    """A price table from ``{model: {input, cache_write, cache_read, output}}`` (USD per 1M)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected an object mapping model names to prices")
    table: dict[str, Price] = {}
    for model, value in data.items():
        if isinstance(value, Price):
            table[model] = value
            continue
        try:
            table[model] = Price.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"{source}: price of {model!r}: {where or 'value'}: {first['msg']}; expected "
                "{input, cache_write, cache_read, output} in USD per million tokens"
            ) from None
    return table


def load_prices(path: Path) -> dict[str, Price]:
    """A price table from a JSON file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the price table: {exc}") from None
    return parse_prices(data, source=str(path))


__all__ = [
    "PRICES",
    "PRICES_DATE",
    "Price",
    "load_prices",
    "lookup_price",
    "normalize_model",
    "parse_prices",
]
