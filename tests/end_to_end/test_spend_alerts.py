"""A tenant's spend runs away: exactly its pages fire and resolve, at a real receiver.

Budget burn-rate pages and tickets, and the anomaly model's alert, all through the
same delivery path.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from werkzeug import Response

from flows.cli import write_stream
from flows.replay import replay
from flows.settings import BudgetSettings, TenantSettings, WebhookSettings, load_settings
from flows.synthetic import GeneratorConfig
from tests.oracle import oracle_totals, read_dataset

EXAMPLE = Path(__file__).resolve().parents[2] / "infra" / "config" / "burnwatch.example.yaml"
END = datetime(2026, 11, 20, tzinfo=UTC)
HOUR_US = 3_600_000_000
RUNAWAY = "tenant-0003"


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spend") / "events.jsonl"
    write_stream(GeneratorConfig(tenants=8, hours=96, seed=31, end=END, runaway_tenant=3,
                                 runaway_start_hour=60, runaway_hours=4, runaway_factor=60),
                 path)
    return path


def hourly_costs(path: Path, prices: dict[str, Decimal]) -> dict[str, list[float]]:
    """Each tenant's cost per hour from the oracle's quantities and first-tier prices."""
    by_hour: dict[tuple[str, int], float] = defaultdict(float)
    for (tenant, meter, start), (quantity, _) in oracle_totals([path], datetime.now(UTC)).items():
        by_hour[(tenant, start // HOUR_US)] += quantity * float(prices[meter])
    out: dict[str, list[float]] = defaultdict(list)
    for (tenant, _), cost in sorted(by_hour.items()):
        out[tenant].append(cost)
    return out


def test_runaway_tenant_pages_and_resolves_quiet_tenants_get_nothing(stream, tmp_path,
                                                                       httpserver):
    base = load_settings(EXAMPLE)
    secret = base.webhooks[0].secret.get_secret_value()
    prices = {p["meter"]: Decimal(p["prices"][0].get("unit_price")
                                  or p["prices"][0]["tiers"][0]["unit_price"])
              for p in base.pricing}
    # A budget three times each tenant's typical (median) hourly spend, for a 30-day month.
    budgets = {t: Decimal(str(round(3 * statistics.median(c) * 720, 2)))
               for t, c in hourly_costs(stream, prices).items()}
    received = []

    def receiver(request):
        received.append(request)
        return Response("", status=204)

    httpserver.expect_request("/burnwatch", method="POST").respond_with_handler(receiver)
    settings = base.model_copy(update={
        "out": str(tmp_path / "out"),
        "tenants": {t: TenantSettings(budget=BudgetSettings(amount=b)) for t, b in budgets.items()},
        "webhooks": [WebhookSettings(name="oncall", url=httpserver.url_for("/burnwatch"),
                                     secret=secret, retry_schedule=["50ms"] * 3)],
    })

    summary = replay(settings, [stream])

    alerts = read_dataset(settings.out, "alerts").to_pylist()
    seen = sorted((a["tenant"], a["kind"], a["action"]) for a in alerts)
    assert seen == [
        (RUNAWAY, "budget_burn", "resolve"), (RUNAWAY, "budget_burn", "trigger"),
        (RUNAWAY, "budget_burn_ticket", "resolve"), (RUNAWAY, "budget_burn_ticket", "trigger"),
        (RUNAWAY, "spend_anomaly", "resolve"), (RUNAWAY, "spend_anomaly", "trigger"),
    ]
    assert all(a["status"] == "delivered" and a["sink"] == "oncall" for a in alerts)
    page = {a["action"]: a for a in alerts if a["kind"] == "budget_burn"}
    runaway_start = END.timestamp() * 1e6 - 36 * HOUR_US  # hour 60 of 96
    opened = page["trigger"]["at"].timestamp() * 1e6
    assert runaway_start <= opened <= runaway_start + HOUR_US  # paged within the first hour
    assert page["resolve"]["at"] > page["trigger"]["at"]
    assert page["trigger"]["alert_id"] == page["resolve"]["alert_id"]

    # What reached the receiver is what alerts/ says, each verified by standardwebhooks.
    payloads = [Webhook(secret).verify(r.get_data(), dict(r.headers)) for r in received]
    assert sorted((p["data"]["tenant"], p["data"]["kind"], p["data"]["action"])
                  for p in payloads) == seen
    assert summary.alerts == {"trigger": 3, "resolve": 3}
    anomaly = next(p["data"] for p in payloads
                   if p["data"]["kind"] == "spend_anomaly" and p["data"]["action"] == "trigger")
    details = anomaly["details"]
    assert details["actual"] > details["upper"] > details["expected"] > 0
    assert details["score"] >= 0.7 and details["impact"] == pytest.approx(
        details["actual"] - details["expected"])

    # burn/ (latest revision of each hour) adds up to the cost of the rollups, to the cent.
    rollups = read_dataset(settings.out, "rollups").to_pylist()
    burn = read_dataset(settings.out, "burn").to_pylist()
    latest: dict[tuple, dict] = {}
    for row in burn:
        key = (row["tenant"], row["hour_start"])
        if key not in latest or row["revision"] > latest[key]["revision"]:
            latest[key] = row
    for tenant in budgets:
        rollup_cost = sum(r["cost"] for r in rollups if r["tenant"] == tenant)
        burn_cost = sum(r["cost"] for k, r in latest.items() if k[0] == tenant)
        assert rollup_cost == burn_cost
        assert all(r["budget"] == budgets[tenant] for k, r in latest.items() if k[0] == tenant)
    # Every hour is scored by the anomaly model (cold-start fallback included).
    assert all(r["model"] is not None and 0 <= r["anomaly_score"] <= 1 for r in latest.values())
    runaway_hour = max((r for k, r in latest.items() if k[0] == RUNAWAY),
                       key=lambda r: r["anomaly_score"])
    assert runaway_hour["cost"] > runaway_hour["expected_cost"]

    # Flat-priced meters: the rollups' cost is quantity x price (each row rounded to 1e-9).
    api = [r for r in rollups if r["meter"] == "api_calls"]
    expected = Decimal(str(sum(r["quantity"] for r in api))) * prices["api_calls"]
    assert abs(sum(r["cost"] for r in api) - expected) <= Decimal("1e-9") * len(api)
    assert {r["currency"] for r in rollups} == {"USD"}
