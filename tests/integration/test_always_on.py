"""`burnwatch run` on a real Kafka broker and a real S3 server (SeaweedFS).

Every test compares every (tenant, meter, window) total with the DuckDB oracle
over the same lines, checks that no row is duplicated, and that the dead
letters are exactly the injected bad records.
"""

from __future__ import annotations

import random
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import (
    Job,
    create_topic,
    make_stream,
    run_args,
    services_sh,
    wait_until,
)
from tests.oracle import (
    dead_letter_counts,
    duplicated_rows,
    mismatches,
    oracle_totals,
    output_totals,
)
from tests.produce import produce

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> tuple[Path, list[bytes], dict]:
    generated = make_stream(tmp_path_factory, "stream", tenants=80, hours=120, seed=23)
    assert len(generated[1]) > 500_000
    return generated


@pytest.fixture
def topic(services, stream) -> str:
    name = create_topic(services["KAFKA_BOOTSTRAP"], partitions=3)
    produce(services["KAFKA_BOOTSTRAP"], name, stream[1])
    return name


def assert_matches_oracle(out: str, oracle: dict, dead_letters: dict) -> None:
    assert mismatches(oracle, output_totals(out)) == []
    assert duplicated_rows(out) == 0
    assert dead_letter_counts(out) == dead_letters


def complete(oracle: dict, out: str) -> bool:
    try:
        return not mismatches(oracle, output_totals(out))
    except FileNotFoundError:  # listed mid-upload: look again at the next poll
        return False


