"""The usage dataflow: which steps, in which order, wired to a source and sinks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows.settings import Settings
from operators.admission import AdmissionConfig
from operators.records import duration_us
from operators.steps import UsageConfig, meter_usage


@dataclass(frozen=True)
class Sinks:
    rollups: Sink
    dead_letters: Sink
    dead_letter_topic: Sink | None = None  # a Kafka DLQ, in always-on mode


def usage_config(settings: Settings, *, follow_wall_clock: bool) -> UsageConfig:
    """Plain values for the operators (they never see the settings object)."""
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
        sink_partitions=settings.sink_partitions,
    )


def build_flow(
    config: UsageConfig, source: Source, sinks: Sinks, clock: Callable[[], int]
) -> Dataflow:
    flow = Dataflow("burnwatch")
    raw = op.input("read", flow, source)
    usage = meter_usage("meter_usage", raw, config, clock)
    op.output("write_rollups", usage.rollups, sinks.rollups)
    op.output("write_dead_letters", usage.dead_letters, sinks.dead_letters)
    if sinks.dead_letter_topic is not None:
        op.output("produce_dead_letters", usage.dead_letters, sinks.dead_letter_topic)
    return flow
