"""The always-on job: a Kafka topic through the usage flow into Parquet, with recovery."""

from __future__ import annotations

import logging
from pathlib import Path

from bytewax.recovery import RecoveryConfig
from bytewax.run import cli_main
from prometheus_client import start_http_server

from flows.local_cluster import wait_for_go, wait_for_predecessors
from flows.output_check import check_output
from flows.outputs import output_sinks
from flows.replay import wall_clock_us
from flows.settings import ConfigError, Settings
from flows.store import DEDUPE_RUNS, fixed_settings, open_recovery_store
from flows.usage import build_flow, usage_config
from operators.connectors.kafka_dlq import KafkaDeadLetterSink
from operators.connectors.kafka_source import KafkaBatchSource

log = logging.getLogger(__name__)


def run_job(
    settings: Settings,
    *,
    brokers: str,
    topic: str,
    recovery_dir: Path,
    workers: int = 1,
    until_end: bool = False,
    process_id: int | None = None,
    addresses: list[str] | None = None,
) -> None:
    launched = wait_for_go()  # a process of `run --processes N`: its parent made the store
    if not launched:  # and checked the output
        check_output(settings.out, settings.storage_options)
    processes = len(addresses) if addresses else 1
    if processes > 1 and settings.run_key is None:
        raise ConfigError(f"run_key: a cluster of {processes} processes needs one run key "
                          "shared by all of them (set run_key or BURNWATCH_RUN_KEY)")
    run_key = open_recovery_store(recovery_dir, workers * processes, settings.run_key,
                                  process_id=process_id or 0, processes=processes,
                                  fixed=fixed_settings(settings))
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_addr)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_addr, settings.metrics_port)
    max_delay = None if until_end else settings.max_file_delay.total_seconds()

    dlq = KafkaDeadLetterSink(brokers, settings.dead_letter_topic or f"{topic}.dlq",
                              settings.kafka)
    sinks = output_sinks(settings, run_key=run_key, max_delay_s=max_delay, dead_letter_topic=dlq,
                         keep_pending_alerts=True)
    source = KafkaBatchSource(brokers, topic, until_end=until_end, client_config=settings.kafka,
                              workers=workers * processes)
    # A backfill (--until-end) follows event time only, so it is deterministic;
    # the always-on job also lets the wall clock close idle windows.
    flow = build_flow(
        usage_config(settings, follow_wall_clock=not until_end,
                     dedupe_run_dir=recovery_dir / DEDUPE_RUNS),
        source, sinks, wall_clock_us,
    )
    if launched and addresses:
        wait_for_predecessors(addresses[:process_id or 0])
    cli_main(
        flow,
        workers_per_process=workers,
        process_id=process_id,
        addresses=addresses,
        epoch_interval=settings.epoch_interval,
        recovery_config=RecoveryConfig(str(recovery_dir)),
    )
