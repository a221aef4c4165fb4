"""Rules: the public surface for rule authors, and rule selection.

Write a rule by subclassing `Rule` (see `ctxtax.rules.base`), decorating it with `register`, and
exposing it under the entry-point group ``ctxtax.rules``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ctxtax.errors import ConfigError
from ctxtax.rules.base import SECTIONS, Rule, RuleOptions, Session, all_rules, register


def _matches(code: str, selector: str) -> bool:
    return selector == "ALL" or code.startswith(selector)


def _check_selectors(selectors: Iterable[str], known: Iterable[str], what: str) -> list[str]:
    known = list(known)
    out: list[str] = []
    for raw in selectors:
        selector = raw.strip().upper()
        if selector != "ALL" and not any(code.startswith(selector) for code in known):
            raise ConfigError(
                f"unknown rule code {selector!r} in {what}; known: {', '.join(known)}"
            )
        out.append(selector)
    return out


def select_rules(
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Rule]:
    """Instances of the rules chosen by ``select`` / ``ignore`` (codes or prefixes, e.g. ``CTX1``).

    ``options`` maps a rule code to its options. Unknown codes are `ConfigError`s naming them.
    """
    rules = all_rules()
    chosen = _check_selectors(select if select is not None else ["ALL"], rules, "select")
    dropped = _check_selectors(ignore or [], rules, "ignore")
    options = dict(options or {})
    for code in options:
        if code not in rules:
            raise ConfigError(f"options given for unknown rule {code!r}")
    out: list[Rule] = []
    for code, rule in rules.items():
        if any(_matches(code, s) for s in chosen) and not any(_matches(code, s) for s in dropped):
            given = options.get(code)
            out.append(rule(dict(given) if given is not None else None))
    return out


__all__ = ["SECTIONS", "Rule", "RuleOptions", "Session", "all_rules", "register", "select_rules"]
