"""The planned dump of ``booking.schemas.common.Schema`` answers exactly what
marshmallow's own dump answers, for every kind of field and object the API
serialises, and falls back to marshmallow where it cannot plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import marshmallow as ma
import pytest

from booking.schemas.common import Instant, Money, Schema


def marshmallows_own(schema: ma.Schema, obj, many: bool = False):
    """What marshmallow's general path makes of ``obj`` with the same schema."""
    return ma.Schema._serialize(schema, obj, many=many)


def twin_schemas():
    class Child(Schema):
        name = ma.fields.String()
        at = Instant()

    def fields():
        return {
            "id": ma.fields.Integer(),
            "label": ma.fields.String(data_key="title"),
            "start": Instant(attribute="start_at"),
            "cost": Money(allow_none=True),
            "flag": ma.fields.Boolean(),
            "shout": ma.fields.Function(lambda o: str(getattr(o, "label", "")).upper()),
            "kids": ma.fields.List(ma.fields.Nested(Child)),
            "first": ma.fields.Nested(Child, allow_none=True),
            "tags": ma.fields.List(ma.fields.String()),
            "extra": ma.fields.Dict(),
            "defaulted": ma.fields.String(dump_default="fallback"),
            "absent": ma.fields.String(),
            "secret": ma.fields.String(load_only=True),
            "kid_name": ma.fields.String(attribute="first.name"),
            "deep_missing": ma.fields.String(attribute="first.nothing.here"),
        }

    ours = type("Ours", (Schema,), fields())
    theirs = type("Theirs", (ma.Schema,), fields())
    return ours(), theirs()


def sample_objects():
    at = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    kid = SimpleNamespace(name="甲", at=at)
    full = SimpleNamespace(
        id=7,
        label="扫描电镜",
        start_at=at,
        cost=Decimal("1234.5"),
        flag=True,
        kids=[kid, SimpleNamespace(name="乙", at=at + timedelta(hours=1))],
        first=kid,
        tags=["SEM", "电镜"],
        extra={"a": 1},
        secret="x",
    )
    empty = SimpleNamespace(
        id=None,
        label=None,
        start_at=None,
        cost=None,
        flag=None,
        kids=[],
        first=None,
        tags=None,
        extra=None,
    )
    as_dict = {"id": 3, "label": "字典", "start_at": at, "kids": [], "first": None}
    return [full, empty, as_dict]


@pytest.mark.parametrize("obj", sample_objects(), ids=["full", "nones", "mapping"])
def test_a_planned_dump_equals_marshmallows(app, obj):
    ours, theirs = twin_schemas()
    with app.app_context():
        expected = theirs.dump(obj)
        assert ours.dump(obj) == expected
        assert list(ours.dump(obj)) == list(expected)  # same keys, same order
        assert ours.dump([obj, obj], many=True) == theirs.dump([obj, obj], many=True)


def test_what_cannot_be_planned_goes_through_marshmallow(app):
    class Hooked(Schema):
        name = ma.fields.String()

        @ma.post_dump
        def shout(self, data, **kwargs):
            return {**data, "name": data["name"].upper()}

    obj = SimpleNamespace(name="b", inner=SimpleNamespace(name="a"))
    assert Hooked().dump(obj) == {"name": "B"}


def test_reservations_in_every_state_dump_as_marshmallow_does(app, session, booking_world):
    from booking.models.reservations import ReservationStatus
    from booking.schemas.reservations import ReservationPageSchema, ReservationSchema
    from tests.factories.reservations import create_reservation

    world = booking_world()
    start = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    rows = []
    for n, status in enumerate(ReservationStatus):
        extra = {}
        if status.value in ("completed", "settled"):
            extra = {
                "actual_start": start + timedelta(days=n),
                "actual_end": start + timedelta(days=n, hours=1),
                "actual_units": 1,
                "final_cost": Decimal("310.50"),
                "voucher_amount": Decimal("155.25"),
                "customer_amount": Decimal("155.25"),
            }
        rows.append(
            create_reservation(
                session,
                world.resource,
                world.customer,
                world.customer_user,
                start + timedelta(days=n),
                status=status.value,
                purpose=f"用途 {n}",
                price_snapshot={"unit": "hour", "unit_price": "200.00"} if n % 2 else {},
                reason="原因" if status.value in ("rejected", "cancelled") else None,
                **extra,
            )
        )
    session.commit()
    schema = ReservationSchema()
    for row in rows:
        assert schema.dump(row) == marshmallows_own(schema, row), row.status
    page = {"items": rows, "page": 1, "per_page": 50, "total": len(rows)}
    envelope = ReservationPageSchema()
    expected = {**marshmallows_own(envelope, page)}
    expected["items"] = [marshmallows_own(schema, row) for row in rows]
    assert envelope.dump(page) == expected
