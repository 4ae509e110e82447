"""The Kafka source on a real broker: what a producer can send that is not a usage event."""

from __future__ import annotations

from confluent_kafka import Producer

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
