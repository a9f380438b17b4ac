"""Pages of the catalog area.

- ``/catalog``: the search box with filters and paging (the same search as
  the API), and ``/catalog/resources/<id>``: photos, specifications, rules,
  opening hours, prices and a week of free and busy times (fetched by
  ``static/js/catalog_week.js`` from the availability API).
- ``/lab/resources...``: a lab admin's own resources: add and edit, opening
  hours, prices, blackouts, photos, bulk import.
- ``/admin/calendar``: the platform admin's holidays and adjusted working
  days for a year the holiday library does not know yet.

Forms are Flask-WTF (CSRF); values go through the API's schemas and the
same services, so a page refuses what the API refuses, with the message
beside the field and what was typed kept.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import click
import marshmallow as ma
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext, lazy_gettext
from flask_login import login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    Form,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields import FieldList, FormField
from wtforms.fields.choices import SelectChoice

from booking.domain import catalog as rules
from booking.domain import clock
from booking.domain.errors import DomainError, NotFound, ValidationFailed
from booking.domain.organizations import region_name, regions
from booking.extensions import db
from booking.schemas import catalog as schemas
from booking.services import catalog, catalog_import, photos
from booking.web.auth import current_actor

# cli_group=None: the area's commands sit at the top level (flask load-categories).
bp = Blueprint("catalog_pages", __name__, cli_group=None)

# (endpoint, label) pairs shown in the main navigation; labels lazy_gettext'd.
NAV: list = [("catalog_pages.index", lazy_gettext("Catalog"))]

KIND_LABELS = {
    "instrument": lazy_gettext("Instrument"),
    "testing_service": lazy_gettext("Testing service"),
    "hpc": lazy_gettext("Supercomputing"),
    "pilot_line": lazy_gettext("Pilot line"),
}
UNIT_LABELS = {
    "hour": lazy_gettext("hour"),
    "sample": lazy_gettext("sample"),
    "core_hour": lazy_gettext("core-hour"),
    "node_hour": lazy_gettext("node-hour"),
    "gpu_hour": lazy_gettext("GPU card-hour"),
    "day": lazy_gettext("day"),
    "shift": lazy_gettext("shift"),
    "batch": lazy_gettext("batch"),
}
CLASS_LABELS = {
    "internal": lazy_gettext("Internal"),
    "academic": lazy_gettext("Universities and institutes"),
    "enterprise": lazy_gettext("Enterprises"),
}
STATUS_LABELS = {
    "available": lazy_gettext("Available"),
    "maintenance": lazy_gettext("Under maintenance"),
    "retired": lazy_gettext("Retired"),
}
SERVICE_CATEGORY_LABELS = {
    "instrument_sharing": lazy_gettext("Instrument sharing"),
    "testing": lazy_gettext("Testing"),
    "computing": lazy_gettext("Computing"),
    "pilot_scale": lazy_gettext("Pilot scale-up"),
    "rd_design": lazy_gettext("R&D and design"),
    "tech_consulting": lazy_gettext("Technical consulting"),
}
FUNDING_LABELS = {
    "government": lazy_gettext("Government funds"),
    "self": lazy_gettext("Own funds"),
    "other": lazy_gettext("Other"),
}
BLACKOUT_LABELS = {
    "maintenance": lazy_gettext("Maintenance"),
    "calibration": lazy_gettext("Calibration"),
    "breakdown": lazy_gettext("Breakdown"),
    "closure": lazy_gettext("Closure"),
}
DAY_KIND_LABELS = {
    "holiday": lazy_gettext("Public holiday"),
    "workday": lazy_gettext("Adjusted working day"),
}
WEEKDAY_LABELS = (
    lazy_gettext("Monday"),
    lazy_gettext("Tuesday"),
    lazy_gettext("Wednesday"),
    lazy_gettext("Thursday"),
    lazy_gettext("Friday"),
    lazy_gettext("Saturday"),
    lazy_gettext("Sunday"),
)
SORT_LABELS = {
    "relevance": lazy_gettext("Best match"),
    "name": lazy_gettext("Name"),
    "price": lazy_gettext("Price, lowest first"),
    "-price": lazy_gettext("Price, highest first"),
    "newest": lazy_gettext("Newest"),
}


def _english() -> bool:
    from flask_babel import get_locale

    return str(get_locale() or "zh_CN").startswith("en")


def localized(obj: Any, field: str) -> str:
    """The English or Chinese text of ``<field>_en``/``<field>_zh`` by the
    page's language, falling back to the other."""
    zh = getattr(obj, f"{field}_zh", None) or ""
    en = getattr(obj, f"{field}_en", None) or ""
    return (en or zh) if _english() else (zh or en)


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if value is None else value.astimezone(clock.platform_tz()).strftime(fmt)


