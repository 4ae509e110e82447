"""Bytewax wrappers around the spend logic: burn, credits and budget alerts per tenant.

``track_spend`` takes what the window step of ``meter_usage`` emits::

    Closed (priced rows) ─ costs_by_tenant ─ spend (keyed by tenant shard) ─┬─ burn rows
                                                                            ├─ ledger entries
                                                                            └─ alerts
"""

from __future__ import annotations

from dataclasses import dataclass

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulBatchLogic

from operators import metrics
from operators.records import HOUR_US, partition_key
from operators.spend.burn import BurnBook, BurnConfig, BurnOutput
from operators.usage.batch import stable_hash
from operators.usage.shard_keys import shard_key, shard_of
from operators.usage.steps import Closed, UsageConfig


@dataclass(frozen=True)
class SpendOut:
    burn: Stream  # (sink partition key, [burn row, ...])
    ledger: Stream  # (sink partition key, [LedgerEntry, ...])
    alerts: Stream  # (sink partition key, [Alert, ...])


class _SpendLogic(StatefulBatchLogic):
    """Burn, credits, budget and anomaly alerts of one shard of tenants.

    Items: (shard, [(tenant, window_start, cost), ...], closed_through of the sender).
    """

    def __init__(self, config: BurnConfig, state) -> None:
        self.book = BurnBook(config, state)

    def _emit(self, out: BurnOutput):
        for alert in out.alerts:
            metrics.ALERTS_RAISED.labels(alert.kind, alert.action).inc()
        if out.burn_rows or out.ledger or out.alerts:
            return [out], StatefulBatchLogic.RETAIN
        return [], StatefulBatchLogic.RETAIN

    def on_batch(self, values):
        watermark = None
        for _shard, costs, closed_through in values:
            self.book.add(costs)
            watermark = closed_through if watermark is None else max(watermark, closed_through)
        return self._emit(self.book.advance(watermark))

    def on_eof(self):
        # End of input: write the last hour too if it is partial (a whole one is written).
        closed = self.book.closed_bin_us
        if closed % HOUR_US == 0:
            return [], StatefulBatchLogic.RETAIN
        return self._emit(self.book.advance(closed - closed % HOUR_US + HOUR_US))

    def snapshot(self):
        return self.book.snapshot()


def _costs_by_tenant_shard(closed: Closed, shards: int) -> list[tuple[str, tuple]]:
    by_shard: dict[int, list] = {}
    for row in closed.rows:
        cost = row.cost
        if cost is not None:
            shard = stable_hash(row.tenant) % shards
            by_shard.setdefault(shard, []).append((row.tenant, row.window_start_us, cost))
    if not closed.rows:  # a wall-clock tick: every shard hears it
        by_shard = {s: [] for s in range(shards)}
    return [(shard_key(s), (s, costs, closed.closed_through_us)) for s, costs in by_shard.items()]


@operator
def track_spend(step_id: str, closes: Stream, config: UsageConfig) -> SpendOut:
    """Hourly burn per tenant, the credit ledger, and budget and credit alerts."""
    costs = op.flat_map(
        "costs_by_tenant", closes, lambda kv: _costs_by_tenant_shard(kv[1], config.tenant_shards)
    )
    outs = op.stateful_batch("spend", costs, lambda state: _SpendLogic(config.burn, state))
    parts = config.sink_partitions

    def keyed(kv, field):
        return (partition_key(shard_of(kv[0]) % parts), getattr(kv[1], field))

    return SpendOut(
        burn=op.map("key_burn", outs, lambda kv: keyed(kv, "burn_rows")),
        ledger=op.map("key_ledger", outs, lambda kv: keyed(kv, "ledger")),
        alerts=op.map("key_alerts", outs, lambda kv: (partition_key(0), kv[1].alerts)),
    )
