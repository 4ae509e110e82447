"""Always-on latency: how long after a window's end (+ allowed lateness) its rows are written.

    .venv/bin/python bench/throughput.py --latency [--rate 50000] [--duration 240]
                                         [--allowed-lateness 30s] [--brokers HOST:PORT]

A producer thread sends ``--rate`` usage events a second, stamped with the wall clock
(ms), keyed by id, into a fresh 3-partition topic, while ``burnwatch run`` (always-on:
no ``--until-end``, so the watermark also follows the wall clock) consumes it into a
local folder. Every 0.5 s the rollups folder is listed; for each window the time its
first revision-0 row appeared (the file's mtime) is compared with
``window_end + allowed_lateness``, the earliest moment the watermark lets it close.
The target is within 5 s of that; what it takes is a wall-clock tick (1 s grid), the
watermark's 1 s granularity and ``max_file_delay`` (1 s by default).

``BENCH_JOB_PRELUDE`` (Python code run in the job's process before burnwatch's CLI
starts, e.g. a monkeypatch) and any ``BURNWATCH_*`` variable in the environment let
you try a change without editing burnwatch.

It also reports the rate actually produced, the consumer lag at the end (does the job
keep up?), and checks each emitted window's event count against what was produced.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from flows.settings import Settings  # noqa: E402

BURNWATCH = str(REPO / ".venv" / "bin" / "burnwatch")
WINDOW_US = 60_000_000
METERS = ["api_calls", "tokens", "compute_seconds", "storage_gb_hours"]


def log(msg: str) -> None:
    print(f"[latency {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def duration_s(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text)


class SteadyProducer(threading.Thread):
    """``rate`` events/s in 10 ms ticks; counts what it sent per window."""

    def __init__(self, brokers: str, topic: str, rate: int, tenants: int = 300) -> None:
        super().__init__(daemon=True)
        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5,
                                  "queue.buffering.max.messages": 1_000_000,
                                  "batch.size": 1_000_000})
        self.topic = topic
        self.rate = rate
        rng = np.random.default_rng(3)
        weights = rng.lognormal(0.0, 1.2, tenants)
        self.tenant_p = weights / weights.sum()
        self.tenants = [f"tenant-{i:04d}" for i in range(tenants)]
        self.rng = rng
        self.stop_flag = threading.Event()
        self.sent = 0
        self.per_window: Counter = Counter()  # window_start_us -> events
        self.started_at = 0.0
        self.stopped_at = 0.0
        self.behind_ticks = 0

    def run(self) -> None:
        tick = 0.01
        per_tick = self.rate * tick
        carry = 0.0
        seq = 0
        run_id = uuid.uuid4().hex[:6]
        self.started_at = time.time()
        next_at = time.monotonic()
        while not self.stop_flag.is_set():
            carry += per_tick
            n = int(carry)
            carry -= n
            if n:
                now_ms = int(time.time() * 1000)
                window = now_ms * 1000 - (now_ms * 1000) % WINDOW_US
                tenants = self.rng.choice(len(self.tenants), n, p=self.tenant_p).tolist()
                meters = self.rng.integers(0, len(METERS), n).tolist()
                qty = self.rng.integers(1, 6, n).tolist()
                iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms // 1000)) + (
                    f".{now_ms % 1000:03d}Z")
                for i in range(n):
                    seq += 1
                    eid = f"lat-{run_id}-{seq}"
                    value = orjson.dumps({"id": eid, "tenant": self.tenants[tenants[i]],
                                          "meter": METERS[meters[i]], "quantity": qty[i],
                                          "time": iso})
                    while True:
                        try:
                            self.producer.produce(self.topic, value=value, key=eid.encode())
                            break
                        except BufferError:
                            self.producer.poll(0.01)
                self.producer.poll(0)
                self.sent += n
                self.per_window[window] += n
            next_at += tick
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                self.behind_ticks += 1
        self.stopped_at = time.time()
        self.producer.flush(30)


def scan(rollups: Path, seen: dict[str, float], first_row: dict[int, float],
         counts: Counter) -> None:
    """Read new rollup files; remember when each window's first revision-0 row appeared."""
    import pyarrow.parquet as pq

    for f in rollups.rglob("*.parquet"):
        key = str(f)
        if key in seen:
            continue
        try:
            mtime = f.stat().st_mtime
            table = pq.read_table(f, columns=["window_end", "revision", "events"])
        except Exception:  # noqa: BLE001 - half-written: look again at the next scan
            continue
        seen[key] = mtime
        ends = table.column("window_end").cast("int64").to_pylist()  # µs since the epoch
        revs = table.column("revision").to_pylist()
        events = table.column("events").to_pylist()
        for end, rev, n in zip(ends, revs, events, strict=True):
            counts[end - WINDOW_US] += n
            if rev == 0 and (end not in first_row or mtime < first_row[end]):
                first_row[end] = mtime


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    """The job and, with --processes, the processes of its cluster."""
    return [proc, *proc.children(recursive=True)]


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in _tree(proc):
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def tree_cpu_s(proc: psutil.Process) -> float:
    total = 0.0
    for p in _tree(proc):
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def run_latency(args) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    if not args.brokers:
        raise SystemExit("--brokers (or $KAFKA_BOOTSTRAP) is required")
    lateness_s = duration_s(args.allowed_lateness)
    topic = f"bench-latency-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": args.brokers})
    admin.create_topics([NewTopic(topic, args.partitions, 1)])[topic].result(30)
    scratch = Path(tempfile.mkdtemp(prefix="burnwatch-latency-"))
    out = scratch / "out"
    log_file = (scratch / "job.log").open("wb")
    env = {**os.environ, "BURNWATCH_METRICS_PORT": "0",
           "BURNWATCH_ALLOWED_LATENESS": args.allowed_lateness}
    cli = ["--log-level", "INFO", "run", "--brokers", args.brokers, "--topic", topic,
           "--out", str(out), "--recovery-dir", str(scratch / "recovery"),
           "--processes", str(args.processes)]
    prelude = os.environ.get("BENCH_JOB_PRELUDE")
    if prelude:
        code = (f"{prelude}\nimport sys\nsys.argv = ['burnwatch', *{cli!r}]\n"
                "from flows.cli import main\nmain()")
        cmd = [str(REPO / ".venv" / "bin" / "python"), "-c", code]
    else:
        cmd = [BURNWATCH, *cli]
    job = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT)
    producer = SteadyProducer(args.brokers, topic, args.rate)
    seen: dict[str, float] = {}
    first_row: dict[int, float] = {}
    counts: Counter = Counter()
    peak_rss = 0
    cpu_start = None
    try:
        time.sleep(3)  # let the job start and assign its partitions
        proc = psutil.Process(job.pid)
        cpu_start = tree_cpu_s(proc)
        producer.start()
        log(f"producing {args.rate:,} events/s into {topic} for {args.duration:.0f} s; "
            f"allowed_lateness {args.allowed_lateness}")
        deadline = time.time() + args.duration
        while time.time() < deadline:
            if job.poll() is not None:
                raise SystemExit(f"burnwatch exited with {job.returncode}; see {scratch}")
            peak_rss = max(peak_rss, tree_rss(proc))
            scan(out / "rollups", seen, first_row, counts)
            time.sleep(0.5)
        producer.stop_flag.set()
        producer.join(60)
        # Let the last windows close (by the wall clock) and be written.
        settle = time.time() + lateness_s + 90
        last_window = max(producer.per_window)
        while time.time() < settle and (last_window + WINDOW_US) not in first_row:
            peak_rss = max(peak_rss, tree_rss(proc))
            scan(out / "rollups", seen, first_row, counts)
            time.sleep(0.5)
        cpu_s = tree_cpu_s(proc) - cpu_start
    finally:
        producer.stop_flag.set()
        if job.poll() is None:
            job.terminate()
            try:
                job.wait(30)
            except subprocess.TimeoutExpired:
                job.kill()
        log_file.close()
    produced_for = producer.stopped_at - producer.started_at
    achieved = producer.sent / produced_for if produced_for else 0
    # Only whole windows: the first and last produced windows are partial.
    windows = sorted(producer.per_window)[1:-1]
    rows = []
    for start in windows:
        end = start + WINDOW_US
        due = end / 1e6 + lateness_s
        appeared = first_row.get(end)
        rows.append((start, appeared - due if appeared is not None else None,
                     counts.get(start, 0), producer.per_window[start]))
    lat = [r[1] for r in rows if r[1] is not None]
    print(f"latency mode: {producer.sent:,} events in {produced_for:.0f} s "
          f"({achieved:,.0f}/s achieved of {args.rate:,}/s asked; producer fell behind its "
          f"10 ms schedule {producer.behind_ticks} times); job CPU {cpu_s:.0f} s "
          f"({cpu_s / max(1, produced_for):.2f} cores), peak RSS {peak_rss / 2**20:,.0f} MiB"
          f"{f' (summed over its {args.processes} processes)' if args.processes > 1 else ''}")
    default = Settings.model_fields["max_file_delay"].default.total_seconds()
    delay = os.environ.get("BURNWATCH_MAX_FILE_DELAY", f"{default:g}s (default)")
    patched = " (job patched by BENCH_JOB_PRELUDE)" if prelude else ""
    print(f"allowed_lateness {args.allowed_lateness}, max_file_delay {delay}{patched}; "
          "latency = first row written - (window end + allowed lateness)")
    print("| window start (UTC) | latency s | events written | events produced |")
    print("|---|--:|--:|--:|")
    for start, latency_s, got, sent in rows:
        stamp = time.strftime("%H:%M", time.gmtime(start / 1e6))
        shown = f"{latency_s:.1f}" if latency_s is not None else "not written"
        print(f"| {stamp} | {shown} | {got:,} | {sent:,} |")
    if lat:
        print(f"median {statistics.median(lat):.1f} s, max {max(lat):.1f} s over {len(lat)} "
              f"windows (target: <= 5 s)")
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            admin.delete_topics([topic, f"{topic}.dlq"])
        except Exception:  # noqa: BLE001 - best effort
            pass
    else:
        print(f"kept: {scratch}")
