"""Every file under ../shared/data/real loads, and `ctxtax audit --format json` counts it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ctxtax
from ctxtax._cli import main
from ctxtax.formats import detect, read_path
from tests.conftest import REAL, real_files

FILES = real_files()
EXPECTED_FORMAT = {
    "aider": "aider",
    "anthropic-api-claude-trace": "claude_trace",
    "claude-code-spotter": "claude_code",
    "claude-code-viewer": "claude_code",
    "codex-cli": "codex",
    "github-mcp-server": "mcp_tools",
    "livemcpbench": None,  # tools.json is MCP tools, the baseline output is OpenAI chat
    "mcp-tool-snapshots": "mcp_tools",
    "mini-swe-agent-gemini3": "mini_swe_agent",
    "openhands": "openhands",
    "swe-agent": "swe_agent",
    "tau-bench": "openai",
}


def _id(path: Path) -> str:
    return str(path.relative_to(REAL))


def test_the_real_data_folder_is_walked() -> None:
    if not REAL.exists():
        pytest.skip(f"real data not found at {REAL}")
    assert len(FILES) > 150


@pytest.mark.parametrize("path", FILES, ids=[_id(p) for p in FILES])
def test_real_file_loads_and_audits(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = path.relative_to(REAL).parts[0]
    name = detect(read_path(path))
    expected = EXPECTED_FORMAT[folder]
    if expected is not None:
        assert name == expected
    else:
        assert name == ("mcp_tools" if path.name == "tools.json" else "openai")
    contexts = ctxtax.load_all(path)
    assert contexts and all(c.messages or c.tools for c in contexts)
    assert main(["audit", str(path), "--format", "json", "--no-strict"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_tokens"] > 0
    assert data["total_tokens"] == sum(data["tokens_by_part_kind"].values())
