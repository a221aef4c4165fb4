"""The lint engine: walk paths, load templates, run the rules, map findings to ``path:line:col``.

All prompt files of one run form a template set: one `Context` (``source_format="template"``)
whose messages are every file's messages, with one model call per file. The duplication rules
respect call windows, so CTX101-CTX103 compare text within a file; CTX501 and CTX503 also look
across the set. Each tool schema file is a context of its own (CTX203 / CTX204).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctxtax.errors import CtxtaxError
from ctxtax.lint.loaders import SUFFIXES, TemplateFile, load_file
from ctxtax.lint.suppress import Directive, directives

if TYPE_CHECKING:
    from ctxtax._findings import Finding, Loc, Severity
    from ctxtax._model import Context
    from ctxtax._tokens import TokenCounter
    from ctxtax.rules.base import Rule

SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__"})
NOT_FOR_TEMPLATES = ("CTX104", "CTX201", "CTX202", "CTX3", "CTX9")
"""Rules about conversations (replayed turns, tool use, staleness, pairing): not run by lint."""
FIXABLE = frozenset({"CTX401", "CTX402", "CTX404", "CTX503"})
"""Rules whose safe edits ``--fix`` applies: the others' edits put references into a prompt."""
UNUSED_NOQA = "CTX000"


@dataclass(frozen=True)
class LintFinding:
    """A finding placed in a file: ``path:line:col: code message``."""

    path: str
    line: int
    col: int
    code: str
    rule: str
    message: str
    severity: Severity = "warning"
    fixable: bool = False

    def describe(self) -> str:
        """The one-line text form."""
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"


