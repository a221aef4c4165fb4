"""The tool rules (CTX201-CTX204) on real tool lists and sessions from ../shared/data/real.

Every expectation is computed here from the raw files (tool names defined, tool names called)
and compared with what the rules report; the numbers quoted were read off the data.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import ctxtax
from ctxtax import Finding, Report
from tests.conftest import real


def _call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    function = {"name": name, "arguments": json.dumps(arguments)}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call_id, "type": "function", "function": function}],
    }


# A short GitHub session: read a file, open a pull request (3 model calls, 2 tools called).
GITHUB_SESSION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a coding agent with access to GitHub."},
    {"role": "user", "content": "Open a pull request fixing the typo in README.md of octo/demo."},
    _call("call_1", "get_file_contents", {"owner": "octo", "repo": "demo", "path": "README.md"}),
    {"role": "tool", "tool_call_id": "call_1", "content": "# Demo\nThis is teh demo."},
    _call(
        "call_2",
        "create_pull_request",
        {"owner": "octo", "repo": "demo", "title": "Fix typo", "head": "fix", "base": "main"},
    ),
    {"role": "tool", "tool_call_id": "call_2", "content": "Created pull request #7"},
    {"role": "assistant", "content": "Opened pull request #7 with the fix."},
]
CALLED = {"get_file_contents", "create_pull_request"}


def _by_code(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def _tool_names(path: Path) -> list[str]:
    return [t["name"] for t in json.loads(path.read_text(encoding="utf-8"))["tools"]]


def test_github_mcp_server_idle_tools_cost_tens_of_thousands_of_tokens() -> None:
    path = real("github-mcp-server", "tools_list.json")
    defined = _tool_names(path)
    assert len(defined) == 117 and set(defined) >= CALLED
    report = ctxtax.audit(GITHUB_SESSION, tools=path, model="gpt-4o", select=["CTX201"])
    idle = _by_code(report.findings, "CTX201")
    assert {f.loc.tool for f in idle} == set(defined) - CALLED
    schema = {t.name: t.schema_tokens for t in report.tokens_by_tool}
    assert all(f.tokens == schema[f.loc.tool] and f.calls == 3 for f in idle)
    idle_tokens = sum(f.tokens for f in idle)
    # 115 idle schemas: about 24k tokens in every prompt, 98% of the tool schemas.
    assert idle_tokens > 20_000
    assert idle_tokens > 0.95 * sum(schema.values())
    assert report.wasted_tokens == idle_tokens
    assert report.waste_billed_tokens == 3 * idle_tokens
    assert idle[0].evidence["idle_tools"] == 115 and idle[0].evidence["defined_tools"] == 117
    assert all(e.action == "drop_tool" and e.safety == "unsafe" for f in idle for e in f.edits)


def test_reference_github_server_idle_tools_by_server() -> None:
    path = real("mcp-tool-snapshots", "server-github.json")
    defined = _tool_names(path)
    report = ctxtax.audit(GITHUB_SESSION, tools=path, model="gpt-4o", select=["CTX201"])
    idle = _by_code(report.findings, "CTX201")
    assert {f.loc.tool for f in idle} == set(defined) - CALLED
    assert len(idle) == 24
    assert all(f.evidence["server"] == "github-mcp-server" for f in idle)
    assert "server github-mcp-server: 24 of 26 tools idle" in idle[0].message
    assert report.tokens_by_server["github-mcp-server"] > sum(f.tokens for f in idle)


def test_a_tools_list_dump_alone_has_no_idle_tools_but_shows_its_cost() -> None:
    path = real("github-mcp-server", "tools_list.json")
    report = ctxtax.audit(path, select=["CTX2"])
    assert not _by_code(report.findings, "CTX201")
    assert not _by_code(report.findings, "CTX202")
    assert report.tool_count == 117 and len(report.tokens_by_tool) == 117
    assert report.tool_schema_tokens > 20_000
    # projects_write is the one schema over the 1,000-token budget (about 1,500 tokens).
    bloated = _by_code(report.findings, "CTX204")
    assert [f.loc.tool for f in bloated] == ["projects_write"]
    schema = {t.name: t.schema_tokens for t in report.tokens_by_tool}
    assert bloated[0].tokens == schema["projects_write"] - 1000
    assert bloated[0].evidence["over"]["schema_tokens"]["limit"] == 1000


@pytest.fixture(scope="module")
def livemcp() -> tuple[Report, list[dict[str, Any]], list[str]]:
    """The 95 LiveMCPBench conversations audited with all 527 tools of its 70 servers."""
    tools = real("livemcpbench", "tools.json")
    baseline = real("livemcpbench", "baseline_output_claude-sonnet-4.json")
    tasks = json.loads(baseline.read_text(encoding="utf-8"))
    servers = json.loads(tools.read_text(encoding="utf-8"))
    names = [
        t["name"]
        for server in servers
        for entry in server["tools"].values()
        for t in entry["tools"]
    ]
    report = ctxtax.audit(baseline, tools=tools, select=["CTX201", "CTX203"], strict=False)
    return report, tasks, names


def test_livemcpbench_tools_not_run_by_the_agent_are_idle(
    livemcp: tuple[Report, list[dict[str, Any]], list[str]],
) -> None:
    report, tasks, names = livemcp
    assert len(names) == 527 and len(report.conversations) == len(tasks) == 95
    checked = 0
    for task, conversation in zip(tasks, report.conversations, strict=True):
        # The agent runs MCP tools through its `execute-tool` meta-tool.
        ran = {
            json.loads(call["function"]["arguments"]).get("tool_name")
            for message in task["messages"]
            for call in message.get("tool_calls") or []
            if call["function"]["name"] == "execute-tool"
        }
        idle = {f.loc.tool for f in _by_code(conversation.findings, "CTX201")}
        if conversation.bill.calls < 2:
            assert not idle
            continue
        assert idle == set(names) - ran
        checked += 1
    assert checked > 90
    first = _by_code(report.conversations[0].findings, "CTX201")
    assert first[0].evidence["defined_tools"] == len(set(names))
    assert report.waste_by_rule["CTX201"] > 5_000_000


def test_livemcpbench_duplicate_browser_tools(
    livemcp: tuple[Report, list[dict[str, Any]], list[str]],
) -> None:
    report, _, _ = livemcp
    pairs = {
        (f.loc.tool, f.evidence["duplicates"])
        for f in _by_code(report.conversations[0].findings, "CTX203")
    }
    # The puppeteer server and the playwright server describe these five tools the same way.
    assert pairs == {
        (f"puppeteer_{action}", f"playwright_{action}")
        for action in ("click", "fill", "select", "hover", "evaluate")
    }


def test_livemcpbench_long_enums_are_bloated() -> None:
    path = real("livemcpbench", "tools.json")
    servers = json.loads(path.read_text(encoding="utf-8"))
    enums = {
        t["name"]: max(
            (
                len(p["enum"])
                for p in t["inputSchema"].get("properties", {}).values()
                if "enum" in p
            ),
            default=0,
        )
        for server in servers
        for entry in server["tools"].values()
        for t in entry["tools"]
    }
    report = ctxtax.audit(path, select=["CTX204"])
    flagged = {f.loc.tool: f for f in report.findings if "enum_values" in f.evidence["over"]}
    # The OP.GG server enumerates every champion: 169 values (166 and 62 for TFT).
    assert set(flagged) == {name for name, n in enums.items() if n > 50}
    assert flagged["lol-champion-analysis"].evidence["over"]["enum_values"]["value"] == 169
    assert all(
        f.severity == "info" and 0 < f.tokens < f.evidence["schema_tokens"]
        for f in flagged.values()
    )


def test_claude_code_trace_idle_tools() -> None:
    path = real("anthropic-api-claude-trace", "test-traffic.jsonl")
    contexts = ctxtax.load_all(path)
    report = ctxtax.audit(path, select=["CTX201"], strict=False)
    judged = 0
    for ctx, conversation in zip(contexts, report.conversations, strict=True):
        idle = {f.loc.tool for f in _by_code(conversation.findings, "CTX201")}
        calls = sum(1 for c in ctx.model_calls() if c.with_tools)
        if not ctx.tools or calls < 2:
            assert not idle
            continue
        called = {p.tool_name for m in ctx.messages for p in m.parts if p.kind == "tool_call"}
        assert idle == {t.name for t in ctx.tools} - called
        judged += 1
    assert judged == 2
    # The main thread: 17 Claude Code tools, 13 calls, only TodoWrite, LS, Bash, Write and Edit
    # used; the two IDE MCP tools are idle with the rest.
    main = max(report.conversations, key=lambda c: c.tool_count)
    idle = _by_code(main.findings, "CTX201")
    assert len(idle) == 12 and {f.calls for f in idle} == {13}
    ide = [f for f in idle if f.evidence["server"] == "ide"]
    assert len(ide) == 2 and "server ide: 2 of 2 tools idle" in ide[0].message


def test_claude_code_session_with_claude_code_tools() -> None:
    trace = real("anthropic-api-claude-trace", "test-traffic.jsonl")
    session = real("claude-code-spotter", "4d5611e5-241a-462a-8d15-5122611a9569.jsonl")
    tools = max(ctxtax.load_all(trace), key=lambda c: len(c.tools)).tools
    # The log has no tool definitions: nothing to judge on its own.
    alone = ctxtax.audit(session, select=["CTX2"], strict=False)
    assert alone.tool_count == 0 and not alone.waste_by_rule
    contexts = ctxtax.load_all(session)
    main = max(contexts, key=lambda c: len(c.messages))
    uses = Counter(p.tool_name for m in main.messages for p in m.parts if p.kind == "tool_call")
    report = ctxtax.audit(main, tools=tools, select=["CTX201", "CTX202"])
    idle = {f.loc.tool for f in _by_code(report.findings, "CTX201")}
    assert idle == {t.name for t in tools} - set(uses)
    # Task ran once, at the start of a 139-call session: cold for the rest of it.
    assert uses["Task"] == 1
    cold = {f.loc.tool: f for f in _by_code(report.findings, "CTX202")}
    assert "Task" in cold and cold["Task"].evidence["uses"] == 1
    assert cold["Task"].calls > 100
    assert "Bash" not in cold and "Bash" not in idle


def test_openhands_think_tool_goes_cold() -> None:
    path = real("openhands", "multi_swe_bench_output.jsonl")
    contexts = ctxtax.load_all(path)
    report = ctxtax.audit(path, select=["CTX202"], strict=False)
    for ctx, conversation in zip(contexts, report.conversations, strict=True):
        for finding in conversation.findings:
            name = finding.loc.tool
            used_at = [
                i
                for i, m in enumerate(ctx.messages)
                for p in m.parts
                if p.kind == "tool_call" and p.tool_name == name
            ]
            assert used_at and finding.evidence["last_used_message"] == max(used_at)
            later = [c for c in ctx.model_calls() if c.end > max(used_at)]
            assert finding.calls == len(later) >= 20
    cold = [(c.title, f.loc.tool) for c in report.conversations for f in c.findings]
    assert cold == [("ponylang__ponyc-4588", "think")]