@bp.app_template_filter("yuan")
def yuan(value) -> str:
    return "" if value is None else f"¥{value:,.2f}"


@bp.app_context_processor
def catalog_labels() -> dict:
    return {
        "catalog_labels": {
            "kind": KIND_LABELS,
            "unit": UNIT_LABELS,
            "customer_class": CLASS_LABELS,
            "status": STATUS_LABELS,
            "service_category": SERVICE_CATEGORY_LABELS,
            "funding": FUNDING_LABELS,
            "blackout": BLACKOUT_LABELS,
            "day_kind": DAY_KIND_LABELS,
            "weekday": WEEKDAY_LABELS,
            "sort": SORT_LABELS,
        },
        "localized": localized,
        "current_prices": catalog.current_prices,
        "local_time": local_time,
        "region_name": lambda code: region_name(code, "en" if _english() else "zh_CN"),
    }


def _shanxi_cities() -> list[tuple[str, str]]:
    english = _english()
    return [
        (code[:4], r.name_en if english else r.name_zh)
        for code, r in regions().items()
        if code.startswith("14") and r.level == "city"
    ]


def _category_groups() -> list[tuple[Any, list]]:
    return catalog.category_tree(db.session)


# --- the catalog: search --------------------------------------------------------


def _search_errors(messages: dict) -> dict[str, list[str]]:
    return {
        k: [gettext(m) for m in v] if isinstance(v, list) else [gettext(str(v))]
        for k, v in messages.items()
    }


@bp.get("/catalog")
def index():
    """The catalog: one search box, filters, sorting and paging."""
    raw = {k: v for k, v in request.args.items() if v != ""}
    errors: dict[str, list[str]] = {}
    result = None
    try:
        args = schemas.ResourceQuerySchema().load(raw, unknown=ma.EXCLUDE)
    except ma.ValidationError as exc:
        errors = _search_errors(exc.messages)
        args = None
    if args is not None:
        # Pages show 20 resources unless asked otherwise (at most 50).
        args["per_page"] = min(args["per_page"], 50) if "per_page" in raw else 20
        try:
            result = catalog.search_resources(db.session, catalog.SearchQuery(**args))
        except ValidationFailed as exc:
            errors = {k: [gettext(m) for m in v] for k, v in exc.fields.items()}
    actor = current_actor()
    status = 422 if errors else 200
    page_args = {k: v for k, v in raw.items() if k != "page"}
    response = make_response(
        render_template(
            "catalog/index.html",
            result=result,
            values=raw,
            errors=errors,
            page_args=page_args,
            filters_open=bool(set(raw) - {"q", "page", "per_page"}) or bool(errors),
            category_groups=_category_groups(),
            cities=_shanxi_cities(),
            lab_admin=bool(actor.org_ids("provider", "admin")),
            platform_admin=actor.platform_admin,
        ),
        status,
    )
    return response


@bp.get("/catalog/resources/<int:resource_id>")
def resource(resource_id: int):
    """One resource: photos, specifications, rules, hours, prices, a week."""
    actor = current_actor()
    item = catalog.get_resource(db.session, actor, resource_id)
    today = clock.now().astimezone(clock.platform_tz()).date()
    week_start = today - timedelta(days=today.weekday())
    hours_by_day: dict[int, list[dict]] = {d: [] for d in range(7)}
    for span in catalog.opening_hours_of(item):
        hours_by_day[span["weekday"]].append(span)
    blackouts = catalog.list_blackouts(db.session, actor, resource_id)[:10]
    return render_template(
        "catalog/resource.html",
        resource=item,
        prices=catalog.current_prices(item),
        hours_by_day=hours_by_day,
        around_the_clock=not item.opening_hours,
        blackouts=blackouts,
        week_start=week_start,
        can_edit=actor.lab_admin_of(item.provider_id),
        offset=clock.now().astimezone(clock.platform_tz()).strftime("%z"),
    )


