"""Findings and the edits they propose: what a rule found, where, what it wastes, how to fix it.

Rules yield frozen `Finding`s carrying `Edit` proposals; only the engine (and the optimizer)
applies edits. Every edit says whether it is ``safe`` (nothing unique is lost) or ``unsafe``
(lossy, applied only when asked).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "error"]
Safety = Literal["safe", "unsafe"]
EditAction = Literal["replace_text", "drop_part", "drop_tool", "replace_tool", "replace_result"]


class Loc(BaseModel):
    """Where something is: a message, one of its parts, a range of that part's text.

    ``start`` / ``end`` are character offsets into the part's text and ``token_start`` /
    ``token_end`` the same range in tokens. ``tool`` names a tool schema instead, for findings
    about tools.
    """

    model_config = ConfigDict(frozen=True)

    message: int | None = None
    part: int | None = None
    start: int | None = None
    end: int | None = None
    token_start: int | None = None
    token_end: int | None = None
    tool: str | None = None

    def describe(self) -> str:
        """``message 12, part 0, chars 40-900`` style text."""
        if self.tool is not None and self.message is None:
            return f"tool {self.tool!r}"
        out = f"message {self.message}"
        if self.part is not None:
            out += f", part {self.part}"
        if self.start is not None and self.end is not None:
            out += f", chars {self.start}-{self.end}"
        return out


class Edit(BaseModel):
    """A change a finding proposes. ``replacement`` replaces the located text (or whole part)."""

    model_config = ConfigDict(frozen=True)

    action: EditAction
    loc: Loc
    replacement: str | None = None
    safety: Safety = "safe"
    tokens_saved: int = 0


class Finding(BaseModel):
    """One piece of waste (or breakage) a rule found.

    ``tokens`` is what the located text wastes in one prompt; ``calls`` how many model calls
    carried it, so ``tokens * calls`` were billed for it. ``source`` is the earlier copy a
    duplicate repeats, with ``similarity`` (1.0 for exact copies).
    """

    model_config = ConfigDict(frozen=True)

    code: str
    rule: str
    message: str
    severity: Severity = "warning"
    loc: Loc = Field(default_factory=Loc)
    source: Loc | None = None
    similarity: float | None = None
    tokens: int = 0
    calls: int = 0
    evidence: dict[str, Any] = Field(default_factory=dict)
    edits: tuple[Edit, ...] = ()


_M = TypeVar("_M", bound=BaseModel)
_DEFAULTS: dict[type[BaseModel], tuple[dict[str, Any], dict[str, Callable[[], Any]]]] = {}


def trusted(cls: type[_M], **values: Any) -> _M:
    """An instance of ``cls`` from values already of the right types, without validation.

    Rules build thousands of findings from typed data; pydantic's ``model_construct`` still
    resolves every default on every call (most of the cost). Defaults are resolved once per class
    here; factories (``evidence``) still run per instance.
    """
    known = _DEFAULTS.get(cls)
    if known is None:
        plain: dict[str, Any] = {}
        factories: dict[str, Callable[[], Any]] = {}
        for name, info in cls.model_fields.items():
            if info.default_factory is not None:
                factories[name] = info.default_factory  # type: ignore[assignment]
            else:
                plain[name] = info.default
        known = _DEFAULTS[cls] = (plain, factories)
    plain, factories = known
    data = {**plain, **values}
    for name, factory in factories.items():
        if name not in values:
            data[name] = factory()
    obj = _new(cls)
    _set(obj, "__dict__", data)
    _set(obj, "__pydantic_fields_set__", set(values))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def replaced(obj: _M, **changes: Any) -> _M:
    """A copy of ``obj`` with some fields changed, without validation (the values are of the
    right types): a finding whose calls moved on, cheaper than ``model_copy``."""
    cls = obj.__class__
    new = cls.__new__(cls)
    fields_set = obj.__pydantic_fields_set__
    if not changes.keys() <= fields_set:
        fields_set = fields_set | changes.keys()  # frozen models never change the set: share it
    _set(new, "__dict__", {**obj.__dict__, **changes})
    _set(new, "__pydantic_fields_set__", fields_set)
    _set(new, "__pydantic_extra__", None)
    _set(new, "__pydantic_private__", None)
    return new


_set = object.__setattr__
_new = object.__new__  # a model class's own __new__ is object's: pydantic defines none


__all__ = ["Edit", "EditAction", "Finding", "Loc", "Safety", "Severity", "replaced", "trusted"]
