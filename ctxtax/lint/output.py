"""Rendering lint results: ``text`` (like ruff), ``json``, ``github`` annotations, SARIF 2.1.0."""

from __future__ import annotations

import json
from typing import Any

from ctxtax import __version__
from ctxtax.lint.engine import UNUSED_NOQA, LintResult

FORMATS = ("text", "json", "github", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"info": "note", "warning": "warning", "error": "error"}


def summary(result: LintResult) -> str:
    """``Found 3 findings in 10 files (1 fixable with --fix).`` style line."""
    n = len(result.findings)
    fixable = sum(1 for f in result.findings if f.fixable)
    out = f"Found {n} finding{'s' if n != 1 else ''} in {result.files} file"
    out += "s" if result.files != 1 else ""
    if result.fixed:
        out += f"; fixed {result.fixed}"
    if fixable:
        out += f" ({fixable} fixable with --fix)"
    if result.errors:
        out += f"; {len(result.errors)} file(s) could not be read"
    return out + "."


def render(result: LintResult, fmt: str) -> str:
    """The result in one of `FORMATS`."""
    if fmt == "json":
        data = {
            "files": result.files,
            "fixed": result.fixed,
            "errors": result.errors,
            "findings": [
                {
                    "path": f.path,
                    "line": f.line,
                    "col": f.col,
                    "code": f.code,
                    "rule": f.rule,
                    "message": f.message,
                    "severity": f.severity,
                    "fixable": f.fixable,
                }
                for f in result.findings
            ],
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "github":
        lines = [
            f"::{'error' if f.severity == 'error' else 'warning'} file={f.path},line={f.line},"
            f"col={f.col},title={f.code}::{f.code} {_escape(f.message)}"
            for f in result.findings
        ]
        return "".join(line + "\n" for line in lines)
    if fmt == "sarif":
        return json.dumps(sarif(result), indent=2, ensure_ascii=False) + "\n"
    lines = [f.describe() for f in result.findings]
    return "".join(line + "\n" for line in [*lines, summary(result)])


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def sarif(result: LintResult) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one run, every rule lint ran in the driver, one result per finding."""
    rules: list[dict[str, Any]] = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": (rule.__doc__ or rule.name).strip().splitlines()[0]},
            "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]},
        }
        for rule in result.rules
    ]
    rules.append(
        {
            "id": UNUSED_NOQA,
            "name": "unused-noqa",
            "shortDescription": {"text": "A ctxtax: noqa suppression that suppresses nothing."},
            "defaultConfiguration": {"level": "warning"},
        }
    )
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": index.get(f.code, 0),
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path.replace("\\", "/")},
                        "region": {"startLine": f.line, "startColumn": f.col},
                    }
                }
            ],
        }
        for f in result.findings
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "ctxtax",
                        "version": __version__,
                        "informationUri": "https://github.com/ctxtax/ctxtax",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


__all__ = ["FORMATS", "render", "sarif", "summary"]