def _photo_response(photo_id: int, thumbnail: bool):
    found = photos.photo_file(db.session, photo_id, thumbnail=thumbnail)
    if request.if_none_match and found.etag in request.if_none_match:
        response = make_response("", 304)
    else:
        response = make_response(found.data)
        response.headers["Content-Type"] = found.content_type
    response.set_etag(found.etag)
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/catalog/photos/<int:photo_id>")
def photo(photo_id: int):
    return _photo_response(photo_id, thumbnail=False)


@bp.get("/catalog/photos/<int:photo_id>/thumbnail")
def photo_thumbnail(photo_id: int):
    return _photo_response(photo_id, thumbnail=True)


# --- the lab's pages: forms --------------------------------------------------------


def _choices(labels: dict) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in labels.items()]


class ResourceForm(FlaskForm):
    """A resource's details and rules. Choices are checked by the API's
    schema (one message for a value out of the list, wherever it comes from)."""

    kind = SelectField(lazy_gettext("Kind"), choices=_choices(KIND_LABELS), validate_choice=False)
    name_zh = StringField(lazy_gettext("Name (Chinese)"))
    name_en = StringField(lazy_gettext("Name (English)"))
    category = SelectField(lazy_gettext("Category"), choices=[], validate_choice=False)
    manufacturer = StringField(lazy_gettext("Manufacturer"))
    model = StringField(lazy_gettext("Model"))
    inner_id = StringField(lazy_gettext("Asset number"))
    location = StringField(lazy_gettext("Location"))
    region = StringField(lazy_gettext("Region code"))
    original_value = StringField(lazy_gettext("Original value (CNY)"))
    funding_source = SelectField(
        lazy_gettext("Funding"), choices=_choices(FUNDING_LABELS), validate_choice=False
    )
    accepted_on = StringField(lazy_gettext("Accepted on"), render_kw={"type": "date"})
    capacity = StringField(lazy_gettext("Capacity"))
    capacity_unit = StringField(lazy_gettext("Capacity unit"))
    turnaround_days = StringField(lazy_gettext("Turnaround (days)"))
    status = SelectField(
        lazy_gettext("Status"), choices=_choices(STATUS_LABELS), validate_choice=False
    )
    service_category = SelectField(
        lazy_gettext("Service category (vouchers)"), choices=[], validate_choice=False
    )
    voucher_eligible = BooleanField(lazy_gettext("Innovation vouchers accepted"))
    description_zh = TextAreaField(lazy_gettext("Description (Chinese)"))
    description_en = TextAreaField(lazy_gettext("Description (English)"))
    granularity_minutes = StringField(lazy_gettext("Slot length (minutes)"))
    min_minutes = StringField(lazy_gettext("Shortest booking (minutes)"))
    max_minutes = StringField(lazy_gettext("Longest booking (minutes)"))
    lead_minutes = StringField(lazy_gettext("Book at least this far ahead (minutes)"))
    horizon_days = StringField(lazy_gettext("Bookable up to (days ahead)"))
    buffer_before_minutes = StringField(lazy_gettext("Buffer before (minutes)"))
    buffer_after_minutes = StringField(lazy_gettext("Buffer after (minutes)"))
    cancel_minutes = StringField(lazy_gettext("Customers cancel until (minutes before)"))
    approval_deadline_minutes = StringField(lazy_gettext("Requests expire after (minutes)"))
    no_show_grace_minutes = StringField(lazy_gettext("No-show after (minutes)"))
    requires_approval = BooleanField(lazy_gettext("Bookings need approval"))
    requires_training = BooleanField(lazy_gettext("Users need training"))
    operator_allowed = BooleanField(lazy_gettext("A technician can run it for the customer"))
    closed_on_holidays = BooleanField(lazy_gettext("Closed on public holidays"))

    RULES = (
        "granularity_minutes",
        "min_minutes",
        "max_minutes",
        "lead_minutes",
        "horizon_days",
        "buffer_before_minutes",
        "buffer_after_minutes",
        "cancel_minutes",
        "approval_deadline_minutes",
        "no_show_grace_minutes",
        "requires_approval",
        "requires_training",
        "operator_allowed",
    )
    TEXTS = (
        "name_zh",
        "name_en",
        "manufacturer",
        "model",
        "inner_id",
        "location",
        "region",
        "original_value",
        "accepted_on",
        "capacity",
        "capacity_unit",
        "turnaround_days",
        "description_zh",
        "description_en",
    )

    def fill_choices(self) -> None:
        english = _english()
        options = []
        for top, children in _category_groups():
            group = top.name_en if english else top.name_zh
            options.extend(
                SelectChoice(
                    c.code, f"{c.code} {c.name_en if english else c.name_zh}", optgroup=group
                )
                for c in children
            )
        self.category.choices = options
        self.service_category.choices = [
            SelectChoice("", gettext("As the category says")),
            *_choices(SERVICE_CATEGORY_LABELS),
        ]

    def payload(self, creating: bool) -> dict[str, Any]:
        """The form as the API's JSON (text as typed; the schema parses it)."""
        data: dict[str, Any] = {
            "voucher_eligible": self.voucher_eligible.data,
            "closed_on_holidays": self.closed_on_holidays.data,
        }
        selects = ["category", "funding_source", "status", "service_category"]
        for name in [*selects, "kind"] if creating else selects:
            if getattr(self, name).data:
                data[name] = getattr(self, name).data
        for name in self.TEXTS:
            value = (getattr(self, name).data or "").strip()
            if value or name in ("name_en", "description_zh", "description_en", "model"):
                data[name] = value
        if creating and not data.get("name_zh"):
            data["name_zh"] = ""
        data["rules"] = {}
        for name in self.RULES:
            value = getattr(self, name).data
            if isinstance(value, bool):
                data["rules"][name] = value
            elif (value or "").strip():
                data["rules"][name] = value.strip()
        return data

    def load_resource(self, resource) -> None:
        for name in self.TEXTS:
            value = getattr(resource, name)
            if value is None:
                value = ""
            getattr(self, name).data = str(value)
        self.kind.data = resource.kind.value
        self.category.data = resource.category.code
        self.funding_source.data = resource.funding_source.value
        self.status.data = resource.status.value
        self.service_category.data = resource.service_category.value
        self.voucher_eligible.data = resource.voucher_eligible
        self.closed_on_holidays.data = resource.closed_on_holidays
        for name in self.RULES:
            value = getattr(resource, name)
            getattr(self, name).data = value if isinstance(value, bool) else str(value)

    def load_defaults(self, kind: str) -> None:
        for name, value in rules.default_rules(kind).items():
            field = getattr(self, name, None)
            if field is not None:
                field.data = value if isinstance(value, bool) else str(value)
        self.capacity_unit.data = rules.CAPACITY_UNIT_DEFAULTS[kind]
        self.capacity.data = "1" if kind in ("instrument", "pilot_line") else ""
        self.voucher_eligible.data = True
        self.closed_on_holidays.data = True


