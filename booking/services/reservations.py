"""Reservations (bookings): make, decide, cancel, move, check in and out,
complete, rate; and the scheduler's sweeps (expire undecided requests, mark
no-shows).

Making a booking (``create_reservation``), in one transaction:

1. the input: the customer's organisation, units only on pooled resources,
   samples only on testing services;
2. the resource row is locked (``SELECT … FOR UPDATE``): every booking of one
   resource is checked and written one after the other, so the Python check
   sees what the previous writer wrote (on SQLite every write transaction is
   already serialised by ``BEGIN IMMEDIATE``, see ``booking/database.py``);
3. every rule: the resource is available; the span's grid, length, lead time
   and horizon; opening hours with holidays and adjusted working days;
   training (or a request "with operator" where the lab offers one); a
   published price for the customer's class (POLICY rule 20);
4. what is in the way: live bookings (buffers included), blackouts and open
   waiting-list offers; for a pooled resource the peak of units in use over
   the span (a sweep) plus the new units must stay within the capacity. A
   conflict is 409 naming what is in the way (ids only of the caller's own
   bookings) and the nearest free slots of the same length;
5. the insert, inside a SAVEPOINT: on PostgreSQL the exclusion constraint
   ``ex_reservations_no_overlap`` is the last word for exclusive resources;
   its refusal (SQLSTATE 23P01) becomes the same 409;
6. ``requested``, or ``approved`` at once where the resource needs no approval
   (and the voucher share is held); audit event and domain event.

Customer class: ``internal`` when the customer organisation owns the
resource, ``academic`` for another provider (universities, institutes),
``enterprise`` otherwise. The booking keeps a snapshot of the price it was
made under; the estimate and, at completion, the final cost are computed from
it (``booking.domain.pricing``).

Lock order, to keep clear of deadlocks: a resource row before a reservation
row; the sweeps lock reservation rows only, with ``SKIP LOCKED``.

Services flush, never commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from booking import authz
from booking.authz import Actor
from booking.domain import clock, pricing
from booking.domain import reservations as states
from booking.domain.errors import (
    N_,
    Conflict,
    DomainError,
    Forbidden,
    InvalidTransition,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from booking.domain.money import ZERO
from booking.domain.recurrence import occurrences, parse_rule
from booking.domain.spans import Span
from booking.models.accounts import Organization, OrgKind
from booking.models.catalog import (
    CustomerClass,
    PriceRule,
    Resource,
    ResourceKind,
    ResourceStatus,
)
from booking.models.reservations import (
    Rating,
    Reservation,
    ReservationSeries,
    ReservationStatus,
    ServiceWay,
)
from booking.services import audit, availability, events, training, vouchers, waitlist

log = logging.getLogger(__name__)

S = ReservationStatus
EXCLUSION_VIOLATION = "23P01"
#: How early before the start a customer may be checked in.
CHECK_IN_EARLY_MINUTES = 60
#: The fields an audit event of a move records before and after: every
#: column a move may change (``updated_at`` aside, which every write
#: touches), so the trail shows who decided, when it was cancelled, the
#: buffered span, the price terms and the usage recorded at completion.
AUDITED = [
    "status",
    "start_at",
    "end_at",
    "busy_start",
    "busy_end",
    "units",
    "samples",
    "with_operator",
    "customer_class",
    "price_snapshot",
    "estimated_cost",
    "voucher_id",
    "voucher_estimate",
    "voucher_hold",
    "actual_start",
    "actual_end",
    "actual_units",
    "service_way",
    "prep_minutes",
    "run_minutes",
    "post_minutes",
    "final_cost",
    "voucher_amount",
    "customer_amount",
    "decided_by_id",
    "decided_at",
    "reason",
    "cancelled_at",
    "sequence",
]


def _state(reservation: Reservation) -> dict:
    return audit.snapshot(reservation, AUDITED)


def _text(instant: datetime) -> str:
    return instant.astimezone(clock.platform_tz()).isoformat()


# --- reading -----------------------------------------------------------------


_RESERVATION = select(Reservation).where(Reservation.id == bindparam("reservation_id"))
_RESERVATION_LOCKED = _RESERVATION.with_for_update().execution_options(populate_existing=True)


def _load(session: Session, reservation_id: int, *, lock: bool = False) -> Reservation | None:
    query = _RESERVATION_LOCKED if lock else _RESERVATION
    return session.scalar(query, {"reservation_id": reservation_id})


def get_reservation(session: Session, actor: Actor, reservation_id: int) -> Reservation:
    reservation = _load(session, reservation_id)
    if reservation is None or not authz.can(actor, "reservation.view", reservation):
        raise NotFound()
    return reservation


def _for_move(session: Session, actor: Actor, reservation_id: int, action: str) -> Reservation:
    """The reservation, locked, once ``actor`` may do ``action`` to it."""
    reservation = _load(session, reservation_id, lock=True)
    if reservation is None:
        raise NotFound()
    authz.require(actor, action, reservation)
    return reservation


@dataclass(frozen=True)
class ListFilters:
    status: tuple[str, ...] = ()
    resource_id: int | None = None
    series_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    scope: str | None = None  # "customer", "lab" or None (both)
    page: int = 1
    per_page: int = 50


def visible_query(actor: Actor, scope: str | None = None) -> Select:
    """Reservations ``actor`` may see: their organisations' bookings as a
    customer, their lab's as a lab admin, all for a platform admin."""
    query = select(Reservation)
    if actor.platform_admin and scope is None:
        return query
    customer_orgs = actor.org_ids("enterprise") | actor.org_ids("provider")
    lab_orgs = actor.org_ids("provider", "admin")
    clauses = []
    if scope in (None, "customer") and customer_orgs:
        clauses.append(Reservation.customer_org_id.in_(customer_orgs))
    if scope in (None, "lab") and lab_orgs:
        clauses.append(
            Reservation.resource_id.in_(
                select(Resource.id).where(Resource.provider_id.in_(lab_orgs))
            )
        )
    if not clauses:
        return query.where(False)
    return query.where(or_(*clauses))


