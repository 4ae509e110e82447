"""A columnar batch of parsed events: what flows from parsing to dedupe.

Whole batches move between steps so that the per-item cost of the dataflow
is paid once per Kafka fetch or file chunk, not once per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xxhash

from operators.records import UsageEvent

_hash64 = xxhash.xxh3_64_intdigest


def stable_hash(text: str) -> int:
    """A 64-bit hash that is the same in every process (unlike ``hash``)."""
    return _hash64(text.encode())


@dataclass(frozen=True, slots=True)
class EventBatch:
    tenants: list[str]
    meters: list[str]
    quantity: np.ndarray  # float64
    time_us: np.ndarray  # int64, event time
    id_hash: np.ndarray  # uint64, dedupe key
    content_hash: np.ndarray  # uint64, tells an exact repeat from a conflict
    raw: list[bytes]  # kept whole for the dead-letter store
    offsets: np.ndarray  # int64, Kafka offset or line number
    source: str
    partition: int | None

    @classmethod
    def from_events(
        cls,
        events: Sequence[UsageEvent],
        *,
        raw: list[bytes],
        offsets: Sequence[int],
        source: str,
        partition: int | None,
    ) -> EventBatch:
        n = len(events)
        id_hash = np.empty(n, dtype=np.uint64)
        content_hash = np.empty(n, dtype=np.uint64)
        for i, e in enumerate(events):
            id_hash[i] = _hash64(e.id.encode())
            # The content an exact repeat must share; the id is the key, not content.
            content_hash[i] = _hash64(
                f"{e.tenant}\x1f{e.meter}\x1f{e.quantity!r}\x1f{e.time_us}\x1f{e.dimensions!r}"
                .encode()
            )
        return cls(
            tenants=[e.tenant for e in events],
            meters=[e.meter for e in events],
            quantity=np.fromiter((e.quantity for e in events), dtype=np.float64, count=n),
            time_us=np.fromiter((e.time_us for e in events), dtype=np.int64, count=n),
            id_hash=id_hash,
            content_hash=content_hash,
            raw=raw,
            offsets=np.asarray(offsets, dtype=np.int64),
            source=source,
            partition=partition,
        )

    def __len__(self) -> int:
        return len(self.raw)

    def take(self, idx: np.ndarray) -> EventBatch:
        """The events at positions ``idx`` (an int array), in that order."""
        il = idx.tolist()
        return EventBatch(
            tenants=[self.tenants[i] for i in il],
            meters=[self.meters[i] for i in il],
            quantity=self.quantity[idx],
            time_us=self.time_us[idx],
            id_hash=self.id_hash[idx],
            content_hash=self.content_hash[idx],
            raw=[self.raw[i] for i in il],
            offsets=self.offsets[idx],
            source=self.source,
            partition=self.partition,
        )

    def split_by_id(self, shards: int) -> list[tuple[int, EventBatch]]:
        """Split into per-shard batches by id hash, so copies meet in one shard."""
        if len(self) == 0:
            return []
        shard = (self.id_hash % np.uint64(shards)).astype(np.int64)
        order = np.argsort(shard, kind="stable")  # keeps arrival order inside a shard
        bounds = np.flatnonzero(np.diff(shard[order])) + 1
        return [
            (int(shard[part[0]]), self.take(part))
            for part in np.split(order, bounds)
        ]
