"""The ``burnwatch`` command."""

from __future__ import annotations

import ctypes
import gc
import gzip
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.text import Text

from flows.settings import ConfigError, load_settings

app = typer.Typer(
    help="burnwatch: usage metering on Bytewax. Parse, dedupe, window, roll up; Parquet out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Millions of short-lived containers and no reference cycles of our own: with the
# default thresholds (700, 10, 10) the cyclic GC cost ~23% of a run (docs/throughput.md).
GC_THRESHOLDS = (100_000, 50, 1000)
# glibc serves a large block from the heap once the dynamic mmap threshold has grown, and
# a heap keeps what it frees: the dedupe index's merged runs and the snapshot copies of it
# then pile up. A fixed 1 MiB threshold gives every large block back when it is freed
# (10 M keys, `run`: peak RSS 808-1,014 -> 823-850 MiB, docs/throughput.md).
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="YAML config file (see README)", show_default=False)
]
WebhookUrlOpt = Annotated[
    str | None, typer.Option("--webhook-url", help="Add a Standard Webhooks receiver for alerts")
]
WebhookSecretOpt = Annotated[
    str | None, typer.Option("--webhook-secret", help="Its signing secret, whsec_...")
]


def _warn_if_threads(workers: int) -> None:
    if workers > 1:
        logging.getLogger("burnwatch").warning(
            "--workers %d: worker threads share Python's GIL, and two measured slower than "
            "one (docs/throughput.md); to use more cores, use processes (run --processes N)",
            workers)


def _settings(config: Path | None, url: str | None, secret: str | None, **overrides):
    """Settings, plus the one `standard` webhook the shortcut flags describe."""
    from pydantic import ValidationError

    from flows.settings import WebhookSettings

    settings = load_settings(config, **overrides)
    if url is None and secret is None:
        return settings
    if url is None or secret is None:
        raise ConfigError("--webhook-url and --webhook-secret go together")
    try:
        hook = WebhookSettings(name="cli", url=url, format="standard", secret=secret)
    except ValidationError as ex:
        raise ConfigError("--webhook-secret: must be a whsec_... secret") from ex
    return settings.model_copy(update={"webhooks": [*settings.webhooks, hook]})


@app.callback()
def _main(
    log_level: Annotated[str, typer.Option(help="Python log level")] = "WARNING",
) -> None:
    configure_logging(log_level)
    gc.set_threshold(*GC_THRESHOLDS)
    _fix_mmap_threshold()


class OneLineFormatter(logging.Formatter):
    """One line per record: a tenant or meter name with a newline cannot forge a log line,
    and a traceback stays with its record (line breaks and controls written as escapes)."""

    def format(self, record: logging.LogRecord) -> str:
        from operators.alerting.escape import one_line

        return one_line(super().format(record))


def configure_logging(log_level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        OneLineFormatter("%(asctime)s %(levelname)s [%(process)d] %(name)s %(message)s"))
    logging.basicConfig(level=log_level.upper(), handlers=[handler])


def _fix_mmap_threshold() -> None:
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    except (OSError, AttributeError):  # not glibc: its own allocator's policy applies
        pass


