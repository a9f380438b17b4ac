"""Schemas of the reservations area: a booking in and out, its moves, the
waiting list, ratings and the availability query."""

from __future__ import annotations

from datetime import date, datetime

import marshmallow as ma
from webargs.fields import DelimitedList

from booking.domain import clock
from booking.domain.errors import N_
from booking.domain.money import ZERO, format_money
from booking.domain.reservations import ReservationStatus
from booking.models.reservations import ServiceWay
from booking.schemas.common import (
    Instant,
    Money,
    PageArgs,
    Schema,
    local_instant_text,
    money_text,
)

Length = ma.validate.Length
Range = ma.validate.Range
OneOf = ma.validate.OneOf

MAX_SAMPLES = 10_000
MAX_UNITS = 1_000_000


def _end_after_start(data: dict, start: str = "start", end: str = "end") -> None:
    if data.get(start) and data.get(end) and data[end] <= data[start]:
        raise ma.ValidationError(N_("The end must be after the start."), end)


class UntilField(ma.fields.Field):
    """A recurrence's end: a date (``2026-12-31``, inclusive, local) or a time."""

    default_error_messages = {"invalid": N_("Not a valid date.")}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        text = value.strip()
        if len(text) == 10:
            try:
                return date.fromisoformat(text)
            except ValueError:
                raise self.make_error("invalid") from None
        try:
            return clock.parse_instant(text, clock.platform_tz())
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(clock.platform_tz()).isoformat()
        return value.isoformat()


class ReservationRecurrenceSchema(Schema):
    freq = ma.fields.String(required=True, validate=OneOf(["daily", "weekly"]))
    interval = ma.fields.Integer(load_default=1, validate=Range(1, 52), strict=True)
    count = ma.fields.Integer(validate=Range(1, 200), strict=True, allow_none=True)
    until = UntilField(allow_none=True)
    byweekday = ma.fields.List(ma.fields.Raw(), load_default=list)
    partial = ma.fields.Boolean(load_default=False)


class ReservationRequestSchema(Schema):
    """What a booking (or a place on the waiting list) asks for."""

    resource_id = ma.fields.Integer(required=True, strict=True)
    start = Instant(required=True)
    end = Instant(required=True)
    units = ma.fields.Integer(strict=True, validate=Range(1, MAX_UNITS), allow_none=True)
    samples = ma.fields.Integer(strict=True, validate=Range(1, MAX_SAMPLES), allow_none=True)
    purpose = ma.fields.String(required=True, validate=Length(max=2000))
    voucher_id = ma.fields.Integer(strict=True, allow_none=True)
    with_operator = ma.fields.Boolean(load_default=False)
    customer_org_id = ma.fields.Integer(strict=True, allow_none=True)

    @ma.validates_schema
    def check_span(self, data, **kwargs):
        _end_after_start(data)


class ReservationCreateSchema(ReservationRequestSchema):
    """A booking; with ``recurrence`` a series (all or nothing unless
    ``partial`` is true, here or inside the rule)."""

    recurrence = ma.fields.Nested(ReservationRecurrenceSchema, allow_none=True)
    partial = ma.fields.Boolean(load_default=False)


class WaitlistJoinSchema(ReservationRequestSchema):
    pass


class ReservationRejectSchema(Schema):
    reason = ma.fields.String(required=True, validate=Length(min=1, max=2000))


class ReservationCancelSchema(Schema):
    reason = ma.fields.String(validate=Length(max=2000), allow_none=True)
    scope = ma.fields.String(load_default="this", validate=OneOf(["this", "following"]))


class ReservationRescheduleSchema(Schema):
    start = Instant(required=True)
    end = Instant(required=True)
    units = ma.fields.Integer(strict=True, validate=Range(1, MAX_UNITS), allow_none=True)

    @ma.validates_schema
    def check_span(self, data, **kwargs):
        _end_after_start(data)


class ReservationMomentSchema(Schema):
    """Check-in and check-out: the time, when not now."""

    at = Instant(allow_none=True)


