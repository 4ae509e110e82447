"""The watermark that closes windows: the least over source partitions, then over the
id shards that report to a window step."""

from dataclasses import replace

import numpy as np
from confluent_kafka import KafkaError

from operators.connectors.kafka_source import at_end_after
from operators.records import RawBatch, to_us
from operators.usage.admission import Admission, WindowPartials
from operators.usage.steps import _parse, _upstream_state, _WindowLogic
from operators.usage.windows import (
    NEVER,
    UNHEARD_GRACE_US,
    LeastWatermark,
    Partials,
    Watermark,
)
from tests.helpers import T0, event
from tests.helpers import config as flow_config

MIN = 60_000_000


def test_least_watermark_waits_for_every_member_and_skips_those_at_their_end():
    wm = LeastWatermark(5 * MIN, follow_wall_clock=False, expected=3)
    wm.observe(0, 100 * MIN, now_us=0)
    wm.observe(1, 40 * MIN, now_us=0)
    assert wm.at(0) == NEVER  # partition 2 not heard from yet
    wm.observe(2, NEVER, now_us=0, at_end=True)  # empty: nothing to wait for
    assert wm.at(0) == 35 * MIN
    wm.observe(1, 70 * MIN, now_us=0, at_end=True)
    assert wm.at(0) == 95 * MIN  # only partition 0 has more to read
    wm.observe(1, 71 * MIN, now_us=0)  # partition 1 has data again: it counts again
    assert wm.at(0) == 66 * MIN
    wm.observe(0, 120 * MIN, now_us=0, at_end=True)
    wm.observe(1, 80 * MIN, now_us=0, at_end=True)
    assert wm.at(0) == 115 * MIN  # all at their end: the greatest

    # After a restart no partition is at its end until it says so again: the backlog
    # produced meanwhile may be in any of them (partition 2, never read, included).
    copy = LeastWatermark(5 * MIN, False)
    copy.restore(wm.snapshot())
    wm.observe(1, 300 * MIN, now_us=0)  # does not leak into the copy
    assert copy.expected == 3 and copy.at(0) == NEVER
    copy.observe(2, NEVER, now_us=0, at_end=True)
    assert copy.at(0) == 75 * MIN


def test_least_watermark_ages_with_the_wall_clock_in_always_on_mode():
    # A partition that stopped sending does not hold windows for ever.
    wm = LeastWatermark(5 * MIN, follow_wall_clock=True, expected=2)
    wm.observe(0, 100 * MIN, now_us=1_000 * MIN)
    wm.observe(1, 50 * MIN, now_us=1_000 * MIN)
    assert wm.at(1_010 * MIN) == 55 * MIN


def _read(lines: list[bytes], partition: int) -> tuple:
    """A parsed read of a two-partition topic and its ReadProgress, as the flow makes them."""
    raw = RawBatch(lines, "t", partition, range(len(lines)), 2)
    batch, _rejects, read = _parse(raw, lambda: 10**18, max_clock_skew_us=0)
    return batch, read


def test_admission_tells_every_window_shard_when_its_closing_watermark_passes_a_window():
    cfg = replace(flow_config().admission, window_shards=4)
    adm = Admission(cfg)
    batch, read = _read([event("a", 30)], 0)
    t0 = int(batch.time_us[0]) - 30 * MIN
    out = adm.admit(batch, read, now_us=0, sender=3)
    # Partition 1 unheard: only windows that could get nothing but too_late events close.
    assert out.accepted == 1
    assert {wp.watermark_us for _, wp in out.partials} == {t0 + 25 * MIN - cfg.max_lateness_us}

    batch, read = _read([event("b", 20)], 1)
    out = adm.admit(batch, read, now_us=0, sender=3)
    shards = sorted(s for s, _ in out.partials)
    assert shards == [0, 1, 2, 3]  # one with the event, the others only the watermark
    assert {wp.watermark_us for _, wp in out.partials} == {t0 + 15 * MIN}
    assert {wp.sender for _, wp in out.partials} == {3}
    assert sum(len(wp.starts) for _, wp in out.partials) == 1

    batch, read = _read([event("c", 20.5)], 1)  # no new window passed: no broadcast
    assert len(adm.admit(batch, read, now_us=0, sender=3).partials) == 1


def _partials(sender: int, watermark_us: int, start_us: int | None) -> WindowPartials:
    if start_us is None:
        return WindowPartials.watermark_only(watermark_us, sender)
    one = np.ones(1)
    return WindowPartials([("acme", "api_calls", ())], np.zeros(1, dtype=np.int64),
                          np.array([start_us]),
                          Partials(one, np.ones(1, dtype=np.int64), one,
                                   np.array([start_us]), one, one),
                          watermark_us, sender)


