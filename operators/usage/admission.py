"""Admit parsed events into the totals: lateness check, dedupe, pre-aggregation.

One ``Admission`` holds one id shard's state. Its output is small: partial
aggregates per (tenant, meter, dimensions, window), already split by the window
shard that owns the key, plus dead letters for what it rejected.

Lateness and dedupe judge events, not readings: an event's readings share its time
and identity, and follow its lead reading's verdict (one dead letter per record).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from operators.records import DeadLetter, Reason
from operators.usage.batch import EventBatch
from operators.usage.dedupe import DedupeIndex, Run, Verdict
from operators.usage.windows import (
    NEVER,
    LeastWatermark,
    Partials,
    ReadProgress,
    Watermark,
    aggregate,
    fold,
    window_starts,
)


@dataclass(frozen=True, slots=True)
class WindowPartials:
    """Partial aggregates for one window shard, as columns, and the sender's watermark.

    Without groups it only carries the watermark (see ``Admission.admit``).
    """

    pairs: list[tuple]  # distinct (tenant, meter, dimensions)
    pair_code: np.ndarray  # int64 index into pairs, per group
    starts: np.ndarray  # int64 window start, per group
    partials: Partials
    watermark_us: int  # the sender's closing watermark
    sender: int  # the id shard that sent it
    # unique_count readings: the group each belongs to (int64) and its value hash (uint64)
    value_group: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    value_hash: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))

    @classmethod
    def watermark_only(cls, watermark_us: int, sender: int) -> WindowPartials:
        none = np.empty(0, dtype=np.int64)
        return cls([], none, none, Partials(*[none] * len(Partials._fields)), watermark_us,
                   sender)

    def values(self) -> dict[int, list[int]] | None:
        """The value hashes of each unique_count group (see ``WindowBook.add``)."""
        return _values_by_group(self.value_group, self.value_hash)

    def keys(self) -> Iterator[tuple]:
        """(tenant, meter, dimensions, window_start_us) per group."""
        pairs = self.pairs
        return ((*pairs[c], s) for c, s in zip(self.pair_code.tolist(), self.starts.tolist(),
                                               strict=True))


def _values_by_group(groups: np.ndarray, hashes: np.ndarray) -> dict[int, list[int]] | None:
    if not len(groups):
        return None
    out: dict[int, list[int]] = {}
    for g, h in zip(groups.tolist(), hashes.tolist(), strict=True):
        out.setdefault(g, []).append(h)
    return out


def combine(
    parts: list[WindowPartials],
) -> tuple[list[tuple], Partials, dict[int, list[int]] | None]:
    """One partial per (tenant, meter, dimensions, window start) of several WindowPartials,
    folded in arrival order (see :func:`operators.usage.windows.fold`), and the
    unique_count value hashes of each: the id shards of one read each send a partial for
    the same busy keys, and the window book's Python loop should see each key once."""
    if len(parts) == 1:
        return list(parts[0].keys()), parts[0].partials, parts[0].values()
    codes: dict[tuple[str, str], int] = {}
    pair_code = np.concatenate([
        np.array([codes.setdefault(pair, len(codes)) for pair in p.pairs],
                 dtype=np.int64)[p.pair_code]
        for p in parts
    ])
    starts, start_index = np.unique(np.concatenate([p.starts for p in parts]),
                                    return_inverse=True)
    cells, groups = np.unique(pair_code * len(starts) + start_index, return_inverse=True)
    partials = fold(Partials(*map(np.concatenate, zip(*(p.partials for p in parts), strict=True))),
                    groups, len(cells))
    pairs = list(codes)
    code_of, start_of = np.divmod(cells, len(starts))
    keys = zip(code_of.tolist(), starts[start_of].tolist(), strict=True)
    # Each part's groups are consecutive in ``groups``: offset its value groups likewise.
    offsets = np.cumsum([0] + [len(p.starts) for p in parts[:-1]])
    value_group = np.concatenate([groups[o + p.value_group] for o, p in zip(offsets, parts,
                                                                            strict=True)])
    values = _values_by_group(value_group, np.concatenate([p.value_hash for p in parts]))
    return [(*pairs[c], s) for c, s in keys], partials, values


