"""Large dedupe runs are snapshotted as files: written once, named after, deleted late."""

import pickle
import weakref
from pathlib import Path

import numpy as np
import pytest

from operators.records import HOUR_US
from operators.usage.dedupe import DedupeIndex, Run, Verdict, inline_runs
from operators.usage.run_files import MissingRun, RunFileConfig, RunFiles

HORIZON = 48 * HOUR_US
SHARD = 2


def remember(index: DedupeIndex, ids: np.ndarray) -> np.ndarray:
    ids = ids.astype(np.uint64)
    return index.check_and_remember(ids, ids * np.uint64(7), np.zeros(len(ids), np.int64))


def index_of(*sizes: int) -> DedupeIndex:
    """An index fed batches of these sizes, with ids 0, 1, 2, ... in order."""
    index, start = DedupeIndex(HORIZON), 0
    for n in sizes:
        remember(index, np.arange(start, start + n))
        start += n
    return index


def files_at(root: Path, inline_below: int = 1000) -> RunFiles:
    return RunFiles(RunFileConfig(root, inline_below))


def snapshot(index: DedupeIndex, files: RunFiles) -> tuple:
    return pickle.loads(pickle.dumps(index.snapshot(lambda runs: files.save(SHARD, runs))))


def refs(state: tuple) -> list[tuple]:
    """(name, keys) of each run file a snapshot names."""
    return [(item[2], item[3]) for item in state[2] if isinstance(item[0], str)]


def names(state: tuple) -> set[str]:
    return {name for name, _ in refs(state)}


def on_disk(root: Path) -> set[str]:
    return {p.name for p in (root / str(SHARD)).glob("run-*")}


def test_large_runs_are_files_and_a_snapshot_names_them(tmp_path: Path):
    index = index_of(4000, 2000, 100)  # runs of 6,000 and 100 keys
    state = snapshot(index, files_at(tmp_path))
    assert [keys for _, keys in refs(state)] == [6000]
    assert on_disk(tmp_path) == names(state)
    assert len(pickle.dumps(state)) < 10_000 < index.nbytes  # the small run stays inline
    # plain tuples and built-ins only: a store does not depend on class names
    assert b"operators" not in pickle.dumps(state)


def test_a_file_is_written_once(tmp_path: Path):
    index = index_of(4000)
    files = files_at(tmp_path)
    first = snapshot(index, files)
    remember(index, np.arange(10_000, 10_050))  # a small new run; the large one unchanged
    second = snapshot(index, files)
    assert names(second) == names(first)
    assert on_disk(tmp_path) == names(first)


def test_a_restored_run_is_not_written_again(tmp_path: Path):
    state = snapshot(index_of(4000), files_at(tmp_path))
    files = files_at(tmp_path)
    restored = DedupeIndex.restore(state, files.load)
    assert names(snapshot(restored, files)) == names(state) == on_disk(tmp_path)


def test_a_run_merged_away_is_not_kept_in_memory(tmp_path: Path):
    files = files_at(tmp_path)
    index = index_of(4000)
    snapshot(index, files)
    gone = weakref.ref(index._runs[0].ids)
    index._runs = []  # merged away, say: nothing else holds the run now
    assert gone() is None


def test_a_new_run_is_written_even_where_a_freed_one_lived(tmp_path: Path):
    """A run's identity is its array, not its address: a new array at the address of a
    freed one (which CPython reuses) is a new run."""
    files = files_at(tmp_path)
    index = index_of(4000)
    first = snapshot(index, files)
    ((old_ref, _),) = files._written.values()
    ids = np.arange(4000, 8000, dtype=np.uint64)

    class Freed:
        pass

    dead = weakref.ref(Freed())  # what RunFiles holds for a freed array
    assert dead() is None
    files._written = {id(ids): (old_ref, dead)}  # as if ids had taken the freed address
    index._runs = [Run(ids, np.zeros(4000, np.uint64), np.zeros(4000, np.int32))]
    state = snapshot(index, files)
    assert names(state) and not names(state) & names(first)
    restored = DedupeIndex.restore(state, files_at(tmp_path).load)
    assert restored._runs[0].ids.tolist() == ids.tolist()


