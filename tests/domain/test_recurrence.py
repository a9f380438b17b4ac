"""Recurring bookings: one pure function from a rule to occurrences."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.domain.errors import ValidationFailed
from booking.domain.recurrence import occurrences, parse_rule

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 12, 2, 10, 0, tzinfo=SH)  # a Wednesday
END = START + timedelta(hours=2)


def starts(rule: dict) -> list[str]:
    return [
        s.start.astimezone(SH).strftime("%Y-%m-%d %a %H:%M")
        for s in occurrences(START, END, parse_rule(rule), SH)
    ]


def test_daily_count():
    assert starts({"freq": "daily", "count": 3}) == [
        "2026-12-02 Wed 10:00",
        "2026-12-03 Thu 10:00",
        "2026-12-04 Fri 10:00",
    ]


def test_daily_interval_until_inclusive_date():
    assert starts({"freq": "daily", "interval": 2, "until": date(2026, 12, 8)}) == [
        "2026-12-02 Wed 10:00",
        "2026-12-04 Fri 10:00",
        "2026-12-06 Sun 10:00",
        "2026-12-08 Tue 10:00",
    ]


def test_daily_on_weekdays_only():
    assert starts({"freq": "daily", "count": 4, "byweekday": ["MO", "TU", "WE", "TH", "FR"]}) == [
        "2026-12-02 Wed 10:00",
        "2026-12-03 Thu 10:00",
        "2026-12-04 Fri 10:00",
        "2026-12-07 Mon 10:00",
    ]


def test_weekly_by_weekday_every_second_week():
    assert starts({"freq": "weekly", "interval": 2, "count": 4, "byweekday": [0, 2]}) == [
        "2026-12-02 Wed 10:00",
        "2026-12-14 Mon 10:00",
        "2026-12-16 Wed 10:00",
        "2026-12-28 Mon 10:00",
    ]


def test_weekly_default_weekday_and_until_instant():
    until = datetime(2026, 12, 16, 10, 0, tzinfo=SH).astimezone(UTC)
    assert starts({"freq": "weekly", "until": until}) == [
        "2026-12-02 Wed 10:00",
        "2026-12-09 Wed 10:00",
        "2026-12-16 Wed 10:00",
    ]


def test_first_day_not_matching_is_skipped():
    assert starts({"freq": "weekly", "count": 2, "byweekday": [1]}) == [
        "2026-12-08 Tue 10:00",
        "2026-12-15 Tue 10:00",
    ]


def test_occurrences_keep_length_and_wall_clock():
    spans = occurrences(START, END, parse_rule({"freq": "daily", "count": 40}), SH)
    assert all(s.duration == timedelta(hours=2) for s in spans)
    assert {s.start.astimezone(SH).hour for s in spans} == {10}


@pytest.mark.parametrize(
    "rule,field",
    [
        ({"freq": "monthly", "count": 2}, "recurrence.freq"),
        ({"freq": "daily"}, "recurrence.count"),  # neither count nor until
        ({"freq": "daily", "count": 2, "until": date(2027, 1, 1)}, "recurrence.count"),
        ({"freq": "daily", "count": 0}, "recurrence.count"),
        ({"freq": "daily", "count": 201}, "recurrence.count"),
        ({"freq": "daily", "count": 2, "interval": 0}, "recurrence.interval"),
        ({"freq": "weekly", "count": 2, "byweekday": [7]}, "recurrence.byweekday"),
        ({"freq": "weekly", "count": 2, "byweekday": ["XX"]}, "recurrence.byweekday"),
    ],
)
def test_bad_rules_name_the_field(rule, field):
    with pytest.raises(ValidationFailed) as refused:
        parse_rule(rule)
    assert field in refused.value.fields


def test_too_many_or_no_occurrences_are_refused():
    with pytest.raises(ValidationFailed):
        occurrences(START, END, parse_rule({"freq": "daily", "until": date(2027, 12, 31)}), SH)
    with pytest.raises(ValidationFailed):
        occurrences(START, END, parse_rule({"freq": "daily", "until": date(2026, 12, 1)}), SH)
