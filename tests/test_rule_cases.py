"""Every rule's pass / fail / fix cases, from ``tests/fixtures/rules/CTXnnn.yml``.

A case file holds the cases of one rule::

    rule: CTX201
    cases:
      - name: a tool defined and never called is idle   # unique within the file
        expect: fail            # pass: no finding of this rule; fail: findings; fix: + edits
        format: openai          # optional: the input format (detected when absent)
        system: "..."           # optional: an Anthropic system prompt
        options: {max_tokens: 100}  # optional: this rule's options
        tools: [...]            # optional: tool definitions (OpenAI, Anthropic or MCP shape)
        messages: [...]         # the conversation, as the provider takes it
        findings:               # fail / fix: the findings expected, in report order
          - loc: {tool: search}             # a mapping matches a subset of the finding's fields
            message: "re:never called"      # "re:..." searches, other strings are equal
            tokens: ">0"                    # ">N", ">=N", "<N", "<=N" compare numbers
            evidence: {calls: 2}
            edits: [{action: drop_tool, safety: unsafe}]
        count: 2                # instead of ``findings``: how many findings

YAML anchors (``&file`` ... ``*file``) repeat a text without copying it in the file. The cases are
run with only their rule selected and ``strict=False``, so broken pairing is reported rather than
refused. A rule without a case file, or a file without a pass and a fail case, fails the suite.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import ctxtax
from ctxtax.rules import SECTIONS, all_rules

CASES = Path(__file__).parent / "fixtures" / "rules"
_COMPARE = re.compile(r"^(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)$")


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: a mapping with 'rule' and 'cases'"
    assert data.get("rule") == path.stem, f"{path.name}: 'rule' must be {path.stem}"
    return data


def _all_cases() -> list[Any]:
    params = []
    for path in sorted(CASES.glob("CTX*.yml")):
        for case in _load(path)["cases"]:
            params.append(pytest.param(path.stem, case, id=f"{path.stem}-{case['name']}"))
    return params


def _matches(expected: Any, actual: Any, where: str) -> list[str]:
    """What differs between an expected value and the actual one (empty when it matches)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected a mapping, got {actual!r}"]
        problems = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{where}.{key}: missing (have {sorted(actual)})")
            else:
                problems += _matches(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
            return [f"{where}: expected {len(expected)} items, got {actual!r}"]
        return [p for i, e in enumerate(expected) for p in _matches(e, actual[i], f"{where}[{i}]")]
    if isinstance(expected, str) and expected.startswith("re:"):
        if not isinstance(actual, str) or not re.search(expected[3:], actual):
            return [f"{where}: {actual!r} does not match /{expected[3:]}/"]
        return []
    if isinstance(expected, str) and (m := _COMPARE.match(expected)):
        op, bound = m.group(1), float(m.group(2))
        ok = (
            isinstance(actual, (int, float))
            and {
                ">": actual > bound,
                ">=": actual >= bound,
                "<": actual < bound,
                "<=": actual <= bound,
            }[op]
        )
        return [] if ok else [f"{where}: {actual!r} is not {expected}"]
    if expected != actual:
        return [f"{where}: expected {expected!r}, got {actual!r}"]
    return []


def run_case(code: str, case: dict[str, Any]) -> list[ctxtax.Finding]:
    """The findings of ``code`` on one case."""
    report = ctxtax.audit(
        case["messages"],
        tools=case.get("tools"),
        system=case.get("system"),
        format=case.get("format"),
        model=case.get("model", "gpt-4o"),
        strict=False,
        select=[code],
        rule_options={code: case["options"]} if case.get("options") else None,
    )
    return [f for f in report.findings if f.code == code]


@pytest.mark.parametrize(("code", "case"), _all_cases())
def test_rule_case(code: str, case: dict[str, Any]) -> None:
    expect = case["expect"]
    assert expect in ("pass", "fail", "fix"), f"expect must be pass, fail or fix, not {expect!r}"
    findings = run_case(code, case)
    dumped = [f.model_dump(mode="json") for f in findings]
    if expect == "pass":
        assert not findings, f"expected no {code} finding, got: {[f.message for f in findings]}"
        return
    assert findings, f"expected {code} findings, got none"
    if "count" in case:
        assert len(findings) == case["count"], [f.message for f in findings]
    if "findings" in case:
        problems = _matches(case["findings"], dumped, "findings")
        assert not problems, "\n".join(problems) + f"\nactual: {dumped}"
    if expect == "fix":
        assert any(f.edits for f in findings), f"a fix case needs edits, got {dumped}"


def test_every_rule_has_cases_and_documentation() -> None:
    files = {p.stem for p in CASES.glob("CTX*.yml")}
    missing: list[str] = []
    for code, rule in all_rules().items():
        if code not in files:
            missing.append(f"{code}: no tests/fixtures/rules/{code}.yml")
        else:
            kinds = {case["expect"] for case in _load(CASES / f"{code}.yml")["cases"]}
            if "pass" not in kinds or not kinds & {"fail", "fix"}:
                missing.append(f"{code}: needs a pass case and a fail case (has {sorted(kinds)})")
        sections = rule.documentation()
        missing += [f"{code}: no '{s}' section" for s in SECTIONS if not sections.get(s)]
    extra = files - set(all_rules())
    missing += [f"{name}.yml: no such rule" for name in sorted(extra)]
    assert not missing, "\n".join(missing)


def test_case_names_are_unique() -> None:
    for path in sorted(CASES.glob("CTX*.yml")):
        names = [case["name"] for case in _load(path)["cases"]]
        assert len(names) == len(set(names)), f"{path.name}: duplicate case names"