def test_restored_runs_give_the_same_verdicts(tmp_path: Path):
    index = index_of(3000, 1500, 700, 30)
    state = snapshot(index, files_at(tmp_path, 500))
    assert len(names(state)) == 2
    restored = DedupeIndex.restore(state, files_at(tmp_path).load)
    assert len(restored) == len(index) == 5230
    ids = np.array([0, 2999, 4499, 5199, 5229, 5230, 9999], dtype=np.uint64)
    contents = ids * np.uint64(7)
    contents[1] += np.uint64(1)  # a seen id with other content
    got = restored.check_and_remember(ids, contents, np.zeros(len(ids), np.int64))
    assert got.tolist() == [Verdict.DUPLICATE, Verdict.CONFLICT, Verdict.DUPLICATE,
                            Verdict.DUPLICATE, Verdict.DUPLICATE, Verdict.NEW, Verdict.NEW]


def test_a_run_merged_away_keeps_its_file_for_the_next_snapshots(tmp_path: Path):
    index = index_of(4000)
    files = RunFiles(RunFileConfig(tmp_path, 1000), keep=3)
    old = names(snapshot(index, files))
    remember(index, np.arange(4000, 8000))  # merges into one run of 8,000: a new file
    kept = []
    for _ in range(3):
        state = snapshot(index, files)
        assert not names(state) & old
        kept.append(old <= on_disk(tmp_path))
    # named by the last 3 snapshots: kept through two more, deleted at the third
    assert kept == [True, True, False]
    assert on_disk(tmp_path) == names(state)


def test_files_found_at_start_are_kept_as_long_as_a_snapshot_would_keep_them(tmp_path: Path):
    (tmp_path / str(SHARD)).mkdir()
    stray = tmp_path / str(SHARD) / "run-0123456789abcdef.npz"  # left by a crashed execution
    stray.write_bytes(b"x")
    cut = tmp_path / str(SHARD) / "run-feed.tmp"  # a write a crash cut short
    cut.write_bytes(b"half written")
    index, files = index_of(10), RunFiles(RunFileConfig(tmp_path, 1000), keep=3)
    left = []
    for _ in range(3):
        snapshot(index, files)
        left.append(stray.exists())
        assert not cut.exists()
    assert left == [True, True, False]
    assert on_disk(tmp_path) == set()


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch):
    files = files_at(tmp_path)

    def full_disk(fh, **_arrays):
        fh.write(b"PK part of a run")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match="No space left"):
        snapshot(index_of(4000), files)
    assert (tmp_path / str(SHARD)).is_dir()
    assert on_disk(tmp_path) == set()


def test_a_missing_or_damaged_file_stops_the_restore_with_its_path(tmp_path: Path):
    state = snapshot(index_of(4000), files_at(tmp_path))
    (path,) = (tmp_path / str(SHARD)).glob("run-*.npz")
    whole = path.read_bytes()
    flipped = bytearray(whole)
    flipped[len(whole) // 2] ^= 1  # inside the ids: the zip's CRC no longer matches
    for damaged in [bytes(flipped), whole[:-100]]:
        path.write_bytes(damaged)
        with pytest.raises(MissingRun, match=f"^recovery_dir: the dedupe run {path} cannot"):
            DedupeIndex.restore(state, files_at(tmp_path).load)
    path.unlink()
    with pytest.raises(MissingRun, match=f"{path} named by the snapshot is missing"):
        DedupeIndex.restore(state, files_at(tmp_path).load)


def test_snapshots_without_files_restore_either_way(tmp_path: Path):
    index = index_of(4000, 30)
    inline = pickle.loads(pickle.dumps(index.snapshot()))  # as stores up to format 3 hold
    assert len(DedupeIndex.restore(inline, files_at(tmp_path).load)) == 4030
    assert len(DedupeIndex.restore(inline)) == 4030
    assert inline_runs(inline[2])[0].ids.tolist() == index._runs[0].ids.tolist()
    with_files = snapshot(index, files_at(tmp_path))
    with pytest.raises(ValueError, match="without a directory for them"):
        DedupeIndex.restore(with_files)
