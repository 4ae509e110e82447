"""Bytewax wrappers around the usage logic; each is short on purpose.

``meter_usage`` is the whole core path::

    RawBatch ─ parse ─┬─ rejects ─────────────────────────────────┐
                      └─ shard_by_id ─ admit (keyed by id shard) ─┼─ rejects ─ dead letters
                                        └─ partials ─ window (keyed by window shard) ─ rollup rows

Batches stay batches: one item per read (a Kafka fetch or a chunk of lines),
one per shard after the split, and only partial aggregates reach the window
step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import bytewax.operators as op
import numpy as np
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulBatchLogic

from operators import metrics
from operators.records import DeadLetter, RawBatch, month_of, partition_key, to_datetime
from operators.spend.burn import BurnConfig
from operators.spend.focus import FocusParty
from operators.spend.pricing import PriceCatalog, Pricer
from operators.usage.admission import Admission, AdmissionConfig, WindowPartials, combine
from operators.usage.batch import EventBatch
from operators.usage.meters import MeterSet
from operators.usage.parse import DEFAULT_LIMITS, RecordLimits, parse_batch
from operators.usage.run_files import RunFileConfig, RunFiles
from operators.usage.shard_keys import shard_key, shard_of
from operators.usage.windows import NEVER, LeastWatermark, ReadProgress, WindowBook

Clock = Callable[[], int]  # wall clock, µs since the epoch


@dataclass(frozen=True)
class UsageConfig:
    admission: AdmissionConfig
    id_shards: int
    max_clock_skew_us: int
    sink_partitions: int
    tick_s: float = 1.0  # how often the wall clock moves watermarks in always-on mode
    catalog: PriceCatalog | None = None
    burn: BurnConfig | None = None
    tenant_shards: int = 8
    focus_party: FocusParty = FocusParty()
    dedupe_files: RunFileConfig | None = None  # large dedupe runs as files (with recovery)
    limits: RecordLimits = DEFAULT_LIMITS
    meters: MeterSet | None = None  # meter definitions; None: only the legacy shape


@dataclass(frozen=True)
class UsageOut:
    rollups: Stream  # (sink partition key, [rollup row, ...])
    dead_letters: Stream  # (sink partition key, [DeadLetter, ...])
    closes: Stream  # (window shard, Closed): every emission of the window step


@dataclass(frozen=True)
class Closed:
    """What the window step emits: priced rows, and how far its windows are closed."""

    rows: list[tuple]
    closed_through_us: int


class _AdmitLogic(StatefulBatchLogic):
    """State of one id shard. Items: (shard, batch slice, the read's ReadProgress).

    With ``files``, the large runs of its dedupe index are snapshotted as files
    (operators/usage/run_files.py) instead of whole at every epoch.
    """

    def __init__(self, config: AdmissionConfig, clock: Clock, state,
                 files: RunFileConfig | None = None) -> None:
        self.files = RunFiles(files) if files is not None else None
        self.admission = Admission(config, state,
                                   self.files.load if self.files else None)
        self.shard = self.files.shard if self.files else None  # known from a first item
        self.clock = clock

    def on_batch(self, values: list[tuple[int, EventBatch, ReadProgress]]):
        out: list = []
        now = self.clock()
        for shard, batch, read in values:
            self.shard = shard
            result = self.admission.admit(batch, read, now, shard)
            metrics.EVENTS_ACCEPTED.inc(result.accepted)
            metrics.DUPLICATES.inc(result.duplicates)
            if result.dead_letters:
                out.append(result.dead_letters)
            out.extend(result.partials)
            metrics.DEDUPE_KEYS.labels(str(shard)).set(len(self.admission.index))
        for partition, wm in self.admission.closing.members.items():
            at = wm.at(now)
            if at != NEVER:
                metrics.PARTITION_WATERMARK.labels(str(partition)).set(at / 1e6)
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self):
        if self.files is None or self.shard is None:
            return self.admission.snapshot()
        return self.admission.snapshot(lambda runs: self.files.save(self.shard, runs))


class _WindowLogic(StatefulBatchLogic):
    """Open windows of one window shard. Items: (shard, WindowPartials)."""

    def __init__(self, config: UsageConfig, clock: Clock, state) -> None:
        self.shard = ""
        self.clock = clock
        adm = config.admission
        self.follow_wall_clock = adm.follow_wall_clock
        self.tick_us = int(config.tick_s * 1e6)
        # The least of the id shards' closing watermarks: a read's slices reach the shards
        # at different times, and a window closes only once every shard is past it. They
        # already trail by allowed_lateness; here they only age.
        self.upstream = LeastWatermark(0, adm.follow_wall_clock, expected=config.id_shards)
        self.max_lateness_us = adm.max_lateness_us
        shapes = config.meters.shapes() if config.meters else None
        if state is None:
            self.book = WindowBook(adm.window_us, meters=shapes)
            self.pricer = Pricer(config.catalog)
        else:
            self.book = WindowBook.restore(state[0], shapes)
            self.upstream.restore(_upstream_state(state[1], config.id_shards))
            self.shard = state[2]
            self.pricer = Pricer(config.catalog, state[3])

    def _emit(self, rows: list[tuple], tick: bool = False):
        closed = self.book.closed_through_us
        if self.book.overflowed:
            metrics.DIMENSION_OVERFLOW.inc(self.book.overflowed)
            self.book.overflowed = 0
        if rows:
            corrections = sum(1 for r in rows if r.revision > 0)
            metrics.ROLLUP_ROWS.labels("correction").inc(corrections)
            metrics.ROLLUP_ROWS.labels("window").inc(len(rows) - corrections)
            rows, unpriced = self.pricer.price_rows(rows)
            metrics.UNPRICED_ROWS.inc(unpriced)
            if self.book.watermark_us != NEVER:  # else closed by the end of input alone
                metrics.WATERMARK.labels(self.shard).set(self.book.watermark_us / 1e6)
                self.pricer.expire(self.book.watermark_us, self.max_lateness_us)
                self.book.expire(month_of(self.book.watermark_us - self.max_lateness_us))
            return [Closed(rows, closed)], StatefulBatchLogic.RETAIN
        # An empty emission on a tick lets the sinks flush and spend move on time.
        return ([Closed([], closed)] if tick else []), StatefulBatchLogic.RETAIN

    def on_batch(self, values: list[tuple[int, WindowPartials]]):
        now = self.clock()
        self.shard = str(values[0][0])
        parts = [wp for _shard, wp in values if len(wp.starts)]
        if parts:
            keys, partials, distinct = combine(parts)
            metrics.LATE_PARTIALS.inc(self.book.add(keys, partials.rows(), distinct))
        for _shard, wp in values:
            self.upstream.observe(wp.sender, wp.watermark_us, now)
        return self._emit(self.book.advance(self.upstream.at(now)))

    def on_notify(self):
        return self._emit(self.book.advance(self.upstream.at(self.clock())), tick=True)

    def on_eof(self):
        return self._emit(self.book.close_all())

    def notify_at(self):
        if not self.follow_wall_clock:
            return None
        # A fixed grid, not now + tick: Bytewax asks again after every on_batch, and a
        # deadline that slides with each batch never arrives while traffic flows.
        now = self.clock()
        return to_datetime(now - now % self.tick_us + self.tick_us)

    def snapshot(self):
        return (self.book.snapshot(), self.upstream.snapshot(), self.shard,
                self.pricer.snapshot())


def _upstream_state(state: tuple, id_shards: int) -> tuple:
    """A window step's upstream watermarks; a store written before they were kept per id
    shard has one for all (the greatest they had sent)."""
    if not isinstance(state[1], dict):  # (max_event_us, seen_at_us)
        return (id_shards, dict.fromkeys(range(id_shards), state))
    return state


def _parse(raw: RawBatch, clock: Clock, max_clock_skew_us: int,
           limits: RecordLimits = DEFAULT_LIMITS, meters: MeterSet | None = None):
    batch, rejects = parse_batch(raw, now_us=clock(), max_clock_skew_us=max_clock_skew_us,
                                 limits=limits, meters=meters)
    max_us = int(batch.time_us.max()) if len(batch) else NEVER
    return batch, rejects, ReadProgress(raw.partition, raw.partitions, max_us, raw.at_end)


def _shard_by_id(parsed, shards: int) -> list[tuple[str, tuple[int, EventBatch, ReadProgress]]]:
    batch, _rejects, read = parsed
    if len(batch) == 0 and not read.at_end:
        return []
    parts = dict(batch.split_by_id(shards))
    empty = batch.take(np.empty(0, dtype=np.int64))
    # Every shard hears how far each read went, so their watermarks agree.
    return [(shard_key(s), (s, parts.get(s, empty), read)) for s in range(shards)]


@operator
def meter_usage(step_id: str, up: Stream[RawBatch], config: UsageConfig, clock: Clock) -> UsageOut:
    """Parse, dedupe, window and roll up usage; bad records become dead letters."""
    parsed = op.map("parse", up, lambda raw: _parse(raw, clock, config.max_clock_skew_us,
                                                         config.limits, config.meters))
    parse_rejects = op.filter_map("parse_rejects", parsed, lambda p: p[1] or None)
    by_id = op.flat_map("shard_by_id", parsed, lambda p: _shard_by_id(p, config.id_shards))
    admitted = op.stateful_batch(
        "admit", by_id,
        lambda state: _AdmitLogic(config.admission, clock, state, config.dedupe_files),
    )
    split = op.branch("split_admitted", admitted, lambda kv: isinstance(kv[1], list))
    partials = op.map("key_by_window_shard", split.falses, lambda kv: (shard_key(kv[1][0]), kv[1]))
    rows = op.stateful_batch("window", partials, lambda state: _WindowLogic(config, clock, state))
    parts = config.sink_partitions
    rollups = op.map(
        "key_rollups", rows, lambda kv: (partition_key(shard_of(kv[0]) % parts), kv[1].rows)
    )
    admit_rejects = op.map("admit_rejects", split.trues, lambda kv: kv[1])
    rejects = op.merge("all_rejects", parse_rejects, admit_rejects)
    keyed_rejects = op.map("key_dead_letters", rejects, lambda dls: _key_dead_letters(dls, parts))
    # Every rollup emission (and wall-clock tick) also wakes the dead-letter writers, so
    # a buffered dead letter is written on time even when no other reject follows it.
    wake = op.map("wake_dead_letters", rollups, lambda kv: (kv[0], []))
    dead_letters = op.merge("dead_letters", keyed_rejects, wake)
    return UsageOut(rollups, dead_letters, rows)


def _key_dead_letters(dls: list[DeadLetter], parts: int) -> tuple[str, list[DeadLetter]]:
    # Dead letters of one source partition go to one writer, in order.
    for dl in dls:
        metrics.DEAD_LETTERS.labels(dl.reason).inc()
    return (partition_key((dls[0].partition or 0) % parts), dls)
