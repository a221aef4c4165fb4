"""``ctxtax lint``: find waste in prompt templates and tool schema files.

Loaders (`ctxtax.lint.loaders`) read text, Markdown, Jinja, .prompty, YAML / JSON prompts and tool
files with a map back to ``path:line:col``; the engine (`ctxtax.lint.engine`) runs the rules over
them as a template set; `ctxtax.lint.output` renders text, JSON, GitHub annotations or SARIF.
Names load on first use so that importing a placeholder helper stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctxtax.lint.engine import LintFinding, LintResult, lint_paths

_EXPORTS = {
    "LintFinding": "ctxtax.lint.engine",
    "LintResult": "ctxtax.lint.engine",
    "lint_paths": "ctxtax.lint.engine",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ctxtax.lint' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["LintFinding", "LintResult", "lint_paths"]
