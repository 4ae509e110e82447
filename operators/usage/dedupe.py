"""Remember event ids for a bounded time, to count each event once.

Keys are 64-bit hashes of the id (xxh3), kept with a 64-bit hash of the
content (to tell an exact repeat from a conflicting one) and the hour bucket
that decides when the key is forgotten: 8 + 8 + 4 = 20 bytes a key, held in
sorted NumPy arrays rather than a dict (a Python dict of ints costs ~150 bytes
a key).

The arrays form a small log-structured merge tree: each batch of new keys is
one sorted run; adjacent runs whose sizes are within a factor of two are
merged, so there are O(log n) runs and a lookup is one ``searchsorted`` per
run. Forgetting is a filter, done when the watermark enters a new hour.

Two different ids share a 64-bit hash with probability about n^2 / 2^65 for
n keys in one shard (1e-8 for a million keys); such an event would be taken
for a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from operators.records import HOUR_US


class Verdict(IntEnum):
    NEW = 0  # first arrival: counts
    DUPLICATE = 1  # exact repeat of a remembered event: dropped, counted as a duplicate
    CONFLICT = 2  # same id, other content: dead letter `duplicate_conflict`


class Run(NamedTuple):
    ids: np.ndarray  # uint64, sorted, unique across all runs
    contents: np.ndarray  # uint64
    buckets: np.ndarray  # int32 hour index: forgotten once the horizon passes its end


def _merge(a: Run, b: Run) -> Run:
    """One sorted run of two (ids are unique across runs).

    Inserting at ``searchsorted`` positions needs no sort and no index array the size of
    the result: the largest merges are the job's memory peak.
    """
    at = np.searchsorted(a.ids, b.ids)
    return Run(
        np.insert(a.ids, at, b.ids),
        np.insert(a.contents, at, b.contents),
        np.insert(a.buckets, at, b.buckets),
    )


class DedupeIndex:
    """Seen ids of one shard, forgotten ``horizon_us`` after their hour bucket ends."""

    def __init__(self, horizon_us: int, runs: list[Run] | None = None) -> None:
        self.horizon_us = horizon_us
        self._runs: list[Run] = list(runs or [])
        self._expired_through = -(2**62)  # watermark of the last expiry pass

    def __len__(self) -> int:
        return sum(len(r.ids) for r in self._runs)

    @property
    def nbytes(self) -> int:
        return sum(r.ids.nbytes + r.contents.nbytes + r.buckets.nbytes for r in self._runs)

    def check_and_remember(
        self, ids: np.ndarray, contents: np.ndarray, bucket_time_us: np.ndarray
    ) -> np.ndarray:
        """Verdict for each event of a batch, in arrival order; remembers the new ones.

        The first arrival of an id counts; a later copy (earlier in this batch
        or remembered from before) is a duplicate when its content matches the
        first arrival's and a conflict otherwise.
        """
        n = len(ids)
        verdicts = np.zeros(n, dtype=np.int8)
        if n == 0:
            return verdicts
        uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        found = np.zeros(len(uniq), dtype=bool)
        stored = np.zeros(len(uniq), dtype=np.uint64)
        for run in self._runs:
            pos = np.searchsorted(run.ids, uniq)
            pos[pos == len(run.ids)] = 0
            hit = run.ids[pos] == uniq
            found |= hit
            stored[hit] = run.contents[pos[hit]]
        reference = np.where(found, stored, contents[first])
        counted = ~found[inverse] & (np.arange(n) == first[inverse])
        verdicts[~counted] = np.where(
            contents[~counted] == reference[inverse[~counted]], Verdict.DUPLICATE, Verdict.CONFLICT
        )
        new = ~found
        if new.any():
            firsts = first[new]
            self._add(
                Run(
                    uniq[new],
                    contents[firsts],
                    (bucket_time_us[firsts] // HOUR_US).astype(np.int32),
                )
            )
        return verdicts

    def _add(self, run: Run) -> None:
        runs = self._runs
        runs.append(run)
        while len(runs) > 1 and len(runs[-2].ids) <= 2 * len(runs[-1].ids):
            last = runs.pop()
            runs[-1] = _merge(runs[-1], last)

    def expire(self, watermark_us: int) -> int:
        """Forget keys whose bucket ended more than the horizon before the watermark.

        Runs once per hour of watermark progress; returns how many were forgotten.
        """
        if watermark_us // HOUR_US <= self._expired_through // HOUR_US:
            return 0
        self._expired_through = watermark_us
        # keep a bucket while (bucket + 1) * HOUR + horizon > watermark
        keep_from = (watermark_us - self.horizon_us) // HOUR_US
        forgotten = 0
        runs = []
        for run in self._runs:
            keep = run.buckets >= keep_from
            if keep.all():
                runs.append(run)
                continue
            forgotten += int((~keep).sum())
            if keep.any():
                runs.append(Run(run.ids[keep], run.contents[keep], run.buckets[keep]))
        self._runs = []
        for run in sorted(runs, key=lambda r: -len(r.ids)):
            self._add(run)
        return forgotten

    def snapshot(self, save: Callable[[list[Run]], list] | None = None) -> tuple:
        """``save`` turns the runs into what the snapshot holds (operators/usage/run_files.py);
        without it each run is a plain tuple of its arrays.

        Runs are replaced, never changed in place, so sharing the arrays is safe.
        """
        runs = save(self._runs) if save else [tuple(r) for r in self._runs]
        return (self.horizon_us, self._expired_through, runs)

    @classmethod
    def restore(cls, state: tuple, load: Callable[[list], list[Run]] | None = None) -> DedupeIndex:
        """``load`` reads back what ``save`` made; without it the runs must be inline."""
        horizon_us, expired_through, runs = state
        index = cls(horizon_us, (load or inline_runs)(runs))
        index._expired_through = expired_through
        return index


def inline_runs(items: list) -> list[Run]:
    """The runs of a snapshot that holds them whole."""
    if not all(isinstance(item[0], np.ndarray) for item in items):
        raise ValueError("the snapshot names dedupe run files, but this job was started "
                         "without a directory for them (operators/usage/run_files.py)")
    return [Run(*item) for item in items]
