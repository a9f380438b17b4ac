"""Opening hours, national holidays and adjusted working days (调休)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from booking.domain.calendar import (
    DayKind,
    HolidayCalendar,
    OpeningCalendar,
    WeeklyHours,
    library_knows,
    national_day_kind,
)
from booking.domain.spans import Span

SH = ZoneInfo("Asia/Shanghai")
OFFICE = WeeklyHours.from_rows(
    [(d, time(8, 30), time(12, 0)) for d in range(5)]
    + [(d, time(14, 0), time(17, 30)) for d in range(5)]
    + [(5, time(9, 0), time(12, 0))]
)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def span(a: datetime, b: datetime) -> Span:
    return Span(a.astimezone(UTC), b.astimezone(UTC))


def calendar(**kw) -> OpeningCalendar:
    return OpeningCalendar(hours=kw.pop("hours", OFFICE), tz=SH, **kw)


def test_national_calendar_knows_2026_holidays_and_adjusted_days():
    assert national_day_kind(date(2026, 10, 1)) == (DayKind.HOLIDAY, "National Day")
    assert national_day_kind(date(2026, 10, 10)) == (DayKind.WORKDAY, "National Day")  # Saturday
    assert national_day_kind(date(2026, 10, 12)) == (DayKind.NORMAL, None)
    assert national_day_kind(date(2026, 10, 11)) == (DayKind.NORMAL, None)  # plain Sunday


def test_unknown_year_has_no_holidays():
    assert not library_knows(2099)
    assert national_day_kind(date(2099, 10, 1)) == (DayKind.NORMAL, None)
    # so 1 October 2099 (a Thursday) follows Thursday's hours
    assert calendar().day_spans(date(2099, 10, 1)) == [
        span(local(2099, 10, 1, 8, 30), local(2099, 10, 1, 12)),
        span(local(2099, 10, 1, 14), local(2099, 10, 1, 17, 30)),
    ]


def test_override_rows_win_over_the_library():
    overrides = {
        date(2099, 10, 1): (DayKind.HOLIDAY, "国庆节"),
        date(2026, 10, 1): ("workday", "test"),
    }
    cal = calendar(holidays=HolidayCalendar(overrides))
    assert cal.day_spans(date(2099, 10, 1)) == []
    assert cal.closure(span(local(2099, 10, 1, 9), local(2099, 10, 1, 10))).rule == "holiday"
    # 1 October 2026 made a working day: Monday's hours
    assert cal.day_spans(date(2026, 10, 1))[0] == span(
        local(2026, 10, 1, 8, 30), local(2026, 10, 1, 12)
    )


def test_holiday_closed_and_adjusted_working_day_opens_with_mondays_hours():
    cal = calendar()
    assert cal.day_spans(date(2026, 10, 1)) == []
    saturday = date(2026, 10, 10)  # 调休上班
    assert cal.day_spans(saturday) == [
        span(local(2026, 10, 10, 8, 30), local(2026, 10, 10, 12)),
        span(local(2026, 10, 10, 14), local(2026, 10, 10, 17, 30)),
    ]
    closure = cal.closure(span(local(2026, 10, 1, 9), local(2026, 10, 1, 10)))
    assert (closure.rule, closure.day, closure.name) == (
        "holiday",
        date(2026, 10, 1),
        "National Day",
    )


def test_without_closed_on_holidays_days_follow_their_weekday():
    cal = calendar(closed_on_holidays=False)
    assert len(cal.day_spans(date(2026, 10, 1))) == 2  # a Thursday
    assert cal.day_spans(date(2026, 10, 10)) == [  # Saturday's hours
        span(local(2026, 10, 10, 9), local(2026, 10, 10, 12))
    ]


@pytest.mark.parametrize(
    "start,end,inside",
    [
        (local(2026, 12, 2, 8, 30), local(2026, 12, 2, 12), True),  # exactly the morning
        (local(2026, 12, 2, 8), local(2026, 12, 2, 9), False),  # opens 08:30
        (local(2026, 12, 2, 11), local(2026, 12, 2, 14, 30), False),  # across lunch
        (local(2026, 12, 2, 17), local(2026, 12, 2, 17, 30), True),  # to closing, inclusive
        (local(2026, 12, 2, 17), local(2026, 12, 2, 18), False),
        (local(2026, 12, 6, 9), local(2026, 12, 6, 10), False),  # Sunday: closed
    ],
)
def test_span_inside_opening_hours(start, end, inside):
    closure = calendar().closure(span(start, end))
    assert (closure is None) == inside
    if not inside:
        assert closure.rule == "opening_hours"


def test_around_the_clock_and_spans_across_midnight():
    cal = calendar(hours=WeeklyHours.from_rows([]), closed_on_holidays=False)
    assert cal.closure(span(local(2026, 12, 2, 22), local(2026, 12, 3, 6))) is None
    night = WeeklyHours.from_rows([(2, time(18), time(23, 59)), (3, time(0), time(8))])
    cal = calendar(hours=night, closed_on_holidays=False)
    # 23:59 means midnight, so Wednesday evening joins Thursday morning
    assert cal.closure(span(local(2026, 12, 2, 20), local(2026, 12, 3, 7))) is None


def test_around_the_clock_still_closes_on_holidays_when_asked():
    cal = calendar(hours=WeeklyHours.from_rows([]), closed_on_holidays=True)
    assert cal.day_spans(date(2026, 10, 2)) == []
    assert cal.closure(span(local(2026, 9, 30, 20), local(2026, 10, 1, 2))).rule == "holiday"


def test_open_spans_clip_to_the_window_and_merge():
    cal = calendar()
    window = span(local(2026, 12, 2, 10), local(2026, 12, 3, 9))
    assert cal.open_spans(window) == [
        span(local(2026, 12, 2, 10), local(2026, 12, 2, 12)),
        span(local(2026, 12, 2, 14), local(2026, 12, 2, 17, 30)),
        span(local(2026, 12, 3, 8, 30), local(2026, 12, 3, 9)),
    ]
