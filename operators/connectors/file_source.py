"""Read JSONL files (plain or .gz) in order, a chunk of lines per item.

The resume state is (file index, byte offset, next line number), so a
resumed run continues after the last line of the last snapshot.

A file that cannot be read to its end (truncated or corrupt gzip, a read
error) does not stop the others: the lines read before the failure go on as
usual, the failure is logged and kept in ``JsonlSource.failures`` as
(file, first line not read, error), and reading goes on with the next file.
The entry point turns a non-empty list into a non-zero exit.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from operators import metrics
from operators.records import RawBatch

log = logging.getLogger(__name__)

_State = tuple[int, int, int]  # file index, byte offset, next 1-based line number


def _open(path: str) -> BinaryIO:
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # noqa: SIM115


# What reading a file can raise part-way: gzip's own errors, zlib's, and the OS's.
_READ_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class ReadFailure:
    path: str
    line: int  # the first line that could not be read (1-based)
    error: str

    def __str__(self) -> str:
        return f"{self.path}: cannot read from line {self.line}: {self.error}"


class JsonlSource(FixedPartitionedSource[RawBatch, _State]):
    def __init__(self, paths: Sequence[str | Path], lines_per_batch: int = 10_000) -> None:
        self.paths = [str(p) for p in paths]
        self.lines_per_batch = lines_per_batch
        self.failures: list[ReadFailure] = []

    def list_parts(self) -> list[str]:
        return ["files"]  # one partition: files are read in the order given

    def build_part(self, step_id: str, for_part: str, resume_state: _State | None):
        return _JsonlPartition(self.paths, self.lines_per_batch, resume_state or (0, 0, 1),
                               self.failures)


class _JsonlPartition(StatefulSourcePartition[RawBatch, _State]):
    def __init__(self, paths: list[str], lines_per_batch: int, state: _State,
                 failures: list[ReadFailure]) -> None:
        self.paths = paths
        self.failures = failures
        self.lines_per_batch = lines_per_batch
        self.file_index, self.offset, self.line_no = state
        self.fh: BinaryIO | None = None

    def _file(self) -> BinaryIO | None:
        while self.fh is None:
            if self.file_index >= len(self.paths):
                return None
            try:
                self.fh = _open(self.paths[self.file_index])
                self.fh.seek(self.offset)
            except _READ_ERRORS as ex:
                self._give_up(self.line_no, ex)
        return self.fh

    def _give_up(self, line: int, ex: BaseException) -> None:
        """Record that this file stops here, and move on to the next one."""
        failure = ReadFailure(self.paths[self.file_index], line, str(ex) or type(ex).__name__)
        log.error("cannot read file=%r line=%d error=%r; going on with the next file",
                  failure.path, failure.line, failure.error)
        self.failures.append(failure)
        if self.fh is not None:
            self.fh.close()
            self.fh = None
        self.file_index += 1
        self.offset, self.line_no = 0, 1

    def next_batch(self) -> list[RawBatch]:
        fh = self._file()
        if fh is None:
            raise StopIteration
        path, first = self.paths[self.file_index], self.line_no
        lines = []
        try:
            for _ in range(self.lines_per_batch):
                line = fh.readline()
                if not line:
                    fh.close()
                    self.fh = None
                    self.file_index += 1
                    self.offset, self.line_no = 0, 1
                    break
                lines.append(line.rstrip(b"\r\n"))
            else:
                self.line_no = first + len(lines)
                self.offset = fh.tell()
        except _READ_ERRORS as ex:
            # The lines before the failure are read: they go on like any others.
            self._give_up(first + len(lines), ex)
        if not lines:
            return []
        metrics.EVENTS_READ.labels(path).inc(len(lines))
        return [RawBatch(lines, path, None, range(first, first + len(lines)))]

    def snapshot(self) -> _State:
        return (self.file_index, self.offset, self.line_no)

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
