from datetime import UTC, datetime
from decimal import Decimal

import pytest

from operators.records import to_us
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
    rows = [("a", "tokens", NOV, NOV + 1, 800.0, 1, 0, 0, 0, 0),
            ("a", "tokens", NOV + 60, NOV + 61, 400.0, 1, 0, 0, 0, 0),
            ("b", "tokens", NOV, NOV + 1, 400.0, 1, 0, 0, 0, 0),
            ("a", "mystery", NOV, NOV + 1, 5.0, 1, 0, 0, 0, 0)]
    priced, unpriced = pricer.price_rows(rows)
    assert [r[-2] for r in priced] == [Decimal("8.000000000"), Decimal("3.000000000"),
                                       Decimal("4.000000000"), None]
    assert unpriced == 1
    assert priced[3][-1] is None and priced[0][-1] == "USD"


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
