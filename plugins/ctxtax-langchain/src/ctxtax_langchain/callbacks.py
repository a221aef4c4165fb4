"""`CtxtaxCallbackHandler`: audit every chat model call of a LangChain app, change nothing."""

from __future__ import annotations

import logging
import threading
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

import ctxtax
from ctxtax_langchain.convert import to_context

logger = logging.getLogger("ctxtax_langchain")


class CtxtaxCallbackHandler(BaseCallbackHandler):
    """Audit-only: the tokens each model call's prompt wastes, beside the usage it was billed.

    ``on_chat_model_start`` audits each prompt (with the tools bound to the model, when the
    invocation params name them); ``on_llm_end`` adds the ``usage_metadata`` of the replies.
    `report` gives the session's totals as a dict.

    Args:
        model: the model to count and price for (else ctxtax's default counter).
        **audit_options: passed to `ctxtax.audit` (``select``, ``ignore``, ``rule_options``...).
    """

    raise_error = False

    def __init__(self, *, model: str | None = None, **audit_options: Any) -> None:
        super().__init__()
        self.model = model
        self.audit_options = audit_options
        self._lock = threading.Lock()
        self.calls = 0
        self.prompt_tokens = 0
        self.wasted_tokens = 0
        self.waste_by_rule: dict[str, int] = {}
        self.usage = {
            "calls": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_read_tokens": 0,
            "cache_creation_tokens": 0,
        }
        self.errors = 0

    def audit(self, messages: list[BaseMessage], tools: Any = None) -> ctxtax.Report:
        """The ctxtax report of one prompt."""
        ctx = to_context(messages, tools, model=self.model)
        return ctxtax.audit(ctx, model=self.model, strict=False, **self.audit_options)

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        """Audit each message list sent to the model."""
        params = kwargs.get("invocation_params") or {}
        tools = params.get("tools") if isinstance(params, dict) else None
        for prompt in messages:
            try:
                report = self.audit(prompt, tools)
            except Exception as exc:
                self.errors += 1
                logger.warning("ctxtax audit failed: %r", exc)
                continue
            with self._lock:
                self.calls += 1
                self.prompt_tokens += report.total_tokens
                self.wasted_tokens += report.wasted_tokens
                for code, n in report.waste_by_rule.items():
                    self.waste_by_rule[code] = self.waste_by_rule.get(code, 0) + n

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Add the usage the provider reported for the replies."""
        for generations in response.generations:
            for gen in generations:
                usage = getattr(getattr(gen, "message", None), "usage_metadata", None)
                if not usage:
                    continue
                details = usage.get("input_token_details") or {}
                with self._lock:
                    u = self.usage
                    u["calls"] += 1
                    u["input_tokens"] += int(usage.get("input_tokens") or 0)
                    u["output_tokens"] += int(usage.get("output_tokens") or 0)
                    u["cache_read_tokens"] += int(details.get("cache_read") or 0)
                    u["cache_creation_tokens"] += int(details.get("cache_creation") or 0)

    def report(self) -> dict[str, Any]:
        """The session so far: calls, estimated prompt tokens, wasted tokens, recorded usage."""
        with self._lock:
            return {
                "calls": self.calls,
                "prompt_tokens": self.prompt_tokens,
                "wasted_tokens": self.wasted_tokens,
                "tax_rate": self.wasted_tokens / self.prompt_tokens if self.prompt_tokens else 0.0,
                "waste_by_rule": dict(sorted(self.waste_by_rule.items())),
                "usage": dict(self.usage),
                "errors": self.errors,
            }


__all__ = ["CtxtaxCallbackHandler"]
