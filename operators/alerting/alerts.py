"""Alerts: one stable dedup key per condition, a cooldown, and a resolve.

Time here is event time (the watermark), so a replay raises the same alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import xxhash

TRIGGER = "trigger"
RESOLVE = "resolve"


@dataclass(frozen=True)
class Alert:
    alert_id: str  # stable for one occurrence: same id on trigger, resolve and every retry
    dedup_key: str  # kind:tenant:meter
    kind: str
    tenant: str
    meter: str
    severity: str  # page | ticket | warning
    action: str  # trigger | resolve
    opened_at_us: int
    at_us: int  # event time of this action
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def dedup_key(kind: str, tenant: str, meter: str = "*") -> str:
    return f"{kind}:{tenant}:{meter}"


@dataclass
class _Open:
    opened_at_us: int
    alert_id: str


class AlertTracker:
    """Turns a condition evaluated over time into trigger and resolve actions.

    A condition that stays true does not trigger again; once resolved, the same
    key stays quiet for ``cooldown_us`` (so a flapping condition pages once).
    """

    def __init__(self, cooldown_us: int, state: tuple | None = None) -> None:
        self.cooldown_us = cooldown_us
        self.open: dict[str, _Open] = {}
        self.resolved_at: dict[str, int] = {}
        if state is not None:
            self.open = {k: _Open(*v) for k, v in state[0].items()}
            self.resolved_at = dict(state[1])

    def update(self, key: str, condition: bool, now_us: int) -> tuple[str, str, int] | None:
        """(action, alert_id, opened_at) when something changes, else None."""
        current = self.open.get(key)
        if condition and current is None:
            if now_us - self.resolved_at.get(key, -(2**62)) < self.cooldown_us:
                return None
            alert_id = xxhash.xxh3_64_hexdigest(f"{key}@{now_us}".encode())
            self.open[key] = _Open(now_us, alert_id)
            return TRIGGER, alert_id, now_us
        if not condition and current is not None:
            del self.open[key]
            self.resolved_at[key] = now_us
            return RESOLVE, current.alert_id, current.opened_at_us
        return None

    def forget_before(self, time_us: int) -> None:
        for key in [k for k, t in self.resolved_at.items() if t < time_us]:
            del self.resolved_at[key]

    def snapshot(self) -> tuple:
        return (
            {k: (v.opened_at_us, v.alert_id) for k, v in self.open.items()},
            dict(self.resolved_at),
        )
