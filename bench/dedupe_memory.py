"""Dedupe memory: peak RSS of a whole `burnwatch replay` holding N live dedupe keys.

    .venv/bin/python bench/throughput.py --dedupe-keys 10000000 [--cache-dir DIR]

Writes (once, cached) a JSONL file of N events with N distinct ids, 50 tenants x 4
meters, event times spread evenly over 24 hours in order, then replays it with a
7-day ``dedupe_horizon`` (so no key expires: all N are live at the end) and reports
the job's peak RSS, its wall time, and the index's own size (20 bytes a key).
Few tenants and meters keep the window state small, so the RSS is the dedupe index
plus the fixed cost of the process.

With ``--brokers`` (or $KAFKA_BOOTSTRAP) it also produces the file into a topic (once,
cached) and measures ``burnwatch run --until-end`` on it: the always-on job also
snapshots its state into the recovery store every epoch: the runs of the dedupe index
made since the last snapshot (large ones as files, operators/usage/run_files.py) and the rest.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

from bench.streams import write_spread
from bench.throughput import REPO, Dataset, ensure_topic, fmt_bytes, log, measure

BURNWATCH = str(REPO / ".venv" / "bin" / "burnwatch")
START_US = 1_795_392_000_000_000  # 2026-11-23T00:00:00Z
SPAN_US = 24 * 3_600_000_000
METERS = ["api_calls", "tokens", "compute_seconds", "storage_gb_hours"]


def write_unique(path: Path, n: int) -> None:
    write_spread(path, n, START_US, SPAN_US, lambda i: (
        f'"id":"uniq-{i:011d}","tenant":"tenant-{i % 50:02d}",'
        f'"meter":"{METERS[(i // 50) % 4]}","quantity":{1 + i % 5}'))


def run_dedupe_memory(args) -> None:
    n = args.dedupe_keys
    cache: Path = args.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"unique-{n}.jsonl"
    if not path.is_file():
        log(f"writing {n:,} events with distinct ids to {path} (first run only)")
        write_unique(path, n)
    with tempfile.TemporaryDirectory(prefix="burnwatch-dedupe-") as tmp:
        work = Path(tmp)
        m = measure([BURNWATCH, "replay", str(path), "--out", str(work / "out")],
                    env={"BURNWATCH_DEDUPE_HORIZON": "7d", "BURNWATCH_METRICS_PORT": "0"},
                    workdir=work, every=0.2)
    if m.rc != 0:
        raise SystemExit(f"replay failed:\n{m.stderr[-3000:]}")
    counted = re.search(r"events counted\s+([\d,]+)", m.stdout)
    counted_n = int(counted.group(1).replace(",", "")) if counted else -1
    print(f"dedupe memory, replay: {n:,} distinct ids ({counted_n:,} counted) in "
          f"{m.wall_s:.0f} s ({n / m.wall_s:,.0f} events/s); peak RSS of the job "
          f"{fmt_bytes(m.peak_rss)}; the index itself {fmt_bytes(20 * n)} at 20 bytes a key "
          f"(target: < 1 GiB RSS for 10 million live keys)", flush=True)
    print(m.stdout.strip(), file=sys.stderr)
    if not args.brokers:
        return
    topic = ensure_topic(args.brokers, Dataset(path, n, {}, f"unique-{n}"), args.partitions)
    with tempfile.TemporaryDirectory(prefix="burnwatch-dedupe-") as tmp:
        work = Path(tmp)
        m = measure([BURNWATCH, "run", "--brokers", args.brokers, "--topic", topic, "--out",
                     str(work / "out"), "--recovery-dir", str(work / "recovery"), "--until-end"],
                    env={"BURNWATCH_DEDUPE_HORIZON": "7d", "BURNWATCH_METRICS_PORT": "0"},
                    workdir=work, every=0.2)
        store = sum(f.stat().st_size for f in (work / "recovery").rglob("*") if f.is_file())
    if m.rc != 0:
        raise SystemExit(f"run failed:\n{m.stderr[-3000:]}")
    print(f"dedupe memory, run --until-end: {n:,} distinct ids from {topic} in {m.wall_s:.0f} s "
          f"({n / m.wall_s:,.0f} events/s); peak RSS of the job {fmt_bytes(m.peak_rss)}; "
          f"recovery store {fmt_bytes(store)}, {fmt_bytes(m.written)} written to disk in all")


def run_steady_writes(args) -> None:
    """The always-on job holding N keys while ``--rate`` new events a second arrive.

    What the recovery store costs in steady state: the job first reads the N events
    (its own topic, made afresh, since the new events go into it too), then a producer
    adds ``--rate`` events a second with new ids for ``--steady`` seconds; the bytes the
    job writes to disk (``/proc/<pid>/io``) and its RSS are sampled over the last
    ``--steady`` - 15 seconds.
    """
    import json
    import signal
    import subprocess
    import urllib.request

    import psutil
    from prometheus_client.parser import text_string_to_metric_families

    from bench.latency import SteadyProducer

    n = args.dedupe_keys
    path = args.cache_dir / f"unique-{n}.jsonl"
    topic = ensure_topic(args.brokers, Dataset(path, n, {}, f"unique-{n}-steady"),
                         args.partitions)  # not complete after a run: made afresh each time
    port = 19464 + os.getpid() % 500
    with tempfile.TemporaryDirectory(prefix="burnwatch-steady-") as tmp:
        work = Path(tmp)
        with (work / "log").open("wb") as out:
            job = subprocess.Popen(
                [BURNWATCH, "run", "--brokers", args.brokers, "--topic", topic, "--out",
                 str(work / "out"), "--recovery-dir", str(work / "recovery")],
                env={**os.environ, "BURNWATCH_DEDUPE_HORIZON": "7d",
                     "BURNWATCH_METRICS_PORT": str(port)}, stdout=out, stderr=out)
        try:
            proc = psutil.Process(job.pid)

            def read() -> float:
                try:
                    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                                  timeout=2).read().decode()
                except OSError:
                    return 0.0
                return sum(s.value for family in text_string_to_metric_families(text)
                           for s in family.samples if s.name == "burnwatch_events_read_total")

            started = time.perf_counter()
            while read() < n:
                if job.poll() is not None or time.perf_counter() - started > 600:
                    raise SystemExit(f"the job did not read {n:,} events:\n"
                                     + (work / "log").read_text()[-3000:])
                time.sleep(1)
            log(f"read {n:,} events in {time.perf_counter() - started:.0f} s; producing "
                f"{args.rate:,}/s for {args.steady:.0f} s")
            producer = SteadyProducer(args.brokers, topic, args.rate)
            producer.start()
            time.sleep(15)  # the snapshot of the catch-up is not steady state
            io0, t0, peak = proc.io_counters().write_bytes, time.perf_counter(), 0
            while time.perf_counter() - t0 < args.steady - 15:
                peak = max(peak, proc.memory_info().rss)
                time.sleep(0.5)
            io1, t1 = proc.io_counters().write_bytes, time.perf_counter()
            producer.stop_flag.set()
            producer.join()
            keys = read()
        finally:
            job.send_signal(signal.SIGINT)
            try:
                job.wait(60)
            except subprocess.TimeoutExpired:
                job.kill()
    rate = (io1 - io0) / (t1 - t0)
    print(json.dumps({"keys": n, "rate": args.rate, "seconds": round(t1 - t0, 1),
                      "written_per_s": rate, "peak_rss": peak, "events_read": keys}))
    print(f"always-on with {n:,} dedupe keys, {args.rate:,} new events/s: "
          f"{rate / 1e6:.2f} MB/s written to disk over {t1 - t0:.0f} s, "
          f"peak RSS {fmt_bytes(peak)}")
