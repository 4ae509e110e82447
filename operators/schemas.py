"""The output datasets: their Arrow schemas and how rows become tables.

Every dataset is Hive-partitioned by ``date=YYYY-MM-DD`` (UTC); the ``date``
column lives in the path, not in the files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

US_PER_DAY = 86_400_000_000
TIMESTAMP = pa.timestamp("us", tz="UTC")
MONEY = pa.decimal128(38, 9)

ROLLUPS_SCHEMA = pa.schema(
    [
        ("tenant", pa.string()),
        ("meter", pa.string()),
        # group_by dimensions of the meter's definition; empty for a meter without
        ("dimensions", pa.map_(pa.string(), pa.string())),
        ("window_start", TIMESTAMP),
        ("window_end", TIMESTAMP),
        ("quantity", pa.float64()),  # the meter's aggregation (README "Aggregations")
        ("events", pa.int64()),
        ("quantity_max", pa.float64()),
        ("last_event_time", TIMESTAMP),
        ("quantity_last", pa.float64()),
        ("revision", pa.int32()),
        ("cost", MONEY),  # null until a price catalog applies
        ("currency", pa.string()),
        ("aggregation", pa.string()),  # sum | count | unique_count | max | min | latest
    ]
)

DEAD_LETTER_SCHEMA = pa.schema(
    [
        ("received_at", TIMESTAMP),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.binary()),
        ("source", pa.string()),  # Kafka topic or file path
        ("partition", pa.int32()),  # Kafka partition; null for files
        ("offset", pa.int64()),  # Kafka offset or 1-based line number
    ]
)


BURN_SCHEMA = pa.schema(
    [
        ("tenant", pa.string()),
        ("hour_start", TIMESTAMP),
        ("hour_end", TIMESTAMP),
        ("cost", MONEY),
        ("currency", pa.string()),
        ("expected_cost", MONEY),  # from the anomaly model; null until it is wired in
        ("anomaly_score", pa.float64()),
        ("model", pa.string()),
        ("credits_remaining", MONEY),  # null for a tenant without credits
        ("hours_to_exhaustion", pa.float64()),  # null when the recent burn is zero
        ("budget", MONEY),
        ("revision", pa.int32()),  # a late cost restates the hour: take the highest
    ]
)

LEDGER_SCHEMA = pa.schema(
    [
        ("tenant", pa.string()),
        ("time", TIMESTAMP),  # the hour the entry belongs to
        ("kind", pa.string()),  # grant | consume | expire
        ("grant_id", pa.string()),
        ("amount", MONEY),  # + grant, - consume / expire
        ("balance", MONEY),  # the tenant's live credits after the entry
    ]
)

ALERTS_SCHEMA = pa.schema(
    [
        ("alert_id", pa.string()),
        ("dedup_key", pa.string()),
        ("kind", pa.string()),
        ("tenant", pa.string()),
        ("meter", pa.string()),
        ("severity", pa.string()),
        ("action", pa.string()),  # trigger | resolve
        ("opened_at", TIMESTAMP),
        ("at", TIMESTAMP),
        ("summary", pa.string()),
        ("payload", pa.string()),  # the alert as JSON (no secrets)
        ("sink", pa.string()),  # webhook name; empty when none is configured
        ("status", pa.string()),  # delivered | failed | pending | recorded
        ("attempts", pa.int32()),
        ("last_error", pa.string()),
        ("http_status", pa.int32()),
        ("recorded_at", TIMESTAMP),
    ]
)


@dataclass(frozen=True)
class Dataset:
    name: str
    schema: pa.Schema
    time_column: int  # position of the time (µs) that picks the date partition
    to_columns: Callable[[list[tuple]], list[list]]

    def table(self, rows: list[tuple]) -> pa.Table:
        cols = self.to_columns(rows)
        return pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(cols, self.schema, strict=True)],
            schema=self.schema,
        )

    def date_of(self, row: tuple) -> int:
        """Days since the epoch of a row's date partition."""
        return row[self.time_column] // US_PER_DAY


def columns(rows: list[tuple]) -> list[list]:
    # Rows are tuples in schema order.
    return [list(c) for c in zip(*rows, strict=True)]


ROLLUPS = Dataset("rollups", ROLLUPS_SCHEMA, 3, columns)  # rows: operators.records.RollupRow
DEAD_LETTER = Dataset("dead_letter", DEAD_LETTER_SCHEMA, 0, columns)
BURN = Dataset("burn", BURN_SCHEMA, 1, columns)
LEDGER = Dataset("ledger", LEDGER_SCHEMA, 1, columns)
ALERTS = Dataset("alerts", ALERTS_SCHEMA, 8, columns)
