"""The rule framework: `Rule`, the `Session` a rule reads, and the registry.

A rule has a code (``CTX`` + three digits, the hundreds digit is the family), a kebab-case name,
a docstring in fixed sections (What it does / Why it costs / Example / Fix / Options) that
``ctxtax explain`` prints, and a pure `Rule.check` that yields frozen `Finding`s. Options are a
pydantic model (`RuleOptions` subclass) so bad values are errors that name the key.

Third-party rule packs register `Rule` subclasses under the entry-point group ``ctxtax.rules``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, ValidationError

from ctxtax._findings import Finding, Severity, trusted
from ctxtax.errors import ConfigError

if TYPE_CHECKING:
    from ctxtax._counting import ContextTokens
    from ctxtax._dupes import DuplicateIndex
    from ctxtax._model import Call, Context
    from ctxtax._tokens import TokenCounter
    from ctxtax._tool_uses import ToolUse

SECTIONS = ("What it does", "Why it costs", "Example", "Fix", "Options")
_CODE = re.compile(r"^CTX[1-9]\d\d$")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class RuleOptions(BaseModel):
    """Options of a rule; subclasses add fields. Unknown keys are errors."""

    # Built on the first options given: a rule left at its defaults never needs a validator,
    # and building one for each of the twenty option classes costs about 8 ms of every start.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


@dataclass
class Session:
    """What a rule reads: the context, its token table, its calls, and shared analyses.

    Shared analyses (the duplicate index) are computed once per audit and reused by every rule
    that asks; the incremental `ctxtax.Auditor` hands in one it keeps between audits.
    """

    context: Context
    tokens: ContextTokens
    calls: tuple[Call, ...]
    residency: npt.NDArray[np.int64]
    counter: TokenCounter
    options: dict[str, Any] = field(default_factory=dict)
    duplicate_index: DuplicateIndex | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    only: tuple[int, ...] | None = None
    """The messages a rule with ``scope = "message"`` looks at (None: all of them)."""
    unchanged: int = 0
    """How many leading messages are the very ones of the previous audit of this session (an
    `Auditor`'s); 0 for a one-off audit. With `memory`, a rule can carry analyses of those
    messages over instead of redoing them."""
    memories: dict[str, dict[str, Any]] | None = None
    stampers: dict[str, Callable[[Finding], dict[str, Any] | None]] | None = None
    """Per rule code, what brings that rule's reused findings up to date (see `stamp_later`)."""

    def stamp_later(self, code: str, stamper: Callable[[Finding], dict[str, Any] | None]) -> bool:
        """For an `Auditor`: ``stamper`` gives, when the report is built, the changes
        (``calls``, ``evidence`` entries) each finding of rule ``code`` needs, or None. Returns
        False for a one-off audit, whose rules must stamp their findings themselves."""
        if self.stampers is None:
            return False
        self.stampers[code] = stamper
        return True

    def memory(self, name: str) -> dict[str, Any]:
        """A dict kept for ``name`` between the audits of a session that only grows (empty at
        first, always empty for a one-off audit, and emptied when an earlier message changes),
        so what it holds about the messages it saw still holds."""
        if self.memories is None:
            self.memories = {}
        return self.memories.setdefault(name, {})

    def only_messages(self, indices: Iterable[int]) -> Session:
        """This session with message-scoped rules limited to the messages ``indices``."""
        limited = copy.copy(self)  # (the same analyses and caches; cheaper than `replace`)
        limited.only = tuple(indices)
        return limited

    def message_indices(self) -> Iterable[int]:
        """The indices of the messages a message-scoped rule checks."""
        return range(len(self.context.messages)) if self.only is None else self.only

    @cached_property
    def duplicates(self) -> DuplicateIndex:
        """Exact repeated spans and near-duplicate blocks of the context (computed once)."""
        if self.duplicate_index is None:
            from ctxtax._dupes import DuplicateIndex

            self.duplicate_index = DuplicateIndex.build(self)
        return self.duplicate_index

    @cached_property
    def tool_uses(self) -> list[ToolUse]:
        """Every tool call paired with its result, in call order (see `ctxtax._tool_uses`)."""
        from ctxtax._tool_uses import ToolUseScan

        scan = self.memory("tool_uses").get("scan")
        if not isinstance(scan, ToolUseScan) or scan.messages > len(self.context.messages):
            scan = self.memory("tool_uses")["scan"] = ToolUseScan()
        return scan.extend(self.context)

    @cached_property
    def visible_from(self) -> npt.NDArray[np.int64]:
        """For each message, the first message index every call that carried it could also see.

        After a compaction the earlier history is out of the window: a later message repeating
        it is not a duplicate of anything the model still had.
        """
        n = len(self.context.messages)
        visible = np.full(n, n, dtype=np.int64)
        for call in self.calls:
            if call.end > call.start:
                np.minimum(
                    visible[call.start : call.end], call.start, out=visible[call.start : call.end]
                )
        visible[visible == n] = 0
        return visible


class Rule:
    """Base class of every rule. Subclasses set the class attributes and implement `check`."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity] = "warning"
    Options: ClassVar[type[RuleOptions]] = RuleOptions
    scope: ClassVar[Literal["session", "message"]] = "session"
    """``"message"`` when a message's findings depend on that message alone (and the options),
    each reporting that message's residency as its ``calls``: such a rule looks only at
    `Session.message_indices`, and an incremental audit checks only the messages it has not seen."""

    def memo_key(self, session: Session) -> Hashable | None:
        """A key that, while unchanged between two audits of a growing session, means this rule
        finds the same things; None (the default) means run it every time. A rule with a key
        reports its message's residency as each finding's ``calls``, and may yield findings it
        kept from an earlier audit with their old calls (the engine brings them up to date)."""
        return None

    def __init__(self, options: RuleOptions | dict[str, Any] | None = None) -> None:
        if isinstance(options, RuleOptions):
            self.options = options
        elif not options:
            self.options = self.Options.model_construct()  # the defaults, valid by definition
        else:
            try:
                self.options = self.Options(**(options or {}))
            except ValidationError as exc:
                error = exc.errors()[0]
                key = ".".join(str(p) for p in error["loc"]) or "options"
                known = ", ".join(self.Options.model_fields) or "none"
                raise ConfigError(
                    f"options of {self.code} ({self.name}): {key}: {error['msg']} "
                    f"(its options: {known})"
                ) from None
            except TypeError as exc:
                raise ConfigError(f"options of {self.code} ({self.name}): {exc}") from None

    def check(self, session: Session) -> Iterator[Finding]:
        """Yield the findings of this rule in ``session``. Never raises for bad input."""
        raise NotImplementedError

    def finding(self, message: str, **fields: Any) -> Finding:
        """A `Finding` of this rule (not validated again: rules build it from typed data)."""
        return trusted(
            Finding,
            code=self.code,
            rule=self.name,
            message=message,
            severity=self.severity,
            **fields,
        )

    @classmethod
    def documentation(cls) -> dict[str, str]:
        """The docstring's sections, by heading."""
        doc = (cls.__doc__ or "").strip()
        sections: dict[str, str] = {}
        current: str | None = None
        lines: list[str] = []
        for raw in doc.splitlines():
            line = raw.strip()
            heading = line.rstrip(":")
            if heading in SECTIONS and line.endswith(":"):
                if current is not None:
                    sections[current] = "\n".join(lines).strip()
                current, lines = heading, []
            elif current is not None:
                lines.append(raw)
        if current is not None:
            sections[current] = "\n".join(lines).strip()
        return sections


BUILTIN_MODULES = (
    "ctxtax.rules.duplication",
    "ctxtax.rules.tools",
    "ctxtax.rules.staleness",
    "ctxtax.rules.noise",
    "ctxtax.rules.integrity",
    "ctxtax.rules.templates",
)
"""The modules holding the built-in rules, imported on first use of the registry."""

_REGISTRY: dict[str, type[Rule]] = {}
_STATE = {"loaded": False}


def register(rule: type[Rule]) -> type[Rule]:
    """Class decorator: add ``rule`` to the registry (its code must be new and well formed)."""
    _load()  # the built-in rules first, so a pack cannot take their codes
    if not _CODE.match(getattr(rule, "code", "")):
        raise ConfigError(f"rule {rule.__name__}: code must look like CTX123")
    if not _NAME.match(getattr(rule, "name", "")):
        raise ConfigError(f"rule {rule.code}: name must be kebab-case")
    existing = _REGISTRY.get(rule.code)
    if existing is not None and existing is not rule:
        raise ConfigError(f"rule code {rule.code} is taken by {existing.__name__}")
    _REGISTRY[rule.code] = rule
    return rule


def _load() -> None:
    if _STATE["loaded"]:
        return
    _STATE["loaded"] = True
    import importlib
    from importlib.metadata import entry_points

    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for entry in entry_points(group="ctxtax.rules"):
        loaded = entry.load()
        rules = loaded if isinstance(loaded, (list, tuple)) else [loaded]
        for rule in rules:
            if isinstance(rule, type) and issubclass(rule, Rule):
                register(rule)


def all_rules() -> dict[str, type[Rule]]:
    """Every registered rule by code, built-in and from entry points, sorted by code."""
    _load()
    return dict(sorted(_REGISTRY.items()))


__all__ = ["SECTIONS", "Rule", "RuleOptions", "Session", "all_rules", "register"]
