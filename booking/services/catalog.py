"""Catalog use cases: categories, resources with their rules, opening hours,
versioned price lists, blackouts, the platform's calendar entries, and the
one search every list of resources goes through.

Inputs are plain dicts of Python values (what the API's marshmallow schemas,
the lab's forms and the bulk import produce). Every check of the domain runs
before anything is written; a refusal writes nothing. Services flush, the
caller commits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from importlib import resources as package_files
from types import SimpleNamespace
from typing import Any, NamedTuple

from sqlalchemy import (
    Integer,
    Numeric,
    String,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, joinedload, selectinload

from booking import authz
from booking.authz import Actor, MembershipView
from booking.domain import catalog as rules
from booking.domain import clock
from booking.domain.errors import N_, Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from booking.domain.organizations import clean_region, governed_prefix
from booking.models.accounts import Organization, OrgKind
from booking.models.base import Money
from booking.models.catalog import (
    Blackout,
    BlackoutKind,
    CalendarDay,
    CalendarDayKind,
    Category,
    CustomerClass,
    FundingSource,
    OpeningHours,
    PriceRule,
    PriceUnit,
    Resource,
    ResourceKind,
    ResourcePhoto,
    ResourceStatus,
    ServiceCategory,
)
from booking.models.reservations import LIVE_STATUSES, Reservation
from booking.services import audit, catalog_cache, events

SYSTEM = Actor(user_id=None, platform_admin=True, ip="system")

# --- categories -------------------------------------------------------------


def category_data() -> list[dict]:
    raw = package_files.files("booking").joinpath("data/categories.json").read_text("utf-8")
    return json.loads(raw)


def load_categories(
    session: Session, actor: Actor | None = None, data: list[dict] | None = None
) -> tuple[int, int]:
    """Load the two-level taxonomy (``booking/data/categories.json``) into the
    categories table: new codes are added, changed names or aliases updated,
    nothing removed (resources point at them). Idempotent; one audit event
    lists what changed. The search text of resources in a changed category is
    rebuilt. Returns (added, updated)."""
    data = category_data() if data is None else data
    existing = {c.code: c for c in session.scalars(select(Category))}
    added: list[str] = []
    updated: dict[str, dict] = {}

    def upsert(item: dict, parent: Category | None) -> Category:
        values = {
            "name_zh": item["name_zh"],
            "name_en": item["name_en"],
            "service_category": ServiceCategory(
                item.get("service_category")
                or (parent.service_category if parent else "instrument_sharing")
            ),
            "nrii_code": item.get("nrii_code"),
            "aliases": list(item.get("aliases") or []),
            "parent_id": parent.id if parent else None,
        }
        category = existing.get(item["code"])
        if category is None:
            category = Category(code=item["code"], **values)
            session.add(category)
            existing[category.code] = category
            added.append(category.code)
        elif any(getattr(category, k) != v for k, v in values.items()):
            updated[category.code] = {
                k: getattr(category, k) for k, v in values.items() if getattr(category, k) != v
            }
            for key, value in values.items():
                setattr(category, key, value)
        return category

    tops = [upsert(top, None) for top in data]
    session.flush()
    for top, item in zip(tops, data, strict=True):
        for child in item.get("children") or []:
            upsert(child, top)
    session.flush()
    if updated:
        changed = {existing[code].id for code in updated}
        children = session.scalars(select(Category.id).where(Category.parent_id.in_(changed)))
        affected = changed | set(children)
        for resource in session.scalars(
            select(Resource)
            .where(Resource.category_id.in_(affected))
            .options(*_search_text_loads())
        ):
            refresh_search_text(resource)
        session.flush()
    if added or updated:
        audit.record(
            session,
            actor,
            "category.load",
            ("categories", None),
            before={"updated": updated},
            after={"added": added, "updated": sorted(updated)},
        )
    return len(added), len(updated)


def categories(session: Session) -> list[Category]:
    return list(session.scalars(select(Category).order_by(Category.code)))


def category_tree(session: Session) -> list[tuple[Category, list[Category]]]:
    """Top-level categories with their children, in code order."""
    rows = categories(session)
    tops = [c for c in rows if c.parent_id is None]
    return [(top, [c for c in rows if c.parent_id == top.id]) for top in tops]


def category_by_code(session: Session, code: str | None) -> Category | None:
    if not code:
        return None
    return session.scalar(
        select(Category).where(Category.code == code).options(joinedload(Category.parent))
    )


# --- search text --------------------------------------------------------------


def _search_text_loads():
    return (
        joinedload(Resource.category).joinedload(Category.parent),
        joinedload(Resource.provider),
    )


def build_search_text(resource: Resource) -> str:
    """The words a search box finds a resource by: names in both languages,
    model, maker, the asset number, the provider's names, the names and
    aliases of its category and the category's parent, and the descriptions.
    Names come first: a match early in the text ranks higher."""
    parts: list[str | None] = [
        resource.name_zh,
        resource.name_en,
        resource.model,
        resource.manufacturer,
        resource.inner_id,
    ]
    category = resource.category
    while category is not None:
        parts.extend([category.name_zh, category.name_en, *(category.aliases or [])])
        category = category.parent
    provider = resource.provider
    if provider is not None:
        parts.extend([provider.name, provider.name_en])
    parts.extend([resource.location, resource.description_zh, resource.description_en])
    return rules.normalise_text(*parts)


def refresh_search_text(resource: Resource) -> None:
    resource.search_text = build_search_text(resource)
    resource.search_grams = rules.text_grams(resource.search_text)


# --- resources ----------------------------------------------------------------

RULE_FIELDS = tuple(rules.RULE_BOUNDS) + rules.RULE_FLAGS
TEXT_FIELDS = {
    "name_zh": 200,
    "name_en": 200,
    "description_zh": 20000,
    "description_en": 20000,
    "location": 200,
    "manufacturer": 120,
    "model": 120,
    "capacity_unit": 20,
    "inner_id": 60,
}
PLAIN_FIELDS = (
    "name_zh",
    "name_en",
    "description_zh",
    "description_en",
    "location",
    "manufacturer",
    "model",
    "capacity_unit",
    "inner_id",
    "country",
    "voucher_eligible",
    "original_value",
    "accepted_on",
    "special_purpose",
    "turnaround_days",
    "closed_on_holidays",
)
ENUM_FIELDS = {
    "status": ResourceStatus,
    "service_category": ServiceCategory,
    "funding_source": FundingSource,
}


def get_resource(session: Session, actor: Actor, resource_id: int) -> Resource:
    """One resource with what its page shows; 404 when unknown."""
    resource = session.scalar(
        select(Resource)
        .where(Resource.id == resource_id)
        .options(
            *_search_text_loads(),
            selectinload(Resource.opening_hours),
            selectinload(Resource.prices),
            selectinload(Resource.photos),
        )
    )
    if resource is None or not authz.can(actor, "resource.view", resource):
        raise NotFound(N_("No such resource."))
    return resource


def resource_view(session: Session, actor: Actor, resource_id: int) -> ListedResource:
    """One resource as its API answer shows it (``listed_resources``, kept
    between requests by ``catalog_cache``); 404 when unknown."""
    found = catalog_cache.CACHE.resources(session, [resource_id], listed_resources)
    if not found or not authz.can(actor, "resource.view", found[0]):
        raise NotFound(N_("No such resource."))
    return found[0]


def resource_for_change(session: Session, actor: Actor, resource_id: int) -> Resource:
    """A resource the actor may change: 404 if unknown or not theirs to see,
    403 for a member of the lab who is not its admin."""
    resource = get_resource(session, actor, resource_id)
    authz.require(actor, "resource.update", resource)
    return resource


def provider_for_new_resource(
    session: Session, actor: Actor, provider_id: int | None
) -> Organization:
    """The lab a new resource belongs to: the one named, or the only lab the
    actor administers."""
    if not actor.authenticated and not actor.memberships:
        raise Unauthorized()
    if provider_id is None:
        mine = sorted(actor.org_ids("provider", "admin"))
        if not mine:
            raise Forbidden(N_("Only a lab's admin can add resources."))
        if len(mine) > 1:
            raise ValidationFailed({"provider_id": [N_("Name the lab the resource belongs to.")]})
        provider_id = mine[0]
    provider = session.get(Organization, provider_id)
    if provider is None or provider.kind != OrgKind.PROVIDER:
        raise NotFound(N_("No such lab."))
    authz.require(actor, "resource.create", provider)
    return provider


def _text_problems(data: Mapping[str, Any], errors: dict[str, list[str]]) -> None:
    for name, limit in TEXT_FIELDS.items():
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            errors.setdefault(name, []).append(N_("Not a valid string."))
        elif len(value) > limit:
            errors.setdefault(name, []).append(N_("This text is too long."))
    if "name_zh" in data and not (data.get("name_zh") or "").strip():
        errors.setdefault("name_zh", []).append(N_("Missing data for required field."))
    for name, enum_cls in ENUM_FIELDS.items():
        value = data.get(name)
        if value is not None and value not in {m.value for m in enum_cls}:
            errors.setdefault(name, []).append(N_("Not one of the allowed values."))
    value = data.get("original_value")
    if value is not None and (not isinstance(value, Decimal) or value < 0):
        errors.setdefault("original_value", []).append(N_("Must not be negative."))
    days = data.get("turnaround_days")
    if days is not None and (not isinstance(days, int) or not 0 <= days <= 365):
        errors.setdefault("turnaround_days", []).append(N_("The turnaround is 0 to 365 days."))
    country = data.get("country")
    if country and (not isinstance(country, str) or len(country) > 3):
        errors.setdefault("country", []).append(N_("Use a country code of 2 or 3 letters."))


def _resolve_category(session: Session, code: Any, errors: dict) -> Category | None:
    category = category_by_code(session, code) if isinstance(code, str) else None
    if category is None:
        errors.setdefault("category", []).append(N_("Unknown category."))
    return category


def _resolve_region(value: Any, errors: dict) -> str | None:
    try:
        return clean_region(value)
    except ValueError as exc:
        errors.setdefault("region", []).append(str(exc))
        return None


@dataclass
class NewResource:
    """A new resource's input after every check passed, ready to write."""

    provider: Organization
    category: Category
    data: Mapping[str, Any]
    kind: str
    region: str
    capacity: int
    booking_rules: dict[str, Any]
    spans: list[rules.OpeningSpan]
    prices: list[Mapping[str, Any]]


