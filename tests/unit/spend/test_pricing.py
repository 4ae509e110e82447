from datetime import UTC, datetime
from decimal import Decimal, localcontext

import pytest

from operators.records import RollupRow, to_us
from operators.spend.pricing import Pricer, catalog_from_config, graduated_cost

NOV = to_us(datetime(2026, 11, 10, tzinfo=UTC))
DEC = to_us(datetime(2026, 12, 2, tzinfo=UTC))

CATALOG = [
    {"meter": "api_calls", "currency": "USD", "prices": [
        {"effective_from": "2026-01-01", "unit_price": "0.001"},
        {"effective_from": "2026-12-01", "unit_price": "0.002"},
    ]},
    {"meter": "tokens", "currency": "USD", "prices": [
        {"tiers": [{"up_to": 1000, "unit_price": "0.01"},
                   {"up_to": 5000, "unit_price": "0.005"},
                   {"up_to": None, "unit_price": "0.001"}]},
    ]},
]


def test_graduated_slices_add_up_to_the_price_of_the_total():
    tiers = catalog_from_config(CATALOG).meters["tokens"].versions[0].tiers
    total = graduated_cost(tiers, Decimal(0), Decimal(7000))
    assert total == Decimal(1000) * Decimal("0.01") + 4000 * Decimal("0.005") + 2000 * Decimal(
        "0.001")
    slices = [Decimal(x) for x in ("300", "900", "2500", "10", "3290")]
    before, parts = Decimal(0), []
    for q in slices:
        parts.append(graduated_cost(tiers, before, q))
        before += q
    assert sum(parts) == total


def test_price_in_force_at_the_window_start_applies():
    cat = catalog_from_config(CATALOG)
    assert cat.price("api_calls", NOV, 10, Decimal(0))[0] == Decimal("0.010000000")
    assert cat.price("api_calls", DEC, 10, Decimal(0))[0] == Decimal("0.020000000")
    assert cat.price("unknown", NOV, 10, Decimal(0)) is None


def test_floats_enter_as_their_shortest_decimal_and_round_half_even():
    cat = catalog_from_config([{"meter": "gb", "prices": [{"unit_price": "0.0000000005"}]}])
    cost, currency, q = cat.price("gb", NOV, 0.1 + 0.2, Decimal(0))
    assert q == Decimal("0.30000000000000004")
    assert currency == "USD"
    assert cost == Decimal("0.000000000")  # 1.5e-10 rounds half-even to 0 at 9 places
    assert cat.price("gb", NOV, 3, Decimal(0))[0] == Decimal("0.000000002")  # 1.5e-9 -> 2e-9


def test_pricer_tracks_monthly_quantity_per_tenant_and_meter():
    pricer = Pricer(catalog_from_config(CATALOG))
    rows = [_row("a", "tokens", NOV, 800.0), _row("a", "tokens", NOV + 60, 400.0),
            _row("b", "tokens", NOV, 400.0), _row("a", "mystery", NOV, 5.0)]
    priced, unpriced = pricer.price_rows(rows)
    assert [r.cost for r in priced] == [Decimal("8.000000000"), Decimal("3.000000000"),
                                        Decimal("4.000000000"), None]
    assert unpriced == 1
    assert priced[3].currency is None and priced[0].currency == "USD"


def _row(tenant: str, meter: str, start: int, quantity: float) -> RollupRow:
    return RollupRow(tenant, meter, (), start, start + 60_000_000, quantity, 1, quantity,
                     start, quantity, 0)


@pytest.mark.parametrize("bad, where", [
    ([{"meter": "x", "prices": [{"unit_price": 0.1}]}], "string"),
    ([{"meter": "x", "prices": [{"unit_price": "-1"}]}], ">= 0"),
    ([{"meter": "x", "prices": []}], "at least one"),
    ([{"meter": "x", "prices": [{"tiers": [{"up_to": 5, "unit_price": "1"}]}]}], "last be null"),
    ([{"meter": "x", "currency": "USD", "prices": [{"unit_price": "1"}]},
      {"meter": "y", "currency": "EUR", "prices": [{"unit_price": "1"}]}], "one currency"),
])
def test_bad_catalogs_are_refused_with_the_place(bad, where):
    with pytest.raises(ValueError, match=where):
        catalog_from_config(bad)


