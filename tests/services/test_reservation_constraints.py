"""The database has the last word on overlaps (PostgreSQL's exclusion
constraint ``ex_reservations_no_overlap``): even when the Python check is
skipped, two live bookings of an exclusive resource cannot overlap, and the
refusal comes back as the same 409 with conflicts and suggestions."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy.exc import IntegrityError

from booking.domain.errors import Conflict
from booking.models.reservations import Reservation
from booking.services import reservations as service

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def no_python_check(monkeypatch):
    """Skip the service's own check, as a racing request would slip past it."""
    monkeypatch.setattr(service, "check_free", lambda *args, **kwargs: None)


def test_constraint_refuses_a_direct_insert(
    requires_postgres, booking_world, make_reservation, session
):
    world = booking_world(buffer_after_minutes=30)
    make_reservation(world.resource, world.customer, world.customer_user, at(2, 10), at(2, 11))
    session.commit()
    with pytest.raises(IntegrityError) as refused:
        make_reservation(world.resource, world.customer, world.customer_user, at(2, 11), at(2, 12))
    assert refused.value.orig.sqlstate == "23P01"
    session.rollback()
    # a cancelled booking holds nothing; a pooled resource is not constrained by it
    first = session.query(Reservation).one()
    first.status = "cancelled"
    session.commit()
    make_reservation(world.resource, world.customer, world.customer_user, at(2, 11), at(2, 12))
    session.commit()


def test_service_turns_the_refusal_into_a_conflict(
    requires_postgres, booking_world, session, no_python_check, actor
):
    world = booking_world()
    data = {"resource_id": world.resource.id, "start": at(2, 10), "end": at(2, 12), "purpose": "x"}
    service.create_reservation(session, world.customer_actor, data)
    session.commit()
    _org, other = world.another_customer()
    session.commit()
    with pytest.raises(Conflict) as refused:
        service.create_reservation(
            session, actor(other), {**data, "start": at(2, 11), "end": at(2, 13)}
        )
    details = refused.value.details
    assert details["conflicts"][0]["kind"] == "booking"
    assert details["suggestions"]
    # the savepoint kept the transaction usable
    assert session.query(Reservation).count() == 1


def test_reschedule_refused_by_the_database_keeps_the_old_time(
    requires_postgres, booking_world, session, no_python_check, actor
):
    world = booking_world()
    mine = service.create_reservation(
        session,
        world.customer_actor,
        {"resource_id": world.resource.id, "start": at(2, 8), "end": at(2, 9), "purpose": "x"},
    )
    _org, other = world.another_customer()
    service.create_reservation(
        session,
        actor(other),
        {"resource_id": world.resource.id, "start": at(2, 14), "end": at(2, 15), "purpose": "y"},
    )
    session.commit()
    with pytest.raises(Conflict):
        service.reschedule(session, world.customer_actor, mine.id, at(2, 14), at(2, 16))
    session.rollback()
    kept = session.get(Reservation, mine.id)
    assert (kept.start_at, kept.end_at) == (at(2, 8), at(2, 9))
