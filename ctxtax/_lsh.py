"""LSH band buckets for a growing index (see `LshBuckets`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ctxtax import _accel


class LshBuckets:
    """The LSH band keys of a growing index: `add` gives new signatures the pairs
    `ctxtax._accel.lsh_candidates` gives them over all signatures so far (per band the
    ``limit`` nearest earlier signatures sharing its key, then the ``limit`` nearest of those).

    A large batch (the first audit) goes through the vectorized kernel; small ones (a message
    appended) through per-band hash tables, built once, so they cost the new rows only.
    """

    SMALL = 32

    def __init__(self, bands: int) -> None:
        self.keys: npt.NDArray[np.uint64] = np.zeros((0, bands), np.uint64)
        self._tables: list[dict[int, list[int]]] | None = None

    def add(self, keys: npt.NDArray[np.uint64], limit: int) -> list[tuple[int, int]]:
        """Insert the band keys of new signatures (one row each); their pairs ``(i, j)``,
        sorted, ``i`` an earlier signature."""
        first = len(self.keys)
        self.keys = np.concatenate((self.keys, keys))
        if len(keys) > self.SMALL:
            self._tables = None
            pairs = _accel.lsh_candidates(self.keys, limit)
            return [(i, j) for i, j in pairs[pairs[:, 1] >= first].tolist()]
        if self._tables is None:
            self._tables = [{} for _ in range(self.keys.shape[1])]
            self._insert(self.keys[:first], 0, 0)
        return self._insert(keys, first, limit)

    def _insert(
        self, keys: npt.NDArray[np.uint64], first: int, limit: int
    ) -> list[tuple[int, int]]:
        assert self._tables is not None
        pairs: list[tuple[int, int]] = []
        for j, row in enumerate(keys.tolist(), start=first):
            found: set[int] = set()
            for table, key in zip(self._tables, row, strict=True):
                bucket = table.get(key)
                if bucket is None:
                    table[key] = [j]
                else:
                    if limit:
                        found.update(bucket[-limit:])
                    bucket.append(j)
            if found:
                pairs.extend((i, j) for i in sorted(found)[-limit:])
        pairs.sort()
        return pairs


__all__ = ["LshBuckets"]
