"""The duplication engine against its targets and its peers, in one process, on one corpus.

Four measurements, each printed as a markdown table with the numbers, the ratios and the target:

1. full audit throughput: `ctxtax.audit` of a ~10 MB multi-session corpus (all duplication rules,
   an empty token cache each round) against tokenizing the same texts alone;
2. text -> near-duplicate candidate pairs: ctxtax's steps against datasketch, rensa and gaoya on
   the same documents (every block of >= 64 tokens);
3. incremental audits: appending one ~2 KB message to a 10k / 50k / 200k-token session with a kept
   `ctxtax.Auditor`, against a full audit of the grown session;
4. ``ctxtax audit`` on one short file in a fresh process, and where its start-up time goes.

numba's cached kernels are loaded before anything is timed (a fresh process's one-off load is
reported apart). Every variant gets one untimed warm-up run; then ``--rounds`` rounds each run
every variant once, in turn (each round starting one variant further on), so background load
weighs on all of them alike; a variant shorter than 0.1 s is repeated within its sample and
counted by the mean (see `interleaved`); times are medians of the samples.

    .venv/bin/python benches/compare.py             # everything (a few minutes on 2 cores)
    .venv/bin/python benches/compare.py --quick     # a 0.4 MB slice, one round: a smoke run
    .venv/bin/python benches/compare.py --only near --rounds 7
    .venv/bin/python benches/compare.py --profile   # plus cProfile of the audit and an append
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus
import numpy as np
import pipelines

import ctxtax

SECTIONS = ("audit", "near", "incremental", "cli")
SESSION_SIZES = (10_000, 50_000, 200_000)


def median(times: Sequence[float]) -> float:
    """The median of some wall times."""
    return statistics.median(times)


def ms(seconds: float) -> str:
    """Seconds as milliseconds, three significant figures or so."""
    value = seconds * 1e3
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: int = 1) -> str:
    """A markdown table; columns from ``right`` on are right-aligned."""
    align = ["---" if i < right else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(value: float) -> str:
    """A time ratio: two decimals below 1, one above."""
    return f"{value:.2f}x" if value < 1 else f"{value:.1f}x"


def verdict(ok: bool) -> str:
    """Whether a target is met."""
    return "met" if ok else "**missed**"


SAMPLE_SECONDS = 0.1
"""A timed sample of a run faster than this repeats it back to back until it lasts about this
long, and counts the mean (as `timeit` and pytest-benchmark do)."""


def interleaved(
    runs: dict[str, tuple[Callable[[], Any], Callable[[], Any] | None]], rounds: int
) -> dict[str, list[float]]:
    """Wall times of each ``(run, setup)``: one untimed warm-up of each, then ``rounds`` rounds
    that each time every run once, in turn, so background load weighs on all of them alike.

    Each round starts one run further on, so no run always follows the same one. What a run
    leaves behind weighs on the next: measured, a 15 ms run split over two threads took up to
    10 ms more right after a peer's rayon pool, both threads at half speed. So a run shorter
    than `SAMPLE_SECONDS` (and without a setup) is repeated within its sample, and the
    sample is the mean of the repeats, which spreads that toll over them, for every run alike.
    """
    repeats: dict[str, int] = {}
    for name, (fn, setup) in runs.items():
        (first,) = pipelines.timed(fn, 1, setup)
        fits = max(1, int(SAMPLE_SECONDS / max(first, 1e-6)))
        repeats[name] = fits if setup is None else 1
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn, setup = runs[name]
            n = repeats[name]
            times[name].append(sum(pipelines.timed(fn, n, setup)) / n)
    return times


# -- 1 ------------------------------------------------------------------------------------------


def audit_section(args: argparse.Namespace, out: list[str]) -> None:
    """Full audit throughput against tokenizing alone."""
    data = corpus.load_corpus(corpus.QUICK_BYTES if args.quick else None)
    counter = ctxtax.TiktokenCounter()
    enc = pipelines.encoder()
    texts, mb, threads = data.texts, data.megabytes, counter.threads

    def empty_cache() -> None:
        pipelines.fresh_counter(counter)

    def filled_cache() -> None:
        counter.encode_many(texts)

    def audit() -> Any:
        return pipelines.audit_corpus(data.contexts, counter)

    tokenize = f"tokenize only: tiktoken `encode_ordinary_batch`, {threads} threads"
    tokenize1 = "tiktoken `encode_ordinary_batch`, 1 thread"
    fast1 = "ctxtax's tokenizer (`FastBPE.encode_many`, numba), same ids, 1 thread"
    encode = f"`TiktokenCounter.encode_many` (FastBPE on {threads} threads, ids cached)"
    cold = '`ctxtax.audit(contexts, select=["CTX1"])`, empty token cache'
    warm = "the same, token ids already cached (engine work only)"
    fast = pipelines.fast_bpe()
    runs: dict[str, tuple[Callable[[], Any], Callable[[], Any] | None]] = {
        tokenize: (lambda: pipelines.tokenize_only(enc, texts, threads), None),
        tokenize1: (lambda: pipelines.tokenize_only(enc, texts, 1), None),
        fast1: (lambda: pipelines.fast_encode(fast, texts), None),
        encode: (lambda: pipelines.counter_encode(counter, texts), empty_cache),
        cold: (audit, empty_cache),
        warm: (audit, filled_cache),
    }
    times = interleaved(runs, args.rounds)
    report = audit()
    t_tok = median(times[tokenize])
    rows = [
        [
            name,
            f"{median(t):.3f}",
            f"{min(t):.3f}",
            f"{mb / median(t):.2f}",
            f"{t_tok / median(t):.2f}",
        ]
        for name, t in times.items()
    ]
    achieved = t_tok / median(times[cold])
    # The audit tokenizes in chunks on helper threads while its own thread runs the engine
    # (`EncodeAhead`): its wall time is at least the engine's, and at least all the CPU work
    # (ctxtax's tokenizing on every thread, plus the engine) spread over every core.
    engine = median(times[warm])
    cores = os.cpu_count() or 1
    floor = max(engine, (threads * median(times[encode]) + engine) / cores)
    bound = t_tok / floor
    tokens = sum(len(i) for i in counter.encode_many(texts))
    findings = len(report.findings) + sum(len(c.findings) for c in report.conversations)
    out.append(
        f"## 1. Full audit throughput\n\n"
        f"Corpus: {len(data.contexts)} conversations ("
        + ", ".join(f"{k} {v}" for k, v in data.by_set.items() if v)
        + f"); {mb:.2f} MB of distinct text to tokenize, {tokens:,} tokens; {findings:,} findings. "
        f"Median of {args.rounds} interleaved rounds after a warm-up round each.\n\n"
        + table(["what", "median s", "min s", "MB/s", "MB/s ÷ tokenize"], rows)
        + f"\n\nTarget: audit ÷ tokenize >= 0.85 -> **{achieved:.2f}**, {verdict(achieved >= 0.85)}. "
        f"The audit tokenizes with ctxtax's own kernels (`ctxtax._fast_bpe`: tiktoken's "
        f"cl100k_base ids, checked against it), {median(times[tokenize1]) / median(times[fast1]):.1f}x "
        "tiktoken's speed on one thread; the ratio is against tiktoken, the issue's floor. "
        f"The engine's work alone (ids cached) takes {engine / t_tok:.2f}x the time of tokenizing. "
        f"The audit overlaps its tokenizing (in chunks, on helper threads) with the engine; on "
        f"{cores} cores even a perfect overlap would reach {bound:.2f}: at least the engine's "
        "time, and at least the CPU time of both spread over every core. "
        f"numba's kernels are loaded before timing; not in these rows: a fresh process loads "
        f"them once, {pipelines.numba_load_time():.2f} s (the dispatch switches to them once a "
        "process has done 4M elements of kernel work, or at a 1M-element input; before that "
        "the plain twins run: see their row in table 2).\n"
    )
    out.append(
        audit_breakdown(data, counter, args.rounds, median(times[cold]), median(times[warm]))
    )
    if args.profile:
        empty_cache()
        out.append(profile("audit of the corpus, empty token cache", audit))


def audit_breakdown(
    data: corpus.Corpus,
    counter: ctxtax.TiktokenCounter,
    rounds: int,
    t_audit: float,
    t_warm: float,
) -> str:
    """Where the audit's time goes, from the engine's own pieces (they may move: then say so).

    Tokenizing is the cold audit less the warm one: what tokenizing adds to the audit's wall time
    (it runs on helper threads while the engine works, see `ctxtax._encode_ahead`); the rest is
    the warm audit less the pieces timed here."""
    texts = data.texts

    def filled() -> None:
        counter.encode_many(texts)

    try:
        times = interleaved(
            {
                "count_context, ids cached": (
                    lambda: pipelines.count_corpus(data.contexts, counter),
                    filled,
                ),
                "DuplicateIndex of each context, ids cached": (
                    lambda: pipelines.index_corpus(data.contexts, counter),
                    filled,
                ),
            },
            rounds,
        )
    except (ImportError, AttributeError, TypeError) as exc:
        return f"(No breakdown: the engine's internals moved: {exc}.)\n"
    t = {name: median(v) for name, v in times.items()}
    tokenizing = t_audit - t_warm
    index = t["DuplicateIndex of each context, ids cached"]
    rest = t_warm - t["count_context, ids cached"] - index
    rows = [
        ["tokenizing, as it adds to the audit (cold less warm: overlapped)", f"{tokenizing:.3f}"],
        ["token table (`count_context`) with ids cached", f"{t['count_context, ids cached']:.3f}"],
        ["duplicate index (`DuplicateIndex.extend`), ids cached", f"{index:.3f}"],
        ["rules, findings, bill and report (the rest)", f"{rest:.3f}"],
    ]
    rows = [[*row, f"{100 * float(row[1]) / t_audit:.0f}%"] for row in rows]
    return (
        "\nWhere the audit's time goes (each piece timed on its own, same rounds):\n\n"
        + table(["piece", "median s", "of the audit"], rows)
        + "\n"
    )


# -- 2 ------------------------------------------------------------------------------------------


def near_section(args: argparse.Namespace, out: list[str]) -> None:
    """Near-duplicate candidate pairs: ctxtax against datasketch, rensa, gaoya."""
    data = corpus.load_corpus(corpus.QUICK_BYTES if args.quick else None)
    counter = ctxtax.TiktokenCounter()
    docs = corpus.near_documents(data.contexts, counter)
    sh = pipelines.shingles(docs.ids, counter.numeric_tokens(), "numba")
    rows_spec = pipelines.near_pipelines(docs.ids, docs.texts, sh, counter)
    found: dict[str, int] = {}
    skipped: list[str] = []
    for row in rows_spec:
        try:
            found[row.name] = pipelines.pair_count(row.run())
        except ImportError as exc:
            skipped.append(f"{row.name}: {exc}")
    measured = interleaved(
        {row.name: (row.run, None) for row in rows_spec if row.name in found}, args.rounds
    )
    times = {name: median(t) for name, t in measured.items()}

    ref_ids = times[pipelines.CTX_IDS]
    ref = {"shingles": times[pipelines.CTX_SHINGLES], "raw text": times[pipelines.CTX_TEXT]}
    rows = [
        [
            row.name,
            row.input,
            row.threads,
            ms(times[row.name]),
            f"{found[row.name]:,}",
            ratio(times[row.name] / ref_ids),
            ratio(times[row.name] / ref[row.against]) if row.against else "",
        ]
        for row in rows_spec
        if row.name in times
    ]
    same = None
    if pipelines.DS_IDENTITY in times:
        theirs = [m.hashvalues for m in pipelines.datasketch_minhashes(sh.lists(), identity=True)]
        same = np.array_equal(pipelines.signatures(sh, "numba"), np.array(theirs, dtype=np.uint32))
    ds, ds_sha = times.get(pipelines.DS_IDENTITY), times.get(pipelines.DS_SHA1)
    rensa_t, gaoya_t = times.get(pipelines.RENSA), times.get(pipelines.GAOYA)

    def versus(peer: float | None, times_faster: float, label: str) -> str:
        if peer is None:
            return f"- {label}: peer not installed\n"
        by_ids, same_input = peer / ref_ids, peer / ref["shingles"]
        return (
            f"- {label}: ctxtax from token ids vs the peer on free shingles {by_ids:.1f}x, "
            f"{verdict(by_ids >= times_faster)}; on the same shingles {same_input:.1f}x, "
            f"{verdict(same_input >= times_faster)}\n"
        )

    rensa_text, gaoya_text = times.get(pipelines.RENSA_TEXT), times.get(pipelines.GAOYA_TEXT)
    targets = (
        versus(ds, 30, ">= 30x datasketch (identity hash)")
        + versus(ds_sha, 30, ">= 30x datasketch (default sha1)")
        + versus(rensa_t, 1, "faster than rensa")
        + versus(gaoya_t, 1, "faster than gaoya")
        + (
            f"- from raw text, ctxtax incl. tiktoken vs rensa on words {rensa_text / ref['raw text']:.2f}x, "
            f"vs gaoya's word analyzer {gaoya_text / ref['raw text']:.2f}x: tokenizing is most of it\n"
            if rensa_text is not None and gaoya_text is not None
            else ""
        )
    )
    out.append(
        "## 2. Text -> near-duplicate candidate pairs\n\n"
        f"Documents: {len(docs.ids):,} blocks of >= 64 tokens from the same corpus ({docs.nbytes / 1e6:.2f} MB, "
        f"{docs.tokens:,} tokens, {len(sh.values):,} winnowed 8-gram shingles). All: 64 permutations, "
        f"16 bands x 4 rows (threshold {pipelines.LSH_THRESHOLD} where a peer asks). "
        "Shingle inputs are prepared untimed, from ctxtax's own shingles; the ratio columns are "
        "the row's time over ctxtax's (higher = ctxtax faster). ctxtax keeps the 8 nearest "
        "earlier candidates of each document (as the audit does); the peers return all of theirs, "
        "and gaoya only those whose estimated Jaccard passes 0.5.\n\n"
        + table(
            [
                "pipeline",
                "input",
                "threads",
                "median ms",
                "pairs (or flags)",
                "÷ ctxtax from ids",
                "÷ ctxtax, same input",
            ],
            rows,
            right=3,
        )
        + "\n\n"
        + (
            f"datasketch's signatures equal ctxtax's: {'yes' if same else 'NO'}.\n\n"
            if same is not None
            else ""
        )
        + targets
        + "".join(f"- skipped {s}\n" for s in skipped)
    )


# -- 3 ------------------------------------------------------------------------------------------


def incremental_section(args: argparse.Namespace, out: list[str]) -> None:
    """Appending one message with a kept Auditor against a full audit."""
    sizer = ctxtax.TiktokenCounter()
    rows = []
    ratio_200k = None
    out_profile = ""
    rounds = 2 * max(args.rounds, 3)
    for size in SESSION_SIZES:
        session = corpus.incremental_session(size, sizer, appends=rounds + 2)
        auditor = pipelines.new_auditor(ctxtax.TiktokenCounter())
        auditor.audit(list(session.messages))
        full_counter = ctxtax.TiktokenCounter()
        grown = list(session.messages)
        appends, fulls = [], []
        # Each round: append the next message and re-audit with the kept Auditor, then audit
        # that same grown session from scratch; the first round is a warm-up.
        for message in session.appends[: rounds + 1]:
            grown = [*grown, message]
            appends += pipelines.timed(partial(auditor.audit, grown), 1)
            fulls += pipelines.timed(partial(pipelines.full_audit, grown, full_counter), 1)
        ratios = [a / f for a, f in zip(appends[1:], fulls[1:], strict=True)]
        t_inc, t_full = median(appends[1:]), median(fulls[1:])
        if size == SESSION_SIZES[-1]:
            ratio_200k = median(ratios)
        rows.append(
            [
                f"{size // 1000}k",
                f"{session.tokens:,}",
                f"{len(session.messages):,}",
                ms(t_inc),
                ms(t_full),
                f"{100 * median(ratios):.1f}%",
                f"{auditor.rebuilds}",
            ]
        )
        if args.profile and size == SESSION_SIZES[-1]:
            grown = [*grown, session.appends[-1]]
            out_profile = profile(
                f"one append at {size // 1000}k tokens", partial(auditor.audit, grown)
            )
    start = time.perf_counter()
    ctxtax.TiktokenCounter().count("x")
    new_counter = time.perf_counter() - start
    out.append(
        "## 3. Incremental audits\n\n"
        "A session of real mini-swe-agent messages (OpenAI dicts). Each round appends one real "
        "~2 KB message and audits again with the kept `Auditor`, then audits the same grown "
        "session from scratch (a fresh `Auditor`, an empty token cache); medians of "
        f"{rounds} rounds after a warm-up one, the ratio is the median of the rounds' ratios.\n\n"
        + table(
            [
                "session",
                "tokens",
                "messages",
                "append + audit, kept Auditor (ms)",
                "full audit (ms)",
                "ratio",
                "index rebuilds",
            ],
            rows,
        )
        + f"\n\nTarget: < 5 % at 200k tokens -> **{100 * (ratio_200k or 0):.1f}%**, "
        f"{verdict((ratio_200k or 1) < 0.05)}. Not in the full-audit column: a new "
        f"`TiktokenCounter()` also builds its own tiktoken encoder, {ms(new_counter)} ms.\n"
    )
    if args.profile:
        out.append(out_profile)


# -- 4 ------------------------------------------------------------------------------------------


def cli_section(args: argparse.Namespace, out: list[str]) -> None:
    """``ctxtax audit`` on a short file in a fresh process, and its import costs."""
    path = corpus.EXAMPLE_SESSION
    argv = pipelines.cli_argv(path)
    runs = 3 if args.quick else args.cli_runs
    default: list[float] = []
    cached: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory() as prefix:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = prefix
        pipelines.run_cli(argv)  # warm: numba's cache, the tokenizer's marshal cache
        pipelines.run_cli(argv, env)  # writes the bytecode under the prefix
        for _ in range(runs):  # interleaved, so background load weighs on all three alike
            default.append(pipelines.run_cli(argv))
            cached.append(pipelines.run_cli(argv, env))
            bare.append(pipelines.interpreter_start())
    imports = pipelines.import_times(path)
    total_imports = sum(cum for _, _, cum in imports)
    top = sorted(imports, key=lambda r: -r[2])[:12]
    t = median(cached)
    bytecode = (
        "PYTHONDONTWRITEBYTECODE=1 (as here)"
        if os.environ.get("PYTHONDONTWRITEBYTECODE")
        else "default"
    )
    out.append(
        "## 4. `ctxtax audit` on one short file, fresh process\n\n"
        f"`{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(argv))}` "
        f"({path.stat().st_size:,} bytes), {runs} runs after a warm-up run.\n\n"
        + table(
            ["run", "median s", "min s", "max s"],
            [
                [
                    f"`ctxtax audit`, bytecode: {bytecode}",
                    f"{median(default):.3f}",
                    f"{min(default):.3f}",
                    f"{max(default):.3f}",
                ],
                [
                    "`ctxtax audit`, bytecode cached (`PYTHONPYCACHEPREFIX`)",
                    f"{median(cached):.3f}",
                    f"{min(cached):.3f}",
                    f"{max(cached):.3f}",
                ],
                [
                    "`python -c pass` (interpreter floor)",
                    f"{median(bare):.3f}",
                    f"{min(bare):.3f}",
                    f"{max(bare):.3f}",
                ],
            ],
        )
        + f"\n\nTarget: < 0.5 s -> **{t:.2f} s** with its bytecode cached, {verdict(t < 0.5)}; "
        f"{median(default):.2f} s compiling every module again. An installed package carries "
        "its compiled bytecode (pip writes it at install), as numba's kernels are cached: the "
        "target reads the cached row. An editable checkout under `PYTHONDONTWRITEBYTECODE=1`, "
        "as on this machine, compiles ctxtax's modules at every run.\n\n"
        f"`python -X importtime` of the same run: top-level imports take {total_imports / 1e3:.0f} ms "
        "in all (cumulative, nested imports inside their parent); the largest:\n\n"
        + table(
            ["module", "cumulative ms", "self ms"],
            [[f"`{m}`", ms(c / 1e6), ms(s / 1e6)] for m, s, c in top],
        )
        + "\n"
    )


# -----------------------------------------------------------------------------------------------


def profile(what: str, fn: Callable[[], Any], top: int = 25) -> str:
    """cProfile of one call, the ``top`` functions by cumulative time, as a text block."""
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(top)
    body = "\n".join(line for line in buf.getvalue().splitlines() if line.strip())
    return f"### Profile: {what}\n\n```\n{body}\n```\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per measurement")
    parser.add_argument("--cli-runs", type=int, default=10, help="fresh processes for the CLI")
    parser.add_argument("--quick", action="store_true", help="a 0.4 MB corpus slice, 1 round")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these")
    parser.add_argument("--profile", action="store_true", help="add cProfile tables")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = 1
    missing = corpus.real_missing()
    if missing:
        print(f"compare.py: {missing}", file=sys.stderr)
        return 2
    sections = args.only or list(SECTIONS)
    out = [
        "# ctxtax duplication engine: benchmarks\n",
        "Machine: "
        + ", ".join(f"{k} {v}" for k, v in pipelines.environment().items())
        + f". Reproduce: `.venv/bin/python benches/compare.py{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}` "
        "(from the repository root); the pytest-benchmark suites: "
        "`.venv/bin/pytest benches --benchmark-only`.\n",
    ]
    pipelines.load_numba()
    started = time.perf_counter()
    for name in sections:
        section_start = time.perf_counter()
        {
            "audit": audit_section,
            "near": near_section,
            "incremental": incremental_section,
            "cli": cli_section,
        }[name](args, out)
        print(f"[{name}: {time.perf_counter() - section_start:.0f} s]", file=sys.stderr)
    out.append(f"_Total run time {time.perf_counter() - started:.0f} s._")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