def test_a_window_step_closes_only_what_every_id_shard_has_passed():
    cfg = replace(flow_config(), id_shards=2)
    t0 = (int(T0.timestamp()) * 10**6)
    logic = _WindowLogic(cfg, lambda: 0, None)
    # id shard 0 has admitted its slice of a read that reaches minute 60; shard 1 has not
    rows, _ = logic.on_batch([("w0", _partials(0, t0 + 55 * MIN, t0))])
    assert rows == []
    rows, _ = logic.on_batch([("w0", _partials(1, t0 + 30 * MIN, t0 + 40 * MIN))])
    assert [r.rows[0].window_start_us for r in rows] == [t0]  # closed through minute 30, not 55
    assert rows[0].closed_through_us == t0 + 30 * MIN

    # a store written when the window step kept one watermark for all its senders
    old = (t0 + 30 * MIN, 0)
    assert _upstream_state(old, 2) == (2, {0: old, 1: old})
    resumed = _WindowLogic(cfg, lambda: 0, (logic.book.snapshot(),
                                             _upstream_state(old, 2), "w0", {}))
    assert resumed.upstream.at(0) == t0 + 30 * MIN


def test_admission_restores_a_store_written_before_the_closing_watermark():
    cfg = flow_config().admission
    adm = Admission(cfg)
    batch, read = _read([event("a", 30)], 0)
    adm.admit(batch, read, now_us=0)
    old = adm.snapshot()[:2]
    resumed = Admission(cfg, old)
    assert resumed.watermark.at(0) == adm.watermark.at(0)
    assert resumed.closing.at(0) == NEVER  # heard again from every partition before closing
    assert len(resumed.index) == 1



def test_a_partition_not_heard_from_holds_windows_only_for_a_while_in_always_on_mode():
    # A partition without a leader sends neither records nor its end.
    live, replay = (LeastWatermark(5 * MIN, follow, expected=2) for follow in (True, False))
    for wm in (live, replay):
        wm.observe(0, 100 * MIN, now_us=0)
    assert live.at(UNHEARD_GRACE_US - 1) == NEVER
    assert live.at(UNHEARD_GRACE_US) == 95 * MIN + UNHEARD_GRACE_US
    assert replay.at(10**12) == NEVER  # a backfill waits for it (or for the end of input)


def _admit(adm: Admission, minutes: float, partition: int, now_us: int,
           at_end: bool = False) -> int:
    """The closing watermark sent with one read of one event."""
    batch, read = _read([event(f"e{minutes}-{partition}", minutes)], partition)
    out = adm.admit(batch, read._replace(at_end=at_end), now_us)
    return max(wp.watermark_us for _, wp in out.partials)


def test_the_closing_watermark_stays_between_too_late_and_the_greatest_event_time():
    cfg = flow_config().admission
    t0 = to_us(T0)
    # A partition's last event stamped 9 minutes ahead of the clock, then it idles: its
    # own watermark, aged by the wall clock, stays 4 minutes ahead for as long as it
    # idles. Windows close on the greatest event time seen once newer events pass it.
    adm = Admission(replace(cfg, follow_wall_clock=True))
    _admit(adm, 9, 1, now_us=t0, at_end=True)
    for m in range(1, 21):
        closing = _admit(adm, m, 0, now_us=t0 + m * MIN, at_end=True)
    assert closing == t0 + 15 * MIN  # event time 20 minutes, less 5 of lateness

    # A partition more than max_lateness behind the other: its events can only be
    # too_late, so windows do not wait for it.
    adm = Admission(cfg)
    day = 24 * 60
    _admit(adm, 10 * day, 0, now_us=t0)
    batch, read = _read([event("old", 0)], 1)
    assert adm.admit(batch, read, now_us=t0).dead_letters[0].reason == "too_late"
    closing = _admit(adm, 10 * day + 1, 0, now_us=t0)
    assert closing == t0 + (10 * day + 1 - 5) * MIN - cfg.max_lateness_us


class _Msg:
    """What ``consume`` returns, as far as the end-of-partition logic looks."""

    def __init__(self, code: int | None) -> None:
        self.code = code

    def error(self):
        return None if self.code is None else KafkaError(self.code)


def test_a_partition_is_at_its_end_until_a_record_follows_and_other_errors_change_nothing():
    eof, transport = KafkaError._PARTITION_EOF, KafkaError._TRANSPORT
    assert at_end_after([_Msg(None), _Msg(eof)], False)
    assert at_end_after([_Msg(eof), _Msg(transport)], False)  # a broker error after the end
    assert not at_end_after([_Msg(eof), _Msg(None)], True)
    assert at_end_after([_Msg(transport)], True)
    assert not at_end_after([_Msg(transport)], False)
    assert at_end_after([], True) and not at_end_after([], False)


