"""Every move of a booking's life cycle leaves an audit event, and that event
shows every column the move changed (before and after), whoever moved it:
the customer, the lab, or the scheduler."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from booking.models.audit import AuditEvent
from booking.models.reservations import Reservation
from booking.services import audit, waitlist
from booking.services import reservations as service

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # a Tuesday
#: Bookkeeping every write touches; the move's own event is what shows it.
NOT_AUDITED = {"updated_at"}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def book(world, start, end, actor=None, **extra) -> Reservation:
    data = {"resource_id": world.resource.id, "start": start, "end": end, "purpose": "SEM"}
    data.update(extra)
    return service.create_reservation(world.session, actor or world.customer_actor, data)


def state(session, reservation_id: int) -> dict:
    session.flush()
    row = session.get(Reservation, reservation_id)
    session.refresh(row)
    return audit.snapshot(row)


def last_event_id(session) -> int:
    return session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) or 0


def assert_audited(session, reservation_id: int, action: str, move) -> AuditEvent:
    """Run ``move``; its audit event on the booking must exist and show every
    column that changed, with the new value."""
    before = state(session, reservation_id)
    since = last_event_id(session)
    move()
    after = state(session, reservation_id)
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.id > since,
            AuditEvent.target_type == "reservations",
            AuditEvent.target_id == reservation_id,
        )
    ).all()
    assert action in [e.action for e in events], [e.action for e in events]
    event = next(e for e in events if e.action == action)
    changed = {k for k in after if after[k] != before[k]} - NOT_AUDITED
    assert changed, "the move changed nothing"
    unseen = {k for k in changed if k not in (event.after or {})}
    assert not unseen, f"{action} does not show the change of {sorted(unseen)}"
    for key in changed:
        assert same(event.after[key], after[key]), key
        assert same((event.before or {}).get(key), before[key]), key
    return event


def same(recorded, actual) -> bool:
    """Equal values; instants compared as instants (the trail may keep the
    zone the move was given in, the database gives UTC back)."""
    if isinstance(recorded, str) and isinstance(actual, str):
        try:
            return datetime.fromisoformat(recorded) == datetime.fromisoformat(actual)
        except ValueError:
            pass
    return recorded == actual


def test_deciding_moving_using_and_completing_are_audited_in_full(booking_world, session, frozen):
    world = booking_world()
    lab = world.lab_actor
    booking = book(world, at(2, 10), at(2, 12))
    assert_audited(
        session,
        booking.id,
        "reservation.approve",
        lambda: service.approve(session, lab, booking.id),
    )
    event = assert_audited(
        session,
        booking.id,
        "reservation.reschedule",
        lambda: service.reschedule(session, lab, booking.id, at(3, 10), at(3, 12)),
    )
    assert event.after["busy_start"] is not None
    # The moved time is a request again (the resource needs approval).
    assert event.after["status"] == "requested" and event.after["decided_at"] is None
    assert_audited(
        session,
        booking.id,
        "reservation.approve",
        lambda: service.approve(session, lab, booking.id),
    )
    frozen.move_to(at(3, 9, 30))
    assert_audited(
        session,
        booking.id,
        "reservation.check_in",
        lambda: service.check_in(session, lab, booking.id),
    )
    frozen.move_to(at(3, 11, 30))
    assert_audited(
        session,
        booking.id,
        "reservation.check_out",
        lambda: service.check_out(session, lab, booking.id),
    )
    frozen.move_to(at(3, 13))
    event = assert_audited(
        session,
        booking.id,
        "reservation.complete",
        lambda: service.complete(
            session,
            lab,
            booking.id,
            {"actual_start": at(3, 9, 30), "actual_end": at(3, 11, 30), "prep_minutes": 10},
        ),
    )
    assert event.after["service_way"] and event.after["run_minutes"] == 120


def test_rejecting_cancelling_and_the_customers_move_are_audited_in_full(booking_world, session):
    world = booking_world()
    rejected = book(world, at(2, 10), at(2, 11))
    assert_audited(
        session,
        rejected.id,
        "reservation.reject",
        lambda: service.reject(session, world.lab_actor, rejected.id, "设备检修"),
    )
    moved = book(world, at(2, 14), at(2, 15))
    service.approve(session, world.lab_actor, moved.id)
    event = assert_audited(
        session,
        moved.id,
        "reservation.reschedule",
        lambda: service.reschedule(session, world.customer_actor, moved.id, at(4, 14), at(4, 15)),
    )
    # Back to a request: who had decided it, and when, is part of the change.
    assert event.before["decided_by_id"] == world.lab_admin.id
    assert event.after["decided_by_id"] is None and event.after["decided_at"] is None
    event = assert_audited(
        session,
        moved.id,
        "reservation.cancel",
        lambda: service.cancel(session, world.customer_actor, moved.id),
    )
    assert event.after["cancelled_at"] is not None


def test_what_the_scheduler_and_the_lab_record_on_their_own_is_audited_in_full(
    booking_world, session, frozen
):
    world = booking_world(requires_approval=False)
    marked = book(world, at(2, 10), at(2, 11))
    swept = book(world, at(2, 12), at(2, 13))
    frozen.move_to(at(2, 10, 30))
    assert_audited(
        session,
        marked.id,
        "reservation.no_show",
        lambda: service.mark_no_show(session, world.lab_actor, marked.id),
    )
    frozen.move_to(at(2, 15))
    event = assert_audited(
        session,
        swept.id,
        "reservation.no_show",
        lambda: service.mark_no_shows(session, at(2, 15)),
    )
    assert event.actor_user_id is None
    assert event.after["customer_amount"] == f"{Decimal('0.00'):.2f}"


def test_an_undecided_request_expiring_is_audited_in_full(booking_world, session, frozen):
    world = booking_world()
    booking = book(world, at(4, 10), at(4, 11))
    frozen.move_to(NOW + timedelta(days=3))
    event = assert_audited(
        session,
        booking.id,
        "reservation.expire",
        lambda: service.expire_overdue_requests(session, NOW + timedelta(days=3)),
    )
    assert event.after["decided_at"] is not None and event.actor_user_id is None


def test_a_waiting_list_offer_taken_up_is_audited(booking_world, session, actor):
    world = booking_world(requires_approval=False)
    holder = book(world, at(2, 10), at(2, 12))
    _org, other = world.another_customer("甲公司")
    waiter = actor(other)
    entry = waitlist.join(
        session,
        waiter,
        {"resource_id": world.resource.id, "start": at(2, 10), "end": at(2, 12), "purpose": "等"},
    )
    assert_audited(
        session,
        holder.id,
        "reservation.cancel",
        lambda: service.cancel(session, world.customer_actor, holder.id),
    )
    taken = waitlist.accept(session, waiter, entry.id)
    trail = [
        (e.target_type, e.action)
        for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        if (e.target_type, e.target_id)
        in {("waitlist_entries", entry.id), ("reservations", taken.id)}
    ]
    assert trail == [
        ("waitlist_entries", "waitlist.join"),
        ("waitlist_entries", "waitlist.offer"),
        ("reservations", "reservation.create"),
        ("waitlist_entries", "waitlist.accept"),
    ]
