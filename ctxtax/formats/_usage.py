"""Provider usage objects -> ctxtax `Usage`.

`read_usage` reads the ``usage`` a provider returned for one model call, in three shapes:

- OpenAI / OpenRouter chat.completion: ``prompt_tokens``, ``completion_tokens``,
  ``prompt_tokens_details.cached_tokens``. ``prompt_tokens`` INCLUDE the cached tokens, so
  ``Usage.input_tokens`` is ``prompt_tokens - cached_tokens`` and ``Usage.cache_read_tokens`` is
  ``cached_tokens``; ``completion_tokens`` is ``Usage.output_tokens``.
- LiteLLM over Anthropic: the OpenAI shape plus Anthropic's ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens`` at the top level. Its ``prompt_tokens`` include both the cache
  reads and the cache writes, and both are taken out of ``input_tokens``. An older LiteLLM left
  the cache writes out of ``prompt_tokens``: when ``prompt_tokens`` is smaller than reads +
  writes, only the reads are taken out.
- Anthropic Messages: ``input_tokens`` (uncached only), ``cache_creation_input_tokens``,
  ``cache_read_input_tokens``, ``output_tokens``, read field for field.

Cache reads are ``prompt_tokens_details.cached_tokens`` or ``cache_read_input_tokens`` (the larger
when both are given: LiteLLM repeats the same count in both). Cache writes are recognized by any
of ``cache_creation_input_tokens`` (Anthropic, LiteLLM), ``prompt_tokens_details.
cache_creation_tokens`` or ``prompt_tokens_details.cache_write_tokens`` (OpenRouter), again the
larger. Counts that are not positive ints (missing, None, strings, booleans) read as 0. A dict
with none of ``prompt_tokens`` / ``completion_tokens`` / ``input_tokens`` / ``output_tokens`` is
no usage (None).
"""

from __future__ import annotations

from typing import Any

from ctxtax._model import Usage


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def read_usage(usage: Any) -> Usage | None:
    """A provider's ``usage`` object (OpenAI, OpenRouter, LiteLLM or Anthropic) as a `Usage`.

    OpenAI-style ``prompt_tokens`` include the cached tokens (``prompt_tokens_details.
    cached_tokens`` or LiteLLM's ``cache_read_input_tokens``) and, through LiteLLM, Anthropic's
    ``cache_creation_input_tokens``; both are taken out of the uncached input. An Anthropic-style
    usage (``input_tokens`` / ``output_tokens``) is read as it is. None when nothing is recorded.
    """
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    read = max(_int(details.get("cached_tokens")), _int(usage.get("cache_read_input_tokens")))
    write = max(
        _int(usage.get("cache_creation_input_tokens")),
        _int(details.get("cache_creation_tokens")),
        _int(details.get("cache_write_tokens")),
    )
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        prompt = _int(usage.get("prompt_tokens"))
        # an older LiteLLM left cache writes out of prompt_tokens
        uncached = prompt - read - write if prompt >= read + write else max(prompt - read, 0)
        output = _int(usage.get("completion_tokens"))
    elif "input_tokens" in usage or "output_tokens" in usage:
        uncached = _int(usage.get("input_tokens"))
        output = _int(usage.get("output_tokens"))
    else:
        return None
    return Usage(
        input_tokens=uncached,
        cache_write_tokens=write,
        cache_read_tokens=read,
        output_tokens=output,
    )


__all__ = ["read_usage"]
