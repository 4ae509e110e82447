"""Online anomaly scores for one regular series (a tenant's hourly spend, or any other).

One :class:`AnomalyScorer` per series: causal (a point's score uses that point
and earlier ones only), online (one ``update`` per point), bounded (five weeks
of points) and plain data (``snapshot()`` / ``AnomalyScorer.restore``).
At step ``k = round(time / step)``::

    u        = asinh(value / c)             c = 0.3 x the window's median magnitude
    expected = level + profile[k % len(profile)]
    z        = (u - expected) / sigma
    score    = 1 - 2 ** -((z' / 4) ** 2)    0.5 at |z'| = 4 (the band edge), 0.7 at 5.3
    z'       = the largest in size of z and of the mean z over the last 2 h and 12 h,
               each divided by its own standard error (a slow leak adds up)

``asinh(v / c)`` is logarithmic above ``c`` (a three-fold jump counts the same
for a tenant spending cents as for one spending thousands) and linear near
zero, so idle hours, zeros and negative values need no special case.

What it learns, and when:

* **Cold start.** Until two periods (two days, hourly) there is no seasonal
  model: expected is the median of the last period; sigma is twice its MAD, and
  at least the range seen over it divided by 4 (yesterday's batch spike does not
  alert today). Before a whole period has been seen, |z| is capped at 3 (score
  0.43): the first evening peak of a new tenant is not an incident. Then a
  daily profile; the weekly one after two weeks; until then sigma also covers
  the spread of the daily levels seen (a quiet Sunday, then Monday, twice over)
  and the windows of z' are off.
* **Refit on a schedule**, every ``refit_hours`` (a day) at a phase set per
  series (:func:`refit_offset`), so 10,000 series do not all refit in one hour.
  A refit recomputes ``c``; the seasonal ``profile`` (``operators.alerting.anomaly_models``)
  from the points as they were (its models are robust across cycles: a one-off
  incident is ignored, a pattern that recurs is learnt); ``sigma`` from the data
  alone: noise, heavy tails, and how far the level drifts in a day
  (``operators.alerting.anomaly_models.forecast_spread``);
  and ``level``, the median of the last ``level_hours`` deseasonalised
  *winsorised* points, moved by at most one sigma per refit.
* **Between refits** the level stays put, unless the series' level drifts by
  more than a point's noise in a day (a random walk, a temperature; not spend):
  then it follows each point with the steady-state gain of a local level model.
* **Robust to the anomalies themselves.** A point beyond 3 sigma is learnt
  clipped to 3 sigma, and the level moves one sigma a day at most, so an
  incident (or a slow leak) does not become the norm until it is adopted as a
  level shift.
* **Level shifts are adopted** once 75% of the last ``adapt_hours`` (24 h) score
  beyond 3 sigma on the same side: from its first such point on, the shift is
  learnt as it was and remembered (a factor; an offset if the series has
  negative values), the points before it are scaled to the new level when
  fitting, and the model refits. A level shift therefore stops scoring high
  after at most ``adapt_hours`` (18 h when every point is off).
* **Zeros.** A non-negative series is never expected below zero, and a phase
  that was exactly zero in most cycles (idle nights) is expected zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import xxhash

from operators.alerting.anomaly_models import MODELS, forecast_spread, idle_phases, robust_sigma
from operators.records import HOUR_US

DEFAULT_MODEL = "seasonal_median"
SNAPSHOT_VERSION = 1

# The constants (and TAIL_Q in operators.alerting.anomaly_models). None is tuned per series; what
# is per series (c, profile, level, sigma, gain) is estimated from the series itself.
Z_BAND = 4.0  # band edge, in sigmas; score 0.5 there
Z_CLIP = 3.0  # beyond this a point is learnt clipped, and counts toward a level shift
SHIFT_SHARE = 0.75  # share of the adapt window beyond Z_CLIP, one side: a new level
LEVEL_STEP = 1.0  # sigmas a routine refit may move the level
SUSTAIN_HOURS = (2.0, 12.0)  # windows of mean z that also score
TRANSFORM_SCALE = 0.3  # c = this x the median magnitude of the window
COLD_INFLATE = 2.0  # band widening while there is no seasonal model
MIN_POINTS = 6  # no score (and no expected) before this many points


@dataclass(frozen=True)
class ModelConfig:
    """How one series is modelled; hours are converted to points of ``step_us``."""

    model: str = DEFAULT_MODEL
    step_us: int = HOUR_US
    period_hours: float | None = 24.0  # seasonal period; None: none
    weekly: bool = True  # add a 168 h period once there are two weeks of points
    history_hours: float = 35 * 24.0  # rolling window learnt from
    refit_hours: float = 24.0
    adapt_hours: float = 24.0  # a persistent level shift is accepted within this long
    level_hours: float = 12.0  # the level is the median of this many deseasonalised hours

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model: unknown {self.model!r}; one of {sorted(MODELS)}")
        if self.step_us <= 0:
            raise ValueError("step_us: must be positive")
        if self.period_hours is not None and self.period_hours <= 0:
            raise ValueError("period_hours: must be positive")

    def points(self, hours: float) -> int:
        return max(1, round(hours * HOUR_US / self.step_us))

    @property
    def period(self) -> int:
        """Points per seasonal period (0: no seasonality)."""
        if self.period_hours is None:
            return 0
        p = self.points(self.period_hours)
        return p if p >= 2 else 0

    @property
    def week(self) -> int:
        """Points per week, fitted once there are two weeks (0: never).

        On top of the period when it divides a week; alone when the period is
        shorter than two points (daily data).
        """
        p, w = self.period, self.points(168.0)
        if not self.weekly or self.period_hours is None or self.period_hours >= 168:
            return 0
        if w < 2 or (p and w % p):
            return 0
        return w

    @property
    def cold_window(self) -> int:
        """Points of the cold-start median: a period (else a day), at least MIN_POINTS."""
        return max(self.period or self.week or self.points(24.0), MIN_POINTS)

    @cached_property  # asked once per point of every series
    def history(self) -> int:
        """Points learnt from: history_hours, and at least two weeks and four periods."""
        p = self.period or self.points(24.0)
        return max(self.points(self.history_hours), 4 * p, 2 * self.points(168.0))

    def periods(self, n: int) -> tuple[int, ...]:
        """Seasonal periods a fit on ``n`` points can use (two cycles of each)."""
        return tuple(p for p in (self.period, self.week) if p and n >= 2 * p)


@dataclass(frozen=True, slots=True)
class Score:
    time_us: int
    actual: float  # NaN for a missing point
    expected: float  # NaN before MIN_POINTS points
    lower: float  # the band: expected -/+ Z_BAND sigma, in the series' units
    upper: float
    score: float  # 0..1
    impact: float  # actual - expected, in the series' units
    model: str  # what produced expected: seasonal_median | stl | cold_median | none


def refit_offset(key: str, config: ModelConfig) -> int:
    """A stable per-series refit phase, so refits spread evenly over the hours."""
    return xxhash.xxh3_64_intdigest(key.encode()) % config.points(config.refit_hours)


def score_of(z: float) -> float:
    return 1.0 - 2.0 ** (-((z / Z_BAND) ** 2))


def typical_size(values: np.ndarray) -> float:
    """The ``c`` of ``asinh(v / c)``: a fraction of the median magnitude (else the mean)."""
    a = np.abs(values[np.isfinite(values)])
    if a.size == 0:
        return 1.0
    c = float(np.median(a)) or float(a.mean())
    return TRANSFORM_SCALE * c if c > 0 else 1.0


class AnomalyScorer:
    """Scores one series, one point at a time (see the module doc)."""

    def __init__(self, config: ModelConfig | None = None, refit_offset: int = 0) -> None:
        self.config = config = config or ModelConfig()
        self._refit_every = config.points(config.refit_hours)
        self._cold_window = config.cold_window
        self._level_n = config.points(config.level_hours)
        self._adapt_n = config.points(config.adapt_hours)
        self._shift_need = math.ceil(SHIFT_SHARE * self._adapt_n)
        self._windows = tuple(config.points(h) for h in SUSTAIN_HOURS)
        self.offset = refit_offset % self._refit_every
        w = config.history
        self.k_last: int | None = None
        self.n = 0  # points held (at most the history window)
        self.raw = np.full(w, np.nan, np.float32)  # as observed; step k at k % w
        self.clean = np.full(w, np.nan, np.float32)  # winsorised at Z_CLIP: the level's input
        self.flags = np.zeros(self._adapt_n, np.int8)  # +1 / -1 beyond Z_CLIP, else 0
        self.ups = self.downs = 0
        self.recent_z = [0.0] * max(self._windows)  # clipped z; step k at k % len
        # The fit (set by _refit); fitted_model is "" until the first one.
        self.fitted_model = ""
        self.next_refit = 0
        self.c = 1.0
        self.level = 0.0
        self.sigma = 1.0
        self.shared = 0.0  # share of sigma^2 common to a day's points (the level's error)
        self.gain = 0.0  # of the online level update (0: the level moves at refits only)
        self.profile: list[float] = []
        self.idle: frozenset[int] = frozenset()  # phases of the profile expected zero
        self.floor = -math.inf  # lowest expected (transformed): 0 for a non-negative series
        self.mature = False  # every configured period is fitted
        self.shifts: list[tuple[int, float, float]] = []  # adopted: (first step, factor, offset)

    # -- scoring ---------------------------------------------------------------------------

    def update(self, time_us: int, value: float | None) -> Score:
        """Score the point at ``time_us`` (strictly after the last), then learn from it.

        ``value`` None or NaN is a missing point: scored 0 and learnt as its expected
        value. Skipped steps are treated the same way; a gap longer than the history
        starts the series afresh.
        """
        step = self.config.step_us
        k = (time_us + step // 2) // step
        if self.k_last is not None:
            if k <= self.k_last:
                raise ValueError(f"time must increase: step {k} after {self.k_last}")
            if k - self.k_last > len(self.raw):
                self.__init__(self.config, self.offset)  # start afresh
            else:
                for j in range(self.k_last + 1, k):
                    self._fill(j)
        pred = self._predict(k)
        if value is None or not math.isfinite(value):
            self._fill(k)
            exp = math.nan if pred is None else pred[0] * math.sinh(pred[1])
            return Score(time_us, math.nan, exp, math.nan, math.nan, 0.0, math.nan, "none")
        value = float(value)
        if pred is None:
            self.recent_z[k % len(self.recent_z)] = 0.0
            self._learn(k, value, value, 0)
            return Score(time_us, value, math.nan, math.nan, math.nan, 0.0, math.nan, "none")
        c, e, sigma, name = pred
        z = (math.asinh(value / c) - e) / sigma
        zs = self._sustained(k, z)
        if name == "first_period":  # not a whole period seen: today's peak may be daily
            zs = max(-Z_CLIP, min(Z_CLIP, zs))
            name = "cold_median"
        clean = value
        if abs(z) > Z_CLIP:
            clean = c * math.sinh(e + math.copysign(Z_CLIP * sigma, z))
        if self.gain and self.fitted_model:  # a drifting level is followed (winsorised)
            self.level += self.gain * max(-Z_CLIP, min(Z_CLIP, z)) * sigma
        flag = (1 if zs > 0 else -1) if self.fitted_model and abs(zs) > Z_CLIP else 0
        self._learn(k, value, clean, flag)
        return self._score(time_us, value, c, e, sigma, zs, name)

    def rescore(self, time_us: int, value: float) -> Score:
        """Score a corrected value of a point already seen, with the model as it is now.

        Learns nothing: a late correction restates an hour's score, it does not feed
        the series twice.
        """
        pred = self._predict((time_us + self.config.step_us // 2) // self.config.step_us)
        if pred is None or not math.isfinite(value):
            return Score(time_us, value, math.nan, math.nan, math.nan, 0.0, math.nan, "none")
        c, e, sigma, name = pred
        z = (math.asinh(value / c) - e) / sigma
        return self._score(time_us, value, c, e, sigma, z, name)

    def _score(self, time_us, value, c, e, sigma, z, name) -> Score:
        expected = c * math.sinh(e)
        lower = c * math.sinh(max(e - Z_BAND * sigma, self.floor))
        upper = c * math.sinh(e + Z_BAND * sigma)
        return Score(time_us, value, expected, lower, upper, score_of(z), value - expected, name)

    def _predict(self, k: int) -> tuple[float, float, float, str] | None:
        """(c, expected in transformed units, sigma, model name), or None if too few points."""
        if self.fitted_model:
            e = self.level
            if self.profile:
                ph = k % len(self.profile)
                e = 0.0 if ph in self.idle else e + self.profile[ph]
            return self.c, max(e, self.floor), self.sigma, self.fitted_model
        if self.n < MIN_POINTS:
            return None
        m = min(self.n, self._cold_window)
        recent = self.raw[np.arange(self.k_last - m + 1, self.k_last + 1) % len(self.raw)]
        c = typical_size(recent)
        u = np.arcsinh(recent.astype(np.float64) / c)
        e = float(np.median(u))
        sigma = max(COLD_INFLATE * robust_sigma(u - e), float(u.max() - u.min()) / Z_BAND)
        return c, e, sigma, "cold_median" if self.n >= self._cold_window else "first_period"

    def _sustained(self, k: int, z: float) -> float:
        """The point's z, or a window's mean z over its standard error if that is larger.

        The standard error of a mean of w points is sqrt((1 - shared) / w + shared)
        sigmas: the level's error (see ``forecast_spread``) is shared by the whole window;
        w counts at most one point an hour (errors of 5-minute points are correlated).
        """
        rz = self.recent_z
        rz[k % len(rz)] = max(-Z_BAND, min(Z_BAND, z))  # one wild point cannot carry a window
        if not self.mature:
            return z
        best = z
        own = 1.0 - self.shared
        for w, hours in zip(self._windows, SUSTAIN_HOURS, strict=True):
            # At most one independent error an hour: finer data are correlated in time.
            se = math.sqrt(own / min(w, hours) + self.shared)
            zw = sum(rz[(k - i) % len(rz)] for i in range(w)) / w / se
            if abs(zw) > abs(best):
                best = zw
        return best

    def _learn(self, k: int, raw: float, clean: float, flag: int) -> None:
        w, a = len(self.raw), len(self.flags)
        self.raw[k % w] = raw
        self.clean[k % w] = clean
        old = self.flags[k % a]
        self.ups += (flag == 1) - int(old == 1)
        self.downs += (flag == -1) - int(old == -1)
        self.flags[k % a] = flag
        self.n = min(self.n + 1, w)
        self.k_last = k
        if self.fitted_model and max(self.ups, self.downs) >= self._shift_need:
            self._adopt(k)
        elif self.n >= 2 * self._cold_window and (not self.fitted_model or k >= self.next_refit):
            self._refit(k)

    def _fill(self, k: int) -> None:
        """A missing point: learnt as its expected value (or the last value)."""
        pred = self._predict(k)
        if pred is not None:
            value = pred[0] * math.sinh(pred[1])
        elif self.k_last is not None:
            value = float(self.raw[self.k_last % len(self.raw)])
        else:
            return
        self.recent_z[k % len(self.recent_z)] = 0.0
        self._learn(k, value, value, 0)

    # -- learning --------------------------------------------------------------------------

    def _refit(self, k: int, adopting: bool = False) -> None:
        cfg = self.config
        steps = np.arange(k - self.n + 1, k + 1)
        seen = self.raw[steps % len(self.raw)].astype(np.float64)
        raw = seen.copy()
        clean = self.clean[steps % len(self.raw)].astype(np.float64)
        # Bring the points before each adopted shift to the level after it (by its factor,
        # or its offset for a series with negative values): the profile and the noise are
        # then learnt as if the level had always been today's.
        self.shifts = [x for x in self.shifts if x[0] > steps[0]]
        for s, factor, offset in self.shifts:
            before = slice(0, s - steps[0])
            raw[before] = raw[before] * factor + offset
            clean[before] = clean[before] * factor + offset
        c = typical_size(raw)
        u = np.arcsinh(raw / c)
        u_clean = np.arcsinh(clean / c)
        periods = cfg.periods(self.n)
        profile = MODELS[cfg.model](u, k, periods) if periods else np.zeros(0)
        season = profile[steps % len(profile)] if len(profile) else 0.0
        spread = forecast_spread(u, u - season, max(periods, default=0),
                                 cfg.period or self._cold_window, self._level_n)
        sigma, self.shared, self.gain = spread.sigma, spread.shared, spread.gain
        deseasoned = u_clean - season
        level = float(np.median(deseasoned[-self._level_n :]))
        mature = not cfg.week or cfg.week in periods
        if mature and not self.mature:  # a new model: forget the daily-only one's flags,
            self.flags[:] = 0  # and let its level be what the data say
            self.ups = self.downs = 0
            adopting = True
        self.mature = mature
        if not self.mature and cfg.period:
            # A weekly pattern may exist but cannot be fitted yet: the band covers twice
            # the spread of the daily levels seen so far (a quiet Sunday, then Monday).
            p = cfg.period
            days = np.median((u - season)[len(u) % p :].reshape(-1, p), axis=1)
            sigma = max(sigma, 2 * float(days.max() - days.min()) / Z_BAND)
        if self.fitted_model and not adopting:
            # What the old fit expected of the same points, deseasonalised by the new one.
            tail = steps[-self._level_n :]
            old = np.full(len(tail), self.level)
            if self.profile:
                old += np.asarray(self.profile)[tail % len(self.profile)]
            new_season = season[-self._level_n :] if len(profile) else 0.0
            was = float(np.median(np.arcsinh(self.c * np.sinh(old) / c) - new_season))
            level = min(max(level, was - LEVEL_STEP * sigma), was + LEVEL_STEP * sigma)
        self.c = c
        self.profile = profile.tolist()
        self.idle = idle_phases(seen, k, len(profile))
        self.floor = 0.0 if seen.min() >= 0 else -math.inf
        self.level = level
        self.sigma = sigma
        self.fitted_model = cfg.model
        self.next_refit = k + 1 + (self.offset - k - 1) % self._refit_every

    def _adopt(self, k: int) -> None:
        """Accept a persistent shift from its first flagged point on: learn those points
        as they were, remember the shift (see ``_refit``), and refit."""
        w, a = len(self.raw), len(self.flags)
        window = np.arange(k - min(a, self.n) + 1, k + 1)
        sign = 1 if self.ups >= self._shift_need else -1
        start = int(window[np.argmax(self.flags[window % a] == sign)])
        seg = np.arange(start, k + 1)
        if self.mature:  # before that, a "shift" may be the weekly pattern not yet fitted
            after = self.raw[seg % w].astype(np.float64)
            prof = np.asarray(self.profile)
            e = self.level + (prof[seg % len(prof)] if len(prof) else 0.0)
            before = self.c * np.sinh(np.maximum(e, self.floor))  # what was expected
            # A non-negative series (spend: more or less of the same usage) shifts by a
            # factor; a series with negative values, by an offset.
            if self.floor == 0.0 and np.median(before) > 0:
                self.shifts.append((start, float(np.median(after) / np.median(before)), 0.0))
            else:
                self.shifts.append((start, 1.0, float(np.median(after - before))))
        self.clean[seg % w] = self.raw[seg % w]
        self.flags[:] = 0
        self.ups = self.downs = 0
        self.recent_z = [0.0] * len(self.recent_z)
        self._refit(k, adopting=True)

    # -- state -----------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """Plain data (numbers, strings, bytes, lists): pickles, and outlives NumPy versions."""
        return {
            "version": SNAPSHOT_VERSION,
            "offset": self.offset,
            "k_last": self.k_last,
            "n": self.n,
            "raw": self.raw.tobytes(),
            "clean": self.clean.tobytes(),
            "flags": self.flags.tobytes(),
            "recent_z": list(self.recent_z),
            "fitted_model": self.fitted_model,
            "next_refit": self.next_refit,
            "c": self.c,
            "level": self.level,
            "sigma": self.sigma,
            "shared": self.shared,
            "gain": self.gain,
            "profile": np.asarray(self.profile, np.float64).tobytes(),
            "idle": sorted(self.idle),
            "floor": self.floor,
            "mature": self.mature,
            "shifts": [list(s) for s in self.shifts],
        }

    @classmethod
    def restore(cls, state: dict, config: ModelConfig | None = None) -> AnomalyScorer:
        """The scorer a snapshot was taken of; ``config`` must be the one it ran with."""
        if state.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"anomaly snapshot version {state.get('version')!r} not supported")
        self = cls(config, state["offset"])
        if len(state["raw"]) != self.raw.nbytes or len(state["flags"]) != self.flags.nbytes:
            raise ValueError("anomaly snapshot: its windows differ from this config's")
        self.k_last, self.n = state["k_last"], state["n"]
        self.raw = np.frombuffer(state["raw"], np.float32).copy()
        self.clean = np.frombuffer(state["clean"], np.float32).copy()
        self.flags = np.frombuffer(state["flags"], np.int8).copy()
        self.ups = int((self.flags == 1).sum())
        self.downs = int((self.flags == -1).sum())
        self.recent_z = list(state["recent_z"])
        self.fitted_model = state["fitted_model"]
        self.next_refit = state["next_refit"]
        self.c, self.level, self.sigma = state["c"], state["level"], state["sigma"]
        self.shared, self.gain = state["shared"], state["gain"]
        self.profile = np.frombuffer(state["profile"], np.float64).tolist()
        self.idle = frozenset(state["idle"])
        self.floor = state["floor"]
        self.mature = state["mature"]
        self.shifts = [(int(s), float(f), float(o)) for s, f, o in state["shifts"]]
        return self


class LazyScorer:
    """An :class:`AnomalyScorer` created only once its series can be scored.

    Until a point would be predicted (``MIN_POINTS`` steps held), a scorer scores
    every point 0 with no expected value and only stores it; this keeps those few
    points instead (bytes, not the scorer's kilobytes of windows) and replays them
    into a scorer when the next one would be predicted, so every score is the same.
    """

    __slots__ = ("config", "offset", "points", "k_last", "n", "scorer")

    def __init__(self, config: ModelConfig | None = None, refit_offset: int = 0) -> None:
        self.config = config or ModelConfig()
        self.offset = refit_offset
        self.points: list[tuple[int, float | None]] = []  # updates not yet replayed
        self.k_last: int | None = None  # what the scorer's k_last and n would be
        self.n = 0
        self.scorer: AnomalyScorer | None = None

    def update(self, time_us: int, value: float | None) -> Score:
        if self.scorer is not None:
            return self.scorer.update(time_us, value)
        step = self.config.step_us
        k = (time_us + step // 2) // step
        n = self.n
        if self.k_last is not None:
            if k <= self.k_last:
                raise ValueError(f"time must increase: step {k} after {self.k_last}")
            if k - self.k_last > self.config.history:  # the scorer would start afresh
                self.points, self.k_last, n = [], None, 0
            else:
                n += k - self.k_last - 1  # each skipped step is learnt as a missing point
        if n >= MIN_POINTS:  # this point is predicted: from here on, the scorer itself
            return self._scorer().update(time_us, value)
        finite = value is not None and math.isfinite(value)
        if finite or self.k_last is not None:  # a missing first point is nothing to learn
            self.points.append((time_us, value))
            self.k_last, self.n = k, n + 1
        actual = float(value) if finite else math.nan
        return Score(time_us, actual, math.nan, math.nan, math.nan, 0.0, math.nan, "none")

    def rescore(self, time_us: int, value: float) -> Score:
        if self.scorer is not None or self.n >= MIN_POINTS:
            return self._scorer().rescore(time_us, value)
        return Score(time_us, value, math.nan, math.nan, math.nan, 0.0, math.nan, "none")

    def _scorer(self) -> AnomalyScorer:
        if self.scorer is None:
            self.scorer = AnomalyScorer(self.config, self.offset)
            for t, v in self.points:
                self.scorer.update(t, v)
            self.points = []
        return self.scorer

    def snapshot(self) -> dict:
        if self.scorer is not None:
            return self.scorer.snapshot()
        return {"pending": list(self.points), "offset": self.offset}

    @classmethod
    def restore(cls, state: dict, config: ModelConfig | None = None) -> LazyScorer:
        """From its own snapshot, or from an :class:`AnomalyScorer`'s."""
        if "pending" not in state:
            self = cls(config, state["offset"])
            self.scorer = AnomalyScorer.restore(state, config)
            return self
        self = cls(config, state["offset"])
        for t, v in state["pending"]:
            self.update(t, v)
        return self
