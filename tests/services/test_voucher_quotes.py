"""Quotes of many bookings at once (``vouchers.quotes_for_bookings``, the
approval queue's page): each the quote ``quote_for_booking`` gives alone."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from booking.domain.errors import RuleViolation
from booking.services import admissions
from booking.services import vouchers as service
from tests.factories.accounts import actor_of, create_org, create_user
from tests.factories.catalog import create_resource
from tests.factories.claims import approved_voucher_booking
from tests.factories.reservations import create_reservation
from tests.factories.vouchers import (
    create_admitted_provider,
    create_enterprise,
    create_voucher,
    local,
)

D = Decimal


@pytest.fixture(autouse=True)
def _march(time_machine):
    time_machine.move_to(local(2026, 3, 2, 10), tick=False)


def booking_of(session, world, day: int, **fields):
    """A requested booking row of the world's enterprise, on its own day."""
    start = local(2026, 3, 3, 9) + timedelta(days=day)
    return create_reservation(
        session,
        fields.pop("resource", world.resource),
        fields.pop("customer", world.enterprise),
        world.customer,
        start,
        start + timedelta(hours=2),
        status="requested",
        estimated_cost=D(fields.pop("estimated", "400.00")),
        **fields,
    )


def test_quotes_of_many_bookings_at_once_are_the_quotes_one_at_a_time(session, voucher_world):
    """The approval queue quotes its page at once: every booking gets what
    ``quote_for_booking`` gives it alone, refusals included."""
    world = voucher_world(face_value="1000.00")
    actor = actor_of(session, world.lab_admin)
    plain = booking_of(session, world, 0, voucher_id=world.voucher.id, estimated="333.33")
    held = approved_voucher_booking(session, world, local(2026, 12, 21, 9), estimated="1600.00")
    theirs = create_voucher(
        session, world.bureau, create_enterprise(session), "100.00", officer=world.officer
    )
    not_the_holders = booking_of(session, world, 1, voucher_id=theirs.id)
    outsider = create_resource(session, create_org(session, "provider", region="140105"))
    not_admitted = booking_of(session, world, 2, resource=outsider, voucher_id=world.voucher.id)
    suspended_lab = create_admitted_provider(session)
    platform = create_user(session, create_org(session, "platform"), "admin", platform_admin=True)
    admissions.suspend_provider(
        session,
        actor_of(session, platform),
        admissions.current_admission(session, suspended_lab.id).id,
        "audit",
    )
    suspended = booking_of(
        session,
        world,
        5,
        resource=create_resource(session, suspended_lab),
        voucher_id=world.voucher.id,
    )
    related_firm = create_enterprise(session)
    admissions.declare_related_party(
        session,
        actor_of(session, world.lab_admin),
        world.provider.id,
        {"related_org_id": related_firm.id, "relation": "shareholding"},
    )
    related_voucher = create_voucher(
        session, world.bureau, related_firm, "500.00", officer=world.officer
    )
    related = booking_of(session, world, 3, customer=related_firm, voucher_id=related_voucher.id)
    without = booking_of(session, world, 4)
    bookings = [plain, held, not_the_holders, not_admitted, suspended, related, without]

    quotes = service.quotes_for_bookings(session, actor, bookings)

    assert set(quotes) == {b.id for b in bookings if b.voucher_id}
    for booking in bookings[:-1]:
        try:
            alone = service.quote_for_booking(session, actor, booking.voucher_id, booking)
        except RuleViolation as error:
            assert isinstance(quotes[booking.id], RuleViolation)
            assert quotes[booking.id].details == error.details
            assert quotes[booking.id].params == error.params
        else:
            assert quotes[booking.id] == alone
    assert quotes[plain.id].voucher_share == D("166.67")  # half, by the default policy
    # Its own hold (800.00 of 1,000.00) counts as available to the held booking.
    assert quotes[held.id].voucher_share == D("800.00")
    refusals = (not_the_holders, not_admitted, suspended, related)
    assert [quotes[b.id].details["rule"] for b in refusals] == [
        "voucher_holder",
        "provider_not_admitted",
        "provider_suspended",
        "related_party",
    ]