def list_reservations(
    session: Session, actor: Actor, filters: ListFilters
) -> tuple[list[Reservation], int]:
    query = visible_query(actor, filters.scope)
    if filters.status:
        query = query.where(Reservation.status.in_([S(s) for s in filters.status]))
    if filters.resource_id is not None:
        query = query.where(Reservation.resource_id == filters.resource_id)
    if filters.series_id is not None:
        query = query.where(Reservation.series_id == filters.series_id)
    if filters.start is not None:
        query = query.where(Reservation.end_at > filters.start)
    if filters.end is not None:
        query = query.where(Reservation.start_at < filters.end)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(
        query.order_by(Reservation.start_at, Reservation.id)
        .offset((filters.page - 1) * filters.per_page)
        .limit(filters.per_page)
    ).all()
    return list(rows), int(total or 0)


# --- the booking input -------------------------------------------------------


@dataclass
class BookingInput:
    """What a customer asks for (the schema has checked types and ``end > start``)."""

    resource_id: int
    start: datetime
    end: datetime
    purpose: str = ""
    units: int | None = None
    samples: int | None = None
    voucher_id: int | None = None
    with_operator: bool = False
    customer_org_id: int | None = None
    recurrence: dict | None = None
    partial: bool = False

    @classmethod
    def from_dict(cls, data: dict) -> BookingInput:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    @property
    def span(self) -> Span:
        return Span(self.start, self.end)


@dataclass(frozen=True)
class CustomerOrg:
    """The organisation a booking is made for, as the actor's membership
    knows it (no query): its id and kind."""

    id: int
    kind: str


def customer_org_for(session: Session, actor: Actor, org_id: int | None) -> CustomerOrg:
    """The organisation the actor books for: the one named, or their only
    enterprise (else their only provider) membership."""
    if not actor.authenticated:
        authz.require(actor, "reservation.create", None)
    kinds = {m.org_id: m.org_kind for m in actor.memberships}
    if org_id is not None:
        if org_id not in kinds:
            raise ValidationFailed(
                {"customer_org_id": N_("You do not book for this organisation.")}
            )
        org = CustomerOrg(org_id, kinds[org_id])
        authz.require(actor, "reservation.create", org)
        return org
    candidates = sorted(actor.org_ids("enterprise")) or sorted(actor.org_ids("provider"))
    if not candidates:
        raise Forbidden(N_("Only members of an enterprise or a lab can book."))
    if len(candidates) > 1:
        raise ValidationFailed(
            {"customer_org_id": N_("You belong to several organisations: choose one.")}
        )
    org = CustomerOrg(candidates[0], kinds[candidates[0]])
    authz.require(actor, "reservation.create", org)
    return org


def customer_class_for(org: CustomerOrg | Organization, resource: Resource) -> CustomerClass:
    if org.id == resource.provider_id:
        return CustomerClass.INTERNAL
    if org.kind == OrgKind.PROVIDER:
        return CustomerClass.ACADEMIC
    return CustomerClass.ENTERPRISE


# Built once: every booking and every move of one runs it.
_LOCK_RESOURCE = (
    select(Resource)
    .where(Resource.id == bindparam("resource_id"))
    .options(joinedload(Resource.opening_hours), joinedload(Resource.prices))
    .with_for_update(of=Resource)
    .execution_options(populate_existing=True)
)


def lock_resource(session: Session, resource_id: int) -> Resource | None:
    """The resource row, locked until the transaction ends (``FOR UPDATE OF
    resources``; a no-op on SQLite, where the write transaction is already
    exclusive), with its opening hours and prices, in one round trip."""
    return (
        session.execute(_LOCK_RESOURCE, {"resource_id": resource_id}).unique().scalar_one_or_none()
    )


def _check_amounts(resource: Resource, request: BookingInput) -> tuple[int, int | None]:
    """Units (pooled resources only) and samples (testing services only)."""
    errors: dict[str, str] = {}
    units = request.units if request.units is not None else 1
    if resource.capacity == 1 and units != 1:
        errors["units"] = N_("This resource is booked whole; units are for pooled resources.")
    elif units > resource.capacity:
        errors["units"] = N_("More units than the resource has.")
    samples = request.samples
    if resource.kind == ResourceKind.TESTING_SERVICE:
        if samples is None:
            errors["samples"] = N_("Say how many samples you send.")
    elif samples is not None:
        errors["samples"] = N_("Samples are for testing services; this resource is booked by time.")
    if errors:
        raise ValidationFailed(errors)
    return units, samples


def _check_available(resource: Resource) -> None:
    if resource.status != ResourceStatus.AVAILABLE:
        raise RuleViolation(
            "resource_unavailable",
            N_("This resource cannot be booked now (%(status)s)."),
            field="resource_id",
            details={"status": resource.status.value},
            status=resource.status.value,
        )


def _check_calendar(session: Session, resource: Resource, span: Span) -> None:
    calendar = availability.opening_calendar(session, resource, span)
    closure = calendar.closure(span)
    if closure is None:
        return
    if closure.rule == "holiday":
        raise RuleViolation(
            "holiday",
            N_("The resource is closed on %(day)s (public holiday)."),
            field="start",
            details={"date": closure.day.isoformat(), "holiday": closure.name},
            day=closure.day.isoformat(),
        )
    raise RuleViolation(
        "opening_hours",
        N_("The booking lies outside the opening hours."),
        field="start",
        details={
            "date": closure.day.isoformat(),
            "opening_hours": [
                {
                    "open": s.start.astimezone(calendar.tz).strftime("%H:%M"),
                    "close": s.end.astimezone(calendar.tz).strftime("%H:%M"),
                }
                for s in calendar.day_spans(closure.day)
            ],
        },
    )


def _check_training(
    session: Session, actor: Actor, resource: Resource, with_operator: bool
) -> bool:
    """True when the booking goes "with operator" (the lab's technician runs
    the instrument); refuses an untrained user where no operator is offered."""
    if with_operator and not resource.operator_allowed:
        raise RuleViolation(
            "operator_not_offered",
            N_("This lab does not offer to run the instrument for you."),
            field="with_operator",
        )
    if with_operator:
        return True
    if resource.requires_training and not training.has_training(session, actor.user_id, resource):
        category = resource.category
        raise RuleViolation(
            "training_required",
            N_("You need the training for %(resource)s before booking it."),
            field="resource_id",
            details={
                "training": {
                    "resource_id": resource.id,
                    "resource_name": resource.name_zh,
                    "category_id": resource.category_id,
                    "category_name": category.name_zh if category else None,
                },
                "operator_allowed": resource.operator_allowed,
            },
            resource=resource.name_zh,
        )
    return False


