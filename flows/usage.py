"""The usage dataflow: which steps, in which order, wired to a source and sinks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows.settings import Settings, meter_set
from operators.alerting.anomaly import ModelConfig
from operators.alerting.policy import AlertPolicy
from operators.alerting.webhooks import WebhookTarget
from operators.records import duration_us, partition_key, to_us
from operators.spend.burn import Budget, BurnConfig, BurnRateRule, TenantPlan
from operators.spend.focus import FocusParty, focus_rows
from operators.spend.ledger import NO_EXPIRY, Grant
from operators.spend.pricing import catalog_from_config
from operators.spend.steps import track_spend
from operators.usage.admission import AdmissionConfig
from operators.usage.parse import RecordLimits
from operators.usage.run_files import RunFileConfig
from operators.usage.shard_keys import shard_of
from operators.usage.steps import UsageConfig, meter_usage


@dataclass(frozen=True)
class Sinks:
    rollups: Sink
    dead_letters: Sink
    dead_letter_topic: Sink | None = None  # a Kafka DLQ, in always-on mode
    burn: Sink | None = None  # the three below go together: spend tracking is on when set
    ledger: Sink | None = None
    alerts: Sink | None = None
    focus: Sink | None = None  # FOCUS cost lines of the priced rollups


def usage_config(settings: Settings, *, follow_wall_clock: bool,
                 dedupe_run_dir: Path | None = None) -> UsageConfig:
    """Plain values for the operators (they never see the settings object).

    ``dedupe_run_dir``: where a job with a recovery store keeps its large dedupe runs.
    """
    return UsageConfig(
        admission=AdmissionConfig(
            window_us=duration_us(settings.window),
            allowed_lateness_us=duration_us(settings.allowed_lateness),
            max_lateness_us=duration_us(settings.max_lateness),
            dedupe_horizon_us=duration_us(settings.dedupe_horizon),
            window_shards=settings.window_shards,
            follow_wall_clock=follow_wall_clock,
        ),
        id_shards=settings.id_shards,
        max_clock_skew_us=duration_us(settings.max_clock_skew),
        limits=RecordLimits(settings.max_quantity, settings.max_identifier_length),
        meters=meter_set(settings),
        sink_partitions=settings.sink_partitions,
        catalog=catalog_from_config(settings.pricing) if settings.pricing else None,
        burn=burn_config(settings),
        tenant_shards=settings.tenant_shards,
        focus_party=FocusParty(provider=settings.provider_name),
        dedupe_files=(RunFileConfig(dedupe_run_dir, settings.dedupe_file_keys)
                      if dedupe_run_dir is not None else None),
    )


def burn_config(settings: Settings) -> BurnConfig:
    alerts = settings.alerts
    hour, minute = timedelta(hours=1), timedelta(minutes=1)
    plans = {
        name: TenantPlan(
            budget=Budget(t.budget.amount, t.budget.period) if t.budget else None,
            grants=tuple(
                Grant(g.grant_id, g.amount, to_us(_utc(g.granted_at)),
                      to_us(_utc(g.expires_at)) if g.expires_at else NO_EXPIRY)
                for g in t.credits
            ),
        )
        for name, t in settings.tenants.items()
    }
    catalog = catalog_from_config(settings.pricing) if settings.pricing else None
    return BurnConfig(
        plans=plans,
        currency=next(iter(catalog.currencies)) if catalog else None,
        rules=(
            BurnRateRule("page", duration_us(hour), duration_us(5 * minute),
                         alerts.page_fast_factor),
            BurnRateRule("page", duration_us(6 * hour), duration_us(30 * minute),
                         alerts.page_slow_factor),
            BurnRateRule("ticket", duration_us(72 * hour), duration_us(6 * hour),
                         alerts.ticket_factor),
        ),
        exhaustion_within_h=alerts.exhaustion_within / hour,
        forecast_hours=max(1, round(alerts.forecast_window / hour)),
        cooldown_us=duration_us(alerts.cooldown),
        max_lateness_us=duration_us(settings.max_lateness),
        min_cost=float(alerts.min_cost),
        resolve_fraction=alerts.resolve_fraction,
        anomaly=ModelConfig(model=alerts.anomaly.model) if alerts.anomaly.enabled else None,
        anomaly_policy=AlertPolicy(
            open_at=alerts.anomaly.open_at,
            resolve_below=alerts.anomaly.resolve_below,
            min_impact=float(alerts.anomaly.min_impact),
            cooldown_us=duration_us(alerts.anomaly.cooldown),
        ),
    )


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def webhook_targets(settings: Settings) -> list[WebhookTarget]:
    return [
        WebhookTarget(
            name=w.name,
            url=w.url.get_secret_value(),
            format=w.format,
            secret=w.secret.get_secret_value() if w.secret else None,
            routing_key=w.routing_key.get_secret_value() if w.routing_key else None,
            timeout_s=w.timeout.total_seconds(),
            retry_schedule=tuple(wait.total_seconds() for wait in w.retry_schedule),
        )
        for w in settings.webhooks
    ]


def build_flow(
    config: UsageConfig,
    source: Source,
    sinks: Sinks,
    clock: Callable[[], int],
) -> Dataflow:
    flow = Dataflow("burnwatch")
    raw = op.input("read", flow, source)
    usage = meter_usage("meter_usage", raw, config, clock)
    op.output("write_rollups", usage.rollups, sinks.rollups)
    op.output("write_dead_letters", usage.dead_letters, sinks.dead_letters)
    if sinks.dead_letter_topic is not None:
        op.output("produce_dead_letters", usage.dead_letters, sinks.dead_letter_topic)
    if sinks.focus is not None and config.catalog is not None:
        units = {m: p.unit for m, p in config.catalog.meters.items()}
        focus = op.map("focus_lines", usage.closes,
                       lambda kv: (partition_key(shard_of(kv[0]) % config.sink_partitions),
                                   focus_rows(kv[1].rows, config.focus_party, units)))
        op.output("write_focus", focus, sinks.focus)
    if sinks.burn is not None and config.burn is not None:
        spend = track_spend("track_spend", usage.closes, config)
        op.output("write_burn", spend.burn, sinks.burn)
        op.output("write_ledger", spend.ledger, sinks.ledger)
        op.output("deliver_alerts", spend.alerts, sinks.alerts)
    return flow
