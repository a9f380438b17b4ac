"""The open-sharing assessment report against a small data set whose every
figure is computed by hand below (POLICY.md rules 25–29); the data set is
``build_open_sharing_world`` in tests/factories/reports.py."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from booking.domain.errors import NotFound, ValidationFailed
from booking.domain.reports import ReportingState
from booking.models.catalog import CalendarDay, CalendarDayKind
from booking.models.reports import AssessmentProgramme
from booking.services import reports
from tests.factories.accounts import actor_of
from tests.factories.reports import build_open_sharing_world, local

D = Decimal
TODAY = local(2025, 1, 10, 12)


@pytest.fixture
def world(session):
    return build_open_sharing_world(session)


def report(session, user, **kw):
    kw.setdefault("year", 2024)
    with time_machine.travel(TODAY, tick=False):
        return reports.open_sharing_report(session, actor_of(session, user), **kw)


def test_instrument_figures_by_hand(session, world):
    result = report(session, world.lab_admin)
    assert [li.resource_id for li in result.lines] == [world.a.id]  # national: 500,000
    a = result.lines[0]
    # 180 + 55 + 100 + 60 + 120 = 515 min; external 180 + 100 + 60 + 120 = 460 min
    assert a.effective_hours == D("8.58")
    assert a.external_hours == D("7.67")
    assert a.share_rate == D("0.8939")  # 7.67 / 8.58
    assert a.quota_hours == D("1400")
    assert a.utilisation == D("0.0061")
    assert a.bookings == 5
    assert (a.users, a.external_users) == (4, 3)
    assert (a.organizations, a.external_organizations) == (3, 2)
    # Income of the bookings ended in 2024: 600 + 100 + 200 + 400 (the 800
    # booking ends in 2025); external 600 + 200 + 400.
    assert a.income == D("1300.00")
    assert a.external_income == D("1200.00")
    assert a.trainings == 1
    # Ratings of the bookings ended in 2024: 5, 4, 2 → 3.67 → 基本满意
    assert (a.ratings, a.average_rating, a.rating_word) == (3, D("3.67"), "基本满意")
    assert (a.nrii_status, a.share_mode) == ("正常", "外部共享")
    assert a.reporting == ReportingState.REPORTED
    assert a.fee == "200.00元/小时"


def test_the_next_year_gets_the_rest_of_the_new_year_booking(session, world):
    a = report(session, world.lab_admin, year=2025).lines[0]
    assert a.effective_hours == D("1.67")  # 100 of the 200 minutes
    assert a.external_hours == D("1.67")
    assert a.income == D("800.00")
    assert (a.ratings, a.rating_word) == (1, "一般")
    assert a.bookings == 1


def test_hours_by_month_add_up_to_the_year(session, world):
    result = report(session, world.lab_admin)
    months = {m.month: m.effective_hours for m in result.months}
    assert months[1] == D("1.00")  # the 2023/24 booking's in-year hour
    assert months[3] == D("3.92")  # 180 + 55 min
    assert months[6] == D("2.00")
    assert months[12] == D("1.67")
    assert sum(v for k, v in months.items() if k not in (1, 3, 6, 12)) == 0


def test_provincial_programme_and_lab_totals(session, world):
    result = report(session, world.lab_admin, programme="shanxi")
    assert [li.inner_id for li in result.lines] == ["L-001", "L-002"]
    b = result.lines[1]
    assert (b.effective_hours, b.external_hours, b.share_rate) == (D("2.00"), D("0.00"), 0)
    assert b.quota_hours == D("800")  # special-purpose
    assert b.utilisation == D("0.0025")
    assert (b.nrii_status, b.share_mode) == ("偶有故障", "内部共享")
    assert b.trainings == 1
    # Accepted Mon 2 Sep 2024: the 30th working day, with the Mid-Autumn and
    # National Day holidays and the 调休 Saturdays/Sunday, is Fri 18 Oct.
    assert b.reporting_deadline == date(2024, 10, 18)
    assert b.reporting == ReportingState.OVERDUE
    t = result.totals
    assert t.instruments == 2
    assert (t.network_ratio, t.running_ratio, t.shared_ratio, t.external_ratio) == (
        D("0.5000"),
        D("0.5000"),
        D("1.0000"),
        D("0.5000"),
    )
    assert t.overdue == 1
    assert (t.effective_hours, t.external_hours) == (D("10.58"), D("7.67"))
    assert t.share_rate == D("0.7250")
    assert (t.users, t.organizations) == (4, 3)  # distinct over both instruments
    assert t.income == D("1350.00")
    assert t.trainings == 2
    assert (t.ratings, t.average_rating) == (3, D("3.67"))


def test_bureau_sees_every_lab_of_its_region(session, world):
    result = report(session, world.officer)
    assert [li.inner_id for li in result.lines] == ["L-001", "M-001"]
    assert {lab.provider_id for lab in result.labs} == {world.lab.id, world.other_lab.id}
    # A served x1, the lab's own user, y1 and x2; F served y1 again: 4 distinct.
    assert (result.totals.users, result.totals.organizations) == (4, 3)
    per_lab = {lab.provider_id: lab.totals for lab in result.labs}
    assert (per_lab[world.other_lab.id].users, per_lab[world.lab.id].users) == (1, 4)
    assert per_lab[world.other_lab.id].effective_hours == D("1.00")


def test_access(session, world):
    other = world.other_lab.id
    with pytest.raises(NotFound):
        report(session, world.lab_admin, provider_id=other)
    with pytest.raises(NotFound):
        report(session, world.far_officer, provider_id=world.lab.id)
    with pytest.raises(NotFound):
        report(session, world.far_officer, region="140100")
    from booking.domain.errors import Forbidden

    with pytest.raises(Forbidden):
        report(session, world.customer_user)
    assert report(session, world.officer, provider_id=world.lab.id).scope.provider_id == (
        world.lab.id
    )


def test_programme_settings_are_data(session, world):
    session.add(
        AssessmentProgramme(
            code="national",
            name_zh="国家",
            name_en="National",
            threshold=D("700000.00"),
            quota_hours=1600,
            special_quota_hours=900,
            report_within_working_days=15,
            effective_from=date(2024, 1, 1),
        )
    )
    session.flush()
    assert report(session, world.lab_admin).lines == []  # A (600,000) below 700,000 now
    assert [li.inner_id for li in report(session, world.officer).lines] == ["M-001"]
    assert report(session, world.officer).lines[0].quota_hours == D("1600")
    with pytest.raises(ValidationFailed):
        report(session, world.lab_admin, programme="nowhere")


def test_calendar_overrides_move_the_reporting_deadline(session, world):
    # The platform admin declares Fri 18 Oct 2024 a holiday: one more day.
    session.add(CalendarDay(day=date(2024, 10, 18), kind=CalendarDayKind.HOLIDAY, name="x"))
    session.flush()
    b = report(session, world.lab_admin, programme="shanxi").lines[1]
    assert b.reporting_deadline == date(2024, 10, 21)
