"""The reservation service: making a booking, conflicts, and the life cycle."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.domain.errors import Conflict, InvalidTransition, RuleViolation, ValidationFailed
from booking.models.audit import AuditEvent
from booking.services import reservations as service

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # a Tuesday


def at(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def book(world, start, end, actor=None, **extra):
    data = {"resource_id": world.resource.id, "start": start, "end": end, "purpose": "SEM"}
    data.update(extra)
    return service.create_reservation(world.session, actor or world.customer_actor, data)


def test_a_booking_holds_its_time_and_is_requested(booking_world, session):
    world = booking_world()
    booking = book(world, at(2, 10), at(2, 12))
    session.commit()
    assert booking.status == "requested"
    assert booking.customer_class == "enterprise"
    assert booking.estimated_cost == Decimal("400.00")
    assert booking.price_snapshot["unit_price"] == "200.00"
    assert session.query(AuditEvent).filter_by(action="reservation.create").count() == 1


def test_no_approval_needed_means_approved_at_once(booking_world, session):
    world = booking_world(requires_approval=False)
    booking = book(world, at(2, 10), at(2, 12))
    assert booking.status == "approved"
    assert booking.decided_at is not None


def test_overlap_is_409_with_anonymous_conflict_and_suggestions(booking_world, session):
    world = booking_world()
    book(world, at(2, 10), at(2, 12))
    _other_org, other_user = world.another_customer()
    with pytest.raises(Conflict) as refused:
        book(world, at(2, 11), at(2, 13), actor=world.actor(other_user))
    details = refused.value.details
    assert details["conflicts"] == [
        {
            "kind": "booking",
            "start": "2026-12-02T10:00:00+08:00",
            "end": "2026-12-02T12:00:00+08:00",
            "units": 1,
        }
    ]
    assert details["suggestions"] == [
        {"start": "2026-12-02T08:00:00+08:00", "end": "2026-12-02T10:00:00+08:00"},
        {"start": "2026-12-02T12:00:00+08:00", "end": "2026-12-02T14:00:00+08:00"},
    ]


def test_own_conflicting_booking_is_named(booking_world):
    world = booking_world()
    first = book(world, at(2, 10), at(2, 12))
    with pytest.raises(Conflict) as refused:
        book(world, at(2, 11), at(2, 13))
    assert refused.value.details["conflicts"][0]["id"] == first.id


def test_life_cycle_to_completion(booking_world, session, frozen):
    world = booking_world()
    booking = book(world, at(2, 10), at(2, 12))
    service.approve(session, world.lab_actor, booking.id)
    frozen.move_to(at(2, 9, 55))
    service.check_in(session, world.lab_actor, booking.id)
    frozen.move_to(at(2, 11, 40))
    service.check_out(session, world.lab_actor, booking.id)
    done = service.complete(session, world.lab_actor, booking.id, {})
    assert done.status == "completed"
    assert done.final_cost == Decimal("350.00")  # 1 h 45 min at 200/h
    assert done.customer_amount == Decimal("350.00")
    assert done.sequence == 4


def test_illegal_move_is_invalid_state(booking_world, session):
    world = booking_world()
    booking = book(world, at(2, 10), at(2, 12))
    with pytest.raises(InvalidTransition):
        service.check_in(session, world.lab_actor, booking.id)


def test_bad_units_and_samples(booking_world):
    world = booking_world()
    with pytest.raises(ValidationFailed) as refused:
        book(world, at(2, 10), at(2, 12), units=2, samples=3)
    assert set(refused.value.fields) == {"units", "samples"}


def test_training_required(booking_world):
    world = booking_world(requires_training=True)
    with pytest.raises(RuleViolation) as refused:
        book(world, at(2, 10), at(2, 12))
    assert refused.value.rule == "training_required"
