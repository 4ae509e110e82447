"""The naive Bytewax flow: the obvious way to write the job, one item per event.

    python bench/variant_naive_bytewax.py --brokers HOST:PORT --topic T --out FILE [--workers N]

    KafkaSource (one item per message) -> map parse -> filter
      -> key by id -> stateful_map dedupe (first arrival wins, state kept for ever)
      -> key by tenant|meter -> fold_window (1-minute tumbling, EventClock, 5 min wait)
      -> FileSink (one JSON line per closed window)

Late events (beyond the EventClock's 5 minutes) go to the window's ``late`` stream
and are dropped, so this flow's totals differ from the oracle's for windows that
received late usage; the benchmark reports that as mismatches.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

import bytewax.operators as op
import orjson
from bytewax.connectors.files import FileSink
from bytewax.connectors.kafka import KafkaSource
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, TumblingWindower, fold_window
from bytewax.run import cli_main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from naive_common import EPOCH, MAX_CLOCK_SKEW_US, now_us, parse  # noqa: E402

WINDOW = timedelta(minutes=1)
WINDOW_US = 60_000_000


def build(brokers: str, topic: str, out: Path) -> Dataflow:
    horizon = now_us() + MAX_CLOCK_SKEW_US
    flow = Dataflow("naive_usage")
    msgs = op.input("read", flow, KafkaSource([brokers], [topic], tail=False))
    events = op.filter_map("parse", msgs, lambda m: parse(m.value, horizon))
    by_id = op.key_on("key_by_id", events, lambda e: e["id"])

    def dedupe(seen, event):
        if seen:
            return True, None
        return True, event

    firsts = op.filter_value("drop_duplicates", op.stateful_map("dedupe", by_id, dedupe),
                             lambda e: e is not None)
    by_meter = op.key_on("key_by_tenant_meter", op.map("unkey", firsts, lambda kv: kv[1]),
                         lambda e: f"{e['tenant']}\x1f{e['meter']}")
    clock = EventClock(lambda e: EPOCH + timedelta(microseconds=e["time_us"]),
                       wait_for_system_duration=timedelta(minutes=5))
    windower = TumblingWindower(length=WINDOW, align_to=EPOCH)
    totals = fold_window(
        "sum_usage", by_meter, clock, windower,
        builder=lambda: [0.0, 0],
        folder=lambda acc, e: [acc[0] + e["quantity"], acc[1] + 1],
        merger=lambda a, b: [a[0] + b[0], a[1] + b[1]],
    )

    def line(kv) -> tuple[str, str]:
        key, (window_id, (qty, n)) = kv
        tenant, meter = key.split("\x1f")
        # A partitioned sink routes by key; FileSink has one partition, so any key will do.
        return key, orjson.dumps([tenant, meter, window_id * WINDOW_US, qty, n]).decode()

    op.output("write", op.map("format", totals.down, line), FileSink(out))
    return flow


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    args.out.touch()
    cli_main(build(args.brokers, args.topic, args.out), workers_per_process=args.workers)


if __name__ == "__main__":
    main()
