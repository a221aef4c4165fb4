"""Findings: what a rule found, where, and how many tokens it wastes.

Rules yield frozen `Finding`s; the engine prices them and adds them to the `Report`. The rule
framework (``ctxtax.rules``) builds on these types.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "error"]


class Loc(BaseModel):
    """Where a finding is: a message, a part of it, and a character range of that part's text.

    ``tool`` names a tool schema instead, for findings about tools.
    """

    model_config = ConfigDict(frozen=True)

    message: int | None = None
    part: int | None = None
    start: int | None = None
    end: int | None = None
    tool: str | None = None


class Finding(BaseModel):
    """One piece of waste (or breakage) a rule found."""

    model_config = ConfigDict(frozen=True)

    code: str
    rule: str
    message: str
    severity: Severity = "warning"
    loc: Loc = Field(default_factory=Loc)
    tokens: int = 0
    calls: int = 0
    evidence: dict[str, Any] = Field(default_factory=dict)


__all__ = ["Finding", "Loc", "Severity"]
