"""Replay a generated stream and compare every window total with the DuckDB oracle."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.cli import write_stream
from flows.replay import replay
from flows.settings import load_settings
from flows.synthetic import GeneratorConfig
from tests.oracle import (
    dead_letter_counts,
    duplicated_rows,
    mismatches,
    oracle_totals,
    output_totals,
)

END = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("input") / "events.jsonl.gz"
    manifest = write_stream(
        GeneratorConfig(tenants=50, hours=72, seed=11, dup_rate=0.02, conflict_rate=0.002,
                        late_rate=0.02, bad_rate=0.002, end=END),
        path,
    )
    assert manifest.lines > 200_000
    return path, json.loads(manifest.to_json())


@pytest.fixture(scope="module")
def oracle(stream):
    totals = oracle_totals([stream[0]], now=datetime.now(UTC))
    assert len(totals) > 10_000  # the comparison below is over many windows
    return totals


def files_of(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet"))


@pytest.mark.slow
def test_replay_matches_the_oracle_and_is_idempotent(stream, oracle, tmp_path):
    path, manifest = stream
    out = tmp_path / "out"
    settings = load_settings(None, out=str(out), rows_per_file=20_000)
    summary = replay(settings, [path])

    assert mismatches(oracle, output_totals(str(out))) == []
    assert duplicated_rows(str(out)) == 0
    assert dead_letter_counts(str(out)) == manifest["dead_letters"]
    assert summary.dead_letters == manifest["dead_letters"]
    assert summary.duplicates == manifest["duplicates"]
    assert summary.accepted == manifest["unique_events"]
    assert summary.correction_rows > 0  # late arrivals really produced corrections

    first_files = files_of(out)
    replay(settings, [path])
    assert files_of(out) == first_files  # replaced, not added
    assert mismatches(oracle, output_totals(str(out))) == []
    assert dead_letter_counts(str(out)) == manifest["dead_letters"]


@pytest.mark.slow
def test_two_workers_give_the_same_totals(stream, oracle, tmp_path):
    path, manifest = stream
    out = tmp_path / "out2"
    replay(load_settings(None, out=str(out)), [path], workers=2)
    assert mismatches(oracle, output_totals(str(out))) == []
    assert duplicated_rows(str(out)) == 0
    assert dead_letter_counts(str(out)) == manifest["dead_letters"]