@app.command()
def generate(
    out_file: Annotated[Path, typer.Option("--out", help="JSONL file to write (.gz compresses)")],
    tenants: Annotated[int, typer.Option(min=1, help="Number of tenants")] = 50,
    hours: Annotated[int, typer.Option(min=1, help="Hours of traffic, ending at this hour")] = 168,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same stream)")] = 7,
    rate: Annotated[float, typer.Option(min=0, help="Mean events per tenant-hour")] = 60.0,
    dup_rate: Annotated[float, typer.Option(min=0, max=1, help="Share sent twice")] = 0.01,
    conflict_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share re-sent with other content")
    ] = 0.001,
    late_rate: Annotated[float, typer.Option(min=0, max=1, help="Share arriving late")] = 0.01,
    bad_rate: Annotated[float, typer.Option(min=0, max=1, help="Share of bad records")] = 0.001,
    end: Annotated[
        datetime | None, typer.Option(help="End of the last hour, UTC (default: this hour)")
    ] = None,
) -> None:
    """Write a realistic usage stream in arrival order, and a manifest of what was injected."""
    from flows.synthetic import GeneratorConfig

    cfg = GeneratorConfig(
        tenants=tenants, hours=hours, seed=seed, events_per_tenant_hour=rate, dup_rate=dup_rate,
        conflict_rate=conflict_rate, late_rate=late_rate, bad_rate=bad_rate,
        end=end.replace(tzinfo=UTC) if end is not None and end.tzinfo is None else end,
    )
    manifest = write_stream(cfg, out_file)
    out.print(f"wrote {manifest.lines:,} lines to {out_file} (manifest: {manifest_path(out_file)})")


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def write_stream(cfg, path: Path):
    from flows.synthetic import Manifest
    from flows.synthetic import generate as gen

    manifest = Manifest()
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as fh, Progress(console=console, transient=True) as progress:
        task = progress.add_task("generating", total=cfg.hours + 1)
        for _, lines in gen(cfg, manifest):
            if lines:
                fh.write(b"\n".join(lines) + b"\n")
            progress.advance(task)
    manifest_path(path).write_bytes(manifest.to_json())
    return manifest


@app.command()
def replay(
    files: Annotated[list[Path], typer.Argument(help="JSONL files (plain or .gz), read in order")],
    out_url: Annotated[str | None, typer.Option("--out", help="Output folder or s3:// URL")] = None,
    window: Annotated[str | None, typer.Option(help="Window size, e.g. 1m")] = None,
    allowed_lateness: Annotated[str | None, typer.Option(help="e.g. 5m")] = None,
    config: ConfigOpt = None,
    workers: Annotated[int, typer.Option(min=1, help="Bytewax worker threads")] = 1,
    webhook_url: WebhookUrlOpt = None,
    webhook_secret: WebhookSecretOpt = None,
) -> None:
    """Run the usage flow over files and exit, printing a summary."""
    from flows.replay import replay as run_replay

    _warn_if_threads(workers)
    settings = _settings(config, webhook_url, webhook_secret, out=out_url, window=window,
                         allowed_lateness=allowed_lateness)
    summary = run_replay(settings, files, workers=workers)
    out.print("\n".join(summary.lines()), markup=False, highlight=False)
    out.print(f"output            {settings.out}", markup=False, highlight=False)
    if summary.unreadable:
        # Everything readable is processed and written; the exit says the input was not whole.
        raise typer.Exit(_fail(f"error: input not read to its end: {'; '.join(summary.unreadable)}",
                               1))


