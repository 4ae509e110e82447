"""Read JSONL files (plain or .gz) in order, a chunk of lines per item.

The resume state is (file index, byte offset, next line number), so a
resumed run continues after the last line of the last snapshot.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from operators import metrics
from operators.records import RawBatch

_State = tuple[int, int, int]  # file index, byte offset, next 1-based line number


def _open(path: str) -> BinaryIO:
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # noqa: SIM115


class JsonlSource(FixedPartitionedSource[RawBatch, _State]):
    def __init__(self, paths: Sequence[str | Path], lines_per_batch: int = 10_000) -> None:
        self.paths = [str(p) for p in paths]
        self.lines_per_batch = lines_per_batch

    def list_parts(self) -> list[str]:
        return ["files"]  # one partition: files are read in the order given

    def build_part(self, step_id: str, for_part: str, resume_state: _State | None):
        return _JsonlPartition(self.paths, self.lines_per_batch, resume_state or (0, 0, 1))


class _JsonlPartition(StatefulSourcePartition[RawBatch, _State]):
    def __init__(self, paths: list[str], lines_per_batch: int, state: _State) -> None:
        self.paths = paths
        self.lines_per_batch = lines_per_batch
        self.file_index, self.offset, self.line_no = state
        self.fh: BinaryIO | None = None

    def _file(self) -> BinaryIO | None:
        while self.fh is None:
            if self.file_index >= len(self.paths):
                return None
            self.fh = _open(self.paths[self.file_index])
            self.fh.seek(self.offset)
        return self.fh

    def next_batch(self) -> list[RawBatch]:
        fh = self._file()
        if fh is None:
            raise StopIteration
        path = self.paths[self.file_index]
        lines = []
        for _ in range(self.lines_per_batch):
            line = fh.readline()
            if not line:
                fh.close()
                self.fh = None
                self.file_index += 1
                self.offset, next_line = 0, 1
                break
            lines.append(line.rstrip(b"\r\n"))
        else:
            next_line = self.line_no + len(lines)
            self.offset = fh.tell()
        first = self.line_no
        self.line_no = next_line
        if not lines:
            return []
        metrics.EVENTS_READ.labels(path).inc(len(lines))
        return [RawBatch(lines, path, None, range(first, first + len(lines)))]

    def snapshot(self) -> _State:
        return (self.file_index, self.offset, self.line_no)

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