def current_price(
    resource: Resource, customer_class: CustomerClass, now: datetime, samples: int | None
) -> PriceRule | None:
    """The published price rule in force for the class (newest first; a
    per-sample rule where samples are asked for)."""
    rules = [
        p
        for p in resource.prices
        if p.customer_class == customer_class
        and p.published
        and p.effective_from <= now
        and (p.effective_until is None or p.effective_until > now)
    ]
    if not rules:
        return None
    rules.sort(key=lambda p: (p.effective_from, p.id or 0), reverse=True)
    if samples is not None:
        for rule in rules:
            if rule.unit.value == "sample":
                return rule
    return rules[0]


def price_terms(
    resource: Resource, customer_class: CustomerClass, now: datetime, samples: int | None
) -> pricing.PriceTerms:
    rule = current_price(resource, customer_class, now, samples)
    if rule is None:
        if customer_class == CustomerClass.INTERNAL:
            unit = "sample" if samples is not None else "hour"
            return pricing.PriceTerms.free(customer_class.value, unit)
        raise RuleViolation(
            "no_published_price",
            N_("This resource has no published price for %(customer_class)s customers yet."),
            field="resource_id",
            details={"customer_class": customer_class.value},
            customer_class=customer_class.value,
        )
    return pricing.PriceTerms(
        customer_class=customer_class.value,
        unit=rule.unit.value,
        unit_price=rule.unit_price,
        setup_fee=rule.setup_fee,
        min_quantity=rule.min_quantity,
        rounding_minutes=rule.rounding_minutes,
        rounding_threshold_minutes=rule.rounding_threshold_minutes,
        order_min=rule.order_min,
        order_max=rule.order_max,
        no_show_fee=rule.no_show_fee,
        operator_fee_per_hour=rule.operator_fee_per_hour,
        shift_minutes=int((resource.extra or {}).get("shift_minutes") or 480),
        price_rule_id=rule.id,
    )


def estimate(
    terms: pricing.PriceTerms, span: Span, units: int, samples: int | None, with_operator: bool
) -> pricing.Cost:
    usage = pricing.Usage(
        duration=span.duration, units=units, samples=samples, with_operator=with_operator
    )
    return pricing.cost(terms, usage)


# --- conflicts ---------------------------------------------------------------


def _conflict_item(item: availability.Occupant, actor: Actor) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": "blackout" if item.kind == "blackout" else "booking",
        "start": _text(item.start),
        "end": _text(item.end),
    }
    if item.kind == "blackout":
        entry["id"] = item.id
        entry["reason"] = item.reason
    else:
        entry["units"] = item.units
        # Another customer's booking stays anonymous; the caller's own is named.
        if item.kind == "booking" and item.customer_org_id in (
            actor.org_ids("enterprise") | actor.org_ids("provider")
        ):
            entry["id"] = item.id
    return entry


def conflict_error(
    session: Session,
    actor: Actor,
    resource: Resource,
    span: Span,
    units: int,
    in_the_way: list[availability.Occupant],
    *,
    now: datetime,
    exclude_reservation_id: int | None = None,
    exclude_hold_id: int | None = None,
) -> Conflict:
    slots = availability.suggestions(
        session,
        resource,
        span,
        units,
        now=now,
        exclude_reservation_id=exclude_reservation_id,
        exclude_hold_id=exclude_hold_id,
    )
    kinds = {c.kind for c in in_the_way}
    message = (
        N_("The resource is closed for maintenance at this time.")
        if kinds == {"blackout"}
        else N_("This time is already taken.")
    )
    return Conflict(
        message,
        details={
            "conflicts": [_conflict_item(c, actor) for c in in_the_way],
            "suggestions": [{"start": _text(s.start), "end": _text(s.end)} for s in slots],
        },
    )


def check_free(
    session: Session,
    actor: Actor,
    resource: Resource,
    span: Span,
    units: int,
    *,
    now: datetime,
    exclude_reservation_id: int | None = None,
    exclude_hold_id: int | None = None,
) -> None:
    """Raise the 409 conflict when something holds any of the booking's time."""
    busy = availability.timing_rules(resource).busy_span(span)
    found = availability.occupants(
        session,
        resource,
        busy,
        now=now,
        exclude_reservation_id=exclude_reservation_id,
        exclude_hold_id=exclude_hold_id,
    )
    in_the_way = availability.find_conflicts(resource, busy, units, found)
    if in_the_way:
        raise conflict_error(
            session,
            actor,
            resource,
            span,
            units,
            in_the_way,
            now=now,
            exclude_reservation_id=exclude_reservation_id,
            exclude_hold_id=exclude_hold_id,
        )


def is_overlap_refusal(error: IntegrityError) -> bool:
    """True when the database refused the row for overlapping another
    (the exclusion constraint, SQLSTATE 23P01)."""
    orig = error.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code == EXCLUSION_VIOLATION or "ex_reservations_no_overlap" in str(orig)


def _flush_guarded(
    session: Session,
    actor: Actor,
    resource: Resource,
    span: Span,
    units: int,
    *,
    now: datetime,
    apply,
    exclude_reservation_id: int | None = None,
    exclude_hold_id: int | None = None,
) -> None:
    """Run ``apply()`` and flush inside a SAVEPOINT; the exclusion
    constraint's refusal becomes the 409 conflict, the rest of the
    transaction unharmed."""
    try:
        with session.begin_nested():
            apply()
            session.flush()
    except IntegrityError as exc:
        if not is_overlap_refusal(exc):
            raise
        log.info("exclusion constraint refused a booking of resource %s", resource.id)
        busy = availability.timing_rules(resource).busy_span(span)
        found = availability.occupants(
            session,
            resource,
            busy,
            now=now,
            exclude_reservation_id=exclude_reservation_id,
            exclude_hold_id=exclude_hold_id,
        )
        in_the_way = availability.find_conflicts(resource, busy, units, found)
        raise conflict_error(
            session,
            actor,
            resource,
            span,
            units,
            in_the_way,
            now=now,
            exclude_reservation_id=exclude_reservation_id,
            exclude_hold_id=exclude_hold_id,
        ) from None


