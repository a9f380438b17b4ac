"""The approvals service: the queue, decisions in bulk, delegation."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.domain.errors import Forbidden, NotFound, RuleViolation, ValidationFailed
from booking.models.audit import AuditEvent
from booking.models.reservations import Reservation
from booking.services import approvals
from booking.services import reservations as booking
from tests.factories.accounts import actor_of, create_user

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # a Tuesday


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def request(world, start, end, user=None, **extra) -> Reservation:
    """A booking request made through the reservation service."""
    data = {"resource_id": world.resource.id, "start": start, "end": end, "purpose": "SEM"}
    data.update(extra)
    return booking.create_reservation(world.session, world.actor(user), data)


def queue_ids(session, actor, **filters) -> list[int]:
    items, _ = approvals.approval_queue(session, actor, approvals.QueueFilters(**filters))
    return [item.reservation.id for item in items]


def audit_count(session, action: str) -> int:
    return session.query(AuditEvent).filter_by(action=action).count()


# --- the queue --------------------------------------------------------------------


def test_queue_lists_the_labs_requests_oldest_first_with_what_the_lab_needs(
    booking_world, session, frozen
):
    world = booking_world()
    later_slot = request(world, at(3, 10), at(3, 12), purpose="XRD 物相分析")
    frozen.shift(timedelta(minutes=5))
    _, other_user = world.another_customer("晋中某新材料公司")
    earlier_slot = request(world, at(2, 10), at(2, 12), user=other_user, purpose="SEM 形貌")
    frozen.shift(timedelta(minutes=5))
    decided = request(world, at(4, 10), at(4, 12))
    booking.approve(session, world.lab_actor, decided.id)

    items, total = approvals.approval_queue(session, world.lab_actor, approvals.QueueFilters())

    # Oldest request first, not earliest slot first; decided ones are gone.
    assert [i.reservation.id for i in items] == [later_slot.id, earlier_slot.id]
    assert total == 2
    first, second = items
    assert first.customer_org.name == "太原某材料公司"
    assert second.customer_org.name == "晋中某新材料公司"
    assert first.user.id == world.customer_user.id
    assert first.reservation.purpose == "XRD 物相分析"
    assert first.reservation.estimated_cost == Decimal("400.00")
    assert first.reservation.with_operator is False
    assert first.voucher is None
    # Undecided for the resource's deadline (48 h by default) after the request, it expires.
    assert first.decide_by > first.reservation.created_at


def test_queue_never_shows_another_labs_requests(booking_world, session):
    ours = booking_world()
    theirs = booking_world()
    mine = request(ours, at(2, 10), at(2, 12))
    request(theirs, at(2, 10), at(2, 12))
    assert queue_ids(session, ours.lab_actor) == [mine.id]


def test_customers_have_no_queue(booking_world, session):
    world = booking_world()
    request(world, at(2, 10), at(2, 12))
    with pytest.raises(Forbidden):
        approvals.approval_queue(session, world.customer_actor, approvals.QueueFilters())


def test_queue_filters_by_resource_and_dates_and_pages(
    booking_world, make_resource, session, frozen
):
    world = booking_world()
    second = make_resource(world.provider)
    a = request(world, at(2, 10), at(2, 12))
    frozen.shift(timedelta(minutes=1))
    b = request(world, at(3, 10), at(3, 12), resource_id=second.id)
    frozen.shift(timedelta(minutes=1))
    c = request(world, at(7, 10), at(7, 12))
    lab = world.lab_actor
    assert queue_ids(session, lab, resource_id=second.id) == [b.id]
    assert queue_ids(session, lab, start=at(3, 0), end=at(4, 0)) == [b.id]
    assert queue_ids(session, lab, start=at(5, 0)) == [c.id]
    items, total = approvals.approval_queue(
        session, lab, approvals.QueueFilters(page=2, per_page=2)
    )
    assert total == 3 and [i.reservation.id for i in items] == [c.id]
    assert queue_ids(session, lab) == [a.id, b.id, c.id]


def test_queue_pages_requests_made_at_the_same_moment_by_id(booking_world, make_resource, session):
    # The clock stands still: every request has the same created_at, so the
    # page boundaries rest on the id alone; no request is shown twice or lost.
    world = booking_world()
    second = make_resource(world.provider)
    made = [
        request(world, at(day, 10), at(day, 12), resource_id=(world.resource, second)[n % 2].id)
        for n, day in enumerate((2, 3, 4, 7, 8))  # weekdays
    ]
    lab = world.lab_actor
    pages = [
        approvals.approval_queue(session, lab, approvals.QueueFilters(page=page, per_page=2))
        for page in (1, 2, 3, 4)
    ]
    assert [[i.reservation.id for i in items] for items, _ in pages] == [
        [made[0].id, made[1].id],
        [made[2].id, made[3].id],
        [made[4].id],
        [],
    ]
    assert {total for _, total in pages} == {5}
    first = pages[0][0][1]
    assert (first.resource.id, first.customer_org.id, first.user.id) == (
        second.id,
        world.customer.id,
        world.customer_user.id,
    )


def test_queue_shows_the_voucher_and_its_share(voucher_world, session):
    with time_machine.travel(datetime(2026, 6, 1, 8, 0, tzinfo=SH), tick=False):
        world = voucher_world()
        reservation = booking.create_reservation(
            session,
            actor_of(session, world.customer),
            {
                "resource_id": world.resource.id,
                "start": datetime(2026, 6, 2, 10, 0, tzinfo=SH),
                "end": datetime(2026, 6, 2, 12, 0, tzinfo=SH),
                "purpose": "SEM",
                "voucher_id": world.voucher.id,
            },
        )
        items, _ = approvals.approval_queue(
            session, actor_of(session, world.lab_admin), approvals.QueueFilters()
        )
    [item] = items
    assert item.reservation.id == reservation.id
    assert item.voucher.id == world.voucher.id
    assert item.voucher.share == Decimal("200.00")  # half of 400.00 by the default policy
    assert item.voucher.customer_share == Decimal("200.00")
    assert item.voucher.problem is None


# --- deciding many at once ------------------------------------------------------------


def test_bulk_approve_goes_through_the_reservation_service(booking_world, session):
    world = booking_world()
    first = request(world, at(2, 10), at(2, 12))
    second = request(world, at(3, 10), at(3, 12))
    outcomes = approvals.decide(
        session, world.lab_actor, approvals.Batch(approve=[second.id, first.id])
    )
    assert [(o.id, o.outcome, o.status) for o in outcomes] == [
        (first.id, "approved", "approved"),
        (second.id, "approved", "approved"),
    ]
    assert {first.status, second.status} == {"approved"}
    assert first.decided_by_id == world.lab_admin.id
    assert audit_count(session, "reservation.approve") == 2
    assert queue_ids(session, world.lab_actor) == []


def test_bulk_reject_keeps_each_reason(booking_world, session):
    world = booking_world()
    first = request(world, at(2, 10), at(2, 12))
    second = request(world, at(3, 10), at(3, 12))
    outcomes = approvals.decide(
        session,
        world.lab_actor,
        approvals.Batch(reject=[(first.id, "仪器维护"), (second.id, " 样品不符合要求 ")]),
    )
    assert [o.outcome for o in outcomes] == ["rejected", "rejected"]
    assert (first.status, first.reason) == ("rejected", "仪器维护")
    assert (second.status, second.reason) == ("rejected", "样品不符合要求")
    assert audit_count(session, "reservation.reject") == 2


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_rejection_needs_a_reason_and_nothing_is_decided_without(booking_world, session, reason):
    world = booking_world()
    first = request(world, at(2, 10), at(2, 12))
    second = request(world, at(3, 10), at(3, 12))
    with pytest.raises(ValidationFailed) as refused:
        approvals.decide(
            session,
            world.lab_actor,
            approvals.Batch(approve=[first.id], reject=[(second.id, reason)]),
        )
    assert "reason" in refused.value.fields
    assert (first.status, second.status) == ("requested", "requested")
    assert audit_count(session, "reservation.approve") == 0


def test_a_batch_listing_an_id_twice_is_refused_whole(booking_world, session):
    world = booking_world()
    first = request(world, at(2, 10), at(2, 12))
    with pytest.raises(ValidationFailed) as refused:
        approvals.decide(
            session,
            world.lab_actor,
            approvals.Batch(approve=[first.id], reject=[(first.id, "重复")]),
        )
    assert refused.value.details["listed_twice"] == [first.id]
    assert first.status == "requested"


def test_a_mixed_batch_decides_what_it_can_and_names_the_rest(booking_world, session):
    world = booking_world()
    theirs = booking_world()
    approved_already = request(world, at(2, 10), at(2, 12))
    booking.approve(session, world.lab_actor, approved_already.id)
    fresh = request(world, at(3, 10), at(3, 12))
    foreign = request(theirs, at(3, 10), at(3, 12))
    outcomes = approvals.decide(
        session,
        world.lab_actor,
        approvals.Batch(approve=[approved_already.id, fresh.id, foreign.id, 999_999]),
    )
    by_id = {o.id: o for o in outcomes}
    assert by_id[fresh.id].outcome == "approved"
    assert by_id[approved_already.id].outcome == "refused"
    assert by_id[approved_already.id].error.code == "invalid_state"
    assert by_id[approved_already.id].status == "approved"
    # Another lab's request is as unknown as one that does not exist.
    assert by_id[foreign.id].error.code == "not_found"
    assert by_id[foreign.id].status is None
    assert by_id[999_999].error.code == "not_found"
    assert fresh.status == "approved" and foreign.status == "requested"


def test_an_atomic_batch_decides_nothing_when_one_is_refused(booking_world, session):
    world = booking_world()
    approved_already = request(world, at(2, 10), at(2, 12))
    booking.approve(session, world.lab_actor, approved_already.id)
    fresh = request(world, at(3, 10), at(3, 12))
    before = audit_count(session, "reservation.approve")
    with pytest.raises(approvals.BatchRefused) as refused:
        approvals.decide(
            session,
            world.lab_actor,
            approvals.Batch(approve=[approved_already.id, fresh.id]),
            atomic=True,
        )
    assert refused.value.status == 409
    results = {r["id"]: r for r in refused.value.details["results"]}
    assert results[approved_already.id]["error"]["code"] == "invalid_state"
    session.expire_all()
    assert session.get(Reservation, fresh.id).status == "requested"
    assert audit_count(session, "reservation.approve") == before


def test_a_past_start_cannot_be_approved_but_can_be_rejected(booking_world, session, frozen):
    world = booking_world()
    soon = request(world, at(1, 10), at(1, 12))
    other = request(world, at(1, 14), at(1, 16))
    frozen.move_to(at(1, 10, 30))
    outcomes = approvals.decide(
        session, world.lab_actor, approvals.Batch(approve=[soon.id], reject=[(other.id, "迟了")])
    )
    assert [(o.id, o.outcome) for o in outcomes] == [(soon.id, "refused"), (other.id, "rejected")]
    assert outcomes[0].error.code == "invalid_state"


# --- delegation ---------------------------------------------------------------------


def test_a_named_approver_decides_that_resources_requests_only(
    booking_world, make_resource, session
):
    world = booking_world()
    technician = create_user(session, world.provider, "member")
    elsewhere = make_resource(world.provider)
    named = approvals.name_approver(
        session, world.lab_actor, world.resource.id, user_id=technician.id
    )
    assert (named.user_id, named.role) == (technician.id, "member")
    mine = request(world, at(2, 10), at(2, 12))
    not_mine = request(world, at(2, 10), at(2, 12), resource_id=elsewhere.id)
    tech = actor_of(session, technician)

    assert queue_ids(session, tech) == [mine.id]
    outcomes = approvals.decide(session, tech, approvals.Batch(approve=[mine.id, not_mine.id]))
    assert [(o.id, o.outcome) for o in outcomes] == [
        (mine.id, "approved"),
        (not_mine.id, "refused"),
    ]
    assert outcomes[1].error.code == "not_found"
    assert mine.decided_by_id == technician.id
    # The lab's admins still decide every resource of the lab.
    assert queue_ids(session, world.lab_actor) == [not_mine.id]


def test_a_member_not_named_cannot_decide(booking_world, session):
    world = booking_world()
    member = create_user(session, world.provider, "member")
    pending = request(world, at(2, 10), at(2, 12))
    actor = actor_of(session, member)
    assert queue_ids(session, actor) == []
    [outcome] = approvals.decide(session, actor, approvals.Batch(approve=[pending.id]))
    assert outcome.outcome == "refused" and pending.status == "requested"


def test_removing_an_approver_ends_their_say(booking_world, session):
    world = booking_world()
    technician = create_user(session, world.provider, "member")
    approvals.name_approver(session, world.lab_actor, world.resource.id, user_id=technician.id)
    pending = request(world, at(2, 10), at(2, 12))
    approvals.remove_approver(session, world.lab_actor, world.resource.id, technician.id)
    assert approvals.list_approvers(session, world.lab_actor, world.resource.id) == []
    [outcome] = approvals.decide(
        session, actor_of(session, technician), approvals.Batch(approve=[pending.id])
    )
    assert outcome.error.code == "not_found"
    assert audit_count(session, "resource.approver_add") == 1
    assert audit_count(session, "resource.approver_remove") == 1


def test_only_members_of_the_lab_can_be_named(booking_world, session):
    world = booking_world()
    with pytest.raises(RuleViolation) as refused:
        approvals.name_approver(
            session, world.lab_actor, world.resource.id, user_id=world.customer_user.id
        )
    assert refused.value.rule == "approver_not_member"
    assert refused.value.status == 422
    with pytest.raises(ValidationFailed):
        approvals.name_approver(session, world.lab_actor, world.resource.id, email="nobody@x.cn")
    assert approvals.list_approvers(session, world.lab_actor, world.resource.id) == []
    assert audit_count(session, "resource.approver_add") == 0


def test_only_the_labs_admins_name_approvers(booking_world, session):
    world = booking_world()
    theirs = booking_world()
    member = create_user(session, world.provider, "member")
    with pytest.raises(Forbidden):
        approvals.name_approver(
            session, actor_of(session, member), world.resource.id, user_id=member.id
        )
    with pytest.raises(NotFound):
        approvals.name_approver(session, theirs.lab_actor, world.resource.id, user_id=member.id)
    with pytest.raises(NotFound):
        approvals.list_approvers(session, theirs.lab_actor, world.resource.id)
    # The lab's own people may read who decides.
    assert approvals.list_approvers(session, actor_of(session, member), world.resource.id) == []


def test_naming_twice_is_a_conflict(booking_world, session):
    world = booking_world()
    technician = create_user(session, world.provider, "member")
    approvals.name_approver(session, world.lab_actor, world.resource.id, email=technician.email)
    with pytest.raises(Exception) as refused:
        approvals.name_approver(session, world.lab_actor, world.resource.id, user_id=technician.id)
    assert refused.value.status == 409
