"""The records that flow between steps.

Time inside the flow is an ``int`` of microseconds since the Unix epoch, UTC:
it is what NumPy and Arrow store, it sorts and subtracts exactly, and it
converts to a timezone-aware ``datetime`` with :func:`to_datetime` at the
edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US_PER_SECOND = 1_000_000
HOUR_US = 3_600 * US_PER_SECOND


def to_us(dt: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (dt - EPOCH) // timedelta(microseconds=1)


def to_datetime(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


def duration_us(td: timedelta) -> int:
    return td // timedelta(microseconds=1)


# month_of's range: datetime holds years 1 to 9999; the watermark and "never" lie outside.
_FIRST_US = to_us(datetime(1, 1, 1, tzinfo=UTC))
_LAST_US = to_us(datetime(9999, 12, 1, tzinfo=UTC))


def month_of(time_us: int) -> int:
    """YYYYMM of a UTC time: the billing period (graduated tiers, distinct counts, groups).

    Times outside years 1-9999 (an unset watermark, one minus max_lateness near the
    event-time floor) clamp to the first or last month instead of overflowing.
    """
    dt = to_datetime(min(max(time_us, _FIRST_US), _LAST_US))
    return dt.year * 100 + dt.month


class Reason(StrEnum):
    """Why a record went to the dead-letter store (a small, fixed set)."""

    INVALID_JSON = "invalid_json"  # not UTF-8 JSON, or not a JSON object
    MISSING_FIELD = "missing_field"  # id, source, tenant/subject, meter or time absent or empty
    INVALID_FIELD = "invalid_field"  # a field of the wrong type (e.g. dimensions not an object)
    INVALID_QUANTITY = "invalid_quantity"  # non-numeric, NaN, infinite, negative or > max_quantity
    INVALID_TIME = "invalid_time"  # not RFC 3339 with an offset, or outside the supported range
    INVALID_VALUE = "invalid_value"  # its content made a step fail in a way no other reason names
    FUTURE_TIMESTAMP = "future_timestamp"  # beyond max_clock_skew ahead of the wall clock
    TOO_LATE = "too_late"  # beyond max_lateness behind the watermark
    DUPLICATE_CONFLICT = "duplicate_conflict"  # same id as an earlier event, other content
    NO_METER = "no_meter"  # no meter definition (and no legacy `meter` field) takes the event
    MISSING_PROPERTY = "missing_property"  # a matching meter's value_property is absent or null


class UsageEvent(NamedTuple):
    """One valid usage event, whatever shape it arrived in (immutable)."""

    id: str
    tenant: str
    meter: str
    quantity: float
    time_us: int
    dimensions: tuple[tuple[str, str], ...]  # sorted (key, value) pairs


Dimensions = tuple[tuple[str, str], ...]  # sorted (key, value) pairs; () for none


class RollupRow(NamedTuple):
    """One emission of one window of one (tenant, meter, dimensions): a ``rollups/`` row
    (fields in the schema's order, see operators/schemas.py)."""

    tenant: str
    meter: str
    dimensions: Dimensions
    window_start_us: int
    window_end_us: int
    quantity: float  # the meter's aggregation of what reached this row (README "Aggregations")
    events: int
    quantity_max: float
    last_time_us: int
    quantity_last: float
    revision: int
    cost: object = None  # Decimal, once a price applies
    currency: str | None = None
    aggregation: str = "sum"


@dataclass(frozen=True, slots=True)
class RawBatch:
    """Records as read, one source position each.

    ``source`` is a file path or a Kafka topic; ``partition`` is the Kafka
    partition (``None`` for files); ``offsets[i]`` is the Kafka offset or the
    1-based line number of ``lines[i]``. ``partitions`` is how many partitions
    the source has, and ``at_end`` says the partition had nothing more to read
    after this (a read without lines can say only that): both for the watermark
    that closes windows.
    """

    lines: Sequence[bytes]
    source: str
    partition: int | None
    offsets: Sequence[int]
    partitions: int = 1
    at_end: bool = False


class DeadLetter(NamedTuple):
    received_at_us: int
    reason: str
    detail: str
    raw: bytes
    source: str
    partition: int | None
    offset: int


def partition_key(index: int) -> str:
    """The key that sends items to sink partition ``index`` of every dataset's writer."""
    return f"p{index}"
