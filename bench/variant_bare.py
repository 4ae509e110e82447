"""The limit: a bare confluent-kafka consumer that reads every message of a topic.

    python bench/variant_bare.py --brokers HOST:PORT --topic T [--parse]

One consumer, every partition assigned from the beginning (no group), librdkafka's
partition EOF to know when it is drained. With ``--parse`` each message is also
parsed with ``orjson.loads`` (and nothing else). Prints a JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import time

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--parse", action="store_true")
    ap.add_argument("--batch", type=int, default=10_000)
    args = ap.parse_args()

    started = time.perf_counter()
    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": "bench-bare-unused",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "fetch.queue.backoff.ms": 10,  # as operators/connectors/kafka_source.py
    })
    meta = consumer.list_topics(args.topic, timeout=30).topics[args.topic]
    parts = sorted(meta.partitions)
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in parts])
    drained: set[int] = set()
    n = 0
    nbytes = 0
    bad = 0
    loads = orjson.loads
    parse = args.parse
    while len(drained) < len(parts):
        for msg in consumer.consume(args.batch, 0.5):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    drained.add(msg.partition())
                continue
            n += 1
            value = msg.value()
            if parse:
                try:
                    loads(value)
                except orjson.JSONDecodeError:
                    bad += 1
            else:
                nbytes += len(value or b"")
    consumer.close()
    print(json.dumps({"messages": n, "bytes": nbytes, "invalid_json": bad,
                      "elapsed_s": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
