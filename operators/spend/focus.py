"""Cost rows in the FinOps FOCUS 1.0 layout, one per priced rollup row.

burnwatch is the provider here: it bills tenants for their metered usage.
A correction row (revision > 0) is a charge of class ``Correction`` for the
same charge period. Columns FOCUS requires to exist but that mean nothing for
metered usage (region, commitment discounts, tags) are null. List, contracted,
billed and effective cost are all the catalog price: there are no discounts or
commitments to apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa

from operators.records import to_datetime, to_us
from operators.schemas import MONEY, TIMESTAMP, Dataset, columns


@dataclass(frozen=True)
class FocusParty:
    provider: str = "burnwatch"  # who bills (ProviderName, PublisherName, InvoiceIssuerName)
    service_category: str = "Other"  # FOCUS's fixed list of service categories


FOCUS_SCHEMA = pa.schema(
    [
        ("BilledCost", MONEY),
        ("EffectiveCost", MONEY),
        ("ListCost", MONEY),
        ("ContractedCost", MONEY),
        ("ListUnitPrice", MONEY),
        ("ContractedUnitPrice", MONEY),
        ("BillingCurrency", pa.string()),
        ("ChargePeriodStart", TIMESTAMP),
        ("ChargePeriodEnd", TIMESTAMP),
        ("BillingPeriodStart", TIMESTAMP),
        ("BillingPeriodEnd", TIMESTAMP),
        ("ChargeCategory", pa.string()),
        ("ChargeClass", pa.string()),
        ("ChargeDescription", pa.string()),
        ("ChargeFrequency", pa.string()),
        ("PricingQuantity", pa.decimal128(38, 9)),
        ("PricingUnit", pa.string()),
        ("ConsumedQuantity", pa.decimal128(38, 9)),
        ("ConsumedUnit", pa.string()),
        ("ServiceName", pa.string()),
        ("ServiceCategory", pa.string()),
        ("ProviderName", pa.string()),
        ("PublisherName", pa.string()),
        ("InvoiceIssuerName", pa.string()),
        ("BillingAccountId", pa.string()),
        ("BillingAccountName", pa.string()),
        ("SubAccountId", pa.string()),
        ("SubAccountName", pa.string()),
        ("ResourceId", pa.string()),
        ("ResourceName", pa.string()),
        ("ResourceType", pa.string()),
        ("SkuId", pa.string()),
        ("SkuPriceId", pa.string()),
        ("PricingCategory", pa.string()),
        ("RegionId", pa.string()),
        ("RegionName", pa.string()),
        ("AvailabilityZone", pa.string()),
        ("CommitmentDiscountCategory", pa.string()),
        ("CommitmentDiscountId", pa.string()),
        ("CommitmentDiscountName", pa.string()),
        ("CommitmentDiscountStatus", pa.string()),
        ("CommitmentDiscountType", pa.string()),
        ("Tags", pa.string()),
        ("x_Revision", pa.int32()),  # burnwatch's own column (FOCUS's x_ prefix)
    ]
)
# Columns FOCUS requires to exist that have nothing to say for metered usage.
_NOT_APPLICABLE = (None,) * 9  # RegionId ... Tags


def _month(time_us: int) -> tuple[int, int]:
    dt = to_datetime(time_us)
    start = dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(
        month=start.month + 1)
    return to_us(start), to_us(end)


def focus_rows(rows: list[tuple], party: FocusParty, units: dict[str, str]) -> list[tuple]:
    """FOCUS rows for priced rollup rows (rows without a price have no cost line)."""
    out = []
    for (tenant, meter, _dims, start, end, quantity, _events, _max, _last_t, _last, revision,
         cost, currency, _agg) in rows:
        if cost is None:
            continue
        month_start, month_end = _month(start)
        q = Decimal(repr(float(quantity))).quantize(Decimal("1e-9"))
        unit = units.get(meter, meter)
        unit_price = (cost / q).quantize(Decimal("1e-9")) if q else None
        out.append((
            cost, cost, cost, cost, unit_price, unit_price, currency,
            start, end, month_start, month_end,
            "Usage", "Correction" if revision else None,
            f"{meter} usage of {tenant}" + (f" (correction {revision})" if revision else ""),
            "Usage-Based",
            q, unit, q, unit,
            meter, party.service_category,
            party.provider, party.provider, party.provider,
            tenant, tenant, tenant, tenant, f"{tenant}/{meter}", meter,
            "Usage meter", meter, f"{meter}/{currency}", "Standard", *_NOT_APPLICABLE,
            revision,
        ))
    return out


FOCUS = Dataset("focus", FOCUS_SCHEMA, 7, columns)  # partitioned by ChargePeriodStart
