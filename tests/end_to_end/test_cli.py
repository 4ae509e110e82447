"""The burnwatch command as a user runs it."""

import subprocess
import sys

import duckdb


def burnwatch(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_help_lists_the_commands():
    res = burnwatch("--help")
    assert res.returncode == 0
    for cmd in ("generate", "replay", "demo"):
        assert cmd in res.stdout


def test_generate_then_replay_prints_a_summary_and_writes_parquet(tmp_path):
    events = tmp_path / "e.jsonl"
    res = burnwatch("generate", "--out", str(events), "--tenants", "5", "--hours", "6",
                    "--bad-rate", "0.01", "--end", "2026-11-20T00:00:00")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "e.jsonl.manifest.json").is_file()
    out = tmp_path / "out"
    res = burnwatch("replay", str(events), "--out", str(out), "--window", "5m")
    assert res.returncode == 0, res.stderr
    assert "throughput" in res.stdout and "dead letters" in res.stdout
    widths = duckdb.sql(
        f"SELECT DISTINCT window_end - window_start FROM "
        f"read_parquet('{out}/rollups/**/*.parquet', hive_partitioning=true)"
    ).fetchall()
    assert [w[0].total_seconds() for w in widths] == [300]


def test_bad_configuration_is_named_before_the_job_starts(tmp_path):
    events = tmp_path / "e.jsonl"
    events.write_text("")
    res = burnwatch("replay", str(events), "--out", str(tmp_path / "o"), "--allowed-lateness",
                    "-1m")
    assert res.returncode == 2
    assert "allowed_lateness" in res.stderr
    res = burnwatch("replay", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"))
    assert res.returncode == 2
    assert "missing.jsonl" in res.stderr
    assert not (tmp_path / "o" / "rollups").exists()
