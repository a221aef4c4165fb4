"""Quality of the duplication rules (CTX101-CTX104) on real sessions with planted duplicates.

Known duplicates are planted into real contexts from ``../shared/data/real`` by APPENDING new
messages (earlier indexes never shift), in the context's own shape (an assistant tool call and
its result for tool-calling contexts; an assistant text and a user observation for text-only
agent logs such as mini-swe-agent). Three kinds, from a seeded RNG:

- ``a`` whole tool output repeated: a copy of an earlier tool output (>= 64 tokens) as a new
  tool output. Truth: the whole part.
- ``b`` span pasted: 60-400 tokens of an earlier block inside a new user message, between fresh
  text (random words from a fixed vocabulary, which appears nowhere in the data). Truth: the
  pasted span's tokens, +-2 tokens at each edge not scored.
- ``c`` near copy: an earlier tool output of >= 20 lines with 2-5 % of its lines edited (words
  replaced by fresh words). Truth: the tokens of the unedited lines; the replaced words are not
  copies; the rest of an edited line is not scored (its tokens are copies, its line is not).

Detected: the union of the token ranges (``Loc.token_start`` / ``token_end``) of CTX101-CTX104
findings on the planted messages. Recall = |truth & detected| / |truth|, precision =
|truth & detected| / |detected|, both in tokens, over the planted messages only (the unscored
tokens left out of both). ``c/spans`` measures CTX102 by its exact spans (its edits) instead of
its location (the whole block). Findings outside the planted messages are compared with the
unplanted session's.

    python benches/eval_duplicates.py                 # the table
    python benches/eval_duplicates.py --eyeball 8     # plus the top findings of the real sessions
    python benches/eval_duplicates.py --seed 7 --plants 6 --folder tau-bench
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

import ctxtax
from ctxtax import Call, Context, Finding, Message, Part

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
CODES = ("CTX101", "CTX102", "CTX103", "CTX104")
KINDS = ("a", "b", "c")
KIND_NAMES = {"a": "whole output", "b": "pasted span", "c": "near copy"}
EDGE = 2  # tokens at each edge of a planted span that are not scored
MAX_SOURCE_TOKENS = 16_000  # larger outputs exist (one of 435k tokens) but would swamp the sums

# Words for fresh text: joined at random they make text that appears nowhere in the data.
_VOCAB_TEXT = """
    amber anchor apricot arbor aspen atlas autumn badger basil beacon birch bison blossom bramble
    breeze brook bronze cactus canyon cedar chestnut cinder clover cobalt comet copper coral
    cricket crimson cypress dahlia delta dune eagle ember falcon fennel fern fjord flint garnet
    gecko ginger glacier granite gravel harbor hazel heron hickory horizon indigo iris ivory jade
    jasmine juniper kelp kestrel lagoon lantern larch lavender lemon lichen lilac linen lotus
    lynx magnolia maple marble marsh meadow mesa mint moss nectar nutmeg oasis obsidian ocher
    olive onyx orchid osprey otter pebble pepper pine plume poppy prairie quartz quill raven reed
    ridge river robin saffron sage salmon sandstone sapphire sequoia shale sierra slate sparrow
    spruce summit sunset swallow tamarind teal thicket thistle thunder tidal timber topaz tulip
    tundra umber valley velvet violet walnut willow wren yarrow zephyr zinnia
