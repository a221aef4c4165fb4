"""Bad input gets a CtxtaxError naming where and what; the CLI prints one line and exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ctxtax
from ctxtax._cli import main
from ctxtax.errors import FormatError, InputError, MessageError, PairingError, ParseError

BAD_CASES: list[tuple[str, bytes, type[Exception], str]] = [
    (
        "broken.json",
        b'{"messages": [{"role": "user", "content": "hi"}',
        ParseError,
        "broken.json:1: malformed JSON",
    ),
    (
        "session.jsonl",
        b'{"type": "user", "message": {"role": "user", "content": "a"}}\n{"type": "user", oops}\n',
        ParseError,
        "session.jsonl:2: malformed JSONL line",
    ),
    (
        "role.json",
        json.dumps([{"role": "user", "content": "a"}, {"role": "wizard", "content": "b"}]).encode(),
        MessageError,
        "message 1: unknown role 'wizard'",
    ),
    (
        "orphan.json",
        json.dumps(
            [
                {"role": "user", "content": "a"},
                {"role": "tool", "tool_call_id": "call_9", "content": "b"},
            ]
        ).encode(),
        PairingError,
        "message 1: tool result for call 'call_9' has no tool call before it",
    ),
    (
        "unanswered.json",
        json.dumps(
            [
                {"role": "user", "content": "a"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "user", "content": "and?"},
            ]
        ).encode(),
        PairingError,
        "message 1: tool call 'c1' (f) has no tool result after it",
    ),
    (
        "binary.json",
        b'{"messages": [\x00\x01\x02]}',
        ParseError,
        "binary.json:1: binary data (NUL byte at offset 14)",
    ),
    (
        "latin1.json",
        '[{"role": "user", "content": "caf\u00e9"}]'.encode("latin-1"),
        ParseError,
        "invalid UTF-8 at byte offset 33",
    ),
    ("empty.json", b"   \n", ParseError, "the input is empty"),
    ("unknown.json", b'{"hello": "world"}', FormatError, "unrecognized session format"),
    (
        "content.json",
        json.dumps([{"role": "user", "content": 42}]).encode(),
        MessageError,
        "message 0: content must be a string or a list",
    ),
]


@pytest.mark.parametrize(
    ("name", "data", "error", "text"), BAD_CASES, ids=[c[0] for c in BAD_CASES]
)
def test_bad_input_is_a_clear_error(
    tmp_path: Path, name: str, data: bytes, error: type[Exception], text: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(error) as info:
        ctxtax.audit(path)
    assert text in str(info.value)
    assert isinstance(info.value, ctxtax.CtxtaxError)


@pytest.mark.parametrize(
    ("name", "data", "error", "text"), BAD_CASES, ids=[c[0] for c in BAD_CASES]
)
def test_cli_prints_one_line_and_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    data: bytes,
    error: type[Exception],
    text: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    before = sorted(tmp_path.iterdir())
    assert main(["audit", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("ctxtax: error: ")
    assert text in err
    assert "Traceback" not in err
    assert sorted(tmp_path.iterdir()) == before and path.read_bytes() == data


def test_huge_single_message_is_refused_with_its_index(tmp_path: Path) -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "tool" if False else "user", "content": "x" * 10_485_760},
    ]
    with pytest.raises(InputError) as info:
        ctxtax.audit(messages)
    assert info.value.message_index == 1
    assert "10,485,760 characters" in str(info.value)
    # The limit is an option, and the count then works.
    report = ctxtax.audit(messages, max_message_chars=20_000_000, model="gpt-4")
    assert report.total_tokens > 1_000_000


def test_non_strict_reports_broken_pairing_instead(tmp_path: Path) -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "tool", "tool_call_id": "call_9", "content": "b"},
    ]
    report = ctxtax.audit(messages, strict=False)
    assert any("broken tool-call pairing" in n for n in report.notes)


def test_unknown_input_format_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FormatError, match="unknown input format 'nope'"):
        ctxtax.audit([{"role": "user", "content": "a"}], format="nope")
    path = tmp_path / "a.json"
    path.write_text("[]")
    assert main(["audit", str(path), "--input-format", "nope"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_wrong_forced_format_is_named(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="does not have the shape of format 'claude_code'"):
        ctxtax.audit([{"role": "user", "content": "a"}], format="claude_code")


def test_missing_file_and_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(tmp_path / "nope.json")]) == 2
    assert "No such file" in capsys.readouterr().err
    assert main(["audit", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_a_home_relative_path_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "s.json").write_text(json.dumps([{"role": "user", "content": "hello"}]))
    assert ctxtax.audit("~/s.json", model="gpt-4").total_tokens == 8
