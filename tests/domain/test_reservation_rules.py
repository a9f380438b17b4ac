"""Spans, the booking state machine, timing rules at their boundaries, and
the search for free slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.domain import reservations as states
from booking.domain.errors import InvalidTransition, RuleViolation
from booking.domain.reservations import (
    ReservationStatus as S,
)
from booking.domain.reservations import (
    SlotSearch,
    TimingRules,
    check_timing,
    first_slot_after,
    last_slot_before,
    placeable_spans,
)
from booking.domain.spans import Span, intersect, merge, peak_usage, subtract, usage_steps

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH).astimezone(UTC)


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SH).astimezone(UTC)


# --- spans -------------------------------------------------------------------


def test_half_open_spans_touching_do_not_overlap():
    assert not Span(t(2, 10), t(2, 12)).overlaps(Span(t(2, 12), t(2, 13)))
    assert Span(t(2, 10), t(2, 12)).overlaps(Span(t(2, 11, 59), t(2, 13)))
    with pytest.raises(ValueError):
        Span(t(2, 10), t(2, 10))


def test_merge_subtract_intersect():
    a, b, c = Span(t(2, 8), t(2, 10)), Span(t(2, 10), t(2, 11)), Span(t(2, 13), t(2, 14))
    assert merge([c, b, a]) == [Span(t(2, 8), t(2, 11)), c]
    assert subtract([Span(t(2, 8), t(2, 18))], [b, c]) == [
        Span(t(2, 8), t(2, 10)),
        Span(t(2, 11), t(2, 13)),
        Span(t(2, 14), t(2, 18)),
    ]
    assert intersect([Span(t(2, 8), t(2, 12))], [Span(t(2, 11), t(2, 15))]) == [
        Span(t(2, 11), t(2, 12))
    ]


def test_usage_sweep_and_peak():
    steps = usage_steps([(t(2, 8), t(2, 12), 2), (t(2, 10), t(2, 14), 3), (t(2, 12), t(2, 13), 1)])
    assert [(s.start, s.end, s.units) for s in steps] == [
        (t(2, 8), t(2, 10), 2),
        (t(2, 10), t(2, 12), 5),
        (t(2, 12), t(2, 13), 4),
        (t(2, 13), t(2, 14), 3),
    ]
    assert peak_usage(steps, Span(t(2, 11), t(2, 13))) == 5
    assert peak_usage(steps, Span(t(2, 14), t(2, 15))) == 0


# --- states --------------------------------------------------------------------


@pytest.mark.parametrize(
    "status,move,target",
    [
        (S.REQUESTED, "approve", S.APPROVED),
        (S.REQUESTED, "reject", S.REJECTED),
        (S.REQUESTED, "expire", S.EXPIRED),
        (S.REQUESTED, "cancel", S.CANCELLED),
        (S.APPROVED, "cancel", S.CANCELLED),
        (S.APPROVED, "check_in", S.IN_USE),
        (S.IN_USE, "check_out", S.IN_USE),
        (S.IN_USE, "complete", S.COMPLETED),
        (S.APPROVED, "complete", S.COMPLETED),
        (S.APPROVED, "no_show", S.NO_SHOW),
        (S.COMPLETED, "settle", S.SETTLED),
    ],
)
def test_legal_moves(status, move, target):
    assert states.next_status(status, move) == target
    assert states.can(status, move)


def test_every_other_move_is_refused_with_invalid_state():
    for move, spec in states.MOVES.items():
        for status in S:
            if status in spec.sources:
                continue
            with pytest.raises(InvalidTransition) as refused:
                states.next_status(status, move)
            assert refused.value.code == "invalid_state"
            assert refused.value.details == {"status": status.value, "move": move}


def test_final_states_have_no_way_out_but_settle_and_rate():
    for status in states.FINAL_STATUSES:
        allowed = [m for m, spec in states.MOVES.items() if status in spec.sources]
        assert allowed in ([], ["rate"])
    assert states.can_rate(S.COMPLETED) and not states.can_cancel(S.IN_USE)


# --- timing rules at their boundaries -----------------------------------------------

RULES = TimingRules(
    granularity_minutes=30, min_minutes=60, max_minutes=240, lead_minutes=120, horizon_days=10
)


def check(start: datetime, end: datetime) -> str | None:
    try:
        check_timing(RULES, Span(start, end), NOW, SH)
    except RuleViolation as refused:
        return refused.rule
    return None


def test_granularity_is_counted_from_local_midnight():
    assert check(t(2, 10, 30), t(2, 11, 30)) is None
    assert check(t(2, 10, 15), t(2, 11, 15)) == "granularity"
    assert check(t(2, 10), t(2, 11, 10)) == "granularity"
    # 45-minute grid from local midnight: 00:45, 01:30, … 23:15 then 00:00 again
    rules = TimingRules(granularity_minutes=45, min_minutes=45, max_minutes=240, horizon_days=10)
    check_timing(rules, Span(t(2, 23, 15), t(3, 0, 0)), NOW, SH)
    with pytest.raises(RuleViolation):
        check_timing(rules, Span(t(2, 0, 30), t(2, 1, 15)), NOW, SH)


def test_min_and_max_duration_boundaries():
    assert check(t(2, 10), t(2, 11)) is None  # exactly the minimum
    assert check(t(2, 10), t(2, 10, 30)) == "min_duration"
    assert check(t(2, 10), t(2, 14)) is None  # exactly the maximum
    assert check(t(2, 10), t(2, 14, 30)) == "max_duration"


def test_lead_time_and_horizon_boundaries():
    assert check(t(1, 10), t(1, 11)) is None  # exactly two hours ahead
    assert check(t(1, 9, 30), t(1, 10, 30)) == "lead_time"
    assert check(t(11, 7), t(11, 8)) is None  # ends exactly at the horizon
    assert check(t(11, 7, 30), t(11, 8, 30)) == "horizon"
    assert check(t(1, 7, 30), t(1, 8, 30)) == "start_in_past"


# --- free slots -------------------------------------------------------------------------


def test_placeable_spans_keep_buffers_clear_of_blocked_time():
    open_spans = [Span(t(2, 8), t(2, 18))]
    blocked = [Span(t(2, 10), t(2, 12))]
    pieces = placeable_spans(
        open_spans, blocked, Span(t(2, 0), t(3, 0)), timedelta(minutes=30), timedelta(minutes=60)
    )
    assert pieces == [Span(t(2, 8), t(2, 9)), Span(t(2, 12, 30), t(2, 18))]


def test_nearest_slots_before_and_after():
    pieces = [Span(t(2, 8), t(2, 10)), Span(t(2, 12), t(2, 18))]
    search = SlotSearch(
        length=timedelta(hours=2),
        granularity=timedelta(minutes=30),
        earliest=NOW,
        latest=NOW + timedelta(days=10),
        tz=SH,
    )
    assert last_slot_before(pieces, t(2, 11), search) == Span(t(2, 8), t(2, 10))
    assert first_slot_after(pieces, t(2, 11), search) == Span(t(2, 12), t(2, 14))
    short = [Span(t(2, 8), t(2, 9, 30))]
    assert last_slot_before(short, t(2, 11), search) is None
    # aligned to the grid even when the free piece is not
    odd = [Span(t(2, 12, 10), t(2, 18))]
    assert first_slot_after(odd, t(2, 11), search) == Span(t(2, 12, 30), t(2, 14, 30))
