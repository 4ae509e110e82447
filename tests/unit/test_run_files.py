"""Large dedupe runs are snapshotted as files: written once, named after, deleted late."""

import pickle
from pathlib import Path

import numpy as np
import pytest

from operators.dedupe import DedupeIndex, Verdict
from operators.records import HOUR_US
from operators.run_files import MissingRun, RunFileConfig, RunFiles, RunRef, inline_runs

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


def snapshot(index: DedupeIndex, files: RunFiles) -> tuple:
    return pickle.loads(pickle.dumps(index.snapshot(lambda runs: files.save(SHARD, runs))))


def names(state: tuple) -> set[str]:
    return {r.name for r in state[2] if isinstance(r, RunRef)}


def on_disk(root: Path) -> set[str]:
    return {p.name for p in (root / str(SHARD)).glob("run-*")}


def test_large_runs_are_files_and_a_snapshot_names_them(tmp_path: Path):
    index = index_of(4000, 2000, 100)  # runs of 6,000 and 100 keys
    files = RunFiles(RunFileConfig(tmp_path, 1000))
    state = snapshot(index, files)
    refs = [r for r in state[2] if isinstance(r, RunRef)]
    assert [r.keys for r in refs] == [6000]
    assert on_disk(tmp_path) == names(state)
    assert len(pickle.dumps(state)) < 10_000 < index.nbytes  # the small run stays inline


def test_a_file_is_written_once(tmp_path: Path):
    index = index_of(4000)
    files = RunFiles(RunFileConfig(tmp_path, 1000))
    first = snapshot(index, files)
    remember(index, np.arange(10_000, 10_050))  # a small new run; the large one unchanged
    second = snapshot(index, files)
    assert names(second) == names(first)
    assert on_disk(tmp_path) == names(first)


def test_restored_runs_give_the_same_verdicts(tmp_path: Path):
    index = index_of(3000, 1500, 700, 30)
    state = snapshot(index, RunFiles(RunFileConfig(tmp_path, 500)))
    assert len(names(state)) == 2
    restored = DedupeIndex.restore(state, RunFiles(RunFileConfig(tmp_path, 1000)).load)
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
    (tmp_path / str(SHARD) / "run-feed.tmp").write_bytes(b"half written")
    index, files = index_of(10), RunFiles(RunFileConfig(tmp_path, 1000), keep=3)
    left = []
    for _ in range(3):
        snapshot(index, files)
        left.append(stray.exists())
    assert left == [True, True, False]
    assert on_disk(tmp_path) == set()


def test_a_missing_or_damaged_file_stops_the_restore_with_its_path(tmp_path: Path):
    state = snapshot(index_of(4000), RunFiles(RunFileConfig(tmp_path, 1000)))
    (path,) = (tmp_path / str(SHARD)).glob("run-*.npz")
    whole = path.read_bytes()
    flipped = bytearray(whole)
    flipped[len(whole) // 2] ^= 1  # inside the ids: the zip's CRC no longer matches
    for damaged in [bytes(flipped), whole[:-100]]:
        path.write_bytes(damaged)
        with pytest.raises(MissingRun, match=f"^recovery_dir: the dedupe run {path} cannot"):
            DedupeIndex.restore(state, RunFiles(RunFileConfig(tmp_path, 1000)).load)
    path.unlink()
    with pytest.raises(MissingRun, match=f"{path} named by the snapshot is missing"):
        DedupeIndex.restore(state, RunFiles(RunFileConfig(tmp_path, 1000)).load)


def test_snapshots_without_files_restore_either_way(tmp_path: Path):
    index = index_of(4000, 30)
    inline = pickle.loads(pickle.dumps(index.snapshot()))
    assert len(DedupeIndex.restore(inline, RunFiles(RunFileConfig(tmp_path, 1000)).load)) == 4030
    assert len(DedupeIndex.restore(inline, inline_runs)) == 4030
    old = (inline[0], inline[1], [tuple(r) for r in inline[2]])  # as stores up to format 3
    assert len(DedupeIndex.restore(old, RunFiles(RunFileConfig(tmp_path, 1000)).load)) == 4030
    with_files = snapshot(index, RunFiles(RunFileConfig(tmp_path, 1000)))
    with pytest.raises(MissingRun, match="without a directory for them"):
        DedupeIndex.restore(with_files, inline_runs)