# --- making a booking --------------------------------------------------------


@dataclass
class Checked:
    """A booking request that passed every rule but the conflict check."""

    resource: Resource
    customer_org: CustomerOrg | Organization
    span: Span
    units: int
    samples: int | None
    with_operator: bool
    customer_class: CustomerClass
    terms: pricing.PriceTerms
    cost: pricing.Cost
    needs_approval: bool = field(default=True)


def check_request(
    session: Session,
    actor: Actor,
    resource: Resource,
    customer_org: CustomerOrg | Organization,
    request: BookingInput,
    span: Span,
    now: datetime,
) -> Checked:
    """Every rule of the resource, in the order a customer can fix them."""
    units, samples = _check_amounts(resource, request)
    _check_available(resource)
    states.check_timing(availability.timing_rules(resource), span, now, clock.platform_tz())
    _check_calendar(session, resource, span)
    with_operator = _check_training(session, actor, resource, request.with_operator)
    customer_class = customer_class_for(customer_org, resource)
    terms = price_terms(resource, customer_class, now, samples)
    cost = estimate(terms, span, units, samples, with_operator)
    return Checked(
        resource=resource,
        customer_org=customer_org,
        span=span,
        units=units,
        samples=samples,
        with_operator=with_operator,
        customer_class=customer_class,
        terms=terms,
        cost=cost,
        needs_approval=resource.requires_approval or with_operator,
    )


def _resource_for_booking(session: Session, resource_id: int) -> Resource:
    resource = lock_resource(session, resource_id)
    if resource is None or resource.status == ResourceStatus.RETIRED:
        raise ValidationFailed({"resource_id": N_("Unknown resource.")})
    return resource


def _place(
    session: Session,
    actor: Actor,
    request: BookingInput,
    span: Span,
    *,
    resource: Resource,
    customer_org: CustomerOrg | Organization,
    now: datetime,
    series: ReservationSeries | None = None,
    exclude_hold_id: int | None = None,
) -> Reservation:
    checked = check_request(session, actor, resource, customer_org, request, span, now)
    check_free(
        session, actor, resource, span, checked.units, now=now, exclude_hold_id=exclude_hold_id
    )
    rules = availability.timing_rules(resource)
    busy = rules.busy_span(span)
    reservation = Reservation(
        resource_id=resource.id,
        customer_org_id=customer_org.id,
        user_id=actor.user_id,
        series_id=series.id if series is not None else None,
        start_at=span.start,
        end_at=span.end,
        busy_start=busy.start,
        busy_end=busy.end,
        exclusive=resource.capacity == 1,
        units=checked.units,
        samples=checked.samples,
        # Where no approval is needed the booking is approved as it is made.
        status=S.REQUESTED if checked.needs_approval else S.APPROVED,
        decided_at=None if checked.needs_approval else now,
        purpose=(request.purpose or "").strip(),
        with_operator=checked.with_operator,
        customer_class=checked.customer_class.value,
        price_snapshot={**checked.terms.to_snapshot(), "estimate": checked.cost.as_dict()},
        estimated_cost=checked.cost.total,
        voucher_id=request.voucher_id,
        voucher_hold=ZERO,
        sequence=0,
        created_at=now,
        updated_at=now,
    )
    reservation.resource = resource
    if reservation.voucher_id is not None:
        # The voucher checks read the customer organisation of the unsaved row.
        reservation.customer_org = session.get(Organization, customer_org.id)
        # Checked before the row exists: an unknown or unfit voucher writes nothing.
        quote = vouchers.quote_for_booking(session, actor, reservation.voucher_id, reservation)
        reservation.voucher_estimate = quote.voucher_share
    _flush_guarded(
        session,
        actor,
        resource,
        span,
        checked.units,
        now=now,
        apply=lambda: session.add(reservation),
        exclude_hold_id=exclude_hold_id,
    )
    if not checked.needs_approval and reservation.voucher_id is not None:
        vouchers.hold_for_booking(session, actor, reservation)
    audit.record(session, actor, "reservation.create", reservation)
    if checked.needs_approval:
        events.publish(session, "reservation.requested", reservation, actor=actor)
    else:
        events.publish(session, "reservation.approved", reservation, actor=actor, automatic=True)
    return reservation


def create_reservation(session: Session, actor: Actor, data: dict | BookingInput) -> Reservation:
    """One booking (no recurrence). See the module docstring for the steps."""
    request = data if isinstance(data, BookingInput) else BookingInput.from_dict(data)
    customer_org = customer_org_for(session, actor, request.customer_org_id)
    resource = _resource_for_booking(session, request.resource_id)
    return _place(
        session,
        actor,
        request,
        request.span,
        resource=resource,
        customer_org=customer_org,
        now=clock.now(),
    )


@dataclass
class SeriesResult:
    series: ReservationSeries
    made: list[Reservation]
    refused: list[dict]


def _refusal(span: Span, error: DomainError) -> dict:
    return {
        "start": _text(span.start),
        "end": _text(span.end),
        "error": {
            "code": error.code,
            "message": error.message,
            "params": error.params,
            "details": error.details,
        },
    }


