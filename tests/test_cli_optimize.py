"""``ctxtax optimize IN [-o OUT]``: writes a valid, smaller payload atomically, never over the input
unless asked, logs its edits, and fails with one line on bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import ctxtax
from ctxtax._cli import main

FILE = "\n".join(
    f"def handler_{i}(request):\n    value = request.params.get('field_{i}', {i})\n"
    f"    return {{'status': 'ok', 'value': value * {i}}}\n"
    for i in range(12)
)


def session() -> list[dict[str, Any]]:
    def turn(cid: str) -> list[dict[str, Any]]:
        call = {"id": cid, "type": "function", "function": {"name": "read", "arguments": "{}"}}
        return [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": cid, "content": FILE},
        ]

    return [
        {"role": "system", "content": "You are a careful engineer."},
        {"role": "user", "content": "Fix the handlers."},
        *turn("c1"),
        *turn("c2"),
        {"role": "assistant", "content": "Done."},
    ]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "session.json"
    path.write_text(json.dumps(session()), encoding="utf-8")
    return path


def test_writes_a_smaller_valid_payload(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, log = tmp_path / "lean.json", tmp_path / "edits.json"
    assert main(["optimize", str(source), "-o", str(out), "--log", str(log)]) == 0
    assert "edit(s)" in capsys.readouterr().err
    lean = json.loads(out.read_text())
    assert len(lean) == len(session())
    assert lean[5]["content"].startswith("[ctxtax: same as the tool result of c1")
    before = ctxtax.audit(session()).total_tokens
    after = ctxtax.audit(lean).total_tokens  # strict: the pairing is intact
    assert after < before
    edits = json.loads(log.read_text())
    assert [e["code"] for e in edits] == ["CTX101"]
    assert edits[0]["removed"] == FILE and edits[0]["safety"] == "safe"
    assert json.loads(source.read_text()) == session()  # the input is untouched


def test_standard_output_by_default(source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["optimize", str(source)]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(session())


def test_never_over_the_input_unless_asked(
    source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["optimize", str(source), "-o", str(source)]) == 2
    assert "--in-place" in capsys.readouterr().err
    assert json.loads(source.read_text()) == session()
    assert main(["optimize", str(source), "--in-place"]) == 0
    assert json.loads(source.read_text()) != session()
    assert not list(source.parent.glob(".*.tmp"))  # the temporary file is gone


def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"role": "user", "content": "hi"}', encoding="utf-8")
    out = tmp_path / "out.json"
    assert main(["optimize", str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ctxtax: error:") and str(bad) in err and "\n" not in err
    assert not out.exists()


def test_unsafe_and_tool_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messages = session()
    messages[-1:-1] = [
        {"role": "user", "content": "Run it."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c3", "type": "function", "function": {"name": "run", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c3", "content": "ok"},
    ]
    path = tmp_path / "s.json"
    path.write_text(json.dumps(messages))
    out = tmp_path / "o.json"
    args = ["optimize", str(path), "-o", str(out), "--exclude-tools", "read"]
    assert main(args) == 0
    assert json.loads(out.read_text()) == messages  # the only waste is in `read` results
    capsys.readouterr()
