"""The recovery store remembers what its state depends on and refuses a mismatch."""

import json
from pathlib import Path

import pytest

from flows.settings import ConfigError, load_settings
from flows.store import RUN_KEY_FILE, STORE_FILE, fixed_settings, open_recovery_store


def fixed(**over):
    return fixed_settings(load_settings(None, **over))


def test_a_store_resumes_with_the_same_settings_and_keeps_its_run_key(tmp_path: Path):
    key = open_recovery_store(tmp_path, 1, fixed=fixed())
    assert open_recovery_store(tmp_path, 1, fixed=fixed(allowed_lateness="1m")) == key


@pytest.mark.parametrize("setting, value", [("id_shards", 8), ("window_shards", 2),
                                            ("tenant_shards", 3), ("window", "5m"),
                                            ("sink_partitions", 1)])
def test_a_changed_fixed_setting_is_refused_by_name(tmp_path: Path, setting, value):
    open_recovery_store(tmp_path, 1, fixed=fixed())
    with pytest.raises(ConfigError, match=f"^{setting}: .*fixed for the life of a store"):
        open_recovery_store(tmp_path, 1, fixed=fixed(**{setting: value}))


def test_a_store_of_an_older_state_format_is_refused(tmp_path: Path):
    open_recovery_store(tmp_path, 1, fixed=fixed())
    (tmp_path / STORE_FILE).unlink()  # as a store made before the format was recorded
    assert (tmp_path / RUN_KEY_FILE).is_file()
    with pytest.raises(ConfigError, match="^recovery_dir: .*state format 1"):
        open_recovery_store(tmp_path, 1, fixed=fixed())


@pytest.mark.parametrize("old", [2, 3])
def test_a_store_of_a_previous_state_format_is_upgraded_and_marked(tmp_path: Path, old):
    open_recovery_store(tmp_path, 1, fixed=fixed())
    meta = json.loads((tmp_path / STORE_FILE).read_text())
    assert meta["state_format"] == 4
    (tmp_path / STORE_FILE).write_text(json.dumps({**meta, "state_format": old}))
    with pytest.raises(ConfigError, match="^id_shards: "):  # a refused start changes nothing
        open_recovery_store(tmp_path, 1, fixed=fixed(id_shards=8))
    assert json.loads((tmp_path / STORE_FILE).read_text())["state_format"] == old
    open_recovery_store(tmp_path, 1, fixed=fixed())
    # so that a burnwatch that reads only the older format refuses it from now on
    assert json.loads((tmp_path / STORE_FILE).read_text()) == meta

