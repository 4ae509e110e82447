"""The always-on job: a Kafka topic through the usage flow into Parquet, with recovery."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main
from prometheus_client import start_http_server

from flows.outputs import output_sinks
from flows.replay import check_output, wall_clock_us
from flows.settings import ConfigError, Settings
from flows.usage import build_flow, usage_config
from operators.kafka_dlq import KafkaDeadLetterSink
from operators.kafka_source import KafkaBatchSource

log = logging.getLogger(__name__)

RUN_KEY_FILE = "burnwatch-run-key"


def open_recovery_store(directory: Path, partitions: int, run_key: str | None = None) -> str:
    """Create the Bytewax recovery store if there is none; return its run key.

    The run key names the output files of this store's job. A resumed job keeps
    it (so it replaces what it wrote after its last snapshot); a new store gets
    a new one, so a fresh job never deletes files an earlier job wrote.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / RUN_KEY_FILE
    has_store = any(directory.glob("part-*.sqlite3"))
    if has_store and key_file.is_file():
        stored = key_file.read_text().strip()
        if run_key is not None and run_key != stored:
            raise ConfigError(f"run_key: {run_key!r} differs from {stored!r} in {directory}")
        return stored
    if has_store:
        raise ConfigError(f"recovery_dir: {directory} holds a store not made by burnwatch")
    init_db_dir(directory, partitions)
    key = run_key or secrets.token_hex(6)
    key_file.write_text(key + "\n")
    log.info("created recovery store dir=%s partitions=%d run_key=%s", directory, partitions, key)
    return key


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
    check_output(settings.out, settings.storage_options)
    processes = len(addresses) if addresses else 1
    run_key = open_recovery_store(recovery_dir, workers * processes, settings.run_key)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_addr)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_addr, settings.metrics_port)
    max_delay = None if until_end else settings.max_file_delay.total_seconds()

    dlq = KafkaDeadLetterSink(brokers, settings.dead_letter_topic or f"{topic}.dlq",
                              settings.kafka)
    sinks = output_sinks(settings, run_key=run_key, max_delay_s=max_delay, dead_letter_topic=dlq)
    source = KafkaBatchSource(brokers, topic, until_end=until_end, client_config=settings.kafka)
    # A backfill (--until-end) follows event time only, so it is deterministic;
    # the always-on job also lets the wall clock close idle windows.
    flow = build_flow(
        usage_config(settings, follow_wall_clock=not until_end), source, sinks, wall_clock_us
    )
    cli_main(
        flow,
        workers_per_process=workers,
        process_id=process_id,
        addresses=addresses,
        epoch_interval=settings.epoch_interval,
        recovery_config=RecoveryConfig(str(recovery_dir)),
    )
