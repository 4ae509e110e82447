"""Produce generated usage lines into Kafka as a real producer would: keyed by event id.

Copies of an event share its id, so keying by id keeps them in one partition, in order
(first-arrival dedupe relies on that). Used by the integration tests and the benchmark.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from confluent_kafka import Producer


def event_key(line: bytes) -> bytes | None:
    """The record's id as its Kafka key; none for a record without one (a bad record)."""
    try:
        eid = orjson.loads(line).get("id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return eid.encode() if isinstance(eid, str) and eid else None


def produce(bootstrap: str, topic: str, lines: Iterable[bytes], *,
            config: dict[str, Any] | None = None, flush_timeout_s: float = 60) -> None:
    """Send every line; raises if any is still undelivered after ``flush_timeout_s``."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50,
                         "enable.idempotence": True, "queue.buffering.max.messages": 500_000,
                         **(config or {})})
    for line in lines:
        while True:
            try:
                producer.produce(topic, value=line, key=event_key(line))
                break
            except BufferError:
                producer.poll(0.1)
    left = producer.flush(flush_timeout_s)
    if left:
        raise RuntimeError(f"{left} messages not delivered to {topic}")
