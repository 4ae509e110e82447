"""Tenant memory: peak RSS and wall time of `burnwatch replay` with N tenants, one event each.

    .venv/bin/python -m bench.tenants --tenants 200000 [--repo DIR] [--only priced]

Writes (once, cached) a JSONL file of N events, each of its own tenant, meter
``api_calls``, spread evenly over one hour, and replays it twice: without pricing and
with a one-price catalog (so every tenant has a spend row, a burn row and a spend
scorer). Reports, for each, the whole job's peak RSS and wall time (bench.throughput's
``measure``: the process tree, sampled, or its VmHWM), and the priced/unpriced ratios.
Targets: 200,000 tenants under 1 GiB and at most 3x the unpriced time; 1,000,000 under
2 GiB. ``--repo`` runs another checkout's code with this venv (cwd comes first on
sys.path), e.g. an older commit to compare with.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.streams import write_spread
from bench.throughput import REPO, fmt_bytes, log, measure

START_US = 1_795_392_000_000_000  # 2026-11-23T00:00:00Z
SPAN_US = 3_600_000_000
PRICING = """\
pricing:
  - meter: api_calls
    currency: USD
    unit: call
    prices:
      - {effective_from: "2026-01-01", unit_price: "0.0010"}
"""


def write_tenants(path: Path, n: int) -> None:
    write_spread(path, n, START_US, SPAN_US, lambda i: (
        f'"id":"t-{i:09d}","tenant":"tenant-{i:09d}","meter":"api_calls",'
        f'"quantity":{1 + i % 5}'))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tenants", type=int, default=200_000)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "bw-bench")
    ap.add_argument("--repo", type=Path, default=REPO, help="checkout whose code runs")
    ap.add_argument("--only", choices=["priced", "unpriced"])
    args = ap.parse_args()
    n = args.tenants
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    path = args.cache_dir / f"tenants-{n}.jsonl"
    if not path.is_file():
        log(f"writing {n:,} events of {n:,} tenants to {path} (first run only)")
        write_tenants(path, n)
    results = {}
    for kind in ("unpriced", "priced"):
        if args.only and kind != args.only:
            continue
        with tempfile.TemporaryDirectory(prefix="burnwatch-tenants-") as tmp:
            work = Path(tmp)
            cmd = [sys.executable, "-m", "flows.cli", "replay", str(path), "--out",
                   str(work / "out")]
            if kind == "priced":
                (work / "pricing.yaml").write_text(PRICING)
                cmd += ["--config", str(work / "pricing.yaml")]
            log(f"{kind}: {' '.join(cmd)} (cwd {args.repo})")
            m = measure(cmd, env={"BURNWATCH_METRICS_PORT": "0"}, cwd=args.repo,
                        workdir=work, every=0.2)
        if m.rc != 0:
            raise SystemExit(f"{kind} replay failed:\n{m.stderr[-3000:]}")
        results[kind] = m
        print(f"tenants {n:,}, {kind}: wall {m.wall_s:.1f} s, CPU {m.cpu_s:.1f} s, "
              f"peak RSS {fmt_bytes(m.peak_rss)}", flush=True)
    if len(results) == 2:
        p, u = results["priced"], results["unpriced"]
        print(f"tenants {n:,}: priced/unpriced time {p.wall_s / u.wall_s:.2f}x "
              f"(CPU {p.cpu_s / u.cpu_s:.2f}x), "
              f"RSS {p.peak_rss / u.peak_rss:.2f}x; priced - unpriced "
              f"{(p.peak_rss - u.peak_rss) / n:,.0f} bytes a tenant", flush=True)


if __name__ == "__main__":
    main()