class HoursForm(FlaskForm):
    day_0 = StringField(WEEKDAY_LABELS[0])
    day_1 = StringField(WEEKDAY_LABELS[1])
    day_2 = StringField(WEEKDAY_LABELS[2])
    day_3 = StringField(WEEKDAY_LABELS[3])
    day_4 = StringField(WEEKDAY_LABELS[4])
    day_5 = StringField(WEEKDAY_LABELS[5])
    day_6 = StringField(WEEKDAY_LABELS[6])
    closed_on_holidays = BooleanField(lazy_gettext("Closed on public holidays"))

    def day(self, weekday: int):
        return getattr(self, f"day_{weekday}")


class PriceRowForm(Form):
    customer_class = StringField()
    unit = SelectField(lazy_gettext("Unit"), choices=[])
    unit_price = StringField(lazy_gettext("Unit price"))
    setup_fee = StringField(lazy_gettext("Set-up fee"))
    min_quantity = StringField(lazy_gettext("Minimum quantity"))
    rounding_minutes = StringField(lazy_gettext("Billed in blocks of (minutes)"))
    rounding_threshold_minutes = StringField(lazy_gettext("Not billed below (minutes)"))
    order_min = StringField(lazy_gettext("Order minimum"))
    order_max = StringField(lazy_gettext("Order maximum"))
    no_show_fee = StringField(lazy_gettext("No-show fee"))


class PricesForm(FlaskForm):
    prices = FieldList(FormField(PriceRowForm), min_entries=3, max_entries=3)
    effective_from = StringField(
        lazy_gettext("Effective from (empty: now)"), render_kw={"type": "datetime-local"}
    )


class BlackoutForm(FlaskForm):
    start = StringField(lazy_gettext("From"), render_kw={"type": "datetime-local"})
    end = StringField(lazy_gettext("Until"), render_kw={"type": "datetime-local"})
    kind = SelectField(lazy_gettext("Why"), choices=_choices(BLACKOUT_LABELS))
    reason = StringField(lazy_gettext("Reason"))


