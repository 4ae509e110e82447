"""Prometheus metrics of the flow, labelled by step where it helps."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge

EVENTS_READ = Counter("burnwatch_events_read", "Records read from the input", ["source"])
EVENTS_ACCEPTED = Counter("burnwatch_events_accepted", "Events counted into the totals")
DUPLICATES = Counter("burnwatch_duplicates", "Exact repeats of an event already counted")
DEAD_LETTERS = Counter("burnwatch_dead_letters", "Records rejected, by reason", ["reason"])
LATE_PARTIALS = Counter(
    "burnwatch_late_partials",
    "Late (tenant, meter, window) partial aggregates, one per key per window-step batch,"
    " that reached an already emitted window",
)
DIMENSION_OVERFLOW = Counter(
    "burnwatch_dimension_overflow",
    "Readings whose dimensions went to the __other__ group: their (tenant, meter) had"
    " max_groups dimension tuples in the month already",
)
ROLLUP_ROWS = Counter("burnwatch_rollup_rows", "Rollup rows emitted, by kind", ["kind"])
ROWS_WRITTEN = Counter("burnwatch_rows_written", "Rows written, by dataset", ["dataset"])
FILES_WRITTEN = Counter("burnwatch_files_written", "Files written, by dataset", ["dataset"])
WRITE_RETRIES = Counter("burnwatch_write_retries", "Failed writes that were retried", ["dataset"])
DEDUPE_KEYS = Gauge("burnwatch_dedupe_keys", "Event ids remembered for dedupe", ["shard"])
WATERMARK = Gauge(
    "burnwatch_watermark_seconds", "Watermark of a window shard (Unix time)", ["shard"]
)
PARTITION_WATERMARK = Gauge(
    "burnwatch_partition_watermark_seconds",
    "Watermark of a source partition (greatest event time read less allowed_lateness,"
    " plus idle time in always-on mode; Unix time), updated as reads are admitted; windows"
    " close on the least among partitions with more to read",
    ["partition"],
)
KAFKA_OFFSETS_LOST = Counter(
    "burnwatch_kafka_offsets_lost",
    "Offsets that retention deleted before the job read them (records lost to metering)",
    ["topic", "partition"],
)
CONSUMER_LAG = Gauge(
    "burnwatch_consumer_lag", "Messages between the read position and the partition's end",
    ["topic", "partition"],
)
DLQ_PRODUCED = Counter("burnwatch_dlq_produced", "Dead letters produced to the DLQ topic")
UNPRICED_ROWS = Counter("burnwatch_unpriced_rows", "Rollup rows of a meter with no price")
ALERTS_RAISED = Counter("burnwatch_alerts", "Alert actions, by kind and action", ["kind", "action"])
ALERT_DELIVERIES = Counter(
    "burnwatch_alert_deliveries", "Webhook deliveries, by sink and outcome", ["sink", "status"]
)
ALERT_DELIVERY_THREADS = Gauge(
    "burnwatch_alert_delivery_threads",
    "Running alert delivery threads (one per alert sink; 0 while the job runs: none are sent)",
)
ALERTS_PENDING = Gauge(
    "burnwatch_alert_deliveries_pending", "Alert deliveries queued or waiting for a retry"
)


def total(name: str) -> float:
    """Sum of a counter over all its label values (for the replay summary)."""
    value = 0.0
    for metric in REGISTRY.collect():
        if metric.name == name:
            value += sum(s.value for s in metric.samples if s.name == name + "_total")
    return value


def by_label(name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in REGISTRY.collect():
        if metric.name == name:
            for s in metric.samples:
                if s.name == name + "_total":
                    out[s.labels[label]] = out.get(s.labels[label], 0.0) + s.value
    return out