def create_series(session: Session, actor: Actor, data: dict | BookingInput) -> SeriesResult:
    """A recurring booking: every occurrence checked like a single booking;
    all or nothing unless ``partial`` was asked for (then at least one)."""
    request = data if isinstance(data, BookingInput) else BookingInput.from_dict(data)
    rule_data = dict(request.recurrence or {})
    partial = bool(request.partial or rule_data.pop("partial", False))
    rule = parse_rule(rule_data)
    tz = clock.platform_tz()
    spans = occurrences(request.start, request.end, rule, tz)
    customer_org = customer_org_for(session, actor, request.customer_org_id)
    resource = _resource_for_booking(session, request.resource_id)
    now = clock.now()
    series = ReservationSeries(
        rule={**rule.as_dict(), "partial": partial},
        created_by_id=actor.user_id,
        created_at=now,
    )
    session.add(series)
    session.flush()
    made: list[Reservation] = []
    refused: list[dict] = []
    for span in spans:
        try:
            with session.begin_nested():
                made.append(
                    _place(
                        session,
                        actor,
                        request,
                        span,
                        resource=resource,
                        customer_org=customer_org,
                        now=now,
                        series=series,
                    )
                )
        except (Conflict, RuleViolation, ValidationFailed) as exc:
            if isinstance(exc, InvalidTransition):
                raise
            refused.append(_refusal(span, exc))
    if refused and (not partial or not made):
        details = {"occurrences": refused, "made": 0, "refused": len(refused)}
        if all(r["error"]["code"] == "conflict" for r in refused):
            raise Conflict(
                N_("%(count)s of the series' occurrences cannot be booked; nothing was booked."),
                details=details,
                count=len(refused),
            )
        raise RuleViolation(
            "recurrence",
            N_("%(count)s of the series' occurrences cannot be booked; nothing was booked."),
            field="recurrence",
            details=details,
            count=len(refused),
        )
    audit.record(
        session,
        actor,
        "reservation_series.create",
        series,
        after={
            "rule": series.rule,
            "made": [r.id for r in made],
            "refused": [r["start"] for r in refused],
        },
    )
    return SeriesResult(series=series, made=made, refused=refused)


def create_booking(session: Session, actor: Actor, data: dict) -> Reservation | SeriesResult:
    """The API's create: a single booking, or a series when ``recurrence`` is given."""
    request = BookingInput.from_dict(data)
    if request.recurrence:
        return create_series(session, actor, request)
    return create_reservation(session, actor, request)


# --- deciding ----------------------------------------------------------------


def _record_move(
    session: Session,
    actor: Actor | None,
    reservation: Reservation,
    before: dict,
    action: str,
    event: str,
    **event_fields,
) -> None:
    """How every move ends: its audit event (the state before and after) and
    its domain event, in the move's transaction."""
    audit.record(session, actor, action, reservation, before=before, after=_state(reservation))
    events.publish(session, event, reservation, actor=actor, **event_fields)


def _touch(reservation: Reservation, now: datetime) -> None:
    reservation.sequence = (reservation.sequence or 0) + 1
    reservation.updated_at = now


def _approve(
    session: Session, actor: Actor | None, reservation: Reservation, now: datetime, *, automatic
) -> None:
    before = _state(reservation)
    reservation.status = states.next_status(reservation.status, "approve")
    reservation.decided_at = now
    reservation.decided_by_id = None if automatic else actor.user_id if actor else None
    _touch(reservation, now)
    if reservation.voucher_id is not None:
        vouchers.hold_for_booking(session, actor, reservation)
    _record_move(
        session,
        actor,
        reservation,
        before,
        "reservation.auto_approve" if automatic else "reservation.approve",
        "reservation.approved",
        automatic=automatic,
    )


def approve(session: Session, actor: Actor, reservation_id: int) -> Reservation:
    """A lab admin (or a named approver) approves a request: → ``approved``,
    the voucher share is held."""
    reservation = _for_move(session, actor, reservation_id, "reservation.decide")
    states.next_status(reservation.status, "approve")
    now = clock.now()
    if reservation.start_at <= now:
        raise InvalidTransition(
            N_("The booking's start has passed; it can no longer be approved."),
            details={"status": reservation.status.value, "move": "approve"},
        )
    _approve(session, actor, reservation, now, automatic=False)
    return reservation


def _reason(reason: str | None, *, required: bool) -> str | None:
    text = (reason or "").strip()
    if required and not text:
        raise ValidationFailed({"reason": N_("Give a reason.")})
    if len(text) > 2000:
        raise ValidationFailed({"reason": N_("At most 2000 characters.")})
    return text or None


def _release_voucher(
    session: Session, actor: Actor | None, reservation: Reservation, why: str
) -> None:
    if reservation.voucher_id is not None:
        vouchers.release_for_booking(session, actor, reservation, why)


def reject(session: Session, actor: Actor, reservation_id: int, reason: str | None) -> Reservation:
    """A lab admin (or a named approver) rejects a request, with a reason."""
    reservation = _for_move(session, actor, reservation_id, "reservation.decide")
    text = _reason(reason, required=True)
    before = _state(reservation)
    reservation.status = states.next_status(reservation.status, "reject")
    now = clock.now()
    reservation.reason = text
    reservation.decided_at = now
    reservation.decided_by_id = actor.user_id
    _touch(reservation, now)
    _release_voucher(session, actor, reservation, "rejected")
    _record_move(session, actor, reservation, before, "reservation.reject", "reservation.rejected")
    waitlist.offer_freed(session, reservation.resource, _span(reservation), now=now, actor=actor)
    return reservation


def _span(reservation: Reservation) -> Span:
    return Span(reservation.start_at, reservation.end_at)


# --- cancelling --------------------------------------------------------------


def _is_lab_side(actor: Actor, reservation: Reservation) -> bool:
    return authz.can(actor, "reservation.operate", reservation)


WINDOW_MESSAGES = {
    "cancel": N_(
        "The customer can cancel until %(minutes)s minutes before the start; please ask the lab."
    ),
    "reschedule": N_(
        "The customer can move a booking until %(minutes)s minutes before the start; "
        "please ask the lab."
    ),
}


def _check_customer_window(reservation: Reservation, now: datetime, move: str) -> None:
    """A customer cancels or moves only until ``cancel_minutes`` before the
    start (the boundary itself included)."""
    minutes = reservation.resource.cancel_minutes
    deadline = reservation.start_at - timedelta(minutes=minutes)
    if now > deadline:
        raise RuleViolation(
            "cancellation_window",
            WINDOW_MESSAGES[move],
            details={"cancel_minutes": minutes, "deadline": _text(deadline)},
            minutes=minutes,
        )


