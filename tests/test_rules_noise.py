"""The noise rules (CTX401-CTX404) and their text cleaning, checked against independent models.

The terminal is checked against a character-by-character model written here (not the rule's
regex tokenizer); repeated runs against a brute-force search; the real sessions against counts
and decodings computed in the test, never numbers copied from the rule's output.
"""

from __future__ import annotations

import base64
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ctxtax
from ctxtax._tokens import default_counter
from ctxtax.rules._terminal import (
    changed_lines,
    collapse_whitespace,
    find_blobs,
    progress_key,
    progress_runs,
    render,
    repeated_runs,
    sniff_media_type,
    whitespace_bound,
)
from tests.conftest import real, real_files

COUNTER = default_counter()
NOISE = ["CTX401", "CTX402", "CTX403", "CTX404"]


# ---------------------------------------------------------------------------------------------
# An independent terminal: one row per line, read one character at a time.


def _apply_csi(cells: list[str], col: int, params: str, final: str) -> int:
    fields = params.split(";")
    n = int(fields[0]) if fields[0].isdigit() and int(fields[0]) > 0 else 1
    if final == "K":
        mode = int(fields[0]) if fields[0].isdigit() else 0
        if mode == 0:
            del cells[col:]
        elif mode == 1:
            for k in range(min(col + 1, len(cells))):
                cells[k] = " "
        else:
            cells.clear()
    elif final == "G":
        col = n - 1
    elif final == "C":
        col += n
    elif final == "D":
        col = max(0, col - n)
    return col


def reference_line(line: str) -> str:
    """What a terminal shows for one line without cursor moves between rows."""
    cells: list[str] = []
    col = 0
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\x1b" and line[i + 1 : i + 2] == "[":
            j = i + 2
            while j < len(line) and "0" <= line[j] <= "?":
                j += 1
            params = line[i + 2 : j]
            while j < len(line) and " " <= line[j] <= "/":
                j += 1
            if j < len(line) and not params.startswith("?"):
                col = _apply_csi(cells, col, params, line[j])
            i = j + 1
        elif ch == "\x1b" and line[i + 1 : i + 2] == "]":
            j = i + 2
            while j < len(line) and line[j] not in "\x07\x1b":
                j += 1
            i = j + (2 if line[j : j + 1] == "\x1b" else 1)
        elif ch == "\x1b":
            i += 2
        else:
            if ch == "\r":
                col = 0
            elif ch == "\x08":
                col = max(0, col - 1)
            elif ch not in "\x07\x0e\x0f":
                while len(cells) < col:
                    cells.append(" ")
                if col < len(cells):
                    cells[col] = ch
                else:
                    cells.append(ch)
                col += 1
            i += 1
    return "".join(cells)


def reference_render(text: str) -> str:
    """The test's own terminal: ``\\r\\n`` ends a line and is kept, each line is replayed."""
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        crlf = i < len(lines) - 1 and line.endswith("\r")
        body = reference_line(line[:-1] if crlf else line)
        out.append(body + ("\r" if crlf else ""))
    return "\n".join(out)


_VERTICAL = re.compile(r"\x1b\[[0-9;]*[AFJsu]|\x1b[78M]")


# ---------------------------------------------------------------------------------------------
# Rendering


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mERROR\x1b[0m: disk full", "ERROR: disk full"),
        ("abc\rXY", "XYc"),
        ("Downloading  10%\rDownloading  55%\rDownloading 100%", "Downloading 100%"),
        ("Downloading 100%\rDone", "Doneloading 100%"),
        ("Downloading 100%\r\x1b[KDone", "Done"),
        ("working -\b\\\b|\b/\b done", "working  done"),
        ("line one\r\nline two\r\n", "line one\r\nline two\r\n"),
        ("\x1b]0;build - make\x07make: Nothing to be done.", "make: Nothing to be done."),
        ("\x1b]8;;https://example.com\x1b\\docs\x1b]8;;\x1b\\ updated", "docs updated"),
        (
            "\x1b[?25l\x1b[2K\x1b[1G? Proceed? \x1b[2K\x1b[1G✔ Proceed? yes\x1b[?25h",
            "✔ Proceed? yes",
        ),
        ("col\x1b[5Gx", "col x"),
        ("tail\x1b", "tail"),
        ("", ""),
        ("plain text, no controls", "plain text, no controls"),
    ],
)
def test_render_shows_what_a_terminal_shows(raw: str, shown: str) -> None:
    assert render(raw) == shown
    assert reference_render(raw) == shown


