"""Price usage from a catalog: Decimal end to end.

A meter's price is a list of versions, each in force from its
``effective_from`` (UTC) until the next; a window is priced with the version
in force at its start. A version is a flat ``unit_price`` or graduated
``tiers`` over the (tenant, meter)'s cumulative quantity in the calendar month
(UTC)::

    tiers: [{up_to: 1000000, unit_price: "0.0001"}, {up_to: null, unit_price: "0.00008"}]

Graduated pricing is additive over slices of usage, so pricing each row as
the slice of the month it adds (in the order rows are emitted) makes the sum
over a month's rows exactly the price of the month's total, whatever order
late corrections arrive in.

Rounding: quantities enter as the shortest decimal that round-trips their
float (``Decimal(repr(q))``); a row's cost is quantized to 9 decimal places,
ROUND_HALF_EVEN (the Parquet column is decimal(38, 9)). Round to the
currency's minor unit once, on the invoice total, not per row.

Why a row's cost always fits decimal(38, 9): an event's quantity is at most
``max_quantity`` <= 1e15 (operators/usage/parse.py) and a unit price at most
``MAX_UNIT_PRICE`` = 1e6, so an event costs at most 1e21 and a row of up to 1e7
events of the largest quantity at the largest price stays below 1e28 < 1e29, the
largest value with 9 decimals in 38 digits. Realistic rows are many orders below.
The arithmetic is exact (``EXACT``): a quantity is a float's shortest decimal (exponents
-324 to 15) and a month's total stays below 1e35, so a sum or a product with a 9-place
price needs fewer than 400 digits; only the row's cost is rounded, once.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

from operators.records import RollupRow, month_of, to_datetime, to_us  # noqa: F401 (month_of: re-exported)

COST_EXPONENT = Decimal("1e-9")
MAX_UNIT_PRICE = Decimal(10) ** 6
EXACT = Context(prec=400)  # enough digits that no sum or product here rounds (see above)


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None  # cumulative monthly quantity where the tier ends; None: no end
    unit_price: Decimal


@dataclass(frozen=True)
class PriceVersion:
    effective_from_us: int
    tiers: tuple[Tier, ...]  # a flat price is one open-ended tier


@dataclass(frozen=True)
class MeterPrice:
    meter: str
    currency: str
    unit: str
    versions: tuple[PriceVersion, ...]  # sorted by effective_from_us

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", [v.effective_from_us for v in self.versions])

    def version_at(self, time_us: int) -> PriceVersion | None:
        i = bisect.bisect_right(self._starts, time_us) - 1
        return self.versions[i] if i >= 0 else None


def graduated_cost(tiers: tuple[Tier, ...], before: Decimal, quantity: Decimal) -> Decimal:
    """Price of the slice [before, before + quantity) of cumulative usage."""
    cost = Decimal(0)
    start, end = before, before + quantity
    lower = Decimal(0)
    for tier in tiers:
        upper = tier.up_to
        lo = max(start, lower)
        hi = end if upper is None else min(end, upper)
        if hi > lo:
            cost += (hi - lo) * tier.unit_price
        if upper is None or upper >= end:
            break
        lower = upper
    return cost


@dataclass(frozen=True)
class PriceCatalog:
    meters: dict[str, MeterPrice]

    @property
    def currencies(self) -> set[str]:
        return {m.currency for m in self.meters.values()}

    def price(
        self, meter: str, window_start_us: int, quantity: float, month_before: Decimal
    ) -> tuple[Decimal, str, Decimal] | None:
        """(cost, currency, quantity as Decimal) of a row, or None when the meter has no price.

        ``month_before`` is the (tenant, meter)'s quantity already priced this month.
        """
        mp = self.meters.get(meter)
        if mp is None:
            return None
        version = mp.version_at(window_start_us)
        if version is None:
            return None
        q = Decimal(repr(float(quantity)))
        with localcontext(EXACT):
            cost = graduated_cost(version.tiers, month_before, q)
            return cost.quantize(COST_EXPONENT, rounding=ROUND_HALF_EVEN), mp.currency, q


def _decimal(value: object, where: str) -> Decimal:
    # Money from a float literal would carry binary noise: demand strings or ints.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{where}: write money as a string, e.g. \"0.0001\" (got {value!r})")
    try:
        d = Decimal(value)
    except ArithmeticError as ex:
        raise ValueError(f"{where}: not a decimal number: {value!r}") from ex
    if not d.is_finite() or d < 0:
        raise ValueError(f"{where}: must be a finite number >= 0 (got {value!r})")
    return d


def _unit_price(value: object, where: str) -> Decimal:
    d = _decimal(value, where)
    if d > MAX_UNIT_PRICE:  # see the module docstring: a row's cost must fit decimal(38, 9)
        raise ValueError(f"{where}: at most {MAX_UNIT_PRICE} per unit (got {value!r})")
    return d


def _time_us(value: object, where: str) -> int:
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value))
        except ValueError as ex:
            raise ValueError(f"{where}: not a date or RFC 3339 time: {value!r}") from ex
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # a bare date means midnight UTC
    return to_us(dt)


def catalog_from_config(entries: list[dict]) -> PriceCatalog:
    """Build and check the catalog; a ValueError names the entry that is wrong."""
    meters: dict[str, MeterPrice] = {}
    for i, entry in enumerate(entries):
        where = f"pricing[{i}]"
        meter = entry.get("meter")
        if not isinstance(meter, str) or not meter:
            raise ValueError(f"{where}.meter: required")
        if meter in meters:
            raise ValueError(f"{where}.meter: {meter!r} is priced twice")
        currency = entry.get("currency", "USD")
        versions = []
        for j, v in enumerate(entry.get("prices") or []):
            vw = f"{where}.prices[{j}]"
            if ("unit_price" in v) == ("tiers" in v):
                raise ValueError(f"{vw}: give either unit_price or tiers")
            if "unit_price" in v:
                tiers = (Tier(None, _unit_price(v["unit_price"], f"{vw}.unit_price")),)
            else:
                tiers = tuple(
                    Tier(
                        None if t.get("up_to") is None
                        else _decimal(t["up_to"], f"{vw}.tiers[{k}].up_to"),
                        _unit_price(t.get("unit_price"), f"{vw}.tiers[{k}].unit_price"),
                    )
                    for k, t in enumerate(v["tiers"])
                )
                bounds = [t.up_to for t in tiers[:-1]]
                if None in bounds or bounds != sorted(bounds) or tiers[-1].up_to is not None:
                    raise ValueError(f"{vw}.tiers: up_to must rise and only the last be null")
            versions.append(
                PriceVersion(_time_us(v.get("effective_from", "1970-01-01"), vw), tiers)
            )
        if not versions:
            raise ValueError(f"{where}.prices: at least one price is required")
        versions.sort(key=lambda v: v.effective_from_us)
        meters[meter] = MeterPrice(meter, currency, entry.get("unit", meter), tuple(versions))
    catalog = PriceCatalog(meters)
    if len(catalog.currencies) > 1:
        raise ValueError(f"pricing: one currency per catalog (got {sorted(catalog.currencies)})")
    return catalog


class Pricer:
    """Prices rollup rows in emission order, tracking each key's monthly quantity."""

    def __init__(self, catalog: PriceCatalog | None, state: dict | None = None) -> None:
        self.catalog = catalog
        self.month_quantity: dict[tuple[str, str, int], Decimal] = dict(state or {})

    def price_rows(self, rows: list[RollupRow]) -> tuple[list[RollupRow], int]:
        """Rows with cost and currency set; and how many had no price."""
        out, unpriced = [], 0
        for row in rows:
            tenant, meter, start, quantity = row[0], row[1], row.window_start_us, row.quantity
            priced = None
            if self.catalog is not None:
                key = (tenant, meter, month_of(start))
                priced = self.catalog.price(
                    meter, start, quantity, self.month_quantity.get(key, Decimal(0))
                )
            if priced is None:
                unpriced += 1
                out.append(row)
                continue
            cost, currency, q = priced
            with localcontext(EXACT):  # the default context would round the month's total
                self.month_quantity[key] = self.month_quantity.get(key, Decimal(0)) + q
            out.append(row._replace(cost=cost, currency=currency))
        return out, unpriced

    def expire(self, watermark_us: int, max_lateness_us: int) -> None:
        """Forget months no correction can reach any more."""
        oldest = month_of(watermark_us - max_lateness_us)
        for key in [k for k in self.month_quantity if k[2] < oldest]:
            del self.month_quantity[key]

    def snapshot(self) -> dict:
        return dict(self.month_quantity)
