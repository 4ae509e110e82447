"""Read a Kafka topic as batches: one item per fetch, offsets in the snapshot.

Bytewax's stock ``KafkaSource`` emits one item per message (about 6 µs of
dataflow overhead each, measured here). This source hands a whole fetch
downstream as one :class:`RawBatch`, which is what the batch-oriented flow
wants. Like the stock source, it assigns partitions directly (no consumer
group: the Bytewax recovery store holds the offsets), so a restart resumes
exactly after the last snapshot.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from operators import metrics
from operators.records import RawBatch

log = logging.getLogger(__name__)

# Without this librdkafka waits up to 1 s before refilling an empty fetch queue,
# which idles a consumer that keeps up (tripled parse throughput here at 10 ms).
FAST_FETCH = {"fetch.queue.backoff.ms": 10}


class KafkaBatchSource(FixedPartitionedSource[RawBatch, int]):
    def __init__(
        self,
        brokers: str,
        topic: str,
        *,
        until_end: bool = False,
        # Up to this many messages per read. Larger reads mean fewer items between processes:
        # 40,000 instead of 10,000 made `--processes 2` 6.5 % faster and did not change one
        # worker (A/B, docs/throughput.md). A read returns what is there after 50 ms at most.
        max_messages: int = 40_000,
        client_config: dict[str, Any] | None = None,
        workers: int = 1,
    ) -> None:
        self.brokers = brokers
        self.workers = workers  # of the whole cluster, only to warn of an uneven spread
        self.topic = topic
        self.until_end = until_end
        self.max_messages = max_messages
        self.client_config = dict(client_config or {})
        self.partitions = 0  # the topic's, set by list_parts (Bytewax calls it first)

    def _config(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.brokers, **self.client_config}

    def list_parts(self) -> list[str]:
        meta = AdminClient(self._config()).list_topics(self.topic, timeout=30)
        topic = meta.topics[self.topic]
        if topic.error is not None:
            raise RuntimeError(f"topic {self.topic!r}: {topic.error.str()}")
        self.partitions = len(topic.partitions)
        uneven = uneven_spread(self.partitions, self.workers)
        if uneven:
            log.warning("topic %s: %s", self.topic, uneven)
        return [str(p) for p in sorted(topic.partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None):
        config = {
            "group.id": "burnwatch-unused",  # required by librdkafka; offsets live in snapshots
            "enable.auto.commit": False,
            **FAST_FETCH,
            **self._config(),
            # Last, so that no `kafka:` setting overrides them. Reaching a partition's end
            # says it has nothing to hold the closing watermark back for.
            "enable.partition.eof": True,
            # An offset the broker does not have stops the partition with an error, and
            # _resume_in_range decides; librdkafka would silently jump to one end.
            "auto.offset.reset": "error",
        }
        return _KafkaPartition(
            config, self.topic, int(for_part), resume_state, self.max_messages, self.until_end,
            self.partitions or len(self.list_parts()),
        )


def uneven_spread(partitions: int, workers: int) -> str | None:
    """Why ``workers`` would share ``partitions`` unevenly, or None.

    A partition is read and parsed by one worker (so that its order, and so
    first-arrival dedupe, is kept), and parsing is most of the work: with 3
    partitions, one of 2 workers does about twice the other's parsing.
    """
    if workers <= 1 or partitions % workers == 0:
        return None
    most, least = -(-partitions // workers), partitions // workers
    return (f"{partitions} partitions for {workers} workers: each partition is read and "
            f"parsed by one worker, so some read {most} and some {least}; a topic with a "
            f"multiple of {workers} partitions spreads the work evenly")


def at_end_after(msgs, was_at_end: bool) -> bool:
    """Whether a partition is at its end after the messages of one ``consume``.

    librdkafka reports the end once per offset reached, so it is at its end if no record
    came after the last such report; other errors (a broker gone, say) change nothing.
    Read from the back: usually the last message decides.
    """
    for msg in reversed(msgs):
        err = msg.error()
        if err is None:
            return False
        if err.code() == KafkaError._PARTITION_EOF:
            return True
    return was_at_end


class OffsetsAheadError(RuntimeError):
    """The recovery store resumes past the end of a partition."""


class _KafkaPartition(StatefulSourcePartition[RawBatch, int]):
    def __init__(
        self, config: dict, topic: str, partition: int, resume_offset: int | None,
        max_messages: int, until_end: bool, partitions: int,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.partitions = partitions
        self.max_messages = max_messages
        self.until_end = until_end
        self.offset = OFFSET_BEGINNING if resume_offset is None else resume_offset
        self.consumer = Consumer(config)
        # Learn the partition's leader first: assigned before it is known, librdkafka
        # waits for a 500 ms retry timer before it looks up the start offset.
        try:
            self.consumer.list_topics(topic, timeout=30)
        except KafkaException as ex:  # the consumer keeps trying; only the head start is lost
            log.warning("kafka topic=%s: no metadata yet (%s)", topic, ex)
        self.consumer.assign([TopicPartition(topic, partition, self.offset)])
        self.out_of_range = False
        self.at_end = False  # the last read reached the partition's end
        self.drained = False
        self.lag_checked_at = 0.0
        self.label = f"{topic}/{partition}"

    def next_batch(self) -> list[RawBatch]:
        if self.drained:
            raise StopIteration
        if self.out_of_range:
            self._resume_in_range()
            if self.out_of_range:
                return []
        msgs = self.consumer.consume(self.max_messages, 0.05)
        good = [m for m in msgs if m.error() is None]
        was_at_end = self.at_end
        if len(good) < len(msgs):
            self._errors(msgs)
        # drained: a backfill's partition has nothing more to come, whatever followed
        self.at_end = at_end_after(msgs, self.at_end) or self.drained
        if not good:
            self._report_lag()
            if self.at_end and not was_at_end:  # only that it has reached the end
                return [RawBatch([], self.topic, self.partition, [], self.partitions, True)]
            return []
        # A tombstone (null value) is not a usage event: it reaches the dead letters.
        lines = [m.value() or b"" for m in good]
        first, last = good[0].offset(), good[-1].offset()
        # Offsets only grow within a partition, so this span means there is no gap.
        offsets = (range(first, last + 1) if last - first + 1 == len(good)
                   else [m.offset() for m in good])
        self.offset = last + 1
        self._report_lag()
        metrics.EVENTS_READ.labels(self.label).inc(len(lines))
        return [RawBatch(lines, self.topic, self.partition, offsets, self.partitions,
                         self.at_end)]

    def _errors(self, msgs) -> None:
        for msg in msgs:
            err = msg.error()
            if err is None:
                continue
            if err.code() == KafkaError._PARTITION_EOF:
                self.drained = self.until_end
                continue
            if err.code() == KafkaError._AUTO_OFFSET_RESET:
                log.warning("kafka topic=%s partition=%d: %s", self.topic, self.partition,
                            err.str())
                self.out_of_range = True
                continue
            # Transient broker errors are retried by librdkafka itself; log, keep going.
            log.warning("kafka error topic=%s partition=%d error=%s",
                        self.topic, self.partition, err)

    def _resume_in_range(self) -> None:
        """The next offset to read is not on the broker.

        Below the partition's start, retention deleted records before they were read:
        they are lost, said so in the log and in a metric, and reading goes on from the
        oldest record left. Otherwise the offset was past the partition's end (the start
        only grows, so it still is, or new records have since filled the gap): the
        partition is not the one the recovery store was made for (re-created, truncated,
        another cluster), reading from either end would count records twice or skip
        them, so the job stops and says why.
        """
        try:
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(self.topic, self.partition), timeout=2, cached=False
            )
        except KafkaException as ex:
            log.warning("kafka topic=%s partition=%d: offsets out of range, broker not "
                        "answering (%s); trying again", self.topic, self.partition, ex)
            return
        if self.offset >= low:
            held = f"offsets {low} to {high - 1}" if high > low else "no records"
            raise OffsetsAheadError(
                f"topic {self.topic} partition {self.partition}: the next offset to read, "
                f"{self.offset} (from the recovery store or this run), is past the "
                f"partition's end, the broker says (it now holds {held}). It is not the "
                "data the store was made for (the topic was deleted and re-created, "
                "truncated by an unclean leader election, or the store belongs to another "
                "cluster); see docs/operations.md, 'The input is behind the recovery store'"
            )
        if self.offset >= 0:  # else nothing read yet: OFFSET_BEGINNING
            log.error("kafka topic=%s partition=%d: offsets %d to %d were deleted by "
                      "retention before they were read (up to %d records lost); "
                      "reading on from %d", self.topic, self.partition, self.offset,
                      low - 1, low - self.offset, low)
            metrics.KAFKA_OFFSETS_LOST.labels(self.topic, str(self.partition)).inc(
                low - self.offset)
        self.offset = low
        self.consumer.assign([TopicPartition(self.topic, self.partition, self.offset)])
        self.out_of_range = False

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now - self.lag_checked_at < 5:
            return
        self.lag_checked_at = now
        # The end offset of the last fetch response, not a query to the broker: a query
        # waits behind the consumer's fetch, which the broker holds up to fetch.wait.max.ms
        # (500 ms) when the partition has nothing new; the worker would wait with it.
        try:
            _low, high = self.consumer.get_watermark_offsets(
                TopicPartition(self.topic, self.partition), cached=True
            )
        except Exception:  # noqa: BLE001 - lag is best effort
            return
        if self.offset >= 0 and high >= 0:  # before the first fetch response: not known
            metrics.CONSUMER_LAG.labels(self.topic, str(self.partition)).set(high - self.offset)

    def snapshot(self) -> int:
        return self.offset

    def close(self) -> None:
        self.consumer.close()
