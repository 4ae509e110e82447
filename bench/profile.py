"""Profile burnwatch with py-spy and say where the time goes.

    .venv/bin/python bench/profile.py run --brokers HOST:PORT --topic T [--workers N]
    .venv/bin/python bench/profile.py replay FILE.jsonl
    .venv/bin/python bench/profile.py summarise PROFILE.txt      # an existing raw profile

Runs ``burnwatch run --until-end`` (or ``replay``) under ``py-spy record`` (sampling
at 100 Hz, Python stacks, idle threads left out), writes the samples as collapsed
stacks (``--out`` stem + ``.txt``: open it in https://www.speedscope.app, which reads
this format, or feed it to flamegraph.pl), then prints:

* **by step**: the share of samples under each burnwatch step (parse, dedupe, window,
  Parquet sink, Kafka source, ...), by the first burnwatch frame on the stack;
* **self time**: the functions the samples were in (leaf frames), top N;
* **inclusive time**: the functions on the stack, top N.

A sample whose innermost Python frame is ``cli_main``/``run_main`` was in Bytewax's
Rust runtime (scheduling, routing, snapshots, pickling state for the recovery store)
with no Python frame of ours above it; it is shown as "bytewax runtime (Rust)".
py-spy needs ptrace (it starts the job as its child, which works in containers that
allow it); ``pip install py-spy`` into the venv.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = str(REPO / ".venv" / "bin" / "python")
PYSPY = shutil.which("py-spy", path=str(REPO / ".venv" / "bin")) or "py-spy"
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# First burnwatch frame on a stack -> the step it belongs to.
STEPS = [
    ("parse_batch", "parse (decode + per-record checks, columns)"),
    ("_shard_by_id", "split by id shard"),
    ("Admission.admit", "admit: dedupe + pre-aggregate"),
    ("_AdmitLogic.on_batch", "admit: dedupe + pre-aggregate"),
    ("_WindowLogic", "window book (open windows, close, rows)"),
    ("_ParquetPartition", "Parquet sink (rows -> Arrow -> file)"),
    ("ParquetSink", "Parquet sink (rows -> Arrow -> file)"),
    ("_KafkaPartition", "Kafka source (consume, RawBatch)"),
    ("_DlqPartition", "dead-letter producer"),
    ("_JsonlPartition", "file source (readline)"),
    ("KafkaDeadLetter", "dead-letter producer"),
    ("_key_dead_letters", "dead-letter keying"),
    ("metrics", "prometheus metrics"),
]


def frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for part in stack.split(";"):
        m = FRAME.match(part)
        out.append((m["func"], m["file"]) if m else (part, ""))
    return out


def classify(fr: list[tuple[str, str]]) -> str:
    leaf = fr[-1][0] if fr else ""
    names = [f for f, _ in fr]
    files = [p for _, p in fr]
    # cli_main/run_main are Rust: a sample inside them shows the Python caller as the leaf.
    if leaf in ("cli_main", "run_main", "run_job", "replay"):
        return "bytewax runtime (Rust)"
    # The innermost burnwatch frame decides, except that the step wrappers in */steps.py
    # (map lambdas) are looked through to the logic they call.
    for func, path in reversed(fr):
        for needle, step in STEPS:
            if needle in func or (needle == "metrics" and path.endswith("operators/metrics.py")):
                return step
    # py-spy shortens site-packages paths, so bytewax's operators/__init__.py looks like
    # ours: its map/flat_map shims are bytewax.
    ours = [(f, p) for f, p in fr
            if p.startswith(("operators/", "flows/")) and "shim_mapper" not in f]
    if ours:
        func, path = ours[-1]
        if func == "<module>" or any(f == "<module>" for f, _ in fr[-6:]):
            return "start-up / imports / other"
        if path.startswith("operators/") and path.endswith("/steps.py"):
            # Self time in the one-line wrappers: mostly freeing the per-batch objects the
            # step they called returned or dropped.
            return "steps.py wrappers (freeing per-batch objects)"
        return f"other burnwatch: {func} ({path})"
    if any("bytewax/" in p for p in files) or "cli_main" in names:
        return "bytewax Python (operators, windowing helpers)"
    return "start-up / imports / other"


def summarise(path: Path, top: int = 25) -> str:
    by_step: Counter = Counter()
    self_time: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        fr = frames(stack)
        by_step[classify(fr)] += n
        if fr:
            f, p = fr[-1]
            self_time[f"{f} ({p})"] += n
        for key in {f"{f} ({p})" for f, p in fr}:
            inclusive[key] += n
    if not total:
        return "no samples"
    lines = [f"{total:,} samples ({total / 100:.1f} s at 100 Hz; idle threads excluded)", "",
             "by step:"]
    lines += [f"  {n / total:6.1%}  {k}" for k, n in by_step.most_common()]
    lines += ["", f"self time (top {top}):"]
    lines += [f"  {n / total:6.1%}  {k}" for k, n in self_time.most_common(top)]
    lines += ["", f"inclusive time (top {top}, burnwatch and bytewax frames):"]
    ours = [(k, n) for k, n in inclusive.most_common()
            if "operators/" in k or "flows/replay" in k or "bytewax/" in k]
    lines += [f"  {n / total:6.1%}  {k}" for k, n in ours[:top]]
    return "\n".join(lines)


def record(cmd: list[str], out: Path, env: dict) -> Path:
    raw = out.with_suffix(".txt")
    subprocess.run([PYSPY, "record", "-r", "100", "--subprocesses", "--format", "raw",
                    "-o", str(raw), "--", *cmd], check=True, env=env, cwd=REPO)
    return raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("run")
    r.add_argument("--brokers", default=os.environ.get("KAFKA_BOOTSTRAP", ""))
    r.add_argument("--topic", required=True)
    r.add_argument("--workers", default="1")
    p = sub.add_parser("replay")
    p.add_argument("file", type=Path)
    s = sub.add_parser("summarise")
    s.add_argument("profile", type=Path)
    for q in (r, p, s):
        q.add_argument("--top", type=int, default=25)
        q.add_argument("--out", type=Path,
                       default=Path(tempfile.gettempdir()) / "burnwatch-profile",
                       help="profile file stem; the samples go to STEM.txt")
    args = ap.parse_args()
    if args.mode == "summarise":
        print(summarise(args.profile, args.top))
        return
    scratch = Path(tempfile.mkdtemp(prefix="burnwatch-profile-"))
    env = {**os.environ, "BURNWATCH_METRICS_PORT": "0"}
    try:
        if args.mode == "run":
            cmd = [PY, "-m", "flows.cli", "run", "--brokers", args.brokers, "--topic", args.topic,
                   "--out", str(scratch / "out"), "--recovery-dir", str(scratch / "rec"),
                   "--until-end", "--workers", args.workers]
        else:
            cmd = [PY, "-m", "flows.cli", "replay", str(args.file.resolve()),
                   "--out", str(scratch / "out")]
        raw = record(cmd, args.out.resolve(), env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(summarise(raw, args.top))
    print(f"\nraw profile: {raw}", file=sys.stderr)


if __name__ == "__main__":
    main()
