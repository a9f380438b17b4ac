"""The step arithmetic of availability answers, on plain numbers."""

from __future__ import annotations

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
    assert _free(used, [], lo, hi, capacity) == general
