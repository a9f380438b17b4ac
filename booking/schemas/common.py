"""Fields and schemas every area uses: money as a two-decimal string, times
with the platform's offset, paging."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma

from booking.domain import clock
from booking.domain.errors import N_
from booking.domain.money import format_money, parse_money

MAX_PER_PAGE = 200


def platform_tz() -> ZoneInfo:
    return clock.platform_tz()


def money_text(value: Decimal | None) -> str | None:
    """An amount as ``Money`` answers it: two decimals, rounded to the fen."""
    return None if value is None else format_money(value)


def local_instant_text(value: datetime | None, tz: ZoneInfo) -> str | None:
    """A time as ``Instant`` answers it: ISO 8601 with the offset of ``tz``
    (the platform's; passed in by lists that write many)."""
    return None if value is None else value.astimezone(tz).isoformat()


class Schema(ma.Schema):
    """marshmallow's Schema, with ``dump`` planned once per schema.

    Answers list hundreds of objects of tens of fields, and marshmallow's
    general path (an accessor, ``get_value`` and ``serialize`` per field and
    object) was the larger part of such a request's CPU. Here each field's
    key, attribute, default and own ``_serialize`` are looked up once, and an
    object's values are read directly. The result is the same as
    marshmallow's (``tests/test_schema_dump.py``); hooks, dotted attributes
    and fields that read their own values fall back to marshmallow."""

    def _serialize(self, obj: Any, *, many: bool = False):
        plan = self.__dict__.get("_dump_plan", _UNPLANNED)
        if plan is _UNPLANNED:
            plan = self._dump_plan = _plan(self)
        if plan is None or obj is None:
            return super()._serialize(obj, many=many)
        if many:
            return [_dump_one(plan, item) for item in obj]
        return _dump_one(plan, obj)


_UNPLANNED = object()


def _plan(schema: ma.Schema) -> list | None:
    if type(schema).get_attribute is not ma.Schema.get_attribute:
        return None
    plan = []
    for name, field in schema.dump_fields.items():
        attr = field.attribute or name
        if type(field).get_value is not ma.fields.Field.get_value:
            return None
        if "." in attr:
            attr = _path_reader(attr.split("."))
        key = field.data_key if field.data_key is not None else name
        plan.append((key, name, attr, field._CHECK_ATTRIBUTE, field.dump_default, field._serialize))
    return plan


def _dump_one(plan: list, obj: Any) -> dict:
    # marshmallow reads ``obj[key]`` first where the object has items
    # (mappings, rows), and the attribute otherwise.
    read = _item_or_attribute if hasattr(obj, "__getitem__") else getattr
    out = {}
    for key, name, attr, check, default, serialize in plan:
        if check:
            value = read(obj, attr, ma.missing) if type(attr) is str else attr(obj)
            if value is ma.missing:
                value = default() if callable(default) else default
                if value is ma.missing:
                    continue
        else:
            value = None
        out[key] = serialize(value, name, obj)
    return out


def _path_reader(keys: list[str]):
    """``a.b.c`` read as marshmallow reads it: step by step, a missing step
    passing ``missing`` on."""

    def read(obj: Any) -> Any:
        for key in keys:
            if hasattr(obj, "__getitem__"):
                obj = _item_or_attribute(obj, key, ma.missing)
            else:
                obj = getattr(obj, key, ma.missing)
        return obj

    return read


def _item_or_attribute(obj: Any, key: str, default: Any) -> Any:
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError, AttributeError):
        return getattr(obj, key, default)


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
        return money_text(value)

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
        return local_instant_text(value, platform_tz())

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
        (Schema,),
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema)),
            "page": ma.fields.Integer(),
            "per_page": ma.fields.Integer(),
            "total": ma.fields.Integer(),
        },
    )