class PhotoForm(FlaskForm):
    file = FileField(lazy_gettext("Photo (JPEG, PNG or WebP)"))
    caption = StringField(lazy_gettext("Caption"))


class ImportForm(FlaskForm):
    file = FileField(lazy_gettext("Instrument list (CSV or XLSX)"))
    dry_run = BooleanField(lazy_gettext("Only check, import nothing"))


class CalendarForm(FlaskForm):
    days = TextAreaField(lazy_gettext("Dates of the year"), render_kw={"rows": 16})


class ActionForm(FlaskForm):
    """A button that posts (delete): the CSRF token only."""


def _field_errors(form, errors: dict[str, list[str]], mapping=None) -> list[str]:
    """Put service or schema errors beside the form's fields; return the
    ones no field shows."""
    left = []
    for path, messages in errors.items():
        name = (mapping or {}).get(path) or path.split(".")[-1]
        if mapping is None and path.startswith("rules."):
            name = path.split(".", 1)[1]
        field = getattr(form, name, None) if isinstance(name, str) else name
        texts = [gettext(m) for m in messages]
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors or []) + texts
        else:
            left.extend(texts)
    return left


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            out.update(_flatten(value, f"{prefix}{key}."))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix.rstrip(".")] = list(messages)
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            out.update(_flatten(value, f"{prefix}{index}."))
    return out


def _lab_for(provider_id: int | None = None):
    actor = current_actor()
    labs = catalog.administered_labs(db.session, actor)
    if not labs:
        raise NotFound()
    if provider_id is None:
        return labs[0], labs
    for lab in labs:
        if lab.id == provider_id:
            return lab, labs
    raise NotFound()


def _own_resource(resource_id: int):
    return catalog.resource_for_change(db.session, current_actor(), resource_id)


# --- the lab's pages: views ------------------------------------------------------------


@bp.get("/lab/resources")
@login_required
def lab_resources():
    lab, labs = _lab_for(request.args.get("lab", type=int))
    items = catalog.lab_resources(db.session, current_actor(), lab.id)
    return render_template("catalog/lab_list.html", lab=lab, labs=labs, items=items)


@bp.route("/lab/resources/new", methods=["GET", "POST"])
@login_required
def lab_new_resource():
    lab, _labs = _lab_for(request.args.get("lab", type=int))
    form = ResourceForm()
    form.fill_choices()
    left: list[str] = []
    if request.method == "GET":
        kind = request.args.get("kind", "instrument")
        form.kind.data = kind if kind in rules.KINDS else "instrument"
        form.load_defaults(form.kind.data)
        form.region.data = lab.region
    elif form.validate_on_submit():
        data = form.payload(creating=True)
        try:
            loaded = schemas.ResourceInSchema().load(data)
            loaded["provider_id"] = lab.id
            created = catalog.create_resource(db.session, current_actor(), loaded)
        except ma.ValidationError as exc:
            left = _field_errors(form, _flatten(exc.messages))
        except ValidationFailed as exc:
            left = _field_errors(form, exc.fields)
        else:
            flash(gettext("The resource was added."), "success")
            return redirect(url_for(".lab_edit_resource", resource_id=created.id))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "catalog/lab_edit.html", form=form, lab=lab, resource=None, other_errors=left
    ), status


@bp.route("/lab/resources/<int:resource_id>/edit", methods=["GET", "POST"])
@login_required
def lab_edit_resource(resource_id: int):
    item = _own_resource(resource_id)
    form = ResourceForm()
    form.fill_choices()
    left: list[str] = []
    if request.method == "GET":
        form.load_resource(item)
    elif form.validate_on_submit():
        data = form.payload(creating=False)
        try:
            loaded = schemas.ResourcePatchSchema().load(data)
            catalog.update_resource(db.session, current_actor(), resource_id, loaded)
        except ma.ValidationError as exc:
            left = _field_errors(form, _flatten(exc.messages))
        except ValidationFailed as exc:
            left = _field_errors(form, exc.fields)
        except DomainError as exc:
            left = [gettext(exc.message, **exc.params)]
        else:
            flash(gettext("The changes were saved."), "success")
            return redirect(url_for(".lab_edit_resource", resource_id=resource_id))
    status = 422 if request.method == "POST" else 200
    if status == 422:
        db.session.rollback()
        item = _own_resource(resource_id)
    form.kind.data = item.kind.value
    return render_template(
        "catalog/lab_edit.html", form=form, lab=item.provider, resource=item, other_errors=left
    ), status


