"""The text tables and wrapping behind the human report, and the report they draw."""

from __future__ import annotations

import random
import re
import textwrap
from pathlib import Path

import pytest

from ctxtax import audit
from ctxtax._render import render_text
from ctxtax._report import Report
from ctxtax._text_table import BOLD, RED, Page, Table, cell_width, wrap
from tests.conftest import EXAMPLES

EXAMPLE = EXAMPLES / "sessions" / "coding-agent.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BOX = "┏┃┡│└"


def _kinds(title: str = "") -> Table:
    table = Table(title)
    table.add_column("kind")
    table.add_column("tokens", justify="right")
    return table


def _tables(text: str) -> list[list[str]]:
    """The box-drawn blocks of ``text``, each a list of its lines."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line[:1] == "┏":
            blocks.append([])
        if line[:1] in BOX:
            blocks[-1].append(line)
    return blocks


def test_small_table_exact() -> None:
    table = _kinds()
    table.add_row("text", "1,573")
    table.add_row("tool_result", "7")
    assert table.render() == (
        "┏━━━━━━━━━━━━━┳━━━━━━━━┓\n"
        "┃ kind        ┃ tokens ┃\n"
        "┡━━━━━━━━━━━━━╇━━━━━━━━┩\n"
        "│ text        │  1,573 │\n"
        "│ tool_result │      7 │\n"
        "└─────────────┴────────┘"
    )


def test_title_sits_left_above_the_table() -> None:
    table = _kinds("Tokens by part kind")
    table.add_row("tool_result", "1,573")
    lines = table.render().splitlines()
    assert lines[0] == "Tokens by part kind"
    assert lines[1].startswith("┏")
    # as rich does, a title wider than its table wraps to the table's width
    narrow = _kinds("Tokens by part kind")
    assert narrow.render().splitlines()[:3] == ["Tokens by part", "kind", "┏━━━━━━┳━━━━━━━━┓"]


def test_empty_table_is_the_header_only() -> None:
    assert _kinds().render() == (
        "┏━━━━━━┳━━━━━━━━┓\n┃ kind ┃ tokens ┃\n┡━━━━━━╇━━━━━━━━┩\n└──────┴────────┘"
    )


def test_long_cell_wraps_at_words_within_the_width() -> None:
    table = Table()
    table.add_column("code")
    table.add_column("n", justify="right")
    table.add_column("what")
    message = "tool 'write_file' is defined but never called: 77 schema tokens on each of 7 calls"
    table.add_row("CTX201", "77", message)
    lines = table.render(width=40).splitlines()
    assert all(cell_width(line) == 40 for line in lines)
    body = lines[3:-1]
    assert len(body) > 2
    assert body[0].startswith("│ CTX201 │ 77 │ ")
    assert all(line.startswith("│        │    │ ") for line in body[1:])  # the row's top line
    words = " ".join(line.split("│")[3].strip() for line in body)
    assert words == message  # broken only between words, nothing lost


def test_overlong_word_is_broken_not_lost() -> None:
    table = Table()
    table.add_column("id")
    table.add_row("x" * 50)
    lines = table.render(width=20).splitlines()
    assert all(cell_width(line) <= 20 for line in lines)
    assert "".join(line.strip("│ ") for line in lines[3:-1]) == "x" * 50


def test_header_wraps_bottom_aligned() -> None:
    table = Table()
    table.add_column("label")
    table.add_column("cache write", justify="right")
    table.add_row("a", "1")
    assert table.render(width=20) == (
        "┏━━━━━━━┳━━━━━━━━━━┓\n"
        "┃       ┃    cache ┃\n"
        "┃ label ┃    write ┃\n"
        "┡━━━━━━━╇━━━━━━━━━━┩\n"
        "│ a     │        1 │\n"
        "└───────┴──────────┘"
    )


def test_columns_shrink_widest_first_and_keep_numbers() -> None:
    table = Table()
    table.add_column("what")
    table.add_column("tokens", justify="right")
    table.add_row("word " * 30, "12,345")
    lines = table.render(width=30).splitlines()
    assert all(cell_width(line) == 30 for line in lines)
    assert "│ 12,345 │" in lines[3]


def test_column_widths_match_rich() -> None:
    # rich first caps each column at the available width, so two over-wide columns count as
    # equally wide and the first gets the odd cell; this is rich's output at width 60
    table = Table()
    for header in ("code", "where", "tokens", "calls", "what"):
        table.add_column(header)
    where = "2024-08-09 10:05:35: message 2, part 0, chars 35204-48746"
    what = "exact repeated span of earlier text of the same part (4,667 tokens)"
    table.add_row("CTX101", where, "4,667", "2", what)
    lines = table.render(width=60).splitlines()
    assert lines[0] == "┏" + "┳".join("━" * w for w in (8, 16, 8, 7, 15)) + "┓"
    assert lines[3] == "│ CTX101 │ 2024-08-09     │ 4,667  │ 2     │ exact         │"


def test_wide_characters_align() -> None:
    table = _kinds("幅の広い文字")
    table.add_row("日本語のテキスト", "12")
    table.add_row("e\u0301 cafe\u0301 zero\u200bwidth", "3")
    table.add_row("ascii", "4")
    table.add_row("とても長い日本語の文章がここに続きますとても長い日本語の文章", "5")
    lines = table.render(width=30).splitlines()
    assert lines[0] == "幅の広い文字"
    widths = {cell_width(line) for line in lines[1:]}
    assert len(widths) == 1 and widths.pop() <= 30


def test_cell_width() -> None:
    assert cell_width("abc") == 3
    assert cell_width("日本") == 4
    assert cell_width("ｆｕｌｌ") == 8  # fullwidth forms
    assert cell_width("e\u0301") == 1  # combining acute accent
    assert cell_width("a\u200bb") == 2  # zero-width space
    assert cell_width("") == 0


def test_wrap_matches_textwrap_on_plain_words() -> None:
    rng = random.Random(7)
    for _ in range(200):
        words = ["".join("abc-"[rng.randrange(4)] for _ in range(rng.randint(1, 9)))]
        words += [
            "".join("xyz"[rng.randrange(3)] for _ in range(rng.randint(1, 9))) for _ in range(30)
        ]
        text = " ".join(words)
        width = rng.randint(10, 40)
        assert wrap(text, width) == textwrap.wrap(text, width, break_on_hyphens=False)


def test_wrap_keeps_newlines_and_drops_control_characters() -> None:
    assert wrap("one\ntwo", 80) == ["one", "two"]
    assert wrap("a\x1b[31mred\x07", 80) == ["a[31mred"]
    assert wrap("\tx", 80) == [" " * 8 + "x"]


def test_no_escape_codes_without_color() -> None:
    table = _kinds("title")
    table.add_row("text", "1")
    page = Page(width=40)
    page.print(("bold", BOLD), " and ", ("red", RED))
    page.table(table)
    assert "\x1b" not in page.text()
    assert page.text().startswith("bold and red\ntitle\n┏")


def test_color_adds_sgr_codes() -> None:
    table = _kinds()
    table.add_row("text", "1")
    page = Page(width=40, color=True)
    page.print(("bold", BOLD), " and ", ("red", RED))
    page.table(table)
    out = page.text()
    assert out.startswith("\x1b[1mbold\x1b[0m and \x1b[31mred\x1b[0m\n")
    assert "┃\x1b[1m kind \x1b[0m┃" in out  # headers are bold
    assert "│ text │" in out  # cells are not
    plain = Page(width=40)
    plain.print("bold and red")
    plain.table(table)
    assert ANSI.sub("", out) == plain.text()


def test_styles_survive_wrapping() -> None:
    page = Page(width=12, color=True)
    page.print(("alpha beta gamma", BOLD), " delta")
    assert page.lines == ["\x1b[1malpha beta\x1b[0m", "\x1b[1mgamma\x1b[0m delta"]


@pytest.fixture(scope="module")
def example_report() -> Report:
    return audit(str(EXAMPLE))


@pytest.mark.parametrize("width", [100, 60])
def test_example_report(example_report: Report, width: int) -> None:
    text = render_text(example_report, width=width)
    assert "\x1b" not in text
    lines = text.splitlines()
    assert all(cell_width(line) <= width for line in lines)
    assert all(line == line.rstrip() for line in lines)
    assert "Tokens by part kind" in text and "Waste by rule" in text
    codes = {f.code for f in example_report.findings}
    assert codes
    for code in codes:
        assert code in text
    tables = _tables(text)
    assert len(tables) >= 5
    for block in tables:
        assert block[-1].startswith("└")
        assert len({cell_width(line) for line in block}) == 1
    colored = render_text(example_report, width=width, color=True)
    assert "\x1b[1m" in colored
    assert ANSI.sub("", colored) == text


def test_error_findings_are_red(tmp_path: Path) -> None:
    path = tmp_path / "orphan.json"
    path.write_text(
        '[{"role": "user", "content": "hi"},'
        ' {"role": "tool", "tool_call_id": "call_gone", "content": "result"},'
        ' {"role": "assistant", "content": "ok"}]'
    )
    report = audit(str(path), strict=False)
    plain = render_text(report)
    assert "1 error(s): the provider would reject it" in plain
    assert "  CTX901 message 1" in plain
    colored = render_text(report, color=True)
    assert "\x1b[1;31m1 error(s)\x1b[0m" in colored
    assert "  \x1b[31mCTX901\x1b[0m message 1" in colored