@dataclass
class LintResult:
    """What a lint run found: findings, input errors (``path:line: what``), files, fixes."""

    findings: list[LintFinding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    files: int = 0
    fixed: int = 0
    rules: list[type[Rule]] = field(default_factory=list)


def collect(
    paths: Iterable[Path | str], *, exclude: Sequence[str] = (), errors: list[str]
) -> list[Path]:
    """Files to lint: named files as given, directories walked for `SUFFIXES`."""
    out: list[Path] = []

    def excluded(path: Path) -> bool:
        text = path.as_posix()
        return any(fnmatch.fnmatch(text, g) or fnmatch.fnmatch(path.name, g) for g in exclude)

    for raw in paths:
        path = Path(raw)
        if path.is_file():
            if not excluded(path):
                out.append(path)
        elif path.is_dir():
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
                for name in sorted(files):
                    child = Path(folder, name)
                    if child.suffix.lower() in SUFFIXES and not excluded(child):
                        out.append(child)
        else:
            errors.append(f"{path}: no such file or directory")
    return list(dict.fromkeys(out))


def lint_rules(
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Rule]:
    """The rules lint runs: the selection, without the conversation-only rules."""
    from ctxtax.rules import select_rules

    if select is not None:
        select = [s for s in select if s.upper() != UNUSED_NOQA]
        if not select:
            return []
    ignore = [s for s in ignore or () if s.upper() != UNUSED_NOQA]
    rules = select_rules(select, ignore, options)
    return [r for r in rules if not r.code.startswith(NOT_FOR_TEMPLATES)]


@dataclass(frozen=True)
class Placed:
    """A rule's finding with its file, line, column and (for prompt text) segment index."""

    file: TemplateFile
    finding: Finding
    line: int
    col: int
    segment: int | None = None


@dataclass
class _Origin:
    file: TemplateFile
    segment: int


def _template_set(files: Sequence[TemplateFile]) -> tuple[Context, list[_Origin]]:
    from ctxtax._model import Call, Context, Message, Part

    messages: list[Message] = []
    origins: list[_Origin] = []
    calls: list[Call] = []
    for f in files:
        start = len(messages)
        for k, seg in enumerate(f.segments):
            messages.append(Message(role=seg.role, parts=(Part(kind="text", text=seg.text),)))
            origins.append(_Origin(f, k))
        calls.append(Call(start=start, end=len(messages), with_tools=False))
    ctx = Context(
        messages=tuple(messages), calls=tuple(calls), source_format="template", source="lint"
    )
    return ctx, origins


def _run(ctx: Context, rules: Sequence[Rule], counter: TokenCounter) -> list[Finding]:
    from ctxtax._context_audit import shared_options
    from ctxtax._counting import count_context
    from ctxtax._session import residency
    from ctxtax.rules import Session

    calls = ctx.model_calls()
    session = Session(
        context=ctx,
        tokens=count_context(ctx, counter, provider="openai"),
        calls=calls,
        residency=residency(ctx, calls),
        counter=counter,
        options=shared_options(rules),
    )
    found = [f for rule in rules for f in rule.check(session)]
    paragraphs = [f for f in found if f.code == "CTX503"]

    def covered(f: Finding) -> bool:
        return f.code in ("CTX101", "CTX102", "CTX103") and any(
            p.loc.message == f.loc.message
            and (p.loc.start or 0) < (f.loc.end or 0)
            and (f.loc.start or 0) < (p.loc.end or 0)
            for p in paragraphs
        )

    return [f for f in found if not covered(f)]


def _place(finding: Finding, loc: Loc, origins: Sequence[_Origin]) -> Placed | None:
    if loc.message is None or loc.message >= len(origins):
        return None
    origin = origins[loc.message]
    seg = origin.file.segments[origin.segment]
    line, col = origin.file.position(seg.map.file_offset(loc.start or 0))
    return Placed(origin.file, finding, line, col, origin.segment)


def lint_files(
    files: Sequence[TemplateFile], rules: Sequence[Rule], counter: TokenCounter
) -> list[Placed]:
    """Every finding of ``rules`` in ``files``, placed at its file, line and column."""
    from ctxtax._model import Call, Context

    placed: list[Placed] = []
    prompts = [f for f in files if f.kind == "prompt"]
    if prompts:
        ctx, origins = _template_set(prompts)
        for finding in _run(ctx, rules, counter):
            where = _place(finding, finding.loc, origins) or Placed(prompts[0], finding, 1, 1)
            src = _place(finding, finding.source, origins) if finding.source else None
            if src is not None and (src.file is not where.file or src.line != where.line):
                text = f"{finding.message} (first at {src.file.path}:{src.line}:{src.col})"
                where = replace(where, finding=finding.model_copy(update={"message": text}))
            placed.append(where)
    for f in files:
        if f.kind == "tools":
            ctx = Context(tools=f.tools, calls=(Call(end=0),), source_format="template")
            for finding in _run(ctx, rules, counter):
                line, col = f.position(f.tool_offsets.get(finding.loc.tool or "", 0))
                placed.append(Placed(f, finding, line, col))
    return placed


def suppress(
    placed: Sequence[Placed], files: Sequence[TemplateFile], codes_run: set[str]
) -> tuple[list[Placed], list[LintFinding]]:
    """Drop suppressed findings; report directives that suppressed nothing as CTX000."""
    table: dict[int, list[Directive]] = {id(f): directives(f.source, f.noqa_codes) for f in files}
    kept = []
    for item in placed:
        hit = [d for d in table[id(item.file)] if d.covers(item.finding.code, item.line)]
        for d in hit:
            d.used.add(item.finding.code)
        if not hit:
            kept.append(item)
    unused: list[LintFinding] = []
    for f in files:
        for d in table[id(f)]:
            if d.codes is None:
                stale = [] if d.used else ["all codes"]
            else:
                stale = sorted(c for c in d.codes if c not in d.used and c in codes_run)
            if stale:
                unused.append(
                    LintFinding(
                        path=str(f.path),
                        line=d.line,
                        col=d.col,
                        code=UNUSED_NOQA,
                        rule="unused-noqa",
                        message=f"unused suppression ({', '.join(stale)}): nothing to suppress",
                    )
                )
    return kept, unused


def load_all(paths: Sequence[Path], errors: list[str]) -> list[TemplateFile]:
    """Load every file; a broken file adds an error line and the others are still read."""
    files: list[TemplateFile] = []
    for path in paths:
        try:
            files.append(load_file(path))
        except CtxtaxError as exc:
            errors.append(str(exc))
    return files


def lint_paths(
    paths: Iterable[Path | str],
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    rule_options: Mapping[str, Mapping[str, Any]] | None = None,
    model: str | None = None,
    exclude: Sequence[str] = (),
    fix: bool = False,
) -> LintResult:
    """Lint prompt templates and tool schema files; see the README's "Linting prompt templates".

    With ``fix``, safe edits of `FIXABLE` rules are written back (atomically) and the files are
    linted again; the result holds what is left and how many edits were made.
    """
    from ctxtax._tokens import default_counter

    ignore = list(ignore or ())
    report_unused = UNUSED_NOQA not in {c.upper() for c in ignore}
    if select is not None and not any(UNUSED_NOQA.startswith(s.upper()) for s in select):
        report_unused = report_unused and any(s.upper() == "ALL" for s in select)
    rules = lint_rules(select, ignore, rule_options)
    counter = default_counter(model)
    result = LintResult(rules=[type(r) for r in rules])
    targets = collect(paths, exclude=exclude, errors=result.errors)
    files = load_all(targets, result.errors)
    result.files = len(files)
    placed = lint_files(files, rules, counter)
    if fix:
        from ctxtax.lint.fixes import apply_fixes

        for _ in range(3):
            made = apply_fixes(files, placed)
            if not made:
                break
            result.fixed += made
            files = load_all([f.path for f in files], result.errors)
            placed = lint_files(files, rules, counter)
    kept, unused = suppress(placed, files, {r.code for r in rules})
    for item in kept:
        finding = item.finding
        result.findings.append(
            LintFinding(
                path=str(item.file.path),
                line=item.line,
                col=item.col,
                code=finding.code,
                rule=finding.rule,
                message=finding.message,
                severity=finding.severity,
                fixable=finding.code in FIXABLE and any(e.safety == "safe" for e in finding.edits),
            )
        )
    if report_unused:
        result.findings += unused
    result.findings.sort(key=lambda f: (f.path, f.line, f.col, f.code))
    return result


__all__ = [
    "FIXABLE",
    "NOT_FOR_TEMPLATES",
    "LintFinding",
    "LintResult",
    "Placed",
    "collect",
    "lint_files",
    "lint_paths",
    "lint_rules",
]