@bp.route("/lab/resources/<int:resource_id>/hours", methods=["GET", "POST"])
@login_required
def lab_hours(resource_id: int):
    item = _own_resource(resource_id)
    form = HoursForm()
    left: list[str] = []
    if request.method == "GET":
        for weekday in range(7):
            spans = [s for s in catalog.opening_hours_of(item) if s["weekday"] == weekday]
            form.day(weekday).data = ", ".join(f"{s['open']}-{s['close']}" for s in spans)
        form.closed_on_holidays.data = item.closed_on_holidays
    elif form.validate_on_submit():
        items: list[dict] = []
        owners: dict[str, Any] = {}
        parse_errors: dict[str, list[str]] = {}
        for weekday in range(7):
            field = form.day(weekday)
            try:
                pairs = rules.parse_day_spans(field.data or "")
            except ValueError as exc:
                parse_errors[field.name] = [str(exc)]
                continue
            for opens, closes in pairs:
                index = len(items)
                for part in ("weekday", "open", "close"):
                    owners[f"opening_hours.{index}.{part}"] = field
                owners[f"opening_hours.{index}"] = field
                items.append({"weekday": weekday, "open": opens, "close": closes})
        owners["opening_hours"] = form.day_0
        try:
            rules.raise_if(parse_errors)
            catalog.update_resource(
                db.session,
                current_actor(),
                resource_id,
                {"opening_hours": items, "closed_on_holidays": form.closed_on_holidays.data},
            )
        except ValidationFailed as exc:
            left = _field_errors(form, exc.fields, owners)
        else:
            flash(gettext("The opening hours were saved."), "success")
            return redirect(url_for(".lab_hours", resource_id=resource_id))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "catalog/lab_hours.html", form=form, resource=item, other_errors=left
    ), status


@bp.route("/lab/resources/<int:resource_id>/prices", methods=["GET", "POST"])
@login_required
def lab_prices(resource_id: int):
    item = _own_resource(resource_id)
    form = PricesForm()
    units = [SelectChoice(u, UNIT_LABELS[u]) for u in rules.units_for_kind(item.kind.value)]
    left: list[str] = []
    classes = list(rules.CUSTOMER_CLASSES)
    if request.method == "GET":
        current = {p.customer_class.value: p for p in catalog.open_price_rules(item)}
        for row, customer_class in zip(form.prices, classes, strict=True):
            rule = current.get(customer_class)
            row.customer_class.data = customer_class
            if rule is not None:
                row.unit.data = rule.unit.value
                for name in catalog.PRICE_FIELDS:
                    field = getattr(row, name, None)
                    value = getattr(rule, name)
                    if field is not None:
                        field.data = "" if value is None else str(value)
    for row, customer_class in zip(form.prices, classes, strict=True):
        row.unit.choices = units
        row.customer_class.data = customer_class
    if request.method == "POST" and form.validate_on_submit():
        payload = []
        owners: dict[str, Any] = {}
        for row in form.prices:
            if not (row.unit_price.data or "").strip():
                continue
            index = len(payload)
            entry = {"customer_class": row.customer_class.data, "unit": row.unit.data}
            for name in catalog.PRICE_FIELDS:
                field = getattr(row, name, None)
                if field is not None and (field.data or "").strip():
                    entry[name] = field.data.strip()
                if field is not None:
                    owners[f"prices.{index}.{name}"] = field
            owners[f"prices.{index}.unit"] = row.unit
            owners[f"prices.{index}.customer_class"] = row.unit_price
            payload.append(entry)
        owners["effective_from"] = form.effective_from
        body: dict[str, Any] = {"prices": payload}
        if (form.effective_from.data or "").strip():
            body["effective_from"] = form.effective_from.data.strip()
        try:
            loaded = schemas.PriceListInSchema().load(body)
            catalog.set_prices(
                db.session,
                current_actor(),
                resource_id,
                loaded["prices"],
                loaded.get("effective_from"),
            )
        except ma.ValidationError as exc:
            left = _field_errors(form, _flatten(exc.messages), owners)
        except ValidationFailed as exc:
            left = _field_errors(form, exc.fields, owners)
        else:
            flash(gettext("The price list was published."), "success")
            return redirect(url_for(".lab_prices", resource_id=resource_id))
    status = 422 if request.method == "POST" else 200
    history = catalog.price_history(db.session, current_actor(), resource_id)
    return render_template(
        "catalog/lab_prices.html",
        form=form,
        resource=item,
        history=history,
        other_errors=left,
        now=clock.now(),
    ), status