def test_after_a_restart_the_time_the_job_was_down_does_not_close_windows():
    # Always-on: the job stops with a window open and restarts 8 days later. Its first
    # wall-clock tick comes before the backlog produced while it was down; counting the
    # downtime as idle time would close the backlog's windows before their events arrive
    # (and they would all be correction rows).
    base = flow_config()
    cfg = replace(base, id_shards=1,
                  admission=replace(base.admission, follow_wall_clock=True))
    t0, stop = to_us(T0), to_us(T0) + 11 * MIN
    logic = _WindowLogic(cfg, lambda: stop, None)
    logic.on_batch([("w0", _partials(0, t0 + 5 * MIN, t0 + 9 * MIN))])
    assert logic.book.open  # minute 9 is still open
    state = logic.snapshot()

    restart = stop + 8 * 24 * 60 * MIN
    resumed = _WindowLogic(cfg, lambda: restart, state)
    rows, _ = resumed.on_notify()  # the first tick
    assert [r for closed in rows for r in closed.rows] == []
    rows, _ = resumed.on_batch([("w0", _partials(0, t0 + 25 * MIN, t0 + 10 * MIN))])
    revisions = sorted((r.window_start_us, r.revision) for closed in rows for r in closed.rows)
    assert revisions == [(t0 + 9 * MIN, 0), (t0 + 10 * MIN, 0)]


def test_a_restored_watermark_counts_the_idle_time_before_the_stop_not_the_downtime():
    wm = Watermark(5 * MIN, follow_wall_clock=True)
    wm.observe(100 * MIN, now_us=0)
    assert wm.at(10 * MIN) == 105 * MIN  # idle for 10 minutes, then a snapshot
    resumed = Watermark(5 * MIN, follow_wall_clock=True)
    resumed.restore(wm.snapshot())
    day = 24 * 60 * MIN
    assert resumed.at(8 * day) == 105 * MIN  # down for 8 days: not idle time
    assert resumed.at(8 * day + MIN) == 106 * MIN
    old = Watermark(5 * MIN, follow_wall_clock=True)
    old.restore((100 * MIN, 0))  # a store from before the snapshot kept the wall clock
    assert old.at(8 * day) == 95 * MIN


def test_after_a_restart_a_partition_at_its_end_before_the_stop_holds_windows_again():
    # Both partitions were at their end at minute 9; the job was down an hour. Partition
    # 0's first read covers minutes 10-49; partition 1's backlog is not read yet.
    cfg = replace(flow_config().admission, follow_wall_clock=True)
    t0 = to_us(T0)
    adm = Admission(cfg)
    _admit(adm, 9, 0, now_us=t0 + 10 * MIN, at_end=True)
    _admit(adm, 9, 1, now_us=t0 + 10 * MIN, at_end=True)
    resumed = Admission(cfg, adm.snapshot())
    batch, read = _read([event(f"b{m}", m) for m in range(10, 50)], 0)
    out = resumed.admit(batch, read, now_us=t0 + 70 * MIN)
    assert max(wp.watermark_us for _, wp in out.partials) == t0 + 4 * MIN


def test_an_outage_longer_than_max_lateness_does_not_make_the_backlog_too_late():
    # Always-on; partition 0 was behind partition 1 (minute 9 against 30) when the job
    # stopped, and it was down 8 days. Partition 0's backlog is older than the greatest
    # event time seen, so only the wall clock could make it too_late: the downtime must
    # not count.
    cfg = replace(flow_config().admission, follow_wall_clock=True)
    t0 = to_us(T0)
    adm = Admission(cfg)
    _admit(adm, 9, 0, now_us=t0 + 31 * MIN)
    _admit(adm, 30, 1, now_us=t0 + 31 * MIN, at_end=True)
    resumed = Admission(cfg, adm.snapshot())
    batch, read = _read([event(f"b{m}", m) for m in range(10, 21)], 0)
    out = resumed.admit(batch, read, now_us=t0 + 8 * 24 * 60 * MIN)
    assert out.dead_letters == [] and out.accepted == 11


def test_how_events_are_grouped_into_reads_does_not_change_which_are_too_late():
    # Always-on: a, then an hour with nothing (the watermark ages with the wall clock),
    # then old (7 days less 30 minutes before a) and new (10 minutes after a) arrive.
    # Each is judged by the watermark it met, as if observed one at a time: old first
    # meets the aged watermark (too_late), after new it meets new's (counted); whether
    # the two came in one read or two does not matter.
    cfg = replace(flow_config().admission, follow_wall_clock=True)
    day = 24 * 60
    a, old, new = event("a", 8 * day), event("old", day + 30), event("new", 8 * day + 10)

    def too_late(*reads: list[bytes]) -> list[str]:
        adm = Admission(cfg)
        batch, read = _read([a], 0)
        t = int(batch.time_us[0])
        adm.admit(batch, read, now_us=t)
        out = []
        for lines in reads:
            batch, read = _read(lines, 0)
            result = adm.admit(batch, read, now_us=t + 60 * MIN)
            out += [dl.raw for dl in result.dead_letters if dl.reason == "too_late"]
        return out

    assert too_late([old, new]) == too_late([old], [new]) == [old]
    assert too_late([new, old]) == too_late([new], [old]) == []
