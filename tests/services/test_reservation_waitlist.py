"""Waiting lists: join a taken time, be offered it in order, accept or let it go."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.domain.errors import Conflict, InvalidTransition, RuleViolation
from booking.models.reservations import WaitlistEntry
from booking.services import events, waitlist
from booking.services import reservations as service

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def request(world, start, end, **extra):
    return {
        "resource_id": world.resource.id,
        "start": start,
        "end": end,
        "purpose": "等候",
        **extra,
    }


@pytest.fixture
def taken(booking_world, actor):
    """A resource whose Wednesday 10-12 is held by one customer, and two more
    customers who want it."""
    world = booking_world()
    holder = service.create_reservation(
        world.session, world.customer_actor, request(world, at(2, 10), at(2, 12))
    )
    _a, first_user = world.another_customer("甲公司")
    _b, second_user = world.another_customer("乙公司")
    return world, holder, actor(first_user), actor(second_user)


def test_join_needs_a_taken_time(booking_world):
    world = booking_world()
    with pytest.raises(RuleViolation) as refused:
        waitlist.join(world.session, world.customer_actor, request(world, at(2, 10), at(2, 12)))
    assert refused.value.rule == "slot_free"


def test_join_checks_every_booking_rule(taken):
    world, _holder, first, _second = taken
    with pytest.raises(RuleViolation) as refused:
        waitlist.join(world.session, first, request(world, at(2, 10, 15), at(2, 12)))
    assert refused.value.rule == "granularity"


def test_offers_go_in_order_and_hold_the_time(taken, session, monkeypatch, actor):
    world, holder, first, second = taken
    offered = []
    monkeypatch.setitem(
        events._subscribers,
        "reservation.waitlist_offered",
        [lambda s, name, entry, actor=None, **kw: offered.append(entry.id)],
    )
    one = waitlist.join(session, first, request(world, at(2, 10), at(2, 12)))
    two = waitlist.join(session, second, request(world, at(2, 11), at(2, 12)))
    with pytest.raises(Conflict):
        waitlist.join(session, first, request(world, at(2, 10), at(2, 11)))  # already waiting
    service.cancel(session, world.customer_actor, holder.id)
    assert (one.status, two.status) == ("offered", "waiting")
    assert offered == [one.id]
    assert one.offer_expires_at == NOW + timedelta(hours=24)
    # the offered time is kept for the first in line
    _c, stranger = world.another_customer()
    with pytest.raises(Conflict):
        service.create_reservation(session, actor(stranger), request(world, at(2, 10), at(2, 11)))
    # the first declines: the second is offered
    waitlist.decline(session, first, one.id)
    assert (one.status, two.status) == ("declined", "offered")
    booking = waitlist.accept(session, second, two.id)
    assert booking.start_at == at(2, 11) and booking.status == "requested"
    assert two.status == "accepted" and two.reservation_id == booking.id


def test_unanswered_offer_expires_and_passes_on(taken, session, frozen):
    world, holder, first, second = taken
    one = waitlist.join(session, first, request(world, at(2, 10), at(2, 12)))
    two = waitlist.join(session, second, request(world, at(2, 10), at(2, 11)))
    service.reject(session, world.lab_actor, holder.id, "优先校内")
    assert one.status == "offered"
    assert waitlist.expire_offers(session, NOW + timedelta(hours=23)) == 0
    frozen.move_to(NOW + timedelta(hours=24))
    with pytest.raises(InvalidTransition):
        waitlist.accept(session, first, one.id)
    assert waitlist.expire_offers(session, NOW + timedelta(hours=24)) == 1
    assert waitlist.expire_offers(session, NOW + timedelta(hours=24)) == 0
    assert (one.status, two.status) == ("expired", "offered")
    # an offer never runs past the wanted start
    assert two.offer_expires_at == at(2, 10)


def test_offer_hours_are_configurable(taken, session):
    world, holder, first, _second = taken
    world.resource.extra = {"waitlist_offer_hours": 2}
    session.flush()
    one = waitlist.join(session, first, request(world, at(2, 10), at(2, 12)))
    service.cancel(session, world.customer_actor, holder.id)
    assert one.offer_expires_at == NOW + timedelta(hours=2)


def test_waiting_entries_close_when_their_start_passes(taken, session, frozen):
    world, _holder, first, _second = taken
    entry = waitlist.join(session, first, request(world, at(2, 10), at(2, 12)))
    assert waitlist.expire_offers(session, at(2, 10)) == 1
    assert entry.status == "expired"


def test_only_the_entrys_owner_answers(taken, session):
    world, holder, first, second = taken
    one = waitlist.join(session, first, request(world, at(2, 10), at(2, 12)))
    service.cancel(session, world.customer_actor, holder.id)
    from booking.domain.errors import NotFound

    with pytest.raises(NotFound):
        waitlist.accept(session, second, one.id)
    left = waitlist.leave(session, first, one.id)
    assert left.status == "cancelled"
    assert session.query(WaitlistEntry).filter_by(status="offered").count() == 0


def test_the_scheduler_offers_times_freed_some_other_way(taken, session, frozen):
    world, holder, first, _second = taken
    one = waitlist.join(session, first, request(world, at(2, 11), at(2, 12)))
    assert waitlist.offer_free_slots(session, NOW) == 0
    service.approve(session, world.lab_actor, holder.id)
    frozen.move_to(at(2, 10, 30))
    service.complete(session, world.lab_actor, holder.id, {})  # done early, at 10:30
    assert one.status == "waiting"
    assert waitlist.offer_free_slots(session, at(2, 10, 30)) == 1
    assert waitlist.offer_free_slots(session, at(2, 10, 30)) == 0
    assert one.status == "offered" and one.offer_expires_at == at(2, 11)