"""
VOCAB = tuple(_VOCAB_TEXT.split())
_WORD = re.compile(r"[A-Za-z_]{3,}")


# -- sessions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """One real conversation to plant into."""

    folder: str
    name: str
    context: Context


def _has_output(ctx: Context, min_tokens: int, counter: ctxtax.TiktokenCounter) -> bool:
    return any(counter.count(text) >= min_tokens for _, _, text in tool_outputs(ctx))


def load_sessions(
    folders: Sequence[str] | None = None,
    *,
    sample: int = 10,
    seed: int = 0,
    counter: ctxtax.TiktokenCounter | None = None,
) -> list[Session]:
    """A varied set of real conversations, ``sample`` at most from a multi-conversation file."""
    counter = counter or ctxtax.TiktokenCounter("cl100k_base")
    wanted = {
        "mini-swe-agent-gemini3": "*.traj.json",
        "claude-code-spotter": "*.jsonl",
        "claude-code-viewer": "*.jsonl",
        "openhands": "**/*.json*",
        "swe-agent": "**/*.traj",
        "tau-bench": "*.json",
        "livemcpbench": "baseline_output_*.json",
    }
    out: list[Session] = []
    for folder, pattern in wanted.items():
        if folders and folder not in folders:
            continue
        for path in sorted((REAL / folder).glob(pattern)):
            contexts = [c for c in ctxtax.load_all(path) if _has_output(c, 64, counter)]
            if len(contexts) > sample:
                rng = random.Random(f"{seed}:{path.name}")
                picked = sorted(rng.sample(range(len(contexts)), sample))
                contexts = [contexts[i] for i in picked]
            for i, ctx in enumerate(contexts):
                suffix = f"#{i}" if len(contexts) > 1 else ""
                out.append(Session(folder, str(path.relative_to(REAL / folder)) + suffix, ctx))
    return out


# -- planting --------------------------------------------------------------------------------


@dataclass
class Planted:
    """One plant: the messages it appended and, per planted part, the truth and unscored masks."""

    kind: str
    source: tuple[int, int]
    messages: list[int]
    truth: dict[tuple[int, int], npt.NDArray[np.bool_]] = field(default_factory=dict)
    unscored: dict[tuple[int, int], npt.NDArray[np.bool_]] = field(default_factory=dict)


def window_start(ctx: Context) -> int:
    """The first message the last recorded call could see (after a compaction, the summary)."""
    if not ctx.calls:
        return 0
    return max(0, ctx.calls[-1].start)


def tool_outputs(ctx: Context) -> list[tuple[int, int, str]]:
    """(message, part, text) of every tool output the last call could see.

    Tool-result parts; in a text-only agent log (mini-swe-agent, SWE-agent without function
    calling), the user messages after the first assistant message (the observations).
    """
    start = window_start(ctx)
    results = [
        (i, j, p.text)
        for i, m in enumerate(ctx.messages)
        for j, p in enumerate(m.parts)
        if p.kind == "tool_result" and i >= start
    ]
    if results or any(p.kind == "tool_result" for m in ctx.messages for p in m.parts):
        return results
    first_reply = next((i for i, m in enumerate(ctx.messages) if m.role == "assistant"), None)
    if first_reply is None:
        return []
    return [
        (i, j, p.text)
        for i, m in enumerate(ctx.messages)
        if m.role == "user" and i > first_reply and i >= start
        for j, p in enumerate(m.parts)
        if p.kind == "text"
    ]


def blocks(ctx: Context) -> list[tuple[int, int, str]]:
    """(message, part, text) of every text-bearing part the last call could see."""
    start = window_start(ctx)
    return [
        (i, j, p.text)
        for i, m in enumerate(ctx.messages)
        if i >= start
        for j, p in enumerate(m.parts)
        if p.kind in ("text", "tool_result", "reasoning", "tool_call") and p.text
    ]


def token_offsets(counter: ctxtax.TiktokenCounter, text: str) -> npt.NDArray[np.int64]:
    """The character offset at which each token of ``text`` starts, and the end (len + 1)."""
    ids = counter.encode(text)
    byte_at = np.concatenate(([0], np.cumsum(counter.token_byte_lengths()[ids]))).astype(np.int64)
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    starts = (data & 0xC0) != 0x80
    char_at_byte = np.concatenate(([0], np.cumsum(starts))).astype(np.int64)
    return char_at_byte[np.minimum(byte_at, len(data))]


def masks_for(
    counter: ctxtax.TiktokenCounter,
    text: str,
    copied: Iterable[tuple[int, int]],
    unscored: Iterable[tuple[int, int]] = (),
    edge: int = EDGE,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(truth, unscored) token masks of ``text``.

    Truth: tokens wholly inside a ``copied`` char range. Unscored: ``edge`` tokens on each side
    of every boundary of a copied range, and every token touching an ``unscored`` char range.
    """
    offsets = token_offsets(counter, text)
    starts, ends = offsets[:-1], offsets[1:]
    n = len(starts)
    truth = np.zeros(n, np.bool_)
    skip = np.zeros(n, np.bool_)
    for lo, hi in copied:
        inside = (starts >= lo) & (ends <= hi)
        truth |= inside
        where = np.nonzero(inside)[0]
        if len(where) == 0:
            continue
        first, last = int(where[0]), int(where[-1]) + 1
        skip[max(0, first - edge) : first + edge] = True
        skip[max(0, last - edge) : last + edge] = True
    for lo, hi in unscored:
        skip |= (starts < hi) & (ends > lo)
    return truth, skip


