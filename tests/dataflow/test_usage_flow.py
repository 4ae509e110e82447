"""The usage dataflow on bytewax.testing: windows, late corrections, dead letters."""

from datetime import timedelta

import pytest

from operators.records import RawBatch
from tests.helpers import T0, event, reads, run, window
from tests.oracle import oracle_totals


def test_windows_are_emitted_once_the_watermark_passes_them():
    #  minute  0    1    2    3    4    5    6    7    8
    #          [ w0 )[ w1 )                          ...
    #  events  a,b   c                                 d@8
    #  d moves the watermark to 8 - 5 (lateness) = 3: w0 and w1 close
    #  end of input closes w8
    rows, dls = run(reads([event("a", 0.1, 2), event("b", 0.9, 3), event("c", 1.5, 4)],
                          [event("d", 8.0, 1)]))
    assert dls == []
    assert sorted(window(r) for r in rows) == [(0, 5.0, 2, 0), (1, 4.0, 1, 0), (8, 1.0, 1, 0)]


def test_late_events_become_corrections_and_totals_add_up():
    #  minute  0    1   ...   9   10
    #          [ w0 )
    #  read 1: a@0.5, z@10 -> watermark 5: w0 emitted (rev 0, quantity 1)
    #  read 2: late b@0.2 (within max_lateness), y@12 -> watermark 7
    #          b is a correction for w0, emitted at the next close (rev >= 1)
    rows, dls = run(reads([event("a", 0.5, 1), event("z", 10, 1)],
                          [event("b", 0.2, 2), event("y", 12, 1)]))
    w0 = sorted(window(r) for r in rows if window(r)[0] == 0)
    assert w0[0] == (0, 1.0, 1, 0)
    assert len(w0) == 2 and w0[1][1:3] == (2.0, 1) and w0[1][3] >= 1
    assert sum(w[1] for w in w0) == 3.0
    assert dls == []


def test_too_late_and_future_events_go_to_dead_letter_with_their_position():
    #  watermark after read 1: 60*24*8 - 5 minutes (8 days in)
    #  old@0 is more than 7 days behind it: too_late
    #  the wall clock reads 8 days 1 minute: future@30 days is beyond the 10-minute skew
    rows, dls = run(reads([event("new", 60 * 24 * 8)],
                          [event("old", 0), event("ok", 60 * 24 * 8 - 3),
                           event("future", 60 * 24 * 30)]),
                    now=T0 + timedelta(days=8, minutes=1))
    assert sorted((d.reason, d.offset) for d in dls) == [("future_timestamp", 4),
                                                         ("too_late", 2)]
    assert sum(r.events for r in rows) == 2


@pytest.mark.parametrize("old_first", [True, False])
def test_an_event_meets_the_watermark_of_its_arrival_not_of_its_whole_read(tmp_path, old_first):
    # One read: old@0 and new@8 days. Read line by line, old arrives before anything newer
    # (counted) or after new has moved the watermark 8 days on (too_late). The oracle says
    # which; a later event of the same read must not decide it.
    old, new = event("old", 0), event("new", 60 * 24 * 8)
    lines = [old, new] if old_first else [new, old]
    now = T0 + timedelta(days=8, minutes=1)
    rows, dls = run(reads(lines), now=now)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert sum(r.events for r in rows) == sum(n for _, n in oracle_totals([path], now=now).values())
    assert [d.reason for d in dls] == ([] if old_first else ["too_late"])


def test_duplicates_count_once_and_conflicts_are_dead_letters():
    a = event("a", 0.5, 1)
    rows, dls = run(reads([a, a], [a, event("a", 0.5, 9), event("b", 0.6, 2)]))
    assert sum(r.quantity for r in rows) == 3.0
    assert sum(r.events for r in rows) == 2
    assert [(d.reason, d.offset) for d in dls] == [("duplicate_conflict", 4)]


def test_bad_records_never_stop_the_flow():
    rows, dls = run(reads([b"garbage", event("a", 1)], [b"{}", b"\x00\xff", event("b", 1)]))
    assert sum(r.events for r in rows) == 2
    assert sorted(d.offset for d in dls) == [1, 3, 4]
    assert all(d.raw in (b"garbage", b"{}", b"\x00\xff") for d in dls)


def test_shard_count_does_not_change_totals():
    batches = reads(*[[event(f"e{i}-{j}", i * 0.7 + j * 0.01, j + 1, tenant=f"t{j % 5}")
                       for j in range(40)] for i in range(30)])
    totals = []
    for shards in (1, 3, 8):
        rows, _ = run(batches, id_shards=shards, window_shards=shards)
        acc = {}
        for r in rows:
            key = (r.tenant, r.meter, r.window_start_us)
            acc[key] = acc.get(key, 0) + r.quantity
        totals.append(acc)
    assert totals[0] == totals[1] == totals[2]


def part(partition: int, lines: list[bytes], *, at_end: bool = False) -> RawBatch:
    """A read of one partition of a two-partition topic (offsets are not looked at)."""
    return RawBatch(lines, "topic", partition, range(len(lines)), 2, at_end)


def minutes(first: int, last: int, tag: str) -> list[bytes]:
    return [event(f"{tag}{m}", m) for m in range(first, last + 1)]


def test_a_partition_read_later_is_not_late_against_another_partitions_time():
    # p0 reaches minute 29 before anything of p1 is read; with one watermark for both,
    # windows up to minute 24 would close and p1's events would all be corrections.
    # Windows still close once both partitions have passed them: the late event at
    # minute 10 after both reached 60 is a correction.
    rows, dls = run([part(0, minutes(0, 29, "a")), part(1, minutes(0, 29, "b")),
                     part(0, [event("a60", 60)]), part(1, [event("b60", 60)]),
                     part(0, [event("late", 10.5)])])
    assert dls == []
    by_window = {}
    for r in rows:
        by_window.setdefault(window(r)[0], []).append(window(r))
    assert all(ws == [(m, 2.0, 2, 0)] for m, ws in by_window.items() if m not in (10, 60))
    first, correction = sorted(by_window[10], key=lambda w: w[3])
    assert first == (10, 2.0, 2, 0)
    assert correction[1:3] == (1.0, 1) and correction[3] >= 1


def test_too_late_is_judged_against_the_greatest_event_time_of_any_partition():
    eight_days = 60 * 24 * 8
    rows, dls = run([part(0, [event("new", eight_days)]),
                     part(1, [event("old", 0)]), part(1, [event("ok", eight_days - 3)])],
                    now=T0 + timedelta(days=8, minutes=1))
    assert [(d.reason, d.partition, d.offset) for d in dls] == [("too_late", 1, 0)]
    assert sum(r.events for r in rows) == 2


@pytest.mark.parametrize("p1_says_at_end", [True, False])
def test_a_partition_at_its_end_holds_no_window_open(p1_says_at_end):
    # p1 has nothing to read. Once it says so, windows close on p0 alone and a late
    # event of p0 is a correction; until it says so, they wait for p1.
    items = [part(0, minutes(0, 29, "a"))]
    if p1_says_at_end:
        items.append(part(1, [], at_end=True))
    rows, _ = run([*items, part(0, [event("late", 2.5)])])
    revisions = sorted(window(r)[3] for r in rows if window(r)[0] == 2)
    assert (revisions[-1] >= 1) == p1_says_at_end
    assert sum(window(r)[1] for r in rows if window(r)[0] == 2) == 2.0
