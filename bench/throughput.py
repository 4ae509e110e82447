"""Throughput benchmark: burnwatch against the bare-consumer limit and other ways to do the job.

    eval "$(bash infra/services.sh up)"          # or only `start-kafka`; see bench/README.md
    .venv/bin/python bench/throughput.py [--events 2000000] [--partitions 3] [--runs 3]
                                         [--only burnwatch-1w,bare] [--brokers HOST:PORT]
    .venv/bin/python bench/throughput.py --latency [--rate 50000] [--duration 240]
    .venv/bin/python bench/throughput.py --dedupe-keys 10000000

Throughput mode: generates (once, cached) a realistic usage stream with the project's
generator (heavy-tailed tenants, ~1% duplicates, ~1% late, ~0.1% bad records, 0.1%
conflicts), produces it (once, cached) into a topic keyed by event id, and runs every
variant ``--runs`` times as a separate process, measuring end-to-end events/s (all
records of the topic / wall time of the process, start-up included), the CPU time it
used (user + system, from wait4: the process and its descendants; the Kafka broker's
CPU is not included) and peak RSS of its whole process tree. Every variant's totals are
compared with the oracle (tests/oracle.py) per (tenant, meter, window); a variant that
disagrees is reported with its number of mismatched windows and the events it lost, not
hidden.

Variants (``--only`` takes a comma-separated list):
  bare           confluent-kafka consumer reading every message, nothing else (the limit)
  bare-orjson    the same, plus orjson.loads of each message
  burnwatch-1w   `burnwatch run --until-end`, 1 worker
  burnwatch-2w   `burnwatch run --until-end --workers 2` (two worker threads, one process)
  burnwatch-2p   `burnwatch run --until-end --processes 2`: two processes, 1 worker each
  quix           Quix Streams: parse, stateful dedupe, group_by, 1-min tumbling sum+count,
                 grace 5 min, final() -> file (own virtualenv, see --quix-python)
  naive-bytewax  Bytewax KafkaSource per event -> parse -> stateful_map dedupe ->
                 fold_window (1-min tumbling, EventClock wait 5 min) -> FileSink
  duckdb         one DuckDB query over the JSONL file (the oracle's SQL; no Kafka)
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
sys.path.insert(0, str(REPO))

from flows.cli import write_stream  # noqa: E402
from flows.synthetic import GeneratorConfig  # noqa: E402
from tests.oracle import mismatches, oracle_totals, output_totals  # noqa: E402
from tests.produce import produce  # noqa: E402

PY = str(REPO / ".venv" / "bin" / "python")
BURNWATCH = str(REPO / ".venv" / "bin" / "burnwatch")
DEFAULT_CACHE = Path(os.environ.get("BURNWATCH_BENCH_CACHE",
                                    Path.home() / ".cache" / "burnwatch" / "bench"))
DEFAULT_QUIX_PY = Path.home() / ".cache" / "burnwatch" / "bench-quix-venv" / "bin" / "python"
QUIX_VERSION = "3.28.1"
# A fixed end, so the same parameters always give the same (cached) stream: a Tuesday
# morning (UTC), when most tenants are near their daily peak.
END = datetime(2026, 11, 24, 12, tzinfo=UTC)
# Lines per (tenant, hour, unit of --rate) for the hours just before END, measured on
# this generator; used only to turn --events into the generator's rate.
LINES_PER_TENANT_HOUR_RATE = 1.46
VARIANTS = ["bare", "bare-orjson", "burnwatch-1w", "burnwatch-2w", "burnwatch-2p", "quix",
            "naive-bytewax", "duckdb"]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the input, cached


@dataclass(frozen=True)
class Dataset:
    path: Path
    lines: int
    manifest: dict
    key: str


def generator_config(events: int, tenants: int, hours: int, seed: int) -> GeneratorConfig:
    rate = round(events / (tenants * hours * LINES_PER_TENANT_HOUR_RATE), 3)
    return GeneratorConfig(tenants=tenants, hours=hours, seed=seed, events_per_tenant_hour=rate,
                           dup_rate=0.01, conflict_rate=0.001, late_rate=0.01, bad_rate=0.001,
                           end=END)


def dataset(cache: Path, cfg: GeneratorConfig) -> Dataset:
    key = (f"usage-t{cfg.tenants}-h{cfg.hours}-r{cfg.events_per_tenant_hour:g}-s{cfg.seed}"
           f"-{END:%Y%m%d%H}")
    path = cache / f"{key}.jsonl"
    manifest_file = path.with_name(path.name + ".manifest.json")
    if not (path.is_file() and manifest_file.is_file()):
        log(f"generating {path} (first run with these parameters only)")
        tmp = path.with_name(path.name + ".tmp")
        started = time.perf_counter()
        manifest = write_stream(cfg, tmp)
        tmp.with_name(tmp.name + ".manifest.json").rename(manifest_file)
        tmp.rename(path)
        log(f"generated {manifest.lines:,} lines in {time.perf_counter() - started:.0f} s")
    manifest = json.loads(manifest_file.read_text())
    return Dataset(path, manifest["lines"], manifest, key)


def oracle(cache: Path, data: Dataset) -> dict:
    """The oracle's totals for the file, computed once and kept next to it."""
    cached = data.path.with_name(data.path.name + ".oracle.pickle")
    if cached.is_file():
        return pickle.loads(cached.read_bytes())
    log("computing the oracle's totals with DuckDB (first run only)")
    started = time.perf_counter()
    totals = oracle_totals([data.path], now=datetime.now(UTC))
    cached.write_bytes(pickle.dumps(totals))
    log(f"oracle: {len(totals):,} windows in {time.perf_counter() - started:.0f} s")
    return totals