class ReservationCompleteSchema(Schema):
    actual_start = Instant(allow_none=True)
    actual_end = Instant(allow_none=True)
    actual_units = ma.fields.Integer(strict=True, validate=Range(1, MAX_UNITS), allow_none=True)
    samples = ma.fields.Integer(strict=True, validate=Range(1, MAX_SAMPLES), allow_none=True)
    service_way = ma.fields.String(validate=OneOf([w.value for w in ServiceWay]), allow_none=True)
    prep_minutes = ma.fields.Integer(strict=True, validate=Range(0, 100_000), allow_none=True)
    post_minutes = ma.fields.Integer(strict=True, validate=Range(0, 100_000), allow_none=True)

    @ma.validates_schema
    def check_span(self, data, **kwargs):
        _end_after_start(data, "actual_start", "actual_end")


class ReservationRatingInSchema(Schema):
    score = ma.fields.Integer(required=True, strict=True, validate=Range(1, 5))
    comment = ma.fields.String(validate=Length(max=2000), allow_none=True)


class ReservationRatingSchema(Schema):
    id = ma.fields.Integer()
    reservation_id = ma.fields.Integer()
    user_id = ma.fields.Integer()
    score = ma.fields.Integer()
    comment = ma.fields.String()
    created_at = Instant()


def _value(attr: str):
    def get(obj):
        value = getattr(obj, attr)
        return value.value if value is not None else None

    return get


class ReservationSchema(Schema):
    id = ma.fields.Integer()
    resource_id = ma.fields.Integer()
    customer_org_id = ma.fields.Integer()
    user_id = ma.fields.Integer()
    start = Instant(attribute="start_at")
    end = Instant(attribute="end_at")
    busy_start = Instant()
    busy_end = Instant()
    units = ma.fields.Integer()
    samples = ma.fields.Integer(allow_none=True)
    status = ma.fields.Function(_value("status"))
    purpose = ma.fields.String()
    with_operator = ma.fields.Boolean()
    customer_class = ma.fields.String()
    price = ma.fields.Function(lambda r: _public_price(r.price_snapshot))
    estimated_cost = Money()
    voucher_id = ma.fields.Integer(allow_none=True)
    voucher_estimate = Money(
        allow_none=True, metadata={"description": "the voucher's share of the estimate"}
    )
    estimated_customer_amount = ma.fields.Function(
        lambda r: format_money(r.estimated_cost - (r.voucher_estimate or ZERO)),
        metadata={"description": "the customer's share of the estimate", "type": "string"},
    )
    voucher_hold = Money()
    actual_start = Instant(allow_none=True)
    actual_end = Instant(allow_none=True)
    actual_units = ma.fields.Integer(allow_none=True)
    final_cost = Money(allow_none=True)
    voucher_amount = Money(allow_none=True)
    customer_amount = Money(allow_none=True)
    service_way = ma.fields.Function(_value("service_way"))
    reason = ma.fields.String(allow_none=True)
    decided_at = Instant(allow_none=True)
    cancelled_at = Instant(allow_none=True)
    series_id = ma.fields.Integer(allow_none=True)
    sequence = ma.fields.Integer()
    created_at = Instant()
    updated_at = Instant()


def _public_price(snapshot: dict | None) -> dict | None:
    """The price terms the booking was made under, with the cost breakdowns."""
    return dict(snapshot) if snapshot else None


def _int_or_none(value) -> int | None:
    return None if value is None else int(value)


