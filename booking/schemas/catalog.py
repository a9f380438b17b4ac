"""Schemas of the catalog area: resources as API.md writes them (category as
its code, ``rules{...}``, ``opening_hours``, published ``prices``), the
search arguments, price lists, blackouts, photos, the bulk import, categories
and the platform's calendar.

Shapes and types are checked here; the rules that tie fields together (a
unit that fits the kind, spans that do not overlap, min not above max) are
checked by the domain, so the API, the lab's forms and the import refuse the
same things with the same messages.
"""

from __future__ import annotations

import math
from decimal import Decimal

import marshmallow as ma
from flask import url_for
from flask_smorest.fields import Upload

from booking.domain import catalog as rules
from booking.domain.errors import N_
from booking.schemas.common import Instant, Money, PageArgs, local_instant_text, page_schema
from booking.services.catalog import RULE_FIELDS, current_prices, opening_hours_of

Length = ma.validate.Length


def one_of(choices, message: str) -> ma.validate.OneOf:
    return ma.validate.OneOf(list(choices), error=message)


class WholeNumber(ma.fields.Integer):
    """An integer: a JSON number without a fraction, or digits in a string
    (a form or a spreadsheet cell). ``30.5`` is refused, never truncated."""

    default_error_messages = {"invalid": N_("Not a valid integer.")}

    def _validated(self, value):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float | Decimal):
            finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
            if not finite or value != int(value):
                raise self.make_error("invalid")
            value = int(value)
        if isinstance(value, str):
            text = value.strip()
            if not text.lstrip("-").isdigit():
                raise self.make_error("invalid")
            value = int(text)
        return super()._validated(value)


class Flag(ma.fields.Boolean):
    """A yes/no, also as a spreadsheet writes it (是/否, Y/N)."""

    truthy = ma.fields.Boolean.truthy | {"是", "Y", "y", "yes", "Yes", "YES"}
    falsy = ma.fields.Boolean.falsy | {"否", "N", "n", "no", "No", "NO"}


# --- input --------------------------------------------------------------------


class RulesInSchema(ma.Schema):
    granularity_minutes = WholeNumber()
    min_minutes = WholeNumber()
    max_minutes = WholeNumber()
    lead_minutes = WholeNumber()
    horizon_days = WholeNumber()
    buffer_before_minutes = WholeNumber()
    buffer_after_minutes = WholeNumber()
    cancel_minutes = WholeNumber()
    approval_deadline_minutes = WholeNumber()
    no_show_grace_minutes = WholeNumber()
    requires_approval = Flag()
    requires_training = Flag()
    operator_allowed = Flag()


class OpeningSpanInSchema(ma.Schema):
    weekday = WholeNumber(required=True, metadata={"description": "0 (Monday) to 6 (Sunday)"})
    open = ma.fields.String(required=True, metadata={"example": "08:30"})
    close = ma.fields.String(
        required=True, metadata={"example": "17:30", "description": "24:00 for midnight"}
    )


class PriceInSchema(ma.Schema):
    customer_class = ma.fields.String(
        required=True, validate=one_of(rules.CUSTOMER_CLASSES, N_("Unknown customer class."))
    )
    unit = ma.fields.String(required=True, validate=one_of(rules.UNITS, N_("Unknown unit.")))
    unit_price = Money(required=True)
    setup_fee = Money()
    min_quantity = Money(metadata={"description": "minimum billable quantity, in the unit"})
    rounding_minutes = WholeNumber(
        metadata={"description": "time is billed in blocks of this many minutes (0: exact)"}
    )
    rounding_threshold_minutes = WholeNumber(
        metadata={"description": "a last partial block shorter than this is not billed"}
    )
    order_min = Money(allow_none=True)
    order_max = Money(allow_none=True)
    no_show_fee = Money()
    operator_fee_per_hour = Money()


