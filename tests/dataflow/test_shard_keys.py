"""Shard keys land on the workers burnwatch expects, checked against Bytewax itself."""

import threading

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic
from bytewax.testing import TestingSource, cluster_main

from operators.usage.shard_keys import bytewax_worker, shard_key, shard_of


def _workers_of(keys: list[str], workers: int) -> dict[str, int]:
    """Run a keyed step on ``workers`` worker threads; which thread got each key."""
    seen: dict[str, int] = {}

    class Record(StatefulBatchLogic):
        def on_batch(self, values):
            for key in values:
                seen[key] = threading.get_ident()
            return [], StatefulBatchLogic.RETAIN

        def snapshot(self):
            return None

    flow = Dataflow("shard_keys")
    keyed = op.key_on("key", op.input("in", flow, TestingSource(keys)), lambda k: k)
    op.inspect("done", op.stateful_batch("record", keyed, lambda _state: Record()))
    cluster_main(flow, [], 0, worker_count_per_proc=workers)
    return seen


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_shards_split_evenly_over_workers(workers):
    shards = 12
    seen = _workers_of([shard_key(s) for s in range(shards)], workers)
    groups: dict[int, set[int]] = {}
    for key, thread in seen.items():
        groups.setdefault(thread, set()).add(shard_of(key))
    # Every worker holds exactly one residue class of shard numbers modulo W.
    assert sorted(sorted(g) for g in groups.values()) == [
        list(range(r, shards, workers)) for r in range(workers)]


def test_plain_names_are_lumpy_and_the_hash_predicts_it():
    # Why the names exist: "0".."3" all go to one of two workers.
    seen = _workers_of(["0", "1", "2", "3"], 2)
    assert len(set(seen.values())) == 1
    assert len({bytewax_worker(k, 2) for k in seen}) == 1
