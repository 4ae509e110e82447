"""Event-time tumbling windows, the watermark, and late corrections.

Windows are aligned to the Unix epoch::

    window_start(t) = t - (t mod size)        window_end = window_start + size

The watermark trails the greatest event time seen by ``allowed_lateness``;
in always-on mode it also moves with the wall clock while no newer event
arrives (as Bytewax's ``EventClock`` does), so idle keys' windows close::

    watermark = max_event_time + (now - wall_time_when_max_was_seen) - allowed_lateness

(time the job was down does not count: see ``Watermark._resume``).

That watermark judges ``too_late`` and ages dedupe keys. Windows close on a more
patient one, the least over the source's partitions of each one's watermark
(:class:`LeastWatermark`; a partition with nothing more to read is left out), kept
between ``watermark - max_lateness`` and ``watermark`` (``Admission.admit``): a
partition read by a slower process, or read later, is not judged late against
another partition's event time. Where every partition is read at the same pace the
two are the same.

A window is emitted (revision 0) once ``watermark >= window_end``. Usage that
reaches a window after that is collected and emitted at the next close as a
correction row for the same window, with::

    revision = (closed_through - window_end) / size        (>= 1)

where ``closed_through`` is the watermark rounded down to a window boundary
at that close. It grows at every close, so revisions of a window are
distinct and increasing (1, 2, ... with gaps) without remembering anything
per closed window. The true total of a window is the sum over its revisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from operators.records import RollupRow, month_of
from operators.usage.distinct import DistinctValues

NEVER = -(2**62)

# A partial aggregate: the state that is merged as usage reaches a window.
#   quantity (sum), events (count), quantity_max, last_time_us, quantity_last, quantity_min
# To add an aggregate: give it a slot here, fill it in `aggregate`, combine it
# in `merge`, and read it in `meter_value` (or add its column to operators/schemas.py).
Partial = list  # [float, int, float, int, float, float]


def window_starts(time_us: np.ndarray, size_us: int) -> np.ndarray:
    return time_us - np.mod(time_us, size_us)


class Partials(NamedTuple):
    """Partial aggregates of many groups, one array per slot of :data:`Partial`.

    Columns rather than a list per group: they move between steps (and processes) as a
    handful of arrays.
    """

    quantity: np.ndarray  # float64 sum
    events: np.ndarray  # int64 count
    quantity_max: np.ndarray  # float64
    last_time_us: np.ndarray  # int64
    quantity_last: np.ndarray  # float64
    quantity_min: np.ndarray  # float64

    def take(self, idx: np.ndarray) -> Partials:
        return Partials(*(column[idx] for column in self))

    def rows(self) -> Iterator[Partial]:
        """One :data:`Partial` (a list) per group."""
        return map(list, zip(*(column.tolist() for column in self), strict=True))


def aggregate(
    quantity: np.ndarray, time_us: np.ndarray, groups: np.ndarray, ngroups: int
) -> Partials:
    """One partial per group of events; input in arrival order (a later arrival wins a tie
    for 'last')."""
    ones = np.ones(len(groups), dtype=np.int64)
    return fold(Partials(quantity, ones, quantity, time_us, quantity, quantity), groups, ngroups)


def fold(partials: Partials, groups: np.ndarray, ngroups: int) -> Partials:
    """One partial per group, as :func:`merge` would fold them one by one in arrival order.
    Every group in ``range(ngroups)`` must occur.

    Sums are added in arrival order from zero. Merged into a window that already has a
    total, a fractional quantity can differ in its last bits from adding the partials one
    at a time (float addition is not associative); how reads are cut already does that.
    Counts, maxima and 'last' are exact."""
    n = len(groups)
    order = np.lexsort((np.arange(n), partials.last_time_us, groups))  # group, time, arrival
    g_sorted = groups[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    last = order[np.r_[starts[1:], n] - 1]
    return Partials(
        np.bincount(groups, weights=partials.quantity, minlength=ngroups),
        np.bincount(groups, weights=partials.events, minlength=ngroups).astype(np.int64),
        np.maximum.reduceat(partials.quantity_max[order], starts),
        partials.last_time_us[last],
        partials.quantity_last[last],
        np.minimum.reduceat(partials.quantity_min[order], starts),
    )


def merge(acc: Partial, new: Partial) -> None:
    """Fold ``new`` (arrived later) into ``acc`` in place."""
    acc[0] += new[0]
    acc[1] += new[1]
    if new[2] > acc[2]:
        acc[2] = new[2]
    if new[3] >= acc[3]:
        acc[3] = new[3]
        acc[4] = new[4]
    if new[5] < acc[5]:
        acc[5] = new[5]


def meter_value(aggregation: str, p: Partial) -> float:
    """A row's ``quantity`` under its meter's aggregation (README "Aggregations").

    ``unique_count`` partials already hold, in the sum slot, the number of values first
    seen in their period (see ``WindowBook.add``).
    """
    if aggregation == "count":
        return float(p[1])
    if aggregation == "max":
        return p[2]
    if aggregation == "min":
        return p[5]
    if aggregation == "latest":
        return p[4]
    return p[0]  # sum, unique_count


class Watermark:
    """Greatest event time seen, less the allowed lateness (see module doc)."""

    def __init__(self, allowed_lateness_us: int, follow_wall_clock: bool) -> None:
        self.allowed_lateness_us = allowed_lateness_us
        self.follow_wall_clock = follow_wall_clock
        self.max_event_us = NEVER
        self.seen_at_us = NEVER
        self.last_now_us = NEVER  # the wall clock when last asked: near the snapshot's time
        self.snapshot_now_us = NEVER  # last_now_us of the snapshot restored from
        self.restored = False

    def observe(self, max_event_us: int, now_us: int) -> None:
        self._resume(now_us)
        if max_event_us > self.max_event_us:
            self.max_event_us = max_event_us
            self.seen_at_us = now_us

    def at(self, now_us: int) -> int:
        self._resume(now_us)
        if self.max_event_us == NEVER:
            return NEVER
        idle = max(0, now_us - self.seen_at_us) if self.follow_wall_clock else 0
        return self.max_event_us + idle - self.allowed_lateness_us

    def _resume(self, now_us: int) -> None:
        # Time the job was down is not idle time: what was produced meanwhile is still to
        # be read, and counting it would make that backlog late (or too_late, after an
        # outage longer than max_lateness). The idle time before the stop still counts.
        if self.restored:
            self.restored = False
            if self.seen_at_us != NEVER:
                idle_before = max(0, self.snapshot_now_us - self.seen_at_us)
                self.seen_at_us = max(self.seen_at_us, now_us - idle_before)
        self.last_now_us = max(self.last_now_us, now_us)

    def snapshot(self) -> tuple[int, int, int]:
        return (self.max_event_us, self.seen_at_us, self.last_now_us)

    def restore(self, state: tuple) -> None:
        # (max, seen_at) in stores written before the wall clock was kept: no idle before
        self.max_event_us, self.seen_at_us, *snapshot_now = state
        self.snapshot_now_us = snapshot_now[0] if snapshot_now else self.seen_at_us
        self.last_now_us = NEVER
        self.restored = True


UNHEARD_GRACE_US = 30_000_000


class ReadProgress(NamedTuple):
    """How far one read took its source partition: what the closing watermark needs."""

    partition: int | None  # the Kafka partition; None for files (read as one partition)
    partitions: int  # how many the source has: windows wait until each has been heard from
    max_event_us: int  # greatest event time of the read; NEVER if it had no events
    at_end: bool  # the partition had nothing more to read after it (for now)


class LeastWatermark:
    """The least of several members' watermarks: source partitions, or the id shards
    that report to a window step.

    Windows close on this one, so that a member that is behind (a partition read by a
    slower process, an id shard that has not yet admitted its slice of a read) does not
    see its windows closed before its events arrive. ``NEVER`` until ``expected`` members
    have been heard from; in always-on mode, a member with no watermark yet
    ``UNHEARD_GRACE_US`` after the job (re)started (a partition without a leader) is left
    out until it has one. A member at its end (a partition with nothing more to read)
    holds nothing back; when every member is, the greatest of them counts. After a
    restart no member is at its end until it says so again: the backlog produced while
    the job was down may be in any of them.
    """

    def __init__(self, allowed_lateness_us: int, follow_wall_clock: bool,
                 expected: int = 1) -> None:
        self.allowed_lateness_us = allowed_lateness_us
        self.follow_wall_clock = follow_wall_clock
        self.expected = expected
        self.members: dict[int | None, Watermark] = {}
        self.ended: set[int | None] = set()
        self.started_us = NEVER  # wall clock when first used since the job (re)started

    def observe(self, member: int | None, max_event_us: int, now_us: int,
                at_end: bool = False) -> None:
        self._start(now_us)
        wm = self.members.get(member)
        if wm is None:
            wm = self.members[member] = Watermark(self.allowed_lateness_us,
                                                  self.follow_wall_clock)
        wm.observe(max_event_us, now_us)
        if at_end:
            self.ended.add(member)
        elif max_event_us != NEVER:  # it has more to read: it holds windows back again
            self.ended.discard(member)

    def at(self, now_us: int) -> int:
        self._start(now_us)
        waiting = not (self.follow_wall_clock and now_us - self.started_us >= UNHEARD_GRACE_US)
        if not self.members or (waiting and len(self.members) < self.expected):
            return NEVER
        active = [wm.at(now_us) for m, wm in self.members.items() if m not in self.ended]
        if not waiting:
            active = [a for a in active if a != NEVER]
        if active:
            return min(active)
        return max(wm.at(now_us) for wm in self.members.values())

    def _start(self, now_us: int) -> None:
        if self.started_us == NEVER:
            self.started_us = now_us

    def snapshot(self) -> tuple:
        return (self.expected, {m: wm.snapshot() for m, wm in self.members.items()})

    def restore(self, state: tuple) -> None:
        # Only the members' watermarks: which were at their end, and when the grace
        # started, belong to the run that stopped (stores of 0cc6f02 to 8387019 kept
        # them; they are ignored).
        self.expected, members, *_ = state
        self.members = {}
        for m, wm_state in members.items():
            wm = self.members[m] = Watermark(self.allowed_lateness_us, self.follow_wall_clock)
            wm.restore(wm_state)
        self.ended = set()


OTHER = "__other__"  # the one group a (tenant, meter) past its max_groups goes to


@dataclass(frozen=True)
class MeterShape:
    """What the window step needs of a meter definition (legacy meters: the default)."""

    aggregation: str = "sum"
    max_groups: int | None = None  # distinct dimension tuples per (tenant, meter) and month


_LEGACY = MeterShape()
Key = tuple  # (tenant, meter, dimensions)


@dataclass
class WindowBook:
    """Open windows and pending corrections of one shard of (tenant, meter) keys.

    Besides the windows it holds, per billing month (UTC), what makes two meter kinds exact:
    the value hashes a ``unique_count`` meter has seen (a row counts the values first seen in
    its month, so a month's rows sum to its distinct count), and the dimension tuples a
    (tenant, meter) has used (beyond ``max_groups`` the rest go to one ``__other__`` group).
    Both are forgotten with :meth:`expire` once no correction can reach their month.
    """

    size_us: int
    watermark_us: int = NEVER
    closed_through_us: int = NEVER  # every window ending at or before this is emitted
    # window_start -> (tenant, meter, dimensions) -> partial; few starts are open at once
    open: dict[int, dict[Key, Partial]] | None = None
    corrections: dict[tuple, Partial] | None = None  # (tenant, meter, dimensions, start)
    distinct: dict[tuple, DistinctValues] | None = None  # (tenant, meter, dimensions, month)
    groups: dict[tuple, set] | None = None  # (tenant, meter, month) -> dimension tuples
    meters: dict[str, MeterShape] | None = None  # config, not state
    overflowed: int = 0  # readings sent to __other__ (a metric; not state)

    def __post_init__(self) -> None:
        self.open = {} if self.open is None else self.open
        self.corrections = {} if self.corrections is None else self.corrections
        self.distinct = {} if self.distinct is None else self.distinct
        self.groups = {} if self.groups is None else self.groups
        self.meters = {} if self.meters is None else self.meters

    def add(self, keys: Iterable[tuple], partials: Iterable[Partial],
            values: dict[int, Iterable[int]] | None = None) -> int:
        """Add partial aggregates keyed (tenant, meter, dimensions, window start); returns
        how many reached an emitted window. ``values[i]``: the value hashes of group ``i``
        of a ``unique_count`` meter."""
        late = 0
        for i, ((tenant, meter, dims, start), partial) in enumerate(zip(keys, partials,
                                                                         strict=True)):
            shape = self.meters.get(meter, _LEGACY)
            if dims and shape.max_groups is not None:
                dims = self._group(tenant, meter, dims, start, shape.max_groups)
            if values is not None and i in values:
                partial = list(partial)
                partial[0] = float(self._first_seen(tenant, meter, dims, start, values[i]))
            if start + self.size_us <= self.closed_through_us:
                late += 1
                acc = self.corrections.get((tenant, meter, dims, start))
                if acc is None:
                    self.corrections[(tenant, meter, dims, start)] = list(partial)
                else:
                    merge(acc, partial)
                continue
            by_key = self.open.get(start)
            if by_key is None:
                by_key = self.open[start] = {}
            acc = by_key.get((tenant, meter, dims))
            if acc is None:
                by_key[(tenant, meter, dims)] = list(partial)
            else:
                merge(acc, partial)
        return late

    def _group(self, tenant: str, meter: str, dims: tuple, start: int, limit: int) -> tuple:
        seen = self.groups.setdefault((tenant, meter, month_of(start)), set())
        if dims in seen:
            return dims
        if len(seen) < limit:
            seen.add(dims)
            return dims
        self.overflowed += 1
        return tuple((k, OTHER) for k, _v in dims)

    def _first_seen(self, tenant: str, meter: str, dims: tuple, start: int,
                    hashes: Iterable[int]) -> int:
        key = (tenant, meter, dims, month_of(start))
        seen = self.distinct.get(key)
        if seen is None:
            seen = self.distinct[key] = DistinctValues()
        return seen.add(hashes)

    def advance(self, watermark_us: int) -> list[RollupRow]:
        """Move the watermark; emit windows it passed and pending corrections."""
        if watermark_us <= self.watermark_us:
            return []
        self.watermark_us = watermark_us
        closed_through = watermark_us - watermark_us % self.size_us
        if closed_through <= self.closed_through_us:
            return []
        return self._close(closed_through)

    def close_all(self) -> list[RollupRow]:
        """End of input: emit every open window and pending correction."""
        ends = [start + self.size_us for start in self.open]
        closed_through = max([self.closed_through_us + self.size_us, *ends])
        return self._close(closed_through)

    def expire(self, oldest_month: int) -> None:
        """Forget distinct values and groups of months before ``oldest_month`` (YYYYMM)."""
        for book in (self.distinct, self.groups):
            for key in [k for k in book if k[-1] < oldest_month]:
                del book[key]

    def _row(self, key: Key, start: int, p: Partial, revision: int) -> RollupRow:
        tenant, meter, dims = key
        agg = self.meters.get(meter, _LEGACY).aggregation
        return RollupRow(tenant, meter, dims, start, start + self.size_us,
                         meter_value(agg, p), p[1], p[2], p[3], p[4], revision,
                         None, None, agg)

    def _close(self, closed_through: int) -> list[RollupRow]:
        size = self.size_us
        rows: list[RollupRow] = []
        for (tenant, meter, dims, start), p in self.corrections.items():
            revision = (closed_through - start - size) // size
            rows.append(self._row((tenant, meter, dims), start, p, revision))
        self.corrections = {}
        for start in sorted(s for s in self.open if s + size <= closed_through):
            for key, p in self.open.pop(start).items():
                rows.append(self._row(key, start, p, 0))
        self.closed_through_us = closed_through
        return rows

    def snapshot(self) -> tuple:
        return (
            self.size_us,
            self.watermark_us,
            self.closed_through_us,
            {s: {k: list(p) for k, p in d.items()} for s, d in self.open.items()},
            {k: list(p) for k, p in self.corrections.items()},
            {k: v.snapshot() for k, v in self.distinct.items()},
            {k: set(v) for k, v in self.groups.items()},
        )

    @classmethod
    def restore(cls, state: tuple, meters: dict[str, MeterShape] | None = None) -> WindowBook:
        size, wm, ct, open_, corrections, *kinds = state
        if kinds:
            distinct, groups = kinds
            distinct = {k: DistinctValues.restore(v) for k, v in distinct.items()}
            return cls(size, wm, ct, open_, corrections, distinct,
                       {k: set(v) for k, v in groups.items()}, meters=meters)
        # A store written before dimensions: keys (tenant, meter), partials without a min.
        def upgrade(p: Partial) -> Partial:
            return [*p, p[2]] if len(p) == 5 else p  # legacy meters are sums: min is unread
        open_ = {s: {(t, m, ()): upgrade(p) for (t, m), p in d.items()}
                 for s, d in open_.items()}
        corrections = {(t, m, (), s): upgrade(p) for (t, m, s), p in corrections.items()}
        return cls(size, wm, ct, open_, corrections, meters=meters)
