"""The Kafka source on a real broker: records that are not usage events, offsets the
broker does not have, and what the watermark needs from it (partitions at their end, a
restart)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
from confluent_kafka import KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.helpers import event
from tests.integration.conftest import Job, create_topic, run_args, wait_until
from tests.oracle import correction_rows, duplicated_rows, output_totals, read_dataset


def test_tombstones_and_empty_messages_are_dead_letters_with_their_offsets(services, tmp_path):
    topic = create_topic(services["KAFKA_BOOTSTRAP"], partitions=1)
    values = [event("a", 1, 2), None, event("b", 2, 3), b"", event("a", 1, 2)]
    producer = Producer({"bootstrap.servers": services["KAFKA_BOOTSTRAP"]})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0
    out = str(tmp_path / "out")
    job = Job(*run_args(services, topic, out, tmp_path / "rec", "--until-end"),
              log=tmp_path / "job.log")
    assert job.wait(120) == 0, job.output()

    dead = read_dataset(out, "dead_letter").sort_by("offset").to_pylist()
    assert [(d["reason"], d["raw"], d["partition"], d["offset"], d["source"]) for d in dead] == [
        ("invalid_json", b"", 0, 1, topic),  # the tombstone (a null value)
        ("invalid_json", b"", 0, 3, topic),
    ]
    # The events around them count once each; the copy of "a" is a duplicate.
    totals = output_totals(out)
    assert sorted(v for v in totals.values()) == [(2.0, 1), (3.0, 1)]


class _Topic:
    """A one-partition topic, and `burnwatch run --until-end` over it with one store."""

    def __init__(self, services, tmp_path) -> None:
        self.bootstrap = services["KAFKA_BOOTSTRAP"]
        self.services = services
        self.name = create_topic(self.bootstrap, partitions=1)
        self.tmp = tmp_path
        self.out = str(tmp_path / "out")

    def produce(self, first: int, n: int) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap})
        for i in range(first, first + n):
            producer.produce(self.name, value=event(f"e{i}", 1 + i, i))
        assert producer.flush(30) == 0

    def run(self) -> tuple[int, str]:
        job = Job(*run_args(self.services, self.name, self.out, self.tmp / "rec", "--until-end"),
                  log=self.tmp / "job.log")
        return job.wait(120), job.output()

    def quantities(self) -> list[float]:
        return sorted(q for q, _n in output_totals(self.out).values())


def test_a_resume_offset_deleted_by_retention_reads_what_is_left_and_says_so(services,
                                                                            tmp_path):
    """The job was down while retention deleted records it had not read: it must read the
    records still there (not jump to the end of the partition and skip them), and say
    how many offsets it could not read."""
    topic = _Topic(services, tmp_path)
    topic.produce(0, 10)
    assert topic.run()[0] == 0  # reads offsets 0-9; its snapshot resumes at 10
    topic.produce(10, 10)
    admin = AdminClient({"bootstrap.servers": topic.bootstrap})
    deleted = admin.delete_records([TopicPartition(topic.name, 0, 15)])
    assert next(iter(deleted.values())).result(30).low_watermark == 15
    rc, log = topic.run()  # offset 10 is gone: 15-19 are left
    assert rc == 0, log
    assert topic.quantities() == [float(i) for i in [*range(10), *range(15, 20)]]
    assert (f"kafka topic={topic.name} partition=0: offsets 10 to 14 were deleted by "
            "retention before they were read (up to 5 records lost)") in log


def test_a_recovery_store_ahead_of_a_re_created_topic_stops_the_job(services, tmp_path):
    """Reading a re-created topic from either end would skip its records or count old
    ones twice: the job must stop and say why, before it reads anything."""
    topic = _Topic(services, tmp_path)
    topic.produce(0, 10)
    assert topic.run()[0] == 0  # its snapshot resumes at offset 10
    admin = AdminClient({"bootstrap.servers": topic.bootstrap})
    admin.delete_topics([topic.name])[topic.name].result(30)
    deadline = time.monotonic() + 60
    while True:  # the broker finishes deleting in the background
        try:
            admin.create_topics([NewTopic(topic.name, 1, 1)])[topic.name].result(30)
            break
        except KafkaException:
            assert time.monotonic() < deadline, "the topic could not be re-created"
            time.sleep(0.5)
    topic.produce(100, 3)  # offsets 0-2 of the new topic

    rc, log = topic.run()
    assert rc != 0
    assert (f"topic {topic.name} partition 0: the next offset to read, 10 (from the "
            "recovery store or this run), is past the partition's end, the broker says (it "
            "now holds offsets 0 to 2)") in log
    assert topic.quantities() == [float(i) for i in range(10)]  # nothing of the new topic


def test_always_on_windows_close_though_partitions_have_no_records(services, tmp_path):
    # Windows close on the least of the partitions' watermarks. Partitions 1 and 2 never
    # get a record: the source must say they are at their end, or partition 0's windows
    # would wait for them until the 30 s grace for partitions not heard from (so the
    # check ends before it).
    bootstrap = services["KAFKA_BOOTSTRAP"]
    topic = create_topic(bootstrap, partitions=3)
    producer = Producer({"bootstrap.servers": bootstrap})
    for m in range(10):
        producer.produce(topic, value=event(f"e{m}", m + 0.5, m + 1), partition=0)
    assert producer.flush(30) == 0
    out = str(tmp_path / "out")
    job = Job(*run_args(services, topic, out, tmp_path / "rec"), log=tmp_path / "job.log",
              env={"BURNWATCH_ALLOWED_LATENESS": "5s", "BURNWATCH_MAX_FILE_DELAY": "1s"})
    try:
        # The watermark is 9.5 minutes less 5 s: the windows of minutes 0 to 8 close.
        assert wait_until(lambda: len(output_totals(out)) >= 9, timeout=20), job.output()
        assert job.running()
    finally:
        job.stop()
    totals = output_totals(out)
    assert sorted(q for q, _n in totals.values())[:9] == [float(m + 1) for m in range(9)]


def test_a_restart_in_always_on_mode_does_not_make_the_backlog_late(services, tmp_path):
    # Events stamped by the wall clock as they are produced; the job is stopped, 12 s of
    # events are produced, and it restarts: the backlog is read as on-time usage, with no
    # correction rows and nothing twice. (Had the downtime counted as idle time, a first
    # wall-clock tick before the first read would close the backlog's windows; whether
    # the tick or the read comes first is a race here, so the unit test
    # test_after_a_restart_the_time_the_job_was_down_does_not_close_windows pins it.)
    bootstrap = services["KAFKA_BOOTSTRAP"]
    topic = create_topic(bootstrap, partitions=1)
    producer = Producer({"bootstrap.servers": bootstrap})

    def produce(prefix: str, seconds: int) -> None:
        for i in range(seconds):
            stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            producer.produce(topic, value=orjson.dumps({
                "id": f"{prefix}{i}", "tenant": "acme", "meter": "api_calls",
                "quantity": 1, "time": stamp}))
            assert producer.flush(30) == 0
            time.sleep(1)

    out = str(tmp_path / "out")
    args = run_args(services, topic, out, tmp_path / "rec")
    env = {"BURNWATCH_WINDOW": "5s", "BURNWATCH_ALLOWED_LATENESS": "1s",
           "BURNWATCH_MAX_FILE_DELAY": "1s"}

    def written() -> int:
        return sum(n for _q, n in output_totals(out).values())

    produce("a", 3)
    for run, expected in ((1, 3), (2, 15)):
        job = Job(*args, env=env, log=tmp_path / f"run{run}.log")
        try:
            assert wait_until(lambda n=expected: written() == n, timeout=60), job.output()
        finally:
            job.stop()
        if run == 1:
            produce("b", 12)
    assert correction_rows(out) == 0
    assert duplicated_rows(out) == 0
