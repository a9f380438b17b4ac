"""Costs from a price snapshot: units, block rounding, minimums, fees, caps."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from booking.domain.pricing import PriceTerms, Usage, billable_seconds, cost, quantity


def terms(**kw) -> PriceTerms:
    base = {"customer_class": "enterprise", "unit": "hour", "unit_price": Decimal("200.00")}
    return PriceTerms(**{**base, **kw})


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


@pytest.mark.parametrize(
    "used,block,threshold,billed",
    [
        (70, 30, 15, 60),  # a 10-minute remainder under the threshold is free
        (75, 30, 15, 90),  # 15 minutes: at the threshold, billed
        (74, 30, 15, 60),
        (61, 30, 0, 90),  # threshold 0: every started block
        (60, 30, 0, 60),
        (0, 30, 0, 0),
        (45.5, 0, 0, 45.5),  # no rounding: to the second
    ],
)
def test_block_rounding(used, block, threshold, billed):
    assert billable_seconds(minutes(used), block, threshold) == int(billed * 60)


def test_hours_setup_fee_and_minimum_quantity():
    t = terms(setup_fee=Decimal("50.00"), min_quantity=Decimal("2"))
    one_hour = cost(t, Usage(duration=minutes(60)))
    assert one_hour.quantity == Decimal(2)  # the 2-hour minimum
    assert one_hour.total == Decimal("450.00")
    three = cost(t, Usage(duration=minutes(180)))
    assert three.total == Decimal("650.00")


def test_order_minimum_and_maximum():
    t = terms(order_min=Decimal("300.00"), order_max=Decimal("1000.00"))
    assert cost(t, Usage(duration=minutes(30))).total == Decimal("300.00")
    assert cost(t, Usage(duration=minutes(600))).total == Decimal("1000.00")
    assert cost(t, Usage(duration=minutes(120))).total == Decimal("400.00")


def test_operator_fee_applies_only_with_operator():
    t = terms(operator_fee_per_hour=Decimal("80.00"))
    assert cost(t, Usage(duration=minutes(90))).total == Decimal("300.00")
    with_operator = cost(t, Usage(duration=minutes(90), with_operator=True))
    assert with_operator.operator_fee == Decimal("120.00")
    assert with_operator.total == Decimal("420.00")


def test_core_hours_are_units_times_hours_rounded_to_the_fen_once():
    t = terms(unit="core_hour", unit_price=Decimal("0.04"))
    used = cost(t, Usage(duration=timedelta(hours=2, seconds=1), units=64))
    # 64 cores × (2 h + 1 s) × 0.04 = 5.12071… → 5.12
    assert used.total == Decimal("5.12")
    assert quantity(t, Usage(duration=timedelta(hours=1), units=3)) == Decimal(3)


def test_samples_days_shifts_and_batches():
    assert cost(
        terms(unit="sample", unit_price=Decimal("150.00")), Usage(minutes(30), samples=7)
    ).total == Decimal("1050.00")
    day = terms(unit="day", unit_price=Decimal("1300.00"))
    assert quantity(day, Usage(timedelta(days=1))) == 1
    assert quantity(day, Usage(timedelta(days=1, minutes=1))) == 2  # a partial day counts whole
    shift = terms(unit="shift", unit_price=Decimal("500.00"), shift_minutes=480)
    assert quantity(shift, Usage(timedelta(hours=9))) == 2
    batch = terms(unit="batch", unit_price=Decimal("8000.00"))
    assert cost(batch, Usage(timedelta(days=3))).total == Decimal("8000.00")


def test_zero_prices_are_allowed():
    assert cost(terms(unit_price=Decimal("0.00")), Usage(minutes(120))).total == Decimal("0.00")


def test_half_up_rounding_of_a_line():
    t = terms(unit_price=Decimal("0.03"))
    # 0.03 × 0.5 h = 0.015 → 0.02 (half up)
    assert cost(t, Usage(minutes(30))).total == Decimal("0.02")


def test_snapshot_round_trip_keeps_every_term():
    t = terms(
        setup_fee=Decimal("10.00"),
        min_quantity=Decimal("1.5"),
        rounding_minutes=30,
        rounding_threshold_minutes=15,
        order_min=Decimal("5.00"),
        order_max=None,
        no_show_fee=Decimal("100.00"),
        operator_fee_per_hour=Decimal("20.00"),
        price_rule_id=7,
    )
    assert PriceTerms.from_snapshot(t.to_snapshot()) == t
    assert all(isinstance(v, str | int | type(None)) for v in t.to_snapshot().values())


def test_money_never_floats():
    breakdown = cost(terms(), Usage(minutes(90))).as_dict()
    assert breakdown["total"] == "300.00" and breakdown["quantity"] == "1.5"
