"""Properties of the domain's arithmetic, for any input (hypothesis): the
cost of a booking and the span algebra that availability and conflicts are
built on."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from booking.domain import pricing, spans
from booking.domain.pricing import PriceTerms, Usage
from booking.domain.spans import Span

FEN = Decimal("0.01")
money = st.decimals(min_value=0, max_value=100_000, places=2)
maybe_money = st.none() | money


@st.composite
def price_terms(draw):
    order_min = draw(maybe_money)
    order_max = draw(maybe_money)
    if order_min is not None and order_max is not None and order_min > order_max:
        order_min, order_max = order_max, order_min
    rounding = draw(st.sampled_from([0, 15, 30, 60]))
    return PriceTerms(
        customer_class="enterprise",
        unit=draw(st.sampled_from(["hour", "gpu_hour", "sample", "day", "shift", "batch"])),
        unit_price=draw(money),
        setup_fee=draw(money),
        min_quantity=draw(st.sampled_from([Decimal(0), Decimal("0.5"), Decimal(1), Decimal(2)])),
        rounding_minutes=rounding,
        rounding_threshold_minutes=draw(st.integers(0, rounding)),
        order_min=order_min,
        order_max=order_max,
        operator_fee_per_hour=draw(money),
    )


usages = st.builds(
    Usage,
    duration=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=10)),
    units=st.integers(1, 64),
    samples=st.none() | st.integers(0, 500),
    with_operator=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(price_terms(), usages)
def test_a_cost_is_whole_fen_never_negative_and_inside_the_order_bounds(terms, usage):
    cost = pricing.cost(terms, usage)
    assert cost.total >= 0
    assert cost.total == cost.total.quantize(FEN)
    if terms.order_min is not None:
        assert cost.total >= terms.order_min
    if terms.order_max is not None:
        assert cost.total <= terms.order_max
    if terms.order_min is None and terms.order_max is None:
        # Without bounds, the lines add up to the total, to the fen.
        assert cost.total == cost.usage_amount + cost.setup_fee + cost.operator_fee


@settings(max_examples=300, deadline=None)
@given(price_terms(), usages, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)))
def test_using_longer_never_costs_less(terms, usage, more):
    longer = Usage(usage.duration + more, usage.units, usage.samples, usage.with_operator)
    assert pricing.cost(terms, longer).total >= pricing.cost(terms, usage).total


@settings(max_examples=300, deadline=None)
@given(price_terms())
def test_a_price_snapshot_round_trips(terms):
    assert PriceTerms.from_snapshot(terms.to_snapshot()) == terms


START = datetime(2026, 3, 2, tzinfo=UTC)


@st.composite
def span_lists(draw):
    found = []
    for offset, length in draw(
        st.lists(st.tuples(st.integers(0, 500), st.integers(1, 120)), max_size=12)
    ):
        begin = START + timedelta(minutes=offset)
        found.append(Span(begin, begin + timedelta(minutes=length)))
    return found


def minutes_covered(items) -> set[int]:
    covered = set()
    for span in items:
        first = int((span.start - START).total_seconds() // 60)
        last = int((span.end - START).total_seconds() // 60)
        covered.update(range(first, last))
    return covered


@settings(max_examples=300, deadline=None)
@given(span_lists())
def test_merge_is_sorted_disjoint_and_covers_the_same_time(items):
    merged = spans.merge(items)
    assert all(a.end < b.start for a, b in itertools.pairwise(merged))
    assert minutes_covered(merged) == minutes_covered(items)


@settings(max_examples=300, deadline=None)
@given(span_lists(), span_lists())
def test_subtract_and_intersect_split_the_base_exactly(base, cuts):
    left = minutes_covered(spans.subtract(base, cuts))
    both = minutes_covered(spans.intersect(base, cuts))
    assert left == minutes_covered(base) - minutes_covered(cuts)
    assert both == minutes_covered(base) & minutes_covered(cuts)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(1, 90), st.integers(1, 8)), max_size=12))
def test_usage_steps_count_the_units_in_use_at_every_minute(items):
    triples = [
        (START + timedelta(minutes=o), START + timedelta(minutes=o + n), u) for o, n, u in items
    ]
    steps = spans.usage_steps(triples)
    for minute in range(0, 400, 7):
        instant = START + timedelta(minutes=minute)
        expected = sum(u for s, e, u in triples if s <= instant < e)
        found = sum(s.units for s in steps if s.start <= instant < s.end)
        assert found == expected, minute
