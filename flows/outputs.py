"""The sinks of a job, built from the settings (shared by replay and run)."""

from __future__ import annotations

from bytewax.outputs import Sink

from flows.settings import Settings
from flows.usage import Sinks, webhook_targets
from operators.connectors.alert_sink import AlertSink
from operators.connectors.parquet_sink import ParquetSink
from operators.schemas import ALERTS, BURN, DEAD_LETTER, LEDGER, ROLLUPS, Dataset
from operators.spend.focus import FOCUS


def output_sinks(
    settings: Settings,
    *,
    run_key: str,
    max_delay_s: float | None,
    dead_letter_topic: Sink | None = None,
    keep_pending_alerts: bool = False,
) -> Sinks:
    """``keep_pending_alerts``: deliveries unfinished at end of input stay in the recovery
    store for the next start (``run``) instead of being recorded as ``pending`` (replay)."""
    def parquet(dataset: Dataset, partitions: int | None = None) -> ParquetSink:
        return ParquetSink(
            settings.out, dataset, run_key=run_key,
            partitions=partitions or settings.sink_partitions,
            rows_per_file=settings.rows_per_file, max_delay_s=max_delay_s,
            storage_options=settings.storage_options,
        )

    spend = bool(settings.pricing)  # burn, credits and alerts need prices
    return Sinks(
        rollups=parquet(ROLLUPS),
        dead_letters=parquet(DEAD_LETTER),
        dead_letter_topic=dead_letter_topic,
        burn=parquet(BURN) if spend else None,
        ledger=parquet(LEDGER) if spend else None,
        # One writer keeps an alert's trigger and resolve in order.
        alerts=AlertSink(webhook_targets(settings), parquet(ALERTS, 1),
                         drain_timeout_s=settings.alerts.drain_timeout.total_seconds(),
                         keep_pending=keep_pending_alerts) if spend else None,
        focus=parquet(FOCUS) if spend else None,
    )