def test_cursor_up_redraws_earlier_rows() -> None:
    raw = (
        "a1b2: Downloading  10%\nc3d4: Waiting\n"
        "\x1b[2A\x1b[2Ka1b2: Pull complete\n\x1b[2Kc3d4: Pull complete\n"
    )
    assert render(raw) == "a1b2: Pull complete\nc3d4: Pull complete\n"


def test_render_agrees_with_the_reference_terminal_on_random_input() -> None:
    pieces = [
        "a", "b", "xyz", " ", "  ", "\r", "\b", "\n", "\r\n", "\x07", "é", "█",
        "\x1b[31m", "\x1b[0m", "\x1b[1;32m", "\x1b[K", "\x1b[1K", "\x1b[2K", "\x1b[3G", "\x1b[G",
        "\x1b[2C", "\x1b[D", "\x1b]0;title\x07", "\x1b[?25l",
    ]  # fmt: skip
    rng = random.Random(4)
    for _ in range(2000):
        raw = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        assert render(raw) == reference_render(raw), repr(raw)


def test_render_is_idempotent() -> None:
    rng = random.Random(8)
    pieces = [
        "ab",
        " ",
        "\r",
        "\b",
        "\n",
        "\r\n",
        "\x1b[31m",
        "\x1b[K",
        "\x1b[2A",
        "\x1b7",
        "\x1b8",
    ]
    for _ in range(500):
        raw = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))
        assert render(render(raw)) == render(raw), repr(raw)


def test_safe_terminal_edits_keep_what_the_terminal_shows() -> None:
    lines = []
    for i in range(30):
        lines.append(f"\x1b[1m\x1b[32mPASSED\x1b[0m tests/test_{i}.py::test_{i}")
        lines.append(f"download {i}:  10%\rdownload {i}:  60%\rdownload {i}: 100%")
        lines.append("plain line without controls")
        lines.append("working -\b\\\b|\b/\b done\x07")
    text = "\n".join(lines)
    report = ctxtax.audit(
        _tool_output(text),
        model="gpt-4o",
        select=["CTX401"],
        rule_options={"CTX401": {"min_tokens": 1}},
    )
    edits = sorted((e for f in report.findings for e in f.edits), key=lambda e: -(e.loc.start or 0))
    assert edits and all(e.safety == "safe" for e in edits)
    after = text
    for edit in edits:
        assert edit.loc.start is not None and edit.loc.end is not None
        assert edit.replacement == reference_render(text[edit.loc.start : edit.loc.end])
        after = after[: edit.loc.start] + (edit.replacement or "") + after[edit.loc.end :]
    assert after == reference_render(text)
    assert not re.search(r"[\x1b\r\x08\x07]", after)


def test_render_never_raises_and_stays_bounded() -> None:
    odd = [
        "\x1b[999999999C|",
        "\x1b[999999999A\x1b[99999999Bx",
        "\x1b" * 1000,
        "\x1b[" * 1000,
        "\r" * 100_000 + "done",
        "\x08" * 10_000,
        "\x1b]never terminated " * 100,
        "\x9b31mred\x9b0m",
        "".join(chr(c) for c in range(0x20)) * 10,
        "\ud800 lone surrogate \x1b[1m",
    ]
    for raw in odd:
        shown = render(raw)
        assert len(shown) <= len(raw) + 2 * 1000 + 10


