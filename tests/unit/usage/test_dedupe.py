import numpy as np

from operators.records import HOUR_US
from operators.usage.dedupe import DedupeIndex, Verdict

N, D, C = Verdict.NEW, Verdict.DUPLICATE, Verdict.CONFLICT


def check(index, ids, contents, hour=0):
    ids = np.array(ids, dtype=np.uint64)
    return index.check_and_remember(
        ids, np.array(contents, dtype=np.uint64), np.full(len(ids), hour * HOUR_US, np.int64)
    ).tolist()


def test_first_arrival_counts_repeats_are_duplicates_or_conflicts():
    index = DedupeIndex(horizon_us=48 * HOUR_US)
    assert check(index, [1, 2, 1, 1], [10, 20, 10, 11]) == [N, N, D, C]
    # Later batches compare with the first arrival's content, not the last copy's.
    assert check(index, [1, 2, 3, 3], [11, 20, 30, 30]) == [C, D, N, D]
    assert len(index) == 3


def test_matches_a_plain_dict_on_random_batches():
    rng = np.random.default_rng(1)
    index = DedupeIndex(horizon_us=10**18)
    seen: dict[int, int] = {}
    for _ in range(200):
        ids = rng.integers(0, 3000, rng.integers(1, 200)).astype(np.uint64)
        contents = (ids * 7 + (rng.random(len(ids)) < 0.1)).astype(np.uint64)
        got = check(index, ids, contents)
        expected = []
        for i, c in zip(ids.tolist(), contents.tolist(), strict=True):
            if i not in seen:
                seen[i] = c
                expected.append(N)
            else:
                expected.append(D if seen[i] == c else C)
        assert got == expected
    assert len(index) == len(seen)
    assert len(index._runs) <= 2 * np.log2(len(seen)) + 2  # merges keep runs few


def test_keys_are_forgotten_after_the_horizon_and_not_before():
    index = DedupeIndex(horizon_us=2 * HOUR_US)
    check(index, [1], [1], hour=10)
    check(index, [2], [2], hour=11)
    # Bucket 10 ends at 11:00; kept while 11:00 + 2h > watermark.
    assert index.expire(13 * HOUR_US - 1) == 0
    assert index.expire(13 * HOUR_US) == 1
    assert check(index, [1, 2], [1, 2], hour=13) == [N, D]


def test_twenty_bytes_a_key():
    index = DedupeIndex(horizon_us=HOUR_US)
    ids = np.arange(100_000, dtype=np.uint64) * 2654435761
    index.check_and_remember(ids, ids, np.zeros(len(ids), np.int64))
    assert len(index) == 100_000
    assert index.nbytes == 20 * 100_000


def test_snapshot_round_trip_keeps_verdicts():
    index = DedupeIndex(horizon_us=48 * HOUR_US)
    check(index, [5, 6], [1, 1])
    restored = DedupeIndex.restore(index.snapshot())
    assert check(restored, [5, 6, 7], [1, 2, 1]) == [D, C, N]
    # The original is untouched by the restored copy's inserts.
    assert check(index, [7], [1]) == [N]