class Planter:
    """Appends planted duplicates to one context, in its own message shape."""

    def __init__(self, ctx: Context, rng: random.Random, counter: ctxtax.TiktokenCounter):
        self.ctx = ctx
        self.rng = rng
        self.counter = counter
        self.messages: list[Message] = list(ctx.messages)
        self.plants: list[Planted] = []
        result_roles = [
            m.role for m in ctx.messages if any(p.kind == "tool_result" for p in m.parts)
        ]
        self.result_role = result_roles[0] if result_roles else None
        tool_names = [p.tool_name for m in ctx.messages for p in m.parts if p.tool_name]
        self.tool_name = tool_names[0] if tool_names else "run"
        self.serial = 0

    # fresh text

    def words(self, n: int) -> str:
        """``n`` random words: text that appears nowhere else."""
        return " ".join(self.rng.choice(VOCAB) for _ in range(n))

    def sentences(self, n_words: int) -> str:
        """Fresh prose of about ``n_words`` words, in sentences."""
        out: list[str] = []
        left = n_words
        while left > 0:
            k = min(left, self.rng.randint(6, 14))
            out.append(self.words(k).capitalize() + ".")
            left -= k
        return " ".join(out)

    # message shapes

    def _reply(self, tool_name: str | None, *, call: bool = True) -> tuple[Message, str | None]:
        """The assistant turn before a plant: a fresh thought, and a tool call if the shape has one."""
        self.serial += 1
        thought = Part(kind="text", text=self.sentences(self.rng.randint(4, 10)))
        if self.result_role is None or not call:
            return Message(role="assistant", parts=(thought,)), None
        call_id = f"call_planted_{self.serial:04d}"
        args = json.dumps({"command": f"cat {self.words(2).replace(' ', '_')}.txt"})
        call = Part(
            kind="tool_call", text=args, tool_call_id=call_id, tool_name=tool_name or self.tool_name
        )
        return Message(role="assistant", parts=(thought, call)), call_id

    def _output(self, text: str, tool_name: str | None) -> tuple[list[Message], int]:
        """Messages for a new tool output of ``text``; the index of the one holding it."""
        reply, call_id = self._reply(tool_name)
        if call_id is None:
            result = Message(role="user", parts=(Part(kind="text", text=text),))
        else:
            part = Part(
                kind="tool_result",
                text=text,
                tool_call_id=call_id,
                tool_name=tool_name or self.tool_name,
            )
            result = Message(role=self.result_role or "tool", parts=(part,))
        return [reply, result], len(self.messages) + 1

    def _append(self, plant: Planted, new: list[Message]) -> None:
        first = len(self.messages)
        self.messages.extend(new)
        plant.messages = list(range(first, len(self.messages)))
        for i in plant.messages:
            for j, part in enumerate(self.messages[i].parts):
                if (i, j) not in plant.truth and part.text:
                    n = len(self.counter.encode(part.text))
                    plant.truth[(i, j)] = np.zeros(n, np.bool_)
                    plant.unscored[(i, j)] = np.zeros(n, np.bool_)
        self.plants.append(plant)

    def _tool_name_of(self, message: int, part: int) -> str | None:
        return self.ctx.messages[message].parts[part].tool_name

    # the three kinds

    def whole(self, source: tuple[int, int, str]) -> None:
        """(a) a tool output repeated whole."""
        i, j, text = source
        new, at = self._output(text, self._tool_name_of(i, j))
        plant = Planted("a", (i, j), [])
        truth, skip = masks_for(self.counter, text, [(0, len(text))], edge=0)
        plant.truth[(at, 0)], plant.unscored[(at, 0)] = truth, skip
        self._append(plant, new)

    def span(self, source: tuple[int, int, str]) -> None:
        """(b) 60-400 tokens of an earlier block pasted between fresh text in a user message."""
        i, j, text = source
        offsets = token_offsets(self.counter, text)
        n = len(offsets) - 1
        length = self.rng.randint(60, min(400, n))
        start = self.rng.randint(0, n - length)
        pasted = text[int(offsets[start]) : int(offsets[start + length])]
        before = self.sentences(self.rng.randint(15, 60)) + self.rng.choice(["\n\n", "\n", " "])
        after = self.rng.choice(["\n\n", "\n", " "]) + self.sentences(self.rng.randint(15, 60))
        body = before + pasted + after
        reply, _ = self._reply(None, call=False)
        user = Message(role="user", parts=(Part(kind="text", text=body),))
        at = len(self.messages) + 1
        plant = Planted("b", (i, j), [])
        lo = len(before)
        truth, skip = masks_for(self.counter, body, [(lo, lo + len(pasted))])
        plant.truth[(at, 0)], plant.unscored[(at, 0)] = truth, skip
        self._append(plant, [reply, user])

    def near(self, source: tuple[int, int, str]) -> None:
        """(c) a multi-line tool output with 2-5 % of its lines edited."""
        i, j, text = source
        lines = text.split("\n")
        editable = [k for k, line in enumerate(lines) if _WORD.search(line)]
        content = [k for k, line in enumerate(lines) if line.strip()]
        count = max(1, round(len(content) * self.rng.uniform(0.02, 0.05)))
        edited = set(self.rng.sample(editable, min(count, len(editable))))
        new_lines: list[str] = []
        replaced: list[tuple[int, int]] = []  # char ranges of replaced words in the new text
        edited_lines: list[tuple[int, int]] = []
        pos = 0
        for k, original in enumerate(lines):
            line = original
            if k in edited:
                words = list(_WORD.finditer(line))
                chosen = sorted(
                    self.rng.sample(words, min(len(words), self.rng.randint(1, 2))),
                    key=lambda m: m.start(),
                )
                out, last = [], 0
                for m in chosen:
                    out.append(line[last : m.start()])
                    fresh = self.rng.choice([w for w in VOCAB if w != m.group()])
                    start = pos + sum(map(len, out))
                    replaced.append((start, start + len(fresh)))
                    out.append(fresh)
                    last = m.end()
                out.append(line[last:])
                line = "".join(out)
                edited_lines.append((pos, pos + len(line) + 1))
            new_lines.append(line)
            pos += len(line) + 1
        body = "\n".join(new_lines)
        # Truth: every token outside the edited lines; the rest of an edited line is unscored,
        # and the replaced words are neither truth nor unscored (a detection there is wrong).
        copied: list[tuple[int, int]] = []
        last = 0
        for lo, hi in edited_lines:
            copied.append((last, lo))
            last = hi
        copied.append((last, len(body)))
        offsets = token_offsets(self.counter, body)
        starts, ends = offsets[:-1], offsets[1:]
        truth = np.zeros(len(starts), np.bool_)
        for lo, hi in copied:
            truth |= (starts >= lo) & (ends <= hi)
        wrong = np.zeros(len(starts), np.bool_)
        for lo, hi in replaced:
            wrong |= (starts < hi) & (ends > lo)
        skip = ~truth & ~wrong
        new, at = self._output(body, self._tool_name_of(i, j))
        plant = Planted("c", (i, j), [])
        plant.truth[(at, 0)], plant.unscored[(at, 0)] = truth, skip
        self._append(plant, new)

    def context(self) -> Context:
        """The context with every plant appended (the last recorded call extended over them)."""
        calls = self.ctx.calls
        if calls:
            last = calls[-1]
            extra = Call(start=last.start, end=len(self.messages), head=last.head, model=last.model)
            calls = (*calls, extra)
        return self.ctx.model_copy(update={"messages": tuple(self.messages), "calls": calls})


