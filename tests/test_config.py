"""``[tool.ctxtax]`` / ``ctxtax.toml``: finding, validating and applying the configuration, in
code and through the command line (``rules``, ``explain``, ``--config``, ``--fail-on``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ctxtax
from ctxtax._cli import main
from ctxtax._config import find_config, load_config
from ctxtax.rules import SECTIONS, all_rules

REMINDER = (
    "<system-reminder>Remember: never edit files outside the workspace, always run the test "
    "suite after a change, and report every command you ran together with its exit status in "
    "your final answer to the user.</system-reminder>"
)
SESSION = [
    {"role": "user", "content": "Add a retry.\n" + REMINDER},
    {"role": "assistant", "content": "Done."},
    {"role": "user", "content": "Log it.\n" + REMINDER},
    {"role": "assistant", "content": "Logged."},
    {"role": "user", "content": "Ship it.\n" + REMINDER},
    {"role": "tool", "tool_call_id": "call_9", "content": "orphaned output"},
    {"role": "assistant", "content": "Shipped."},
]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def session_file(tmp_path: Path) -> Path:
    return write(tmp_path / "project" / "session.json", json.dumps(SESSION))


def test_nearest_file_wins_and_ctxtax_toml_before_pyproject(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.ctxtax]\nselect = ["CTX1"]\n')
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    write(tmp_path / "a" / "pyproject.toml", "[project]\nname = 'x'\n")  # no [tool.ctxtax]
    assert find_config(inner) == tmp_path / "pyproject.toml"
    write(tmp_path / "a" / "ctxtax.toml", 'ignore = ["CTX104"]\n')
    assert find_config(inner) == tmp_path / "a" / "ctxtax.toml"
    assert load_config(start=inner).ignore == ["CTX104"]


def test_no_file_is_the_default_config(tmp_path: Path) -> None:
    config = load_config(start=tmp_path)
    assert config.select is None and config.ignore == [] and config.rules == {}


def test_rule_options_by_code_or_name(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ctxtax.toml",
        'select = ["CTX1"]\nmodel = "gpt-4o"\n'
        "[rules.CTX101]\nmin_tokens = 64\n[rules.repeated-injection]\nmin_repeats = 4\n",
    )
    config = load_config(path)
    assert config.rules == {"CTX101": {"min_tokens": 64}, "CTX103": {"min_repeats": 4}}
    assert config.audit_options()["model"] == "gpt-4o"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('selekt = ["CTX1"]\n', "unknown key 'selekt'"),
        ('select = ["CTX777"]\n', "unknown rule code 'CTX777'"),
        ('ignore = ["BOGUS"]\n', "unknown rule code 'BOGUS'"),
        ("select = 'CTX1'\n", "select"),
        ("[rules.CTX999]\nx = 1\n", "[rules.CTX999]"),
        ("[rules.CTX101]\nmin_tokenz = 1\n", "min_tokenz"),
        ("[rules.CTX101]\nmin_tokens = 'many'\n", "min_tokens"),
        ("select = [\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "ctxtax.toml", text)
    with pytest.raises(ctxtax.ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_pyproject_errors_name_the_table(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", "[tool.ctxtax]\nfoo = 1\n")
    with pytest.raises(ctxtax.ConfigError, match=r"unknown key 'foo' in \[tool.ctxtax\]"):
        load_config(path)


def test_audit_applies_a_config() -> None:
    everything = {f.code for f in ctxtax.audit(SESSION, strict=False).findings}
    assert {"CTX103", "CTX901"} <= everything
    config = ctxtax.Config(select=["CTX9"])
    only = {f.code for f in ctxtax.audit(SESSION, strict=False, config=config).findings}
    assert only == {"CTX901"}
    # An explicit select wins over the config's; ignores add up.
    both = ctxtax.audit(
        SESSION, strict=False, config=ctxtax.Config(ignore=["CTX9"]), select=["CTX1", "CTX9"]
    )
    assert {f.code for f in both.findings} == {"CTX103"}


def test_cli_reads_the_nearest_config(
    session_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(session_file.parent / "pyproject.toml", '[tool.ctxtax]\nselect = ["CTX901"]\n')
    assert main(["audit", str(session_file), "--no-strict", "--format", "json"]) == 0
    codes = {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert codes == {"CTX901"}
    assert main(["audit", str(session_file), "--no-strict", "--format", "json", "--isolated"]) == 0
    codes = {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert {"CTX103", "CTX901"} <= codes


def test_cli_bad_config_is_a_one_line_error(
    session_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(session_file.parent / "ctxtax.toml", "selekt = []\n")
    assert main(["audit", str(session_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "'selekt'" in err
    assert main(["audit", str(session_file), "--config", str(bad.parent / "none.toml")]) == 2
    assert "no such configuration file" in capsys.readouterr().err


def test_cli_fail_on(session_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["audit", str(session_file), "--no-strict", "--isolated"]
    assert main(args) == 0
    assert main([*args, "--fail-on", "error"]) == 1  # CTX901 is an error
    assert main([*args, "--fail-on", "error", "--ignore", "CTX9"]) == 0
    assert main([*args, "--fail-on", "warning", "--ignore", "CTX9"]) == 1
    capsys.readouterr()


def test_cli_rules_lists_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(all_rules())
    assert main(["rules", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["code"]: r["name"] for r in rows} == {c: r.name for c, r in all_rules().items()}
    assert next(r for r in rows if r["code"] == "CTX101")["options"] == ["min_tokens"]


@pytest.mark.parametrize("code", list(all_rules()))
def test_cli_explain_prints_every_section(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    rule = all_rules()[code]
    assert main(["explain", code.lower()]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{code} {rule.name}")
    for section in SECTIONS:
        assert f"\n{section}:\n" in out
    assert main(["explain", rule.name]) == 0
    assert capsys.readouterr().out == out


def test_cli_explain_unknown_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "CTX000"]) == 2
    assert "unknown rule 'CTX000'" in capsys.readouterr().err


def test_rules_left_at_their_defaults_get_the_validated_defaults() -> None:
    # Default options are made without validation (see RuleOptions); an options class whose
    # validator changed a default would make the two differ.
    for code, rule in all_rules().items():
        assert rule().options == rule.Options(), code
        assert rule({}).options == rule.Options(), code