def check_new_resource(
    session: Session, provider: Organization, data: Mapping[str, Any]
) -> NewResource:
    """Every check of a new resource, writing nothing: fields, category,
    region, rules against kind and capacity, opening spans, prices. Raises
    one ``ValidationFailed`` naming every field at fault."""
    errors: dict[str, list[str]] = {}
    kind = data.get("kind")
    if kind not in rules.KINDS:
        raise ValidationFailed({"kind": [N_("Unknown kind of resource.")]})
    category = _resolve_category(session, data.get("category"), errors)
    region = _resolve_region(data.get("region") or provider.region, errors)
    _text_problems(data, errors)
    if "name_zh" not in data:
        errors.setdefault("name_zh", []).append(N_("Missing data for required field."))
    capacity = data.get("capacity")
    if capacity is None:
        if kind in ("instrument", "pilot_line"):
            capacity = 1
        else:
            errors.setdefault("capacity", []).append(
                N_("Give the capacity (cores, GPU cards, nodes or sample slots).")
            )
    merged_rules = {**rules.default_rules(kind), **(data.get("rules") or {})}
    if capacity is not None:
        errors.update(rules.rule_problems(kind, capacity, merged_rules))
    spans, hour_errors = rules.opening_hours_problems(data.get("opening_hours") or [])
    errors.update(hour_errors)
    if not hour_errors and isinstance(merged_rules.get("granularity_minutes"), int):
        errors.update(
            rules.day_granularity_hours_problems(merged_rules["granularity_minutes"], spans)
        )
    prices = list(data.get("prices") or [])
    errors.update(rules.price_problems(kind, prices))
    rules.raise_if(errors)
    return NewResource(
        provider=provider,
        category=category,
        data=data,
        kind=kind,
        region=region,
        capacity=capacity,
        booking_rules=merged_rules,
        spans=spans,
        prices=prices,
    )


def create_resource(session: Session, actor: Actor, data: Mapping[str, Any]) -> Resource:
    """Add a resource to a lab: every field, rule, opening span and price is
    checked first; 422 naming the fields, nothing written, if any fails."""
    provider = provider_for_new_resource(session, actor, data.get("provider_id"))
    return write_new_resource(session, actor, check_new_resource(session, provider, data))


def write_new_resource(session: Session, actor: Actor, new: NewResource) -> Resource:
    data, category = new.data, new.category
    resource = Resource(
        provider_id=new.provider.id,
        kind=ResourceKind(new.kind),
        category_id=category.id,
        service_category=ServiceCategory(data.get("service_category") or category.service_category),
        region=new.region,
        capacity=new.capacity,
        status=ResourceStatus(data.get("status") or "available"),
        funding_source=FundingSource(data.get("funding_source") or "other"),
        name_en="",
        capacity_unit=rules.CAPACITY_UNIT_DEFAULTS[new.kind],
        extra=dict(data.get("extra") or {}),
    )
    for name in PLAIN_FIELDS:
        if data.get(name) is not None:
            setattr(resource, name, _clean(data[name]))
    for name in RULE_FIELDS:
        setattr(resource, name, new.booking_rules[name])
    resource.category = category
    resource.provider = new.provider
    for span in new.spans:
        resource.opening_hours.append(
            OpeningHours(weekday=span.weekday, open=span.open, close=span.close)
        )
    now = clock.now()
    for item in new.prices:
        resource.prices.append(_price_rule(item, now))
    refresh_search_text(resource)
    session.add(resource)
    session.flush()
    audit.record(session, actor, "resource.create", resource, after=resource_state(resource))
    events.publish(session, "resource.created", resource, actor=actor)
    return resource