class ResourceInSchema(ma.Schema):
    """A resource to create (POST). PATCH takes the same fields, all optional."""

    kind = ma.fields.String(
        required=True, validate=one_of(rules.KINDS, N_("Unknown kind of resource."))
    )
    name_zh = ma.fields.String(required=True, validate=Length(min=1, max=200))
    name_en = ma.fields.String(validate=Length(max=200))
    description_zh = ma.fields.String(validate=Length(max=20000))
    description_en = ma.fields.String(validate=Length(max=20000))
    category = ma.fields.String(required=True, metadata={"description": "category code, e.g. 0101"})
    provider_id = ma.fields.Integer(
        strict=True, metadata={"description": "the lab; may be left out by the admin of one lab"}
    )
    region = ma.fields.String(validate=Length(equal=6, error=N_("A region has 6 digits.")))
    location = ma.fields.String(validate=Length(max=200))
    manufacturer = ma.fields.String(validate=Length(max=120))
    model = ma.fields.String(validate=Length(max=120))
    original_value = Money()
    funding_source = ma.fields.String(
        validate=one_of(("government", "self", "other"), N_("Not one of the allowed values."))
    )
    accepted_on = ma.fields.Date(allow_none=True)
    special_purpose = Flag()
    inner_id = ma.fields.String(validate=Length(max=60), allow_none=True)
    country = ma.fields.String(validate=Length(max=3), allow_none=True)
    capacity = WholeNumber()
    capacity_unit = ma.fields.String(validate=Length(min=1, max=20))
    turnaround_days = WholeNumber(allow_none=True)
    status = ma.fields.String(
        validate=one_of(
            ("available", "maintenance", "retired"), N_("Not one of the allowed values.")
        )
    )
    voucher_eligible = Flag()
    service_category = ma.fields.String(
        validate=one_of(rules.SERVICE_CATEGORIES, N_("Not one of the allowed values."))
    )
    rules = ma.fields.Nested(RulesInSchema)
    opening_hours = ma.fields.List(ma.fields.Nested(OpeningSpanInSchema))
    closed_on_holidays = Flag()
    prices = ma.fields.List(ma.fields.Nested(PriceInSchema))


class ResourcePatchSchema(ResourceInSchema):
    kind = ma.fields.String(validate=one_of(rules.KINDS, N_("Unknown kind of resource.")))
    name_zh = ma.fields.String(validate=Length(min=1, max=200))
    category = ma.fields.String(metadata={"description": "category code, e.g. 0101"})


class PriceListInSchema(ma.Schema):
    prices = ma.fields.List(ma.fields.Nested(PriceInSchema), required=True)
    effective_from = Instant(
        metadata={"description": "when the new list takes effect; now when left out"}
    )


class ResourceQuerySchema(PageArgs):
    q = ma.fields.String(
        validate=Length(max=200),
        metadata={"description": "words, Chinese or English, each found as part of a word"},
    )
    kind = ma.fields.String(validate=one_of(rules.KINDS, N_("Unknown kind of resource.")))
    category = ma.fields.String(
        metadata={"description": "a category code; a top-level code includes its children"}
    )
    provider_id = ma.fields.Integer()
    region = ma.fields.String(metadata={"description": "division code prefix, e.g. 14 or 1401"})
    voucher_eligible = ma.fields.Boolean()
    status = ma.fields.String(
        validate=one_of(("available", "maintenance"), N_("Not one of the allowed values."))
    )
    customer_class = ma.fields.String(
        load_default="enterprise",
        validate=one_of(rules.CUSTOMER_CLASSES, N_("Unknown customer class.")),
        metadata={"description": "whose price price_min, price_max and sort=price read"},
    )
    price_min = Money()
    price_max = Money()
    available_from = Instant()
    available_to = Instant()
    sort = ma.fields.String(
        validate=one_of(
            ("relevance", "name", "price", "-price", "newest"), N_("Not one of the allowed values.")
        ),
        metadata={"description": "relevance (default with q), name, price, -price, newest"},
    )


class BlackoutInSchema(ma.Schema):
    start = Instant(required=True)
    end = Instant(required=True)
    reason = ma.fields.String(required=True, validate=Length(min=1, max=500))
    kind = ma.fields.String(
        load_default="maintenance",
        validate=one_of(rules.BLACKOUT_KINDS, N_("Not one of the allowed values.")),
    )