@bp.route("/lab/resources/<int:resource_id>/blackouts", methods=["GET", "POST"])
@login_required
def lab_blackouts(resource_id: int):
    item = _own_resource(resource_id)
    form = BlackoutForm()
    left: list[str] = []
    if request.method == "POST" and form.validate_on_submit():
        body = {
            "start": form.start.data or "",
            "end": form.end.data or "",
            "reason": form.reason.data or "",
            "kind": form.kind.data,
        }
        try:
            loaded = schemas.BlackoutInSchema().load(body)
            _blackout, overlapping = catalog.add_blackout(
                db.session, current_actor(), resource_id, loaded
            )
        except ma.ValidationError as exc:
            left = _field_errors(form, _flatten(exc.messages))
        except ValidationFailed as exc:
            left = _field_errors(form, exc.fields)
        else:
            flash(gettext("The blackout was added."), "success")
            if overlapping:
                flash(
                    gettext(
                        "%(count)s bookings fall inside it: please move or cancel them.",
                        count=len(overlapping),
                    ),
                    "warning",
                )
            return redirect(url_for(".lab_blackouts", resource_id=resource_id))
    status = 422 if request.method == "POST" else 200
    items = catalog.list_blackouts(db.session, current_actor(), resource_id)
    return render_template(
        "catalog/lab_blackouts.html",
        form=form,
        resource=item,
        items=items,
        action=ActionForm(),
        other_errors=left,
    ), status