# ---------------------------------------------------------------------------------------------
# Progress frames


@pytest.mark.parametrize(
    ("line", "is_frame"),
    [
        (" 45%|████▌     | 23/51 [00:01<00:01, 20.1it/s]", True),
        ("model.bin:  99%|█████████▉| 1.98G/2.00G [00:41<00:00, 48.2MB/s]", True),
        ("   ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 12.3/12.3 MB 9.8 MB/s eta 0:00:00", True),
        ("Receiving objects:  45% (123/270), 1.20 MiB | 2.01 MiB/s", True),
        ("Progress: resolved 259, reused 90, downloaded 110, added 0", True),
        ("a3f9e2c1d0b4: Downloading [=====>                ]  12.5MB/50.1MB", True),
        ("⠙ Installing dependencies (4s)", True),
        ("- Benchmarked at 61.7% on Exercism (see 2024/03/08 results).", False),
        ("Coverage: 97%", False),
        ("printf('%d%%', n)", False),
    ],
)
def test_progress_key_knows_a_frame(line: str, is_frame: bool) -> None:
    assert (progress_key(line) is not None) == is_frame


def test_progress_runs_group_frames_of_one_bar() -> None:
    text = "\n".join(
        [
            "Fetching",
            "  0%|          | 0/51 [00:00<?, ?it/s]",
            " 27%|██▋       | 14/51 [00:00<00:00, 45.1it/s]",
            "100%|██████████| 51/51 [00:01<00:00, 49.9it/s]",
            "  0%|          | 0/9 [00:00<?, ?it/s]",
            "100%|██████████| 9/9 [00:00<00:00, 90.0it/s]",
            "done",
        ]
    )
    runs = progress_runs(text)
    assert [(r.first, r.last) for r in runs] == [(1, 3), (4, 5)]  # another total, another bar


# ---------------------------------------------------------------------------------------------
# Repeated lines


def brute_force_runs(lines: list[str], min_repeats: int, max_period: int) -> set[tuple[int, int]]:
    """Every (start, period) where a block repeats at least ``min_repeats`` times in a row."""
    found = set()
    for period in range(1, max_period + 1):
        for start in range(len(lines)):
            block = lines[start : start + period]
            if len(block) < period:
                continue
            copies = 1
            while lines[start + copies * period : start + (copies + 1) * period] == block:
                copies += 1
            if copies >= min_repeats:
                found.add((start, period))
    return found


def test_repeated_runs_match_a_brute_force_search() -> None:
    rng = random.Random(7)
    for _ in range(300):
        alphabet = ["warn a", "warn b", "info c"][: rng.randint(1, 3)]
        lines = [rng.choice(alphabet) for _ in range(rng.randint(0, 40))]
        runs = repeated_runs("\n".join(lines), min_repeats=4, fold=False)
        truth = brute_force_runs(lines, 4, 4)
        covered: set[int] = set()
        for run in runs:
            assert run.exact
            assert (run.first, run.period) in truth
            block = lines[run.first : run.first + run.period]
            assert lines[run.first : run.end] == block * run.copies
            assert not covered & set(range(run.first, run.end))
            covered |= set(range(run.first, run.end))
        # No run of four copies is left wholly unreported.
        for start, period in truth:
            assert covered & set(range(start, start + 4 * period)), (lines, start, period)


def test_folded_runs_need_letters_and_keep_exact_runs_exact() -> None:
    log = "\n".join(
        ["boot"]
        + ["WARN cache miss"] * 6
        + [f"GET /api/items/{i} 200 {3 + i % 4}ms" for i in range(7)]
        + [f"{i}, {i * 2}, {i * 3}" for i in range(9)]
    )
    runs = repeated_runs(log, min_repeats=5)
    assert [(r.first, r.copies, r.exact) for r in runs] == [(1, 6, True), (7, 7, False)]


