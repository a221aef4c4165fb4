"""``ctxtax: noqa`` suppressions in template files.

A directive is found by pattern on any line, whatever comment syntax holds it (``# ...`` in YAML,
.prompt and .txt; ``{# ... #}`` in Jinja; ``<!-- ... -->`` in Markdown; a ``"$comment"`` string in
JSON)::

    ctxtax: noqa                 every finding on this line
    ctxtax: noqa CTX503, CTX404  these codes on this line
    ctxtax: noqa-file            every finding in the file
    ctxtax: noqa-file CTX501     these codes anywhere in the file

A JSON or YAML file may instead hold a top-level ``"ctxtax": {"noqa": ["CTX204"]}`` key (file-wide;
the key is not part of the prompt). A directive that suppresses nothing is reported as ``CTX000``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_DIRECTIVE = re.compile(
    r"ctxtax:\s*noqa(?P<file>-file)?(?![\w-])(?P<codes>(?:[\s:,]+CTX\d{3})*)", re.IGNORECASE
)
_CODE = re.compile(r"CTX\d{3}", re.IGNORECASE)


@dataclass
class Directive:
    """One suppression: its line (0 for a file-wide key), codes (None for all), what it used."""

    line: int
    codes: frozenset[str] | None
    whole_file: bool
    col: int = 1
    used: set[str] = field(default_factory=set)

    def covers(self, code: str, line: int) -> bool:
        """True when this directive suppresses ``code`` on ``line``."""
        if not self.whole_file and line != self.line:
            return False
        return self.codes is None or code in self.codes


def directives(source: str, key_codes: frozenset[str] | None = None) -> list[Directive]:
    """Every suppression directive of a file's text (and of its ``ctxtax.noqa`` key)."""
    out: list[Directive] = []
    for number, line in enumerate(source.splitlines(), start=1):
        for match in _DIRECTIVE.finditer(line):
            codes = frozenset(c.upper() for c in _CODE.findall(match.group("codes")))
            out.append(
                Directive(
                    line=number,
                    codes=codes or None,
                    whole_file=match.group("file") is not None,
                    col=match.start() + 1,
                )
            )
    if key_codes is not None:
        out.append(Directive(line=1, codes=key_codes or None, whole_file=True))
    return out


__all__ = ["Directive", "directives"]
