"""The pure arithmetic of the reports: year split, rates, NRII words and
enums, working days on the Chinese calendar, cross-region flows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from booking.domain import reports as r
from booking.domain.calendar import HolidayCalendar

SH = ZoneInfo("Asia/Shanghai")
D = Decimal


def at(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def test_a_year_starts_at_local_midnight():
    start, end = r.year_bounds(2024, SH)
    assert start == datetime(2023, 12, 31, 16, tzinfo=UTC)
    assert end == datetime(2024, 12, 31, 16, tzinfo=UTC)


def test_a_booking_across_new_year_is_split_by_its_span():
    y24, y25 = r.year_bounds(2024, SH), r.year_bounds(2025, SH)
    start, end = at(2024, 12, 31, 22), at(2025, 1, 1, 2)
    # no recorded minutes: the span, 120 + 120 minutes
    assert r.effective_minutes_within(start, end, *y24) == D("120")
    assert r.effective_minutes_within(start, end, *y25) == D("120")
    # recorded 30 + 150 + 20 = 200 minutes, spread evenly over the 4 h span
    assert r.effective_minutes_within(start, end, *y24, prep=30, run=150, post=20) == D("100")
    # UTC midnight is not the boundary: 22:00–02:00 local is 14:00–18:00 UTC
    assert r.effective_minutes_within(start, end, *y24, run=60) == D("30")


def test_recorded_minutes_only_when_any_recorded():
    assert r.recorded_minutes(None, None, None) is None
    assert r.recorded_minutes(10, None, 5) == 15
    assert r.recorded_minutes(0, 0, 0) == 0


def test_rates_round_half_up_and_are_zero_without_use():
    assert r.share_rate(D("0"), D("0")) == 0
    assert r.share_rate(D("1"), D("3")) == D("0.3333")
    assert r.share_rate(D("2"), D("3")) == D("0.6667")
    assert r.utilisation(D("700"), D("1400")) == D("0.5000")
    assert r.round_hours(D("515")) == D("8.58")
    assert r.round_hours(D("3")) == D("0.05")  # 0.05 exactly
    assert r.round_hours(D("0.3")) == D("0.01")  # 0.005 → 0.01


@pytest.mark.parametrize(
    ("average", "word"),
    [(5, "非常满意"), (4, "基本满意"), (3, "一般"), (2, "不满意"), (1, "极差"),
     (D("4.5"), "非常满意"), (D("4.49"), "基本满意"), (D("1.2"), "极差"), (None, None)],
)  # fmt: skip
def test_rating_words(average, word):
    assert r.rating_word(average) == word


def test_average_rating():
    assert r.average_rating(11, 3) == D("3.67")
    assert r.average_rating(0, 0) is None


def test_nrii_enums():
    assert r.nrii_status("available") == "正常"
    assert r.nrii_status("maintenance") == "偶有故障"
    assert r.nrii_status("retired") == "待报废"
    assert set(r.STATUS_TO_NRII.values()) <= set(r.NRII_STATUSES)
    assert len(r.NRII_STATUSES) == 7
    assert r.share_mode(D("10"), D("1")) == "外部共享"
    assert r.share_mode(D("10"), D("0")) == "内部共享"
    assert r.share_mode(D("0"), D("0")) == "不共享"
    assert r.wan_yuan(D("600000.00")) == D("60.00")
    assert r.wan_yuan(D("1234567.89")) == D("123.46")
    assert r.wan_yuan(D("49.99")) == D("0.00")


def test_working_days_count_holidays_and_adjusted_days():
    cal = HolidayCalendar()
    # 2024 National Day: 1–7 Oct off, Sun 29 Sep and Sat 12 Oct worked.
    assert r.is_working_day(date(2024, 9, 29), cal)
    assert r.is_working_day(date(2024, 10, 12), cal)
    assert not r.is_working_day(date(2024, 10, 2), cal)
    assert not r.is_working_day(date(2024, 10, 13), cal)  # an ordinary Sunday
    assert r.add_working_days(date(2024, 9, 27), 1, cal) == date(2024, 9, 29)
    assert r.add_working_days(date(2024, 9, 30), 1, cal) == date(2024, 10, 8)
    # 30 working days from Mon 2 Sep 2024 (Mid-Autumn 15–17 Sep, Sat 14 Sep worked)
    assert r.add_working_days(date(2024, 9, 2), 30, cal) == date(2024, 10, 18)
    # Spring Festival 2024: 10–17 Feb off; Sun 4 Feb and Sun 18 Feb worked.
    assert r.add_working_days(date(2024, 2, 8), 2, cal) == date(2024, 2, 18)


def test_overrides_win_over_the_national_calendar():
    cal = HolidayCalendar({date(2024, 10, 12): ("holiday", "moved")})
    assert not r.is_working_day(date(2024, 10, 12), cal)


def test_reporting_states():
    today = date(2025, 1, 10)
    deadline = date(2024, 10, 18)
    accepted = date(2024, 9, 2)
    assert r.reporting_state(accepted, date(2024, 10, 18), deadline, today) == "reported"
    assert r.reporting_state(accepted, date(2024, 10, 21), deadline, today) == "late"
    assert r.reporting_state(accepted, None, deadline, today) == "overdue"
    assert r.reporting_state(accepted, None, deadline, date(2024, 10, 18)) == "pending"
    assert r.reporting_state(None, None, None, today) == "unknown"


def test_programme_scope_and_quota():
    national = r.Programme.from_mapping(
        {
            "code": "national",
            "name_zh": "国家",
            "name_en": "National",
            "threshold": "500000.00",
            "quota_hours": "1400",
            "special_quota_hours": "800",
        }
    )
    assert national.in_scope(D("500000.00"), "government", "instrument")
    assert not national.in_scope(D("499999.99"), "government", "instrument")
    assert not national.in_scope(D("900000.00"), "self", "instrument")
    assert not national.in_scope(D("900000.00"), "government", "hpc")
    assert national.quota_for(True) == D("800")
    assert national.report_within_working_days == 30


def test_flows_seen_from_a_region():
    assert r.flow_of("140100", "140105", "1401") == r.Flow.LOCAL
    assert r.flow_of("140100", "141102", "1401") == r.Flow.OUTBOUND
    assert r.flow_of("141100", "140105", "1401") == r.Flow.INBOUND
    assert r.flow_of("141100", "141102", "1401") is None
    assert r.flow_of("140100", None, "1401") == r.Flow.LOCAL  # an expiry
    assert r.flow_of("141100", "140105", "14") == r.Flow.LOCAL  # the province


def test_nrii_record_has_every_field_in_order():
    line = r.InstrumentLine(
        resource_id=1, provider_id=2, provider_name="实验室", inner_id="L-1", name_zh="电镜",
        name_en="SEM", category_code="010101", original_value=D("1234567.89"), country="JPN",
        manufacturer="日立", model="SU8010", accepted_on=date(2023, 3, 1), special_purpose=False,
        status="available", nrii_reported_on=None, reporting_deadline=None,
        reporting=r.ReportingState.UNKNOWN, quota_hours=D("1400"), effective_hours=D("8.58"),
        external_hours=D("7.67"), share_rate=D("0.8939"), utilisation=D("0.0061"), bookings=5,
        users=4, external_users=3, organizations=3, external_organizations=2,
        income=D("1300.00"), external_income=D("1200.00"), trainings=1, ratings=3,
        average_rating=D("3.67"), rating_word="基本满意", nrii_status="正常",
        share_mode="外部共享", fee="200.00元/小时", service_url="http://x/resources/1",
    )  # fmt: skip
    record = r.nrii_record(line)
    assert tuple(record) == r.NRII_FIELDS
    assert record["worth"] == D("123.46")
    assert record["serviceIncome"] == D("0.13")
    assert record["beginDate"] == "2023-03-01"
    assert (record["type"], record["status"], record["shareMode"]) == ("通用", "正常", "外部共享")
    assert record["rating"] == "基本满意"


def test_reconciliation_names_the_difference():
    result = r.reconcile([("a", D("1.00"), D("1.00")), ("b", D("2.01"), D("2.00"))])
    assert not result.ok
    assert [c.difference for c in result.checks] == [0, D("0.01")]


def test_working_days_table_agrees_with_counting_day_by_day():
    cal = HolidayCalendar({date(2024, 10, 18): ("holiday", "x")})
    table = r.WorkingDays(cal, date(2023, 1, 1), date(2025, 3, 1))
    day = date(2023, 1, 1)
    while day < date(2024, 12, 31):
        for n in (1, 15, 30):
            assert table.add(day, n) == r.add_working_days(day, n, cal), (day, n)
        day = date.fromordinal(day.toordinal() + 7)
    # outside the table it still counts
    assert table.add(date(2025, 2, 20), 30) == r.add_working_days(date(2025, 2, 20), 30, cal)
    assert table.add(date(2020, 1, 1), 3) == r.add_working_days(date(2020, 1, 1), 3, cal)