# ---------------------------------------------------------------------------------------------
# Inline binary


def _b64(n: int, head: bytes = b"") -> str:
    data = head + bytes(random.Random(n).getrandbits(8) for _ in range(n))
    return base64.b64encode(data).decode()


def test_wrapped_base64_is_one_blob_and_offsets_survive_unicode() -> None:
    blob = _b64(1500, b"%PDF-1.7\n")
    wrapped = "\n".join(blob[i : i + 76] for i in range(0, len(blob), 76))
    text = "Résumé → attached ✓\n-----BEGIN DATA-----\n" + wrapped + "\n-----END DATA-----"
    blobs = find_blobs(text, 1000)
    assert len(blobs) == 1
    found = blobs[0]
    assert text[found.start : found.end] == wrapped
    assert found.media_type == "application/pdf"


@pytest.mark.parametrize(
    ("head", "media_type"),
    [
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"GIF89a", "image/gif"),
        (b"\x00\x00\x00\x18ftypisom", "video/mp4"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b\x08\x00", "application/gzip"),
        (b"hello", None),
    ],
)
def test_media_types_are_sniffed_from_the_first_bytes(head: bytes, media_type: str | None) -> None:
    assert sniff_media_type(base64.b64encode(head + b"\x00" * 30).decode()) == media_type


def test_garbage_bytes_are_a_blob_but_prose_is_not() -> None:
    rng = random.Random(3)
    garbage = bytes(rng.getrandbits(8) for _ in range(3000)).decode("utf-8", "replace")
    text = "$ cat firmware.bin\n" + garbage + "\n$ "
    kinds = {b.kind for b in find_blobs(text, 1000)}
    assert "binary" in kinds
    prose = "The quick brown fox jumps over the lazy dog. " * 200
    assert find_blobs(prose, 1000) == []
    assert find_blobs("A" * 5000, 1000) == []  # one long word is not base64
    assert find_blobs("x" * 5000, 1000) == []


# ---------------------------------------------------------------------------------------------
# Whitespace


def test_collapse_whitespace_keeps_indentation_and_diffs() -> None:
    code = "def f():  \n    if x:\t\n        return 1\n\n\n\n\n    return 2\r\n"
    assert collapse_whitespace(code) == "def f():\n    if x:\n        return 1\n\n    return 2\n"
    diff = "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a = 1\n \n-b = 2\n+b = 3\n"
    assert collapse_whitespace(diff) == diff


def test_collapse_whitespace_is_idempotent() -> None:
    rng = random.Random(12)
    for _ in range(500):
        text = "".join(rng.choice(["a", " ", "\t", "\n", "\r\n", "\r", "x y"]) for _ in range(30))
        once = collapse_whitespace(text)
        assert collapse_whitespace(once) == once, repr(text)


def test_changed_lines_locate_exactly_what_changed() -> None:
    rng = random.Random(11)
    for _ in range(500):
        lines = [rng.choice(["a", "b  ", "", " ", "c\t", "dd"]) for _ in range(rng.randint(0, 12))]
        text = rng.choice(["\n", "\r\n"]).join(lines)
        after = collapse_whitespace(text)
        changed = changed_lines(text, after)
        if changed is None:
            assert after == text
            continue
        start, end, after_end = changed
        assert text[:start] + after[start:after_end] + text[end:] == after
        assert start == 0 or text[start - 1] == "\n"
        assert end == len(text) or text[end - 1] == "\n"


# ---------------------------------------------------------------------------------------------
# The rules on odd input


