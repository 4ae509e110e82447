"""Seasonal profiles that the anomaly scorer refits on a schedule.

A model here answers one question: given the transformed history ``u`` (oldest
first, its last point at absolute step ``k_end``, adopted level shifts already
taken out), what is the seasonal offset of each phase? It returns a profile
indexed by phase::

    profile[k % len(profile)]      (an empty profile: no seasonality)

It sees the points as they were, incidents included, so it must be robust
across cycles: a one-off incident is to be ignored, a pattern that recurs
every cycle (a nightly batch job) learnt. Level, cold start, level
shifts and everything online live in ``operators.alerting.anomaly``, and the forecast's
spread (the same for every model) at the end of this module, so the families
below are compared on the one thing they do differently.

* ``seasonal_median`` (NumPy; the default): the robust baseline. Each cycle (a
  week once there are two, else a day) minus its own median; the profile is the
  median over the cycles of each phase: the median of the same hour of the week
  over the last five weeks.
* ``stl`` (statsmodels): multi-seasonal STL, the MSTL scheme of Bandara et al.
  (daily STL, then weekly STL on what is left), robust (bisquare weights, three
  outer passes), seasonal LOESS of degree 0 and LOESS jumps of ~10% of each
  window. Five weeks of hourly points fit in a few milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

ProfileFit = Callable[[np.ndarray, int, Sequence[int]], np.ndarray]

MAD_TO_SIGMA = 1.4826
SIGMA_FLOOR = 0.01  # in transformed units
TAIL_Q = 0.95  # sigma is widened until this quantile of errors sits at its normal 1.96

STL_ROUNDS = 1  # MSTL passes over the periods (its default, 2, doubles the cost)


def _by_phase(last_cycle: np.ndarray, k_end: int) -> np.ndarray:
    """Re-index the last ``p`` fitted values (ending at step k_end) by phase k % p."""
    p = len(last_cycle)
    return np.roll(last_cycle, (k_end - p + 1) % p)


def _odd(x: float) -> int:
    n = math.ceil(x)
    return n if n % 2 else n + 1


def _stl_seasonal(u: np.ndarray, period: int) -> np.ndarray:
    from statsmodels.tsa.seasonal import STL  # imported when used: it takes a second

    # Defaults of the original STL, with LOESS evaluated every ~10% of a window
    # and interpolated between (statsmodels' jumps): 3-4x faster, same shape.
    trend = _odd(1.5 * period / (1 - 1.5 / 7))
    low_pass = _odd(period + 1)
    fit = STL(
        u,
        period=period,
        trend=trend,
        low_pass=low_pass,
        robust=True,
        seasonal_deg=0,  # a local mean across cycles: with 2-5 weekly cycles a local line
        # through them interpolates the data and extrapolates its noise
        trend_jump=max(1, trend // 10),
        low_pass_jump=max(1, low_pass // 10),
    ).fit(inner_iter=1, outer_iter=3)
    return np.asarray(fit.seasonal)


def stl(u: np.ndarray, k_end: int, periods: Sequence[int]) -> np.ndarray:
    if not periods:
        return np.zeros(0)
    seasonal = {p: np.zeros_like(u) for p in periods}
    rest = u.copy()
    for _ in range(STL_ROUNDS if len(periods) > 1 else 1):
        for p in periods:
            rest += seasonal[p]
            seasonal[p] = _stl_seasonal(rest, p)
            rest -= seasonal[p]
    longest = max(periods)
    total = sum(s[-longest:] for s in seasonal.values())
    return _by_phase(total, k_end)


def seasonal_median(u: np.ndarray, k_end: int, periods: Sequence[int]) -> np.ndarray:
    if not periods:
        return np.zeros(0)
    p = max(periods)
    cycles = len(u) // p
    block = u[len(u) - cycles * p :].reshape(cycles, p)
    block = block - np.median(block, axis=1, keepdims=True)  # a level shift is not seasonal
    return _by_phase(np.median(block, axis=0), k_end)


MODELS: dict[str, ProfileFit] = {"stl": stl, "seasonal_median": seasonal_median}


# -- the spread of the forecast, and idle phases: the same for every model ------------------


@dataclass(frozen=True)
class Spread:
    sigma: float  # of the forecast error, transformed units
    shared: float  # share of sigma^2 that a day's points have in common (the level's)
    gain: float  # of an online level update (0: the level moves at refits only)


def robust_sigma(r: np.ndarray) -> float:
    """MAD about zero; half the mean absolute deviation if more (ties: counts, zeros)."""
    if not r.size:
        return 1.0
    a = np.abs(r)
    return max(MAD_TO_SIGMA * float(np.median(a)), 0.5 * 1.2533 * float(a.mean()), SIGMA_FLOOR)


def forecast_spread(u: np.ndarray, d: np.ndarray, period: int, day: int, level_n: int) -> Spread:
    """Forecast sigma from the data alone (an in-sample fit may interpolate them).

    Noise: each point's change from its predecessor, less the same change a period
    earlier, cancels level, trend and season (a shift or an incident is a few
    outliers)::

        e_t = (u_t - u_t-1) - (u_t-p - u_t-p-1)        var(e) = 4 var(noise)

    widened for heavy tails. The forecast is further off, by its profile (a median of
    K cycles), its level (a median of level_n points) and the drift of the level over
    the day it is used for (the spread of the change in the daily medians of the
    deseasonalised points ``d``, beyond what their own noise explains)::

        sigma^2 = noise^2 (1 + pi/2/K + pi/2/level_n) + drift^2
    """
    v = u[period:] - u[: len(u) - period] if period else u
    e = np.diff(v)
    if e.size == 0:
        return Spread(1.0, 0.0, 0.0)
    spread = robust_sigma(e)
    tail = max(1.0, float(np.quantile(np.abs(e), TAIL_Q)) / (1.96 * spread))
    noise2 = (tail * spread / (2 if period else math.sqrt(2))) ** 2
    drift2 = 0.0
    if len(d) >= 4 * day:
        days = np.median(d[len(d) % day :].reshape(-1, day), axis=1)
        drift2 = max(0.0, robust_sigma(np.diff(days)) ** 2 - math.pi * noise2 / day)
    cycles = max(len(u) // period, 1) if period else len(u)
    level2 = noise2 * math.pi / 2 / level_n + drift2
    var = noise2 * (1 + math.pi / 2 / cycles) + level2
    # Local level model: a level drifting by drift2 a day under noise2 a point is best
    # followed with the steady-state Kalman gain of q = drift per point / noise. Spend
    # barely drifts (trends of a few % a month): below one point's noise a day the
    # estimate is mostly incidents and weekly leftovers, and the level stays put.
    q = drift2 / day / noise2 if drift2 > noise2 else 0.0
    return Spread(math.sqrt(var), level2 / var, (math.sqrt(q * q + 4 * q) - q) / 2)


def idle_phases(raw: np.ndarray, k: int, p: int) -> frozenset[int]:
    """Phases (of a p-point profile ending at step k) whose median over cycles is zero."""
    if not p or len(raw) < 2 * p:
        return frozenset()
    cycles = len(raw) // p
    zero = np.median(raw[len(raw) - cycles * p :].reshape(cycles, p), axis=0) == 0
    return frozenset((np.arange(k - p + 1, k + 1) % p)[zero].tolist())
