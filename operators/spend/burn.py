"""Per-tenant spend: hourly burn rows, the credit ledger, and burn-rate alerts.

Burn-rate alerts follow the SRE workbook's multi-window, multi-burn-rate
scheme, with a tenant's budget as the error budget::

    sustainable = budget.amount / hours in the budget period   (per hour)
    burn(W)     = cost in the last W / (sustainable * W)

    page    if burn(1h) >= 14.4 and burn(5m)  >= 14.4
         or if burn(6h) >= 6    and burn(30m) >= 6
    ticket  if burn(3d) >= 1    and burn(6h)  >= 1

and only when the long window's spend is at least ``min_cost`` (default 1.00),
so a tiny tenant's one large request does not page anyone.

The short window confirms the long one is still burning, so an alert resolves
soon after the spend stops. Hysteresis: an open alert resolves only once no rule
of its severity burns at ``max(resolve_fraction * factor, 1)`` (0.5 by default,
and never below the sustainable rate), so a runaway that hovers around 14.4 stays
one page instead of paging, resolving and paging again. Rates are evaluated at
every 5-minute boundary of the watermark from 5-minute bins of cost (floats:
alerting needs no cents; every amount written out is a Decimal).

Credits: ``hours_to_exhaustion = credits_remaining / mean hourly cost over the
last 6 hours`` (null when that mean is zero); a ``credits_exhaustion`` alert
opens when it drops below 24 h (both configurable).

A burn row is written when the watermark passes the end of its hour. Cost that
reaches an hour already written restates it: a row with the hour's new total
and a higher ``revision`` (take the highest revision of an hour).
"""

from __future__ import annotations

import calendar
import math
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from decimal import Decimal

from operators.alerting.alerts import RESOLVE, TRIGGER, Alert, AlertTracker, dedup_key
from operators.alerting.anomaly import LazyScorer, ModelConfig, Score, refit_offset
from operators.alerting.policy import OPEN, AlertPolicy, ScoreAlerter
from operators.records import HOUR_US, to_datetime
from operators.spend.ledger import CreditLedger, Grant, LedgerEntry
from operators.spend.pricing import COST_EXPONENT

MINUTE_US = 60_000_000
BIN_US = 5 * MINUTE_US
RING_BINS = 3 * 24 * 12 + 12  # 3 days of 5-minute bins, and an hour to spare
NEVER = -(2**62)


@dataclass(frozen=True)
class BurnRateRule:
    severity: str  # page | ticket
    long_us: int
    short_us: int
    factor: float


DEFAULT_RULES = (
    BurnRateRule("page", HOUR_US, 5 * MINUTE_US, 14.4),
    BurnRateRule("page", 6 * HOUR_US, 30 * MINUTE_US, 6.0),
    BurnRateRule("ticket", 72 * HOUR_US, 6 * HOUR_US, 1.0),
)


@dataclass(frozen=True)
class Budget:
    amount: Decimal
    period: str = "month"  # day | week | month (UTC calendar)

    def hours_at(self, time_us: int) -> int:
        if self.period == "day":
            return 24
        if self.period == "week":
            return 168
        dt = to_datetime(time_us)
        return 24 * calendar.monthrange(dt.year, dt.month)[1]


@dataclass(frozen=True)
class TenantPlan:
    budget: Budget | None = None
    grants: tuple[Grant, ...] = ()


@dataclass(frozen=True)
class BurnConfig:
    plans: dict[str, TenantPlan] = field(default_factory=dict)
    currency: str | None = None
    rules: tuple[BurnRateRule, ...] = DEFAULT_RULES
    exhaustion_within_h: float = 24.0
    forecast_hours: int = 6
    cooldown_us: int = HOUR_US
    max_lateness_us: int = 7 * 24 * HOUR_US
    min_cost: float = 1.0  # a rule fires only on this much spend in its long window
    resolve_fraction: float = 0.5  # hysteresis: an open alert's rules at this share of factor
    anomaly: ModelConfig | None = None  # None: no anomaly scoring
    anomaly_policy: AlertPolicy = AlertPolicy(min_impact=1.0)


