"""`burnwatch run` as a cluster of Bytewax processes (-i/-a) on loopback.

A two-process cluster consumes a 3-partition topic (started with -i/-a, and by
`run --processes 2`); its totals must equal the
DuckDB oracle's and a single process's. Then the same cluster is killed with
SIGKILL mid-run and resumed, once with a shared recovery directory (rescaled to
one process with three workers on the last resume) and once with a recovery
directory per process, as on Kubernetes with a volume per pod.

What Bytewax 0.21 needs from the recovery store of a cluster:

* the processes of the cluster, together, see every recovery partition
  (``part-<i>.sqlite3``); each process lists the ones in its own
  ``--recovery-dir`` and one worker that sees a partition is made its writer;
* the partition count is fixed when the store is made (burnwatch: workers x
  processes of the first run); the worker count may change between runs, as
  state is routed by key to whichever worker owns it now;
* every process shares one run key (``BURNWATCH_RUN_KEY``), which names the
  output files.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from flows.local_cluster import free_ports
from flows.store import RUN_KEY_FILE
from tests.integration.conftest import Job, create_topic, make_stream, run_args, wait_until
from tests.oracle import (
    correction_rows,
    dead_letter_counts,
    duplicated_rows,
    mismatches,
    output_totals,
)
from tests.produce import produce

pytestmark = pytest.mark.integration
# Small files, so kills land between writes and a resume must replace files.
SMALL_FILES = {"BURNWATCH_ROWS_PER_FILE": "20000", "BURNWATCH_DEDUPE_FILE_KEYS": "1000"}


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> tuple[Path, list[bytes], dict]:
    generated = make_stream(tmp_path_factory, "cluster-stream", tenants=60, hours=96, seed=41)
    assert len(generated[1]) > 300_000
    return generated


@pytest.fixture(scope="module")
def topic(services, stream) -> str:
    # Read-only for every test here: each job has its own recovery store and output.
    name = create_topic(services["KAFKA_BOOTSTRAP"], partitions=3)
    produce(services["KAFKA_BOOTSTRAP"], name, stream[1])
    return name


def backfill_args(services, topic: str, out: str, recovery: Path, *extra: str) -> list[str]:
    return run_args(services, topic, out, recovery, "--until-end", *extra)


def start_cluster(services, topic: str, out: str, recoveries: list[Path], run_key: str,
                  tmp_path: Path, tag: str, env: dict[str, str] | None = None) -> list[Job]:
    """One `burnwatch run -i I -a ADDRS` per recovery dir (a dir may repeat: shared)."""
    addresses = ";".join(f"127.0.0.1:{p}" for p in free_ports(len(recoveries)))
    jobs: list[Job] = []
    for i, recovery in enumerate(recoveries):
        args = backfill_args(services, topic, out, recovery, "-i", str(i), "-a", addresses)
        jobs.append(Job(*args, env={"BURNWATCH_RUN_KEY": run_key, **(env or {})},
                        log=tmp_path / f"{tag}-{i}.log"))
        if i == 0:
            # burnwatch makes the store before Bytewax starts (process 0 then waits for its
            # peers); a process that shares the directory must find it complete.
            made = wait_until(lambda r=recovery: (r / RUN_KEY_FILE).is_file(), timeout=60,
                              every=0.1)
            assert made, jobs[0].output()
    return jobs


def wait_all(jobs: list[Job], timeout: float = 600) -> None:
    for job in jobs:
        assert job.wait(timeout) == 0, job.output()


def kill_mid_run(jobs: list[Job]) -> None:
    """SIGKILL every process once the cluster has written a file (so snapshots exist and a
    resume has files to replace), while it is still running."""
    wrote = wait_until(lambda: any("flushed dataset=" in job.output() for job in jobs),
                       timeout=120, every=0.1)
    assert wrote, jobs[0].output()
    for job in jobs:
        assert job.running(), "the cluster finished before it could be killed:\n" + job.output()
    for job in jobs:
        job.kill9()


def assert_exact(out: str, oracle: dict, dead_letters: dict) -> dict:
    totals = output_totals(out)
    assert mismatches(oracle, totals) == []
    assert duplicated_rows(out) == 0
    assert dead_letter_counts(out) == dead_letters
    return totals


def test_two_processes_give_the_same_totals_as_one(services, stream, oracle, topic, s3_out,
                                                   tmp_path, capsys):
    single_out, cluster_out = f"{s3_out}-one", f"{s3_out}-two"

    started = time.monotonic()
    single = Job(*backfill_args(services, topic, single_out, tmp_path / "rec-single"),
                 log=tmp_path / "single.log")
    wait_all([single])
    single_s = time.monotonic() - started

    started = time.monotonic()
    shared = tmp_path / "rec-cluster"
    jobs = start_cluster(services, topic, cluster_out, [shared, shared], "two-procs", tmp_path,
                         "cluster")
    wait_all(jobs)
    cluster_s = time.monotonic() - started

    single_totals = assert_exact(single_out, oracle, stream[2])
    cluster_totals = assert_exact(cluster_out, oracle, stream[2])
    assert cluster_totals.keys() == single_totals.keys()
    assert mismatches(single_totals, cluster_totals) == []
    # Event counts are integers: equal exactly. Quantities are float sums, maybe in
    # another order; report how far apart they are.
    assert all(cluster_totals[k][1] == single_totals[k][1] for k in single_totals)
    worst = max(abs(cluster_totals[k][0] - single_totals[k][0]) for k in single_totals)
    # Both processes did part of the work: each wrote rollup files of its own.
    for i in range(2):
        assert "flushed dataset=rollups" in (tmp_path / f"cluster-{i}.log").read_text(), i
    # The processes read their partitions at their own pace, minutes of event time apart:
    # windows wait for the one behind, so only late events become correction rows, about
    # as many as in one process (with one watermark for all partitions, most of the
    # slower process's events did: 20 x as many on the benchmark's topic).
    corrections = correction_rows(single_out), correction_rows(cluster_out)
    assert corrections[1] <= 2 * corrections[0] + 100, corrections
    with capsys.disabled():
        print(f"\n[cluster] {len(stream[1]):,} records, {len(single_totals):,} windows: "
              f"1 process {single_s:.1f} s, 2 processes {cluster_s:.1f} s (wall, incl. start); "
              f"identical windows; event counts equal; max |quantity diff| {worst:.3g}; "
              f"correction rows {corrections[0]:,} and {corrections[1]:,}")


def test_a_killed_cluster_resumes_and_rescales_on_a_shared_store(services, stream, oracle,
                                                                 topic, s3_out, tmp_path):
    out = s3_out
    shared = tmp_path / "rec"
    for attempt in range(2):
        jobs = start_cluster(services, topic, out, [shared, shared], "shared-store", tmp_path,
                             f"try{attempt}", env=SMALL_FILES)
        kill_mid_run(jobs)
    # The store has 2 partitions (1 worker x 2 processes when it was made); resume on
    # one process with 3 workers: Bytewax routes each key's state to its new owner.
    final = Job(*backfill_args(services, topic, out, shared, "--workers", "3"),
                env={"BURNWATCH_RUN_KEY": "shared-store", **SMALL_FILES},
                log=tmp_path / "rescaled.log")
    wait_all([final])
    assert sorted(p.name for p in shared.glob("part-*.sqlite3")) == [
        "part-0.sqlite3", "part-1.sqlite3"]
    assert_exact(out, oracle, stream[2])
    # every id shard kept its large dedupe runs as files, in the shared directory where
    # the worker that owns the shard after the rescale finds them
    assert {p.parent.name for p in shared.glob("dedupe/*/run-*.npz")} == {"0", "1", "2", "3"}


def test_a_killed_cluster_resumes_with_a_store_per_process(services, stream, oracle, topic,
                                                           s3_out, tmp_path):
    # As on Kubernetes: each pod has its own volume. Same topology on every run.
    out = s3_out
    recoveries = [tmp_path / "rec-0", tmp_path / "rec-1"]
    jobs = start_cluster(services, topic, out, recoveries, "per-process", tmp_path, "first",
                         env=SMALL_FILES)
    kill_mid_run(jobs)
    jobs = start_cluster(services, topic, out, recoveries, "per-process", tmp_path, "resumed",
                         env=SMALL_FILES)
    wait_all(jobs)
    assert_exact(out, oracle, stream[2])
    # Each partition of the store exists once, on the volume of the process that made it,
    # and each id shard's dedupe runs on the volume of the process that owns the shard.
    assert [p.name for p in recoveries[0].glob("part-*.sqlite3")] == ["part-0.sqlite3"]
    assert [p.name for p in recoveries[1].glob("part-*.sqlite3")] == ["part-1.sqlite3"]
    shards = [{p.parent.name for p in r.glob("dedupe/*/run-*.npz")} for r in recoveries]
    assert shards[0] and shards[1] and not shards[0] & shards[1], shards


def test_processes_option_runs_a_local_cluster_that_dies_with_its_parent(
        services, stream, oracle, topic, s3_out, tmp_path):
    out = s3_out
    recovery = tmp_path / "rec"
    first = Job(*backfill_args(services, topic, out, recovery, "--processes", "2"), env=SMALL_FILES,
                log=tmp_path / "first.log")
    assert wait_until(lambda: "started 2 processes" in first.output(), timeout=60), \
        first.output()
    pids = [int(p) for p in re.search(r"pids=\[([\d, ]+)\]", first.output()).group(1)
            .split(",")]
    kill_mid_run([first])  # SIGKILL the parent only
    # Its children stop with it (they would otherwise keep the store busy).
    assert wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in pids), timeout=30)
    resumed = Job(*backfill_args(services, topic, out, recovery, "--processes", "2"),
                  env=SMALL_FILES, log=tmp_path / "resumed.log")
    wait_all([resumed])
    assert_exact(out, oracle, stream[2])
    log = (tmp_path / "resumed.log").read_text()
    # Both processes did part of the work: rollup files from two pids.
    writers = set(re.findall(r"\[(\d+)\].*flushed dataset=rollups", log))
    assert len(writers) == 2, log[-3000:]