def _clean(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def resource_state(resource: Resource) -> dict[str, Any]:
    """What the audit trail keeps of a resource: its columns, hours and the
    prices in effect."""
    state = audit.snapshot(resource)
    state.pop("search_text", None)
    state["opening_hours"] = [_span_of(h).as_dict() for h in resource.opening_hours]
    state["prices"] = [price_terms(p) for p in open_price_rules(resource)]
    return state


def _span_of(row: OpeningHours) -> rules.OpeningSpan:
    return rules.OpeningSpan(row.weekday, row.open, row.close)


def update_resource(
    session: Session, actor: Actor, resource_id: int, data: Mapping[str, Any]
) -> Resource:
    """Change a resource (PATCH): fields given are checked together with the
    ones kept; ``rules`` merge into the current rules; ``opening_hours``
    replace the week; ``prices`` replace the price list (versioned)."""
    resource = resource_for_change(session, actor, resource_id)
    before = resource_state(resource)
    errors: dict[str, list[str]] = {}
    kind = resource.kind.value
    if data.get("kind") not in (None, kind):
        errors["kind"] = [N_("The kind of a resource cannot change; add a new resource.")]
    category = resource.category
    if "category" in data:
        category = _resolve_category(session, data.get("category"), errors)
    region = resource.region
    if data.get("region") is not None:
        region = _resolve_region(data["region"], errors)
    _text_problems(data, errors)
    capacity = data.get("capacity", resource.capacity)
    current_rules = {name: getattr(resource, name) for name in RULE_FIELDS}
    merged_rules = {**current_rules, **(data.get("rules") or {})}
    errors.update(rules.rule_problems(kind, capacity, merged_rules))
    spans = [_span_of(h) for h in resource.opening_hours]
    hours_given = data.get("opening_hours") is not None
    if hours_given:
        spans, hour_errors = rules.opening_hours_problems(data["opening_hours"])
        errors.update(hour_errors)
    if "opening_hours" not in errors and isinstance(merged_rules.get("granularity_minutes"), int):
        errors.update(
            rules.day_granularity_hours_problems(merged_rules["granularity_minutes"], spans)
        )
    prices = data.get("prices")
    if prices is not None:
        errors.update(rules.price_problems(kind, prices))
    rules.raise_if(errors)
    if capacity != resource.capacity:
        _check_capacity_change(session, resource, capacity)
    if data.get("status") == "retired" and resource.status != ResourceStatus.RETIRED:
        _check_can_retire(session, resource)

    for name in PLAIN_FIELDS:
        if name in data and data[name] is not None:
            setattr(resource, name, _clean(data[name]))
    for name, enum_cls in ENUM_FIELDS.items():
        if data.get(name) is not None:
            setattr(resource, name, enum_cls(data[name]))
    for name in RULE_FIELDS:
        setattr(resource, name, merged_rules[name])
    resource.capacity = capacity
    resource.region = region
    if category is not resource.category:
        resource.category_id = category.id
        resource.category = category
    if hours_given:
        _replace_hours(session, resource, spans)
    if prices is not None:
        _apply_prices(session, resource, prices, None)
    refresh_search_text(resource)
    resource.updated_at = clock.now()
    session.flush()
    after = resource_state(resource)
    if after != before:
        changed = {k for k in after if after.get(k) != before.get(k)} - {"updated_at"}
        audit.record(
            session,
            actor,
            "resource.update",
            resource,
            before={k: before.get(k) for k in changed},
            after={k: after.get(k) for k in changed},
        )
        events.publish(session, "resource.updated", resource, actor=actor, changed=sorted(changed))
    return resource


def _live_future_bookings(session: Session, resource: Resource):
    return select(Reservation).where(
        Reservation.resource_id == resource.id,
        Reservation.status.in_(LIVE_STATUSES),
        Reservation.end_at > clock.now(),
    )


def _check_capacity_change(session: Session, resource: Resource, capacity: int) -> None:
    """Bookings already held keep their promise: capacity may not drop below
    the units one of them holds, nor switch between exclusive and pooled
    while any is live (the database's overlap guard reads that flag)."""
    bookings = list(session.scalars(_live_future_bookings(session, resource)))
    if not bookings:
        return
    if (capacity == 1) != (resource.capacity == 1):
        raise Conflict(
            N_(
                "Bookings are held on this resource: it cannot switch between exclusive and pooled."
            ),
            details={"field": "capacity", "reservations": [b.id for b in bookings][:50]},
        )
    too_big = [b.id for b in bookings if b.units > capacity]
    if too_big:
        raise Conflict(
            N_("Some bookings hold more units than the new capacity."),
            details={"field": "capacity", "reservations": too_big[:50]},
        )


def _check_can_retire(session: Session, resource: Resource) -> None:
    held = list(session.scalars(_live_future_bookings(session, resource).limit(50)))
    if held:
        raise Conflict(
            N_("Bookings are held on this resource: cancel them before retiring it."),
            details={"field": "status", "reservations": [b.id for b in held]},
        )


# --- opening hours ------------------------------------------------------------


def _replace_hours(session: Session, resource: Resource, spans: list[rules.OpeningSpan]) -> None:
    resource.opening_hours.clear()
    session.flush()
    for span in spans:
        resource.opening_hours.append(
            OpeningHours(weekday=span.weekday, open=span.open, close=span.close)
        )


def set_opening_hours(
    session: Session, actor: Actor, resource_id: int, items: Iterable[Mapping]
) -> Resource:
    return update_resource(session, actor, resource_id, {"opening_hours": list(items)})


#: The answer's text of each opening span seen, by (weekday, open, close):
#: a catalog repeats a few office hours thousands of times.
_SPAN_TEXTS: dict[tuple, dict] = {}


def opening_hours_of(resource: Resource | ListedResource) -> list[dict]:
    """The opening spans as the API writes them, by weekday, opening, closing."""
    found = []
    for key in sorted((h.weekday, h.open, h.close) for h in resource.opening_hours):
        text = _SPAN_TEXTS.get(key)
        if text is None:
            text = rules.OpeningSpan(*key).as_dict()
            if len(_SPAN_TEXTS) < 10_000:
                _SPAN_TEXTS[key] = text
        found.append(dict(text))
    return found


# --- prices -------------------------------------------------------------------

PRICE_FIELDS = (
    "unit_price",
    "setup_fee",
    "min_quantity",
    "rounding_minutes",
    "rounding_threshold_minutes",
    "order_min",
    "order_max",
    "no_show_fee",
    "operator_fee_per_hour",
)
PRICE_DEFAULTS = {
    "setup_fee": Decimal("0.00"),
    "min_quantity": Decimal("0.00"),
    "rounding_minutes": 0,
    "rounding_threshold_minutes": 0,
    "order_min": None,
    "order_max": None,
    "no_show_fee": Decimal("0.00"),
    "operator_fee_per_hour": Decimal("0.00"),
}


def _price_rule(item: Mapping[str, Any], effective_from: datetime) -> PriceRule:
    values = {k: item.get(k, PRICE_DEFAULTS.get(k)) for k in PRICE_FIELDS}
    for key, default in PRICE_DEFAULTS.items():
        if values[key] is None and default is not None:
            values[key] = default
    return PriceRule(
        customer_class=CustomerClass(item["customer_class"]),
        unit=PriceUnit(item["unit"]),
        published=True,
        effective_from=effective_from,
        **values,
    )


def price_terms(rule: PriceRule | Mapping[str, Any]) -> dict[str, Any]:
    """The terms of a price rule, comparable and JSON-ready (money as Decimal)."""
    get = rule.get if isinstance(rule, Mapping) else lambda k, d=None: getattr(rule, k, d)
    terms = {
        "customer_class": str(getattr(get("customer_class"), "value", get("customer_class"))),
        "unit": str(getattr(get("unit"), "value", get("unit"))),
    }
    for name in PRICE_FIELDS:
        value = get(name, PRICE_DEFAULTS.get(name))
        if value is None:
            value = PRICE_DEFAULTS.get(name)
        if isinstance(value, Decimal):
            value = value.quantize(Decimal("0.01"))
        terms[name] = value
    return terms


def in_effect(rule: PriceRule, at: datetime) -> bool:
    return rule.effective_from <= at and (rule.effective_until is None or rule.effective_until > at)


_CLASS_ORDER = {c.value: i for i, c in enumerate(CustomerClass)}


def current_prices(resource: Resource, at: datetime | None = None) -> list[PriceRule]:
    """The published price rules of a loaded resource in effect at ``at``
    (now by default), by customer class and unit."""
    at = at or clock.now()
    found = [p for p in resource.prices if p.published and in_effect(p, at)]
    return sorted(found, key=lambda p: (_CLASS_ORDER[p.customer_class.value], p.unit.value))


def open_price_rules(resource: Resource) -> list[PriceRule]:
    """Rules not closed yet: the current list, or the scheduled one."""
    return [p for p in resource.prices if p.effective_until is None]


def price_rules_at(
    session: Session, resource_id: int, at: datetime, customer_class: str | None = None
) -> list[PriceRule]:
    """The published rules of a resource in effect at ``at`` (for a booking's
    price snapshot), optionally of one customer class."""
    stmt = select(PriceRule).where(
        PriceRule.resource_id == resource_id,
        PriceRule.published.is_(True),
        PriceRule.effective_from <= at,
        or_(PriceRule.effective_until.is_(None), PriceRule.effective_until > at),
    )
    if customer_class:
        stmt = stmt.where(PriceRule.customer_class == CustomerClass(customer_class))
    return list(session.scalars(stmt.order_by(PriceRule.unit, PriceRule.id)))


def _apply_prices(
    session: Session,
    resource: Resource,
    items: Iterable[Mapping[str, Any]],
    effective_from: datetime | None,
) -> bool:
    """Version the price list: a rule whose terms are unchanged is kept;
    every other rule in effect at or after ``effective_from`` (now by default)
    is closed there, and the new terms start there. A rule scheduled for later
    that is replaced never takes effect (closed where it starts). Returns True
    if anything changed."""
    now = clock.now()
    start = max(effective_from or now, now)
    wanted = {(str(i["customer_class"]), str(i["unit"])): i for i in items}
    kept: set[tuple[str, str]] = set()
    changed = False
    for rule in resource.prices:
        if rule.effective_until is not None and rule.effective_until <= start:
            continue  # history
        key = (rule.customer_class.value, rule.unit.value)
        item = wanted.get(key)
        if (
            item is not None
            and key not in kept
            and rule.effective_until is None
            and rule.effective_from <= start
            and price_terms(rule) == price_terms(item)
        ):
            kept.add(key)
            continue
        rule.effective_until = max(start, rule.effective_from)
        changed = True
    for key, item in wanted.items():
        if key not in kept:
            resource.prices.append(_price_rule(item, start))
            changed = True
    session.flush()
    return changed


def set_prices(
    session: Session,
    actor: Actor,
    resource_id: int,
    items: list[Mapping[str, Any]],
    effective_from: datetime | None = None,
) -> Resource:
    """Publish a new price list (PUT /resources/{id}/prices): checked as a
    whole, versioned rule by rule, effective now or from a later instant."""
    resource = resource_for_change(session, actor, resource_id)
    errors = rules.price_problems(resource.kind.value, items)
    if effective_from is not None and effective_from < clock.now() - timedelta(minutes=1):
        errors.setdefault("effective_from", []).append(N_("This time is in the past."))
    rules.raise_if(errors)
    before = [price_terms(p) for p in open_price_rules(resource)]
    if _apply_prices(session, resource, items, effective_from):
        after = [price_terms(p) for p in open_price_rules(resource)]
        audit.record(
            session,
            actor,
            "resource.prices",
            resource,
            before={"prices": before},
            after={
                "prices": after,
                "effective_from": (effective_from or clock.now()).isoformat(),
            },
        )
        events.publish(session, "resource.prices_changed", resource, actor=actor)
    return resource


def price_history(session: Session, actor: Actor, resource_id: int) -> list[PriceRule]:
    """Every version of the price list, newest first (the lab's own view)."""
    resource = resource_for_change(session, actor, resource_id)
    return sorted(resource.prices, key=lambda p: (p.effective_from, p.id), reverse=True)


# --- blackouts ----------------------------------------------------------------

MAX_BLACKOUT = timedelta(days=366)


def add_blackout(
    session: Session, actor: Actor, resource_id: int, data: Mapping[str, Any]
) -> tuple[Blackout, list[int]]:
    """Close a resource for maintenance, calibration, a breakdown or a
    closure. Returns the blackout and the ids of live bookings it overlaps,
    which the lab should then move or cancel (they are not touched here)."""
    resource = resource_for_change(session, actor, resource_id)
    errors: dict[str, list[str]] = {}
    start, end = data.get("start"), data.get("end")
    reason = (data.get("reason") or "").strip()
    kind = data.get("kind") or "maintenance"
    if not isinstance(start, datetime) or start.tzinfo is None:
        errors["start"] = [N_("Not a valid date and time (ISO 8601).")]
    if not isinstance(end, datetime) or end.tzinfo is None:
        errors["end"] = [N_("Not a valid date and time (ISO 8601).")]
    elif not errors and end <= start:
        errors["end"] = [N_("The end must be after the start.")]
    elif not errors and end - start > MAX_BLACKOUT:
        errors["end"] = [N_("A blackout lasts at most a year; retire the resource instead.")]
    if not reason:
        errors["reason"] = [N_("Give a reason.")]
    elif len(reason) > 500:
        errors["reason"] = [N_("This text is too long.")]
    if kind not in rules.BLACKOUT_KINDS:
        errors["kind"] = [N_("Not one of the allowed values.")]
    rules.raise_if(errors)
    blackout = Blackout(
        resource_id=resource.id,
        start_at=start,
        end_at=end,
        kind=BlackoutKind(kind),
        reason=reason,
        created_by_id=actor.user_id,
        created_at=clock.now(),
    )
    session.add(blackout)
    session.flush()
    overlapping = list(
        session.scalars(
            select(Reservation.id)
            .where(
                Reservation.resource_id == resource.id,
                Reservation.status.in_(LIVE_STATUSES),
                Reservation.busy_start < end,
                Reservation.busy_end > start,
            )
            .order_by(Reservation.start_at)
        )
    )
    audit.record(session, actor, "resource.blackout_add", blackout)
    events.publish(
        session, "resource.blackout_added", blackout, actor=actor, reservations=overlapping
    )
    return blackout, overlapping


def list_blackouts(
    session: Session,
    actor: Actor,
    resource_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Blackout]:
    """Blackouts of a resource overlapping ``[start, end)``; by default those
    not over yet."""
    resource = get_resource(session, actor, resource_id)
    stmt = select(Blackout).where(Blackout.resource_id == resource.id)
    stmt = stmt.where(Blackout.end_at > (start or clock.now()))
    if end is not None:
        stmt = stmt.where(Blackout.start_at < end)
    return list(session.scalars(stmt.order_by(Blackout.start_at, Blackout.id)))


def delete_blackout(session: Session, actor: Actor, resource_id: int, blackout_id: int) -> None:
    resource = resource_for_change(session, actor, resource_id)
    blackout = session.get(Blackout, blackout_id)
    if blackout is None or blackout.resource_id != resource.id:
        raise NotFound(N_("No such blackout."))
    before = audit.snapshot(blackout)
    session.delete(blackout)
    session.flush()
    audit.record(
        session, actor, "resource.blackout_delete", ("blackouts", blackout_id), before=before
    )
    events.publish(
        session, "resource.blackout_removed", resource, actor=actor, blackout_id=blackout_id
    )


# --- the platform's calendar (holidays and adjusted working days) ------------


@dataclass(frozen=True)
class CalendarEntry:
    day: date
    kind: str
    name: str
    source: str  # "platform" (entered here) or "library" (chinesecalendar)


_HOLIDAY_NAMES_ZH: dict[str, str] = {}


def _library_entries(year: int) -> dict[date, CalendarEntry]:
    import chinese_calendar

    if not _HOLIDAY_NAMES_ZH:
        for holiday in chinese_calendar.Holiday:
            _HOLIDAY_NAMES_ZH[holiday.value] = holiday.chinese
    found: dict[date, CalendarEntry] = {}
    for table, kind in (
        (chinese_calendar.holidays, "holiday"),
        (chinese_calendar.workdays, "workday"),
    ):
        for day, name in table.items():
            if day.year == year:
                found[day] = CalendarEntry(day, kind, _HOLIDAY_NAMES_ZH.get(name, name), "library")
    return found


def library_knows_year(year: int) -> bool:
    return bool(_library_entries(year))


def calendar_year(session: Session, year: int) -> list[CalendarEntry]:
    """A year's holidays and adjusted working days: the platform admin's
    entries, and the library's where the admin entered nothing for a date."""
    entries = _library_entries(year)
    start, end = date(year, 1, 1), date(year, 12, 31)
    for row in session.scalars(
        select(CalendarDay).where(CalendarDay.day >= start, CalendarDay.day <= end)
    ):
        entries[row.day] = CalendarEntry(row.day, row.kind.value, row.name, "platform")
    return [entries[d] for d in sorted(entries)]


def set_calendar_year(
    session: Session, actor: Actor, year: int, days: list[Mapping[str, Any]]
) -> list[CalendarEntry]:
    """Replace the platform's entries of ``year`` (holidays and 调休 working
    days the library does not know yet, or gets wrong). All checked first."""
    authz.require(actor, "calendar.manage")
    if not clock.MIN_YEAR <= year <= clock.MAX_YEAR:
        raise ValidationFailed({"year": [N_("The date is out of range.")]})
    rules.raise_if(rules.calendar_day_problems(year, days))
    start, end = date(year, 1, 1), date(year, 12, 31)
    old = session.scalars(
        select(CalendarDay).where(CalendarDay.day >= start, CalendarDay.day <= end)
    ).all()
    before = [{"date": r.day.isoformat(), "kind": r.kind.value, "name": r.name} for r in old]
    session.execute(delete(CalendarDay).where(CalendarDay.day >= start, CalendarDay.day <= end))
    after = []
    for item in sorted(days, key=lambda i: i["date"]):
        name = (item.get("name") or "").strip()
        session.add(CalendarDay(day=item["date"], kind=CalendarDayKind(item["kind"]), name=name))
        after.append({"date": item["date"].isoformat(), "kind": item["kind"], "name": name})
    session.flush()
    if before != after:
        audit.record(
            session,
            actor,
            "calendar.set_year",
            ("calendar_days", year),
            before={"year": year, "days": before},
            after={"year": year, "days": after},
        )
        events.publish(session, "calendar.changed", year, actor=actor)
    return calendar_year(session, year)


# --- search -------------------------------------------------------------------

SORTS = ("relevance", "name", "price", "-price", "newest")
LISTED_STATUSES = (ResourceStatus.AVAILABLE, ResourceStatus.MAINTENANCE)
MAX_AVAILABILITY_SPAN = timedelta(days=62)


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    kind: str | None = None
    category: str | None = None
    provider_id: int | None = None
    region: str | None = None
    voucher_eligible: bool | None = None
    status: str | None = None
    customer_class: str = "enterprise"
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    available_from: datetime | None = None
    available_to: datetime | None = None
    sort: str | None = None
    page: int = 1
    per_page: int = 50


@dataclass
class SearchPage:
    items: list[ListedResource]
    total: int
    page: int
    per_page: int
    terms: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _query_problems(session: Session, query: SearchQuery) -> tuple[dict, list[int] | None]:
    errors: dict[str, list[str]] = {}
    category_ids = None
    if query.kind and query.kind not in rules.KINDS:
        errors["kind"] = [N_("Unknown kind of resource.")]
    if query.category:
        category = category_by_code(session, query.category)
        if category is None:
            errors["category"] = [N_("Unknown category.")]
        else:
            category_ids = [category.id]
            if category.parent_id is None:
                category_ids += list(
                    session.scalars(select(Category.id).where(Category.parent_id == category.id))
                )
    if query.region and (not query.region.isdigit() or not 2 <= len(query.region) <= 6):
        errors["region"] = [N_("A region is 2 to 6 digits of a division code, e.g. 1401.")]
    if query.customer_class not in rules.CUSTOMER_CLASSES:
        errors["customer_class"] = [N_("Unknown customer class.")]
    if query.status and query.status not in {s.value for s in LISTED_STATUSES}:
        errors["status"] = [N_("Not one of the allowed values.")]
    if (
        query.price_min is not None
        and query.price_max is not None
        and query.price_max < query.price_min
    ):
        errors["price_max"] = [N_("The highest price must not be below the lowest.")]
    if (query.available_from is None) != (query.available_to is None):
        missing = "available_to" if query.available_to is None else "available_from"
        errors[missing] = [N_("Give both ends of the time span.")]
    elif query.available_from is not None:
        if query.available_to <= query.available_from:
            errors["available_to"] = [N_("The end must be after the start.")]
        elif query.available_to - query.available_from > MAX_AVAILABILITY_SPAN:
            errors["available_to"] = [N_("Search free times over at most 62 days.")]
    if query.sort and query.sort not in SORTS:
        errors["sort"] = [N_("Not one of the allowed values.")]
    return errors, category_ids


# The search is built from the tables' columns (Core): no ORM entities, so
# neither building nor running it goes through the ORM's machinery.
_RESOURCES = Resource.__table__
_RC = Resource.__table__.c
_PC = PriceRule.__table__.c
_BC = Reservation.__table__.c
_XC = Blackout.__table__.c
_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


def _current_price_clause(customer_class, now):
    """The resource's published rules in effect at ``now`` of one customer
    class (both may be bound parameters)."""
    return and_(
        _PC.resource_id == _RC.id,
        _PC.customer_class == customer_class,
        _PC.published.is_(True),
        _PC.effective_from <= now,
        or_(_PC.effective_until.is_(None), _PC.effective_until > now),
    )


def _free_between(start, end):
    """ "Free between these times", in SQL: the resource is available, no
    blackout overlaps the span, and for an exclusive resource no live booking
    (requested, approved, in use) overlaps its buffered time; for a pooled one
    the units of the overlapping live bookings stay below capacity. The pooled
    test adds up every overlapping booking even where they do not overlap
    each other, so it may hide a resource that still has room at every
    instant (never the reverse); opening hours and the requested span's own
    buffers are not considered. The availability endpoint gives the exact
    answer for one resource. ``start`` and ``end`` may be bound parameters."""
    overlapping = and_(
        _BC.resource_id == _RC.id,
        _BC.status.in_(LIVE_STATUSES),
        _BC.busy_start < end,
        _BC.busy_end > start,
    )
    units_in_use = (
        select(func.coalesce(func.sum(_BC.units), 0))
        .where(overlapping)
        .correlate(_RESOURCES)
        .scalar_subquery()
    )
    blackout = exists().where(_XC.resource_id == _RC.id, _XC.start_at < end, _XC.end_at > start)
    return and_(
        _RC.status == ResourceStatus.AVAILABLE,
        ~blackout,
        or_(
            and_(_RC.capacity == 1, ~exists().where(overlapping)),
            and_(_RC.capacity > 1, units_in_use < _RC.capacity),
        ),
    )


@dataclass(frozen=True)
class _SearchShape:
    """What the search statement's SQL depends on (values are parameters)."""

    postgres: bool
    status: str | None
    term_grams: tuple[bool, ...]  # one per term: whether it has Chinese grams
    kind: bool
    category: bool
    provider: bool
    region: bool
    voucher_eligible: bool | None
    price_min: bool
    price_max: bool
    available: bool
    sort: str


def _param(name: str, column=None, **kw):
    """A bound parameter typed like ``column`` (or as ``type_`` says)."""
    if column is not None:
        kw["type_"] = column.type
    return bindparam(name, **kw)


def _search_statements(shape: _SearchShape):
    """The page's statement (ids and the total) and the count for a page
    past the end, for one shape of search, with the values as parameters."""
    conditions = [_RC.status.in_(LISTED_STATUSES)]
    if shape.status:
        conditions = [_RC.status == ResourceStatus(shape.status)]
    position = None
    for i, has_grams in enumerate(shape.term_grams):
        # search_text and the terms are both lower-cased (normalise_text), so
        # LIKE matches what ILIKE would, and faster on Chinese text.
        like = _RC.search_text.like(_param(f"pattern_{i}", _RC.search_text), escape="\\")
        term = _param(f"term_{i}", type_=String())
        if shape.postgres:
            found_at = func.strpos(_RC.search_text, term)
            if has_grams:
                # The index of Chinese grams finds the candidates; the term's
                # position confirms them. Not LIKE: the planner would also read
                # the trigram index, which holds nothing of a two-character
                # term and is read whole (10 ms of a 28 ms search at 2,000
                # resources).
                conditions.append(_RC.search_grams.contains(_param(f"grams_{i}", _RC.search_grams)))
                conditions.append(found_at > 0)
            else:
                conditions.append(like)
        else:
            conditions.append(like)
            found_at = func.instr(_RC.search_text, term)
        position = found_at if position is None else position + found_at
    if shape.kind:
        conditions.append(_RC.kind == _param("kind", _RC.kind))
    if shape.category:
        conditions.append(_RC.category_id.in_(_param("category_ids", expanding=True)))
    if shape.provider:
        conditions.append(_RC.provider_id == _param("provider_id", _RC.provider_id))
    if shape.region:
        conditions.append(_RC.region.startswith(_param("region", _RC.region)))
    if shape.voucher_eligible is not None:
        conditions.append(_RC.voucher_eligible.is_(shape.voucher_eligible))
    customer_class = _param("customer_class", _PC.customer_class)
    now = _param("now", _PC.effective_from)
    if shape.price_min or shape.price_max:
        price = [_current_price_clause(customer_class, now)]
        if shape.price_min:
            price.append(_PC.unit_price >= _param("price_min", _PC.unit_price))
        if shape.price_max:
            price.append(_PC.unit_price <= _param("price_max", _PC.unit_price))
        conditions.append(exists().where(*price))
    if shape.available:
        conditions.append(
            _free_between(_param("start", _BC.busy_start), _param("end", _BC.busy_end))
        )

    if shape.sort in ("price", "-price"):
        lowest = (
            select(func.min(_PC.unit_price))
            .where(_current_price_clause(customer_class, now))
            .correlate(_RESOURCES)
            .scalar_subquery()
        )
        order = [
            lowest.desc().nulls_last() if shape.sort == "-price" else lowest.asc().nulls_last()
        ]
    elif shape.sort == "newest":
        order = [_RC.created_at.desc(), _RC.id.desc()]
    elif shape.sort == "relevance" and position is not None:
        order = [position.asc()]
    else:
        order = []
    order += [_RC.name_zh.asc(), _RC.id.asc()]
    page = (
        select(_RC.id, func.count().over().label("total"))
        .where(*conditions)
        .order_by(*order)
        .limit(_param("limit", type_=Integer()))
        .offset(_param("offset", type_=Integer()))
    )
    return page, select(func.count(_RC.id)).where(*conditions)


#: Built statements by shape: a search is parameters for one of these.
_SEARCH_STATEMENTS: dict[_SearchShape, tuple] = {}


def search_resources(session: Session, query: SearchQuery) -> SearchPage:
    """The one search of the catalog (API and pages): every term of ``q``
    must occur in the resource's search text as part of a word (``LIKE
    '%term%'`` on the lower-cased text; on PostgreSQL served by the trigram
    index, and for Chinese terms by the index of character grams too); then
    the filters; sorted and paged. Retired resources are never listed."""
    errors, category_ids = _query_problems(session, query)
    rules.raise_if(errors)
    terms = rules.search_terms(query.q)
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    offset = (query.page - 1) * query.per_page
    params: dict[str, Any] = {"limit": query.per_page, "offset": offset}
    term_grams = []
    for i, term in enumerate(terms):
        params[f"pattern_{i}"] = rules.like_pattern(term)
        params[f"term_{i}"] = term
        grams = rules.term_grams(term) if postgres else []
        if grams:
            params[f"grams_{i}"] = grams
        term_grams.append(bool(grams))
    if query.kind:
        params["kind"] = ResourceKind(query.kind)
    if category_ids is not None:
        params["category_ids"] = category_ids
    if query.provider_id is not None:
        params["provider_id"] = query.provider_id
    if query.region:
        params["region"] = governed_prefix(query.region)
    sort = query.sort or ("relevance" if terms else "name")
    if query.price_min is not None or query.price_max is not None or sort in ("price", "-price"):
        params["customer_class"] = CustomerClass(query.customer_class)
        params["now"] = clock.now()
    if query.price_min is not None:
        params["price_min"] = query.price_min
    if query.price_max is not None:
        params["price_max"] = query.price_max
    if query.available_from is not None:
        params["start"], params["end"] = query.available_from, query.available_to
    shape = _SearchShape(
        postgres=postgres,
        status=query.status or None,
        term_grams=tuple(term_grams),
        kind=bool(query.kind),
        category=category_ids is not None,
        provider=query.provider_id is not None,
        region=bool(query.region),
        voucher_eligible=query.voucher_eligible,
        price_min=query.price_min is not None,
        price_max=query.price_max is not None,
        available=query.available_from is not None,
        sort=sort,
    )
    statements = _SEARCH_STATEMENTS.get(shape)
    if statements is None:
        if len(_SEARCH_STATEMENTS) >= 1000:
            _SEARCH_STATEMENTS.clear()
        statements = _SEARCH_STATEMENTS[shape] = _search_statements(shape)
    page, count = statements

    if postgres:
        # Plan with the real terms: a prepared statement's generic plan cannot
        # know '%电镜%' is selective and scans the table (10 ms becomes 250).
        connection.execute(_CUSTOM_PLANS)
    rows = connection.execute(page, params).all()
    if rows:
        total = rows[0].total
    elif offset == 0:
        total = 0  # nothing on the first page: nothing at all
    else:
        total = connection.scalar(count, params) or 0
    ids = [row.id for row in rows]
    items = catalog_cache.CACHE.resources(session, ids, listed_resources)
    return SearchPage(
        items=items, total=total, page=query.page, per_page=query.per_page, terms=terms
    )


class ListedResource(SimpleNamespace):
    """A resource as the catalog's lists and the API show it, read with Core
    statements instead of ORM objects (a page of them costs a fraction of
    the CPU): its columns (not the search text, ``extra`` or the NRII date),
    ``category`` (code and names), ``provider`` (id and name),
    ``opening_hours``, ``prices`` (only the published rules in effect when
    it was read) and ``photos`` (id, type, size, caption). Read only."""

    @property
    def exclusive(self) -> bool:
        return self.capacity == 1


_NOT_LISTED = frozenset({"search_text", "search_grams", "extra", "nrii_reported_on"})


class Span(NamedTuple):
    """An opening span as ``ListedResource.opening_hours`` holds it."""

    weekday: int
    open: time
    close: time


def _listed_statements(dialect: str) -> dict[str, Any]:
    """The statements that read a page of resources, built once per dialect:

    - ``resources``: the resources with their category's and lab's names,
      their opening hours as one text (``"0 08:30:00 12:00:00,..."``: a page
      repeats a few office hours, read once each, see ``_spans``) and how
      many photos they have;
    - ``prices``: their published prices in effect at ``:now``;
    - ``photos``: their photos (only asked when some have one).

    On PostgreSQL the ids are one array (``= ANY(:ids)``: the same SQL text
    whatever their number, neither rendered nor planned again per page);
    elsewhere an expanding ``IN``."""
    resources, categories_t = Resource.__table__, Category.__table__
    organizations = Organization.__table__
    hours, prices = OpeningHours.__table__, PriceRule.__table__
    photos = ResourcePhoto.__table__
    if dialect == "postgresql":
        array = bindparam("ids", type_=ARRAY(Integer))

        def among(column):
            return column == any_(array)
    else:
        expanding = bindparam("ids", expanding=True)

        def among(column):
            return column.in_(expanding)

    def read(column):
        # PostgreSQL gives NUMERIC(14,2) as a Decimal with two places already:
        # Money's conversion (quantize to the fen) would change nothing.
        if dialect == "postgresql" and isinstance(column.type, Money):
            return type_coerce(column, Numeric(14, 2)).label(column.key)
        return column

    now = bindparam("now", type_=prices.c.effective_from.type)
    span_text = (
        cast(hours.c.weekday, String)
        + literal(" ")
        + cast(hours.c.open, String)
        + literal(" ")
        + cast(hours.c.close, String)
    )
    hours_text = (
        select(func.aggregate_strings(span_text, ","))
        .where(hours.c.resource_id == resources.c.id)
        .correlate(resources)
        .scalar_subquery()
    )
    photo_count = (
        select(func.count())
        .where(photos.c.resource_id == resources.c.id)
        .correlate(resources)
        .scalar_subquery()
    )
    return {
        "resources": select(
            *(read(c) for c in resources.c if c.key not in _NOT_LISTED),
            categories_t.c.code.label("category_code"),
            categories_t.c.name_zh.label("category_name_zh"),
            categories_t.c.name_en.label("category_name_en"),
            organizations.c.name.label("provider_name"),
            hours_text.label("hours_text"),
            photo_count.label("photo_count"),
        )
        .select_from(
            resources.join(categories_t, categories_t.c.id == resources.c.category_id).outerjoin(
                organizations, organizations.c.id == resources.c.provider_id
            )
        )
        .where(among(resources.c.id)),
        "prices": select(*(read(c) for c in prices.c))
        .where(
            among(prices.c.resource_id),
            prices.c.published.is_(True),
            prices.c.effective_from <= now,
            or_(prices.c.effective_until.is_(None), prices.c.effective_until > now),
        )
        .order_by(prices.c.id),
        "photos": select(
            photos.c.id,
            photos.c.resource_id,
            photos.c.content_type,
            photos.c.width,
            photos.c.height,
            photos.c.caption,
        )
        .where(among(photos.c.resource_id))
        .order_by(photos.c.id),
    }


_LISTED_STATEMENTS: dict[str, dict[str, Any]] = {}
#: Opening hours read as text, by the text: a catalog has few different weeks.
_SPANS: dict[str, tuple[Span, ...]] = {}


def _spans(text_: str | None) -> tuple[Span, ...]:
    if not text_:
        return ()
    found = _SPANS.get(text_)
    if found is None:
        found = []
        for item in text_.split(","):
            weekday, opens, closes = item.split(" ")
            found.append(Span(int(weekday), time.fromisoformat(opens), time.fromisoformat(closes)))
        found = tuple(sorted(found))
        if len(_SPANS) < 10_000:
            _SPANS[text_] = found
    return found


def listed_resources(session: Session, ids: list[int]) -> list[ListedResource]:
    """Resources by id, in the order given (unknown ids left out), as
    ``ListedResource``: two statements for the whole page (three when one of
    them has photos), rows assembled in plain Python.
    ``schemas.catalog.resource_json`` makes the API's JSON of them, the
    catalog's page shows them."""
    if not ids:
        return []
    connection = session.connection()
    dialect = connection.dialect.name
    statements = _LISTED_STATEMENTS.get(dialect)
    if statements is None:
        statements = _LISTED_STATEMENTS[dialect] = _listed_statements(dialect)
    ids = list(ids)
    rows = connection.execute(statements["resources"], {"ids": ids}).all()
    if not rows:
        return []
    prices: dict[int, list] = {}
    for row in connection.execute(statements["prices"], {"ids": ids, "now": clock.now()}).all():
        prices.setdefault(row.resource_id, []).append(row)
    photos: dict[int, list] = {}
    with_photos = [row.id for row in rows if row.photo_count]
    if with_photos:
        for row in connection.execute(statements["photos"], {"ids": with_photos}).all():
            photos.setdefault(row.resource_id, []).append(row)
    by_id = {}
    for row in rows:
        values = row._asdict()
        resource_id = values["id"]
        values["category"] = SimpleNamespace(
            id=values["category_id"],
            code=values.pop("category_code"),
            name_zh=values.pop("category_name_zh"),
            name_en=values.pop("category_name_en"),
        )
        name = values.pop("provider_name")
        values["provider"] = (
            None if name is None else SimpleNamespace(id=values["provider_id"], name=name)
        )
        values["opening_hours"] = list(_spans(values.pop("hours_text")))
        del values["photo_count"]
        values["prices"] = prices.get(resource_id, [])
        values["photos"] = photos.get(resource_id, [])
        by_id[resource_id] = ListedResource(**values)
    return [by_id[i] for i in ids if i in by_id]


def load_resources(session: Session, ids: list[int]) -> list[Resource]:
    """Resources by id, in the order given, with what their JSON needs."""
    if not ids:
        return []
    found = session.scalars(
        select(Resource)
        .where(Resource.id.in_(ids))
        .options(
            joinedload(Resource.category),
            joinedload(Resource.provider),
            selectinload(Resource.opening_hours),
            selectinload(Resource.prices),
            selectinload(Resource.photos),
        )
    ).unique()
    by_id = {r.id: r for r in found}
    return [by_id[i] for i in ids if i in by_id]


def lab_resources(session: Session, actor: Actor, provider_id: int) -> list[Resource]:
    """Every resource of a lab, retired ones included: the lab's own list."""
    provider = session.get(Organization, provider_id)
    if provider is None or not authz.can(actor, "provider.staff_view", provider):
        raise NotFound(N_("No such lab."))
    ids = session.scalars(
        select(Resource.id)
        .where(Resource.provider_id == provider_id)
        .order_by(Resource.status, Resource.name_zh, Resource.id)
    ).all()
    return load_resources(session, list(ids))


def administered_labs(session: Session, actor: Actor) -> list[Organization]:
    ids = actor.org_ids("provider", "admin")
    if not ids:
        return []
    return list(
        session.scalars(
            select(Organization).where(Organization.id.in_(ids)).order_by(Organization.name)
        )
    )


# --- demo data ----------------------------------------------------------------


def lab_admin_actor(provider: Organization, ip: str = "seed-demo") -> Actor:
    """The actor the demo loader and commands act as for one lab."""
    return Actor(
        user_id=None,
        platform_admin=True,
        memberships=(
            MembershipView(
                org_id=provider.id, org_kind="provider", role="admin", region=provider.region
            ),
        ),
        ip=ip,
    )


def seed_demo_resources(
    session: Session, data: dict, orgs: Mapping[str, Organization], users: Mapping | None = None
) -> list[str]:
    """The categories and the demo resources (``demo.json``'s ``resources``),
    through the same checks as real input. Idempotent: a resource whose demo
    key exists at its provider is left as it is."""
    added, updated = load_categories(session, SYSTEM)
    existing: set[tuple[int, str]] = set()
    for provider_id, extra in session.execute(select(Resource.provider_id, Resource.extra)):
        if extra and extra.get("key"):
            existing.add((provider_id, extra["key"]))
    created = 0
    for item in data.get("resources", []):
        provider = orgs[item["provider"]]
        if (provider.id, item["key"]) in existing:
            continue
        payload = demo_resource_input(item)
        create_resource(session, lab_admin_actor(provider), payload)
        created += 1
    return [
        f"categories: {added} added, {updated} updated",
        f"resources: {created} added",
    ]


def demo_resource_input(item: Mapping[str, Any]) -> dict[str, Any]:
    """A ``demo.json`` resource as the service's input (typed values)."""
    payload: dict[str, Any] = {
        k: v
        for k, v in item.items()
        if k not in ("key", "provider", "prices", "rules", "original_value", "accepted_on")
    }
    payload["provider_id"] = None
    payload["extra"] = {"key": item["key"]}
    payload["rules"] = dict(item.get("rules") or {})
    payload["original_value"] = Decimal(str(item.get("original_value") or "0"))
    if item.get("accepted_on"):
        payload["accepted_on"] = date.fromisoformat(item["accepted_on"])
    payload["prices"] = [
        {
            **price,
            "unit_price": Decimal(str(price["unit_price"])),
            "setup_fee": Decimal(str(price.get("setup_fee") or "0")),
            "min_quantity": Decimal(str(price.get("min_quantity") or "0")),
        }
        for price in item.get("prices") or []
    ]
    return payload
