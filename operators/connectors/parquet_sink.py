"""An idempotent Parquet sink for any fsspec URL (a folder, ``s3://``, ...).

Each sink partition writes numbered files::

    <out>/<dataset>/date=YYYY-MM-DD/part-<run_key>-<partition>-<seq>.parquet

``run_key`` names the input (a hash of the replayed files, or the Kafka
topic), so the same input always maps to the same names. The partition's
snapshot holds its next ``seq`` and the rows it has buffered but not yet
written, in the same Bytewax snapshot as the dedupe keys and windows that
produced them. When a partition starts, it deletes its own files numbered
``seq`` or later: they were written after the snapshot it resumes from (or,
on a fresh start, by an earlier run of the same input), and the rows in them
will be produced again. So a crash and resume, or a second replay of the same
input, replaces files instead of adding to them.

Rows are batched: a file is written when ``rows_per_file`` rows are buffered,
at end of input, and (in always-on mode) when the oldest buffered row has
waited ``max_delay_s``. A failed write is retried with capped exponential
backoff for as long as it takes; the rows stay in the buffer (and in the
snapshot) meanwhile.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import date, timedelta
from typing import Any

import fsspec
import pyarrow.parquet as pq
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from fsspec.implementations.local import LocalFileSystem

from operators import metrics
from operators.records import partition_key
from operators.schemas import Dataset

log = logging.getLogger(__name__)

_EPOCH_DATE = date(1970, 1, 1)


class ParquetSink(FixedPartitionedSink[list[tuple], tuple[int, list[tuple]]]):
    """Takes ``(partition_key(i), [row, ...])`` items."""

    def __init__(
        self,
        out_url: str,
        dataset: Dataset,
        *,
        run_key: str,
        partitions: int,
        rows_per_file: int = 200_000,
        max_delay_s: float | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.fs, root = fsspec.core.url_to_fs(out_url, **(storage_options or {}))
        self.root = f"{root.rstrip('/')}/{dataset.name}"
        self.dataset = dataset
        self.run_key = run_key
        self.partitions = partitions
        self.rows_per_file = rows_per_file
        self.max_delay_s = max_delay_s

    def list_parts(self) -> list[str]:
        return [partition_key(i) for i in range(self.partitions)]

    def part_fn(self, item_key: str) -> int:
        return int(item_key[1:])

    def build_part(
        self, step_id: str, for_part: str, resume_state: tuple[int, list[tuple]] | None
    ) -> _ParquetPartition:
        seq, rows = resume_state if resume_state is not None else (0, [])
        part = _ParquetPartition(self, for_part, seq, list(rows))
        part.remove_files_from(seq)
        return part


class _ParquetPartition(StatefulSinkPartition[list[tuple], tuple[int, list[tuple]]]):
    def __init__(self, sink: ParquetSink, part: str, seq: int, rows: list[tuple]) -> None:
        self.sink = sink
        self.part = part
        self.seq = seq
        self.rows = rows
        self.first_buffered_at = time.monotonic() if rows else None

    def _name(self, seq: int) -> str:
        return f"part-{self.sink.run_key}-{self.part}-{seq:06d}.parquet"

    def remove_files_from(self, seq: int) -> None:
        stale = [path for path, n in self._own_files() if n >= seq]
        for path in stale:
            _retrying(self.sink.dataset.name, self.sink.fs.rm_file, path)  # one literal file
        if stale:
            log.info("removed files written after the snapshot dataset=%s partition=%s files=%d",
                     self.sink.dataset.name, self.part, len(stale))

    def _own_files(self) -> list[tuple[str, int]]:
        """This partition's files and their seq. The root is user input, so it is listed
        and the names filtered here, never handed to a glob (``/data/job-*`` is literal)."""
        fs, root = self.sink.fs, self.sink.root
        prefix = f"part-{self.sink.run_key}-{self.part}-"
        found = []
        for path in _retrying(self.sink.dataset.name, fs.find, root):
            folder, _, name = path.rpartition("/")
            seq = name[len(prefix):-len(".parquet")]
            if (folder.rpartition("/")[0] == root.rstrip("/") and
                    folder.rpartition("/")[2].startswith("date=") and
                    name.startswith(prefix) and name.endswith(".parquet") and seq.isdigit()):
                found.append((path, int(seq)))
        return found

    def write_batch(self, values: list[list[tuple]]) -> None:
        for rows in values:
            self.rows.extend(rows)
        if self.rows and self.first_buffered_at is None:
            self.first_buffered_at = time.monotonic()
        if len(self.rows) >= self.sink.rows_per_file or self._waited_enough():
            self.flush()

    def _waited_enough(self) -> bool:
        delay = self.sink.max_delay_s
        return (
            delay is not None
            and self.first_buffered_at is not None
            and time.monotonic() - self.first_buffered_at >= delay
        )

    def flush(self) -> None:
        if not self.rows:
            return
        ds, fs = self.sink.dataset, self.sink.fs
        by_date: dict[int, list[tuple]] = {}
        for row in self.rows:
            by_date.setdefault(ds.date_of(row), []).append(row)
        name = self._name(self.seq)
        for day, rows in sorted(by_date.items()):
            folder = f"{self.sink.root}/date={_EPOCH_DATE + timedelta(days=day)}"
            _retrying(ds.name, _write_file, fs, folder, name, ds.table(rows))
            metrics.FILES_WRITTEN.labels(ds.name).inc()
        metrics.ROWS_WRITTEN.labels(ds.name).inc(len(self.rows))
        log.info("flushed dataset=%s partition=%s seq=%d rows=%d files=%d",
                 ds.name, self.part, self.seq, len(self.rows), len(by_date))
        self.seq += 1
        self.rows = []
        self.first_buffered_at = None

    def snapshot(self) -> tuple[int, list[tuple]]:
        return (self.seq, list(self.rows))

    def close(self) -> None:
        self.flush()


def _write_file(fs, folder: str, name: str, table) -> None:
    if isinstance(fs, LocalFileSystem):
        # Local: write a hidden temp file (readers skip names starting with '.') and rename,
        # so nobody reads half a file.
        fs.makedirs(folder, exist_ok=True)
        tmp = f"{folder}/.{name}.tmp"
        pq.write_table(table, tmp, filesystem=fs)
        fs.mv(tmp, f"{folder}/{name}")
    else:
        # Object stores make a PUT visible whole.
        pq.write_table(table, f"{folder}/{name}", filesystem=fs)


def _retrying(what: str, fn, *args):
    delay = 0.2
    attempt = 0
    while True:
        try:
            return fn(*args)
        except Exception as ex:  # noqa: BLE001 - any storage error is retried, never dropped
            attempt += 1
            metrics.WRITE_RETRIES.labels(what).inc()
            log.warning("storage call failed, retrying dataset=%s attempt=%d in=%.1fs error=%r",
                        what, attempt, delay, ex)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 30.0)
