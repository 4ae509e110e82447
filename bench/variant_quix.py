"""The same job on Quix Streams, written the way its documentation suggests.

    <quix venv>/bin/python bench/variant_quix.py --brokers HOST:PORT --topic T --out FILE \
        --state-dir DIR [--idle-timeout 5]

    topic (value deserializer: parse, IgnoreMessage on a bad record; event time from the
           payload via timestamp_extractor)
      -> filter(stateful): drop an id already seen (state store = RocksDB, keyed by the
         message key, which is the event id)
      -> group_by tenant|meter (a repartition topic, as Quix requires to re-key)
      -> tumbling_window(1 min, grace 5 min).agg(quantity=Sum, events=Count).final()
      -> update: one JSON line per closed window, appended to --out

It runs until no message has arrived for ``--idle-timeout`` seconds (Quix's
``app.run(timeout=...)``) and reports that idle wait, so the benchmark can
subtract it. Quix drops events later than the grace period, and a window is only
closed by a later event of the same key, so the windows still open when the
topic ends are never written: its totals mismatch the oracle's, honestly.

Runs in its own virtualenv: quixstreams pins confluent-kafka < 2.13 and would
downgrade burnwatch's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import orjson
from quixstreams import Application
from quixstreams.dataframe.windows.aggregations import Count, Sum
from quixstreams.models.serializers import Deserializer, IgnoreMessage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from naive_common import MAX_CLOCK_SKEW_US, now_us, parse  # noqa: E402

LAST_ACTIVITY = [time.monotonic()]


class UsageDeserializer(Deserializer):
    def __init__(self, horizon_us: int) -> None:
        super().__init__()
        self.horizon_us = horizon_us

    def __call__(self, value: bytes, ctx):
        LAST_ACTIVITY[0] = time.monotonic()
        event = parse(value, self.horizon_us)
        if event is None:
            raise IgnoreMessage("rejected")
        return event


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--state-dir", type=Path, required=True)
    ap.add_argument("--idle-timeout", type=float, default=5.0)
    args = ap.parse_args()

    app = Application(
        broker_address=args.brokers,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=str(args.state_dir),
        loglevel="WARNING",
    )
    topic = app.topic(
        args.topic,
        key_deserializer="bytes",
        value_deserializer=UsageDeserializer(now_us() + MAX_CLOCK_SKEW_US),
        timestamp_extractor=lambda value, headers, ts, ts_type: value["time_us"] // 1000,
    )
    sdf = app.dataframe(topic)

    def first_arrival(event: dict, state) -> bool:
        if state.get("seen"):
            return False
        state.set("seen", True)
        return True

    sdf = sdf.filter(first_arrival, stateful=True)
    sdf = sdf.group_by(lambda e: f"{e['tenant']}\x1f{e['meter']}", name="tenant_meter")

    def touch(event: dict) -> None:
        LAST_ACTIVITY[0] = time.monotonic()

    sdf = sdf.update(touch)
    sdf = (
        sdf.tumbling_window(timedelta(minutes=1), grace_ms=timedelta(minutes=5))
        .agg(quantity=Sum("quantity"), events=Count())
        .final()
    )
    out = args.out.open("ab")
    windows = [0]

    def write(value: dict, key, timestamp, headers) -> None:
        if isinstance(key, bytes):
            key = orjson.loads(key)
        tenant, meter = key.split("\x1f")
        out.write(orjson.dumps([tenant, meter, value["start"] * 1000, float(value["quantity"]),
                                value["events"]]) + b"\n")
        windows[0] += 1
        LAST_ACTIVITY[0] = time.monotonic()

    sdf = sdf.update(write, metadata=True)
    started = time.monotonic()
    app.run(timeout=args.idle_timeout, collect=False)
    ended = time.monotonic()
    out.close()
    print(json.dumps({"windows": windows[0], "idle_s": max(0.0, ended - LAST_ACTIVITY[0]),
                      "elapsed_s": ended - started}))


if __name__ == "__main__":
    main()