def dlq_reasons(bootstrap: str, topic: str) -> dict[str, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "it-dlq",
                         "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    counts: dict[str, int] = {}
    eofs = 0
    while eofs < len(meta.partitions):
        msg = consumer.poll(5)
        if msg is None:
            break
        if msg.error():
            eofs += 1
            continue
        reason = dict(msg.headers())["reason"].decode()
        counts[reason] = counts.get(reason, 0) + 1
    consumer.close()
    return counts


@pytest.fixture(scope="module")
def long_stream(tmp_path_factory) -> tuple[Path, list[bytes], dict]:
    """A week of the same traffic: enough work that three runs can each be killed part way
    (the job reads the 120-hour stream in about 2 s of processing)."""
    generated = make_stream(tmp_path_factory, "long", tenants=80, hours=168, seed=29)
    assert len(generated[1]) > 900_000
    return generated


def _store_written_since(recovery: Path, t: float) -> bool:
    """A snapshot committed after ``t``: a recovery part (or its journal) changed since."""
    for f in recovery.rglob("*.sqlite3*"):
        try:
            if f.stat().st_mtime > t:
                return True
        except FileNotFoundError:  # a journal that sqlite just removed
            continue
    return False


def test_kill_9_three_times_loses_nothing_and_doubles_nothing(services, long_stream, s3_out,
                                                              tmp_path):
    path, lines, dead_letters = long_stream
    topic = create_topic(services["KAFKA_BOOTSTRAP"], partitions=3)
    produce(services["KAFKA_BOOTSTRAP"], topic, lines)
    oracle = oracle_totals([path], now=datetime.now(UTC))
    recovery = tmp_path / "recovery"
    args = run_args(services, topic, s3_out, recovery, "--until-end")
    # Small files, so kills land between writes and resumes must replace files; dedupe
    # runs of 1,000 ids or more snapshotted as files, so resumes read most ids from them.
    env = {"BURNWATCH_ROWS_PER_FILE": "20000", "BURNWATCH_DEDUPE_FILE_KEYS": "1000"}
    kills = 0
    for run in range(3):
        log = tmp_path / f"job-{run}.log"
        job = Job(*args, env=env, log=log)
        # Kill only once this run has written state: its (run+1)-th file, then a snapshot
        # in the recovery store after it, so every kill lands on a different point.
        assert wait_until(lambda log=log, run=run: log.read_text().count("flushed dataset=")
                          > run, timeout=120, every=0.05), job.output()
        flushed = time.time()
        assert wait_until(lambda t=flushed: _store_written_since(recovery, t), timeout=60,
                          every=0.05), job.output()
        assert job.running(), "the job finished before it could be killed:\n" + job.output()
        job.kill9()
        kills += 1
    final = Job(*args, env=env, log=tmp_path / "job.log")
    assert final.wait() == 0, final.output()
    assert kills == 3
    assert_matches_oracle(s3_out, oracle, dead_letters)
    assert list((recovery / "dedupe").glob("*/run-*.npz"))
    # The DLQ topic is at least once: every reason is there, maybe more than once.
    dlq = dlq_reasons(services["KAFKA_BOOTSTRAP"], f"{topic}.dlq")
    assert dlq.keys() == dead_letters.keys()
    assert all(dlq[r] >= n for r, n in dead_letters.items())


def test_ids_kept_in_dedupe_run_files_are_remembered_after_a_restart(services, stream, oracle,
                                                                     topic, s3_out, tmp_path):
    """The whole stream, counted; then every line of it again, after a restart: nothing more
    counts, and every rejected line is rejected once more."""
    path, lines, dead_letters = stream
    recovery = tmp_path / "recovery"
    args = run_args(services, topic, s3_out, recovery, "--until-end")
    # Most ids in files (runs of 1,000 or more), none forgotten over the stream's 120 hours.
    env = {"BURNWATCH_DEDUPE_FILE_KEYS": "1000", "BURNWATCH_DEDUPE_HORIZON": "7d"}
    first = Job(*args, env=env, log=tmp_path / "first.log")
    assert first.wait() == 0, first.output()
    assert_matches_oracle(s3_out, oracle, dead_letters)
    assert list((recovery / "dedupe").glob("*/run-*.npz"))
    produce(services["KAFKA_BOOTSTRAP"], topic, lines)
    again = Job(*args, env=env, log=tmp_path / "again.log")
    assert again.wait() == 0, again.output()
    assert_matches_oracle(s3_out, oracle, {r: 2 * n for r, n in dead_letters.items()})


def test_two_workers_give_the_same_totals(services, stream, oracle, topic, s3_out, tmp_path):
    job = Job(*run_args(services, topic, s3_out, tmp_path / "rec", "--until-end", "--workers", "2"),
              log=tmp_path / "job.log")
    assert job.wait() == 0, job.output()
    assert_matches_oracle(s3_out, oracle, stream[2])


def run_through_outage(services, topic, out, tmp_path, service: str, seconds: float,
                       env: dict | None = None) -> Job:
    """Start a backfill, take `service` down for `seconds` while it runs, bring it back."""
    job = Job(*run_args(services, topic, out, tmp_path / "rec", "--until-end"), env=env,
              log=tmp_path / "job.log")
    try:
        # Past its start-up checks (the recovery store is made after --out is probed), and
        # far from done: a run reads this stream in ~2 s. A sleep here raced the probe on a
        # loaded machine: the service went down under it and the job rightly refused to start.
        assert wait_until(lambda: any((tmp_path / "rec").glob("*.sqlite3*")), timeout=60,
                          every=0.05), job.output()
        assert job.running(), job.output()
        services_sh(f"stop-{service}")
        time.sleep(seconds)
        assert job.running(), f"the job must wait for {service}:\n" + job.output()
    finally:
        services_sh(f"start-{service}")
    assert job.wait() == 0, job.output()
    return job


def test_a_broker_restart_loses_nothing(services, stream, oracle, topic, s3_out, tmp_path):
    run_through_outage(services, topic, s3_out, tmp_path, "kafka", 5)
    assert_matches_oracle(s3_out, oracle, stream[2])


def test_an_s3_outage_loses_nothing(services, stream, oracle, topic, s3_out, tmp_path):
    # Small files so the job is writing while the store is down.
    job = run_through_outage(services, topic, s3_out, tmp_path, "s3", 30,
                             env={"BURNWATCH_ROWS_PER_FILE": "3000"})
    assert "retrying" in job.log.read_text()
    assert_matches_oracle(s3_out, oracle, stream[2])


def test_always_on_closes_idle_windows_by_the_wall_clock_and_serves_metrics(
    services, stream, oracle, topic, s3_out, tmp_path
):
    # No --until-end: the job runs until stopped. The stream ended days ago, so only
    # the wall clock can close its last windows.
    port = 19400 + random.Random().randrange(500)
    job = Job(*run_args(services, topic, s3_out, tmp_path / "rec"), log=tmp_path / "job.log",
              env={"BURNWATCH_ALLOWED_LATENESS": "5s", "BURNWATCH_MAX_FILE_DELAY": "2s",
                   "BURNWATCH_METRICS_PORT": str(port)})
    try:
        done = wait_until(lambda: complete(oracle, s3_out), timeout=180, every=5)
        assert done, job.output()
        assert job.running()
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        for name in (b"burnwatch_events_read_total", b"burnwatch_consumer_lag",
                     b"burnwatch_dead_letters_total", b"burnwatch_files_written_total",
                     b'burnwatch_partition_watermark_seconds{partition="2"}'):
            assert name in metrics
        # Every partition read to its end: a lag of 0 each (checked every 5 s per partition)
        def lags() -> dict[str, float]:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            return {s.labels["partition"]: s.value
                    for family in text_string_to_metric_families(text.decode())
                    for s in family.samples if s.name == "burnwatch_consumer_lag"}
        assert wait_until(lambda: lags() == {"0": 0.0, "1": 0.0, "2": 0.0}, timeout=20), lags()
    finally:
        job.stop()
    assert duplicated_rows(s3_out) == 0
