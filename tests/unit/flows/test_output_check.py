"""The --out check before a job starts: a clear error naming the setting, and no false
alarm when the processes of a cluster check the same output at once."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flows.output_check import check_output
from flows.settings import ConfigError


def test_an_output_that_cannot_be_written_is_refused_by_name(tmp_path: Path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(ConfigError, match="^out: cannot write to"):
        check_output(str(blocker / "out"), {})


def test_processes_checking_one_output_at_once_do_not_trip_each_other(tmp_path: Path):
    out = str(tmp_path / "out")

    def check(_):
        for _ in range(40):
            check_output(out, {})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(check, range(8)))  # re-raises the first ConfigError
    assert list((tmp_path / "out").iterdir()) == []  # every probe removed
