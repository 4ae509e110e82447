"""Every configuration error exits 2 with one line naming the setting, before the job starts,
whatever characters the value holds."""

import os
import subprocess
import sys

import pytest


def replay(tmp_path, *args, env=None):
    res = subprocess.run(
        [sys.executable, "-m", "flows.cli", "replay", *args, "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )
    return res


def assert_one_line_naming(res, setting, tmp_path):
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert setting in lines[0], lines[0]
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "o" / "rollups").exists()  # the job never started


@pytest.mark.parametrize(
    ("text", "where"),
    [("out: [unclosed\n", "line 2"), ("window: 5m\n  bad: indent\n", "line 2"),
     ("- a\n- b\n", "mapping")],
)
def test_a_config_file_that_is_not_a_yaml_mapping_is_named(tmp_path, text, where):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    events = tmp_path / "e.jsonl"
    events.write_text("")
    res = replay(tmp_path, str(events), "--config", str(cfg))
    assert_one_line_naming(res, "--config", tmp_path)
    assert where in res.stderr


@pytest.mark.parametrize(("var", "value"), [
    ("BURNWATCH_KAFKA", "{bad"),
    ("BURNWATCH_WEBHOOKS", "["),
    ("BURNWATCH_STORAGE_OPTIONS", "{'single': 'quotes'}"),
    ("BURNWATCH_PRICING", "not json"),
])
def test_bad_json_in_an_environment_variable_names_the_variable(tmp_path, var, value):
    events = tmp_path / "e.jsonl"
    events.write_text("")
    res = replay(tmp_path, str(events), env={var: value})
    assert_one_line_naming(res, var, tmp_path)


def test_a_value_with_markup_and_line_breaks_is_printed_as_one_plain_line(tmp_path):
    # '[red]' was taken as rich markup, '[/x]' crashed the error printer, '\n' split the line.
    name = "in[red]put[/x]\nforged: line.jsonl"
    res = replay(tmp_path, str(tmp_path / name))
    assert_one_line_naming(res, "FILE", tmp_path)
    assert "in[red]put[/x]" in res.stderr


def test_a_bad_value_with_odd_characters_is_named(tmp_path):
    events = tmp_path / "e.jsonl"
    events.write_text("")
    res = replay(tmp_path, str(events), "--window", "5[m]\n")
    assert_one_line_naming(res, "window", tmp_path)


def test_every_bad_setting_is_on_the_one_line(tmp_path):
    events = tmp_path / "e.jsonl"
    events.write_text("")
    res = replay(tmp_path, str(events), env={"BURNWATCH_SINK_PARTITIONS": "0",
                                              "BURNWATCH_ROWS_PER_FILE": "x"})
    assert_one_line_naming(res, "sink_partitions", tmp_path)
    assert "rows_per_file" in res.stderr


@pytest.mark.parametrize(("text", "setting"), [
    ("meters:\n  - {slug: t, event_type: prompt, aggregation: sum, value_property: '$..x'}\n",
     "meters[0] (t).value_property"),
    ("meters:\n  - {slug: t, event_type: prompt, aggregation: median}\n",
     "meters[0] (t).aggregation"),
    ("meters:\n  - {slug: t, event_type: e, aggregation: count, group_by: {u: $.u},"
     " private: [u]}\n", "BURNWATCH_DIMENSION_KEY"),
    ("meters:\n  - {slug: peak, event_type: e, aggregation: max, value_property: $.v}\n"
     "pricing:\n  - {meter: peak, prices: [{unit_price: '1'}]}\n", "pricing[0].meter"),
])
def test_a_bad_meter_definition_is_named(tmp_path, text, setting):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    events = tmp_path / "e.jsonl"
    events.write_text("")
    res = replay(tmp_path, str(events), "--config", str(cfg))
    assert_one_line_naming(res, setting, tmp_path)
