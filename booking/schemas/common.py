"""Fields and schemas every area uses: money as a two-decimal string, times
with the platform's offset, paging."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import marshmallow as ma

from booking.domain import clock
from booking.domain.errors import N_
from booking.domain.money import format_money, parse_money

MAX_PER_PAGE = 200


def platform_tz() -> ZoneInfo:
    return clock.platform_tz()


class Money(ma.fields.Field):
    """CNY as a string with two decimals (``"1234.50"``). Accepts a string or a
    number with at most two decimals; never a float inside."""

    default_error_messages = {"invalid": N_("Not a valid amount of money.")}

    def __init__(self, *, minimum: Decimal | None = Decimal("0"), **kwargs):
        self.minimum = minimum
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault("type", "string")
        kwargs["metadata"].setdefault("example", "1234.50")
        kwargs["metadata"].setdefault("pattern", r"^-?\d+(\.\d{1,2})?$")
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format_money(value)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            raise self.make_error("invalid")
        try:
            amount = parse_money(value)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None
        if self.minimum is not None and amount < self.minimum:
            raise ma.ValidationError(N_("Must not be negative."))
        return amount


class Instant(ma.fields.Field):
    """An ISO 8601 time. Without an offset it means platform local time;
    answers always carry the platform's offset."""

    default_error_messages = {"invalid": N_("Not a valid date and time (ISO 8601).")}

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault("type", "string")
        kwargs["metadata"].setdefault("format", "date-time")
        super().__init__(**kwargs)

    def _serialize(self, value: datetime | None, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(platform_tz()).isoformat()

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            return clock.parse_instant(value, platform_tz())
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


class PageArgs(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    per_page = ma.fields.Integer(
        load_default=50, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE)
    )


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """The list envelope of API.md: ``{"items", "page", "per_page", "total"}``."""
    return type(
        name,
        (ma.Schema,),
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema)),
            "page": ma.fields.Integer(),
            "per_page": ma.fields.Integer(),
            "total": ma.fields.Integer(),
        },
    )