@dataclass(slots=True)
class _Tenant:
    # Cost of each 5-minute bin that had any, of the RING_BINS bins up to head_bin, as
    # sorted arrays: a tenant seen once holds one entry rather than 3 days of zeros, and
    # a busy one 16 bytes a bin.
    bin_ids: array = field(default_factory=lambda: array("q"))
    bin_costs: array = field(default_factory=lambda: array("d"))
    head_bin: int = NEVER  # newest bin held
    hours: dict[int, Decimal] = field(default_factory=dict)  # hour start -> total cost
    consumed: dict[int, Decimal] = field(default_factory=dict)  # hour start -> booked to ledger
    dirty: set[int] = field(default_factory=set)  # closed hours with late cost
    ledger: CreditLedger | None = None
    scorer: LazyScorer | None = None  # the tenant's hourly spend model

    def add_bin(self, k: int, cost: float) -> None:
        ids, costs = self.bin_ids, self.bin_costs
        if k > self.head_bin:
            self.head_bin = k
            stale = bisect_right(ids, k - RING_BINS)
            del ids[:stale], costs[:stale]
        if k > self.head_bin - RING_BINS:
            i = bisect_left(ids, k)
            if i < len(ids) and ids[i] == k:
                costs[i] += cost
            else:
                ids.insert(i, k)
                costs.insert(i, cost)

    def cost_between(self, start_bin: int, end_bin: int) -> float:
        """Cost of bins [start_bin, end_bin) still in the ring, summed oldest first."""
        lo = max(start_bin, self.head_bin - RING_BINS + 1)
        hi = min(end_bin, self.head_bin + 1)
        if hi <= lo:
            return 0.0
        ids = self.bin_ids
        return float(sum(self.bin_costs[bisect_left(ids, lo):bisect_left(ids, hi)]))


@dataclass
class BurnOutput:
    burn_rows: list[tuple] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


