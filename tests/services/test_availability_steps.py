"""The step arithmetic of availability answers, on plain numbers."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=300)
@given(
    pieces=st.lists(
        st.tuples(st.integers(0, 500), st.integers(1, 120), st.integers(1, 8)), max_size=40
    ),
    lo=st.integers(0, 300),
    length=st.integers(1, 400),
    capacity=st.integers(1, 8),
)
def test_free_units_without_blackouts_take_the_short_way_to_the_same_steps(
    pieces, lo, length, capacity
):
    from booking.services.availability import _free, _sweep

    used = _sweep((s, s + d, u) for s, d, u in pieces)
    hi = lo + length
    # A blackout beyond the window changes nothing but takes the general path.
    general = _free(used, [(hi + 1, hi + 2)], lo, hi, capacity)
    assert [tuple(s) for s in _free(used, [], lo, hi, capacity)] == [tuple(s) for s in general]


pieces_strategy = st.lists(
    st.tuples(st.integers(0, 200), st.integers(0, 60), st.integers(1, 4)), max_size=25
)


def level_at(pieces, t):
    return sum(u for s, d, u in pieces if s <= t < s + d)


def step_at(steps, t):
    found = [s for s in steps if s[0] <= t < s[1]]
    assert len(found) <= 1
    return found[0] if found else None


@settings(max_examples=300)
@given(pieces=pieces_strategy)
def test_the_sweep_gives_the_units_in_use_in_maximal_steps(pieces):
    from booking.services.availability import _sweep

    steps = _sweep((s, s + d, u) for s, d, u in pieces)
    for t in range(-1, 262):
        step = step_at(steps, t)
        assert (step[2] if step else 0) == level_at(pieces, t)
    assert all(start < end and units > 0 for start, end, units in steps)
    for before, after in pairwise(steps):
        assert before[1] <= after[0]
        assert before[1] < after[0] or before[2] != after[2]


@settings(max_examples=300)
@given(
    pieces=pieces_strategy,
    spans=st.one_of(
        st.just([(-10, 400)]),  # open around the clock
        st.lists(st.tuples(st.integers(-10, 270), st.integers(1, 50)), max_size=6),
    ),
    units=st.integers(1, 5),
)
def test_clipping_keeps_what_has_the_units_inside_the_spans(pieces, spans, units):
    from booking.services.availability import _clipped, _merged, _sweep

    steps = _sweep((s, s + d, u) for s, d, u in pieces)
    opening = _merged((s, s + d) for s, d in spans)
    clipped = _clipped(steps, opening, units)
    for t in range(-11, 322):
        inside = any(s <= t < e for s, e in opening)
        step = step_at(steps, t)
        wanted = step[2] if step and inside and step[2] >= units else None
        piece = step_at(clipped, t)
        assert (piece[2] if piece else None) == wanted
    assert all(start < end for start, end, _ in clipped)
    assert [p[0] for p in clipped] == sorted(p[0] for p in clipped)


@settings(max_examples=300)
@given(pieces=pieces_strategy, lo=st.integers(0, 150), length=st.integers(1, 150))
def test_an_exclusive_resource_is_busy_in_maximal_intervals_within_the_window(pieces, lo, length):
    from types import SimpleNamespace

    from booking.services.availability import _busy, _sweep

    hi = lo + length
    busy = _busy(
        SimpleNamespace(capacity=1), _sweep((s, s + d, u) for s, d, u in pieces), [], lo, hi
    )
    for t in range(-1, 302):
        in_use = lo <= t < hi and level_at(pieces, t) > 0
        assert (step_at(busy, t) is not None) == in_use
    assert all(units == 1 and kind == "booking" for _s, _e, units, kind in busy)
    assert all(before[1] < after[0] for before, after in pairwise(busy))
