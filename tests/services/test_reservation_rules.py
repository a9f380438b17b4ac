"""Every booking rule of a resource, checked by the service at its boundary."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.domain.errors import Conflict, Forbidden, RuleViolation, ValidationFailed
from booking.models.catalog import (
    Blackout,
    CalendarDay,
    OpeningHours,
    PriceRule,
    ResourceStatus,
    TrainingRecord,
)
from booking.models.reservations import Reservation
from booking.services import reservations as service

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # Tuesday


def at(day: int, hour: int, minute: int = 0, month: int = 12, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def book(world, start, end, actor=None, **extra):
    data = {"resource_id": world.resource.id, "start": start, "end": end, "purpose": "测试"}
    data.update(extra)
    return service.create_reservation(world.session, actor or world.customer_actor, data)


def refused_rule(world, start, end, **extra) -> str:
    with pytest.raises(RuleViolation) as refused:
        book(world, start, end, **extra)
    return refused.value.rule


def test_granularity_boundary(booking_world):
    world = booking_world(granularity_minutes=60, min_minutes=60)
    assert refused_rule(world, at(2, 10, 30), at(2, 11, 30)) == "granularity"
    assert book(world, at(2, 10), at(2, 11)).id


def test_min_and_max_duration_boundary(booking_world):
    world = booking_world(min_minutes=60, max_minutes=180)
    assert refused_rule(world, at(2, 8), at(2, 8, 30)) == "min_duration"
    assert refused_rule(world, at(2, 8), at(2, 11, 30)) == "max_duration"
    book(world, at(2, 8), at(2, 9))
    book(world, at(2, 10), at(2, 13))


def test_lead_time_boundary(booking_world):
    world = booking_world(lead_minutes=24 * 60)
    assert refused_rule(world, at(2, 7, 30), at(2, 8, 30)) == "lead_time"
    book(world, at(2, 8), at(2, 9))  # exactly 24 hours ahead


def test_horizon_boundary(booking_world):
    world = booking_world(horizon_days=7, hours=[], closed_on_holidays=False)
    book(world, at(8, 6), at(8, 8))  # ends exactly 7 days ahead
    assert refused_rule(world, at(8, 7), at(8, 8, 30)) == "horizon"


def test_start_in_the_past(booking_world):
    world = booking_world(hours=[])
    assert refused_rule(world, at(1, 7, 30), at(1, 8, 30)) == "start_in_past"


def test_opening_hours_boundaries(booking_world):
    world = booking_world()  # Mon-Fri 08:00-18:00
    book(world, at(2, 8), at(2, 9))
    book(world, at(2, 17), at(2, 18))
    assert refused_rule(world, at(2, 7, 30), at(2, 8, 30)) == "opening_hours"
    assert refused_rule(world, at(2, 17, 30), at(2, 18, 30)) == "opening_hours"
    assert refused_rule(world, at(5, 9), at(5, 10)) == "opening_hours"  # Saturday


def test_national_holiday_closed_and_adjusted_saturday_open(booking_world, frozen):
    frozen.move_to(at(20, 8, month=9))
    world = booking_world(hours=[(0, "09:00", "12:00"), (3, "08:00", "18:00")])
    with pytest.raises(RuleViolation) as refused:
        book(world, at(1, 9, month=10), at(1, 10, month=10))  # 国庆 Thursday
    assert refused.value.rule == "holiday"
    assert refused.value.details["holiday"] == "National Day"
    # Saturday 10 October 2026 is a working day (调休): Monday's hours, 09:00-12:00
    book(world, at(10, 9, month=10), at(10, 12, month=10))
    assert refused_rule(world, at(10, 13, month=10), at(10, 14, month=10)) == "opening_hours"


def test_holiday_rule_off_follows_the_weekday(booking_world, frozen):
    frozen.move_to(at(20, 8, month=9))
    world = booking_world(closed_on_holidays=False)
    book(world, at(1, 9, month=10), at(1, 10, month=10))


def test_calendar_rows_for_a_year_the_library_does_not_know(booking_world, session, frozen):
    frozen.move_to(datetime(2027, 1, 20, 8, tzinfo=SH))
    world = booking_world()
    # 2027: unknown to the library, so Monday 8 February 2027 is an ordinary day…
    book(world, at(8, 9, month=2, year=2027), at(8, 10, month=2, year=2027))
    # …until the platform admin enters the Spring Festival
    session.add(CalendarDay(day=date(2027, 2, 9), kind="holiday", name="春节"))
    session.add(CalendarDay(day=date(2027, 2, 20), kind="workday", name="春节调休"))
    session.flush()
    with pytest.raises(RuleViolation) as refused:
        book(world, at(9, 9, month=2, year=2027), at(9, 10, month=2, year=2027))
    assert refused.value.details["holiday"] == "春节"
    book(world, at(20, 9, month=2, year=2027), at(20, 10, month=2, year=2027))  # a Saturday


def test_blackout_is_a_conflict_naming_it(booking_world, session):
    world = booking_world()
    session.add(
        Blackout(
            resource_id=world.resource.id,
            start_at=at(2, 12),
            end_at=at(2, 14),
            kind="calibration",
            reason="年度校准",
        )
    )
    session.flush()
    with pytest.raises(Conflict) as refused:
        book(world, at(2, 13), at(2, 15))
    conflict = refused.value.details["conflicts"][0]
    assert conflict["kind"] == "blackout" and conflict["reason"] == "年度校准"
    book(world, at(2, 14), at(2, 15))  # touching the end is fine
    book(world, at(2, 11), at(2, 12))


def test_buffers_keep_bookings_apart(booking_world):
    world = booking_world(buffer_before_minutes=30, buffer_after_minutes=60)
    first = book(world, at(2, 10), at(2, 11))
    assert (first.busy_start, first.busy_end) == (at(2, 9, 30), at(2, 12))
    with pytest.raises(Conflict):
        book(world, at(2, 12), at(2, 13))  # its 30-minute lead-in overlaps the 60-minute tail
    book(world, at(2, 12, 30), at(2, 13, 30))  # exactly clear
    with pytest.raises(Conflict) as refused:
        book(world, at(2, 8), at(2, 9, 30))
    # the suggestions keep both buffers clear of the bookings' buffered spans
    assert refused.value.details["suggestions"] == [
        {"start": "2026-12-01T16:30:00+08:00", "end": "2026-12-01T18:00:00+08:00"},
        {"start": "2026-12-02T15:00:00+08:00", "end": "2026-12-02T16:30:00+08:00"},
    ]


def test_pooled_capacity_boundary(booking_world):
    world = booking_world("hpc", capacity=10, hours=[], closed_on_holidays=False)
    book(world, at(2, 10), at(2, 14), units=6)
    book(world, at(2, 12), at(2, 16), units=4)  # exactly full from 12 to 14
    with pytest.raises(Conflict) as refused:
        book(world, at(2, 13), at(2, 15), units=1)
    assert {c["units"] for c in refused.value.details["conflicts"]} == {6, 4}
    book(world, at(2, 14), at(2, 15), units=6)
    with pytest.raises(ValidationFailed) as too_many:
        book(world, at(3, 10), at(3, 11), units=11)
    assert "units" in too_many.value.fields


def test_training_required_unless_with_operator(booking_world, session):
    world = booking_world(requires_training=True, requires_approval=False)
    with pytest.raises(RuleViolation) as refused:
        book(world, at(2, 10), at(2, 11))
    assert refused.value.rule == "training_required"
    assert refused.value.details["training"]["resource_id"] == world.resource.id
    with pytest.raises(RuleViolation) as no_operator:
        book(world, at(2, 10), at(2, 11), with_operator=True)
    assert no_operator.value.rule == "operator_not_offered"
    world.resource.operator_allowed = True
    for rule in world.resource.prices:
        rule.operator_fee_per_hour = Decimal("50.00")
    session.flush()
    with_operator = book(world, at(2, 10), at(2, 11), with_operator=True)
    # goes to approval, the operator fee applies
    assert with_operator.status == "requested" and with_operator.with_operator
    assert with_operator.estimated_cost == Decimal("250.00")
    session.add(TrainingRecord(user_id=world.customer_user.id, resource_id=world.resource.id))
    session.flush()
    assert book(world, at(2, 12), at(2, 13)).status == "approved"


def test_expired_or_revoked_training_does_not_count(booking_world, session):
    world = booking_world(requires_training=True)
    session.add(
        TrainingRecord(
            user_id=world.customer_user.id,
            category_id=world.resource.category_id,
            valid_until=NOW - timedelta(days=1),
        )
    )
    session.flush()
    with pytest.raises(RuleViolation):
        book(world, at(2, 10), at(2, 11))


@pytest.mark.parametrize("status", [ResourceStatus.MAINTENANCE])
def test_resource_must_be_available(booking_world, session, status):
    world = booking_world()
    world.resource.status = status
    session.flush()
    assert refused_rule(world, at(2, 10), at(2, 11)) == "resource_unavailable"


def test_retired_resource_is_unknown(booking_world, session):
    world = booking_world()
    world.resource.status = ResourceStatus.RETIRED
    session.flush()
    with pytest.raises(ValidationFailed) as refused:
        book(world, at(2, 10), at(2, 11))
    assert "resource_id" in refused.value.fields


def test_external_customer_needs_a_published_price(booking_world, session):
    world = booking_world(prices={"internal": "100.00"})
    assert refused_rule(world, at(2, 10), at(2, 11)) == "no_published_price"
    unpublished = PriceRule(
        resource_id=world.resource.id,
        customer_class="enterprise",
        unit="hour",
        unit_price=Decimal("300.00"),
        published=False,
    )
    session.add(unpublished)
    session.flush()
    assert refused_rule(world, at(2, 10), at(2, 11)) == "no_published_price"
    unpublished.published = True
    session.flush()
    assert book(world, at(2, 10), at(2, 11)).estimated_cost == Decimal("300.00")


def test_customer_classes_and_internal_without_price(
    booking_world, session, make_org, make_user, actor
):
    world = booking_world(prices={"academic": "150.00", "enterprise": "200.00"})
    lab_member = make_user(world.provider, "member")
    internal = book(world, at(2, 8), at(2, 9), actor=actor(lab_member))
    assert internal.customer_class == "internal" and internal.estimated_cost == Decimal("0.00")
    university = make_org("provider", name="山西某大学")
    professor = make_user(university, "member")
    academic = book(world, at(2, 9), at(2, 10), actor=actor(professor))
    assert academic.customer_class == "academic" and academic.estimated_cost == Decimal("150.00")
    assert book(world, at(2, 10), at(2, 11)).customer_class == "enterprise"


def test_price_snapshot_survives_a_price_change(booking_world, session):
    world = booking_world()
    booking = book(world, at(2, 10), at(2, 12))
    for rule in world.resource.prices:
        rule.unit_price = Decimal("999.00")
    session.flush()
    assert booking.price_snapshot["unit_price"] == "200.00"
    assert booking.estimated_cost == Decimal("400.00")


def test_samples_only_on_testing_services(booking_world):
    world = booking_world("testing_service", requires_approval=False)
    with pytest.raises(ValidationFailed) as refused:
        book(world, at(2, 10), at(2, 11))
    assert "samples" in refused.value.fields
    booking = book(world, at(2, 10), at(2, 11), samples=5)
    assert booking.samples == 5 and booking.estimated_cost == Decimal("1000.00")


def test_bureau_officers_and_strangers_cannot_book(booking_world, make_org, make_user, actor):
    world = booking_world()
    officer = make_user(make_org("bureau", region="140100"), "member")
    with pytest.raises(Forbidden):
        book(world, at(2, 10), at(2, 11), actor=actor(officer))
    with pytest.raises(ValidationFailed) as refused:
        book(world, at(2, 10), at(2, 11), customer_org_id=world.provider.id)
    assert "customer_org_id" in refused.value.fields


def test_several_enterprises_must_choose(booking_world, session, actor):
    world = booking_world()
    other, _ = world.another_customer()
    from booking.models.accounts import Membership

    session.add(Membership(user_id=world.customer_user.id, organization_id=other.id))
    session.flush()
    with pytest.raises(ValidationFailed):
        book(world, at(2, 10), at(2, 11), actor=actor(world.customer_user))
    chosen = book(
        world, at(2, 10), at(2, 11), actor=actor(world.customer_user), customer_org_id=other.id
    )
    assert chosen.customer_org_id == other.id


def test_refusals_write_nothing(booking_world, session):
    world = booking_world(min_minutes=60)
    with pytest.raises(RuleViolation):
        book(world, at(2, 10), at(2, 10, 30))
    session.rollback()
    assert session.query(Reservation).count() == 0


def test_opening_hours_with_several_spans_per_day(booking_world, session):
    world = booking_world(hours=[(2, "08:30", "12:00"), (2, "14:00", "17:30")])
    book(world, at(2, 8, 30), at(2, 12))
    assert refused_rule(world, at(2, 11, 30), at(2, 14, 30)) == "opening_hours"
    book(world, at(2, 14), at(2, 17, 30))
    assert OpeningHours  # the model the factory filled
    assert time(8, 30) == world.resource.opening_hours[0].open
