"""The anomaly scorer: spikes, level shifts, seasonality, causality, cold start, state."""

import math
import pickle

import numpy as np
import pytest

from operators.alerting.anomaly import AnomalyScorer, ModelConfig, refit_offset
from operators.alerting.anomaly_models import MODELS
from operators.alerting.policy import OPEN, RESOLVE, AlertPolicy, ScoreAlerter
from operators.records import HOUR_US

T0 = 1_767_571_200_000_000  # 2026-01-05T00:00Z, a Monday
WEEKS = 7 * 24


def spend(hours: int, seed: int, level: float = 100.0, noise: float = 0.08,
          df: int | None = 5) -> np.ndarray:
    """Office-hours spend with quieter weekends and noise (heavy-tailed: Student t)."""
    rng = np.random.default_rng(seed)
    t = np.arange(hours)
    daily = 1 + 0.7 * np.cos(2 * np.pi * (t % 24 - 14) / 24)
    weekend = np.where((t // 24) % 7 >= 5, 0.5, 1.0)
    shocks = rng.standard_t(df, hours) if df else rng.standard_normal(hours)
    return level * daily * weekend * np.exp(noise * shocks)


def run(values, model: str = "seasonal_median", scorer: AnomalyScorer | None = None,
        start: int = 0):
    scorer = scorer or AnomalyScorer(ModelConfig(model=model))
    return [scorer.update(T0 + (start + h) * HOUR_US, float(v)) for h, v in enumerate(values)]


def alerts(scores, policy: AlertPolicy | None = None) -> list[tuple[int, int | None]]:
    """(open hour, resolve hour or None) for each alert the default policy raises."""
    alerter, out = ScoreAlerter(policy), []
    for h, s in enumerate(scores):
        ev = alerter.feed("k", s.time_us, s.score, s.impact)
        if ev.kind == OPEN:
            out.append([h, None])
        elif ev.kind == RESOLVE:
            out[-1][1] = h
    return [tuple(a) for a in out]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_a_spike_scores_high_and_its_neighbours_do_not(model):
    values = spend(6 * WEEKS, seed=1)
    values[5 * WEEKS + 30] *= 4
    scores = [s.score for s in run(values, model)]
    assert scores[5 * WEEKS + 30] > 0.95
    assert max(scores[5 * WEEKS : 5 * WEEKS + 30]) < 0.7
    s = run(values, model)[5 * WEEKS + 30]
    assert s.lower < s.expected < s.upper < s.actual
    assert s.impact == pytest.approx(s.actual - s.expected)
    assert s.model == model


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_seasonality_alone_never_alerts_cold_start_included(model, seed):
    scores = run(spend(8 * WEEKS, seed=seed), model)
    assert alerts(scores) == []
    assert [s.model for s in scores[:6]] == ["none"] * 6  # too few points to say anything
    assert scores[30].model == "cold_median" and scores[-1].model == model


def test_a_nightly_batch_spike_and_idle_nights_are_learnt_not_alerted():
    rng = np.random.default_rng(4)
    t = np.arange(6 * WEEKS)
    values = np.where(t % 24 == 2, 800.0, 50.0) * np.exp(0.05 * rng.standard_normal(len(t)))
    values[(t % 24 >= 20) | (t % 24 < 1)] = 0.0  # idle every evening
    scores = run(values)
    assert alerts(scores) == []
    runaway = values.copy()
    runaway[5 * WEEKS + 21 : 5 * WEEKS + 30] += 300.0  # something runs through the idle hours
    opened = alerts(run(runaway))
    assert [o for o, _ in opened] == [5 * WEEKS + 21]


@pytest.mark.parametrize("factor", [2.5, 0.4])
def test_a_legitimate_level_shift_stops_scoring_high_within_a_day(factor):
    values = spend(8 * WEEKS, seed=5, df=None)
    shift = 5 * WEEKS + 10
    values[shift:] *= factor
    scores = run(values)
    late = [s.score for s in scores[shift + 24 :]]
    assert max(late) < 0.7  # adopted within adapt_hours (24 h): no alert after that
    opened = [a for a in alerts(scores, AlertPolicy(direction="both")) if a[0] >= 4 * WEEKS]
    assert opened and opened[0][0] in (shift, shift + 1)  # it does alert at first ...
    assert all(r is not None and r <= shift + 24 for _, r in opened)  # ... and resolves


def test_an_incident_does_not_become_normal_within_hours():
    values = spend(7 * WEEKS, seed=6)
    start = 5 * WEEKS + 9
    values[start : start + 12] *= 4  # a runaway for half a day
    scores = [s.score for s in run(values)]
    assert min(scores[start : start + 12]) > 0.9


def test_a_slow_leak_alerts_within_a_day():
    values = spend(7 * WEEKS, seed=7)
    start = 5 * WEEKS + 3
    values[start : start + 48] += 100.0 * 3 * np.arange(1, 49) / 48  # +3x the mean over 2 days
    opened = alerts(run(values))
    assert opened and start <= opened[0][0] < start + 24


def test_scores_are_causal_appending_never_changes_earlier_scores():
    values = spend(6 * WEEKS, seed=8)
    values[4 * WEEKS + 5] *= 6
    full = [(s.score, s.expected, s.lower, s.upper) for s in run(values)]
    for cut in (30, 24 * 9, 4 * WEEKS + 6, 5 * WEEKS + 17):
        prefix = [(s.score, s.expected, s.lower, s.upper) for s in run(values[:cut])]
        assert prefix == full[:cut]


def test_the_same_shape_scores_the_same_at_any_scale():
    values = spend(6 * WEEKS, seed=9)
    values[5 * WEEKS + 40] *= 5
    small = [s.score for s in run(values * 0.001)]
    large = [s.score for s in run(values * 1000)]
    assert small == pytest.approx(large, abs=1e-6)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_snapshot_and_restore_give_identical_scores(model):
    values = spend(8 * WEEKS, seed=10)
    values[6 * WEEKS :] *= 2  # a level shift to adopt after the restore
    values[7 * WEEKS + 3] *= 5
    config = ModelConfig(model=model)
    offset = refit_offset("tenant-a", config)
    straight = run(values, scorer=AnomalyScorer(config, offset))
    first = AnomalyScorer(config, offset)
    run(values[: 6 * WEEKS - 7], scorer=first)
    state = pickle.loads(pickle.dumps(first.snapshot()))
    again = AnomalyScorer.restore(state, config)
    resumed = run(values[6 * WEEKS - 7 :], scorer=again, start=6 * WEEKS - 7)
    assert resumed == straight[6 * WEEKS - 7 :]
    assert again.shifts  # the shift was adopted after the restore


def test_state_is_bounded_and_plain_data():
    scorer = AnomalyScorer()
    run(spend(6 * WEEKS, seed=11), scorer=scorer)
    size = len(pickle.dumps(scorer.snapshot()))
    run(spend(6 * WEEKS, seed=12), scorer=scorer, start=6 * WEEKS)
    assert len(pickle.dumps(scorer.snapshot())) <= size + 200
    assert size < 12_000
    plain = (int, float, str, bytes, list, type(None), bool)
    assert all(isinstance(v, plain) for v in scorer.snapshot().values())


def test_missing_points_score_zero_and_gaps_are_filled():
    values = spend(6 * WEEKS, seed=13, df=None)
    scorer = AnomalyScorer()
    out = []
    for h, v in enumerate(values):
        if 4 * WEEKS <= h < 4 * WEEKS + 5:
            continue  # five hours never arrive
        out.append(scorer.update(T0 + h * HOUR_US, None if h == 5 * WEEKS else float(v)))
    missing = [s for s in out if math.isnan(s.actual)]
    assert len(missing) == 1 and missing[0].score == 0.0 and missing[0].model == "none"
    assert alerts(out) == []


def test_time_must_increase():
    scorer = AnomalyScorer()
    scorer.update(T0, 1.0)
    with pytest.raises(ValueError, match="time must increase"):
        scorer.update(T0, 2.0)


def test_other_intervals_and_periods():
    rng = np.random.default_rng(14)
    five_min = ModelConfig(step_us=300_000_000, period_hours=24)
    assert (five_min.period, five_min.week, five_min.history) == (288, 2016, 35 * 288)
    daily = ModelConfig(step_us=24 * HOUR_US)
    assert (daily.period, daily.week, daily.cold_window) == (0, 7, 7)
    t = np.arange(3 * 2016)
    values = 10 + 3 * np.sin(2 * np.pi * t / 288) + rng.standard_normal(len(t)) * 0.3
    values[2 * 2016 + 100] += 6
    scorer = AnomalyScorer(five_min)
    scores = [scorer.update(T0 + i * 300_000_000, v).score for i, v in enumerate(values)]
    assert scores[2 * 2016 + 100] > 0.9
    assert sum(s > 0.7 for s in scores[288 * 3 :]) <= 3


def _same(a, b) -> bool:
    from dataclasses import astuple

    return all(x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
               for x, y in zip(astuple(a), astuple(b), strict=True))


@pytest.mark.parametrize("seed", range(4))
def test_a_lazy_scorer_scores_exactly_as_the_scorer_it_defers(seed):
    from operators.alerting.anomaly import LazyScorer

    cfg = ModelConfig()
    rng = np.random.default_rng(seed)
    eager, lazy = AnomalyScorer(cfg, 7), LazyScorer(cfg, 7)
    k = 0
    for i in range(400):
        # Gaps (filled as missing points), missing values, a restart after a gap longer
        # than the history, late restatements, and a snapshot round trip now and then.
        k += int(rng.choice([1, 1, 1, 2, 5])) if i != 200 else cfg.history + 3
        value = None if rng.random() < 0.1 else float(rng.gamma(2.0, 50.0))
        assert _same(eager.update(k * HOUR_US, value), lazy.update(k * HOUR_US, value))
        if value is not None and rng.random() < 0.2:
            t = k * HOUR_US
            assert _same(eager.rescore(t, 3 * value), lazy.rescore(t, 3 * value))
        if rng.random() < 0.05:
            lazy = LazyScorer.restore(pickle.loads(pickle.dumps(lazy.snapshot())), cfg)
    with pytest.raises(ValueError, match="time must increase"):
        lazy.update(k * HOUR_US, 1.0)


def test_a_lazy_scorer_holds_a_few_points_until_one_can_be_scored():
    from operators.alerting.anomaly import MIN_POINTS, LazyScorer

    lazy = LazyScorer(ModelConfig(), 0)
    for h in range(MIN_POINTS):
        assert lazy.update(h * HOUR_US, 1.0).model == "none"
    assert lazy.scorer is None and len(pickle.dumps(lazy.snapshot())) < 200
    assert lazy.update(MIN_POINTS * HOUR_US, 1.0).model != "none"
    assert lazy.scorer is not None
