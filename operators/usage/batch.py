"""A columnar batch of parsed events: what flows from parsing to dedupe.

Whole batches move between steps so that the per-item cost of the dataflow
is paid once per Kafka fetch or file chunk, not once per event. Tenant, meter
and dimensions are not repeated per reading: ``key_code[i]`` indexes the batch's
list of distinct (tenant, meter, dimensions) keys.

One event can feed several meters: each of its *readings* is a row, the rows of
one event are adjacent and the first is its ``lead``. They share the event's
dedupe key and content hash, and the lead's verdict is theirs (see
``operators.usage.admission``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import xxhash

hash64 = xxhash.xxh3_64_intdigest


def stable_hash(text: str) -> int:
    """A 64-bit hash that is the same in every process (unlike ``hash``)."""
    return hash64(text.encode())


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole word."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def pair_hashes(keys: list[tuple]) -> np.ndarray:
    """``stable_hash`` of each key's (tenant, meter): it picks the key's window shard, so
    that every dimension tuple of a (tenant, meter) meets in one shard."""
    return np.fromiter((stable_hash(f"{k[0]}\x1f{k[1]}") for k in keys), dtype=np.uint64,
                       count=len(keys))


def content_hashes(
    key_hash: np.ndarray, key_code: np.ndarray, quantity: np.ndarray,
    time_us: np.ndarray, dimensions_hash: np.ndarray,
) -> np.ndarray:
    """The content an exact repeat must share (the id is the key, not content).

    A hash of tenant, meter (``key_hash``, per pair), quantity, event time and the
    canonical dimensions; the same event in either input shape gets the same value.
    """
    h = mix(key_hash[key_code])
    h = mix(h ^ (quantity + 0.0).view(np.uint64))  # + 0.0: -0.0 and 0.0 are one quantity
    h = mix(h ^ time_us.view(np.uint64))
    return mix(h ^ dimensions_hash)


def event_hashes(content: np.ndarray, lead: np.ndarray) -> np.ndarray:
    """Each reading's content hash replaced by its event's: all its readings folded (in
    their order), so a copy of the event that differs in any reading is a conflict."""
    starts = np.flatnonzero(lead)
    folded = mix(np.bitwise_xor.reduceat(mix(content ^ _position_in_event(lead)), starts))
    return folded[np.cumsum(lead) - 1]


def _position_in_event(lead: np.ndarray) -> np.ndarray:
    """0 for a lead, 1, 2, ... for the readings after it (order matters in the fold)."""
    idx = np.arange(len(lead), dtype=np.int64)
    start = np.maximum.accumulate(np.where(lead, idx, 0))
    return (idx - start).astype(np.uint64)


@dataclass(frozen=True, slots=True)
class EventBatch:
    keys: list[tuple]  # distinct (tenant, meter, dimensions), shared by slices
    key_hash: np.ndarray  # uint64 pair_hashes(keys)
    key_code: np.ndarray  # int64 index into keys
    quantity: np.ndarray  # float64
    time_us: np.ndarray  # int64, event time
    # int64, the greatest event time of the read up to and including each event: the
    # watermark an event meets is the one of its arrival, not of the whole read
    seen_max_us: np.ndarray
    id_hash: np.ndarray  # uint64, dedupe key
    content_hash: np.ndarray  # uint64, tells an exact repeat from a conflict
    row: np.ndarray  # int64, each event's position in ``lines`` and ``positions``
    lead: np.ndarray  # bool, the first reading of its event (see module doc)
    value_hash: np.ndarray  # uint64, a unique_count reading's value; 0 for other meters
    # The whole read's records and their Kafka offsets (or line numbers), kept for
    # the dead-letter store. Slices share them instead of copying: most events
    # never become dead letters (see __reduce__ for a slice sent to another process).
    lines: list[bytes]
    positions: np.ndarray  # int64
    source: str
    partition: int | None

    def __len__(self) -> int:
        return len(self.row)

    def raw(self, i: int) -> bytes:
        """The record of event ``i``, as it was read."""
        return self.lines[self.row[i]]

    def offset(self, i: int) -> int:
        """The Kafka offset (or line number) of event ``i``."""
        return int(self.positions[self.row[i]])

    def take(self, idx: np.ndarray) -> EventBatch:
        """The events at positions ``idx`` (an int array), in that order."""
        return replace(
            self,
            key_code=self.key_code[idx],
            quantity=self.quantity[idx],
            time_us=self.time_us[idx],
            seen_max_us=self.seen_max_us[idx],
            id_hash=self.id_hash[idx],
            content_hash=self.content_hash[idx],
            row=self.row[idx],
            lead=self.lead[idx],
            value_hash=self.value_hash[idx],
        )

    def __reduce__(self):
        # Pickled only when a slice crosses to another process: it takes its own
        # records, not the whole read's.
        own = replace(self, row=np.arange(len(self.row), dtype=np.int64),
                      lines=list(map(self.lines.__getitem__, self.row.tolist())),
                      positions=self.positions[self.row])
        return EventBatch, tuple(getattr(own, f.name) for f in fields(EventBatch))

    def split_by_id(self, shards: int) -> list[tuple[int, EventBatch]]:
        """Split into per-shard batches by id hash, so copies meet in one shard."""
        if len(self) == 0:
            return []
        if shards == 1:
            return [(0, self)]
        shard = (self.id_hash % np.uint64(shards)).astype(np.int64)
        order = np.argsort(shard, kind="stable")  # keeps arrival order inside a shard
        bounds = np.flatnonzero(np.diff(shard[order])) + 1
        return [
            (int(shard[part[0]]), self.take(part)._own_keys())
            for part in np.split(order, bounds)
        ]

    def _own_keys(self) -> EventBatch:
        """The same events with only the keys they use: a slice that goes to another
        process should not carry the whole read's keys."""
        used, code = np.unique(self.key_code, return_inverse=True)
        keys = self.keys
        return replace(self, keys=[keys[u] for u in used.tolist()], key_hash=self.key_hash[used],
                       key_code=code)
