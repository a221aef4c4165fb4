"""`ctxtax lint`: loaders with line/col maps, template rules over files and sets, suppressions,
output formats, --fix, exit codes and configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxtax._cli import main
from ctxtax.lint.engine import lint_paths
from ctxtax.lint.loaders import load_file
from ctxtax.rules import all_rules
from tests.conftest import real

RULES_TEXT = (
    "Always answer in JSON with the keys answer and sources, and never include comments or "
    "prose outside the JSON object."
)
LONG = " ".join(f"Rule {i}: check the account, the card and the transfer first." for i in range(40))


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["lint", "--isolated", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def position(path: Path, needle: str) -> tuple[int, int]:
    text = path.read_text(encoding="utf-8")
    i = text.index(needle)
    return text.count("\n", 0, i) + 1, i - (text.rfind("\n", 0, i) + 1) + 1


def located(tmp: Path, path: Path, needle: str) -> str:
    line, col = position(path, needle)
    return f"{path}:{line}:{col}: CTX503"


# -- loaders ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".txt", ".md", ".prompt", ".j2", ".jinja", ".jinja2"])
def test_text_files_are_one_system_message_mapped_verbatim(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path, f"p{suffix}", "Hello {{ name }}.\n\nSecond {var} line.\n")
    loaded = load_file(path)
    (seg,) = loaded.segments
    assert seg.role == "system"
    assert "{{ name }}" in seg.text and "{var}" in seg.text  # never rendered
    assert loaded.position(seg.map.file_offset(seg.text.index("{var}"))) == (3, 8)


def test_prompty_front_matter_and_role_sections(tmp_path: Path) -> None:
    text = "---\nname: demo\nmodel: {api: chat}\n---\nsystem:\nYou are {{role}}.\n\nuser:\n{{q}}\n"
    loaded = load_file(write(tmp_path, "a.prompty", text))
    assert [(s.role, s.text) for s in loaded.segments] == [
        ("system", "You are {{role}}."),
        ("user", "{{q}}"),
    ]
    seg = loaded.segments[1]
    assert loaded.position(seg.map.file_offset(0)) == (9, 1)


def test_json_chat_list_maps_through_escapes(tmp_path: Path) -> None:
    content = 'Line one\\n\\n\\"quoted\\" {x}'
    path = write(tmp_path, "c.json", f'[\n  {{"role": "system", "content": "{content}"}}\n]\n')
    seg = load_file(path).segments[0]
    assert seg.text == 'Line one\n\n"quoted" {x}'
    offset = seg.map.file_offset(seg.text.index("{x}"))
    assert path.read_text()[offset : offset + 3] == "{x}"


def test_yaml_messages_and_block_scalars(tmp_path: Path) -> None:
    text = "messages:\n  - role: system\n    content: |\n      First line.\n      Second {{ v }}.\n"
    path = write(tmp_path, "m.yaml", text)
    seg = load_file(path).segments[0]
    assert seg.role == "system" and seg.text == "First line.\nSecond {{ v }}.\n"
    loaded = load_file(path)
    assert loaded.position(seg.map.file_offset(seg.text.index("Second"))) == (5, 7)


def test_langchain_serialized_prompts(tmp_path: Path) -> None:
    def prompt(template: str) -> dict[str, object]:
        return {
            "lc": 1,
            "type": "constructor",
            "id": ["langchain", "prompts", "prompt", "PromptTemplate"],
            "kwargs": {"template": template, "input_variables": []},
        }

    chat = {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "prompts", "chat", "ChatPromptTemplate"],
        "kwargs": {
            "messages": [
                {
                    "lc": 1,
                    "type": "constructor",
                    "id": ["langchain", "prompts", "chat", "SystemMessagePromptTemplate"],
                    "kwargs": {"prompt": prompt("You are {persona}.")},
                },
                {
                    "lc": 1,
                    "type": "constructor",
                    "id": ["langchain", "prompts", "chat", "HumanMessagePromptTemplate"],
                    "kwargs": {"prompt": prompt("{question}")},
                },
            ]
        },
    }
    loaded = load_file(write(tmp_path, "chat.json", json.dumps(chat, indent=2)))
    assert [(s.role, s.text) for s in loaded.segments] == [
        ("system", "You are {persona}."),
        ("user", "{question}"),
    ]
    saved = {"_type": "prompt", "template": "Summarise {text}.", "input_variables": ["text"]}
    assert load_file(write(tmp_path, "p.json", json.dumps(saved))).segments[0].text == (
        "Summarise {text}."
    )
    pairs = "messages:\n  - [system, 'Be brief.']\n  - [human, '{q}']\n"
    assert [s.role for s in load_file(write(tmp_path, "t.yaml", pairs)).segments] == [
        "system",
        "user",
    ]


@pytest.mark.parametrize(
    ("name", "data", "line"),
    [
        ("bad.json", '{"a": 1,\n  "b": }\n', 2),
        ("bad.yaml", "a: 1\nb: [1, 2\nc: 3\n", 3),
        ("bin.txt", b"hello\n\x00\x01", 2),
        ("enc.md", b"ok\nbad \xff byte\n", 2),
        ("open.prompty", "---\nname: x\nsystem:\nhi\n", 1),
    ],
)
def test_bad_input_names_file_and_line_and_others_still_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, data: str | bytes, line: int
) -> None:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    good = write(tmp_path, "good.md", f"{RULES_TEXT}\n\n{RULES_TEXT}\n")
    code, out, err = run(capsys, str(path), str(good))
    assert code == 2
    assert f"{path}:{line}:" in err
    assert f"{good}:3:1: CTX503" in out  # the good file was still linted


def test_placeholders_are_never_rendered(tmp_path: Path) -> None:
    path = write(tmp_path, "x.j2", "{{ ''.__class__ }} {% for x in y %}{{ x }}{% endfor %}\n")
    assert load_file(path).segments[0].text.startswith("{{ ''.__class__ }}")


# -- rules on files and sets -----------------------------------------------------------------


def test_each_template_rule_on_files(tmp_path: Path) -> None:
    big = write(tmp_path, "big.md", LONG + "\n")
    order = write(tmp_path, "order.md", "Today is {{ date }}.\n\n" + LONG + "\n")
    dup = write(tmp_path, "dup.txt", f"{RULES_TEXT}\n\nBe kind.\n\n{RULES_TEXT}\n")
    result = lint_paths(
        [big, order, dup],
        select=["CTX5"],
        rule_options={"CTX501": {"max_tokens": 300, "max_total_tokens": None}},
    )
    got = {(f.path, f.line, f.col, f.code) for f in result.findings}
    assert (str(big), 1, 1, "CTX501") in got
    assert (str(order), 1, 10, "CTX502") in got
    assert (str(dup), 5, 1, "CTX503") in got
    assert not any(f.code == "CTX502" and f.path == str(big) for f in result.findings)


def test_template_set_budget_and_cross_file_paragraphs(tmp_path: Path) -> None:
    a = write(tmp_path, "a.md", f"Support agent.\n\n{RULES_TEXT}\n")
    b = write(tmp_path, "sub/b.md", f"Billing agent.\n\n{RULES_TEXT}\n")
    result = lint_paths(
        [tmp_path], select=["CTX5"], rule_options={"CTX501": {"max_total_tokens": 10}}
    )
    messages = {f.code: f for f in result.findings}
    assert "template set" in messages["CTX501"].message
    cross = messages["CTX503"]
    assert (cross.path, cross.line) == (str(b), 3)
    assert f"first at {a}:3:1" in cross.message and not cross.fixable


def test_duplication_and_noise_rules_run_within_files_only(tmp_path: Path) -> None:
    block = "\n".join(f"step {i}: run the migration for shard {i} and check it" for i in range(8))
    write(tmp_path, "a.md", block + "\n")
    write(tmp_path, "b.md", block + "\n")
    write(tmp_path, "c.md", "Trailing blanks   \nhere   \nand   \nthere   \n" * 8)
    result = lint_paths([tmp_path], select=["CTX1", "CTX4"])
    codes = [(Path(f.path).name, f.code) for f in result.findings]
    assert not any(code.startswith("CTX1") for _, code in codes)  # copies across files: CTX503
    assert any(name == "c.md" and code.startswith("CTX4") for name, code in codes)


def test_session_rules_are_not_run_on_templates() -> None:
    from ctxtax.lint.engine import lint_rules

    codes = {r.code for r in lint_rules()}
    assert {"CTX501", "CTX502", "CTX503", "CTX101", "CTX204", "CTX404"} <= codes
    assert not codes & {"CTX201", "CTX202", "CTX301", "CTX901"}


def test_template_rules_are_silent_in_session_audits() -> None:
    import ctxtax

    messages = [{"role": "system", "content": f"Today is {{{{ d }}}}.\n\n{LONG}\n\n{LONG}"}]
    report = ctxtax.audit(messages, model="gpt-4o", select=["CTX5"])
    assert report.findings == []


# -- suppressions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "comment"),
    [
        ("a.md", "<!-- ctxtax: noqa CTX503 -->"),
        ("a.j2", "{# ctxtax: noqa CTX503 #}"),
        ("a.txt", "# ctxtax: noqa"),
    ],
)
def test_line_suppression(tmp_path: Path, name: str, comment: str) -> None:
    path = write(tmp_path, name, f"{RULES_TEXT}\n\n{comment}\n{RULES_TEXT}\n")
    result = lint_paths([path], select=["CTX503"])
    assert result.findings == []


def test_file_suppression_and_json_key(tmp_path: Path) -> None:
    md = write(
        tmp_path, "a.md", f"<!-- ctxtax: noqa-file CTX503 -->\n{RULES_TEXT}\n\n{RULES_TEXT}\n"
    )
    data = {"ctxtax": {"noqa": ["CTX503"]}, "messages": [{"role": "system", "content": "x"}]}
    data["messages"][0]["content"] = f"{RULES_TEXT}\n\n{RULES_TEXT}"
    js = write(tmp_path, "b.json", json.dumps(data))
    assert lint_paths([md], select=["CTX503"]).findings == []
    assert lint_paths([js], select=["CTX503"]).findings == []


def test_unused_suppressions_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", "Nothing wrong here. <!-- ctxtax: noqa CTX503 -->\n")
    result = lint_paths([path])
    assert [(f.code, f.line, f.col) for f in result.findings] == [("CTX000", 1, 26)]
    assert lint_paths([path], ignore=["CTX000"]).findings == []
    # a suppression for a rule that did not run is not "unused"
    assert lint_paths([path], select=["CTX404"]).findings == []


# -- command line, formats, fix --------------------------------------------------------------


def test_exit_codes_and_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = write(tmp_path, "clean.md", "You are brief.\n")
    dirty = write(tmp_path, "dirty.md", f"{RULES_TEXT}\n\n{RULES_TEXT}\n")
    assert run(capsys, str(clean))[0] == 0
    code, out, _ = run(capsys, str(clean), str(dirty))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{dirty}:3:1: CTX503 ")
    assert lines[-1].startswith("Found 1 finding in 2 files")
    assert run(capsys, str(tmp_path / "missing.md"))[0] == 2
    assert run(capsys, "--select", "CTX999", str(clean))[0] == 2


def test_directory_walk_skips_hidden_and_vendor_dirs(tmp_path: Path) -> None:
    from ctxtax.lint.engine import collect

    for folder in (".git", "node_modules", ".venv", ".hidden", "prompts"):
        write(tmp_path, f"{folder}/p.md", "x\n")
    write(tmp_path, "prompts/skip.py", "x\n")
    errors: list[str] = []
    assert collect([tmp_path], errors=errors) == [tmp_path / "prompts" / "p.md"]


def test_json_and_github_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirty = write(tmp_path, "dirty.md", f"{RULES_TEXT}\n\n{RULES_TEXT}\n")
    code, out, _ = run(capsys, "--format", "json", str(dirty))
    data = json.loads(out)
    assert code == 1 and data["files"] == 1
    assert data["findings"][0] | {"message": ""} == {
        "path": str(dirty),
        "line": 3,
        "col": 1,
        "code": "CTX503",
        "rule": "duplicated-paragraph",
        "message": "",
        "severity": "warning",
        "fixable": True,
    }
    _, out, _ = run(capsys, "--format", "github", str(dirty))
    assert out.startswith(f"::warning file={dirty},line=3,col=1,title=CTX503::CTX503 ")


def test_sarif_structure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirty = write(tmp_path, "dirty.md", f"{RULES_TEXT}\n\n{RULES_TEXT}\n")
    _, out, _ = run(capsys, "--format", "sarif", str(dirty))
    log = json.loads(out)
    assert log["version"] == "2.1.0" and "sarif" in log["$schema"]
    (run_,) = log["runs"]
    rules = run_["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert {"CTX501", "CTX502", "CTX503", "CTX000"} <= set(ids)
    assert all(r["name"] and r["shortDescription"]["text"] for r in rules)
    (result,) = run_["results"]
    assert result["ruleId"] == "CTX503" and ids[result["ruleIndex"]] == "CTX503"
    assert result["level"] in {"note", "warning", "error"} and result["message"]["text"]
    region = result["locations"][0]["physicalLocation"]
    assert region["artifactLocation"]["uri"] == str(dirty)
    assert region["region"] == {"startLine": 3, "startColumn": 1}


def test_fix_removes_the_later_copy_atomically_and_idempotently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    md = write(tmp_path, "a.md", f"Intro.\n\n{RULES_TEXT}\n\nMiddle.\n\n{RULES_TEXT}\n")
    other = RULES_TEXT.replace("JSON", "YAML")
    js = write(
        tmp_path,
        "b.json",
        json.dumps([{"role": "system", "content": f"{other}\n\nMore.\n\n{other}"}]),
    )
    code, out, _ = run(capsys, "--fix", str(md), str(js))
    assert code == 0, out
    assert md.read_text() == f"Intro.\n\n{RULES_TEXT}\n\nMiddle.\n"
    assert json.loads(js.read_text())[0]["content"] == f"{other}\n\nMore."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md", "b.json"]  # no temp files
    before = md.read_text()
    assert run(capsys, "--fix", str(md))[0] == 0
    assert md.read_text() == before


def test_fix_leaves_what_it_cannot_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a.md", f"{RULES_TEXT}\n")
    b = write(tmp_path, "b.md", f"{RULES_TEXT}\n")
    code, out, _ = run(capsys, "--fix", str(a), str(b))
    assert code == 1 and "CTX503" in out
    assert b.read_text() == f"{RULES_TEXT}\n"


def test_config_select_options_and_lint_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        tmp_path,
        "pyproject.toml",
        '[tool.ctxtax]\nselect = ["CTX501"]\n\n'
        '[tool.ctxtax.rules.CTX501]\nmax_tokens = 5\n\n[tool.ctxtax.lint]\nexclude = ["skip*"]\n',
    )
    write(tmp_path, "skip.md", LONG)
    keep = write(tmp_path, "keep.md", f"{RULES_TEXT}\n\n{RULES_TEXT}\n")
    code = main(["lint", "--config", str(tmp_path / "pyproject.toml"), str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1 and f"{keep}:1:1: CTX501" in out and "skip.md" not in out
    assert "CTX503" not in out
    write(tmp_path, "bad.toml", "[tool.ctxtax.lint]\nbogus = 1\n")
    bad = tmp_path / "pyproject.toml"
    bad.write_text("[tool.ctxtax.lint]\nbogus = 1\n")
    code = main(["lint", "--config", str(bad), str(keep)])
    assert code == 2 and "bogus" in capsys.readouterr().err


def test_every_template_rule_is_registered() -> None:
    assert {"CTX501", "CTX502", "CTX503"} <= set(all_rules())


# -- real tool lists -------------------------------------------------------------------------


def test_real_mcp_tool_lists(capsys: pytest.CaptureFixture[str]) -> None:
    snapshots = real("mcp-tool-snapshots")
    github = real("github-mcp-server", "tools_list.json")
    code, out, _ = run(capsys, "--select", "CTX2", str(snapshots), str(github))
    assert code == 1
    hits = [line for line in out.splitlines() if "CTX204" in line]
    assert hits and all(line.startswith(str(github)) for line in hits)
    path, line, col = hits[0].split(": ")[0].rsplit(":", 2)
    text = Path(path).read_text(encoding="utf-8").splitlines()[int(line) - 1]
    assert "projects_write" in text[int(col) - 1 :]