class BlackoutQuerySchema(ma.Schema):
    start = Instant(data_key="from", metadata={"description": "default: now"})
    end = Instant(data_key="to")


class PhotoFileSchema(ma.Schema):
    file = Upload(required=True)


class PhotoFormSchema(ma.Schema):
    caption = ma.fields.String(load_default="", validate=Length(max=200))


class ImportFileSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "CSV (UTF-8) or XLSX"})


class ImportFormSchema(ma.Schema):
    provider_id = ma.fields.Integer()
    dry_run = ma.fields.Boolean(load_default=False)


class CalendarDayInSchema(ma.Schema):
    date = ma.fields.Date(required=True)
    kind = ma.fields.String(
        required=True, validate=one_of(rules.CALENDAR_DAY_KINDS, N_("Use holiday or workday."))
    )
    name = ma.fields.String(load_default="", validate=Length(max=80))


class CalendarYearInSchema(ma.Schema):
    days = ma.fields.List(ma.fields.Nested(CalendarDayInSchema), required=True)


# --- output -------------------------------------------------------------------


class RulesSchema(ma.Schema):
    granularity_minutes = ma.fields.Integer()
    min_minutes = ma.fields.Integer()
    max_minutes = ma.fields.Integer()
    lead_minutes = ma.fields.Integer()
    horizon_days = ma.fields.Integer()
    buffer_before_minutes = ma.fields.Integer()
    buffer_after_minutes = ma.fields.Integer()
    requires_approval = ma.fields.Boolean()
    requires_training = ma.fields.Boolean()
    operator_allowed = ma.fields.Boolean()
    cancel_minutes = ma.fields.Integer()
    approval_deadline_minutes = ma.fields.Integer()
    no_show_grace_minutes = ma.fields.Integer()


class OpeningSpanSchema(ma.Schema):
    weekday = ma.fields.Integer()
    open = ma.fields.String()
    close = ma.fields.String()


def _enum(value):
    return getattr(value, "value", value)


class PriceSchema(ma.Schema):
    id = ma.fields.Integer()
    customer_class = ma.fields.Function(lambda p: _enum(p.customer_class))
    unit = ma.fields.Function(lambda p: _enum(p.unit))
    unit_price = Money()
    setup_fee = Money()
    min_quantity = Money()
    rounding_minutes = ma.fields.Integer()
    rounding_threshold_minutes = ma.fields.Integer()
    order_min = Money(allow_none=True)
    order_max = Money(allow_none=True)
    no_show_fee = Money()
    operator_fee_per_hour = Money()
    effective_from = Instant()
    effective_until = Instant(allow_none=True)


class PhotoSchema(ma.Schema):
    id = ma.fields.Integer()
    url = ma.fields.Function(lambda p: url_for("catalog_pages.photo", photo_id=p.id))
    thumbnail_url = ma.fields.Function(
        lambda p: url_for("catalog_pages.photo_thumbnail", photo_id=p.id)
    )
    content_type = ma.fields.String()
    width = ma.fields.Integer()
    height = ma.fields.Integer()
    caption = ma.fields.String()


