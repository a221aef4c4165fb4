"""tiktoken's byte-pair encoding in plain Python, for the first few thousand tokens of a process.

Building tiktoken's encoder (its Rust ``CoreBPE``, from 100k ranks) costs about 70 ms at every
start, holding the GIL: a sixth of a short ``ctxtax audit``. Encoding a few thousand tokens in
Python from the same ranks takes a few milliseconds, so `TiktokenCounter` encodes with
`PythonBPE` until the process has asked for `BUDGET_CHARS` characters, and only then builds
tiktoken's encoder. A kept `ctxtax.Auditor` ends this at its second audit: a process that
audits on every model call builds tiktoken's encoder anyway, and its calls are faster with it.

The ids are tiktoken's: the same split pattern, run by the ``regex`` package (as tiktoken's own
pure-Python reference does), then for each piece not in the vocabulary the same merges (the
adjacent pair of lowest rank first, the leftmost of equal ones), and text with lone surrogates
mended as tiktoken mends it. Tests compare the two on the real sessions and on random text. The
merge loop is quadratic in a piece's length, so a piece longer than `MAX_PIECE_BYTES` hands the
text back to tiktoken.
"""

from __future__ import annotations

from collections.abc import Callable

BUDGET_CHARS = 50_000
"""Characters a process encodes in Python before it builds tiktoken's encoder (about 30 ms of
Python work, against 70 ms to build the encoder)."""

MAX_PIECE_BYTES = 256
"""A longer piece (a run of letters with no break) is left to tiktoken."""


class PythonBPE:
    """Byte-pair encoding over tiktoken's mergeable ranks and split pattern.

    Args:
        ranks: token bytes -> id, as tiktoken's ``mergeable_ranks``.
        pattern: tiktoken's ``pat_str`` for the encoding.
    """

    def __init__(self, ranks: dict[bytes, int], pattern: str) -> None:
        import regex

        self._ranks = ranks
        self._split: Callable[[str], list[str]] = regex.compile(pattern).findall

    def encode_ordinary(self, text: str) -> list[int] | None:
        """The ids of ``text`` (special-token strings read as plain text), or None when a
        piece is too long for this encoder."""
        try:
            return self._encode(text)
        except UnicodeEncodeError:  # lone surrogates: mended as tiktoken.Encoding does
            return self._encode(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))

    def _encode(self, text: str) -> list[int] | None:
        ranks = self._ranks
        ids: list[int] = []
        for piece in self._split(text):
            data = piece.encode("utf-8")
            token = ranks.get(data)
            if token is not None:
                ids.append(token)
            elif len(data) > MAX_PIECE_BYTES:
                return None
            else:
                ids.extend(self._merge(data))
        return ids

    def _merge(self, data: bytes) -> list[int]:
        ranks = self._ranks
        parts = [data[i : i + 1] for i in range(len(data))]
        while len(parts) > 1:
            best = best_at = -1
            for i in range(len(parts) - 1):
                rank = ranks.get(parts[i] + parts[i + 1])
                if rank is not None and (best_at < 0 or rank < best):
                    best, best_at = rank, i
            if best_at < 0:
                break
            parts[best_at : best_at + 2] = [parts[best_at] + parts[best_at + 1]]
        return [ranks[part] for part in parts]


__all__ = ["BUDGET_CHARS", "MAX_PIECE_BYTES", "PythonBPE"]
