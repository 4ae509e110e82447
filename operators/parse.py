"""Parse raw records (bytes of one JSON object) into :class:`UsageEvent`.

Two shapes are accepted (see DESIGN.md): flat, and CloudEvents 1.0
structured JSON where ``subject`` is the tenant and ``data`` holds meter,
quantity and dimensions. Anything else is a rejection with a
:class:`Reason`, never an exception.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import NamedTuple

import orjson

from operators.batch import EventBatch
from operators.records import DeadLetter, RawBatch, Reason, UsageEvent, to_us


class Rejection(NamedTuple):
    reason: Reason
    detail: str


_SCALARS = (str, int, float, bool)


def _text(obj: dict, key: str) -> str | Rejection:
    value = obj.get(key)
    if type(value) is str and value and not value.isspace():
        return value
    if value is None or value == "":
        return Rejection(Reason.MISSING_FIELD, f"{key} is missing or empty")
    if not isinstance(value, str):
        return Rejection(Reason.INVALID_FIELD, f"{key} must be a string")
    return Rejection(Reason.MISSING_FIELD, f"{key} is blank")


def _quantity(value: object) -> float | Rejection:
    if type(value) is float and 0 <= value < math.inf:  # the common case, checked first
        return value
    if value is None:
        return Rejection(Reason.MISSING_FIELD, "quantity is missing")
    # bool is an int subclass; true is not a quantity
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Rejection(Reason.INVALID_QUANTITY, "quantity is not a number")
    try:
        q = float(value)
    except OverflowError:
        return Rejection(Reason.INVALID_QUANTITY, "quantity is out of range")
    if not math.isfinite(q):
        return Rejection(Reason.INVALID_QUANTITY, "quantity is not finite")
    if q < 0:
        return Rejection(Reason.INVALID_QUANTITY, "quantity is negative")
    return q


def _time_us(value: object) -> int | Rejection:
    if value is None or value == "":
        return Rejection(Reason.MISSING_FIELD, "time is missing")
    if not isinstance(value, str):
        return Rejection(Reason.INVALID_TIME, "time must be an RFC 3339 string")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return Rejection(Reason.INVALID_TIME, "time is not RFC 3339")
    if dt.tzinfo is None:
        return Rejection(Reason.INVALID_TIME, "time has no UTC offset")
    try:
        return to_us(dt)
    except OverflowError:
        return Rejection(Reason.INVALID_TIME, "time is out of range")


def _dimensions(value: object) -> tuple[tuple[str, str], ...] | Rejection:
    if value is None:
        return ()
    if type(value) is not dict:
        return Rejection(Reason.INVALID_FIELD, "dimensions must be an object")
    pairs = []
    for k, v in value.items():
        if type(v) is not str:
            if v is not None and not isinstance(v, _SCALARS):
                return Rejection(Reason.INVALID_FIELD, f"dimension {k!r} is not a scalar")
            v = "" if v is None else str(v)
        pairs.append((k, v))
    if len(pairs) > 1:
        pairs.sort()
    return tuple(pairs)


def parse_event(raw: bytes) -> UsageEvent | Rejection:
    """Parse one record; return the event or why it was rejected."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as ex:
        # orjson refuses NaN, Infinity and 1e999; the stdlib reads them, so such a record
        # is reported as the bad quantity it is rather than as bad JSON.
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            return Rejection(Reason.INVALID_JSON, f"invalid JSON: {ex}"[:200])
    if not isinstance(obj, dict):
        return Rejection(Reason.INVALID_JSON, "not a JSON object")

    if "specversion" in obj:
        if obj["specversion"] != "1.0":
            return Rejection(Reason.INVALID_FIELD, "specversion must be 1.0")
        body = obj.get("data")
        if not isinstance(body, dict):
            return Rejection(Reason.INVALID_FIELD, "CloudEvents data must be a JSON object")
        tenant = _text(obj, "subject")
    else:
        body = obj
        tenant = _text(obj, "tenant")

    event_id = _text(obj, "id")
    meter = _text(body, "meter")
    quantity = _quantity(body.get("quantity"))
    time_us = _time_us(obj.get("time"))
    dimensions = _dimensions(body.get("dimensions"))
    for part in (event_id, tenant, meter, quantity, time_us, dimensions):
        if type(part) is Rejection:
            return part
    return UsageEvent(event_id, tenant, meter, quantity, time_us, dimensions)


def parse_batch(
    raw: RawBatch, *, now_us: int, max_clock_skew_us: int
) -> tuple[EventBatch, list[DeadLetter]]:
    """Parse a batch; events stamped too far ahead of ``now_us`` are rejected.

    ``now_us`` is the wall clock when the batch was read: a gap in traffic
    does not make the next event a future one.
    """
    horizon = now_us + max_clock_skew_us
    events: list[UsageEvent] = []
    keep: list[int] = []
    rejects: list[DeadLetter] = []
    for i, line in enumerate(raw.lines):
        parsed = parse_event(line)
        if type(parsed) is UsageEvent:
            if parsed.time_us <= horizon:
                events.append(parsed)
                keep.append(i)
                continue
            parsed = Rejection(
                Reason.FUTURE_TIMESTAMP,
                f"time is {(parsed.time_us - now_us) / 1e6:.0f}s ahead of the clock",
            )
        rejects.append(
            DeadLetter(
                now_us, parsed.reason.value, parsed.detail, bytes(line),
                raw.source, raw.partition, raw.offsets[i],
            )
        )
    lines, offsets = raw.lines, raw.offsets
    batch = EventBatch.from_events(
        events,
        raw=[bytes(lines[i]) for i in keep],
        offsets=[offsets[i] for i in keep],
        source=raw.source,
        partition=raw.partition,
    )
    return batch, rejects
