"""Per-event parsing shared by the comparison variants (bare-bones, stdlib + orjson only).

The comparison flows (naive Bytewax, Quix Streams) must accept and reject the same
records as burnwatch, or their totals cannot be compared with the oracle. This is
the straightforward one-event-at-a-time version of the rules in DESIGN.md: a JSON
object, flat or CloudEvents 1.0; non-empty string id, tenant and meter; a finite
quantity >= 0 (not a bool, not a string); RFC 3339 time with an offset, not beyond
10 minutes ahead of the wall clock. It deliberately imports nothing from burnwatch
(the Quix variant runs in its own virtualenv).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import orjson

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
MAX_CLOCK_SKEW_US = 10 * 60 * 1_000_000


def now_us() -> int:
    return (datetime.now(UTC) - EPOCH) // US


def _text(value) -> str | None:
    if type(value) is str and value and not value.isspace():
        return value
    return None


def parse(raw: bytes | None, horizon_us: int) -> dict | None:
    """One record -> {id, tenant, meter, quantity, time_us} or None if it is rejected."""
    if not raw:
        return None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    if "specversion" in obj:
        if obj["specversion"] != "1.0":
            return None
        body = obj.get("data")
        if type(body) is not dict:
            return None
        tenant = _text(obj.get("subject"))
    else:
        body = obj
        tenant = _text(obj.get("tenant"))
    event_id = _text(obj.get("id"))
    meter = _text(body.get("meter"))
    q = body.get("quantity")
    if event_id is None or tenant is None or meter is None:
        return None
    if type(q) not in (int, float):
        return None
    q = float(q)
    if not (0 <= q < math.inf):
        return None
    t = obj.get("time")
    if type(t) is not str:
        return None
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    time_us = (dt - EPOCH) // US
    if time_us > horizon_us:
        return None
    return {"id": event_id, "tenant": tenant, "meter": meter, "quantity": q, "time_us": time_us}
