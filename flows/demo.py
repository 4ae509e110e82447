"""`burnwatch demo`: a synthetic week through the whole flow, with no services.

One tenant's spend runs away for three hours. Budgets are set the way a FinOps
team would, from the spend it has seen (twice each tenant's typical hourly cost,
over a month), so the runaway pages and then resolves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pyarrow.dataset as ds
from rich.markup import escape

from flows.replay import Summary, replay
from flows.settings import BudgetSettings, Settings, TenantSettings, load_settings
from flows.synthetic import GeneratorConfig, Manifest

DEMO_PRICING = [
    {"meter": "api_calls", "currency": "USD", "prices": [{"unit_price": "0.0010"}]},
    {"meter": "tokens", "currency": "USD", "prices": [{"tiers": [
        {"up_to": 5_000_000, "unit_price": "0.000020"}, {"up_to": None, "unit_price": "0.000015"},
    ]}]},
    {"meter": "compute_seconds", "currency": "USD", "prices": [{"unit_price": "0.00010"}]},
    {"meter": "storage_gb_hours", "currency": "USD", "prices": [{"unit_price": "0.00050"}]},
]
DEMO_STREAM = GeneratorConfig(tenants=50, hours=168, runaway_tenant=7, runaway_start_hour=140,
                              runaway_hours=3, runaway_factor=60)


def budgets_from_spend(out: str) -> dict[str, TenantSettings]:
    rollups = ds.dataset(f"{out}/rollups", partitioning="hive").to_table(
        columns=["tenant", "window_start", "cost"]).to_pylist()
    hourly: dict[tuple, Decimal] = defaultdict(Decimal)
    for r in rollups:
        if r["cost"] is not None:
            hourly[(r["tenant"], r["window_start"].replace(minute=0))] += r["cost"]
    by_tenant: dict[str, list[Decimal]] = defaultdict(list)
    for (tenant, _), cost in hourly.items():
        by_tenant[tenant].append(cost)
    return {
        t: TenantSettings(budget=BudgetSettings(
            amount=(2 * _trimmed_mean(costs) * 720).quantize(Decimal("0.01"))))
        for t, costs in by_tenant.items()
    }


def _trimmed_mean(values: list[Decimal], cut: float = 0.05) -> Decimal:
    """Mean without the top `cut` share: last week's incident should not set the budget."""
    kept = sorted(values)[: max(1, int(len(values) * (1 - cut)))]
    return sum(kept, Decimal(0)) / len(kept)


def run_demo(out_dir: Path, write_stream, say, tenants: int = DEMO_STREAM.tenants,
             ) -> tuple[Manifest, Summary, Settings]:
    events = out_dir / "input" / "events.jsonl.gz"
    say(f"[bold]1/3[/] generating a week of usage for {tenants} tenants -> {escape(str(events))}")
    manifest = write_stream(replace(DEMO_STREAM, tenants=tenants), events)
    say(f"    {manifest.lines:,} lines; injected: {dict(manifest.dead_letters)}")
    settings = load_settings(None, out=str(out_dir / "out"), pricing=DEMO_PRICING)
    say("[bold]2/3[/] replaying it once to learn each tenant's typical spend")
    replay(settings, [events])
    settings = settings.model_copy(update={"tenants": budgets_from_spend(settings.out)})
    say(f"[bold]3/3[/] replaying with budgets into {escape(settings.out)} (same files, replaced)")
    return manifest, replay(settings, [events]), settings