def _tool_output(text: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": text},
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\x1b",
        "\r\n" * 5000,
        "\n" * 100_000,
        "same line\n" * 50_000,
        "A" * 1_000_000,
        " " * 200_000 + "x",
        "a" + " " * 200_000,
        "".join(chr(c) for c in range(1, 0x250)) * 200,
        bytes(random.Random(1).getrandbits(8) for _ in range(200_000)).decode("latin-1"),
    ],
    ids=lambda t: f"{len(t)}-chars",
)
def test_the_rules_never_raise_on_odd_text(text: str) -> None:
    started = time.perf_counter()
    report = ctxtax.audit(_tool_output(text), model="gpt-4o", select=NOISE)
    assert time.perf_counter() - started < 20
    for finding in report.findings:
        assert finding.tokens > 0
        loc = finding.loc
        assert loc.start is not None and loc.end is not None
        assert 0 <= loc.start <= loc.end <= len(text)


def test_a_noisy_corpus_is_audited_quickly() -> None:
    rng = random.Random(5)
    chunks = []
    for i in range(4000):
        chunks.append(f"\x1b[32mPASSED\x1b[0m tests/test_{i}.py::test_case_{i}\n")
        chunks.append(f"step {i}/4000 loss={rng.random():.4f}\n")
        chunks.append("Lorem ipsum dolor sit amet, consectetur adipiscing elit.  \n" * 3)
    text = "".join(chunks)
    messages = _tool_output(text)
    ctxtax.audit(messages, model="gpt-4o", select=[])  # tokenize once
    started = time.perf_counter()
    ctxtax.audit(messages, model="gpt-4o", select=NOISE)
    assert time.perf_counter() - started < 10


# ---------------------------------------------------------------------------------------------
# Real sessions


def _findings(path: Path, code: str, **options: Any) -> Iterator[tuple[ctxtax.Context, Any]]:
    """(context, finding) of ``code`` in every conversation of ``path``."""
    for ctx in ctxtax.load_all(path):
        report = ctxtax.audit(
            ctx, select=[code], strict=False, rule_options={code: options} if options else None
        )
        for finding in report.findings:
            yield ctx, finding


def _span(ctx: ctxtax.Context, finding: Any) -> tuple[str, str]:
    text = ctx.messages[finding.loc.message].parts[finding.loc.part].text
    return text, text[finding.loc.start : finding.loc.end]


def test_coloured_vitest_output_is_rendered() -> None:
    path = real("claude-code-spotter", "8463c716-a2ea-4c14-9efa-87158ebd9f20.jsonl")
    hits = [(c, f) for c, f in _findings(path, "CTX401") if " RUN " in f.edits[0].replacement]
    assert hits
    ctx, finding = hits[0]
    _, before = _span(ctx, finding)
    shown = reference_render(before)
    assert finding.edits[0].replacement == shown
    assert "\x1b" not in shown and "RUN  v4.0.18" in shown
    assert finding.tokens == COUNTER.count(before) - COUNTER.count(shown)
    assert finding.evidence["escape_sequences"] == len(
        re.findall(r"\x1b\[[0-9;?]*[A-Za-z]", before)
    )
    assert finding.edits[0].safety == "safe"


def test_prompt_redraws_keep_only_the_answered_state() -> None:
    path = real("claude-code-viewer", "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl")
    shown = [f.edits[0].replacement for _, f in _findings(path, "CTX401") if f.edits]
    turbopack = [s for s in shown if "Turbopack" in s]
    assert turbopack
    assert "✔ Would you like to use Turbopack? (recommended) … No / Yes" in turbopack[0]
    assert "? Would you like to use Turbopack?" not in turbopack[0]  # erased by ESC[2K ESC[1G


def test_pnpm_progress_lines_keep_the_last_frame() -> None:
    path = real("claude-code-viewer", "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl")
    frames = [(c, f) for c, f in _findings(path, "CTX401") if "frames" in f.evidence]
    assert frames
    ctx, finding = frames[0]
    text, removed = _span(ctx, finding)
    lines = text.split("\n")
    first = next(i for i, line in enumerate(lines) if line.startswith("Progress: resolved"))
    last = first
    while last + 1 < len(lines) and lines[last + 1].startswith("Progress: resolved"):
        last += 1
    assert finding.evidence["frames"] == last - first + 1
    assert finding.evidence["kept"] == lines[last]
    assert removed == "\n".join(lines[first:last])
    assert finding.edits[0].safety == "unsafe"