def unplanted(ctx: Context) -> Context:
    """The context as `Planter.context` leaves it when nothing is planted."""
    if ctx.calls:
        last = ctx.calls[-1]
        extra = Call(start=last.start, end=len(ctx.messages), head=last.head, model=last.model)
        return ctx.model_copy(update={"calls": (*ctx.calls, extra)})
    return ctx


def plant(
    ctx: Context, seed: int | str, per_kind: int, counter: ctxtax.TiktokenCounter
) -> tuple[Context, list[Planted]]:
    """``ctx`` with up to ``per_kind`` plants of each kind appended, interleaved at random."""
    rng = random.Random(seed)
    planter = Planter(ctx, rng, counter)
    outputs = tool_outputs(ctx)
    whole = [o for o in outputs if 64 <= counter.count(o[2]) <= MAX_SOURCE_TOKENS]
    spans = [b for b in blocks(ctx) if counter.count(b[2]) >= 60]
    multiline = [
        o
        for o in whole
        if sum(1 for line in o[2].split("\n") if line.strip()) >= 20 and _WORD.search(o[2])
    ]
    todo: list[tuple[str, tuple[int, int, str]]] = []
    for kind, pool in (("a", whole), ("b", spans), ("c", multiline)):
        if pool:
            todo.extend((kind, rng.choice(pool)) for _ in range(per_kind))
    rng.shuffle(todo)
    for kind, source in todo:
        {"a": planter.whole, "b": planter.span, "c": planter.near}[kind](source)
    return planter.context(), planter.plants


