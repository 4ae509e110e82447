"""Labelled benchmark for the anomaly models: synthetic tenant spend with known incidents.

    python -m bench.anomaly_benchmark --small                  # CI preset, < 60 s
    python -m bench.anomaly_benchmark --series 200 --days 91 --seed 1 --model stl
    python -m bench.anomaly_benchmark --compare                # every model, one table
    python -m bench.anomaly_benchmark --time-boundary 10000    # one hour of 10,000 series

Each tenant is months of hourly spend: a size drawn log-uniformly over four
decades, one of four daily shapes (office hours, flat, a nightly batch spike,
idle nights), weekends, a trend, multiplicative heavy-tailed noise (Student t,
4 dof) and Poisson counting noise (30 to 30,000 priced events an hour, so
small tenants have zeros). After a two-week warm-up, incidents are injected
with gaps of 4-10 days; sizes are multiples of the tenant's mean hourly spend
over the week before (M):

* runaway: + (2..7) x max(M, that hour's spend) for 3-72 h;
* retry_storm: + (2..9) x max(M, that hour's spend) for 1-3 h;
* slow_leak: + M x (2..5) x ramp, the ramp reaching 1 over 24-48 h; lasts the ramp and up
  to a day more;
* legit_change: the tenant's spend x 1.5..3 or x 0.33..0.67 from then on.

Every hour is scored by the model and fed to the alert policy (hysteresis,
cooldown, a paging floor of ``--min-impact`` per hour; alerts on spend above
expected). Reported per incident kind: recall (an alert opened between the
start and 6 h after the end), recall within the deadline (2 h for runaway and
retry storm, 24 h for a slow leak; the delay counts the hours of incident
seen, so the first hour is 1), median delay. For legitimate changes: the
share that alerted and the hours until quiet. False alerts: alerts opened
outside every incident window (a legit change's window is its first 48 h),
per tenant-month (30 days), cold start included. Incidents whose extra spend
never reaches twice the paging floor are not counted in recall (``below
floor``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from operators.alerting.anomaly import DEFAULT_MODEL, AnomalyScorer, ModelConfig, refit_offset
from operators.alerting.anomaly_models import MODELS
from operators.alerting.policy import OPEN, RESOLVE, AlertPolicy, ScoreAlerter
from operators.records import HOUR_US

T0_US = 1_767_571_200_000_000  # 2026-01-05T00:00Z, a Monday
KINDS = ("runaway", "retry_storm", "slow_leak", "legit_change")
DEADLINE_H = {"runaway": 2, "retry_storm": 2, "slow_leak": 24}
RECALL_TARGET = 0.95
FALSE_ALERTS_TARGET = 1.0  # per tenant-month
LEGIT_WINDOW_H = 48  # a legit change may alert, but must be quiet by then
GRACE_H = 6
WARMUP_DAYS = 14
SMALL = {"series": 40, "days": 63}


@dataclass(frozen=True)
class Incident:
    kind: str
    start: int  # hour index
    end: int  # exclusive
    peak_extra: float  # largest extra spend per hour (legit: the shift at the mean level)


@dataclass
class Tenant:
    key: str
    values: np.ndarray
    incidents: list[Incident] = field(default_factory=list)


def make_tenant(seed: int, i: int, days: int) -> Tenant:
    rng = np.random.default_rng([seed, i])
    n = days * 24
    t = np.arange(n)
    level = math.exp(rng.uniform(math.log(0.2), math.log(2000.0)))
    local = t + rng.integers(0, 24)  # the tenant's time zone
    hod, dow = local % 24, (local // 24) % 7
    shape = rng.choice(["office", "flat", "batch", "idle_nights"], p=[0.4, 0.2, 0.2, 0.2])
    amp = rng.uniform(0.2, 0.9) if shape != "flat" else rng.uniform(0.0, 0.2)
    daily = 1 + amp * np.cos(2 * np.pi * (hod - rng.uniform(10, 17)) / 24)
    if shape == "batch":  # a nightly job: two hours at several times the day's rate
        start = rng.integers(0, 23)
        daily = np.where((hod >= start) & (hod < start + 2), rng.uniform(3, 8), 0.6)
    elif shape == "idle_nights":
        daily = np.where((hod >= 1) & (hod < 7), 0.0, daily)
    weekend = rng.uniform(0.3, 1.0) if shape != "flat" else rng.uniform(0.8, 1.0)
    trend = np.exp(rng.normal(0, 0.15) * t / 720)  # +-15% a month, typically
    base = daily * np.where(dow >= 5, weekend, 1.0) * trend
    base *= level / base[: WARMUP_DAYS * 24].mean()

    extra = np.zeros(n)
    incidents = []
    h = WARMUP_DAYS * 24 + int(rng.integers(0, 72))
    while h < n - 72:
        kind = KINDS[int(rng.integers(0, len(KINDS)))]
        mean = base[h - 168 : h].mean()
        if kind == "legit_change":
            f = rng.uniform(1.5, 3.0) if rng.random() < 0.5 else rng.uniform(0.33, 0.67)
            base[h:] *= f
            inc = Incident(kind, h, h + LEGIT_WINDOW_H, abs(f - 1) * mean)
        elif kind == "slow_leak":
            ramp = int(rng.integers(24, 49))
            length = min(ramp + int(rng.integers(0, 25)), n - h)
            size = mean * rng.uniform(2, 5)
            extra[h : h + length] = size * np.minimum(1.0, np.arange(1, length + 1) / ramp)
            inc = Incident(kind, h, h + length, float(extra[h : h + length].max()))
        else:  # several-fold: on top of this hour's spend or the mean, whichever is more
            length = int(rng.integers(3, 73) if kind == "runaway" else rng.integers(1, 4))
            length = min(length, n - h)
            m = rng.uniform(2, 7) if kind == "runaway" else rng.uniform(2, 9)
            extra[h : h + length] = m * np.maximum(base[h : h + length], mean)
            inc = Incident(kind, h, h + length, float(extra[h : h + length].max()))
        incidents.append(inc)
        h = inc.end + int(rng.integers(96, 241))

    noisy = base * np.exp(rng.uniform(0.02, 0.12) * rng.standard_t(4, n))
    noisy += extra * np.exp(0.05 * rng.standard_normal(n))
    price = level / math.exp(rng.uniform(math.log(30), math.log(30000)))  # per event
    values = price * rng.poisson(noisy / price)
    return Tenant(f"tenant-{seed}-{i}", values.astype(float), incidents)


def run_tenant(tenant: Tenant, model: str, policy: AlertPolicy) -> list[tuple[int, int | None]]:
    """Score every hour; the alerts as (open hour, resolve hour or None)."""
    config = ModelConfig(model=model)
    scorer = AnomalyScorer(config, refit_offset(tenant.key, config))
    alerter = ScoreAlerter(policy)
    alerts: list[list] = []
    for h, value in enumerate(tenant.values.tolist()):
        s = scorer.update(T0_US + h * HOUR_US, value)
        ev = alerter.feed(tenant.key, s.time_us, s.score, s.impact)
        if ev.kind == OPEN:
            alerts.append([h, None])
        elif ev.kind == RESOLVE:
            alerts[-1][1] = h
    return [(a, b) for a, b in alerts]


def _run_one(args: tuple) -> tuple[list[Incident], list[tuple[int, int | None]], int]:
    seed, i, days, model, policy = args
    tenant = make_tenant(seed, i, days)
    return tenant.incidents, run_tenant(tenant, model, policy), len(tenant.values)


def evaluate(results: list, min_impact: float) -> dict:
    per_kind = {k: {"n": 0, "below_floor": 0, "detected": 0, "in_time": 0, "delays": []}
                for k in DEADLINE_H}
    legit = {"n": 0, "alerted": 0, "quiet_after_h": []}
    false_alerts, hours = 0, 0
    for incidents, alerts, n in results:
        hours += n
        windows = [(i.start, i.end + (0 if i.kind == "legit_change" else GRACE_H))
                   for i in incidents]
        false_alerts += sum(not any(a <= o < b for a, b in windows) for o, _ in alerts)
        for inc, (a, b) in zip(incidents, windows, strict=True):
            opened = [(o, r) for o, r in alerts if a <= o < b]
            if inc.kind == "legit_change":
                legit["n"] += 1
                if opened:
                    legit["alerted"] += 1
                    ends = [n if r is None else r for _, r in opened]
                    legit["quiet_after_h"].append(max(ends) - inc.start)
                continue
            k = per_kind[inc.kind]
            if inc.peak_extra < 2 * min_impact:
                k["below_floor"] += 1
                continue
            k["n"] += 1
            already = any(o < a and (r is None or r > a) for o, r in alerts)
            if opened or already:
                delay = 1 if already else opened[0][0] - a + 1
                k["detected"] += 1
                k["in_time"] += delay <= DEADLINE_H[inc.kind]
                k["delays"].append(delay)
    report: dict = {"tenant_months": hours / 720, "false_alerts": false_alerts}
    report["false_alerts_per_tenant_month"] = false_alerts / max(hours / 720, 1e-9)
    for kind, k in per_kind.items():
        n = max(k["n"], 1)
        report[kind] = {
            "n": k["n"],
            "below_floor": k["below_floor"],
            "recall": k["detected"] / n,
            "recall_in_time": k["in_time"] / n,
            "deadline_h": DEADLINE_H[kind],
            "median_delay_h": float(np.median(k["delays"])) if k["delays"] else None,
            "p90_delay_h": float(np.quantile(k["delays"], 0.9)) if k["delays"] else None,
        }
    q = legit["quiet_after_h"]
    report["legit_change"] = {
        "n": legit["n"],
        "alerted_share": legit["alerted"] / max(legit["n"], 1),
        "median_quiet_after_h": float(np.median(q)) if q else 0.0,
        "p90_quiet_after_h": float(np.quantile(q, 0.9)) if q else 0.0,
        "max_quiet_after_h": float(max(q)) if q else 0.0,
    }
    report["meets_targets"] = meets_targets(report)
    return report


def meets_targets(r: dict) -> bool:
    return (
        all(r[k]["recall_in_time"] >= RECALL_TARGET for k in DEADLINE_H)
        and r["false_alerts_per_tenant_month"] <= FALSE_ALERTS_TARGET
        and r["legit_change"]["max_quiet_after_h"] <= LEGIT_WINDOW_H
    )


def run(series: int, days: int, seed: int, model: str, policy: AlertPolicy, jobs: int) -> dict:
    tasks = [(seed, i, days, model, policy) for i in range(series)]
    t0 = time.perf_counter()
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(_run_one, tasks, chunksize=max(1, series // (4 * jobs))))
    else:
        results = [_run_one(t) for t in tasks]
    report = evaluate(results, policy.min_impact)
    report.update(model=model, series=series, days=days, seed=seed,
                  policy=asdict(policy), elapsed_s=round(time.perf_counter() - t0, 1))
    return report


def time_boundary(series: int, model: str, seed: int, distinct: int = 50) -> dict:
    """Wall time to score ``series`` series at one hour boundary, as the dataflow would.

    Each series has five weeks of history (restored from a snapshot of one of
    ``distinct`` warmed-up tenants, under its own key, so refits are spread over the
    day as in production) and gets one new hour: ``update`` plus the alert policy.
    Also timed: the same boundary with every series refitting (a worst case, e.g.
    all series created in the same hour), and pickling every state (a snapshot).
    """
    config = ModelConfig(model=model)
    warm_h, every = 36 * 24, config.points(config.refit_hours)
    states, next_values = [], []
    for i in range(distinct):
        tenant = make_tenant(seed, i, 37)
        scorer = AnomalyScorer(config, 0)
        for h, v in enumerate(tenant.values[:warm_h].tolist()):
            scorer.update(T0_US + h * HOUR_US, v)
        states.append(scorer.snapshot())
        next_values.append(float(tenant.values[warm_h]))
    k = warm_h + T0_US // HOUR_US
    out = {"series": series, "model": model}
    for label, all_refit in (("typical", False), ("all_refit", True)):
        scorers, values = [], []
        for j in range(series):
            state = dict(states[j % distinct])
            state["offset"] = refit_offset(f"tenant-{j}", config)
            state["next_refit"] = k if all_refit else k + (state["offset"] - k) % every
            scorers.append(AnomalyScorer.restore(state, config))
            values.append(next_values[j % distinct])
        refits = sum(s.next_refit == k for s in scorers)
        alerter = ScoreAlerter(AlertPolicy())
        t0 = time.perf_counter()
        for j, (scorer, value) in enumerate(zip(scorers, values, strict=True)):
            s = scorer.update(k * HOUR_US, value)
            alerter.feed(f"tenant-{j}", s.time_us, s.score, s.impact)
        out[f"{label}_s"] = round(time.perf_counter() - t0, 2)
        out[f"{label}_refits"] = refits
    t0 = time.perf_counter()
    blob = pickle.dumps([s.snapshot() for s in scorers], protocol=pickle.HIGHEST_PROTOCOL)
    out["snapshot_s"] = round(time.perf_counter() - t0, 2)
    out["state_bytes_per_series"] = len(blob) // series
    return out


def markdown(reports: list[dict]) -> str:
    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    def h(x: float | None) -> str:
        return "-" if x is None else f"{x:g}"

    head = "| metric | target | " + " | ".join(f"`{r['model']}`" for r in reports) + " |"
    out = [head, "|---|---|" + "---|" * len(reports)]
    for kind, deadline in DEADLINE_H.items():
        cells = [f"{pct(r[kind]['recall_in_time'])} ({pct(r[kind]['recall'])}), n={r[kind]['n']}"
                 for r in reports]
        label = f"{kind.replace('_', ' ')}: recall <= {deadline} h (any time)"
        out.append(f"| {label} | >= {RECALL_TARGET:.0%} | " + " | ".join(cells) + " |")
    for kind in DEADLINE_H:
        cells = [f"{h(r[kind]['median_delay_h'])} h (p90 {h(r[kind]['p90_delay_h'])} h)"
                 for r in reports]
        target = f"<= {DEADLINE_H[kind]} h"
        out.append(f"| {kind.replace('_', ' ')}: median delay | {target} | " + " | ".join(cells)
                   + " |")
    cells = [f"{pct(lc['alerted_share'])} alerted; quiet after {h(lc['median_quiet_after_h'])} h"
             f" (p90 {h(lc['p90_quiet_after_h'])} h, max {h(lc['max_quiet_after_h'])} h), "
             f"n={lc['n']}" for lc in (r["legit_change"] for r in reports)]
    out.append(f"| legit change | quiet <= {LEGIT_WINDOW_H} h | " + " | ".join(cells) + " |")
    cells = [f"{r['false_alerts_per_tenant_month']:.3f} ({r['false_alerts']} in "
             f"{r['tenant_months']:.0f} tenant-months)" for r in reports]
    out.append(f"| false alerts per tenant-month | <= {FALSE_ALERTS_TARGET:g} | "
               + " | ".join(cells) + " |")
    out.append("| meets targets | | " + " | ".join(
        "yes" if r["meets_targets"] else "**no**" for r in reports) + " |")
    out.append("| run time (s) | | " + " | ".join(f"{r['elapsed_s']}" for r in reports) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--days", type=int, default=91)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(MODELS))
    ap.add_argument("--compare", action="store_true", help="run every model, one table")
    ap.add_argument("--small", action="store_true",
                    help=f"CI preset: {SMALL['series']} series x {SMALL['days']} days")
    ap.add_argument("--min-impact", type=float, default=1.0, help="paging floor per hour")
    ap.add_argument("--open-at", type=float, default=AlertPolicy.open_at)
    ap.add_argument("--resolve-below", type=float, default=AlertPolicy.resolve_below)
    ap.add_argument("--cooldown-hours", type=float, default=6.0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", action="store_true", help="print the reports as JSON")
    ap.add_argument("--time-boundary", type=int, metavar="N",
                    help="instead: time scoring N series at one hour boundary")
    args = ap.parse_args(argv)
    if args.time_boundary:
        print(json.dumps(time_boundary(args.time_boundary, args.model, args.seed), indent=2))
        return 0
    if args.small:
        args.series, args.days = SMALL["series"], SMALL["days"]
    policy = AlertPolicy(open_at=args.open_at, resolve_below=args.resolve_below,
                         min_impact=args.min_impact,
                         cooldown_us=int(args.cooldown_hours * HOUR_US))
    models = sorted(MODELS, key=lambda m: m != DEFAULT_MODEL) if args.compare else [args.model]
    reports = [run(args.series, args.days, args.seed, m, policy, args.jobs) for m in models]
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        print(f"{args.series} series x {args.days} days, seed {args.seed}, policy: open at "
              f"{policy.open_at}, resolve below {policy.resolve_below}, min impact "
              f"{policy.min_impact}/h, cooldown {args.cooldown_hours:g} h\n")
        print(markdown(reports))
    return 0 if all(r["meets_targets"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
