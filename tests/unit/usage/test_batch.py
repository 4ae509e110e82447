"""Slicing a read by id shard: every event lands in one slice, with its own record."""

import pickle

import orjson

from operators.records import RawBatch
from operators.usage.batch import stable_hash
from operators.usage.parse import parse_batch

NOW_US = 1_800_000_000_000_000


def _read(n: int, first_offset: int = 1_000) -> tuple[list[bytes], RawBatch]:
    lines = [
        orjson.dumps({"id": f"evt-{i}", "tenant": f"t{i % 7}", "meter": f"m{i % 3}",
                      "quantity": i, "time": "2026-11-25T10:00:00Z"})
        for i in range(n)
    ]
    lines[5] = b"{broken"  # a reject in the middle shifts every later event's position
    return lines, RawBatch(lines, "topic", 2, range(first_offset, first_offset + n))


def _events(batch) -> list[tuple[int, bytes, int]]:
    return [(int(batch.id_hash[i]), batch.raw(i), batch.offset(i)) for i in range(len(batch))]


def test_each_event_is_in_one_slice_with_its_own_record_and_offset():
    lines, read = _read(300)
    batch, rejects = parse_batch(read, now_us=NOW_US, max_clock_skew_us=0)
    assert len(rejects) == 1 and len(batch) == 299
    slices = batch.split_by_id(4)
    assert sorted(s for s, _ in slices) == [0, 1, 2, 3]
    seen = []
    for shard, part in slices:
        for id_hash, raw, offset in _events(part):
            assert id_hash % 4 == shard
            assert raw == lines[offset - 1_000]  # the record and the offset agree
            assert stable_hash(orjson.loads(raw)["id"]) == id_hash  # and belong to the event
            seen.append(offset)
        offsets = [o for _, _, o in _events(part)]
        assert offsets == sorted(offsets)  # arrival order kept inside a shard
    assert sorted(seen) == [1_000 + i for i in range(300) if i != 5]


def test_a_pickled_slice_carries_its_own_records_only():
    _, read = _read(2_000)
    batch, _ = parse_batch(read, now_us=NOW_US, max_clock_skew_us=0)
    (_, part), *_ = batch.split_by_id(8)
    copy = pickle.loads(pickle.dumps(part))
    assert _events(copy) == _events(part)
    assert len(copy.lines) == len(part) < len(batch) // 4
    assert copy.keys == part.keys and (copy.quantity == part.quantity).all()
    assert len(pickle.dumps(part)) < len(pickle.dumps(batch)) // 4