# -- scoring ---------------------------------------------------------------------------------


@dataclass
class Score:
    """Token counts: truth, detected (both scored tokens only) and their intersection."""

    truth: int = 0
    detected: int = 0
    hit: int = 0
    plants: int = 0
    poor: int = 0  # plants with recall or precision under 0.9

    def add(self, other: Score) -> None:
        self.truth += other.truth
        self.detected += other.detected
        self.hit += other.hit
        self.plants += other.plants
        self.poor += other.poor

    @property
    def recall(self) -> float:
        return self.hit / self.truth if self.truth else 1.0

    @property
    def precision(self) -> float:
        return self.hit / self.detected if self.detected else 1.0


def detected_ranges(
    findings: Iterable[Finding], *, near_spans: bool = False
) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Token ranges per (message, part) flagged by CTX101-CTX104.

    With ``near_spans``, a CTX102 finding counts by the exact spans it proposes to replace (its
    edits) instead of its location (the whole block).
    """
    out: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for f in findings:
        if f.code not in CODES:
            continue
        locs = [e.loc for e in f.edits] if near_spans and f.code == "CTX102" else [f.loc]
        for loc in locs:
            if loc.message is None or loc.token_start is None or loc.token_end is None:
                continue
            out[(loc.message, loc.part or 0)].append((loc.token_start, loc.token_end))
    return out


def score_plant(plant: Planted, ranges: dict[tuple[int, int], list[tuple[int, int]]]) -> Score:
    """The plant's scored tokens: truth, detected, and both."""
    score = Score(plants=1)
    for key, truth in plant.truth.items():
        mask = np.zeros(len(truth), np.bool_)
        for lo, hi in ranges.get(key, ()):
            mask[max(0, lo) : hi] = True
        scored = ~plant.unscored[key]
        score.truth += int((truth & scored).sum())
        score.detected += int((mask & scored).sum())
        score.hit += int((mask & truth & scored).sum())
    score.poor = int(score.recall < 0.9 or score.precision < 0.9)
    return score


def finding_key(f: Finding) -> tuple[int, int, int, int]:
    return (f.loc.message or 0, f.loc.part or 0, f.loc.token_start or 0, f.loc.token_end or 0)


@dataclass
class Outcome:
    """One session's evaluation."""

    session: Session
    scores: dict[str, Score]
    failures: list[tuple[Planted, Score, str, list[str]]]
    outside_added: list[Finding]
    outside_removed: list[Finding]
    outside_recoded: list[tuple[Finding, Finding]]
    outside_resized: list[tuple[Finding, Finding]]
    seconds: float


