""" "My bookings" builds each booking's JSON directly
(``schemas.reservations.reservation_json``): it answers exactly what
``ReservationSchema`` dumps, for bookings in every state and with every
optional part present or missing, through the API too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from booking.models.reservations import ServiceWay
from booking.schemas.reservations import ReservationSchema, reservation_json
from tests.factories.accounts import token_headers

START = datetime(2031, 5, 6, 1, 0, tzinfo=UTC)


def varied_bookings(world, make_reservation):
    resource, customer, user = world.resource, world.customer, world.customer_user
    plain = make_reservation(resource, customer, user, START, status="requested")
    settled = make_reservation(
        resource,
        customer,
        user,
        START + timedelta(days=1),
        status="completed",
        purpose="拉曼光谱：10 个样品",
        with_operator=True,
        samples=10,
        price_snapshot={"unit": "hour", "unit_price": "500.00", "lines": [{"label": "机时"}]},
        estimated_cost=Decimal("1234.50"),
        voucher_estimate=Decimal("617.25"),
        voucher_hold=Decimal("617.25"),
        actual_start=START + timedelta(days=1, minutes=5),
        actual_end=START + timedelta(days=1, hours=2),
        actual_units=1,
        final_cost=Decimal("1100.00"),
        voucher_amount=Decimal("550.00"),
        customer_amount=Decimal("550.00"),
        service_way=ServiceWay.ENTRUSTED,
        decided_at=START - timedelta(days=2),
        sequence=3,
    )
    cancelled = make_reservation(
        resource,
        customer,
        user,
        START + timedelta(days=2),
        status="cancelled",
        reason="设备故障",
        cancelled_at=START - timedelta(hours=5),
        estimated_cost=Decimal("0.00"),
    )
    return [plain, settled, cancelled]


def test_the_direct_json_is_the_schemas_dump(session, booking_world, make_reservation):
    world = booking_world()
    bookings = varied_bookings(world, make_reservation)
    session.commit()
    schema = ReservationSchema()
    for booking in bookings:
        session.refresh(booking)
        assert reservation_json(booking) == schema.dump(booking)
    assert {b.status.value for b in bookings} == {"requested", "completed", "cancelled"}


def test_my_bookings_answers_the_schemas_dump(client, session, booking_world, make_reservation):
    world = booking_world()
    bookings = varied_bookings(world, make_reservation)
    session.commit()
    answer = client.get("/api/v1/reservations", headers=token_headers(session, world.customer_user))
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["total"] == 3 and body["page"] == 1
    schema = ReservationSchema()
    by_id = {b.id: b for b in bookings}
    for item in body["items"]:
        session.refresh(by_id[item["id"]])
        assert item == schema.dump(by_id[item["id"]])