def _cancel_one(
    session: Session, actor: Actor, reservation: Reservation, text: str | None, now: datetime
) -> None:
    before = _state(reservation)
    reservation.status = states.next_status(reservation.status, "cancel")
    reservation.reason = text
    reservation.cancelled_at = now
    _touch(reservation, now)
    _release_voucher(session, actor, reservation, "cancelled")
    _record_move(session, actor, reservation, before, "reservation.cancel", "reservation.cancelled")
    waitlist.offer_freed(session, reservation.resource, _span(reservation), now=now, actor=actor)


def cancel(
    session: Session,
    actor: Actor,
    reservation_id: int,
    reason: str | None = None,
    scope: str = "this",
) -> list[Reservation]:
    """Cancel a booking: by its customer within the lab's cancellation window,
    by the lab admin any time with a reason. ``scope="following"`` also
    cancels the later occurrences of its series (those still cancellable).
    Returns the bookings cancelled, the named one first."""
    reservation = _for_move(session, actor, reservation_id, "reservation.cancel")
    lab_side = _is_lab_side(actor, reservation)
    text = _reason(reason, required=lab_side)
    states.next_status(reservation.status, "cancel")
    now = clock.now()
    if not lab_side:
        _check_customer_window(reservation, now, "cancel")
    targets = [reservation]
    if scope == "following" and reservation.series_id is not None:
        later = session.scalars(
            select(Reservation)
            .where(
                Reservation.series_id == reservation.series_id,
                Reservation.start_at > reservation.start_at,
                Reservation.status.in_([S.REQUESTED, S.APPROVED]),
            )
            .order_by(Reservation.start_at)
            .with_for_update()
        ).all()
        targets.extend(later)
    for target in targets:
        _cancel_one(session, actor, target, text, now)
    return targets


# --- moving ------------------------------------------------------------------


def reschedule(
    session: Session,
    actor: Actor,
    reservation_id: int,
    start: datetime,
    end: datetime,
    units: int | None = None,
) -> Reservation:
    """Move a booking to a new span, checked like a new request. Atomic: on
    any refusal the booking keeps its old time. Where the resource needs
    approval the moved booking is a request again (its voucher hold released)."""
    found = _load(session, reservation_id)
    if found is None:
        raise NotFound()
    authz.require(actor, "reservation.reschedule", found)
    resource = lock_resource(session, found.resource_id)
    reservation = _load(session, reservation_id, lock=True)
    states.next_status(reservation.status, "reschedule")
    now = clock.now()
    lab_side = _is_lab_side(actor, reservation)
    if not lab_side:
        _check_customer_window(reservation, now, "reschedule")
    if end <= start:
        raise ValidationFailed({"end": N_("The end must be after the start.")})
    span = Span(start, end)
    request = BookingInput(
        resource_id=resource.id,
        start=start,
        end=end,
        purpose=reservation.purpose,
        units=units if units is not None else reservation.units,
        samples=reservation.samples,
        voucher_id=reservation.voucher_id,
        with_operator=reservation.with_operator,
    )
    booker = _booker_actor(session, actor, reservation)
    checked = check_request(session, booker, resource, reservation.customer_org, request, span, now)
    check_free(
        session,
        actor,
        resource,
        span,
        checked.units,
        now=now,
        exclude_reservation_id=reservation.id,
    )
    before = _state(reservation)
    old_span = _span(reservation)
    busy = availability.timing_rules(resource).busy_span(span)
    was_approved = reservation.status == S.APPROVED

    def apply() -> None:
        reservation.start_at, reservation.end_at = span.start, span.end
        reservation.busy_start, reservation.busy_end = busy.start, busy.end
        reservation.units = checked.units
        reservation.customer_class = checked.customer_class.value
        reservation.price_snapshot = {
            **checked.terms.to_snapshot(),
            "estimate": checked.cost.as_dict(),
        }
        reservation.estimated_cost = checked.cost.total
        reservation.with_operator = checked.with_operator
        _touch(reservation, now)

    _flush_guarded(
        session,
        actor,
        resource,
        span,
        checked.units,
        now=now,
        apply=apply,
        exclude_reservation_id=reservation.id,
    )
    if was_approved and checked.needs_approval:
        reservation.status = S.REQUESTED
        reservation.decided_at = None
        reservation.decided_by_id = None
        _release_voucher(session, actor, reservation, "rescheduled")
    elif was_approved and reservation.voucher_id is not None:
        # Holding again replaces the booking's hold with the new estimate's share.
        vouchers.hold_for_booking(session, actor, reservation)
    elif not was_approved and not checked.needs_approval:
        _approve(session, actor, reservation, now, automatic=True)
    _record_move(
        session,
        actor,
        reservation,
        before,
        "reservation.reschedule",
        "reservation.rescheduled",
        previous_start=old_span.start,
        previous_end=old_span.end,
    )
    waitlist.offer_freed(session, resource, old_span, now=now, actor=actor)
    return reservation


def _booker_actor(session: Session, actor: Actor, reservation: Reservation) -> Actor:
    """Training is the booker's, not the lab admin's who moves the booking."""
    if actor.user_id == reservation.user_id:
        return actor
    from booking.services.accounts import actor_for, load_user

    user = load_user(session, reservation.user_id)
    return actor_for(user) if user is not None else actor


# --- using -------------------------------------------------------------------


def _not_future(value: datetime | None, name: str, now: datetime) -> None:
    if value is not None and value > now:
        raise ValidationFailed({name: N_("This time lies in the future.")})


def check_in(
    session: Session, actor: Actor, reservation_id: int, at: datetime | None = None
) -> Reservation:
    """The customer arrived: → ``in_use`` with the actual start (now, or the
    time given, never in the future)."""
    reservation = _for_move(session, actor, reservation_id, "reservation.operate")
    states.next_status(reservation.status, "check_in")
    now = clock.now()
    _not_future(at, "actual_start", now)
    earliest = reservation.start_at - timedelta(minutes=CHECK_IN_EARLY_MINUTES)
    if now < earliest:
        raise RuleViolation(
            "check_in_too_early",
            N_("Check-in opens %(minutes)s minutes before the start."),
            details={"opens_at": _text(earliest)},
            minutes=CHECK_IN_EARLY_MINUTES,
        )
    before = _state(reservation)
    reservation.status = S.IN_USE
    reservation.actual_start = at or now
    _touch(reservation, now)
    _record_move(
        session, actor, reservation, before, "reservation.check_in", "reservation.checked_in"
    )
    return reservation


