"""Factories of the claims area: completed voucher-paid bookings (held at
approval and redeemed at completion through the voucher hooks, as the
reservation service does), confirmed by both sides."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from booking.models.reservations import Reservation, ReservationStatus
from booking.services import claims as claim_service
from booking.services import vouchers as voucher_service
from tests.factories.accounts import actor_of
from tests.factories.reservations import create_reservation


def approved_voucher_booking(
    session, world, start: datetime, *, estimated: str = "400.00", hours: int = 2, **fields
) -> Reservation:
    """An approved booking paying with the world's voucher, its share held."""
    booking = create_reservation(
        session,
        world.resource,
        world.enterprise,
        world.customer,
        start,
        start + timedelta(hours=hours),
        status="approved",
        estimated_cost=Decimal(estimated),
        voucher_id=fields.pop("voucher_id", world.voucher.id),
        **fields,
    )
    voucher_service.hold_for_booking(session, actor_of(session, world.lab_admin), booking)
    return booking


def complete_booking(session, world, booking: Reservation, final_cost: str) -> Decimal:
    """Record the usage and the final cost, then redeem (the completion hook)."""
    booking.status = ReservationStatus.COMPLETED
    booking.actual_start = booking.start_at
    booking.actual_end = booking.end_at
    booking.final_cost = Decimal(final_cost)
    return voucher_service.redeem_for_booking(session, actor_of(session, world.lab_admin), booking)


def confirm_both(session, world, booking: Reservation) -> None:
    claim_service.confirm_order(session, actor_of(session, world.customer), booking.id)
    claim_service.confirm_order(session, actor_of(session, world.lab_admin), booking.id)


def paid_booking(
    session,
    world,
    start: datetime,
    final_cost: str = "400.00",
    *,
    confirm: bool = True,
    **fields,
) -> Reservation:
    """A completed, voucher-paid, confirmed booking, ready to be claimed."""
    booking = approved_voucher_booking(session, world, start, **fields)
    complete_booking(session, world, booking, final_cost)
    if confirm:
        confirm_both(session, world, booking)
    return booking


EVIDENCE = {
    "invoice_number": "No.14012345",
    "payment_proof": "bank transfer 2026-03-02 ref 88231",
    "usage_record": "usage log #1",
}


def evidence_for(*bookings: Reservation) -> list[dict]:
    return [{"reservation_id": b.id, **EVIDENCE} for b in bookings]


@pytest.fixture
def make_paid_booking(session):
    return lambda world, start, final_cost="400.00", **kw: paid_booking(
        session, world, start, final_cost, **kw
    )
