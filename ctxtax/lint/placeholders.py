"""Template placeholders, recognised by regular expression only: templates are never rendered.

Recognised: Jinja ``{{ expr }}``, ``{% statement %}`` and ``{# comment #}``, mustache ``{{name}}``
/ ``{{{name}}}`` / ``{{#section}}``, and f-string / LangChain ``{name}`` (an identifier, optionally
with attribute, index, conversion and format spec). A doubled ``{{`` is read as Jinja or mustache,
never as an escaped f-string brace.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

PLACEHOLDER = re.compile(
    r"\{\{\{.*?\}\}\}"  # mustache triple
    r"|\{\{.*?\}\}"  # jinja / mustache expression
    r"|\{%.*?%\}"  # jinja statement
    r"|\{#.*?#\}"  # jinja comment
    r"|(?<!\{)\{[A-Za-z_][\w.\[\]]*(?:![rsa])?(?::[^{}\n]*)?\}(?!\})",  # f-string / LangChain
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One placeholder: its text and character range."""

    text: str
    start: int
    end: int

    @property
    def is_comment(self) -> bool:
        """A Jinja comment renders to nothing: it is neither dynamic nor static."""
        return self.text.startswith("{#")


def placeholders(text: str) -> Iterator[Placeholder]:
    """Every placeholder of ``text``, in order."""
    for match in PLACEHOLDER.finditer(text):
        yield Placeholder(match.group(0), match.start(), match.end())


__all__ = ["PLACEHOLDER", "Placeholder", "placeholders"]