class ResourceSchema(ma.Schema):
    """A resource as API.md writes it."""

    id = ma.fields.Integer()
    kind = ma.fields.String()
    name_zh = ma.fields.String()
    name_en = ma.fields.String()
    description_zh = ma.fields.String()
    description_en = ma.fields.String()
    category = ma.fields.String(metadata={"description": "category code"})
    category_name_zh = ma.fields.String()
    category_name_en = ma.fields.String()
    provider_id = ma.fields.Integer()
    provider_name = ma.fields.String()
    region = ma.fields.String()
    location = ma.fields.String()
    manufacturer = ma.fields.String()
    model = ma.fields.String()
    original_value = Money()
    funding_source = ma.fields.String()
    accepted_on = ma.fields.Date(allow_none=True)
    special_purpose = ma.fields.Boolean()
    inner_id = ma.fields.String(allow_none=True)
    country = ma.fields.String(allow_none=True)
    capacity = ma.fields.Integer()
    capacity_unit = ma.fields.String()
    exclusive = ma.fields.Boolean()
    turnaround_days = ma.fields.Integer(allow_none=True)
    status = ma.fields.String()
    voucher_eligible = ma.fields.Boolean()
    service_category = ma.fields.String()
    rules = ma.fields.Nested(RulesSchema)
    opening_hours = ma.fields.List(ma.fields.Nested(OpeningSpanSchema))
    closed_on_holidays = ma.fields.Boolean()
    prices = ma.fields.List(
        ma.fields.Nested(PriceSchema), metadata={"description": "published prices in effect"}
    )
    photos = ma.fields.List(ma.fields.Nested(PhotoSchema))
    created_at = Instant()
    updated_at = Instant()

    @ma.pre_dump
    def view(self, resource, **kwargs):
        category = resource.category
        provider = resource.provider
        return {
            **{name: getattr(resource, name) for name in _PLAIN_OUT},
            "kind": resource.kind.value,
            "status": resource.status.value,
            "funding_source": resource.funding_source.value,
            "service_category": resource.service_category.value,
            "category": category.code,
            "category_name_zh": category.name_zh,
            "category_name_en": category.name_en,
            "provider_name": provider.name if provider is not None else None,
            "exclusive": resource.capacity == 1,
            "rules": {name: getattr(resource, name) for name in RULE_FIELDS},
            "opening_hours": opening_hours_of(resource),
            "prices": current_prices(resource),
            "photos": list(resource.photos),
        }


_PLAIN_OUT = (
    "id",
    "name_zh",
    "name_en",
    "description_zh",
    "description_en",
    "provider_id",
    "region",
    "location",
    "manufacturer",
    "model",
    "original_value",
    "accepted_on",
    "special_purpose",
    "inner_id",
    "country",
    "capacity",
    "capacity_unit",
    "turnaround_days",
    "voucher_eligible",
    "closed_on_holidays",
    "created_at",
    "updated_at",
)

ResourcePageSchema = page_schema(ResourceSchema, "ResourcePage")


class PriceListSchema(ma.Schema):
    resource_id = ma.fields.Integer()
    prices = ma.fields.List(ma.fields.Nested(PriceSchema))


class PriceHistoryQuerySchema(ma.Schema):
    history = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "every version, newest first (the owner lab's admins only)"},
    )


class BlackoutSchema(ma.Schema):
    id = ma.fields.Integer()
    resource_id = ma.fields.Integer()
    start = Instant(attribute="start_at")
    end = Instant(attribute="end_at")
    kind = ma.fields.Function(lambda b: _enum(b.kind))
    reason = ma.fields.String()
    created_at = Instant()


class BlackoutCreatedSchema(BlackoutSchema):
    overlapping_reservations = ma.fields.List(
        ma.fields.Integer(),
        metadata={"description": "live bookings inside the blackout, for the lab to move"},
    )


class BlackoutListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(BlackoutSchema))


class ImportRowSchema(ma.Schema):
    row = ma.fields.Integer()
    id = ma.fields.Integer(allow_none=True)
    name_zh = ma.fields.String()


class ImportResultSchema(ma.Schema):
    dry_run = ma.fields.Boolean()
    created = ma.fields.Integer()
    items = ma.fields.List(ma.fields.Nested(ImportRowSchema))


class CategorySchema(ma.Schema):
    code = ma.fields.String()
    name_zh = ma.fields.String()
    name_en = ma.fields.String()
    service_category = ma.fields.String()
    nrii_code = ma.fields.String(allow_none=True)
    aliases = ma.fields.List(ma.fields.String())

    @ma.pre_dump
    def view(self, category, **kwargs):
        if isinstance(category, dict):
            return category
        return {
            "code": category.code,
            "name_zh": category.name_zh,
            "name_en": category.name_en,
            "service_category": _enum(category.service_category),
            "nrii_code": category.nrii_code,
            "aliases": list(category.aliases or []),
        }