def topic_messages(brokers: str, topic: str) -> int | None:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": brokers, "group.id": "bench-probe"})
    try:
        meta = c.list_topics(topic, timeout=15).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            return None
        total = 0
        for p in meta.partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
            total += high - low
        return total
    finally:
        c.close()


def ensure_topic(brokers: str, data: Dataset, partitions: int) -> str:
    """A topic holding the file's lines, keyed by id; reused when it is complete."""
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"bench-{data.key}-p{partitions}"
    have = topic_messages(brokers, topic)
    if have == data.lines:
        return topic
    admin = AdminClient({"bootstrap.servers": brokers})
    if have is not None:
        log(f"topic {topic} holds {have:,} messages, not {data.lines:,}: recreating it")
        admin.delete_topics([topic])[topic].result(30)
        time.sleep(2)
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    log(f"producing {data.lines:,} lines into {topic} ({partitions} partitions, keyed by id)")
    started = time.perf_counter()
    with data.path.open("rb") as fh:
        produce(brokers, topic, (raw.rstrip(b"\r\n") for raw in fh),
                config={"batch.size": 1_000_000}, flush_timeout_s=120)
    log(f"produced in {time.perf_counter() - started:.0f} s")
    return topic


# ------------------------------------------------------------------ measuring a process


@dataclass
class Measured:
    rc: int
    wall_s: float
    peak_rss: int  # bytes, whole process tree
    cpu_s: float  # user + system CPU of the process and its waited-for descendants
    stdout: str
    stderr: str
    written: int = 0  # bytes the process tree sent to storage (rusage block output)


