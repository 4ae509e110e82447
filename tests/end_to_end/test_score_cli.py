"""`python -m flows.score` as a user runs it, and the library function behind it."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from flows.score import infer_step, parse_time, score_csv


def series_csv(hours: int, step_minutes: int = 60, spike_at: int | None = None,
               numeric: bool = False, seed: int = 3) -> str:
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    per_day = 24 * 60 // step_minutes
    lines = ["timestamp,value"]
    for i in range(hours * 60 // step_minutes):
        day_phase = (i % per_day) / per_day
        value = 50 * (1 + 0.6 * np.sin(2 * np.pi * day_phase)) * np.exp(rng.normal(0, 0.05))
        if i == spike_at:
            value *= 6
        t = t0 + timedelta(minutes=i * step_minutes)
        stamp = str(int(t.timestamp())) if numeric else t.strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp},{value:.4f}")
    return "\n".join(lines) + "\n"


def score_cmd(*args, stdin: str):
    return subprocess.run([sys.executable, "-m", "flows.score", *args], input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_one_score_per_row_in_order_and_the_spike_is_the_highest():
    text = series_csv(24 * 21, spike_at=24 * 17 + 5)
    res = score_cmd("--period-hours", "24", stdin=text)
    assert res.returncode == 0, res.stderr
    scores = [float(x) for x in res.stdout.split()]
    assert len(scores) == len(text.splitlines()) - 1
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert int(np.argmax(scores)) == 24 * 17 + 5 and scores[24 * 17 + 5] > 0.9
    assert sorted(scores)[-2] < 0.7


def test_five_minute_data_with_unix_timestamps():
    text = series_csv(24 * 6, step_minutes=5, spike_at=288 * 5 + 100, numeric=True)
    res = score_cmd(stdin=text)
    assert res.returncode == 0, res.stderr
    scores = [float(x) for x in res.stdout.split()]
    assert int(np.argmax(scores)) == 288 * 5 + 100


def test_details_and_bad_input():
    res = score_cmd("--details", stdin=series_csv(48))
    assert res.returncode == 0
    assert res.stdout.splitlines()[0] == "timestamp,actual,expected,lower,upper,score,impact,model"
    no_time = score_cmd(stdin="value\n1\n")
    assert no_time.returncode == 2 and "timestamp and value" in no_time.stderr
    bad_time = score_cmd(stdin="timestamp,value\n2026-01-01T00:00:00Z,1\nyesterday,2\n")
    assert bad_time.returncode == 2 and "line 3" in bad_time.stderr
    unnamed = score_cmd(stdin="ts,v\n2026-01-01T00:00:00Z,1\n")  # first two columns
    assert unnamed.returncode == 0 and unnamed.stdout == "0.000000\n"


def test_score_csv_is_causal_and_takes_text_or_a_stream():
    import io

    text = series_csv(24 * 16, spike_at=24 * 15)
    full = list(score_csv(text, 24))
    assert list(score_csv(io.StringIO(text), 24)) == full
    lines = text.splitlines(keepends=True)
    for cut in (10, 24 * 3, 24 * 15 + 1):
        assert list(score_csv("".join(lines[: cut + 1]), 24)) == full[:cut]


def test_rows_out_of_order_are_scored_in_time_order_and_written_in_input_order():
    lines = series_csv(24 * 5).splitlines()
    header, rows = lines[0], lines[1:]
    shuffled = rows[::-1]
    forward = list(score_csv("\n".join([header, *rows]), 24))
    backward = list(score_csv("\n".join([header, *shuffled]), 24))
    assert backward == forward[::-1]


def test_missing_values_score_zero():
    text = "timestamp,value\n" + "".join(
        f"2026-01-01T{h:02d}:00:00Z,{'' if h == 7 else 10 + h % 3}\n" for h in range(24))
    scores = list(score_csv(text, 24))
    assert len(scores) == 24 and scores[7] == 0.0


@pytest.mark.parametrize("text,us", [
    ("2026-01-01T00:00:00Z", 1_767_225_600_000_000),
    ("2026-01-01 01:00:00+01:00", 1_767_225_600_000_000),
    ("2026-01-01 00:00:00", 1_767_225_600_000_000),
    ("1767225600", 1_767_225_600_000_000),
    ("1767225600000", 1_767_225_600_000_000),
    ("3", 3 * 3_600_000_000),
])
def test_timestamps(text, us):
    assert parse_time(text) == us


def test_the_step_is_the_median_interval():
    assert infer_step([0, 300_000_000, 600_000_000, 1_500_000_000]) == 300_000_000
    assert infer_step([5]) == 3_600_000_000
