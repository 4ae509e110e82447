"""Shared test helpers: build records, run the usage flow on TestingSource."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.settings import load_settings
from flows.usage import Sinks, build_flow, usage_config
from operators.records import RawBatch, to_datetime, to_us

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
MIN = 60_000_000


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def event(eid: str, minutes: float, quantity: float = 1, tenant: str = "acme",
          meter: str = "api_calls") -> bytes:
    return orjson.dumps({"id": eid, "tenant": tenant, "meter": meter, "quantity": quantity,
                         "time": at(minutes)})


def reads(*groups: list[bytes], source: str = "test.jsonl") -> list[RawBatch]:
    """One RawBatch per group, with running line numbers."""
    out, line = [], 1
    for g in groups:
        out.append(RawBatch(list(g), source, None, range(line, line + len(g))))
        line += len(g)
    return out


def config(**settings):
    cfg = usage_config(load_settings(None, **settings), follow_wall_clock=False)
    return replace(cfg, id_shards=settings.get("id_shards", 4),
                   admission=replace(cfg.admission, window_shards=settings.get("window_shards", 4)))


def run(items, *, now: datetime | None = None, **settings):
    """Run the flow; return (rollup rows, dead letters)."""
    rows, dls = [], []
    clock_us = to_us(now or T0 + timedelta(days=1))
    flow = build_flow(config(**settings), TestingSource(items), Sinks(TestingSink(rows),
                      TestingSink(dls)), lambda: clock_us)
    run_main(flow)
    return [r for _, batch in rows for r in batch], [d for _, batch in dls for d in batch]


def window(row) -> tuple:
    """(minute of window start, quantity, events, revision) of a rollup row."""
    return ((to_datetime(row.window_start_us) - T0) / timedelta(minutes=1), row.quantity,
            row.events, row.revision)
