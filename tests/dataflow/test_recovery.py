"""State survives a crash: dedupe keys, open windows, buffered rows and file numbering."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSource, run_main

from flows.cli import write_stream
from flows.outputs import output_sinks
from flows.settings import BudgetSettings, GrantSettings, TenantSettings, load_settings
from flows.synthetic import GeneratorConfig
from flows.usage import Sinks, build_flow, usage_config
from operators.connectors.parquet_sink import ParquetSink
from operators.records import RawBatch, to_us
from operators.schemas import DEAD_LETTER, ROLLUPS
from operators.usage.run_files import RunFileConfig, RunFiles
from tests.helpers import config
from tests.oracle import (
    dead_letter_counts,
    duplicated_rows,
    mismatches,
    oracle_totals,
    output_totals,
    read_dataset,
    read_lines,
)

END = datetime(2026, 11, 20, tzinfo=UTC)


def run_once(items, out: Path, recovery: Path, now_us: int,
             files: RunFileConfig | None = None) -> None:
    """One execution; it stops at the next ABORT as a killed job would, and resumes on rerun."""
    sinks = Sinks(
        ParquetSink(str(out), ROLLUPS, run_key="test", partitions=2, rows_per_file=300),
        ParquetSink(str(out), DEAD_LETTER, run_key="test", partitions=2, rows_per_file=5),
    )
    flow = build_flow(replace(config(), dedupe_files=files), TestingSource(items), sinks,
                      lambda: now_us)
    run_main(flow, epoch_interval=timedelta(0), recovery_config=RecoveryConfig(str(recovery)))


def with_abort_at(batches: list, position: int | None) -> list:
    # One ABORT per execution: bytewax 0.21's TestingSource miscounts its resume position
    # by one for every ABORT it has already passed, so several in one list replay batches.
    if position is None:
        return batches
    return [*batches[:position], TestingSource.ABORT(), *batches[position:]]


@pytest.mark.parametrize("run_files", [False, True], ids=["inline", "run-files"])
@pytest.mark.parametrize("abort_every", [3, 7])
def test_crashes_lose_nothing_and_count_nothing_twice(tmp_path, abort_every, run_files,
                                                      monkeypatch):
    # With run files, runs of 64 keys or more are snapshotted as files: most of the index.
    run_dir = tmp_path / "recovery" / "dedupe"
    files = RunFileConfig(run_dir, inline_below=64) if run_files else None
    read = []
    real_read = RunFiles._read
    monkeypatch.setattr(RunFiles, "_read", lambda self, ref: read.append(ref.keys)
                        or real_read(self, ref))
    path = tmp_path / "events.jsonl"
    manifest = write_stream(
        GeneratorConfig(tenants=8, hours=12, seed=5, dup_rate=0.05, conflict_rate=0.01,
                        late_rate=0.05, bad_rate=0.01, end=END),
        path,
    )
    lines = path.read_bytes().splitlines()
    batches = [
        RawBatch(lines[i:i + 250], str(path), None, range(i + 1, i + 1 + len(lines[i:i + 250])))
        for i in range(0, len(lines), 250)
    ]
    aborts = list(range(abort_every, len(batches), abort_every))
    assert len(aborts) >= 3
    recovery = tmp_path / "recovery"
    recovery.mkdir()
    init_db_dir(recovery, 1)
    out = tmp_path / "out"
    now = datetime.now(UTC)
    expected = oracle_totals([path], now=now)

    run_once(with_abort_at(batches, aborts[0]), out, recovery, to_us(now), files)
    assert mismatches(expected, output_totals(str(out))) != []  # it stopped part way
    for position in [*aborts[1:], None]:
        run_once(with_abort_at(batches, position), out, recovery, to_us(now), files)

    assert mismatches(expected, output_totals(str(out))) == []
    assert duplicated_rows(str(out)) == 0
    if run_files:  # the restores above read most of the ids back from files
        assert sum(read) > 1000
    else:
        assert read == [] and not run_dir.exists()
    assert dead_letter_counts(str(out)) == dict(manifest.dead_letters)
    assert len(read_lines([path])) == manifest.lines


EXAMPLE = Path(__file__).resolve().parents[2] / "infra" / "config" / "burnwatch.example.yaml"


def spend_outputs(out: Path) -> dict[str, list]:
    """Everything the spend stage wrote, as sorted comparable tuples."""
    def rows(name, cols):
        table = read_dataset(str(out), name)
        return sorted(tuple(r[c] for c in cols) for r in table.to_pylist())

    return {
        "burn": rows("burn", ["tenant", "hour_start", "revision", "cost", "credits_remaining"]),
        "ledger": rows("ledger", ["tenant", "time", "kind", "grant_id", "amount", "balance"]),
        "alerts": rows("alerts", ["alert_id", "kind", "tenant", "action", "at", "status"]),
        "focus": rows("focus", ["BillingAccountId", "ServiceName", "ChargePeriodStart",
                                "x_Revision", "BilledCost"]),
    }


def test_spend_outputs_survive_crashes_exactly_once(tmp_path):
    path = tmp_path / "events.jsonl"
    write_stream(GeneratorConfig(tenants=4, hours=30, seed=9, late_rate=0.05, end=END,
                                 runaway_tenant=1, runaway_start_hour=20, runaway_hours=2,
                                 runaway_factor=80), path)
    lines = path.read_bytes().splitlines()
    batches = [RawBatch(lines[i:i + 300], str(path), None, range(i + 1, i + 301))
               for i in range(0, len(lines), 300)]
    settings = load_settings(EXAMPLE).model_copy(update={
        "webhooks": [], "rows_per_file": 200,
        "tenants": {"tenant-0001": TenantSettings(
            budget=BudgetSettings(amount=Decimal("40")),
            credits=[GrantSettings(grant_id="g", amount=Decimal("5"),
                                   granted_at=datetime(2026, 11, 1, tzinfo=UTC))])},
    })
    cfg = replace(usage_config(settings, follow_wall_clock=False), id_shards=4)
    now = to_us(datetime.now(UTC))

    def run(items, out: Path, recovery: Path | None) -> None:
        s = settings.model_copy(update={"out": str(out)})
        flow = build_flow(cfg, TestingSource(items), output_sinks(s, run_key="t",
                          max_delay_s=None), lambda: now)
        run_main(flow, epoch_interval=timedelta(0),
                 recovery_config=RecoveryConfig(str(recovery)) if recovery else None)

    run(batches, tmp_path / "clean", None)
    recovery = tmp_path / "recovery"
    recovery.mkdir()
    init_db_dir(recovery, 1)
    for position in [*range(4, len(batches), 5), None]:
        run(with_abort_at(batches, position), tmp_path / "crashed", recovery)

    clean, crashed = spend_outputs(tmp_path / "clean"), spend_outputs(tmp_path / "crashed")
    assert clean["alerts"], "the runaway tenant should have raised alerts"
    assert clean["ledger"] and clean["burn"] and clean["focus"]
    assert crashed == clean
