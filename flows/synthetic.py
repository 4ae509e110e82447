"""A synthetic usage stream that looks like production traffic.

Per tenant: a heavy-tailed size (log-normal), a few meters each, daily and
weekly seasonality. The stream is in *arrival* order: most events arrive a
moment after their time, a share arrive late (minutes to a day and a half),
some are sent twice (exact repeats, some re-encoded as CloudEvents), some
re-use an id with other content (conflicts), and some lines are bad in the
ways real producers get it wrong. ``Manifest`` counts what was injected, so a
test can check the dead-letter store against it exactly.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import orjson

from operators.records import HOUR_US, to_datetime, to_us

MINUTE_US = 60_000_000
DAY_US = 24 * HOUR_US

# meter -> (probability a tenant uses it, kind of quantity)
METERS = {
    "api_calls": (1.0, "count"),
    "tokens": (0.6, "tokens"),
    "compute_seconds": (0.5, "float"),
    "storage_gb_hours": (0.3, "float"),
}
REGIONS = ["eu-west-1", "us-east-1", "ap-south-1"]


@dataclass
class GeneratorConfig:
    tenants: int = 50
    hours: int = 168
    seed: int = 7
    events_per_tenant_hour: float = 60.0  # mean, before size and seasonality
    dup_rate: float = 0.01
    conflict_rate: float = 0.001
    late_rate: float = 0.01
    bad_rate: float = 0.001
    cloudevents_share: float = 0.3
    end: datetime | None = None  # last hour ends here (default: this hour, UTC)
    # A runaway process: one tenant's traffic multiplied for a few hours.
    runaway_tenant: int | None = None
    runaway_start_hour: int = 0
    runaway_hours: int = 0
    runaway_factor: float = 1.0

    def factor(self, tenant: int, hour: int) -> float:
        start = self.runaway_start_hour
        runaway = tenant == self.runaway_tenant and start <= hour < start + self.runaway_hours
        return self.runaway_factor if runaway else 1.0


@dataclass
class Manifest:
    """What the generator injected."""

    lines: int = 0
    unique_events: int = 0
    duplicates: int = 0
    late: int = 0
    dead_letters: Counter = field(default_factory=Counter)  # by expected reason

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "lines": self.lines,
                "unique_events": self.unique_events,
                "duplicates": self.duplicates,
                "late": self.late,
                "dead_letters": dict(self.dead_letters),
            },
            option=orjson.OPT_INDENT_2,
        )


def _iso(us: int, offset_minutes: int = 0) -> str:
    """RFC 3339 with milliseconds, in UTC ('Z') or at a fixed offset."""
    dt = to_datetime(us)
    if offset_minutes:
        return dt.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat(
            timespec="milliseconds"
        )
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _encode(event: dict, cloudevents: bool, offset_minutes: int = 0) -> bytes:
    time = _iso(event["time_us"], offset_minutes)
    if cloudevents:
        return orjson.dumps(
            {
                "specversion": "1.0",
                "id": event["id"],
                "source": "api-gateway",
                "type": "usage",
                "subject": event["tenant"],
                "time": time,
                "data": {
                    "meter": event["meter"],
                    "quantity": event["quantity"],
                    "dimensions": event["dimensions"],
                },
            }
        )
    return orjson.dumps(
        {
            "id": event["id"],
            "source": "api-gateway",  # identity is (source, id): a copy in either shape is one
            "tenant": event["tenant"],
            "meter": event["meter"],
            "quantity": event["quantity"],
            "time": time,
            "dimensions": event["dimensions"],
        }
    )


def _bad_line(rng: np.random.Generator, event: dict, arrival_us: int) -> tuple[bytes, str]:
    """One malformed record, and the reason it must be rejected with."""
    base = {k: v for k, v in event.items() if k != "time_us"}
    base["time"] = _iso(event["time_us"])
    kind = rng.integers(0, 9)
    if kind == 0:
        good = orjson.dumps(base)
        return good[: len(good) // 2], "invalid_json"
    if kind == 1:
        return b"[1, 2, 3]", "invalid_json"
    if kind == 2:
        return orjson.dumps({**base, "id": ""}), "missing_field"
    if kind == 3:
        return orjson.dumps({k: v for k, v in base.items() if k != "tenant"}), "missing_field"
    if kind == 4:
        return orjson.dumps({**base, "quantity": -1.5}), "invalid_quantity"
    if kind == 5:
        return orjson.dumps({**base, "quantity": "12"}), "invalid_quantity"
    if kind == 6:
        day = to_datetime(event["time_us"]).strftime("%d/%m/%Y")
        return orjson.dumps({**base, "time": day}), "invalid_time"
    if kind == 7:
        # Far beyond any clock skew, whenever the file is replayed.
        return orjson.dumps({**base, "time": "2099-01-01T00:00:00Z"}), "future_timestamp"
    # An event stamped weeks before the stream around it.
    old = arrival_us - int(rng.integers(10, 30)) * DAY_US
    return orjson.dumps({**base, "time": _iso(old)}), "too_late"


def generate(cfg: GeneratorConfig, manifest: Manifest) -> Iterator[tuple[int, list[bytes]]]:
    """Yield (hour index, lines that arrive during that hour), in arrival order."""
    rng = np.random.default_rng(cfg.seed)
    end = cfg.end or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start_us = to_us(end) - cfg.hours * HOUR_US
    tenants = [f"tenant-{i:04d}" for i in range(cfg.tenants)]
    size = rng.lognormal(0.0, 1.2, cfg.tenants)
    size /= size.mean()
    phase = rng.uniform(-3, 3, cfg.tenants)  # peak hour varies by tenant
    uses = {
        m: rng.random(cfg.tenants) < p if p < 1 else np.ones(cfg.tenants, bool)
        for m, (p, _) in METERS.items()
    }
    pending: list[tuple[int, int, bytes]] = []  # heap of (arrival, tiebreak, line)
    seq = 0
    tiebreak = 0

    def push(arrival: int, line: bytes) -> None:
        nonlocal tiebreak
        heapq.heappush(pending, (arrival, tiebreak, line))
        tiebreak += 1

    for h in range(cfg.hours):
        hour_us = start_us + h * HOUR_US
        dt = to_datetime(hour_us)
        daily = 1.0 + 0.6 * np.sin(2 * math.pi * (dt.hour - 8 + phase) / 24)
        weekly = 0.55 if dt.weekday() >= 5 else 1.0
        for t, tenant in enumerate(tenants):
            for meter, (_, kind) in METERS.items():
                if not uses[meter][t]:
                    continue
                lam = cfg.events_per_tenant_hour * size[t] * daily[t] * weekly / 2
                lam *= cfg.factor(t, h)
                n = int(rng.poisson(lam))
                if n == 0:
                    continue
                times = hour_us + rng.integers(0, HOUR_US // 1000, n) * 1000  # ms precision
                if kind == "count":
                    qty = rng.integers(1, 6, n).tolist()
                elif kind == "tokens":
                    qty = np.minimum(rng.pareto(1.5, n) * 200 + 10, 32_000).astype(int).tolist()
                else:
                    qty = np.round(rng.gamma(2.0, 1.5, n), 3).tolist()
                regions = rng.integers(0, len(REGIONS), n)
                for i in range(n):
                    seq += 1
                    event = {
                        "id": f"evt-{cfg.seed}-{seq:010d}",
                        "tenant": tenant,
                        "meter": meter,
                        "quantity": qty[i],
                        "time_us": int(times[i]),
                        "dimensions": {"region": REGIONS[regions[i]]},
                    }
                    _emit_event(cfg, rng, event, manifest, push)
        horizon = hour_us + HOUR_US
        lines = []
        while pending and pending[0][0] < horizon:
            lines.append(heapq.heappop(pending)[2])
        manifest.lines += len(lines)
        yield h, lines
    lines = [heapq.heappop(pending)[2] for _ in range(len(pending))]
    manifest.lines += len(lines)
    yield cfg.hours, lines


def _emit_event(cfg: GeneratorConfig, rng, event: dict, manifest: Manifest, push) -> None:
    t = event["time_us"]
    r = rng.random()
    if r < cfg.bad_rate:
        line, reason = _bad_line(rng, event, t)
        manifest.dead_letters[reason] += 1
        push(t + int(rng.integers(0, 2_000_000)), line)
        return
    manifest.unique_events += 1
    arrival = t + int(rng.integers(0, 2_000_000))  # up to 2 s of transport delay
    if rng.random() < cfg.late_rate:
        manifest.late += 1
        arrival = t + int(rng.lognormal(math.log(20 * MINUTE_US), 1.2))
        arrival = min(arrival, t + 36 * HOUR_US)
    ce = rng.random() < cfg.cloudevents_share
    offset = int(rng.choice([0, 0, 0, 120, -300, 330]))
    push(arrival, _encode(event, ce, offset))
    if rng.random() < cfg.dup_rate:
        # A producer retry: same event, maybe re-encoded in the other shape.
        manifest.duplicates += 1
        push(arrival + int(rng.integers(0, 60_000_000)), _encode(event, rng.random() < 0.5))
    if rng.random() < cfg.conflict_rate:
        manifest.dead_letters["duplicate_conflict"] += 1
        changed = {**event, "quantity": _bump(event["quantity"])}
        push(arrival + int(rng.integers(1, 120_000_000)), _encode(changed, False))


def _bump(q: float | int) -> float | int:
    return q + 1 if isinstance(q, int) else round(q + 0.5, 3)
