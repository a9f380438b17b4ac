"""Rights that hang on a membership end with it: a named approver, a former
lab admin, or a customer who left their enterprise keeps no say over what
the organisation's rows still name them on."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from booking.domain.errors import Forbidden, NotFound
from booking.models.accounts import Membership
from booking.models.reservations import Reservation
from booking.services import approvals, notifications, waitlist
from booking.services import reservations as booking
from tests.factories.accounts import actor_of, create_user

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def request(world, start, end, user=None) -> Reservation:
    data = {"resource_id": world.resource.id, "start": start, "end": end, "purpose": "SEM"}
    return booking.create_reservation(world.session, world.actor(user), data)


def leave(session, user, org) -> None:
    """``user``'s membership of ``org`` ends (the row goes, as in the admin UI)."""
    membership = session.scalar(
        select(Membership).where(
            Membership.user_id == user.id, Membership.organization_id == org.id
        )
    )
    session.delete(membership)
    session.flush()
    session.expire(user, ["memberships"])


def queue_ids(session, actor) -> list[int]:
    items, _ = approvals.approval_queue(session, actor, approvals.QueueFilters())
    return [item.reservation.id for item in items]


@pytest.mark.parametrize("role", ["member", "admin"])
def test_an_approver_who_left_the_lab_no_longer_decides(booking_world, session, role):
    world = booking_world()
    person = create_user(session, world.provider, role)
    approvals.name_approver(session, world.lab_actor, world.resource.id, user_id=person.id)
    pending = request(world, at(2, 10), at(2, 12))
    other = request(world, at(3, 10), at(3, 12))
    assert queue_ids(session, actor_of(session, person)) == [pending.id, other.id]

    leave(session, person, world.provider)
    gone = actor_of(session, person)

    # Still named on the resource, but no longer of the lab: no say at all.
    assert [a.user_id for a in world.resource.approvers] == [person.id]
    with pytest.raises(NotFound):
        booking.approve(session, gone, pending.id)
    with pytest.raises(NotFound):
        booking.reject(session, gone, pending.id, "不再需要")
    with pytest.raises(Forbidden):  # the batch is for lab people only
        approvals.decide(session, gone, approvals.Batch(approve=[other.id]))
    with pytest.raises(Forbidden):  # belongs to no lab: no queue at all
        queue_ids(session, gone)
    assert approvals.decidable_resources(session, gone) == []
    assert approvals.is_named_approver(session, person.id) is False
    with pytest.raises(NotFound):
        booking.get_reservation(session, gone, pending.id)
    assert pending.status == "requested" and other.status == "requested"
    # New requests go to the lab's admins, not to the person who left.
    assert [u.id for u in notifications.approvers_of(session, world.resource)] == [
        world.lab_admin.id
    ]
    # The lab's admin still decides.
    assert booking.approve(session, world.lab_actor, pending.id).status == "approved"


def test_a_former_lab_admin_no_longer_decides_or_operates(booking_world, session):
    world = booking_world()
    second_admin = create_user(session, world.provider, "admin")
    pending = request(world, at(2, 10), at(2, 12))
    leave(session, second_admin, world.provider)
    gone = actor_of(session, second_admin)
    with pytest.raises(NotFound):
        booking.approve(session, gone, pending.id)
    with pytest.raises(Forbidden):
        queue_ids(session, gone)
    assert pending.status == "requested"


def test_a_customer_who_left_the_enterprise_cannot_move_its_bookings(booking_world, session):
    world = booking_world(requires_approval=False)
    leaver = create_user(session, world.customer, "member")
    mine = request(world, at(2, 10), at(2, 12), user=leaver)
    assert mine.status == "approved"
    leave(session, leaver, world.customer)
    gone = actor_of(session, leaver)

    with pytest.raises(NotFound):
        booking.cancel(session, gone, mine.id)
    with pytest.raises(NotFound):
        booking.reschedule(session, gone, mine.id, at(3, 10), at(3, 12))
    assert mine.status == "approved" and mine.start_at == at(2, 10)
    # The enterprise's admin still can.
    boss = actor_of(session, create_user(session, world.customer, "admin"))
    assert booking.cancel(session, boss, mine.id)[0].status == "cancelled"


def test_a_waiting_list_entry_is_not_answered_by_someone_who_left(booking_world, session):
    world = booking_world()
    request(world, at(2, 10), at(2, 12))
    org, waiter = world.another_customer("甲公司")
    entry = waitlist.join(
        session,
        actor_of(session, waiter),
        {"resource_id": world.resource.id, "start": at(2, 10), "end": at(2, 12), "purpose": "等"},
    )
    leave(session, waiter, org)
    gone = actor_of(session, waiter)
    assert waitlist.list_entries(session, gone) == []
    with pytest.raises(NotFound):
        waitlist.leave(session, gone, entry.id)
    assert entry.status == "waiting"