# --- properties: any quantity in range prices; graduated tiers sum exactly ---

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from operators.spend.pricing import MAX_UNIT_PRICE, month_of  # noqa: E402
from operators.usage.windows import NEVER  # noqa: E402

MAX_QUANTITY = 1e15  # the highest max_quantity the settings allow
prices = st.decimals(min_value=0, max_value=MAX_UNIT_PRICE, places=9, allow_nan=False)
quantities = st.floats(min_value=0, max_value=MAX_QUANTITY, allow_nan=False)


@st.composite
def tier_lists(draw):
    bounds = sorted(draw(st.sets(st.integers(1, 10**16), max_size=4)))
    ups = [Decimal(b) for b in bounds] + [None]
    return [{"up_to": None if u is None else str(u), "unit_price": str(draw(prices))}
            for u in ups]


def restated_cost(tiers: list[dict], before: Decimal, quantity: Decimal) -> Decimal:
    """The slice's price, tier by tier: the overlap of [before, before+q) with each tier."""
    total, lower = Decimal(0), Decimal(0)
    for t in tiers:
        upper = Decimal(t["up_to"]) if t["up_to"] is not None else before + quantity
        overlap = min(upper, before + quantity) - max(lower, before)
        total += max(overlap, Decimal(0)) * Decimal(t["unit_price"])
        lower = upper
    return total


@settings(max_examples=200, deadline=None)
@given(tiers=tier_lists(), slices=st.lists(quantities, min_size=1, max_size=8))
@example(tiers=[{"up_to": None, "unit_price": "246.527252939"}],
         slices=[405634666382073.0, 1.1754943508222875e-38, 1.1754943508222875e-38])
# A 38-digit context rounded 0.5 + 5.6e-181 units to 0.5, and so the cost down, not up.
@example(tiers=[{"up_to": "1", "unit_price": "0"}, {"up_to": None, "unit_price": "1E-9"}],
         slices=[5.599584183884948e-181, 1.5])
def test_any_quantity_in_range_prices_and_graduated_rows_sum_to_the_months_price(tiers, slices):
    catalog = catalog_from_config([{"meter": "m", "prices": [{"tiers": tiers}]}])
    rows, unpriced = Pricer(catalog).price_rows(
        [_row("t", "m", NOV, q) for q in slices])
    assert unpriced == 0
    with localcontext() as ctx:
        ctx.prec = 1000  # the restatement must not round (a float may be 5e-324)
        before, exact = Decimal(0), []
        for q in slices:
            exact.append(restated_cost(tiers, before, Decimal(repr(q))))
            before += Decimal(repr(q))
        # each row is its slice of the month, to the 9th decimal ...
        assert [r.cost for r in rows] == [c.quantize(Decimal("1e-9")) for c in exact]
        # ... and the slices add up to the price of the month's total, exactly
        assert sum(exact) == restated_cost(tiers, Decimal(0), before)


@settings(max_examples=200, deadline=None)
@given(q=quantities, price=prices, before=st.integers(0, 10**20))
def test_the_largest_quantities_at_the_largest_prices_fit_the_money_type(q, price, before):
    catalog = catalog_from_config([{"meter": "m", "prices": [{"unit_price": str(price)}]}])
    cost, _, _ = catalog.price("m", NOV, q, Decimal(before))
    with localcontext() as ctx:
        ctx.prec = 1000  # the restatement must not round (a float may be 5e-324)
        assert cost == (Decimal(repr(q)) * price).quantize(Decimal("1e-9"))
    assert cost.adjusted() < 29  # decimal(38, 9) holds it


def test_a_unit_price_above_the_bound_is_refused():
    with pytest.raises(ValueError, match=r"pricing\[0\].prices\[0\].unit_price"):
        catalog_from_config([{"meter": "m", "prices": [{"unit_price": "1000001"}]}])


def test_month_of_a_time_before_year_one_does_not_overflow():
    # A watermark minus max_lateness near the event-time floor, or "never".
    assert month_of(NEVER) == 101
    assert month_of(to_us(datetime(1, 1, 7, tzinfo=UTC)) - 7 * 86_400_000_000) == 101