class CategoryTreeSchema(CategorySchema):
    children = ma.fields.List(ma.fields.Nested(CategorySchema))


class CategoryListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CategoryTreeSchema))


class CalendarDaySchema(ma.Schema):
    date = ma.fields.Date(attribute="day")
    kind = ma.fields.String()
    name = ma.fields.String()
    source = ma.fields.String(metadata={"description": "platform (entered here) or library"})


class CalendarYearSchema(ma.Schema):
    year = ma.fields.Integer()
    library_knows = ma.fields.Boolean(
        metadata={"description": "whether the holiday library has this year's dates"}
    )
    days = ma.fields.List(ma.fields.Nested(CalendarDaySchema))


# --- the fast path for lists -----------------------------------------------------


def _money_text(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def resource_json(resource, photo_url=None) -> dict:
    """The resource as ``ResourceSchema`` dumps it, built directly: a page of
    search results is answered without a marshmallow pass over every field
    (tests hold the two to the same output). ``photo_url(photo_id,
    thumbnail)`` makes the photos' addresses."""
    from booking.domain import clock

    tz = clock.platform_tz()
    category = resource.category
    provider = resource.provider
    if photo_url is None:

        def photo_url(photo_id: int, thumbnail: bool) -> str:
            endpoint = "catalog_pages.photo_thumbnail" if thumbnail else "catalog_pages.photo"
            return url_for(endpoint, photo_id=photo_id)

    return {
        "id": resource.id,
        "kind": resource.kind.value,
        "name_zh": resource.name_zh,
        "name_en": resource.name_en,
        "description_zh": resource.description_zh,
        "description_en": resource.description_en,
        "category": category.code,
        "category_name_zh": category.name_zh,
        "category_name_en": category.name_en,
        "provider_id": resource.provider_id,
        "provider_name": provider.name if provider is not None else None,
        "region": resource.region,
        "location": resource.location,
        "manufacturer": resource.manufacturer,
        "model": resource.model,
        "original_value": _money_text(resource.original_value),
        "funding_source": resource.funding_source.value,
        "accepted_on": resource.accepted_on.isoformat() if resource.accepted_on else None,
        "special_purpose": resource.special_purpose,
        "inner_id": resource.inner_id,
        "country": resource.country,
        "capacity": resource.capacity,
        "capacity_unit": resource.capacity_unit,
        "exclusive": resource.capacity == 1,
        "turnaround_days": resource.turnaround_days,
        "status": resource.status.value,
        "voucher_eligible": resource.voucher_eligible,
        "service_category": resource.service_category.value,
        "rules": {name: getattr(resource, name) for name in RULE_FIELDS},
        "opening_hours": opening_hours_of(resource),
        "closed_on_holidays": resource.closed_on_holidays,
        "prices": [
            {
                "id": p.id,
                "customer_class": p.customer_class.value,
                "unit": p.unit.value,
                "unit_price": _money_text(p.unit_price),
                "setup_fee": _money_text(p.setup_fee),
                "min_quantity": _money_text(p.min_quantity),
                "rounding_minutes": p.rounding_minutes,
                "rounding_threshold_minutes": p.rounding_threshold_minutes,
                "order_min": _money_text(p.order_min),
                "order_max": _money_text(p.order_max),
                "no_show_fee": _money_text(p.no_show_fee),
                "operator_fee_per_hour": _money_text(p.operator_fee_per_hour),
                "effective_from": local_instant_text(p.effective_from, tz),
                "effective_until": local_instant_text(p.effective_until, tz),
            }
            for p in current_prices(resource)
        ],
        "photos": [
            {
                "id": photo.id,
                "url": photo_url(photo.id, False),
                "thumbnail_url": photo_url(photo.id, True),
                "content_type": photo.content_type,
                "width": photo.width,
                "height": photo.height,
                "caption": photo.caption,
            }
            for photo in resource.photos
        ],
        "created_at": local_instant_text(resource.created_at, tz),
        "updated_at": local_instant_text(resource.updated_at, tz),
    }
