"""CTX301-CTX304 on the real sessions in ../shared/data/real, checked against the raw logs read
here independently of ctxtax; and the staleness rules on odd input."""

from __future__ import annotations

import itertools
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import ctxtax
from ctxtax._model import Context
from ctxtax.rules._file_reads import looks_failed, shell_read
from tests.conftest import real

SPOTTER = (
    "4d5611e5-241a-462a-8d15-5122611a9569.jsonl",
    "8463c716-a2ea-4c14-9efa-87158ebd9f20.jsonl",
    "ae4a77f8-aedd-4bc1-888f-c94edc91af04.jsonl",
)


def findings(ctx: Context, code: str, **options: Any) -> list[ctxtax.Finding]:
    report = ctxtax.audit(
        ctx, select=[code], strict=False, rule_options={code: options} if options else None
    )
    return [f for f in report.findings if f.code == code]


def main_context(path: Path) -> Context:
    """The main conversation of a Claude Code log (not a sidechain), the longest one."""
    contexts = [c for c in ctxtax.load_all(path) if not c.meta.get("sidechain")]
    return max(contexts, key=lambda c: len(c.messages))


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


def raw_reads(path: Path) -> list[dict[str, Any]]:
    """Every ``Read`` call of the main conversation of a Claude Code JSONL with its result, in
    result order: the key (file_path, offset, limit), the text, is_error, and the compaction
    segment (how many ``compact_boundary`` records came before the result)."""
    calls: dict[str, tuple[Any, ...]] = {}
    reads: dict[str, dict[str, Any]] = {}
    segment = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("isSidechain"):
            continue
        if record.get("type") == "system" and record.get("subtype") == "compact_boundary":
            segment += 1
        content = (record.get("message") or {}).get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use" and block.get("name") == "Read":
                args = block.get("input") or {}
                calls[block["id"]] = (args.get("file_path"), args.get("offset"), args.get("limit"))
            elif block.get("type") == "tool_result" and block.get("tool_use_id") in calls:
                reads.setdefault(
                    block["tool_use_id"],
                    {
                        "id": block["tool_use_id"],
                        "key": calls[block["tool_use_id"]],
                        "text": _result_text(block.get("content")),
                        "error": bool(block.get("is_error")),
                        "segment": segment,
                    },
                )
    return list(reads.values())