@app.command()
def run(
    brokers: Annotated[str, typer.Option(help="Kafka bootstrap servers, HOST:PORT[,...]")],
    topic: Annotated[str, typer.Option(help="Topic of usage events")],
    recovery_dir: Annotated[
        Path, typer.Option(help="Bytewax recovery store: created if absent, resumed if present")
    ],
    out_url: Annotated[str | None, typer.Option("--out", help="Output folder or s3:// URL")] = None,
    config: ConfigOpt = None,
    workers: Annotated[int, typer.Option(min=1, help="Bytewax worker threads")] = 1,
    processes: Annotated[
        int, typer.Option(min=1, help="Local processes (of --workers threads each): "
                          "the way to use more cores")
    ] = 1,
    until_end: Annotated[
        bool, typer.Option("--until-end", help="Stop once every partition is drained")
    ] = False,
    process_id: Annotated[
        int | None, typer.Option("-i", "--process-id", help="This process's index in a cluster")
    ] = None,
    addresses: Annotated[
        str | None,
        typer.Option("-a", "--addresses", help="Cluster: every process's HOST:PORT, ';'-separated"),
    ] = None,
    webhook_url: WebhookUrlOpt = None,
    webhook_secret: WebhookSecretOpt = None,
) -> None:
    """Consume a topic for ever (or --until-end), with exactly-once effect on the output."""
    settings = _settings(config, webhook_url, webhook_secret, out=out_url)
    _warn_if_threads(workers)
    if (process_id is None) != (addresses is None):
        raise ConfigError("--process-id and --addresses go together (a cluster needs both)")
    if processes > 1:
        if addresses is not None:
            raise ConfigError("--processes starts a local cluster; it does not go with -i/-a")
        from flows.local_cluster import start_local_cluster  # light: children import the flow

        rc = start_local_cluster(settings, sys.argv[1:], processes=processes, workers=workers,
                                 recovery_dir=recovery_dir)
        raise typer.Exit(rc if rc >= 0 else 128 - rc)
    from flows.run import run_job

    run_job(settings, brokers=brokers, topic=topic, recovery_dir=recovery_dir, workers=workers,
            until_end=until_end, process_id=process_id,
            addresses=addresses.split(";") if addresses else None)


@app.command()
def score(
    period_hours: Annotated[
        float | None, typer.Option(help="Seasonal period in hours (0: none); weekly is added")
    ] = 24.0,
    model: Annotated[str, typer.Option(help="seasonal_median or stl")] = "seasonal_median",
) -> None:
    """Read CSV `timestamp,value` on stdin; write one anomaly score in [0, 1] per row.

    Each score uses only that row and earlier ones: the same model code as the dataflow.
    """
    from flows.score import score_csv

    try:
        for value in score_csv(sys.stdin, period_hours, model=model):
            sys.stdout.write(f"{value:.6f}\n")
    except ValueError as ex:
        raise ConfigError(f"input: {ex}") from ex


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for input and output")] = Path(
        "burnwatch-demo"
    ),
    tenants: Annotated[
        int, typer.Option(min=8, help="Tenants in the synthetic week (fewer: a quicker demo)")
    ] = 50,
) -> None:
    """Generate a synthetic week, replay it, show an alert, and where the output is."""
    import pyarrow.dataset as ds

    from flows.demo import run_demo

    _, summary, settings = run_demo(out_dir, write_stream, out.print, tenants=tenants)
    out.print("\n".join("    " + line for line in summary.lines()))
    root = Path(settings.out).resolve()
    alerts = ds.dataset(root / "alerts", partitioning="hive").to_table().sort_by("at")
    out.print("\nAlerts (also in alerts/):")
    for a in alerts.to_pylist():
        out.print(f"  {a['at']:%Y-%m-%d %H:%M} {a['action']:8} {a['severity']:6} {a['summary']}",
                  highlight=False, markup=False)
    rollups = f"read_parquet('{root}/rollups/**/*.parquet', hive_partitioning=true)"
    dead = f"read_parquet('{root}/dead_letter/**/*.parquet', hive_partitioning=true)"
    out.print(
        "\nQuery it with DuckDB (pip install duckdb):\n"
        "  import duckdb\n"
        '  duckdb.sql("""SELECT tenant, sum(cost) AS cost, sum(events) AS events\n'
        f"    FROM {rollups}\n"
        '    GROUP BY ALL ORDER BY cost DESC LIMIT 10""").show()\n'
        f'  duckdb.sql("SELECT reason, count(*) FROM {dead} GROUP BY ALL").show()',
        highlight=False, markup=False,
    )


def main() -> None:
    try:
        app()
    except ConfigError as ex:
        sys.exit(_fail(f"error: {ex}", 2))


def _fail(message: str, code: int) -> int:
    """Print one line to stderr, whatever the text holds (no markup, no raw line breaks)."""
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    console.print(Text(line, style="red"), soft_wrap=True)
    return code


if __name__ == "__main__":
    main()