def test_pip_backspace_spinner_collapses() -> None:
    path = real(
        "swe-agent",
        "demonstrations",
        "replay__marshmallow-code__marshmallow-1867__function_calling_replace_from_source",
        "marshmallow-code__marshmallow-1867.traj",
    )
    hits = list(_findings(path, "CTX401"))
    assert hits
    ctx, finding = hits[0]
    _, before = _span(ctx, finding)
    assert before.count("\x08") == finding.evidence["redraws"]
    assert "  Installing build dependencies ... done\r\n" in finding.edits[0].replacement
    assert "\x08" not in finding.edits[0].replacement


def test_a_model_stuck_in_a_loop_is_one_exact_run() -> None:
    path = real("mini-swe-agent-gemini3", "scikit-learn__scikit-learn-25102.traj.json")
    exact = [(c, f) for c, f in _findings(path, "CTX402") if f.evidence["exact"]]
    assert exact
    ctx, finding = max(exact, key=lambda cf: cf[1].tokens)
    text, _ = _span(ctx, finding)
    lines = text.split("\n")
    first = finding.evidence["first_line"] - 1
    period = finding.evidence["lines_per_copy"]
    block = lines[first : first + period]
    copies = 1
    while lines[first + copies * period : first + (copies + 1) * period] == block:
        copies += 1
    assert finding.evidence["repeats"] == copies > 1000
    assert finding.edits[0].replacement == (
        f"[ctxtax: the {period} lines above repeated {copies - 1:,} more times]"
    )
    assert finding.edits[0].safety == "safe"
    assert ctx.messages[finding.loc.message].role == "assistant"


def test_a_counter_loop_folds_numbers() -> None:
    path = real("swe-agent", "demonstrations", "ctf", "rev", "rock.traj")
    hits = list(_findings(path, "CTX402"))
    assert len(hits) == 1
    ctx, finding = hits[0]
    text, _ = _span(ctx, finding)
    passes = re.findall(r"(?m)^Pass \d+$", text)
    assert finding.evidence["repeats"] == len(passes)
    assert not finding.evidence["exact"] and finding.edits[0].safety == "unsafe"