def expected_superseded(reads: list[dict[str, Any]]) -> dict[str, str]:
    """Read id -> the id of the later read of the same file and range whose text differs, when
    both were in the prompt together (no compaction between them) and the earlier text is not a
    copy of an earlier read (CTX101's)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for read in reads:
        if not read["error"]:
            groups[read["key"]].append(read)
    out: dict[str, str] = {}
    for group in groups.values():
        for i, read in enumerate(group):
            if any(earlier["text"] == read["text"] for earlier in group[:i]):
                continue
            later = next((r for r in group[i + 1 :] if r["text"] != read["text"]), None)
            if later is not None and later["segment"] == read["segment"]:
                out[read["id"]] = later["id"]
    return out


def test_claude_code_rereads_are_superseded_as_the_raw_log_says() -> None:
    total = 0
    for name in SPOTTER:
        path = real("claude-code-spotter", name)
        expected = expected_superseded(raw_reads(path))
        found = {
            f.evidence["call"]: f.evidence["superseded_by"]
            for f in findings(main_context(path), "CTX301", min_tokens=0)
            if f.evidence["tool"] == "Read"
        }
        assert found == expected, name
        total += len(found)
    # Inspected: transcript_renderer.ex read twice with an edit between (4d5611e5, messages 82
    # and 88), application.ex and otel_trace_helpers.ex re-read after edits (ae4a77f8).
    assert total >= 3


def test_claude_code_superseded_read_has_evidence_loc_and_edit() -> None:
    path = real("claude-code-spotter", SPOTTER[0])
    ctx = main_context(path)
    by_call = {f.evidence["call"]: f for f in findings(ctx, "CTX301")}
    raw = {r["id"]: r for r in raw_reads(path)}
    reread = [r for r in raw.values() if str(r["key"][0]).endswith("transcript_renderer.ex")]
    assert len(reread) == 2 and reread[0]["text"] != reread[1]["text"]
    finding = by_call[reread[0]["id"]]
    assert finding.evidence["superseded_by"] == reread[1]["id"]
    assert finding.evidence["file"] == reread[0]["key"][0]
    part = ctx.messages[finding.loc.message].parts[finding.loc.part]  # type: ignore[index]
    assert part.tool_call_id == reread[0]["id"] and part.text == reread[0]["text"]
    assert finding.loc.token_start == 0 and finding.loc.token_end == finding.tokens
    (edit,) = finding.edits
    assert edit.action == "replace_result" and edit.safety == "unsafe"
    assert reread[1]["id"] in (edit.replacement or "") and "re-run Read(" in (
        edit.replacement or ""
    )
    assert 0 < edit.tokens_saved < finding.tokens
    # Only the calls that read both versions pay for the old one: fewer than all that carried it.
    assert (
        0
        < finding.calls
        < ctxtax.audit(ctx, select=["CTX301"])
        .messages[
            finding.loc.message  # type: ignore[index]
        ]
        .calls
    )


def test_identical_rereads_are_left_to_ctx101() -> None:
    """claude-code-viewer re-reads page.tsx, types/index.ts unchanged: a copy, not a stale read."""
    path = real("claude-code-viewer", "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl")
    copies = 0
    for ctx in ctxtax.load_all(path):
        seen: dict[tuple[str, str], int] = {}
        for i, message in enumerate(ctx.messages):
            for part in message.parts:
                if part.kind == "tool_result" and part.tool_name == "Read" and len(part.text) > 300:
                    if (part.tool_name, part.text) in seen:
                        copies += 1
                        report = ctxtax.audit(ctx, select=["CTX101", "CTX301"], strict=False)
                        assert not [f for f in report.findings if f.code == "CTX301"]
                        assert any(
                            f.code == "CTX101" and f.loc.message == i for f in report.findings
                        )
                    seen[(part.tool_name, part.text)] = i
    assert copies >= 2


def test_claude_code_resolved_errors_failed_and_were_retried() -> None:
    for name in SPOTTER:
        path = real("claude-code-spotter", name)
        results: dict[str, dict[str, Any]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            content = (record.get("message") or {}).get("content")
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    results.setdefault(block["tool_use_id"], block)
        found = findings(main_context(path), "CTX303")
        for f in found:
            assert results[f.evidence["call"]].get("is_error") is True, f.message
            assert not results[f.evidence["retried_by"]].get("is_error"), f.message
    # Inspected: 8463c716 runs ``mix test`` four times failing before it passes.
    found = findings(main_context(real("claude-code-spotter", SPOTTER[1])), "CTX303")
    assert sum("mix test" in str(f.evidence.get("command")) for f in found) >= 4


def _mini_observations(path: Path) -> list[tuple[str, str]]:
    """(command, observation) of a mini-swe-agent trajectory, read from the raw JSON."""
    messages = json.loads(path.read_text(encoding="utf-8"))["messages"]
    out = []
    for message, following in itertools.pairwise(messages):
        if message["role"] != "assistant" or following["role"] != "user":
            continue
        blocks = re.findall(r"```bash\s*\n(.*?)\n```", message["content"], re.DOTALL)
        if len(blocks) == 1:
            out.append((blocks[0].strip(), following["content"]))
    return out


def test_mini_swe_agent_file_rereads() -> None:
    """scikit-learn-25102 reads sklearn/utils/_set_output.py whole three times, editing it
    between: the first two reads are superseded."""
    path = real("mini-swe-agent-gemini3", "scikit-learn__scikit-learn-25102.traj.json")
    target = "sklearn/utils/_set_output.py"
    reads = [obs for cmd, obs in _mini_observations(path) if re.fullmatch(rf"cat {target}", cmd)]
    assert len(reads) == 3 and len(set(reads)) == 3
    (ctx,) = ctxtax.load_all(path)
    found = [f for f in findings(ctx, "CTX301") if f.evidence.get("file") == target]
    assert len(found) == 2
    texts = [ctx.messages[f.loc.message].parts[0].text for f in found]  # type: ignore[index]
    assert texts == reads[:2]
    assert all(f.evidence["superseded_by"] is None for f in found)
    assert "re-run `cat sklearn/utils/_set_output.py`" in (found[0].edits[0].replacement or "")


def test_mini_swe_agent_resolved_errors_have_nonzero_exit() -> None:
    for name in ("django__django-16263.traj.json", "psf__requests-1142.traj.json"):
        path = real("mini-swe-agent-gemini3", name)
        (ctx,) = ctxtax.load_all(path)
        found = findings(ctx, "CTX303")
        assert found
        for f in found:
            failed = ctx.messages[f.loc.message].parts[0].text  # type: ignore[index]
            fixed = ctx.messages[f.evidence["retried_at"]].parts[0].text
            assert re.match(r"<returncode>[1-9]", failed), f.message
            assert fixed.startswith("<returncode>0</returncode>"), f.message


def test_openhands_failed_replacements_resolved_by_a_later_replacement() -> None:
    path = real("openhands", "multi_swe_bench_output.jsonl")
    count = 0
    for ctx in ctxtax.load_all(path):
        calls = {
            p.tool_call_id: json.loads(p.text)
            for m in ctx.messages
            for p in m.parts
            if p.kind == "tool_call"
        }
        for f in findings(ctx, "CTX303"):
            failed = calls[f.evidence["call"]]
            retry = calls[f.evidence["retried_by"]]
            if f.evidence["tool"] != "str_replace_editor":
                continue
            count += 1
            text = ctx.messages[f.loc.message].parts[0].text  # type: ignore[index]
            assert text.startswith("ERROR:\nNo replacement was performed")
            assert retry["command"] == failed["command"] == "str_replace"
            assert retry["path"] == failed["path"]
    assert count >= 3


def test_stale_outputs_are_never_quoted_later() -> None:
    """Every CTX302 output: no later assistant text or call argument holds its sample words."""
    checked = 0
    for folder, name in (
        ("claude-code-spotter", SPOTTER[1]),
        ("livemcpbench", "baseline_output_claude-sonnet-4.json"),
        ("openhands", "multi_swe_bench_output.jsonl"),
    ):
        for ctx in ctxtax.load_all(real(folder, name)):
            results = [
                (i, j)
                for i, m in enumerate(ctx.messages)
                for j, p in enumerate(m.parts)
                if p.kind == "tool_result"
            ]
            for f in findings(ctx, "CTX302"):
                at = (f.loc.message, f.loc.part)
                assert f.tokens >= 500 and at in results[:-3]
                later = " ".join(
                    m.text.lower()
                    for m in ctx.messages[f.loc.message + 1 :]
                    if m.role == "assistant"
                )
                words = f.evidence["sample_words"]
                assert words and not any(re.search(rf"\b{w}\b", later) for w in words), f.message
                checked += 1
    assert checked >= 3


def test_old_reasoning_in_claude_code_only_when_asked() -> None:
    path = real("claude-code-spotter", SPOTTER[0])
    ctx = main_context(path)
    assert findings(ctx, "CTX304") == []
    found = findings(ctx, "CTX304", include_anthropic=True)
    # Inspected: the last human turn is the task notification at the end; the thinking blocks
    # between the compaction summary and it are resent (those before the compaction are not).
    starts = [
        i
        for i, m in enumerate(ctx.messages)
        if m.role == "user" and not any(p.kind == "tool_result" for p in m.parts)
    ]
    summary, last = starts[-2], starts[-1]
    expected = {
        (i, j)
        for i, m in enumerate(ctx.messages[summary:last], start=summary)
        for j, p in enumerate(m.parts)
        if m.role == "assistant" and p.kind == "reasoning" and p.text.strip()
    }
    assert {(f.loc.message, f.loc.part) for f in found} == expected and expected
    assert all(f.edits and f.edits[0].action == "drop_part" for f in found)


def test_file_reads_are_recognised() -> None:
    assert shell_read("cat a.py") is not None
    read = shell_read("cd /repo && nl -ba src/x.py | sed -n '10,20p'")
    assert read is not None and (read.path, read.start, read.end) == ("/repo/src/x.py", 10, 20)
    read = shell_read("head -n 40 ./x.py 2>&1")
    assert read is not None and (read.path, read.start, read.end) == ("x.py", 1, 40)
    assert shell_read("cat a.py b.py") is None
    assert shell_read("cat > a.py << 'EOF'\nx\nEOF") is None
    assert shell_read("grep -n foo a.py | head") is None
    assert shell_read("cat 'unterminated") is None


def test_failure_detection_is_conservative() -> None:
    assert looks_failed("<returncode>1</returncode>\n<output>\nTraceback ...\n</output>")
    assert not looks_failed("<returncode>1</returncode>\n<output>\n</output>")
    assert looks_failed("Error: file not found")
    assert looks_failed("bash: foo: command not found")
    assert not looks_failed("3 tests passed; the Error: lines above are from the fixtures")
    assert looks_failed("ok", is_error=True)


ODD: list[dict[str, Any]] = [
    {"role": "user", "content": "Go."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "read_file", "arguments": "{not json"},
            },
            {"id": "c2", "type": "function", "function": {"name": "", "arguments": ""}},
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "Error: bad arguments " * 30},
    {"role": "tool", "tool_call_id": "c2", "content": "x " * 600},
    {"role": "tool", "tool_call_id": "orphan", "content": "y " * 600},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c3",
                "type": "function",
                "function": {"name": "read_file", "arguments": "{not json"},
            },
            {
                "id": "c4",
                "type": "function",
                "function": {"name": "read_file", "arguments": "[1, 2]"},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "c3", "content": "fine " * 100},
    {"role": "tool", "tool_call_id": "c4", "content": "[1, 2] " * 100},
    {"role": "assistant", "reasoning_content": "hmm", "content": ""},
    {"role": "user", "content": "Again."},
    {"role": "assistant", "content": "Done."},
]


@pytest.mark.parametrize("code", ["CTX301", "CTX302", "CTX303", "CTX304"])
def test_odd_input_never_raises(code: str) -> None:
    report = ctxtax.audit(ODD, select=[code], strict=False)
    assert all(f.code == code for f in report.findings)
    report = ctxtax.audit(Context(), select=[code], strict=False)
    assert report.findings == []
