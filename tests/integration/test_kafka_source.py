"""The Kafka source on a real broker: what a producer can send that is not a usage event."""

from __future__ import annotations

from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.helpers import event
from tests.integration.conftest import Job, create_topic, run_args
from tests.oracle import output_totals, read_dataset


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


def test_a_resume_offset_deleted_by_retention_reads_what_is_left(services, tmp_path):
    """The job was down while retention deleted records it had not read: it must read the
    records still there, not jump to the end of the partition and skip them."""
    bootstrap = services["KAFKA_BOOTSTRAP"]
    topic = create_topic(bootstrap, partitions=1)
    out, recovery = str(tmp_path / "out"), tmp_path / "rec"

    def produce(first: int, n: int) -> None:
        producer = Producer({"bootstrap.servers": bootstrap})
        for i in range(first, first + n):
            producer.produce(topic, value=event(f"e{i}", 1 + i, i))
        assert producer.flush(30) == 0

    def run() -> None:
        job = Job(*run_args(services, topic, out, recovery, "--until-end"),
                  log=tmp_path / "job.log")
        assert job.wait(120) == 0, job.output()

    produce(0, 10)
    run()  # reads offsets 0-9; its snapshot resumes at 10
    produce(10, 10)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deleted = admin.delete_records([TopicPartition(topic, 0, 15)])
    assert next(iter(deleted.values())).result(30).low_watermark == 15
    run()  # offset 10 is gone: 15-19 are left

    quantities = sorted(q for q, _n in output_totals(out).values())
    assert quantities == [float(i) for i in [*range(10), *range(15, 20)]]
