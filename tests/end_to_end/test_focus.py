"""The focus/ dataset: FOCUS 1.0 columns, checked by the FinOps Foundation's validator."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from flows.cli import write_stream
from flows.replay import replay
from flows.settings import load_settings
from flows.synthetic import GeneratorConfig
from tests.oracle import read_dataset

EXAMPLE = Path(__file__).resolve().parents[2] / "infra" / "config" / "burnwatch.example.yaml"
MANDATORY = {  # FOCUS 1.0 mandatory columns the issue lists, and their types
    "BilledCost": pa.decimal128(38, 9), "EffectiveCost": pa.decimal128(38, 9),
    "ListCost": pa.decimal128(38, 9), "ContractedCost": pa.decimal128(38, 9),
    "BillingCurrency": pa.string(), "ChargePeriodStart": pa.timestamp("us", "UTC"),
    "ChargePeriodEnd": pa.timestamp("us", "UTC"), "BillingPeriodStart": pa.timestamp("us", "UTC"),
    "BillingPeriodEnd": pa.timestamp("us", "UTC"), "ChargeCategory": pa.string(),
    "ChargeClass": pa.string(), "ChargeDescription": pa.string(),
    "PricingQuantity": pa.decimal128(38, 9), "PricingUnit": pa.string(),
    "ServiceName": pa.string(), "ServiceCategory": pa.string(), "ProviderName": pa.string(),
    "PublisherName": pa.string(), "InvoiceIssuerName": pa.string(),
    "BillingAccountId": pa.string(), "BillingAccountName": pa.string(),
}
# focus-validator 1.0.0 (the latest on PyPI) still checks a few pre-1.0 column names.
VALIDATOR_NAMES = {"ProviderName": "Provider", "PublisherName": "Publisher",
                   "InvoiceIssuerName": "InvoiceIssuer", "ResourceId": "ResourceID"}


@pytest.fixture(scope="module")
def focus(tmp_path_factory) -> pa.Table:
    tmp = tmp_path_factory.mktemp("focus")
    events = tmp / "events.jsonl"
    write_stream(GeneratorConfig(tenants=6, hours=30, seed=3, late_rate=0.05,
                                 end=datetime(2026, 11, 20, tzinfo=UTC)), events)
    settings = load_settings(EXAMPLE, out=str(tmp / "out"))
    settings = settings.model_copy(update={"webhooks": []})
    replay(settings, [events])
    return read_dataset(settings.out, "focus"), read_dataset(settings.out, "rollups")


def test_mandatory_columns_and_types(focus):
    table, rollups = focus
    for name, typ in MANDATORY.items():
        assert table.schema.field(name).type == typ, name
    rows = table.to_pylist()
    assert len(rows) == rollups.num_rows  # every rollup row of the example is priced
    assert {r["ChargeCategory"] for r in rows} == {"Usage"}
    assert {r["ChargeClass"] for r in rows} == {None, "Correction"}
    assert all(r["BilledCost"] == r["EffectiveCost"] == r["ListCost"] for r in rows)
    assert all(r["BillingPeriodStart"].day == 1 for r in rows)
    assert sum(r["BilledCost"] for r in rows) == sum(
        r["cost"] for r in rollups.to_pylist()) > Decimal(0)


def _validate(table: pa.Table, tmp_path: Path) -> subprocess.CompletedProcess:
    table = table.drop_columns(["date"]) if "date" in table.column_names else table
    table = table.rename_columns([VALIDATOR_NAMES.get(n, n) for n in table.column_names])
    # ... and calls ChargeCategory by its old name ChargeType in one rule.
    table = table.append_column("ChargeType", table.column("ChargeCategory"))
    csv = tmp_path / "focus.csv"
    pcsv.write_csv(table, csv)
    validator = Path(os.environ["FOCUS_VALIDATOR"])
    package_root = next(validator.parent.parent.glob("lib/python*/site-packages"))
    # It reads its currency list relative to the working directory.
    return subprocess.run([str(validator), "--data-file", str(csv), "--validate-version", "1.0"],
                          cwd=package_root, capture_output=True, text=True, timeout=600)


needs_validator = pytest.mark.skipif(not os.environ.get("FOCUS_VALIDATOR"),
                                     reason="focus-validator is installed by infra/test.sh")


@needs_validator
def test_focus_validator_accepts_it(focus, tmp_path):
    res = _validate(focus[0], tmp_path)
    assert res.returncode == 0 and "failed" not in res.stdout, res.stdout[-3000:]


@needs_validator
def test_focus_validator_rejects_a_file_that_breaks_the_spec(focus, tmp_path):
    """The check above can fail: the same lines with a currency that is not ISO 4217 are
    refused, by the rule for that column."""
    table = focus[0]
    column = table.schema.get_field_index("BillingCurrency")
    table = table.set_column(column, "BillingCurrency",
                             pa.array(["XYZ1"] * table.num_rows, pa.string()))
    res = _validate(table, tmp_path)
    assert "BillingCurrency_IsCurrencyCode failed" in res.stdout, res.stdout[-3000:]
    assert "Validation failed!" in res.stdout