def evaluate(
    session: Session,
    *,
    seed: int,
    per_kind: int,
    counter: ctxtax.TiktokenCounter,
) -> Outcome:
    """Plant, audit, score; and compare the findings outside the plants with the unplanted run."""
    t0 = time.perf_counter()
    ctx = session.context
    planted_ctx, plants = plant(ctx, f"{seed}:{session.folder}:{session.name}", per_kind, counter)
    base = ctxtax.audit(unplanted(ctx), counter=counter, select=list(CODES), strict=False)
    report = ctxtax.audit(planted_ctx, counter=counter, select=list(CODES), strict=False)
    ranges = detected_ranges(report.findings)
    span_ranges = detected_ranges(report.findings, near_spans=True)
    scores: dict[str, Score] = defaultdict(Score)
    failures = []
    n0 = len(ctx.messages)
    for p in plants:
        s = score_plant(p, ranges)
        scores[p.kind].add(s)
        if p.kind == "c":
            scores["c/spans"].add(score_plant(p, span_ranges))
        if s.hit < s.truth or s.hit < s.detected:
            rules = sorted({f.code for f in report.findings if f.loc.message in set(p.messages)})
            where = f"msg {p.messages[-1]} <- src msg {p.source[0]} part {p.source[1]}"
            failures.append((p, s, where, rules))
    before = {finding_key(f): f for f in base.findings}
    after = {finding_key(f): f for f in report.findings if (f.loc.message or 0) < n0}
    added = [after[k] for k in after.keys() - before.keys()]
    removed = [before[k] for k in before.keys() - after.keys()]
    both = sorted(before.keys() & after.keys())
    recoded = [(before[k], after[k]) for k in both if before[k].code != after[k].code]
    resized = [(before[k], after[k]) for k in both if before[k].tokens != after[k].tokens]
    return Outcome(
        session,
        dict(scores),
        failures,
        added,
        removed,
        recoded,
        resized,
        time.perf_counter() - t0,
    )


# -- printing --------------------------------------------------------------------------------


def _row(label: str, s: Score) -> str:
    return (
        f"{label:<50} {s.plants:>6} {s.poor:>4} {s.truth:>9,} {s.detected:>9,} {s.hit:>9,} "
        f"{s.recall:>7.4f} {s.precision:>9.4f}"
    )


def print_table(outcomes: list[Outcome]) -> dict[str, Score]:
    """Recall and precision per folder and kind, and overall; returns the overall per kind."""
    print(
        f"{'folder (sessions) / kind':<50} {'plants':>6} {'poor':>4} {'truth':>9} "
        f"{'detected':>9} {'both':>9} {'recall':>7} {'precision':>9}"
    )
    by_folder: dict[str, dict[str, Score]] = defaultdict(lambda: defaultdict(Score))
    overall: dict[str, Score] = defaultdict(Score)
    for o in outcomes:
        for kind, s in o.scores.items():
            by_folder[o.session.folder][kind].add(s)
            overall[kind].add(s)
    for folder, kinds in by_folder.items():
        sessions = sum(1 for o in outcomes if o.session.folder == folder)
        total = Score()
        for kind in KINDS:
            if kind in kinds:
                print(_row(f"{folder} ({sessions}) {kind} {KIND_NAMES[kind]}", kinds[kind]))
                total.add(kinds[kind])
        if "c/spans" in kinds:
            print(_row(f"{folder} c/spans (CTX102 by its spans)", kinds["c/spans"]))
        print(_row(f"{folder} all", total))
    print("-" * 107)
    everything = Score()
    for kind in KINDS:
        if kind in overall:
            print(_row(f"ALL {kind} {KIND_NAMES[kind]}", overall[kind]))
            everything.add(overall[kind])
    if "c/spans" in overall:
        print(_row("ALL c/spans (CTX102 by its spans)", overall["c/spans"]))
    print(_row("ALL", everything))
    overall["all"] = everything
    return overall


def print_failures(outcomes: list[Outcome], limit: int) -> None:
    rows = [(o, *f) for o in outcomes for f in o.failures]
    rows.sort(key=lambda r: -((r[2].truth - r[2].hit) + (r[2].detected - r[2].hit)))
    print(f"\nimperfect plants: {len(rows)} (worst {min(limit, len(rows))})")
    for o, p, s, where, rules in rows[:limit]:
        print(
            f"  {o.session.folder}/{o.session.name} kind {p.kind} {where}: truth {s.truth} "
            f"detected {s.detected} missed {s.truth - s.hit} extra {s.detected - s.hit} "
            f"rules {','.join(rules) or '-'}"
        )


