"""``ctxtax lint --fix``: write the safe edits of fixable rules back into template files.

An edit replaces a range of a loaded text. It is written back where the text maps exactly onto
the file: a verbatim slice (text, Markdown, Jinja, .prompty sections) is replaced in place; a JSON
string literal is written again, JSON-escaped. YAML scalars are not rewritten (their quoting and
folding would change), so their findings stay reported.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ctxtax.lint.suppress import directives

if TYPE_CHECKING:
    from ctxtax.lint.engine import Placed
    from ctxtax.lint.loaders import TemplateFile


def _edit_text(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Apply non-overlapping ``(start, end, replacement)`` edits, last first."""
    floor = len(text) + 1
    for start, end, replacement in sorted(edits, reverse=True):
        if end <= floor:
            text = text[:start] + replacement + text[end:]
            floor = start
    return text


def apply_fixes(files: Sequence[TemplateFile], placed: Sequence[Placed]) -> int:
    """Write the safe, unsuppressed edits of `FIXABLE` rules; return how many were made."""
    from ctxtax._cli import _write_atomically
    from ctxtax.lint.engine import FIXABLE

    by_file: dict[int, dict[int, list[tuple[int, int, str]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    rules_of = {id(f): directives(f.source, f.noqa_codes) for f in files}
    for item in placed:
        code = item.finding.code
        if code not in FIXABLE or item.segment is None:
            continue
        if any(d.covers(code, item.line) for d in rules_of[id(item.file)]):
            continue
        for edit in item.finding.edits:
            loc = edit.loc
            if edit.safety != "safe" or edit.action != "replace_text":
                continue
            if loc.start is not None and loc.end is not None:
                by_file[id(item.file)][item.segment].append(
                    (loc.start, loc.end, edit.replacement or "")
                )
    made = 0
    for file in files:
        per_segment = by_file.get(id(file))
        if not per_segment:
            continue
        source = file.source
        for index in sorted(per_segment, key=lambda k: -file.segments[k].map.anchors[0][1]):
            seg = file.segments[index]
            new = _edit_text(seg.text, per_segment[index])
            if seg.map.kind == "verbatim":
                base = seg.map.anchors[0][1]
                if source[base : base + len(seg.text)] != seg.text:
                    continue
                source = source[:base] + new + source[base + len(seg.text) :]
            elif seg.map.kind == "json" and seg.map.literal is not None:
                lo, hi = seg.map.literal
                source = source[:lo] + json.dumps(new, ensure_ascii=False) + source[hi:]
            else:
                continue
            made += len(per_segment[index])
        if source != file.source:
            _write_atomically(file.path, source)
    return made


__all__ = ["apply_fixes"]