def reservation_json(r) -> dict:
    """The booking as ``ReservationSchema`` dumps it, built directly: a page
    of bookings ("my bookings") is answered without a field-by-field pass
    over its 36 fields (``tests/web/test_reservation_json.py`` holds the two
    to the same output)."""
    tz = clock.platform_tz()
    purpose, reason = r.purpose, r.reason
    status, way = r.status, r.service_way
    return {
        "id": r.id,
        "resource_id": r.resource_id,
        "customer_org_id": r.customer_org_id,
        "user_id": r.user_id,
        "start": local_instant_text(r.start_at, tz),
        "end": local_instant_text(r.end_at, tz),
        "busy_start": local_instant_text(r.busy_start, tz),
        "busy_end": local_instant_text(r.busy_end, tz),
        "units": _int_or_none(r.units),
        "samples": _int_or_none(r.samples),
        "status": status.value if status is not None else None,
        "purpose": None if purpose is None else str(purpose),
        "with_operator": None if r.with_operator is None else bool(r.with_operator),
        "customer_class": None if r.customer_class is None else str(r.customer_class),
        "price": _public_price(r.price_snapshot),
        "estimated_cost": money_text(r.estimated_cost),
        "voucher_id": r.voucher_id,
        "voucher_estimate": money_text(r.voucher_estimate),
        "estimated_customer_amount": format_money(r.estimated_cost - (r.voucher_estimate or ZERO)),
        "voucher_hold": money_text(r.voucher_hold),
        "actual_start": local_instant_text(r.actual_start, tz),
        "actual_end": local_instant_text(r.actual_end, tz),
        "actual_units": _int_or_none(r.actual_units),
        "final_cost": money_text(r.final_cost),
        "voucher_amount": money_text(r.voucher_amount),
        "customer_amount": money_text(r.customer_amount),
        "service_way": way.value if way is not None else None,
        "reason": None if reason is None else str(reason),
        "decided_at": local_instant_text(r.decided_at, tz),
        "cancelled_at": local_instant_text(r.cancelled_at, tz),
        "series_id": r.series_id,
        "sequence": _int_or_none(r.sequence),
        "created_at": local_instant_text(r.created_at, tz),
        "updated_at": local_instant_text(r.updated_at, tz),
    }


class ReservationPageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(ReservationSchema))
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()
    total = ma.fields.Integer()


class ReservationListArgs(PageArgs):
    status = DelimitedList(
        ma.fields.String(validate=OneOf([s.value for s in ReservationStatus])), load_default=list
    )
    resource_id = ma.fields.Integer(allow_none=True)
    series_id = ma.fields.Integer(allow_none=True)
    start = Instant(data_key="from", allow_none=True)
    end = Instant(data_key="to", allow_none=True)
    scope = ma.fields.String(validate=OneOf(["customer", "lab"]), allow_none=True)


class ReservationRefusedOccurrenceSchema(Schema):
    start = ma.fields.String()
    end = ma.fields.String()
    error = ma.fields.Dict()


class ReservationSeriesCreatedSchema(Schema):
    series_id = ma.fields.Integer()
    items = ma.fields.List(ma.fields.Nested(ReservationSchema))
    refused = ma.fields.List(ma.fields.Nested(ReservationRefusedOccurrenceSchema))


class AvailabilityArgs(Schema):
    start = Instant(data_key="from", required=True)
    end = Instant(data_key="to", required=True)
    units = ma.fields.Integer(load_default=1, validate=Range(1, MAX_UNITS))

    @ma.validates_schema
    def check_span(self, data, **kwargs):
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            raise ma.ValidationError(N_("The end must be after the start."), "to")


class AvailabilityFreeSchema(Schema):
    start = ma.fields.String()
    end = ma.fields.String()
    units = ma.fields.Integer()


class AvailabilityBusySchema(AvailabilityFreeSchema):
    kind = ma.fields.String(metadata={"description": "booking or blackout"})


class AvailabilitySchema(Schema):
    resource_id = ma.fields.Integer()
    capacity = ma.fields.Integer()
    free = ma.fields.List(ma.fields.Nested(AvailabilityFreeSchema))
    busy = ma.fields.List(ma.fields.Nested(AvailabilityBusySchema))


class WaitlistEntrySchema(Schema):
    id = ma.fields.Integer()
    resource_id = ma.fields.Integer()
    customer_org_id = ma.fields.Integer()
    user_id = ma.fields.Integer()
    start = Instant(attribute="start_at")
    end = Instant(attribute="end_at")
    units = ma.fields.Integer()
    samples = ma.fields.Integer(allow_none=True)
    purpose = ma.fields.String()
    voucher_id = ma.fields.Integer(allow_none=True)
    status = ma.fields.Function(_value("status"))
    created_at = Instant()
    offered_at = Instant(allow_none=True)
    offer_expires_at = Instant(allow_none=True)
    reservation_id = ma.fields.Integer(allow_none=True)


class WaitlistListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(WaitlistEntrySchema))
