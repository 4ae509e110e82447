"""Prepaid credits: grants that may expire, consumed soonest-expiring first.

Every change is a ledger entry (grant, consume, expire) with the balance
after it, so the remaining balance at any hour can be explained line by line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

NO_EXPIRY = 2**62


@dataclass(frozen=True)
class Grant:
    grant_id: str
    amount: Decimal
    granted_at_us: int
    expires_at_us: int = NO_EXPIRY


class LedgerEntry(NamedTuple):
    tenant: str
    time_us: int  # the hour the entry belongs to
    kind: str  # grant | consume | expire
    grant_id: str
    amount: Decimal  # positive for a grant, negative for consume and expire
    balance: Decimal  # all live credits of the tenant after the entry


@dataclass
class CreditLedger:
    tenant: str
    grants: list[Grant]
    remaining: dict[str, Decimal] = field(default_factory=dict)
    granted: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)

    def balance(self) -> Decimal:
        return sum(self.remaining.values(), Decimal(0))

    def advance(self, now_us: int) -> list[LedgerEntry]:
        """Book the grants that start and the ones that expire by ``now_us``."""
        out = []
        for g in sorted(self.grants, key=lambda g: g.granted_at_us):
            if g.grant_id not in self.granted and g.granted_at_us <= now_us:
                self.granted.add(g.grant_id)
                self.remaining[g.grant_id] = g.amount
                out.append(self._entry(g.granted_at_us, "grant", g.grant_id, g.amount))
            if (g.grant_id in self.remaining and g.grant_id not in self.expired
                    and g.expires_at_us <= now_us):
                self.expired.add(g.grant_id)
                left = self.remaining.pop(g.grant_id)
                out.append(self._entry(g.expires_at_us, "expire", g.grant_id, -left))
        return out

    def consume(self, time_us: int, cost: Decimal) -> list[LedgerEntry]:
        """Take ``cost`` from live grants, the one expiring first first.

        What no grant covers is not booked: the balance never goes below zero,
        and the burn row shows the overage as cost with no credits left.
        """
        out = []
        expiry = {g.grant_id: g.expires_at_us for g in self.grants}
        for grant_id in sorted(self.remaining, key=lambda k: (expiry[k], k)):
            if cost <= 0:
                break
            take = min(cost, self.remaining[grant_id])
            if take > 0:
                self.remaining[grant_id] -= take
                cost -= take
                out.append(self._entry(time_us, "consume", grant_id, -take))
        return out

    def _entry(self, time_us: int, kind: str, grant_id: str, amount: Decimal) -> LedgerEntry:
        return LedgerEntry(self.tenant, time_us, kind, grant_id, amount, self.balance())
