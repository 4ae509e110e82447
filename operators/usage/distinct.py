"""The distinct values a ``unique_count`` meter has seen in one (tenant, meter, dimensions)
and month, as 64-bit hashes.

Most values live in one sorted NumPy array (8 bytes each, snapshotted as one buffer); the
values of the last few batches live in a small set until there are enough of them to merge.
A Python set alone costs about 69 bytes a value and minutes of pickling per snapshot at
tens of millions of values (measured: docs/throughput.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

MERGE_AT = 4096  # recent values kept in the set before they join the sorted array


class DistinctValues:
    __slots__ = ("recent", "sorted")

    def __init__(self, sorted_: np.ndarray | None = None) -> None:
        self.sorted = np.empty(0, dtype=np.uint64) if sorted_ is None else sorted_
        self.recent: set[int] = set()

    def __len__(self) -> int:
        return len(self.sorted) + len(self.recent)

    def add(self, hashes: Iterable[int]) -> int:
        """Remember ``hashes``; returns how many were not seen before."""
        arr = np.unique(np.fromiter(hashes, dtype=np.uint64))
        if len(self.sorted) and len(arr):
            pos = np.minimum(np.searchsorted(self.sorted, arr), len(self.sorted) - 1)
            arr = arr[self.sorted[pos] != arr]
        recent = self.recent
        new = [h for h in arr.tolist() if h not in recent]
        recent.update(new)
        if len(recent) >= MERGE_AT:
            self._merge()
        return len(new)

    def _merge(self) -> None:
        if self.recent:
            extra = np.sort(np.fromiter(self.recent, dtype=np.uint64, count=len(self.recent)))
            # disjoint from ``sorted`` (add filtered them): an O(n) insert, not a re-sort
            self.sorted = np.insert(self.sorted, np.searchsorted(self.sorted, extra), extra)
            self.recent = set()

    def snapshot(self) -> np.ndarray:
        self._merge()
        return self.sorted

    @classmethod
    def restore(cls, state: np.ndarray) -> DistinctValues:
        return cls(np.asarray(state, dtype=np.uint64))
