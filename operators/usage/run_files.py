"""Large dedupe runs as files beside the recovery store, named by the snapshots.

Bytewax snapshots a step's whole state every epoch (10 s by default). The dedupe
index of an id shard is most of the job's state (20 bytes a key: 100 million keys
are 2 GB), but its runs never change once made (operators/usage/dedupe.py). So a run of
at least ``inline_below`` keys is written to a file once, at the first snapshot
that holds it, and every later snapshot only names it; smaller runs stay inline.
What a snapshot writes is then the runs made since the previous one, not the index.

A file must outlive every snapshot that names it and that Bytewax may still resume
from. Bytewax 0.21's sources do not read epoch ``e`` until the recovery data of
every epoch before it is written (src/inputs.rs, the probe on the recovery clock),
and this step takes a snapshot only in an epoch that brought it items. So when it
takes one at ``e``, a resume starts at ``e`` or later and loads the one before it
or a later one. The exception is the end of input: the last snapshot can come one
epoch after the last read, where a resume may still need the third newest. So a
file is deleted once none of the last ``keep`` (3) snapshots names it; files found
at start are kept as long (a crashed execution may have left a snapshot after the
resume point that names them, and Bytewax may load it later).

Layout: ``DIR/<id shard>/run-<random>.npz``, one directory per id shard, written
only by the one logic that owns the shard.
"""

from __future__ import annotations

import os
import secrets
import weakref
import zipfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from operators.usage.dedupe import Run, inline_runs

KEEP_SNAPSHOTS = 3
_FIELDS = Run._fields
_FILE = "file"  # tags a run file in a snapshot: ("file", shard, name, keys)


@dataclass(frozen=True)
class RunFileConfig:
    directory: Path  # beside the recovery store, on the same volume
    inline_below: int  # keys: a smaller run is snapshotted inline (setting dedupe_file_keys)


class RunRef(NamedTuple):
    """A run in a file, as a snapshot names it (as a plain tagged tuple)."""

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
        # id(run.ids) -> (ref, weak ref to run.ids): the weak ref tells a reused id apart
        # without keeping a run that was merged away in memory.
        self._written: dict[int, tuple[RunRef, weakref.ref]] = {}
        self._recent: deque[set[str]] = deque(maxlen=keep)
        self._mine: set[str] = set()  # names written, read or found here: the ones to collect

    def save(self, shard: int, runs: list[Run]) -> list[tuple]:
        """What a snapshot holds for ``runs``: a file's name for each large run, written if
        new, and the small runs themselves."""
        self._bind(shard)
        out: list[tuple] = []
        written = {}
        for run in runs:
            known = self._written.get(id(run.ids))
            if known is not None and known[1]() is run.ids:
                ref = known[0]
            elif len(run.ids) >= self.inline_below:
                ref = self._write(run)
            else:
                out.append(tuple(run))
                continue
            written[id(run.ids)] = (ref, weakref.ref(run.ids))
            out.append((_FILE, *ref))
        self._written = written  # runs merged away are let go; their files wait below
        self._recent.append({ref.name for ref, _ in written.values()})
        self._collect()
        return out

    def load(self, items: list) -> list[Run]:
        """The runs a snapshot names (read from their files) or holds."""
        runs = []
        for item in items:
            if not (isinstance(item[0], str) and item[0] == _FILE):
                runs.extend(inline_runs([item]))
                continue
            ref = RunRef(*item[1:])
            self._bind(ref.shard)
            run = self._read(ref)
            self._written[id(run.ids)] = (ref, weakref.ref(run.ids))
            self._mine.add(ref.name)
            runs.append(run)
        return runs

    def _bind(self, shard: int) -> None:
        if self.shard is None:
            self.shard = shard
            self._dir.mkdir(parents=True, exist_ok=True)
            for d in (self._dir.parent.parent, self._dir.parent):  # the new entries, durable
                _fsync_dir(d)
            for tmp in self._dir.glob("run-*.tmp"):  # a write cut short
                tmp.unlink(missing_ok=True)
            # Files found at start are kept like those of a recent snapshot.
            found = {p.name for p in self._dir.glob("run-*.npz")}
            self._mine |= found
            self._recent.append(found)
        elif shard != self.shard:
            raise ValueError(f"run files of id shard {self.shard} asked for shard {shard}")

    @property
    def _dir(self) -> Path:
        return self.directory / str(self.shard)

    def _write(self, run: Run) -> RunRef:
        ref = RunRef(self.shard, f"run-{secrets.token_hex(8)}.npz", len(run.ids))
        path = self._dir / ref.name
        tmp = path.with_suffix(".tmp")
        try:
            with tmp.open("wb") as fh:
                np.savez(fh, **run._asdict())
                fh.flush()
                os.fsync(fh.fileno())  # on disk before the snapshot that names it is committed
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk is not made fuller by every retry
            raise
        _fsync_dir(self._dir)
        self._mine.add(ref.name)
        return ref

    def _read(self, ref: RunRef) -> Run:
        path = self._dir / ref.name  # load() has bound this shard
        try:
            with np.load(path) as npz:
                run = Run(*(npz[f] for f in _FIELDS))
        except FileNotFoundError:
            raise MissingRun(
                f"recovery_dir: the dedupe run {path} named by the snapshot is missing, so "
                "the ids this shard has seen cannot be restored. A recovery directory must be "
                "copied or restored whole, including its dedupe/ folder; with one directory "
                "per process, a change of the worker or process count moves id shards "
                "between processes, and their dedupe/<shard> folders must move with them "
                "(docs/operations.md, 'Rescale')") from None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as ex:  # damaged: CRC, cut
            raise MissingRun(f"recovery_dir: the dedupe run {path} cannot be read: {ex}") from ex
        if not all(len(a) == ref.keys for a in run):
            raise MissingRun(f"recovery_dir: the dedupe run {path} does not hold "
                             f"{ref.keys} keys")
        return run

    def _collect(self) -> None:
        keep = set().union(*self._recent)
        for name in self._mine - keep:
            (self._dir / name).unlink(missing_ok=True)
        self._mine &= keep


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