class BurnBook:
    """The tenants of one shard."""

    def __init__(self, config: BurnConfig, state: tuple | None = None) -> None:
        self.config = config
        self.tenants: dict[str, _Tenant] = {}
        self.budgeted: dict[str, _Tenant] = {}  # the tenants burn rates are evaluated for
        self.closed_bin_us = NEVER  # bins ending at or before this are evaluated
        self.first_us = NEVER  # earliest cost seen before the first advance
        self.closed_hour_us = NEVER  # hours ending at or before this are written
        self.tracker = AlertTracker(config.cooldown_us)
        self.anomalies = ScoreAlerter(config.anomaly_policy)
        self.cost_hours: set[int] = set()  # hours with cost, kept for idle_horizon(config)
        if state is not None:
            (self.closed_bin_us, self.closed_hour_us, self.first_us, tenants, tracker,
             anomalies, *cost_hours) = state
            self.tenants = {name: _restore_tenant(t, config.anomaly)
                            for name, t in tenants.items()}
            self.budgeted = {n: t for n, t in self.tenants.items() if _has_budget(config, n)}
            self.tracker = AlertTracker(config.cooldown_us, tracker)
            self.anomalies = ScoreAlerter(config.anomaly_policy, anomalies)
            # A snapshot from before cost_hours was kept: the hours still held stand in.
            self.cost_hours = (set(cost_hours[0]) if cost_hours
                               else {h for t in self.tenants.values() for h in t.hours})

    def _tenant(self, name: str) -> _Tenant:
        t = self.tenants.get(name)
        if t is None:
            plan = self.config.plans.get(name)
            ledger = CreditLedger(name, list(plan.grants)) if plan and plan.grants else None
            t = self.tenants[name] = _Tenant(ledger=ledger)
            if _has_budget(self.config, name):
                self.budgeted[name] = t
        return t

    def add(self, costs: list[tuple[str, int, Decimal]]) -> None:
        """Costs of rollup rows: (tenant, window_start, cost)."""
        for name, start, cost in costs:
            if self.closed_bin_us == NEVER:
                self.first_us = start if self.first_us == NEVER else min(self.first_us, start)
            t = self._tenant(name)
            t.add_bin(start // BIN_US, float(cost))
            hour = start - start % HOUR_US
            t.hours[hour] = t.hours.get(hour, Decimal(0)) + cost
            self.cost_hours.add(hour)
            if hour + HOUR_US <= self.closed_hour_us:
                t.dirty.add(hour)

    def advance(self, watermark_us: int) -> BurnOutput:
        out = BurnOutput()
        if self.closed_bin_us == NEVER:
            if self.first_us == NEVER:
                return out
            self.closed_bin_us = self.first_us - self.first_us % BIN_US
        target = watermark_us - watermark_us % BIN_US
        while self.closed_bin_us + BIN_US <= target:
            self._skip_idle_hours(target)
            self.closed_bin_us += BIN_US
            now = self.closed_bin_us
            if now % HOUR_US == 0:
                self._close_hour(now, out)
            self._evaluate(now, out)
        return out

    def _skip_idle_hours(self, target: int) -> None:
        """Jump over hours in which nothing can change, so that the work of an advance is
        bounded by the hours that hold cost, not by how far the watermark moved.

        Once no tenant has had cost for ``idle_horizon`` (every rate is zero, every
        alert resolved, every hour past max_lateness), the hours up to the next one
        with cost (or to the watermark's hour) would only repeat zero rows of the
        tenants with a plan: they are not written.
        """
        now = self.closed_bin_us
        if now % HOUR_US or now + HOUR_US > target:
            return
        reach = now - idle_horizon(self.config)
        if any(reach <= h < now for h in self.cost_hours):
            return
        later = [h for h in self.cost_hours if h >= now]
        jump = min(min(later, default=target), target - target % HOUR_US)
        if jump > now:
            self.closed_bin_us = self.closed_hour_us = jump

    def _close_hour(self, hour_end: int, out: BurnOutput) -> None:
        cfg = self.config
        self.closed_hour_us = hour_end
        hour = hour_end - HOUR_US
        for name, t in self.tenants.items():
            hours = sorted(t.dirty) + [hour]
            t.dirty.clear()
            for h in hours:
                revision = 0 if h == hour else (hour_end - h - HOUR_US) // HOUR_US
                cost = t.hours.get(h, Decimal(0))
                score = self._score(name, t, h, cost, revision, out)
                if t.ledger is not None:
                    out.ledger.extend(t.ledger.advance(h))
                    out.ledger.extend(t.ledger.consume(h, cost - t.consumed.get(h, Decimal(0))))
                    t.consumed[h] = cost
                    out.ledger.extend(t.ledger.advance(h + HOUR_US))
                out.burn_rows.append(self._burn_row(name, t, h, cost, revision, hour_end, score))
            horizon = hour_end - cfg.max_lateness_us - HOUR_US
            for h in [h for h in t.hours if h < horizon]:
                del t.hours[h]
                t.consumed.pop(h, None)
            self._evaluate_credits(name, t, hour_end, out)
        reach = hour_end - idle_horizon(cfg)
        self.cost_hours = {h for h in self.cost_hours if h >= reach}
        self.anomalies.forget_before(hour_end - cfg.anomaly_policy.cooldown_us)
        # A tenant with no cost left in reach and no plan is forgotten (state stays bounded).
        for name in [n for n, t in self.tenants.items()
                     if not t.hours and t.ledger is None and n not in cfg.plans]:
            del self.tenants[name]
        self.tracker.forget_before(hour_end - cfg.cooldown_us)

    def _hourly_rate(self, t: _Tenant, now_us: int) -> float:
        hours = self.config.forecast_hours
        return t.cost_between(now_us // BIN_US - hours * 12, now_us // BIN_US) / hours

    def _hours_left(self, t: _Tenant, now_us: int) -> float | None:
        if t.ledger is None:
            return None
        rate = self._hourly_rate(t, now_us)
        return float(t.ledger.balance()) / rate if rate > 0 else None

    def _score(self, name: str, t: _Tenant, hour: int, cost: Decimal, revision: int,
               out: BurnOutput) -> Score | None:
        """Score the hour's spend; a restated hour is re-scored but never alerts twice."""
        cfg = self.config.anomaly
        if cfg is None:
            return None
        if t.scorer is None:
            t.scorer = LazyScorer(cfg, refit_offset(name, cfg))
        if revision:
            return t.scorer.rescore(hour, float(cost))
        s = t.scorer.update(hour, float(cost))
        if not (math.isfinite(s.score) and math.isfinite(s.impact)):
            return s  # nothing to alert on (too little history); the alerter ignores it
        event = self.anomalies.feed(dedup_key("spend_anomaly", name), hour + HOUR_US, s.score,
                                    s.impact)
        if event.alert_id is not None:
            opened = event.kind == OPEN
            summary = (f"{name}: spent {s.actual:.2f} in the hour to "
                       f"{to_datetime(hour + HOUR_US):%Y-%m-%d %H:%M}, expected {s.expected:.2f}"
                       if opened else f"resolved: {name}: hourly spend is back to expected")
            out.alerts.append(Alert(
                event.alert_id, dedup_key("spend_anomaly", name), "spend_anomaly", name, "*",
                "page", TRIGGER if opened else RESOLVE, event.opened_at_us, hour + HOUR_US,
                summary,
                {"actual": s.actual, "expected": s.expected, "lower": s.lower, "upper": s.upper,
                 "score": s.score, "impact": s.impact, "model": s.model,
                 "currency": self.config.currency},
            ))
        return s

    def _burn_row(self, name, t: _Tenant, hour: int, cost: Decimal, revision: int, now: int,
                  score: Score | None):
        plan = self.config.plans.get(name)
        budget = plan.budget.amount if plan and plan.budget else None
        credits = t.ledger.balance() if t.ledger is not None else None
        expected = anomaly = model = None
        if score is not None:  # model "none": too little history to expect anything yet
            anomaly, model = score.score, score.model
            if math.isfinite(score.expected):
                expected = Decimal(repr(score.expected)).quantize(COST_EXPONENT)
        return (name, hour, hour + HOUR_US, cost, self.config.currency, expected, anomaly, model,
                credits, self._hours_left(t, now), budget, revision)

    def _evaluate_credits(self, name: str, t: _Tenant, now: int, out: BurnOutput) -> None:
        if t.ledger is None:
            return
        left = self._hours_left(t, now)
        balance = t.ledger.balance()
        soon = (balance <= 0 and self._hourly_rate(t, now) > 0) or (
            left is not None and left < self.config.exhaustion_within_h
        )
        self._act(out, "credits_exhaustion", name, "page", soon, now,
                  f"{name}: credits run out in {left or 0:.1f} h at the current rate",
                  {"credits_remaining": str(balance), "hours_to_exhaustion": left,
                   "hourly_rate": self._hourly_rate(t, now),
                   "within_hours": self.config.exhaustion_within_h})

    def _evaluate(self, now: int, out: BurnOutput) -> None:
        for name, t in self.budgeted.items():
            plan = self.config.plans[name]
            per_hour = float(plan.budget.amount) / plan.budget.hours_at(now)
            end = now // BIN_US
            rates: dict[str, float] = {}
            spent: dict[str, float] = {}

            def burn(window_us: int, t=t, end=end, per_hour=per_hour, rates=rates,
                     spent=spent) -> float:
                label = _label(window_us)
                if label not in rates:
                    spent[label] = t.cost_between(end - window_us // BIN_US, end)
                    rates[label] = spent[label] / (per_hour * window_us / HOUR_US)
                return rates[label]

            for severity in ("page", "ticket"):
                rules = [r for r in self.config.rules if r.severity == severity]
                kind = "budget_burn" if severity == "page" else "budget_burn_ticket"
                is_open = dedup_key(kind, name) in self.tracker.open
                firing = [r for r in rules
                          if burn(r.long_us) >= (at := self._threshold(r, is_open))
                          and burn(r.short_us) >= at
                          and spent[_label(r.long_us)] >= self.config.min_cost]
                worst = max((burn(r.long_us) for r in rules), default=0.0)
                self._act(out, kind, name, severity, bool(firing), now,
                          f"{name}: spending {worst:.1f}x its sustainable budget rate",
                          {"burn_rates": dict(rates), "budget": str(plan.budget.amount),
                           "budget_period": plan.budget.period,
                           "rules": [f"{_label(r.long_us)}&{_label(r.short_us)}>={r.factor}"
                                     for r in firing]})

    def _threshold(self, rule: BurnRateRule, is_open: bool) -> float:
        """The burn at which ``rule`` fires; lower once its alert is open (hysteresis)."""
        if not is_open:
            return rule.factor
        return min(rule.factor, max(rule.factor * self.config.resolve_fraction, 1.0))

    def _act(self, out, kind, tenant, severity, condition, now, summary, details) -> None:
        key = dedup_key(kind, tenant)
        change = self.tracker.update(key, condition, now)
        if change is None:
            return
        action, alert_id, opened_at = change
        if action != TRIGGER:
            summary = f"resolved: {tenant}: {kind.replace('_', ' ')} condition has cleared"
        out.alerts.append(Alert(alert_id, key, kind, tenant, "*", severity, action, opened_at,
                                now, summary, details))

    def snapshot(self) -> tuple:
        # A tuple a tenant, empty containers as None: most tenants have neither dirty
        # hours, consumption, a ledger nor a fitted scorer, and this is pickled every epoch.
        tenants = {
            name: (t.bin_ids.tobytes(), t.bin_costs.tobytes(), t.head_bin, dict(t.hours),
                   dict(t.consumed) or None, set(t.dirty) or None, _copy_ledger(t.ledger),
                   t.scorer.snapshot() if t.scorer is not None else None)
            for name, t in self.tenants.items()
        }
        return (self.closed_bin_us, self.closed_hour_us, self.first_us, tenants,
                self.tracker.snapshot(), self.anomalies.snapshot(), sorted(self.cost_hours))


def _has_budget(config: BurnConfig, name: str) -> bool:
    plan = config.plans.get(name)
    return plan is not None and plan.budget is not None and plan.budget.amount > 0


def idle_horizon(config: BurnConfig) -> int:
    """How long after the last cost something can still change without new cost: an hour
    past max_lateness (hours are restated until then), the longest burn-rate window, the
    credit forecast."""
    longest = max((r.long_us for r in config.rules), default=0)
    return max(config.max_lateness_us + HOUR_US, longest, config.forecast_hours * HOUR_US) \
        + HOUR_US


def _restore_tenant(state: tuple | dict, anomaly: ModelConfig | None) -> _Tenant:
    if isinstance(state, dict):  # a snapshot of the dense ring: position k % RING_BINS held bin k
        ring, head = state["ring"], state["head_bin"]
        held = [k for k in range(head - RING_BINS + 1, head + 1) if ring[k % RING_BINS]]
        state = (array("q", held).tobytes(),
                 array("d", [ring[k % RING_BINS] for k in held]).tobytes(), head,
                 state["hours"], state["consumed"], state["dirty"], state["ledger"],
                 state["scorer"])
    ids, costs, head, hours, consumed, dirty, ledger, scorer = state
    bin_ids, bin_costs = array("q"), array("d")
    bin_ids.frombytes(ids)
    bin_costs.frombytes(costs)
    return _Tenant(bin_ids, bin_costs, head, hours, consumed or {}, dirty or set(), ledger,
                   None if scorer is None else LazyScorer.restore(scorer, anomaly))


def _copy_ledger(ledger: CreditLedger | None) -> CreditLedger | None:
    if ledger is None:
        return None
    return CreditLedger(ledger.tenant, list(ledger.grants), dict(ledger.remaining),
                        set(ledger.granted), set(ledger.expired))


def _label(window_us: int) -> str:
    minutes = window_us // MINUTE_US
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
