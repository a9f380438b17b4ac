"""Waiting lists (候补): a customer whose wanted time is taken may wait for it.

- ``join``: the request is checked like a booking (every rule), and refused
  when the time is in fact free (book it instead) or blocked by a blackout
  (nothing will free it).
- When a holder cancels, is rejected or expires, or moves away
  (``offer_freed``), the first in line whose wanted time is now free is
  **offered** the slot: the offer keeps the time for them (other customers'
  bookings see it as taken) until it runs out, ``offer_hours`` later (per
  resource ``extra["waitlist_offer_hours"]``, else the platform's setting
  ``WAITLIST_OFFER_HOURS``, default 24), but never past the wanted start.
- ``accept`` books the slot through the normal rules (a refusal leaves the
  offer as it is); ``decline``, ``leave`` and an offer running out
  (``expire_offers``, a scheduler job) offer the time to the next in line;
  ``offer_free_slots`` (a scheduler job) offers times that became free some
  other way.

Every change writes an audit event; an offer publishes
``reservation.waitlist_offered`` (the notifications tell the customer).
Services flush, never commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from booking import authz
from booking.authz import Actor
from booking.domain import clock
from booking.domain.errors import N_, Conflict, InvalidTransition, NotFound, RuleViolation
from booking.domain.spans import Span
from booking.models.catalog import Resource
from booking.models.reservations import Reservation, WaitlistEntry, WaitlistStatus
from booking.services import audit, availability, events

W = WaitlistStatus
DEFAULT_OFFER_HOURS = 24
_settings = {"offer_hours": DEFAULT_OFFER_HOURS}


def configure(offer_hours: int | float | None) -> None:
    """Set the platform's time to accept an offer (from ``WAITLIST_OFFER_HOURS``;
    unset: the default)."""
    _settings["offer_hours"] = float(offer_hours or DEFAULT_OFFER_HOURS)


def offer_hours(resource: Resource) -> float:
    own = (resource.extra or {}).get("waitlist_offer_hours")
    return float(own) if own else float(_settings["offer_hours"])


def _state(entry: WaitlistEntry) -> dict:
    return audit.snapshot(
        entry, ["status", "start_at", "end_at", "offered_at", "offer_expires_at", "reservation_id"]
    )


def get_entry(
    session: Session, actor: Actor, entry_id: int, *, lock: bool = False
) -> WaitlistEntry:
    query = select(WaitlistEntry).where(WaitlistEntry.id == entry_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    entry = session.scalar(query)
    if entry is None or not authz.can(actor, "waitlist.view", entry):
        raise NotFound()
    return entry


def list_entries(session: Session, actor: Actor, active_only: bool = True) -> list[WaitlistEntry]:
    query = select(WaitlistEntry).where(
        or_(
            and_(
                WaitlistEntry.user_id == actor.user_id,
                WaitlistEntry.customer_org_id.in_(actor.org_ids()),
            ),
            WaitlistEntry.customer_org_id.in_(actor.org_ids(role="admin")),
        )
    )
    if active_only:
        query = query.where(WaitlistEntry.status.in_([W.WAITING, W.OFFERED]))
    return list(session.scalars(query.order_by(WaitlistEntry.start_at, WaitlistEntry.id)))


def join(session: Session, actor: Actor, data: dict) -> WaitlistEntry:
    """Wait for a taken time. The request must pass every rule of a booking."""
    from booking.services import reservations

    request = reservations.BookingInput.from_dict(data)
    customer_org = reservations.customer_org_for(session, actor, request.customer_org_id)
    resource = reservations._resource_for_booking(session, request.resource_id)
    now = clock.now()
    span = request.span
    checked = reservations.check_request(session, actor, resource, customer_org, request, span, now)
    busy = availability.timing_rules(resource).busy_span(span)
    found = availability.occupants(session, resource, busy, now=now)
    in_the_way = availability.find_conflicts(resource, busy, checked.units, found)
    if not in_the_way:
        raise RuleViolation(
            "slot_free",
            N_("This time is free: book it directly instead of waiting."),
            field="start",
        )
    if any(o.kind == "blackout" for o in in_the_way):
        raise reservations.conflict_error(
            session, actor, resource, span, checked.units, in_the_way, now=now
        )
    duplicate = session.scalar(
        select(WaitlistEntry.id).where(
            WaitlistEntry.user_id == actor.user_id,
            WaitlistEntry.resource_id == resource.id,
            WaitlistEntry.status.in_([W.WAITING, W.OFFERED]),
            WaitlistEntry.start_at < span.end,
            WaitlistEntry.end_at > span.start,
        )
    )
    if duplicate is not None:
        raise Conflict(
            N_("You are already waiting for this time."), details={"waitlist_entry_id": duplicate}
        )
    entry = WaitlistEntry(
        resource_id=resource.id,
        customer_org_id=customer_org.id,
        user_id=actor.user_id,
        start_at=span.start,
        end_at=span.end,
        units=checked.units,
        samples=checked.samples,
        purpose=(request.purpose or "").strip(),
        voucher_id=request.voucher_id,
        status=W.WAITING,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    audit.record(session, actor, "waitlist.join", entry)
    return entry


def _wanted_time_free(session: Session, entry: WaitlistEntry, resource: Resource, now) -> bool:
    span = Span(entry.start_at, entry.end_at)
    busy = availability.timing_rules(resource).busy_span(span)
    found = availability.occupants(session, resource, busy, now=now, exclude_hold_id=entry.id)
    return not availability.find_conflicts(resource, busy, entry.units, found)


def _offer(
    session: Session, actor: Actor | None, entry: WaitlistEntry, resource: Resource, now: datetime
) -> None:
    before = _state(entry)
    entry.status = W.OFFERED
    entry.offered_at = now
    entry.offer_expires_at = min(now + timedelta(hours=offer_hours(resource)), entry.start_at)
    session.flush()
    audit.record(session, actor, "waitlist.offer", entry, before=before, after=_state(entry))
    events.publish(session, "reservation.waitlist_offered", entry, actor=actor)


def _expire(session: Session, actor: Actor | None, entry: WaitlistEntry, now: datetime) -> None:
    before = _state(entry)
    entry.status = W.EXPIRED
    audit.record(session, actor, "waitlist.expire", entry, before=before, after=_state(entry))


def offer_freed(
    session: Session,
    resource: Resource,
    span: Span,
    *,
    now: datetime,
    actor: Actor | None = None,
) -> list[WaitlistEntry]:
    """Offer freed time to those waiting for it, first come first served.
    Entries another transaction holds are skipped (it is offering them)."""
    waiting = session.scalars(
        select(WaitlistEntry)
        .where(
            WaitlistEntry.resource_id == resource.id,
            WaitlistEntry.status == W.WAITING,
            WaitlistEntry.start_at < span.end,
            WaitlistEntry.end_at > span.start,
        )
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        .with_for_update(skip_locked=True)
    ).all()
    offered = []
    for entry in waiting:
        if entry.start_at <= now:
            _expire(session, actor, entry, now)
            continue
        if _wanted_time_free(session, entry, resource, now):
            _offer(session, actor, entry, resource, now)
            offered.append(entry)
    return offered


def _respondable(session: Session, actor: Actor, entry_id: int) -> WaitlistEntry:
    entry = get_entry(session, actor, entry_id, lock=True)
    authz.require(actor, "waitlist.respond", entry)
    return entry


def accept(session: Session, actor: Actor, entry_id: int) -> Reservation:
    """Take the offered slot: a booking made through the normal rules."""
    from booking.services import reservations

    entry = _respondable(session, actor, entry_id)
    now = clock.now()
    if entry.status != W.OFFERED or (entry.offer_expires_at and entry.offer_expires_at <= now):
        raise InvalidTransition(
            N_("There is no open offer on this waiting-list entry."),
            details={"status": entry.status.value},
        )
    customer_org = reservations.customer_org_for(session, actor, entry.customer_org_id)
    resource = reservations._resource_for_booking(session, entry.resource_id)
    request = reservations.BookingInput(
        resource_id=entry.resource_id,
        start=entry.start_at,
        end=entry.end_at,
        purpose=entry.purpose,
        units=entry.units if resource.capacity > 1 else None,
        samples=entry.samples,
        voucher_id=entry.voucher_id,
        customer_org_id=entry.customer_org_id,
    )
    reservation = reservations._place(
        session,
        actor,
        request,
        request.span,
        resource=resource,
        customer_org=customer_org,
        now=now,
        exclude_hold_id=entry.id,
    )
    before = _state(entry)
    entry.status = W.ACCEPTED
    entry.reservation_id = reservation.id
    audit.record(session, actor, "waitlist.accept", entry, before=before, after=_state(entry))
    return reservation


def _close(
    session: Session, actor: Actor | None, entry: WaitlistEntry, status: WaitlistStatus, action
) -> None:
    was_offered = entry.status == W.OFFERED
    before = _state(entry)
    entry.status = status
    session.flush()
    audit.record(session, actor, action, entry, before=before, after=_state(entry))
    if was_offered:
        resource = session.get(Resource, entry.resource_id)
        offer_freed(
            session, resource, Span(entry.start_at, entry.end_at), now=clock.now(), actor=actor
        )


def decline(session: Session, actor: Actor, entry_id: int) -> WaitlistEntry:
    entry = _respondable(session, actor, entry_id)
    if entry.status != W.OFFERED:
        raise InvalidTransition(
            N_("There is no open offer on this waiting-list entry."),
            details={"status": entry.status.value},
        )
    _close(session, actor, entry, W.DECLINED, "waitlist.decline")
    return entry


def leave(session: Session, actor: Actor, entry_id: int) -> WaitlistEntry:
    entry = _respondable(session, actor, entry_id)
    if entry.status not in (W.WAITING, W.OFFERED):
        raise InvalidTransition(
            N_("This waiting-list entry is closed already."),
            details={"status": entry.status.value},
        )
    _close(session, actor, entry, W.CANCELLED, "waitlist.leave")
    return entry


def expire_offers(session: Session, now: datetime) -> int:
    """Offers not taken in time expire and go to the next in line; entries
    whose wanted start has passed close. Idempotent; returns how many
    entries expired."""
    ids = list(
        session.scalars(
            select(WaitlistEntry.id).where(
                or_(
                    (WaitlistEntry.status == W.OFFERED) & (WaitlistEntry.offer_expires_at <= now),
                    (WaitlistEntry.status == W.WAITING) & (WaitlistEntry.start_at <= now),
                )
            )
        )
    )
    if not ids:
        return 0
    entries = session.scalars(
        select(WaitlistEntry)
        .where(WaitlistEntry.id.in_(ids), WaitlistEntry.status.in_([W.OFFERED, W.WAITING]))
        .order_by(WaitlistEntry.id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    count = 0
    freed: list[WaitlistEntry] = []
    for entry in entries:
        if entry.status == W.OFFERED and entry.offer_expires_at and entry.offer_expires_at <= now:
            _expire(session, None, entry, now)
            freed.append(entry)
            count += 1
        elif entry.status == W.WAITING and entry.start_at <= now:
            _expire(session, None, entry, now)
            count += 1
    session.flush()
    for entry in freed:
        resource = session.get(Resource, entry.resource_id)
        offer_freed(session, resource, Span(entry.start_at, entry.end_at), now=now)
    return count


def offer_free_slots(session: Session, now: datetime) -> int:
    """Offer, in order, every waiting entry whose wanted time has become free
    some other way (a blackout lifted, a booking completed early, an offer
    made while the time was held). For the scheduler; idempotent (only
    entries still waiting; rows another process holds are skipped).
    Returns how many offers were made."""
    entries = session.scalars(
        select(WaitlistEntry)
        .where(WaitlistEntry.status == W.WAITING, WaitlistEntry.start_at > now)
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        .with_for_update(skip_locked=True)
    ).all()
    resources: dict[int, Resource] = {}
    count = 0
    for entry in entries:
        resource = resources.get(entry.resource_id)
        if resource is None:
            resource = resources[entry.resource_id] = session.get(Resource, entry.resource_id)
        if _wanted_time_free(session, entry, resource, now):
            _offer(session, None, entry, resource, now)
            count += 1
    return count
