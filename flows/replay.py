"""Replay JSONL files through the usage flow into Parquet, and summarise the run."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import xxhash
from bytewax.run import cli_main
from bytewax.testing import run_main

from flows.output_check import check_output
from flows.outputs import output_sinks
from flows.settings import ConfigError, Settings
from flows.usage import build_flow, usage_config
from operators import metrics
from operators.connectors.file_source import JsonlSource
from operators.records import to_us


def wall_clock_us() -> int:
    return to_us(datetime.now(UTC))


@dataclass(frozen=True)
class Summary:
    read: int
    accepted: int
    duplicates: int
    dead_letters: dict[str, int]
    window_rows: int
    correction_rows: int
    files_written: int
    alerts: dict[str, int]
    elapsed_s: float
    unreadable: tuple[str, ...] = ()  # files that could not be read to their end, and where

    @property
    def events_per_s(self) -> float:
        return self.read / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def lines(self) -> list[str]:
        dl = ", ".join(f"{k} {v}" for k, v in sorted(self.dead_letters.items())) or "none"
        return [
            f"records read      {self.read:>12,}",
            f"events counted    {self.accepted:>12,}",
            f"duplicates        {self.duplicates:>12,}",
            f"dead letters      {sum(self.dead_letters.values()):>12,}  ({dl})",
            f"windows written   {self.window_rows:>12,}",
            f"late corrections  {self.correction_rows:>12,}  (rows with revision > 0)",
            f"files written     {self.files_written:>12,}",
            f"alerts            {sum(self.alerts.values()):>12,}  "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.alerts.items())) or 'none'})",
            f"elapsed           {self.elapsed_s:>12.2f} s",
            f"throughput        {self.events_per_s:>12,.0f} records/s",
            *(f"unreadable        {where}" for where in self.unreadable),
        ]


def _counters() -> dict:
    return {
        "read": metrics.total("burnwatch_events_read"),
        "accepted": metrics.total("burnwatch_events_accepted"),
        "duplicates": metrics.total("burnwatch_duplicates"),
        "dead": metrics.by_label("burnwatch_dead_letters", "reason"),
        "rows": metrics.by_label("burnwatch_rollup_rows", "kind"),
        "files": metrics.total("burnwatch_files_written"),
        "alerts": metrics.by_label("burnwatch_alerts", "action"),
    }


def run_key_for(paths: list[Path]) -> str:
    """Names this input in file names, so replaying it again replaces its output."""
    joined = "\n".join(str(p.resolve()) for p in paths)
    return xxhash.xxh3_64_hexdigest(joined.encode())[:12]


def replay(settings: Settings, files: list[Path], *, workers: int = 1) -> Summary:
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ConfigError(f"FILE: no such file: {', '.join(missing)}")
    check_output(settings.out, settings.storage_options)
    source = JsonlSource(files, settings.lines_per_batch)
    flow = build_flow(
        usage_config(settings, follow_wall_clock=False),
        source,
        output_sinks(settings, run_key=run_key_for(files), max_delay_s=None),
        wall_clock_us,
    )
    before = _counters()
    started = time.perf_counter()
    if workers == 1:
        run_main(flow, epoch_interval=settings.epoch_interval)
    else:
        cli_main(flow, workers_per_process=workers, epoch_interval=settings.epoch_interval)
    elapsed = time.perf_counter() - started
    after = _counters()

    def delta(name: str, label: str | None = None) -> int:
        if label is None:
            return int(after[name] - before[name])
        return int(after[name].get(label, 0) - before[name].get(label, 0))

    return Summary(
        read=delta("read"),
        accepted=delta("accepted"),
        duplicates=delta("duplicates"),
        dead_letters={r: n for r in after["dead"] if (n := delta("dead", r))},
        window_rows=delta("rows", "window"),
        correction_rows=delta("rows", "correction"),
        files_written=delta("files"),
        alerts={a: n for a in after["alerts"] if (n := delta("alerts", a))},
        elapsed_s=elapsed,
        unreadable=tuple(str(f) for f in source.failures),
    )