def check_out(
    session: Session, actor: Actor, reservation_id: int, at: datetime | None = None
) -> Reservation:
    """The customer left: the actual end is recorded (now, or the time given);
    the booking stays ``in_use`` until it is completed with the usage."""
    reservation = _for_move(session, actor, reservation_id, "reservation.operate")
    states.next_status(reservation.status, "check_out")
    now = clock.now()
    _not_future(at, "actual_end", now)
    end = at or now
    if reservation.actual_start is not None and end <= reservation.actual_start:
        raise ValidationFailed({"actual_end": N_("The end must be after the start.")})
    before = _state(reservation)
    reservation.actual_end = end
    _touch(reservation, now)
    _record_move(
        session, actor, reservation, before, "reservation.check_out", "reservation.checked_out"
    )
    return reservation


def _actual_times(reservation: Reservation, data: dict, now: datetime) -> tuple[datetime, datetime]:
    """The actual span of a completion: given, else recorded at check-in and
    check-out, else the booked times up to now. A booking not checked in can
    be completed only once it could have been (check-in opens early)."""
    opens = reservation.start_at - timedelta(minutes=CHECK_IN_EARLY_MINUTES)
    if reservation.status == S.APPROVED and now < opens:
        raise InvalidTransition(
            N_("The booking has not started yet; it can be completed once it has."),
            details={"status": reservation.status.value, "move": "complete"},
        )
    start = data.get("actual_start") or reservation.actual_start
    end = data.get("actual_end") or reservation.actual_end
    if start is None:
        start = min(reservation.start_at, now)
    if end is None:
        end = min(now, reservation.end_at) if reservation.status == S.APPROVED else now
    _not_future(start, "actual_start", now)
    _not_future(end, "actual_end", now)
    if end <= start:
        raise ValidationFailed({"actual_end": N_("The end must be after the start.")})
    return start, end