@bp.post("/lab/resources/<int:resource_id>/blackouts/<int:blackout_id>/delete")
@login_required
def lab_delete_blackout(resource_id: int, blackout_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    catalog.delete_blackout(db.session, current_actor(), resource_id, blackout_id)
    flash(gettext("The blackout was removed."), "success")
    return redirect(url_for(".lab_blackouts", resource_id=resource_id))


@bp.route("/lab/resources/<int:resource_id>/photos", methods=["GET", "POST"])
@login_required
def lab_photos(resource_id: int):
    item = _own_resource(resource_id)
    form = PhotoForm()
    left: list[str] = []
    if request.method == "POST" and form.validate_on_submit():
        upload = form.file.data
        limit = current_app.config["PHOTO_MAX_BYTES"]
        content = upload.read(limit + 1) if upload else b""
        try:
            photos.add_photo(
                db.session,
                current_actor(),
                resource_id,
                content,
                form.caption.data or "",
                max_bytes=limit,
            )
        except ValidationFailed as exc:
            left = _field_errors(form, exc.fields)
        else:
            flash(gettext("The photo was added."), "success")
            return redirect(url_for(".lab_photos", resource_id=resource_id))
    status = 422 if request.method == "POST" else 200
    if status == 422:
        db.session.rollback()
        item = _own_resource(resource_id)
    return render_template(
        "catalog/lab_photos.html", form=form, resource=item, action=ActionForm(), other_errors=left
    ), status


@bp.post("/lab/resources/<int:resource_id>/photos/<int:photo_id>/delete")
@login_required
def lab_delete_photo(resource_id: int, photo_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    photos.delete_photo(db.session, current_actor(), resource_id, photo_id)
    flash(gettext("The photo was removed."), "success")
    return redirect(url_for(".lab_photos", resource_id=resource_id))


@bp.route("/lab/resources/import", methods=["GET", "POST"])
@login_required
def lab_import():
    lab, labs = _lab_for(request.args.get("lab", type=int))
    form = ImportForm()
    problems: list[dict] = []
    checked: list[dict] | None = None
    if request.method == "POST" and form.validate_on_submit():
        upload = form.file.data
        if not upload:
            form.file.errors = [gettext("Choose a file.")]
        else:
            try:
                result = catalog_import.import_resources(
                    db.session,
                    current_actor(),
                    upload.filename or "",
                    upload.read(),
                    provider_id=lab.id,
                    dry_run=form.dry_run.data,
                )
            except catalog_import.ImportRejected as exc:
                problems = [
                    {**row, "messages": [gettext(m) for m in row["messages"]]}
                    for row in exc.details["rows"]
                ]
            else:
                if result.dry_run:
                    checked = result.items
                else:
                    flash(
                        gettext("%(count)s resources were imported.", count=result.created),
                        "success",
                    )
                    return redirect(url_for(".lab_resources", lab=lab.id))
    status = 422 if problems or (request.method == "POST" and form.errors) else 200
    return render_template(
        "catalog/lab_import.html",
        form=form,
        lab=lab,
        labs=labs,
        problems=problems,
        checked=checked,
        columns=catalog_import.COLUMNS,
    ), status


@bp.get("/lab/resources/import/template.csv")
@login_required
def lab_import_template():
    response = make_response(catalog_import.template_csv())
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = "attachment; filename=resources-template.csv"
    return response


# --- the platform admin's calendar --------------------------------------------------------


def _parse_calendar_lines(text: str) -> tuple[list[dict], dict[int, str], list[str]]:
    """``2027-01-01 holiday 元旦`` per line (kind: holiday/workday, or 休/班)."""
    words = {"休": "holiday", "假": "holiday", "班": "workday"}
    days, lines, errors = [], {}, []
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        try:
            day = date.fromisoformat(parts[0])
        except ValueError:
            errors.append(gettext("Line %(line)s: not a date (YYYY-MM-DD).", line=number))
            continue
        kind = parts[1] if len(parts) > 1 else ""
        kind = words.get(kind, kind)
        lines[len(days)] = str(number)
        days.append({"date": day, "kind": kind, "name": parts[2] if len(parts) > 2 else ""})
    return days, lines, errors


@bp.route("/admin/calendar", methods=["GET", "POST"])
@login_required
def calendar_admin():
    actor = current_actor()
    if not actor.platform_admin:
        raise NotFound()
    year = (
        request.args.get("year", type=int) or clock.now().astimezone(clock.platform_tz()).year + 1
    )
    if not 2000 <= year <= 2100:
        raise NotFound()
    form = CalendarForm()
    entries = catalog.calendar_year(db.session, year)
    if request.method == "GET":
        form.days.data = "\n".join(
            f"{e.day.isoformat()} {e.kind} {e.name}".rstrip()
            for e in entries
            if e.source == "platform"
        )
    elif form.validate_on_submit():
        days, lines, errors = _parse_calendar_lines(form.days.data)
        if not errors:
            try:
                catalog.set_calendar_year(db.session, actor, year, days)
            except ValidationFailed as exc:
                for path, messages in exc.fields.items():
                    index = path.split(".")[1] if path.startswith("days.") else None
                    line = lines.get(int(index)) if index and index.isdigit() else None
                    for message in messages:
                        text = gettext(message)
                        errors.append(
                            gettext("Line %(line)s: %(message)s", line=line, message=text)
                            if line
                            else text
                        )
            else:
                flash(gettext("The calendar was saved."), "success")
                return redirect(url_for(".calendar_admin", year=year))
        form.days.errors = errors
    status = 422 if request.method == "POST" else 200
    return render_template(
        "catalog/calendar.html",
        form=form,
        year=year,
        entries=entries,
        library_knows=catalog.library_knows_year(year),
    ), status


# --- commands ---------------------------------------------------------------------------


@bp.cli.command("load-categories")
def load_categories_command() -> None:
    """Load booking/data/categories.json into the categories table (idempotent)."""
    added, updated = catalog.load_categories(db.session, catalog.SYSTEM)
    db.session.commit()
    click.echo(f"categories: {added} added, {updated} updated")


@bp.cli.command("import-resources")
@click.argument("path")
@click.option("--lab", "provider_id", type=int, required=True, help="the lab's organisation id")
@click.option("--dry-run", is_flag=True, help="check every row, import nothing")
def import_resources_command(path: str, provider_id: int, dry_run: bool) -> None:
    """Import a lab's resources from a CSV or XLSX file (all rows or none)."""
    import sys

    from booking.models.accounts import Organization

    provider = db.session.get(Organization, provider_id)
    if provider is None:
        click.echo(f"no organisation {provider_id}", err=True)
        sys.exit(1)
    with open(path, "rb") as handle:
        content = handle.read()
    try:
        result = catalog_import.import_resources(
            db.session,
            catalog.lab_admin_actor(provider, ip="cli"),
            path,
            content,
            provider_id=provider_id,
            dry_run=dry_run,
        )
    except catalog_import.ImportRejected as exc:
        for row in exc.details["rows"]:
            click.echo(f"row {row['row']}, {row['column']}: {' '.join(row['messages'])}", err=True)
        sys.exit(1)
    db.session.commit()
    verb = "checked" if dry_run else "imported"
    click.echo(f"{len(result.items)} rows {verb}")
