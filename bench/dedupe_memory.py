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
snapshots its state (the whole index, pickled) into the recovery store every epoch.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

from bench.throughput import REPO, Dataset, ensure_topic, fmt_bytes, log, measure

BURNWATCH = str(REPO / ".venv" / "bin" / "burnwatch")
START_US = 1_795_392_000_000_000  # 2026-11-23T00:00:00Z
SPAN_US = 24 * 3_600_000_000
METERS = ["api_calls", "tokens", "compute_seconds", "storage_gb_hours"]


def write_unique(path: Path, n: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    step = SPAN_US // n
    with tmp.open("w") as fh:
        buf = []
        for i in range(n):
            t = START_US + i * step
            sec, us = divmod(t, 1_000_000)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            buf.append(
                f'{{"id":"uniq-{i:011d}","tenant":"tenant-{i % 50:02d}",'
                f'"meter":"{METERS[(i // 50) % 4]}","quantity":{1 + i % 5},'
                f'"time":"{stamp}.{us // 1000:03d}Z"}}\n'
            )
            if len(buf) >= 100_000:
                fh.write("".join(buf))
                buf.clear()
        fh.write("".join(buf))
    tmp.rename(path)


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
        store = sum(f.stat().st_size for f in (work / "recovery").glob("*"))
    if m.rc != 0:
        raise SystemExit(f"run failed:\n{m.stderr[-3000:]}")
    print(f"dedupe memory, run --until-end: {n:,} distinct ids from {topic} in {m.wall_s:.0f} s "
          f"({n / m.wall_s:,.0f} events/s); peak RSS of the job {fmt_bytes(m.peak_rss)}; "
          f"recovery store {fmt_bytes(store)}")
