"""The Bytewax recovery store of a job: made once, checked at every start.

Light on purpose (no dataflow imports): ``run --processes N`` opens the store in
the parent before it starts the processes.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bytewax.recovery import init_db_dir

from flows.settings import ConfigError, Settings

log = logging.getLogger(__name__)

RUN_KEY_FILE = "burnwatch-run-key"
DEDUPE_RUNS = "dedupe"  # the dedupe runs the snapshots name (operators/usage/run_files.py)
STORE_FILE = "burnwatch-store.json"
# Bump when what the operators snapshot changes meaning, so an old store is refused
# rather than misread. 2: content hashes of the columnar parser. 3: closing watermarks
# per partition and per id shard (a format-2 store is read, and marked 3 from then on,
# so that an older burnwatch refuses it instead of failing on the new snapshots).
# 4: large dedupe runs in files that the snapshots name (a format-2 or -3 store is read
# and marked 4 in the same way).
STATE_FORMAT = 4
UPGRADES_FROM = {2, 3}


def fixed_settings(settings: Settings) -> dict[str, object]:
    """Settings a store's state depends on: changing one would misplace or misread it."""
    return {
        "window": str(settings.window),
        "id_shards": settings.id_shards,  # a key in another shard: counted twice
        "window_shards": settings.window_shards,
        "tenant_shards": settings.tenant_shards,
        "sink_partitions": settings.sink_partitions,
    }


def _check_store(directory: Path, fixed: dict[str, object]) -> None:
    path = directory / STORE_FILE
    if not path.is_file():  # a store made before the file existed
        stored = {"state_format": 1}
    else:
        stored = json.loads(path.read_text())
    upgrade = stored.get("state_format") in UPGRADES_FROM
    if not upgrade and stored.get("state_format") != STATE_FORMAT:
        raise ConfigError(
            f"recovery_dir: the store in {directory} has state format "
            f"{stored.get('state_format')}; this burnwatch reads format {STATE_FORMAT}. "
            "Finish that job with the version that made it, or start a new store "
            "(see docs/operations.md, 'Start over')")
    for name, value in fixed.items():
        if stored.get(name) != value:
            raise ConfigError(
                f"{name}: {value} differs from {stored.get(name)} in the store in {directory}; "
                "it is fixed for the life of a store")
    if upgrade:  # only once every check has passed: a refused start leaves the store as it was
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**stored, "state_format": STATE_FORMAT}, indent=1) + "\n")
        os.replace(tmp, path)
        log.info("recovery store %s: state format upgraded to %d", directory, STATE_FORMAT)


def open_recovery_store(
    directory: Path, partitions: int, run_key: str | None = None, *,
    process_id: int = 0, processes: int = 1, fixed: dict[str, object] | None = None,
) -> str:
    """Create the Bytewax recovery store if there is none; return its run key.

    The run key names the output files of this store's job. A resumed job keeps
    it (so it replaces what it wrote after its last snapshot); a new store gets
    a new one, so a fresh job never deletes files an earlier job wrote.

    In a cluster, each process creates only its share of the partitions (index
    modulo ``processes``): with a directory per process each partition exists
    once, and a shared directory ends up with one full set. A directory that has
    the run key file but no partitions (a process added to a cluster) gets none.

    ``fixed`` (see :func:`fixed_settings`) is recorded with the store and must
    match on every later start.
    """
    fixed = fixed or {}
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory / ".burnwatch.lock"):
        key_file = directory / RUN_KEY_FILE
        parts = sorted(directory.glob("part-*.sqlite3"))
        if key_file.is_file():
            key = key_file.read_text().strip()
            if run_key is not None and run_key != key:
                raise ConfigError(f"run_key: {run_key!r} differs from {key!r} in {directory}")
            _check_store(directory, fixed)
        elif parts:
            raise ConfigError(f"recovery_dir: {directory} holds a store not made by burnwatch")
        else:
            key = run_key or secrets.token_hex(6)
        if parts or not key_file.is_file():
            count = _part_count(parts[0]) if parts else partitions
            missing = [i for i in range(process_id, count, processes)
                       if not (directory / f"part-{i}.sqlite3").exists()]
            if missing:
                _create_parts(directory, count, missing)
                log.info("created recovery store dir=%s partitions=%d here=%s run_key=%s",
                         directory, count, missing, key)
        if not key_file.is_file():
            (directory / STORE_FILE).write_text(
                json.dumps({"state_format": STATE_FORMAT, **fixed}, indent=1) + "\n")
            key_file.write_text(key + "\n")  # last: its presence means the store is whole
        return key


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Processes sharing a recovery directory make its store one at a time."""
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _part_count(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        (count,) = con.execute("SELECT part_count FROM parts").fetchone()
    return count


def _create_parts(directory: Path, count: int, indices: list[int]) -> None:
    """Bytewax makes all partitions of a store at once: make them aside, keep ours."""
    scratch = Path(tempfile.mkdtemp(prefix=".init-", dir=directory))
    try:
        init_db_dir(scratch, count)
        for i in indices:
            for f in scratch.glob(f"part-{i}.sqlite3*"):
                os.replace(f, directory / f.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