def test_inline_images_in_tool_results_are_found_and_decoded() -> None:
    path = real("livemcpbench", "baseline_output_claude-sonnet-4.json")
    hits = list(_findings(path, "CTX403"))
    assert len(hits) >= 4
    magic = {"image/jpeg": b"\xff\xd8", "image/png": b"\x89PNG"}
    for ctx, finding in hits:
        _, blob = _span(ctx, finding)
        media_type = finding.evidence["media_type"]
        body = re.sub(r"[^A-Za-z0-9+/]", "", blob)
        decoded = base64.b64decode(body[: len(body) // 4 * 4])
        assert decoded.startswith(magic[media_type])
        # Saved: the tokens of the message's own tokenization that lie wholly inside the blob.
        text = ctx.messages[finding.loc.message].parts[finding.loc.part].text
        inside = _tokens_inside(text, finding.loc.start, finding.loc.end)
        assert finding.tokens == inside - COUNTER.count(finding.edits[0].replacement)
        assert abs(inside - COUNTER.count(blob)) <= 2  # the blob alone tokenizes about the same


def _tokens_inside(text: str, start: int, end: int) -> int:
    """Tokens of ``text`` (tokenized whole) that lie wholly within characters start-end."""
    ids = COUNTER.encode(text)
    sizes = COUNTER.token_byte_lengths()[ids]
    char_of_byte = np.repeat(np.arange(len(text)), [len(c.encode()) for c in text])
    ends = np.cumsum(sizes)
    first_char = char_of_byte[ends - sizes]
    past_char = char_of_byte[ends - 1] + 1
    return int(np.count_nonzero((first_char >= start) & (past_char <= end)))


def test_trailing_blanks_in_a_pytest_log() -> None:
    path = real("aider", "chat-history.part1.md")
    hits = list(_findings(path, "CTX404"))
    assert hits
    for ctx, finding in hits:
        _, before = _span(ctx, finding)
        stripped = re.sub(r"[ \t]+$", "", before, flags=re.M)
        assert finding.edits[0].replacement == stripped
        assert finding.evidence["trailing"] == len(re.findall(r"[ \t]+$", before, flags=re.M))


def test_assistant_flight_lists_are_not_repeated_lines() -> None:
    path = real("tau-bench", "gpt-4o-airline.json")
    assert not list(_findings(path, "CTX402"))


def _noise_parts() -> Iterator[tuple[Path, ctxtax.Context, int, int, str]]:
    for path in real_files():
        for ctx in ctxtax.load_all(path):
            for m, message in enumerate(ctx.messages):
                for p, part in enumerate(message.parts):
                    if part.kind in ("text", "tool_result") and part.text:
                        yield path, ctx, m, p, part.text


def test_whitespace_bound_holds_on_the_real_sessions() -> None:
    real("aider")
    checked = 0
    for _, _, _, _, text in _noise_parts():
        after = collapse_whitespace(text)
        if after != text:
            checked += 1
            assert COUNTER.count(text) - COUNTER.count(after) <= whitespace_bound(text)
    assert checked > 100


def test_safe_edits_keep_every_visible_character_on_the_real_sessions() -> None:
    real("aider")
    checked: dict[str, int] = {}
    for path in real_files():
        for ctx in ctxtax.load_all(path):
            report = ctxtax.audit(
                ctx,
                select=NOISE,
                strict=False,
                rule_options={"CTX401": {"min_tokens": 1}, "CTX404": {"min_tokens": 1}},
            )
            for finding in report.findings:
                for edit in finding.edits:
                    if edit.safety != "safe":
                        continue
                    text, before = _span(ctx, finding)
                    after = text[: edit.loc.start] + edit.replacement + text[edit.loc.end :]
                    if finding.code == "CTX401" and not _VERTICAL.search(text):
                        assert edit.replacement == reference_render(before)
                        assert reference_render(after) == reference_render(text)
                    elif finding.code == "CTX402":
                        assert _expand(text[: edit.loc.start], edit.replacement) == before
                    elif finding.code == "CTX404":
                        assert re.sub(r"\s", "", after) == re.sub(r"\s", "", text)
                    checked[finding.code] = checked.get(finding.code, 0) + 1
    assert checked.get("CTX401", 0) > 10 and checked.get("CTX404", 0) > 10
    assert checked.get("CTX402", 0) >= 1


def _expand(head: str, marker: str) -> str:
    """The lines an exact-repeat marker stands for: the copy just above it, N more times."""
    match = re.fullmatch(
        r"\[ctxtax: the (?:line|(\d+) lines) above repeated ([\d,]+) more times\]", marker
    )
    assert match, marker
    period = int(match.group(1) or 1)
    copies = int(match.group(2).replace(",", ""))
    assert head.endswith("\n")
    block = head[:-1].split("\n")[-period:]
    return "\n".join(block * copies)


def test_locations_map_characters_to_the_tokens_that_hold_them() -> None:
    path = real("claude-code-viewer", "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl")
    seen = 0
    for ctx, finding in _findings(path, "CTX401"):
        text, _ = _span(ctx, finding)
        ids = [int(i) for i in COUNTER.encode(text)]
        loc = finding.loc
        before, first, last, after = (
            len(COUNTER.decode(ids[:n]))
            for n in (loc.token_start, loc.token_start + 1, loc.token_end - 1, loc.token_end)
        )
        assert before <= loc.start < first
        assert last < loc.end <= after
        seen += 1
    assert seen
