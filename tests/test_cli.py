"""The ctxtax command line: audit output, JSON shape, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ctxtax._cli import main
from tests.conftest import EXAMPLES

EXAMPLE = EXAMPLES / "sessions" / "coding-agent.json"


def test_audit_text_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "ctxtax audit" in out
    assert "Tokens by part kind" in out
    assert "Session bill" in out
    assert "read_file" in out
    assert "never called" in out


def test_audit_json_is_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(EXAMPLE), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in (
        "schema_version",
        "source",
        "format",
        "model",
        "accuracy",
        "total_tokens",
        "tokens_by_role",
        "tokens_by_part_kind",
        "tokens_by_tool",
        "messages",
        "bill",
        "wasted_tokens",
        "tax_rate",
        "findings",
    ):
        assert key in data, key
    assert data["schema_version"] == 1
    assert data["format"] == "openai" and data["model"] == "gpt-4o"
    assert data["total_tokens"] == sum(data["tokens_by_part_kind"].values())
    assert data["bill"]["calls"] == 7
    assert data["bill"]["estimated"]["cost_usd"] > 0


def test_model_override_and_several_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "b.json"
    other.write_text(json.dumps([{"role": "user", "content": "hello"}]))
    assert main(["audit", str(EXAMPLE), str(other), "--format", "json", "--model", "gpt-4"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, list) and len(data) == 2
    assert data[1]["total_tokens"] == 8 and data[1]["accuracy"]["exact"] is True


def test_prices_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps({"gpt-4o": {"input": 0, "cache_write": 0, "cache_read": 0, "output": 0}})
    )
    assert main(["audit", str(EXAMPLE), "--format", "json", "--prices", str(prices)]) == 0
    assert json.loads(capsys.readouterr().out)["bill"]["estimated"]["cost_usd"] == 0
    prices.write_text("{")
    assert main(["audit", str(EXAMPLE), "--prices", str(prices)]) == 2
    assert "cannot read the price table" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["audit"]) == 2
    assert main(["frobnicate"]) == 2
    capsys.readouterr()


def test_console_script_runs_in_a_fresh_process() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ctxtax._cli", "audit", str(EXAMPLE), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["total_tokens"] > 0


def test_select_and_ignore_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "\n".join(
        f"line {i}: the quick brown fox jumps over the lazy dog {i * 7}" for i in range(30)
    )
    session = tmp_path / "s.json"
    session.write_text(
        json.dumps(
            [
                {"role": "user", "content": text},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": text},
            ]
        )
    )
    assert main(["audit", str(session), "--format", "json", "--select", "CTX1"]) == 0
    assert [f["code"] for f in json.loads(capsys.readouterr().out)["findings"]] == ["CTX101"]
    args = ["--select", "CTX1", "--ignore", "CTX101,CTX102"]
    assert main(["audit", str(session), "--format", "json", *args]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []
    assert main(["audit", str(session), "--select", "CTX777"]) == 2
    assert "unknown rule code 'CTX777'" in capsys.readouterr().err


def test_help_names_the_environment_variables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("CTXTAX_IMPL", "CTXTAX_THREADS", "CTXTAX_CACHE_DIR", "CTXTAX_DEBUG"):
        assert name in out
