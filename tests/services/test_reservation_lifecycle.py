"""A booking's life after it is made: decisions, cancelling, moving, using,
completing, and the scheduler's sweeps."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.domain.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from booking.models.audit import AuditEvent
from booking.models.reservations import Reservation
from booking.services import events
from booking.services import reservations as service

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # Tuesday


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def published(monkeypatch):
    seen: list[tuple[str, int]] = []

    def handler(session, name, subject, actor=None, **data):
        seen.append((name, subject.id))

    monkeypatch.setitem(events._subscribers, "*", [handler])
    return seen


def book(world, start, end, actor=None, **extra):
    data = {"resource_id": world.resource.id, "start": start, "end": end, "purpose": "测试"}
    data.update(extra)
    return service.create_reservation(world.session, actor or world.customer_actor, data)


def actions(session, reservation_id: int) -> list[str]:
    return [
        e.action
        for e in session.query(AuditEvent)
        .filter_by(target_type="reservations", target_id=reservation_id)
        .order_by(AuditEvent.id)
    ]


# --- deciding ----------------------------------------------------------------------


def test_approve_and_reject_publish_and_audit(booking_world, session, published):
    world = booking_world()
    first = book(world, at(2, 10), at(2, 11))
    second = book(world, at(2, 12), at(2, 13))
    service.approve(session, world.lab_actor, first.id)
    rejected = service.reject(session, world.lab_actor, second.id, "  与校内实验冲突  ")
    assert rejected.reason == "与校内实验冲突" and rejected.decided_by_id == world.lab_admin.id
    assert published == [
        ("reservation.requested", first.id),
        ("reservation.requested", second.id),
        ("reservation.approved", first.id),
        ("reservation.rejected", second.id),
    ]
    assert actions(session, first.id) == ["reservation.create", "reservation.approve"]
    event = session.query(AuditEvent).filter_by(action="reservation.reject").one()
    assert event.before["status"] == "requested" and event.after["status"] == "rejected"
    assert event.actor_user_id == world.lab_admin.id


def test_reject_needs_a_reason_and_frees_the_time(booking_world, session, actor):
    world = booking_world()
    booking = book(world, at(2, 10), at(2, 11))
    with pytest.raises(ValidationFailed):
        service.reject(session, world.lab_actor, booking.id, "  ")
    service.reject(session, world.lab_actor, booking.id, "设备故障")
    _org, other = world.another_customer()
    assert book(world, at(2, 10), at(2, 11), actor=actor(other)).id


def test_only_the_owning_lab_decides(booking_world, session, make_org, make_user, actor):
    world = booking_world()
    booking = book(world, at(2, 10), at(2, 11))
    other_lab_admin = make_user(make_org("provider"), "admin")
    with pytest.raises(NotFound):
        service.approve(session, actor(other_lab_admin), booking.id)
    from booking.domain.errors import Forbidden

    with pytest.raises(Forbidden):
        service.approve(session, world.customer_actor, booking.id)


def test_named_approver_may_decide(booking_world, session, make_user, actor):
    from booking.models.catalog import ResourceApprover

    world = booking_world()
    technician = make_user(world.provider, "member")
    session.add(ResourceApprover(resource_id=world.resource.id, user_id=technician.id))
    session.flush()
    booking = book(world, at(2, 10), at(2, 11))
    assert service.approve(session, actor(technician), booking.id).status == "approved"


def test_approving_after_the_start_is_refused(booking_world, session, frozen):
    world = booking_world()
    booking = book(world, at(2, 10), at(2, 11))
    frozen.move_to(at(2, 10))
    with pytest.raises(InvalidTransition):
        service.approve(session, world.lab_actor, booking.id)


# --- cancelling ------------------------------------------------------------------------


def test_customer_cancels_until_the_window_boundary(booking_world, session, frozen):
    world = booking_world(cancel_minutes=120, requires_approval=False)
    early = book(world, at(2, 10), at(2, 11))
    late = book(world, at(2, 12), at(2, 13))
    frozen.move_to(at(2, 8))  # exactly 120 minutes before the first
    assert service.cancel(session, world.customer_actor, early.id)[0].status == "cancelled"
    frozen.move_to(at(2, 10, 1))  # 119 minutes before the second
    with pytest.raises(RuleViolation) as refused:
        service.cancel(session, world.customer_actor, late.id)
    assert refused.value.rule == "cancellation_window"
    # the lab admin can, with a reason
    with pytest.raises(ValidationFailed):
        service.cancel(session, world.lab_actor, late.id)
    done = service.cancel(session, world.lab_actor, late.id, "仪器故障")[0]
    assert done.status == "cancelled" and done.reason == "仪器故障" and done.cancelled_at


def test_cancelled_time_is_free_again_and_cancel_twice_is_invalid(booking_world, session, actor):
    world = booking_world()
    booking = book(world, at(2, 10), at(2, 11))
    service.cancel(session, world.customer_actor, booking.id)
    with pytest.raises(InvalidTransition):
        service.cancel(session, world.customer_actor, booking.id)
    _org, other = world.another_customer()
    book(world, at(2, 10), at(2, 11), actor=actor(other))


def test_colleague_sees_but_only_owner_or_admin_cancels(booking_world, session, make_user, actor):
    world = booking_world()
    booking = book(world, at(2, 10), at(2, 11))
    colleague = make_user(world.customer, "member")
    assert service.get_reservation(session, actor(colleague), booking.id).id == booking.id
    from booking.domain.errors import Forbidden

    with pytest.raises(Forbidden):
        service.cancel(session, actor(colleague), booking.id)
    boss = make_user(world.customer, "admin")
    service.cancel(session, actor(boss), booking.id)


# --- moving ------------------------------------------------------------------------------


def test_reschedule_moves_and_frees_the_old_time(booking_world, session, actor, published):
    world = booking_world(requires_approval=False)
    booking = book(world, at(2, 10), at(2, 11))
    moved = service.reschedule(session, world.customer_actor, booking.id, at(2, 14), at(2, 16))
    assert (moved.start_at, moved.end_at, moved.status) == (at(2, 14), at(2, 16), "approved")
    assert moved.estimated_cost == Decimal("400.00") and moved.sequence == 1
    assert ("reservation.rescheduled", booking.id) in published
    _org, other = world.another_customer()
    book(world, at(2, 10), at(2, 11), actor=actor(other))


def test_reschedule_is_atomic_the_old_time_is_kept(booking_world, session, actor):
    world = booking_world()
    mine = book(world, at(2, 10), at(2, 11))
    _org, other = world.another_customer()
    book(world, at(2, 14), at(2, 15), actor=actor(other))
    with pytest.raises(Conflict):
        service.reschedule(session, world.customer_actor, mine.id, at(2, 14), at(2, 16))
    with pytest.raises(RuleViolation):
        service.reschedule(session, world.customer_actor, mine.id, at(2, 17), at(2, 19))
    session.expire_all()
    kept = session.get(Reservation, mine.id)
    assert (kept.start_at, kept.end_at, kept.busy_start, kept.status) == (
        at(2, 10),
        at(2, 11),
        at(2, 10),
        "requested",
    )


def test_reschedule_overlapping_itself_is_fine(booking_world, session):
    world = booking_world()
    booking = book(world, at(2, 10), at(2, 12))
    assert service.reschedule(session, world.customer_actor, booking.id, at(2, 11), at(2, 13)).id


def test_reschedule_of_an_approved_booking_needs_approval_again(booking_world, session):
    world = booking_world()
    booking = book(world, at(2, 10), at(2, 11))
    service.approve(session, world.lab_actor, booking.id)
    moved = service.reschedule(session, world.customer_actor, booking.id, at(3, 10), at(3, 11))
    assert moved.status == "requested" and moved.decided_at is None


# --- using -------------------------------------------------------------------------------------


def test_check_in_window_and_actual_times(booking_world, session, frozen):
    world = booking_world(requires_approval=False)
    booking = book(world, at(2, 10), at(2, 12))
    frozen.move_to(at(2, 8, 59))
    with pytest.raises(RuleViolation) as too_early:
        service.check_in(session, world.lab_actor, booking.id)
    assert too_early.value.rule == "check_in_too_early"
    frozen.move_to(at(2, 9, 0))
    with pytest.raises(ValidationFailed):
        service.check_in(session, world.lab_actor, booking.id, at(2, 9, 30))  # in the future
    used = service.check_in(session, world.lab_actor, booking.id)
    assert used.status == "in_use" and used.actual_start == at(2, 9)
    frozen.move_to(at(2, 11))
    with pytest.raises(ValidationFailed):
        service.check_out(session, world.lab_actor, booking.id, at(2, 11, 5))
    out = service.check_out(session, world.lab_actor, booking.id)
    assert out.actual_end == at(2, 11) and out.status == "in_use"
    with pytest.raises(InvalidTransition):
        service.check_in(session, world.lab_actor, booking.id)


def test_complete_prices_actual_usage_by_the_rules(booking_world, session, frozen):
    world = booking_world(requires_approval=False)
    for rule in world.resource.prices:
        rule.rounding_minutes, rule.rounding_threshold_minutes = 30, 15
        rule.setup_fee = Decimal("50.00")
    session.flush()
    booking = book(world, at(2, 10), at(2, 12))
    assert booking.estimated_cost == Decimal("450.00")
    frozen.move_to(at(2, 13))
    done = service.complete(
        session,
        world.lab_actor,
        booking.id,
        {"actual_start": at(2, 10, 5), "actual_end": at(2, 11, 15), "service_way": "guided"},
    )
    # 70 minutes: one full hour, the 10-minute rest under the threshold
    assert done.final_cost == Decimal("250.00")
    assert (done.voucher_amount, done.customer_amount) == (Decimal("0.00"), Decimal("250.00"))
    assert done.service_way == "guided" and done.run_minutes == 70
    assert done.price_snapshot["final"]["total"] == "250.00"


def test_complete_refuses_future_times_and_unstarted_bookings(booking_world, session, frozen):
    world = booking_world(requires_approval=False)
    booking = book(world, at(2, 10), at(2, 12))
    with pytest.raises(InvalidTransition):
        service.complete(session, world.lab_actor, booking.id, {})
    frozen.move_to(at(2, 11))
    with pytest.raises(ValidationFailed) as future:
        service.complete(
            session,
            world.lab_actor,
            booking.id,
            {"actual_start": at(2, 10), "actual_end": at(2, 12)},
        )
    assert "actual_end" in future.value.fields
    done = service.complete(session, world.lab_actor, booking.id, {})
    assert (done.actual_start, done.actual_end) == (at(2, 10), at(2, 11))
    assert done.final_cost == Decimal("200.00")


def test_complete_pooled_by_actual_units(booking_world, session, frozen):
    world = booking_world(
        "hpc",
        capacity=64,
        hours=[],
        closed_on_holidays=False,
        requires_approval=False,
        prices={"enterprise": "0.05"},
    )
    booking = book(world, at(2, 10), at(2, 12), units=32)
    assert booking.estimated_cost == Decimal("3.20")
    frozen.move_to(at(2, 13))
    done = service.complete(session, world.lab_actor, booking.id, {"actual_units": 16})
    assert done.final_cost == Decimal("1.60")
    with pytest.raises(InvalidTransition):
        service.complete(session, world.lab_actor, booking.id, {})


def test_manual_no_show_after_start_with_fee(booking_world, session, frozen):
    world = booking_world(requires_approval=False)
    for rule in world.resource.prices:
        rule.no_show_fee = Decimal("100.00")
    session.flush()
    booking = book(world, at(2, 10), at(2, 12))
    with pytest.raises(InvalidTransition):
        service.mark_no_show(session, world.lab_actor, booking.id)
    frozen.move_to(at(2, 10, 5))
    gone = service.mark_no_show(session, world.lab_actor, booking.id)
    assert gone.status == "no_show" and gone.final_cost == Decimal("100.00")


# --- the scheduler's sweeps ---------------------------------------------------------------------


def test_undecided_requests_expire_by_deadline_or_start(booking_world, session, frozen, published):
    world = booking_world(approval_deadline_minutes=24 * 60, hours=[], closed_on_holidays=False)
    soon = book(world, at(1, 20), at(1, 21))  # starts before the deadline
    later = book(world, at(5, 10), at(5, 11))
    decided = book(world, at(5, 12), at(5, 13))
    service.approve(session, world.lab_actor, decided.id)
    frozen.move_to(at(1, 19, 59))
    assert service.expire_overdue_requests(session, at(1, 19, 59)) == 0
    frozen.move_to(at(1, 20))
    assert service.expire_overdue_requests(session, at(1, 20)) == 1
    assert soon.status == "expired" and later.status == "requested"
    frozen.move_to(at(2, 8))  # 24 hours after they were made
    assert service.expire_overdue_requests(session, at(2, 8)) == 1
    assert service.expire_overdue_requests(session, at(2, 8)) == 0  # idempotent
    assert later.status == "expired" and decided.status == "approved"
    assert ("reservation.expired", later.id) in published
    assert actions(session, later.id)[-1] == "reservation.expire"


def test_no_shows_after_grace(booking_world, session, frozen):
    world = booking_world(no_show_grace_minutes=30, requires_approval=False)
    came = book(world, at(2, 10), at(2, 11))
    absent = book(world, at(2, 12), at(2, 13))
    frozen.move_to(at(2, 10))
    service.check_in(session, world.lab_actor, came.id)
    assert service.mark_no_shows(session, at(2, 12, 29)) == 0
    assert service.mark_no_shows(session, at(2, 12, 30)) == 1
    assert service.mark_no_shows(session, at(2, 12, 30)) == 0
    assert absent.status == "no_show" and came.status == "in_use"
    assert (
        session.query(AuditEvent).filter_by(action="reservation.no_show").one().actor_user_id
        is None
    )


def test_sequence_rises_with_every_change(booking_world, session, frozen):
    world = booking_world()
    booking = book(world, at(2, 10), at(2, 12))
    assert booking.sequence == 0
    service.approve(session, world.lab_actor, booking.id)
    service.reschedule(session, world.lab_actor, booking.id, at(2, 13), at(2, 15))
    service.approve(session, world.lab_actor, booking.id)
    service.cancel(session, world.lab_actor, booking.id, "调整")
    assert booking.sequence == 4
