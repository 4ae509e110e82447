"""What cheap changes would buy: `burnwatch run --until-end` with knobs that need no code edit.

    .venv/bin/python bench/tuning.py [--runs 2] [--brokers HOST:PORT] [--events ...]

Uses the cached stream and topic of bench/throughput.py (same flags) and runs burnwatch
with, cumulatively:

* ``gc``: CPython's cyclic GC thresholds raised (``gc.set_threshold(100_000, 50, 1000)``,
  set by a prelude before the CLI starts): burnwatch allocates millions of short-lived
  containers and keeps no reference cycles of its own, and with the default thresholds
  (700, 10, 10) the collector runs every 700 allocations;
* ``shards 1``: ``BURNWATCH_ID_SHARDS=1 BURNWATCH_WINDOW_SHARDS=1`` (the defaults, 16 and
  16, cut every read into 16 slices, each paying the NumPy per-call overhead; only
  useful with several workers);
* the same with two processes (``-i/-a``, 1 worker each, shards 2) and two threads.

Every run's totals are checked against the oracle, as in throughput.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.throughput import (  # noqa: E402
    DEFAULT_CACHE,
    PY,
    compare,
    dataset,
    ensure_topic,
    fmt_bytes,
    generator_config,
    measure,
    oracle,
)
from flows.local_cluster import free_ports  # noqa: E402
from tests.oracle import output_totals  # noqa: E402

GC = "import gc\ngc.set_threshold(100_000, 50, 1000)\n"

CONFIGS = [
    # label, processes, workers per process, gc prelude, env
    ("default (1 worker)", 1, 1, False, {}),
    ("gc thresholds", 1, 1, True, {}),
    ("gc + shards 1", 1, 1, True, {"BURNWATCH_ID_SHARDS": "1", "BURNWATCH_WINDOW_SHARDS": "1"}),
    ("gc + shards 2, 2 threads", 1, 2, True,
     {"BURNWATCH_ID_SHARDS": "2", "BURNWATCH_WINDOW_SHARDS": "2"}),
    ("gc + shards 2, 2 processes", 2, 1, True,
     {"BURNWATCH_ID_SHARDS": "2", "BURNWATCH_WINDOW_SHARDS": "2"}),
]


def command(brokers: str, topic: str, work: Path, processes: int, workers: int,
            gc_tune: bool) -> list[str]:
    addresses = ";".join(f"127.0.0.1:{p}" for p in free_ports(processes))
    shells = []
    for pid in range(processes):
        args = ["run", "--brokers", brokers, "--topic", topic, "--out", str(work / "out"),
                "--recovery-dir", str(work / f"recovery-{pid}"), "--until-end",
                "--workers", str(workers)]
        if processes > 1:
            args += ["-i", str(pid), "-a", addresses]
        code = (GC if gc_tune else "") + (
            f"import sys\nsys.argv = ['burnwatch', *{args!r}]\nfrom flows.cli import main\nmain()")
        shells.append([PY, "-c", code])
    if processes == 1:
        return shells[0]
    import shlex

    parts = [" ".join(shlex.quote(c) for c in cmd) + f" & p{i}=$!" for i, cmd in enumerate(shells)]
    waits = " ".join(f"wait $p{i} || rc=1;" for i in range(processes))
    return ["bash", "-c", "; ".join(parts) + f"; rc=0; {waits} exit $rc"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--tenants", type=int, default=300)
    ap.add_argument("--hours", type=int, default=4)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--brokers", default=os.environ.get("KAFKA_BOOTSTRAP", ""))
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args()
    data = dataset(args.cache_dir, generator_config(args.events, args.tenants, args.hours,
                                                    args.seed))
    expected = oracle(args.cache_dir, data)
    topic = ensure_topic(args.brokers, data, args.partitions)
    print("| configuration | events/s (median) | x default | CPU s | peak RSS | totals | runs |")
    print("|---|--:|--:|--:|--:|---|---|")
    base = None
    for label, processes, workers, gc_tune, env in CONFIGS:
        rates, cpus, rsss, checks = [], [], [], set()
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="burnwatch-tuning-") as tmp:
                work = Path(tmp)
                cmd = command(args.brokers, topic, work, processes, workers, gc_tune)
                m = measure(cmd, workdir=work,
                            env={"BURNWATCH_METRICS_PORT": "0", **env,
                                 "BURNWATCH_RUN_KEY": f"tune-{uuid.uuid4().hex[:8]}"})
                if m.rc != 0:
                    checks.add("failed")
                    print(m.stderr[-2000:], file=sys.stderr)
                    continue
                checks.add(compare(expected, output_totals(str(work / "out")))[0])
                rates.append(data.lines / m.wall_s)
                cpus.append(m.cpu_s)
                rsss.append(m.peak_rss)
        if not rates:
            print(f"| {label} | failed | | | | {', '.join(sorted(checks))} | |")
            continue
        rate = statistics.median(rates)
        base = base or rate
        print(f"| {label} | {rate:,.0f} | {rate / base:.2f} | {statistics.median(cpus):.1f} | "
              f"{fmt_bytes(statistics.median(rsss))} | {', '.join(sorted(checks))} | "
              f"{', '.join(f'{r:,.0f}' for r in rates)} |", flush=True)


if __name__ == "__main__":
    main()
