"""The shared factories make valid rows on both databases."""

from datetime import UTC, datetime


def test_resource_and_reservation_factories(
    session, make_org, make_user, make_resource, make_reservation
):
    customer = make_org("enterprise")
    user = make_user(customer)
    resource = make_resource(kind="instrument", buffer_after_minutes=30)
    start = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    booking = make_reservation(resource, customer, user, start)
    session.commit()
    assert booking.busy_end > booking.end_at
    assert booking.exclusive is True
    assert {p.customer_class.value for p in resource.prices} == {
        "internal",
        "academic",
        "enterprise",
    }
