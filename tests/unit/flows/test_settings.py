from datetime import timedelta

import pytest

from flows.settings import ConfigError, load_settings


def test_defaults_follow_the_design():
    s = load_settings()
    assert (s.window, s.allowed_lateness, s.max_lateness, s.max_clock_skew, s.dedupe_horizon) == (
        timedelta(minutes=1), timedelta(minutes=5), timedelta(days=7), timedelta(minutes=10),
        timedelta(hours=48),
    )


def test_yaml_then_env_then_flags(tmp_path, monkeypatch):
    cfg = tmp_path / "burnwatch.yaml"
    cfg.write_text("window: 5m\nallowed_lateness: 2m\nout: /from/yaml\n")
    monkeypatch.setenv("BURNWATCH_ALLOWED_LATENESS", "90s")
    s = load_settings(cfg, out="/from/flag")
    assert s.window == timedelta(minutes=5)
    assert s.allowed_lateness == timedelta(seconds=90)
    assert s.out == "/from/flag"


@pytest.mark.parametrize(
    "over, named",
    [
        ({"window": "7m"}, "window"),
        ({"window": "0s"}, "window"),
        ({"allowed_lateness": "-5m"}, "allowed_lateness"),
        ({"id_shards": 0}, "id_shards"),
        ({"dedupe_horizon": "soon"}, "dedupe_horizon"),
    ],
)
def test_bad_values_name_the_setting(over, named):
    with pytest.raises(ConfigError) as err:
        load_settings(None, **over)
    assert named in str(err.value)


def test_unknown_key_in_the_file_is_named(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("windw: 5m\n")
    with pytest.raises(ConfigError, match="windw"):
        load_settings(cfg)


def test_missing_config_file_is_reported():
    with pytest.raises(ConfigError, match="--config"):
        load_settings("/no/such/file.yaml")
