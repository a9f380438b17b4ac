"""Recurring bookings through the service: every occurrence checked, all or
nothing unless partial, cancel one or the rest."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.domain.errors import Conflict, RuleViolation
from booking.models.reservations import Reservation, ReservationSeries
from booking.services import reservations as service

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def series(world, recurrence, actor=None, **extra):
    data = {
        "resource_id": world.resource.id,
        "start": at(2, 10),
        "end": at(2, 12),
        "purpose": "每周例行测试",
        "recurrence": recurrence,
        **extra,
    }
    return service.create_booking(world.session, actor or world.customer_actor, data)


def test_weekly_series_books_every_occurrence(booking_world, session):
    world = booking_world()
    result = series(world, {"freq": "weekly", "count": 4})
    assert [r.start_at.astimezone(SH).date() for r in result.made] == [
        date(2026, 12, 2),
        date(2026, 12, 9),
        date(2026, 12, 16),
        date(2026, 12, 23),
    ]
    assert {r.series_id for r in result.made} == {result.series.id}
    assert result.refused == []
    assert result.series.rule["freq"] == "weekly"


def test_all_or_nothing(booking_world, session, actor):
    world = booking_world()
    _org, other = world.another_customer()
    service.create_reservation(
        session,
        actor(other),
        {"resource_id": world.resource.id, "start": at(9, 11), "end": at(9, 12), "purpose": "x"},
    )
    with pytest.raises(Conflict) as refused:
        series(world, {"freq": "weekly", "count": 3})
    details = refused.value.details
    assert details["refused"] == 1 and details["occurrences"][0]["start"].startswith("2026-12-09")
    session.rollback()
    assert session.query(Reservation).filter_by(user_id=world.customer_user.id).count() == 0
    assert session.query(ReservationSeries).count() == 0


def test_partial_books_what_it_can(booking_world, session, actor):
    world = booking_world()
    _org, other = world.another_customer()
    service.create_reservation(
        session,
        actor(other),
        {"resource_id": world.resource.id, "start": at(9, 11), "end": at(9, 12), "purpose": "x"},
    )
    result = series(world, {"freq": "weekly", "count": 3, "partial": True})
    assert len(result.made) == 2
    assert result.refused[0]["error"]["code"] == "conflict"


def test_rule_refusals_are_reported_per_occurrence(booking_world):
    world = booking_world()  # closed at weekends
    with pytest.raises(RuleViolation) as refused:
        series(world, {"freq": "daily", "count": 5})
    rules = [o["error"]["details"].get("rule") for o in refused.value.details["occurrences"]]
    assert rules == ["opening_hours", "opening_hours"]  # Saturday and Sunday


def test_cancel_one_or_the_rest(booking_world, session):
    world = booking_world(requires_approval=False)
    made = series(world, {"freq": "weekly", "count": 4}).made
    service.cancel(session, world.customer_actor, made[1].id)
    assert [r.status for r in made] == ["approved", "cancelled", "approved", "approved"]
    cancelled = service.cancel(session, world.customer_actor, made[2].id, scope="following")
    assert [r.id for r in cancelled] == [made[2].id, made[3].id]
    assert [r.status for r in made] == ["approved", "cancelled", "cancelled", "cancelled"]