def vm_hwm(pid: int) -> int:
    """The kernel's peak RSS of one process (VmHWM), in bytes."""
    with open(f"/proc/{pid}/status", "rb") as fh:
        for line in fh:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(cmd: list[str], *, env: dict | None = None, cwd: Path = REPO,
            workdir: Path, every: float = 0.05) -> Measured:
    """Run cmd; wall time and peak RSS summed over the process and all its descendants.

    RSS is sampled every ``every`` seconds (psutil, /proc): the peak of the sum over the
    tree, or the largest process's own high-water mark (VmHWM), whichever is larger.
    """
    out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=cwd,
                                stdout=out, stderr=err)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            try:
                root = psutil.Process(proc.pid)
            except psutil.NoSuchProcess:
                return
            while not done.is_set():
                total = 0
                try:
                    for p in [root, *root.children(recursive=True)]:
                        try:
                            total += p.memory_info().rss
                            hwm[p.pid] = max(hwm.get(p.pid, 0), vm_hwm(p.pid))
                        except (psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
                            pass
                except (psutil.NoSuchProcess, psutil.ZombieProcess):
                    break
                peak[0] = max(peak[0], total)
                done.wait(every)

        hwm: dict[int, int] = {}
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    # The sampled sum over the tree, or the kernel's high-water mark of its largest process
    # (exact for a single process; wait4's ru_maxrss is not usable: it keeps the RSS this
    # big parent had when it forked the child).
    peak_rss = max([peak[0], *hwm.values()])
    return Measured(proc.returncode, wall, peak_rss, usage.ru_utime + usage.ru_stime,
                    out_path.read_text(errors="replace"), err_path.read_text(errors="replace"),
                    usage.ru_oublock * 512)


# ------------------------------------------------------------------ the variants


@dataclass
class RunResult:
    variant: str
    run: int
    ok: bool
    seconds: float  # wall time less any idle wait the variant reports
    events_per_s: float
    peak_rss: int
    check: str  # totals check, printed in the table
    cpu_s: float = 0.0
    mismatches: int | None = None
    events_lost: int | None = None
    note: str = ""


def read_jsonl_totals(path: Path) -> dict:
    totals: dict = {}
    if not path.exists():
        return totals
    with path.open("rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            t, m, w, q, n = orjson.loads(line)
            old = totals.get((t, m, w))
            totals[(t, m, w)] = (q, n) if old is None else (old[0] + q, old[1] + n)
    return totals


def compare(expected: dict, actual: dict) -> tuple[str, int, int]:
    bad = mismatches(expected, actual)
    lost = sum(n for _q, n in expected.values()) - sum(n for _q, n in actual.values())
    if not bad:
        return "ok (0 mismatches)", 0, lost
    return f"{len(bad):,} mismatches of {len(expected):,} windows", len(bad), lost


def last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return {}


class Bench:
    def __init__(self, args, data: Dataset, topic: str | None, expected: dict) -> None:
        self.args = args
        self.data = data
        self.topic = topic
        self.expected = expected

    def run(self, variant: str, i: int, workdir: Path) -> RunResult:
        a = self.args
        lines = self.data.lines
        idle = 0.0
        note = ""
        if variant in ("bare", "bare-orjson"):
            cmd = [PY, str(BENCH / "variant_bare.py"), "--brokers", a.brokers, "--topic",
                   self.topic] + (["--parse"] if variant == "bare-orjson" else [])
            m = measure(cmd, workdir=workdir)
            got = last_json(m.stdout).get("messages")
            ok = m.rc == 0 and got == lines
            check = f"n/a (read {got:,} of {lines:,})" if got is not None else "failed"
        elif variant == "burnwatch-2p":
            out = workdir / "out"
            cmd = [BURNWATCH, "run", "--brokers", a.brokers, "--topic", self.topic,
                   "--out", str(out), "--recovery-dir", str(workdir / "recovery"),
                   "--until-end", "--processes", "2"]
            m = measure(cmd, env={"BURNWATCH_METRICS_PORT": "0"}, workdir=workdir)
            ok = m.rc == 0
            check, nbad, lost = compare(self.expected, output_totals(str(out))) if ok else (
                "failed", None, None)
        elif variant.startswith("burnwatch"):
            workers = variant.removeprefix("burnwatch-").removesuffix("w")
            out = workdir / "out"
            cmd = [BURNWATCH, "run", "--brokers", a.brokers, "--topic", self.topic,
                   "--out", str(out), "--recovery-dir", str(workdir / "recovery"),
                   "--until-end", "--workers", workers]
            m = measure(cmd, env={"BURNWATCH_METRICS_PORT": "0"}, workdir=workdir)
            ok = m.rc == 0
            check, nbad, lost = compare(self.expected, output_totals(str(out))) if ok else (
                "failed", None, None)
        elif variant == "naive-bytewax":
            out = workdir / "totals.jsonl"
            cmd = [PY, str(BENCH / "variant_naive_bytewax.py"), "--brokers", a.brokers,
                   "--topic", self.topic, "--out", str(out)]
            m = measure(cmd, workdir=workdir)
            ok = m.rc == 0
            check, nbad, lost = compare(self.expected, read_jsonl_totals(out)) if ok else (
                "failed", None, None)
        elif variant == "quix":
            out = workdir / "totals.jsonl"
            cmd = [str(a.quix_python), str(BENCH / "variant_quix.py"), "--brokers", a.brokers,
                   "--topic", self.topic, "--out", str(out), "--state-dir",
                   str(workdir / "state"), "--idle-timeout", str(a.quix_idle_timeout)]
            m = measure(cmd, workdir=workdir)
            summary = last_json(m.stdout)
            idle = float(summary.get("idle_s", 0.0))
            ok = m.rc == 0
            check, nbad, lost = compare(self.expected, read_jsonl_totals(out)) if ok else (
                "failed", None, None)
            note = f"idle wait {idle:.1f} s subtracted"
        elif variant == "duckdb":
            out = workdir / "totals.jsonl"
            cmd = [PY, str(BENCH / "variant_duckdb.py"), "--file", str(self.data.path),
                   "--out", str(out)]
            m = measure(cmd, workdir=workdir)
            ok = m.rc == 0
            check, nbad, lost = compare(self.expected, read_jsonl_totals(out)) if ok else (
                "failed", None, None)
        else:
            raise SystemExit(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
        if not ok:
            log(f"{variant} run {i} failed (rc={m.rc}):\n{m.stderr[-3000:]}")
        seconds = max(1e-9, m.wall_s - idle)
        result = RunResult(variant, i, ok, seconds, lines / seconds, m.peak_rss, check,
                           cpu_s=m.cpu_s, note=note)
        if variant not in ("bare", "bare-orjson") and ok:
            result.mismatches, result.events_lost = nbad, lost
        return result


def cleanup_quix_topics(brokers: str) -> None:
    """Quix creates repartition and changelog topics per consumer group: drop ours."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": brokers})
    names = [t for t in admin.list_topics(timeout=15).topics if "bench-quix-" in t]
    if names:
        for fut in admin.delete_topics(names).values():
            try:
                fut.result(30)
            except Exception:  # noqa: BLE001 - best effort
                pass


def ensure_quix(python: Path) -> bool:
    if python.is_file():
        return True
    venv = python.parent.parent
    log(f"creating a separate virtualenv for Quix Streams at {venv} (quixstreams=={QUIX_VERSION} "
        "pins confluent-kafka<2.13, which would downgrade burnwatch's)")
    try:
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"quixstreams=={QUIX_VERSION}",
                        "orjson"], check=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as ex:
        log(f"could not create the Quix virtualenv ({ex}); skipping quix")
        return False
    return True


def fmt_bytes(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def summarise(results: list[RunResult], order: list[str], expected: dict) -> list[dict]:
    rows = []
    limit = None
    for variant in order:
        runs = [r for r in results if r.variant == variant and r.ok]
        if not runs:
            rows.append({"variant": variant, "runs": 0})
            continue
        eps = statistics.median(r.events_per_s for r in runs)
        if variant == "bare":
            limit = eps
        bads = sorted({r.mismatches for r in runs if r.mismatches is not None})
        if not bads:
            check = runs[0].check  # no totals to compare (the bare consumer)
        elif bads == [0]:
            check = "ok (0 mismatches)"
        else:
            span = f"{bads[0]:,}" if len(bads) == 1 else f"{bads[0]:,}-{bads[-1]:,}"
            lost = statistics.median(r.events_lost or 0 for r in runs)
            check = (f"{span} mismatched windows of {len(expected):,}; "
                     f"{lost:,.0f} events missing")
        rows.append({
            "variant": variant,
            "runs": len(runs),
            "events_per_s": eps,
            "events_per_s_all": [round(r.events_per_s) for r in runs],
            "seconds": statistics.median(r.seconds for r in runs),
            "peak_rss": statistics.median(r.peak_rss for r in runs),
            "cpu_s": statistics.median(r.cpu_s for r in runs),
            "events_per_cpu_s": statistics.median(
                (r.events_per_s * r.seconds) / r.cpu_s for r in runs if r.cpu_s),
            "check": check,
            "note": runs[0].note,
        })
    for row in rows:
        if row.get("runs") and limit:
            row["ratio"] = row["events_per_s"] / limit
    return rows


def table(rows: list[dict]) -> str:
    head = ("| variant | events/s (median) | x bare limit | wall s | CPU s | events per CPU s "
            "| peak RSS | totals check | runs (events/s) |")
    lines = [head, "|---|--:|--:|--:|--:|--:|--:|---|---|"]
    for r in rows:
        if not r.get("runs"):
            lines.append(f"| {r['variant']} | failed | | | | | | | |")
            continue
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
        check = r["check"]
        lines.append(
            f"| {r['variant']} | {r['events_per_s']:,.0f} | {ratio} | {r['seconds']:.1f} | "
            f"{r['cpu_s']:.1f} | {r['events_per_cpu_s']:,.0f} | {fmt_bytes(r['peak_rss'])} | "
            f"{check} | "
            f"{', '.join(f'{x:,}' for x in r['events_per_s_all'])} |"
        )
    return "\n".join(lines)


def throughput(args) -> None:
    cache: Path = args.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    order = VARIANTS if not args.only else [v.strip() for v in args.only.split(",") if v.strip()]
    for v in order:
        if v not in VARIANTS:
            raise SystemExit(f"--only: unknown variant {v!r}; one of {', '.join(VARIANTS)}")
    if "quix" in order and not ensure_quix(args.quix_python):
        order.remove("quix")
    data = dataset(cache, generator_config(args.events, args.tenants, args.hours, args.seed))
    log(f"input: {data.path} ({data.lines:,} lines; injected {data.manifest['duplicates']:,} "
        f"duplicates, {data.manifest['late']:,} late, "
        f"{sum(data.manifest['dead_letters'].values()):,} bad/conflicting)")
    expected = oracle(cache, data)
    needs_kafka = any(v != "duckdb" for v in order)
    topic = None
    if needs_kafka:
        if not args.brokers:
            raise SystemExit("--brokers (or $KAFKA_BOOTSTRAP) is required; see bench/README.md")
        topic = ensure_topic(args.brokers, data, args.partitions)
    bench = Bench(args, data, topic, expected)
    results: list[RunResult] = []
    scratch = Path(tempfile.mkdtemp(prefix="burnwatch-bench-"))
    try:
        for i in range(1, args.runs + 1):
            for variant in order:  # interleaved, so background load hits every variant alike
                workdir = scratch / f"{variant}-{i}-{uuid.uuid4().hex[:6]}"
                workdir.mkdir()
                log(f"run {i}/{args.runs}: {variant}")
                r = bench.run(variant, i, workdir)
                results.append(r)
                log(f"  {r.events_per_s:,.0f} events/s, {r.seconds:.1f} s, CPU {r.cpu_s:.1f} s, "
                    f"peak RSS {fmt_bytes(r.peak_rss)}, totals: {r.check}")
                if variant == "quix":
                    cleanup_quix_topics(args.brokers)
                if not args.keep:
                    shutil.rmtree(workdir, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    rows = summarise(results, order, expected)
    header = (f"{data.lines:,} records ({data.path.name}), topic {topic or '-'} "
              f"({args.partitions} partitions), {args.runs} run(s) each, median; "
              f"{psutil.cpu_count()} CPUs, load average at the end "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(header)
    print(table(rows))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = cache / f"results-{stamp}.json"
    report.write_text(json.dumps({"header": header, "rows": rows,
                                  "runs": [asdict(r) for r in results]}, indent=2))
    log(f"raw results: {report}")


# ------------------------------------------------------------------ latency (always-on)


def latency(args) -> None:
    from bench.latency import run_latency

    run_latency(args)


# ------------------------------------------------------------------ dedupe memory


def dedupe_memory(args) -> None:
    from bench.dedupe_memory import run_dedupe_memory

    run_dedupe_memory(args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--events", type=int, default=2_000_000,
                    help="approximate records in the stream (sets the generator's rate)")
    ap.add_argument("--tenants", type=int, default=300)
    ap.add_argument("--hours", type=int, default=4,
                    help="hours of event time; with --tenants sets how dense the stream is")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="", help=f"comma-separated subset of {','.join(VARIANTS)}")
    ap.add_argument("--brokers", default=os.environ.get("KAFKA_BOOTSTRAP", ""))
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--quix-python", type=Path, default=DEFAULT_QUIX_PY)
    ap.add_argument("--quix-idle-timeout", type=float, default=5.0)
    ap.add_argument("--keep", action="store_true", help="keep each run's output and logs")
    ap.add_argument("--latency", action="store_true",
                    help="always-on latency mode instead of throughput (see --rate, --duration)")
    ap.add_argument("--rate", type=int, default=50_000, help="latency mode: events/s produced")
    ap.add_argument("--duration", type=float, default=240.0, help="latency mode: seconds")
    ap.add_argument("--allowed-lateness", default="30s",
                    help="latency mode: burnwatch's allowed_lateness")
    ap.add_argument("--processes", type=int, default=1,
                    help="latency mode: `run --processes N` (CPU and RSS summed over them)")
    ap.add_argument("--dedupe-keys", type=int, default=0,
                    help="dedupe-memory mode: replay this many unique ids and report peak RSS")
    ap.add_argument("--steady", type=float, default=0,
                    help="with --dedupe-keys: the always-on job holding them, fed --rate "
                         "new events/s for this many seconds: bytes written, RSS")
    args = ap.parse_args()
    if args.dedupe_keys and args.steady:
        from bench.dedupe_memory import run_steady_writes

        run_steady_writes(args)
    elif args.dedupe_keys:
        dedupe_memory(args)
    elif args.latency:
        latency(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