def print_outside(outcomes: list[Outcome], limit: int = 3) -> None:
    """How the findings before the plants differ from the unplanted session's."""
    added = sum(len(o.outside_added) for o in outcomes)
    removed = sum(len(o.outside_removed) for o in outcomes)
    resized = sum(len(o.outside_resized) for o in outcomes)
    moves: dict[str, list[tuple[Outcome, Finding, Finding]]] = defaultdict(list)
    for o in outcomes:
        for a, b in o.outside_recoded:
            moves[f"{a.code}->{b.code}"].append((o, a, b))
    summary = ", ".join(f"{k} {len(v)}" for k, v in sorted(moves.items())) or "none"
    print(
        f"\nfindings outside the plants vs the unplanted sessions: {added} added, "
        f"{removed} removed, {resized} with other tokens; other rule: {summary}"
    )
    for o in outcomes:
        name = f"{o.session.folder}/{o.session.name}"
        for f in o.outside_added[:limit]:
            print(f"  + {name} {f.code} {f.loc.describe()}: {f.message}")
        for f in o.outside_removed[:limit]:
            print(f"  - {name} {f.code} {f.loc.describe()}: {f.message}")
    for move, items in sorted(moves.items()):
        for o, a, b in items[:limit]:
            print(f"  ~ {move} {o.session.folder}/{o.session.name} {a.loc.describe()}: {b.message}")


def flagged_text(ctx: Context, f: Finding) -> str:
    loc = f.loc
    if loc.message is None:
        return ""
    text = ctx.messages[loc.message].parts[loc.part or 0].text
    return text[loc.start or 0 : loc.end if loc.end is not None else len(text)]


def print_eyeball(sessions: list[Session], top: int, counter: ctxtax.TiktokenCounter) -> None:
    """The largest findings of the unmodified sessions, per folder, for a person to judge."""
    by_folder: dict[str, list[tuple[Session, Finding]]] = defaultdict(list)
    for s in sessions:
        report = ctxtax.audit(s.context, counter=counter, select=list(CODES), strict=False)
        by_folder[s.folder].extend((s, f) for f in report.findings)
    for folder, items in by_folder.items():
        items.sort(key=lambda x: -x[1].tokens)
        counts: dict[str, int] = defaultdict(int)
        for _, f in items:
            counts[f.code] += 1
        summary = ", ".join(f"{c} {n}" for c, n in sorted(counts.items()))
        print(f"\n== {folder}: {len(items)} findings ({summary}); top {min(top, len(items))}")
        for s, f in items[:top]:
            text = flagged_text(s.context, f).replace("\n", "\\n")[:80]
            print(f"  {f.code} {f.tokens:>6,} {s.name} {f.loc.describe()}: {f.message}")
            print(f"         {text!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plants", type=int, default=5, help="plants of each kind per session")
    parser.add_argument("--sample", type=int, default=10, help="conversations per big file")
    parser.add_argument("--folder", action="append", help="only these folders")
    parser.add_argument("--failures", type=int, default=15, help="imperfect plants to list")
    parser.add_argument("--eyeball", type=int, default=0, help="top findings per folder to list")
    args = parser.parse_args(argv)
    if not REAL.exists():
        print(f"skipped: the real data folder {REAL} is absent")
        return 0
    counter = ctxtax.TiktokenCounter("cl100k_base")
    sessions = load_sessions(args.folder, sample=args.sample, seed=args.seed, counter=counter)
    print(
        f"{len(sessions)} real sessions, {args.plants} plants of each kind each, seed {args.seed}\n"
    )
    t0 = time.perf_counter()
    outcomes = [
        evaluate(s, seed=args.seed, per_kind=args.plants, counter=counter) for s in sessions
    ]
    overall = print_table(outcomes)
    print_failures(outcomes, args.failures)
    print_outside(outcomes)
    print(f"\n{time.perf_counter() - t0:.1f} s")
    if args.eyeball:
        print_eyeball(sessions, args.eyeball, counter)
    ok = overall["all"].recall >= 0.98 and overall["all"].precision >= 0.98
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
