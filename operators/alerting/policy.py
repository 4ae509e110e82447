"""When a score opens an alert, and when the alert resolves.

Generic: keyed by a dedup key string, fed a score in [0, 1] and an impact
(actual - expected, in money or whatever the series counts). Per key::

    closed --(score >= open_at and impact on the alerting side >= min_impact
              and cooldown since the last resolve has passed)--> open
    open   --(score < resolve_below or impact on the other side)--> closed

``resolve_below < open_at`` is the hysteresis: a score hovering around one
threshold does not flap. ``min_impact`` keeps tenants spending cents from
paging anyone. ``direction`` says which side alerts: ``up`` (spend above
expected, the default for cost), ``down`` or ``both``. Open alerts, alert ids
and the cooldown are :class:`operators.alerting.alerts.AlertTracker`'s, so these alerts
share ids and semantics with the burn-rate ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from operators.alerting.alerts import TRIGGER, AlertTracker
from operators.records import HOUR_US

OPEN = "open"
RESOLVE = "resolve"
NONE = "none"
DIRECTIONS = ("up", "down", "both")


@dataclass(frozen=True)
class AlertPolicy:
    open_at: float = 0.7  # |z| >= 5.3 with operators.alerting.anomaly's score
    resolve_below: float = 0.4  # |z| < 2.9
    min_impact: float = 0.0
    cooldown_us: int = 6 * HOUR_US
    direction: str = "up"

    def __post_init__(self) -> None:
        if not 0.0 <= self.resolve_below < self.open_at <= 1.0:
            raise ValueError("alert policy: need 0 <= resolve_below < open_at <= 1")
        if self.min_impact < 0 or self.cooldown_us < 0:
            raise ValueError("alert policy: min_impact and cooldown must be >= 0")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"alert policy: direction must be one of {DIRECTIONS}")

    def signed(self, impact: float) -> float:
        """Impact as seen from the alerting side (positive: alerting side)."""
        if self.direction == "up":
            return impact
        if self.direction == "down":
            return -impact
        return abs(impact)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    kind: str  # open | resolve | none
    key: str
    time_us: int
    score: float
    impact: float
    alert_id: str | None = None  # stable for one occurrence: same on open and resolve
    opened_at_us: int | None = None


class ScoreAlerter:
    """Applies an :class:`AlertPolicy` to a stream of (key, time, score, impact)."""

    def __init__(self, policy: AlertPolicy | None = None, state: tuple | None = None) -> None:
        self.policy = policy or AlertPolicy()
        self.tracker = AlertTracker(self.policy.cooldown_us, state)

    def feed(self, key: str, time_us: int, score: float, impact: float) -> AlertEvent:
        if not (math.isfinite(score) and math.isfinite(impact)):
            return AlertEvent(NONE, key, time_us, score, impact)  # a missing point changes nothing
        p = self.policy
        side = p.signed(impact)
        if key in self.tracker.open:
            active = score >= p.resolve_below and side > 0
        else:
            active = score >= p.open_at and side > 0 and side >= p.min_impact
        change = self.tracker.update(key, active, time_us)
        if change is None:
            return AlertEvent(NONE, key, time_us, score, impact)
        action, alert_id, opened_at = change
        kind = OPEN if action == TRIGGER else RESOLVE
        return AlertEvent(kind, key, time_us, score, impact, alert_id, opened_at)

    def is_open(self, key: str) -> bool:
        return key in self.tracker.open

    def forget_before(self, time_us: int) -> None:
        """Drop cooldowns of alerts resolved before ``time_us`` (bounded state)."""
        self.tracker.forget_before(time_us)

    def snapshot(self) -> tuple:
        return self.tracker.snapshot()
