"""Aggregations in the window book and in admission: values by hand, not from the code."""

from datetime import UTC, datetime

import numpy as np
import orjson

from operators.records import RawBatch, to_us
from operators.usage.admission import Admission, AdmissionConfig
from operators.usage.meters import meters_from_config
from operators.usage.parse import parse_batch
from operators.usage.windows import OTHER, MeterShape, ReadProgress, WindowBook

MIN = 60_000_000
DEC = to_us(datetime(2026, 12, 1, tzinfo=UTC))
JAN = to_us(datetime(2027, 1, 1, tzinfo=UTC))


def p(q, t=0):
    return [q, 1, q, t, q, q]


def test_max_min_and_latest_rows_read_their_slot():
    book = WindowBook(MIN, meters={"hi": MeterShape("max"), "lo": MeterShape("min"),
                                   "now": MeterShape("latest"), "n": MeterShape("count")})
    for meter in ("hi", "lo", "now", "n"):
        book.add([("t", meter, (), DEC)] * 3, [p(5.0, 3), p(9.0, 1), p(2.0, 2)])
    rows = {r.meter: r for r in book.close_all()}
    assert rows["hi"].quantity == 9.0 and rows["lo"].quantity == 2.0
    assert rows["now"].quantity == 5.0  # the greatest event time (3), not the last arrival
    assert rows["n"].quantity == 3.0 and rows["n"].aggregation == "count"


def test_unique_count_rows_count_values_first_seen_in_the_month():
    book = WindowBook(MIN, meters={"u": MeterShape("unique_count")})
    key = ("t", "u", ())
    book.add([(*key, DEC), (*key, DEC + MIN)], [p(1.0), p(1.0)], {0: [1, 2, 3], 1: [3, 4]})
    first = book.advance(DEC + 2 * MIN)
    assert sorted((r.window_start_us, r.quantity) for r in first) == [(DEC, 3.0), (DEC + MIN, 1.0)]
    # late: values 2 (seen) and 5 (new) reach the first window, as a correction
    book.add([(*key, DEC)], [p(1.0)], {0: [2, 5]})
    (late,) = book.advance(DEC + 3 * MIN)
    assert (late.revision, late.quantity) == (2, 1.0)
    # a new month counts afresh: 1 was seen in December only
    book.add([(*key, JAN)], [p(1.0)], {0: [1, 4]})
    (jan,) = book.close_all()
    assert jan.quantity == 2.0  # December's rows sum to 5 distinct values, January's to 2


def test_beyond_max_groups_the_rest_go_to_one_other_group_and_totals_stay_exact():
    book = WindowBook(MIN, meters={"m": MeterShape("sum", max_groups=2)})
    keys = [("t", "m", (("model", x),), DEC) for x in ("a", "b", "c", "d", "a")]
    book.add(keys, [p(1.0), p(2.0), p(4.0), p(8.0), p(16.0)])
    rows = {r.dimensions: r.quantity for r in book.close_all()}
    assert rows == {(("model", "a"),): 17.0, (("model", "b"),): 2.0,
                    (("model", OTHER),): 12.0}
    assert book.overflowed == 2


def test_a_book_written_before_dimensions_resumes():
    old = (MIN, -(2**62), -(2**62), {DEC: {("t", "m"): [1.0, 1, 1.0, DEC, 1.0]}},
           {("t", "m", DEC - MIN): [2.0, 1, 2.0, DEC, 2.0]})
    rows = WindowBook.restore(old).close_all()
    assert sorted((r.dimensions, r.window_start_us, r.quantity) for r in rows) == [
        ((), DEC - MIN, 2.0), ((), DEC, 1.0)]


T = "2026-12-02T15:30:00Z"
DEFS = [{"slug": "tok", "event_type": "prompt", "aggregation": "sum",
         "value_property": "$.tokens"},
        {"slug": "calls", "event_type": "prompt", "aggregation": "count"}]


def event(tokens, source="gw", eid="e1"):
    return orjson.dumps({"specversion": "1.0", "id": eid, "source": source, "type": "prompt",
                         "subject": "acme", "time": T, "data": {"tokens": tokens}})


def admit(lines):
    batch, dead = parse_batch(RawBatch(lines, "f", None, range(1, len(lines) + 1)),
                              now_us=2**62, max_clock_skew_us=0,
                              meters=meters_from_config(DEFS))
    adm = Admission(AdmissionConfig(MIN, 5 * MIN, 7 * 24 * 60 * MIN, 48 * 60 * MIN, 1))
    result = adm.admit(batch, ReadProgress(None, 1, int(batch.time_us.max()), True), 2**62)
    totals: dict = {}
    for _s, wp in result.partials:
        for (_tenant, meter, _dims, _start), part in zip(wp.keys(), wp.partials.rows(),
                                                         strict=True):
            totals[meter] = totals.get(meter, 0) + part[0]
    return result, totals, dead


def test_readings_of_an_event_follow_its_verdict():
    result, totals, _ = admit([event(10), event(10), event(99), event(5, source="other")])
    # the exact copy is a duplicate (both readings), the changed copy one conflict,
    # the same id from another source a new event
    assert (result.accepted, result.duplicates) == (2, 1)
    assert [(d.reason, d.offset) for d in result.dead_letters] == [("duplicate_conflict", 3)]
    assert totals == {"tok": 15.0, "calls": 2.0}
    assert np.isfinite(list(totals.values())).all()


def test_distinct_values_across_merges_and_a_restore():
    from operators.usage.distinct import MERGE_AT, DistinctValues

    rng = np.random.default_rng(5)
    values = rng.integers(1, 2**63, 3 * MERGE_AT, dtype=np.uint64).tolist()
    d, seen, new = DistinctValues(), set(), 0
    for i in range(0, len(values), 500):
        chunk = values[i:i + 500] + values[max(0, i - 300):i]  # every chunk repeats some
        new += d.add(chunk)
        seen.update(chunk)
        if i == 2000:
            d = DistinctValues.restore(d.snapshot())
    assert new == len(seen) == len(d)
    assert d.add(values[:10] + [7]) == 1
