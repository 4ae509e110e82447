"""The job warns when the topic's partitions cannot be spread evenly over its workers."""

import pytest

from operators.connectors.kafka_source import uneven_spread


@pytest.mark.parametrize("partitions, workers", [(3, 1), (4, 2), (6, 3), (12, 4), (1, 1)])
def test_an_even_spread_gives_no_warning(partitions, workers):
    assert uneven_spread(partitions, workers) is None


@pytest.mark.parametrize("partitions, workers, most, least", [(3, 2, 2, 1), (5, 4, 2, 1),
                                                              (1, 2, 1, 0), (7, 3, 3, 2)])
def test_an_uneven_spread_says_how_uneven_and_what_to_do(partitions, workers, most, least):
    note = uneven_spread(partitions, workers)
    assert f"{partitions} partitions for {workers} workers" in note
    assert f"some read {most} and some {least}" in note
    assert f"multiple of {workers} partitions" in note