@dataclass(slots=True)
class AdmitResult:
    partials: list[tuple[int, WindowPartials]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class AdmissionConfig:
    window_us: int
    allowed_lateness_us: int
    max_lateness_us: int
    dedupe_horizon_us: int
    window_shards: int
    follow_wall_clock: bool = False


class Admission:
    def __init__(self, config: AdmissionConfig, state: tuple | None = None,
                 load_runs: Callable[[list], list[Run]] | None = None) -> None:
        """``load_runs``: see :meth:`DedupeIndex.restore`."""
        self.config = config
        # Two watermarks (see operators/usage/windows.py): the greatest event time seen judges
        # too_late and ages dedupe keys; the least over source partitions closes windows.
        self.watermark = Watermark(config.allowed_lateness_us, config.follow_wall_clock)
        self.closing = LeastWatermark(config.allowed_lateness_us, config.follow_wall_clock)
        self.reported_us = NEVER  # closing watermark last sent to every window shard
        if state is None:
            self.index = DedupeIndex(config.dedupe_horizon_us)
        else:
            self.watermark.restore(state[0])
            self.index = DedupeIndex.restore(state[1], load_runs)
            if len(state) > 2:  # a store written before the closing watermark starts without
                self.closing.restore(state[2])

    def snapshot(self, save_runs: Callable[[list[Run]], list] | None = None) -> tuple:
        """``save_runs``: see :meth:`DedupeIndex.snapshot`."""
        return (self.watermark.snapshot(), self.index.snapshot(save_runs),
                self.closing.snapshot())

    def admit(self, batch: EventBatch, read: ReadProgress, now_us: int,
              sender: int = 0) -> AdmitResult:
        """Admit one shard's slice of a read; ``sender`` is this id shard.

        ``read`` describes the whole read (every shard gets it, even with an empty
        slice), so all shards agree on the watermarks, which include the read being
        admitted.
        """
        cfg = self.config
        # What the watermark was before this read, to judge each event by the one it met
        # on arrival: as if the read's events had been observed one at a time.
        before_max, before = self.watermark.max_event_us, self.watermark.at(now_us)
        self.watermark.observe(read.max_event_us, now_us)
        self.closing.expected = max(self.closing.expected, read.partitions)
        self.closing.observe(read.partition, read.max_event_us, now_us, read.at_end)
        wm = self.watermark.at(now_us)
        # Never past the greatest (a partition's last event stamped ahead of the clock
        # would keep it ahead while that partition is idle), and no window waits for
        # events that could only be too_late.
        closing = min(max(self.closing.at(now_us), wm - cfg.max_lateness_us), wm)
        out = AdmitResult()
        if len(batch):
            # Against the watermark at each event's arrival: a later event of the same
            # read does not make an earlier one late (the oracle reads line by line).
            met = np.where(batch.seen_max_us > before_max,
                           batch.seen_max_us - cfg.allowed_lateness_us, before)
            too_late = batch.time_us < met - cfg.max_lateness_us
            if too_late.any():
                for i in np.flatnonzero(too_late & batch.lead).tolist():
                    out.dead_letters.append(
                        _dead_letter(batch, i, now_us, Reason.TOO_LATE,
                                     "more than max_lateness behind the watermark")
                    )
                batch = batch.take(np.flatnonzero(~too_late))
        if len(batch):
            # A late event's key is kept for the horizon after it was seen, not after its time.
            bucket_time = np.maximum(batch.time_us, wm)
            lead = batch.lead
            leads = np.flatnonzero(lead)
            verdicts = self.index.check_and_remember(
                batch.id_hash[leads], batch.content_hash[leads], bucket_time[leads])
            out.duplicates = int((verdicts == Verdict.DUPLICATE).sum())
            out.accepted = int((verdicts == Verdict.NEW).sum())
            if len(leads) < len(batch):  # readings follow their event's lead
                verdicts = verdicts[np.cumsum(lead) - 1]
            for i in np.flatnonzero((verdicts == Verdict.CONFLICT) & lead).tolist():
                out.dead_letters.append(
                    _dead_letter(batch, i, now_us, Reason.DUPLICATE_CONFLICT,
                                 "same id as an earlier event with other content")
                )
            new = np.flatnonzero(verdicts == Verdict.NEW)
            if len(new):
                out.partials = self._pre_aggregate(batch, new, closing, sender)
        self.index.expire(wm)
        if closing // cfg.window_us > self.reported_us // cfg.window_us:
            # It passed a window boundary: every window shard must hear, also those this
            # slice has nothing for, since a window step closes on the least of its senders.
            sent = {s for s, _ in out.partials}
            out.partials.extend((s, WindowPartials.watermark_only(closing, sender))
                                for s in range(cfg.window_shards) if s not in sent)
            self.reported_us = closing
        return out

    def _pre_aggregate(
        self, batch: EventBatch, idx: np.ndarray, closing: int, sender: int
    ) -> list[tuple[int, WindowPartials]]:
        """Partial aggregates of the events at ``idx`` (only the columns they need)."""
        cfg = self.config
        time_us = batch.time_us[idx]
        starts, start_index = np.unique(window_starts(time_us, cfg.window_us),
                                        return_inverse=True)
        # One group per (tenant-meter code, window start): a code below len(keys) times
        # len(starts), both at most a read's length, so it cannot overflow.
        cells, groups = np.unique(batch.key_code[idx] * len(starts) + start_index,
                                  return_inverse=True)
        partials = aggregate(batch.quantity[idx], time_us, groups, len(cells))
        codes, start_of = np.divmod(cells, len(starts))
        # A key's window shard: stable_hash("tenant\x1fmeter") mod window_shards.
        shard = (batch.key_hash % np.uint64(cfg.window_shards)).astype(np.int64)[codes]
        value_hash = batch.value_hash[idx]
        distinct = np.flatnonzero(value_hash)  # unique_count readings
        out = []
        for s in np.unique(shard).tolist():
            part = np.flatnonzero(shard == s)
            used, pair_code = np.unique(codes[part], return_inverse=True)
            wp = WindowPartials(
                [batch.keys[u] for u in used.tolist()], pair_code, starts[start_of[part]],
                partials.take(part), closing, sender)
            if len(distinct):
                # group numbers local to this part: part is sorted, so searchsorted finds them
                mine = distinct[shard[groups[distinct]] == s]
                wp = replace(wp, value_group=np.searchsorted(part, groups[mine]),
                             value_hash=value_hash[mine])
            out.append((s, wp))
        return out


def _dead_letter(batch: EventBatch, i: int, now_us: int, reason: Reason, detail: str) -> DeadLetter:
    return DeadLetter(
        now_us, reason.value, detail, batch.raw(i), batch.source, batch.partition,
        batch.offset(i),
    )