def complete(session: Session, actor: Actor, reservation_id: int, data: dict) -> Reservation:
    """Record the actual usage and the final cost from the price snapshot;
    the voucher share is redeemed."""
    reservation = _for_move(session, actor, reservation_id, "reservation.operate")
    states.next_status(reservation.status, "complete")
    now = clock.now()
    start, end = _actual_times(reservation, data, now)
    resource = reservation.resource
    units = data.get("actual_units") or reservation.units
    if units > resource.capacity:
        raise ValidationFailed({"actual_units": N_("More units than the resource has.")})
    samples = data.get("samples", reservation.samples)
    if samples is not None and resource.kind != ResourceKind.TESTING_SERVICE:
        raise ValidationFailed(
            {"samples": N_("Samples are for testing services; this resource is booked by time.")}
        )
    before = _state(reservation)
    terms = pricing.PriceTerms.from_snapshot(reservation.price_snapshot or {})
    final = pricing.cost(
        terms,
        pricing.Usage(
            duration=end - start,
            units=units,
            samples=samples,
            with_operator=reservation.with_operator,
        ),
    )
    reservation.status = S.COMPLETED
    reservation.actual_start, reservation.actual_end = start, end
    reservation.actual_units = units
    reservation.samples = samples
    reservation.final_cost = final.total
    reservation.price_snapshot = {**(reservation.price_snapshot or {}), "final": final.as_dict()}
    if data.get("service_way"):
        reservation.service_way = ServiceWay(data["service_way"])
    elif reservation.service_way is None:
        reservation.service_way = (
            ServiceWay.ENTRUSTED if reservation.with_operator else ServiceWay.SELF_OPERATED
        )
    reservation.run_minutes = int((end - start).total_seconds() // 60)
    for name in ("prep_minutes", "post_minutes"):
        if data.get(name) is not None:
            setattr(reservation, name, data[name])
    _touch(reservation, now)
    if reservation.voucher_id is not None:
        vouchers.redeem_for_booking(session, actor, reservation)
    else:
        reservation.voucher_amount = ZERO
        reservation.customer_amount = final.total
    _record_move(
        session, actor, reservation, before, "reservation.complete", "reservation.completed"
    )
    return reservation


def _no_show(
    session: Session, actor: Actor | None, reservation: Reservation, now: datetime
) -> None:
    before = _state(reservation)
    reservation.status = states.next_status(reservation.status, "no_show")
    fee = pricing.PriceTerms.from_snapshot(reservation.price_snapshot or {}).no_show_fee
    reservation.final_cost = fee
    reservation.voucher_amount = ZERO
    reservation.customer_amount = fee
    _touch(reservation, now)
    _release_voucher(session, actor, reservation, "no_show")
    _record_move(session, actor, reservation, before, "reservation.no_show", "reservation.no_show")


def mark_no_show(session: Session, actor: Actor, reservation_id: int) -> Reservation:
    """The lab records that nobody came (once the start has passed)."""
    reservation = _for_move(session, actor, reservation_id, "reservation.operate")
    states.next_status(reservation.status, "no_show")
    now = clock.now()
    if now < reservation.start_at:
        raise InvalidTransition(
            N_("The booking has not started yet; a no-show is recorded after the start."),
            details={"status": reservation.status.value, "move": "no_show"},
        )
    _no_show(session, actor, reservation, now)
    return reservation


# --- rating ------------------------------------------------------------------


def rate(
    session: Session, actor: Actor, reservation_id: int, score: int, comment: str | None
) -> Rating:
    """The customer rates a completed booking, once (1 to 5)."""
    reservation = _for_move(session, actor, reservation_id, "reservation.rate")
    states.next_status(reservation.status, "rate")
    if not 1 <= score <= 5:
        raise ValidationFailed({"score": N_("A score is 1 to 5.")})
    existing = session.scalar(select(Rating.id).where(Rating.reservation_id == reservation.id))
    if existing is not None:
        raise Conflict(N_("This booking has been rated already."), details={"rating_id": existing})
    rating = Rating(
        reservation_id=reservation.id,
        user_id=actor.user_id,
        score=score,
        comment=(comment or "").strip(),
        created_at=clock.now(),
    )
    try:
        with session.begin_nested():
            session.add(rating)
            session.flush()
    except IntegrityError:
        raise Conflict(N_("This booking has been rated already.")) from None
    audit.record(session, actor, "reservation.rate", rating)
    return rating


# --- the scheduler's sweeps --------------------------------------------------


def _lock_batch(session: Session, ids: list[int], status: ReservationStatus) -> list[Reservation]:
    """Lock the rows still in ``status``; rows another process holds are
    skipped (it is dealing with them)."""
    if not ids:
        return []
    return list(
        session.scalars(
            select(Reservation)
            .where(Reservation.id.in_(ids), Reservation.status == status)
            .order_by(Reservation.id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    )


def approval_deadline(reservation: Reservation, resource: Resource) -> datetime:
    """When an undecided request expires: the lab's deadline after it was
    made, and never later than its start."""
    return min(
        reservation.created_at + timedelta(minutes=resource.approval_deadline_minutes),
        reservation.start_at,
    )


def expire_overdue_requests(session: Session, now: datetime) -> int:
    """Requests not decided by their deadline become ``expired`` (voucher
    released, waiting list offered). Idempotent; returns how many expired."""
    rows = session.execute(
        select(
            Reservation.id,
            Reservation.created_at,
            Reservation.start_at,
            Resource.approval_deadline_minutes,
        )
        .join(Resource, Resource.id == Reservation.resource_id)
        .where(Reservation.status == S.REQUESTED)
    ).all()
    due = [
        row.id
        for row in rows
        if min(row.created_at + timedelta(minutes=row.approval_deadline_minutes), row.start_at)
        <= now
    ]
    count = 0
    for reservation in _lock_batch(session, due, S.REQUESTED):
        if approval_deadline(reservation, reservation.resource) > now:
            continue
        before = _state(reservation)
        reservation.status = states.next_status(reservation.status, "expire")
        reservation.decided_at = now
        _touch(reservation, now)
        _release_voucher(session, None, reservation, "expired")
        _record_move(
            session, None, reservation, before, "reservation.expire", "reservation.expired"
        )
        waitlist.offer_freed(session, reservation.resource, _span(reservation), now=now)
        count += 1
    session.flush()
    return count


def mark_no_shows(session: Session, now: datetime) -> int:
    """Approved bookings nobody checked in to by the start plus the lab's
    grace time become ``no_show``. Idempotent; returns how many."""
    rows = session.execute(
        select(Reservation.id, Reservation.start_at, Resource.no_show_grace_minutes)
        .join(Resource, Resource.id == Reservation.resource_id)
        .where(Reservation.status == S.APPROVED, Reservation.start_at <= now)
    ).all()
    due = [
        row.id for row in rows if row.start_at + timedelta(minutes=row.no_show_grace_minutes) <= now
    ]
    count = 0
    for reservation in _lock_batch(session, due, S.APPROVED):
        grace = timedelta(minutes=reservation.resource.no_show_grace_minutes)
        if reservation.start_at + grace > now:
            continue
        _no_show(session, None, reservation, now)
        count += 1
    session.flush()
    return count


def settle(session: Session, actor: Actor | None, reservation: Reservation) -> None:
    """A completed booking whose voucher claim was paid (called by claims)."""
    before = _state(reservation)
    reservation.status = states.next_status(reservation.status, "settle")
    _touch(reservation, clock.now())
    audit.record(
        session, actor, "reservation.settle", reservation, before=before, after=_state(reservation)
    )


__all__ = [
    "BookingInput",
    "ListFilters",
    "SeriesResult",
    "approve",
    "cancel",
    "check_in",
    "check_out",
    "complete",
    "create_booking",
    "create_reservation",
    "create_series",
    "expire_overdue_requests",
    "get_reservation",
    "lab_schedule",
    "list_reservations",
    "mark_no_show",
    "mark_no_shows",
    "rate",
    "reject",
    "reschedule",
]


# --- the lab's schedule ---------------------------------------------------------


#: States shown on a lab's schedule (what holds or held the instrument).
SCHEDULED = (S.REQUESTED, S.APPROVED, S.IN_USE, S.COMPLETED, S.SETTLED, S.NO_SHOW)


@dataclass
class LabSchedule:
    provider_id: int
    window: Span
    resources: list[Resource]
    bookings: dict[int, list[Reservation]]  # by resource id, by start
    blackouts: dict[int, list]  # by resource id


def lab_schedule(session: Session, actor: Actor, provider_id: int, window: Span) -> LabSchedule:
    """A lab's resources with their bookings (customer details included: they
    are the lab's own bookings) and blackouts in ``window``."""
    from booking.models.catalog import Blackout

    authz.require(actor, "resource.schedule", provider_id)
    resources = list(
        session.scalars(
            select(Resource)
            .where(Resource.provider_id == provider_id, Resource.status != ResourceStatus.RETIRED)
            .order_by(Resource.name_zh, Resource.id)
        )
    )
    ids = [r.id for r in resources]
    bookings: dict[int, list[Reservation]] = {i: [] for i in ids}
    blackouts: dict[int, list] = {i: [] for i in ids}
    if ids:
        rows = session.scalars(
            select(Reservation)
            .where(
                Reservation.resource_id.in_(ids),
                Reservation.status.in_(SCHEDULED),
                Reservation.start_at < window.end,
                Reservation.end_at > window.start,
            )
            .options(
                joinedload(Reservation.customer_org),
                joinedload(Reservation.user),
            )
            .order_by(Reservation.start_at, Reservation.id)
        )
        for row in rows:
            bookings[row.resource_id].append(row)
        for blackout in session.scalars(
            select(Blackout)
            .where(
                Blackout.resource_id.in_(ids),
                Blackout.start_at < window.end,
                Blackout.end_at > window.start,
            )
            .order_by(Blackout.start_at)
        ):
            blackouts[blackout.resource_id].append(blackout)
    return LabSchedule(provider_id, window, resources, bookings, blackouts)
