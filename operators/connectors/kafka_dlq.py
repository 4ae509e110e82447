"""Copy dead letters to a Kafka topic, with the reason in a header.

Delivery is at least once: a batch is flushed (delivered and acknowledged)
before ``write_batch`` returns, so it precedes the snapshot that covers it; a
crash between the two re-sends it on resume. ``dead_letter/`` in the output
is the exact record; the topic is for consumers that react to rejects.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import Producer

from operators import metrics
from operators.records import DeadLetter

log = logging.getLogger(__name__)


class KafkaDeadLetterSink(DynamicSink[tuple[str, list[DeadLetter]]]):
    def __init__(self, brokers: str, topic: str, client_config: dict[str, Any] | None = None):
        self.config = {"bootstrap.servers": brokers, "enable.idempotence": True,
                       "linger.ms": 20, **(client_config or {})}
        self.topic = topic

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _DlqPartition:
        return _DlqPartition(Producer(self.config), self.topic)


class _DlqPartition(StatelessSinkPartition[tuple[str, list[DeadLetter]]]):
    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def write_batch(self, items: list[tuple[str, list[DeadLetter]]]) -> None:
        pending = [(dl.raw, _headers(dl)) for _key, dls in items for dl in dls]
        delay = 0.5
        while pending:
            failed: list = []

            def on_delivery(err, msg, failed=failed):
                if err is not None:
                    failed.append((msg.value(), msg.headers()))

            for value, headers in pending:
                self._produce(value, headers, on_delivery)
            while self.producer.flush(5.0) > 0:
                log.warning("waiting for the DLQ topic to acknowledge topic=%s", self.topic)
            metrics.DLQ_PRODUCED.inc(len(pending) - len(failed))
            if failed:
                log.warning("re-sending dead letters the DLQ topic refused topic=%s count=%d",
                            self.topic, len(failed))
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
            pending = failed

    def _produce(self, value: bytes, headers: list, on_delivery) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value=value, headers=headers,
                                      on_delivery=on_delivery)
                return
            except BufferError:  # local queue full: let deliveries drain, then retry
                self.producer.poll(0.5)

    def close(self) -> None:
        self.producer.flush(30.0)


def _headers(dl: DeadLetter) -> list[tuple[str, bytes]]:
    headers = [
        ("reason", dl.reason.encode()),
        ("detail", dl.detail.encode()),
        ("source", dl.source.encode()),
        ("offset", str(dl.offset).encode()),
    ]
    if dl.partition is not None:
        headers.append(("partition", str(dl.partition).encode()))
    return headers
