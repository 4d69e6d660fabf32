"""``app.billing.pricing``: costs exact to the micro-dollar, billed per started second, never a
float."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing.pricing import (
    billable_seconds,
    micro_usd_to_cents,
    micro_usd_to_usd,
    per_minute_cost_micro_usd,
    quickstart_cost_micro_usd,
)


def test_quickstart_two_minutes() -> None:
    """120 s at 0.20 USD/hour is 6667 micro-USD, shown as Decimal 0.6667 cents."""
    micro = quickstart_cost_micro_usd(120.0)
    assert micro == 6667 and type(micro) is int
    cents = micro_usd_to_cents(micro)
    assert isinstance(cents, Decimal)
    assert cents == Decimal("0.6667")
    assert str(cents) == "0.6667"
    assert micro_usd_to_usd(micro) == Decimal("0.006667")
    assert str(micro_usd_to_usd(micro)) == "0.006667"


@pytest.mark.parametrize(("duration", "billed"), [
    (119.2, 120), (119.0, 119), (119.0001, 119), (119.002, 120), (11.000000001, 11),
    (11.0004, 11), (11.0006, 12), (0.0, 0), (0.001, 1), (-5.0, 0),
])
def test_billed_per_started_second(duration: float, billed: int) -> None:
    """Seconds round up, after rounding to the millisecond (decoder noise adds nothing)."""
    assert billable_seconds(duration) == billed
    assert type(billable_seconds(duration)) is int


def test_started_second_is_billed_in_full() -> None:
    """119.2 s costs exactly what 120 s costs, on both surfaces."""
    assert quickstart_cost_micro_usd(119.2) == quickstart_cost_micro_usd(120.0) == 6667
    price = Decimal("0.0060")
    assert per_minute_cost_micro_usd(119.2, price) == per_minute_cost_micro_usd(120, price)
    assert quickstart_cost_micro_usd(11.000000001) == quickstart_cost_micro_usd(11.0) == 611


@pytest.mark.parametrize(("duration", "price", "micro"), [
    (11.0, "0.0285", 5225),      # 28500 * 11 / 60 = 5225 exactly
    (60.0, "0.0647", 64700),
    (30.0, "0.0060", 3000),
    (1.0, "0.0040", 67),         # 66.67 rounds half up to 67
    (90.0, "0.000001", 2),       # 1.5 micro-USD rounds half up to 2
    (0.0, "0.0285", 0),
])
def test_per_minute_prorated_per_second(duration: float, price: str, micro: int) -> None:
    """The v1 price a minute, prorated per billed second, rounded half up to a micro-dollar."""
    cost = per_minute_cost_micro_usd(duration, Decimal(price))
    assert cost == micro
    assert type(cost) is int


@given(seconds=st.integers(min_value=0, max_value=10 * 24 * 3600),
       price_micro=st.integers(min_value=0, max_value=10_000_000))
def test_per_minute_matches_exact_integer_arithmetic(seconds: int, price_micro: int) -> None:
    """For any whole duration and 6-decimal price, the cost is round-half-up of
    price * seconds / 60 computed in integers (so no float ever crept in)."""
    price = Decimal(price_micro) / 1_000_000
    numerator = price_micro * seconds
    expected = (2 * numerator + 60) // 120  # round half up of numerator / 60
    assert per_minute_cost_micro_usd(float(seconds), price) == expected


@given(seconds=st.integers(min_value=0, max_value=10 * 24 * 3600))
def test_quickstart_matches_exact_integer_arithmetic(seconds: int) -> None:
    """The Quickstart cost is round-half-up of 200000 * seconds / 3600, in integers."""
    expected = (2 * 200_000 * seconds + 3600) // 7200
    cost = quickstart_cost_micro_usd(float(seconds))
    assert cost == expected and type(cost) is int
    assert micro_usd_to_cents(cost) == Decimal(cost) / Decimal(10_000)


def test_cent_and_dollar_conversions_are_decimals() -> None:
    """Conversions return Decimals with the expected exact values."""
    assert micro_usd_to_cents(0) == Decimal(0)
    assert micro_usd_to_cents(1) == Decimal("0.0001")
    assert micro_usd_to_cents(1_000_000) == Decimal(100)
    assert micro_usd_to_usd(5225) == Decimal("0.005225")
    assert all(isinstance(v, Decimal) for v in (micro_usd_to_cents(7), micro_usd_to_usd(7)))
