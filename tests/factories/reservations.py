"""Factories of the reservations area.

``create_reservation`` inserts a row directly (no rule checks): for tests of
other areas that need a booking in a given state. Tests of booking rules go
through the reservation service instead.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from booking.models.reservations import Reservation, ReservationStatus


def create_reservation(
    session, resource, customer_org, user, start, end=None, *, status="approved", units=1, **fields
) -> Reservation:
    end = end or start + timedelta(hours=2)
    reservation = Reservation(
        resource_id=resource.id,
        customer_org_id=customer_org.id,
        user_id=user.id,
        start_at=start,
        end_at=end,
        busy_start=start - timedelta(minutes=resource.buffer_before_minutes),
        busy_end=end + timedelta(minutes=resource.buffer_after_minutes),
        exclusive=resource.capacity == 1,
        units=units,
        status=ReservationStatus(status),
        customer_class=fields.pop("customer_class", "enterprise"),
        price_snapshot=fields.pop("price_snapshot", {}),
        estimated_cost=fields.pop("estimated_cost", Decimal("400.00")),
        **fields,
    )
    session.add(reservation)
    session.flush()
    return reservation


@pytest.fixture
def make_reservation(session):
    return lambda resource, customer_org, user, start, end=None, **kw: create_reservation(
        session, resource, customer_org, user, start, end, **kw
    )


# --- a small world to book in ------------------------------------------------------


class BookingWorld:
    """A lab (provider) with its admin, one resource, and a customer
    enterprise with a member: what most booking tests start from."""

    def __init__(self, session, resource_kind="instrument", **resource_fields):
        from tests.factories.accounts import actor_of, create_org, create_user
        from tests.factories.catalog import create_resource

        self.session = session
        self.provider = create_org(session, "provider", region="140105", name="山西某检测中心")
        self.lab_admin = create_user(session, self.provider, "admin")
        self.customer = create_org(session, "enterprise", region="140105", name="太原某材料公司")
        self.customer_user = create_user(session, self.customer, "member")
        self.resource = create_resource(session, self.provider, resource_kind, **resource_fields)
        self._actor_of = actor_of

    def actor(self, user=None):
        return self._actor_of(self.session, user or self.customer_user)

    @property
    def customer_actor(self):
        return self.actor(self.customer_user)

    @property
    def lab_actor(self):
        return self.actor(self.lab_admin)

    def another_customer(self, name=None):
        from tests.factories.accounts import create_org, create_user

        org = create_org(
            self.session, "enterprise", region="140105", **({"name": name} if name else {})
        )
        return org, create_user(self.session, org, "member")


@pytest.fixture
def booking_world(session):
    """``booking_world(kind="instrument", **resource_fields)``."""
    return lambda resource_kind="instrument", **kw: BookingWorld(session, resource_kind, **kw)
