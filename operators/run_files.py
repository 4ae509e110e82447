"""Large dedupe runs as files beside the recovery store, named by the snapshots.

Bytewax snapshots a step's whole state every epoch (10 s by default). The dedupe
index of an id shard is most of the job's state (20 bytes a key: 100 million keys
are 2 GB), but its runs never change once made (operators/dedupe.py). So a run of
at least ``inline_below`` keys is written to a file once, at the first snapshot
that holds it, and every later snapshot only names it; smaller runs stay inline.
What a snapshot writes is then the runs made since the previous one, not the index.

A file must outlive every snapshot that names it and that Bytewax may still resume
from. Bytewax's sources do not read an epoch until the recovery data of the one
before it is written, so once this shard has taken ``keep`` more snapshots, a
resume loads one of them or a later one: a file no snapshot among the last
``keep`` names is deleted. Files found at start are kept as long (a crashed
execution may have left snapshots after the resume point that name them).

Layout: ``DIR/<id shard>/run-<random>.npz``, one directory per id shard, written
only by the one logic that owns the shard.
"""

from __future__ import annotations

import os
import secrets
import zipfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from operators.dedupe import Run

KEEP_SNAPSHOTS = 3
_FIELDS = Run._fields


@dataclass(frozen=True)
class RunFileConfig:
    directory: Path  # beside the recovery store, on the same volume
    inline_below: int  # keys: a smaller run is snapshotted inline (setting dedupe_file_keys)


class RunRef(NamedTuple):
    """A run in a file, as a snapshot names it."""

    shard: int
    name: str
    keys: int


class MissingRun(RuntimeError):
    pass


class RunFiles:
    """The run files of one id shard's dedupe index."""

    def __init__(self, config: RunFileConfig, *, keep: int = KEEP_SNAPSHOTS) -> None:
        self.directory = config.directory
        self.inline_below = config.inline_below
        self.shard: int | None = None
        # id(run.ids) -> (ref, run.ids): holding the array keeps its id from being reused
        self._written: dict[int, tuple[RunRef, np.ndarray]] = {}
        self._recent: deque[set[str]] = deque(maxlen=keep)

    def save(self, shard: int, runs: list[Run]) -> list[Run | RunRef]:
        """What a snapshot holds for ``runs``: a ref for each large run, written if new."""
        self._bind(shard)
        out: list[Run | RunRef] = []
        written = {}
        for run in runs:
            known = self._written.get(id(run.ids))
            if known is not None and known[1] is run.ids:
                ref = known[0]
            elif len(run.ids) >= self.inline_below:
                ref = self._write(run)
            else:
                out.append(run)
                continue
            written[id(run.ids)] = (ref, run.ids)
            out.append(ref)
        self._written = written  # runs merged away are let go; their files wait below
        self._recent.append({ref.name for ref, _ in written.values()})
        self._collect()
        return out

    def load(self, items: list) -> list[Run]:
        """The runs a snapshot names (refs read from their files, inline runs as they are)."""
        runs = []
        for item in items:
            if not isinstance(item, RunRef):
                runs.append(Run(*item))
                continue
            self._bind(item.shard)
            run = self._read(item)
            self._written[id(run.ids)] = (item, run.ids)
            runs.append(run)
        return runs

    def _bind(self, shard: int) -> None:
        if self.shard is None:
            self.shard = shard
            self._dir.mkdir(parents=True, exist_ok=True)
            # Files found at start are kept like those of a recent snapshot.
            self._recent.append({p.name for p in self._dir.glob("run-*.npz")})
        elif shard != self.shard:
            raise ValueError(f"run files of id shard {self.shard} asked for shard {shard}")

    @property
    def _dir(self) -> Path:
        return self.directory / str(self.shard)

    def _write(self, run: Run) -> RunRef:
        ref = RunRef(self.shard, f"run-{secrets.token_hex(8)}.npz", len(run.ids))
        path = self._dir / ref.name
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, **run._asdict())
            fh.flush()
            os.fsync(fh.fileno())  # on disk before the snapshot that names it is committed
        os.replace(tmp, path)
        _fsync_dir(self._dir)
        return ref

    def _read(self, ref: RunRef) -> Run:
        path = self.directory / str(ref.shard) / ref.name
        try:
            with np.load(path) as npz:
                run = Run(*(npz[f] for f in _FIELDS))
        except FileNotFoundError:
            raise MissingRun(
                f"recovery_dir: the dedupe run {path} named by the snapshot is missing, so "
                "the ids this shard has seen cannot be restored (a recovery directory must "
                "be copied or restored whole, including its dedupe/ folder)") from None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as ex:  # damaged: CRC, cut
            raise MissingRun(f"recovery_dir: the dedupe run {path} cannot be read: {ex}") from ex
        if not all(len(a) == ref.keys for a in run):
            raise MissingRun(f"recovery_dir: the dedupe run {path} does not hold "
                             f"{ref.keys} keys")
        return run

    def _collect(self) -> None:
        keep = set().union(*self._recent)
        for path in self._dir.glob("run-*"):
            if path.name not in keep:
                path.unlink(missing_ok=True)


def inline_runs(items: list) -> list[Run]:
    """The runs of a snapshot taken without run files (``load`` when there is no directory)."""
    if any(isinstance(item, RunRef) for item in items):
        raise MissingRun("recovery_dir: the snapshot names dedupe run files, but this job "
                         "was started without a directory for them")
    return [Run(*item) for item in items]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
