"""Calendar feeds: subscriptions, kept event texts, and feeds assembled from them.

How a feed stays cheap (DESIGN.md, "Feeds"):

1. Each booking's VEVENT text is built with icalendar (``booking.domain.ical``)
   the first time a feed needs it after the booking changed, for that feed's
   view (customer, lab, busy) and language, and kept in ``feed_events`` with
   the stamp it was built from (the booking's ``sequence`` and
   ``updated_at``, and a key of the settings that shape the text). Building
   texts at read time, not in the booking's own transaction, keeps the
   booking path short: a booking costs its writers no icalendar work, and a
   feed poll rebuilds only the events that changed since the last one.
2. Session hooks on every SQLAlchemy session bump, once per transaction just
   before it commits, the revision of the feeds that show a changed booking
   (``feed_stamps``: its customer organisation, booker, lab and resource). A
   feed's ETag comes from its stamps and what else shapes the answer (owner,
   role, language, the day), read with the token in one indexed query: an
   unchanged feed answers 304 without reading or building any event.
3. A changed feed reads the kept texts that still match their bookings'
   stamps in one query and joins them; a booking whose text is missing or
   stale (a change the hooks could not see; a renamed resource or
   organisation) is built then and kept.

What a feed shows:

- personal (``me``): the owner's bookings in the token's organisation; all
  of that organisation's bookings when the owner is its admin;
- lab: every booking of the lab's resources (lab admins only);
- resource: the busy times of one listed resource, no customer details.

A booking appears from 90 days back to 365 days ahead (settings); cancelled,
rejected, expired and no-show bookings stay 30 days after their last change,
marked CANCELLED, so subscribed calendars remove them.

Known limit: a change written with raw SQL (not through a session) bumps no
stamp, so feeds may answer 304 for it until the next change of theirs or the
next day (the version changes daily); its text is never served stale, and
``flask --app wsgi feeds rebuild`` rebuilds every text and revalidates every
feed.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlsplit

from sqlalchemy import (
    TextClause,
    and_,
    bindparam,
    delete,
    event,
    func,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from booking import authz
from booking.authz import ANONYMOUS, Actor, MembershipView
from booking.authz.feeds import FeedTarget, reservation_view
from booking.domain import clock, ical
from booking.domain.errors import (
    N_,
    Forbidden,
    NotFound,
    RuleViolation,
    Unauthorized,
    ValidationFailed,
)
from booking.models.accounts import Membership, Organization, OrgStatus, User
from booking.models.catalog import Resource
from booking.models.feeds import FeedEvent, FeedScope, FeedStamp, FeedStampKind, FeedToken
from booking.models.reservations import Reservation, ReservationStatus
from booking.services import audit

log = logging.getLogger(__name__)

#: Raise when the shape of the kept texts changes: every kept text is rebuilt.
FORMAT_VERSION = "1"
MAX_ACTIVE_FEEDS = 20
#: ``last_used_at`` is written at most this often: a poll must not be a write.
LAST_USED_EVERY = timedelta(hours=1)
#: Bookings per statement when loading or rebuilding many.
BATCH = 500
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


# --- settings ----------------------------------------------------------------


@dataclass(frozen=True)
class FeedSettings:
    base_url: str = "http://127.0.0.1:5000"
    days_back: int = 90
    days_ahead: int = 365
    ended_keep_days: int = 30
    refresh_minutes: int = 15
    organizer_email: str = "noreply@localhost"

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/")

    def format_key(self) -> str:
        """Changes when anything that shapes a kept text does."""
        return _format_key(self.root, clock.platform_tz().key)


@functools.lru_cache(maxsize=8)
def _format_key(root: str, tzid: str) -> str:
    return hashlib.sha256(f"{FORMAT_VERSION}|{tzid}|{root}".encode()).hexdigest()[:16]


_settings = FeedSettings()


def configure(settings: FeedSettings) -> None:
    """Set once at start from the app's settings (the web layer does it)."""
    global _settings
    _settings = settings
    ical.set_defaults(host=settings.host, organizer_email=settings.organizer_email)


def current_settings() -> FeedSettings:
    return _settings


def reservation_url(reservation_id: int) -> str:
    return f"{_settings.root}/reservations/{reservation_id}"


def feed_url(token: str) -> str:
    return f"{_settings.root}/ical/{token}.ics"


def resource_feed_url(resource_id: int) -> str:
    return f"{_settings.root}/ical/resources/{resource_id}.ics"


# --- subscriptions (tokens) --------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _default_organization(actor: Actor, scope: FeedScope) -> int:
    if scope == FeedScope.LAB:
        candidates = actor.org_ids("provider", "admin")
    else:
        candidates = actor.customer_orgs() or actor.org_ids()
    if len(candidates) == 1:
        return next(iter(candidates))
    if not candidates:
        if scope == FeedScope.LAB:
            raise Forbidden(N_("Only a lab's admins can subscribe to its bookings."))
        raise RuleViolation(
            "feed_scope",
            N_("You belong to no organisation whose bookings a feed could show."),
            field="scope",
        )
    raise ValidationFailed(
        {"organization_id": [N_("You belong to several organisations: choose one.")]}
    )


def create_feed(
    session: Session,
    actor: Actor,
    scope: str,
    organization_id: int | None = None,
    label: str | None = None,
) -> tuple[str, FeedToken]:
    """Make a feed; answer its secret token (shown once, stored hashed) and row."""
    scope = FeedScope(scope)
    if not actor.authenticated:
        raise Unauthorized()
    org_id = organization_id or _default_organization(actor, scope)
    authz.require(actor, "feed.create", FeedTarget(scope.value, org_id))
    active = session.scalar(
        select(func.count(FeedToken.id)).where(
            FeedToken.user_id == actor.user_id, FeedToken.revoked_at.is_(None)
        )
    )
    if active >= MAX_ACTIVE_FEEDS:
        raise RuleViolation(
            "feed_limit",
            N_("You have %(count)s feeds already. Revoke one you no longer use first."),
            count=MAX_ACTIVE_FEEDS,
        )
    token = secrets.token_urlsafe(32)
    row = FeedToken(
        token_hash=hash_token(token),
        scope=scope,
        user_id=actor.user_id,
        organization_id=org_id,
        label=(label or "").strip()[:80] or None,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "feed.create", row)
    return token, row


def list_feeds(session: Session, actor: Actor, *, include_revoked: bool = True) -> list[FeedToken]:
    """The caller's own feeds, newest first."""
    if not actor.authenticated:
        return []
    query = select(FeedToken).where(FeedToken.user_id == actor.user_id)
    if not include_revoked:
        query = query.where(FeedToken.revoked_at.is_(None))
    return list(session.scalars(query.order_by(FeedToken.created_at.desc(), FeedToken.id.desc())))


def get_feed(session: Session, actor: Actor, feed_id: int) -> FeedToken:
    row = session.get(FeedToken, feed_id)
    if row is None or not authz.can(actor, "feed.view", row):
        raise NotFound()
    return row


def revoke_feed(session: Session, actor: Actor, feed_id: int) -> FeedToken:
    """Revoke a feed: its URL answers 404 from now on. Revoking twice is fine."""
    row = session.get(FeedToken, feed_id)
    if row is None:
        raise NotFound()
    authz.require(actor, "feed.revoke", row)
    if row.revoked_at is None:
        before = audit.snapshot(row)
        row.revoked_at = clock.now()
        audit.record(session, actor, "feed.revoke", row, before=before)
    return row


# --- what a feed is ----------------------------------------------------------


@dataclass(frozen=True)
class FeedVersion:
    etag: str
    last_modified: datetime


@dataclass(frozen=True)
class Feed:
    """One feed as asked for now: whose bookings (``kind`` and the ids), in
    which view and language, and its version (read with the feed itself).
    Its SQL criteria are made only when the feed is rendered, so a 304 builds
    no SQL expression at all."""

    kind: str  # me | lab | resource
    view: str  # customer | lab | busy
    locale: str
    name: str
    version: FeedVersion
    day_start: datetime
    organization_id: int | None = None
    user_id: int | None = None  # a member's personal feed: only their bookings
    resource_id: int | None = None

    def criteria(self) -> tuple:
        if self.kind == "lab":
            scope = (
                Reservation.resource_id.in_(
                    select(Resource.id).where(Resource.provider_id == self.organization_id)
                ),
            )
        elif self.kind == "resource":
            scope = (Reservation.resource_id == self.resource_id,)
        elif self.user_id is None:
            scope = (Reservation.customer_org_id == self.organization_id,)
        else:
            scope = (
                Reservation.customer_org_id == self.organization_id,
                Reservation.user_id == self.user_id,
            )
        return scope + window_criteria(self.day_start)


def normalise_locale(locale: str | None) -> str:
    return "en" if (locale or "").lower().startswith("en") else "zh_CN"


def today_start(now: datetime) -> datetime:
    """The first instant of the platform's day of ``now``. Feeds move their
    window by whole days, so a feed changes at most daily when no booking does."""
    tz = clock.platform_tz()
    return datetime.combine(now.astimezone(tz).date(), time.min, tzinfo=tz).astimezone(UTC)


def window_criteria(day_start: datetime) -> tuple:
    lo = day_start - timedelta(days=_settings.days_back)
    hi = day_start + timedelta(days=_settings.days_ahead + 1)
    ended_since = day_start - timedelta(days=_settings.ended_keep_days)
    ended = [ReservationStatus(s) for s in sorted(ical.ENDED_STATUSES)]
    return (
        Reservation.end_at > lo,
        Reservation.start_at < hi,
        or_(Reservation.status.not_in(ended), Reservation.updated_at >= ended_since),
    )


def _stamp(kind: FeedStampKind, ref_id):
    """An outer-joined stamp row (its revision and change time, or NULLs)."""
    stamp = aliased(FeedStamp, name=f"stamp_{kind.value}")
    return stamp, and_(stamp.kind == kind.value, stamp.ref_id == ref_id)


def _version(day_start: datetime, seed: tuple, stamps: Sequence[tuple]) -> FeedVersion:
    """ETag and Last-Modified from what shapes the answer besides the
    bookings (``seed``: owner, role, language, names, the day, the settings)
    and the feed's stamps ``(revision, changed_at)``."""
    raw = "|".join(
        str(p)
        for p in (
            FORMAT_VERSION,
            _settings.format_key(),
            _settings.days_back,
            _settings.days_ahead,
            _settings.ended_keep_days,
            day_start.isoformat(),
            *seed,
            *(revision or 0 for revision, _ in stamps),
        )
    )
    changes = [changed for _, changed in stamps if changed is not None]
    modified = max([day_start, *changes]).replace(microsecond=0)
    return FeedVersion(etag=hashlib.sha256(raw.encode()).hexdigest()[:32], last_modified=modified)


@functools.cache
def _token_query():
    """The one query of a token feed's poll, made once per process (building
    SQL expressions costs more than running this query)."""
    customer, on_customer = _stamp(FeedStampKind.CUSTOMER, FeedToken.organization_id)
    booker, on_booker = _stamp(FeedStampKind.BOOKER, FeedToken.user_id)
    lab, on_lab = _stamp(FeedStampKind.LAB, FeedToken.organization_id)
    everything, on_everything = _stamp(FeedStampKind.EVERYTHING, 0)
    return (
        select(
            FeedToken.id,
            FeedToken.scope,
            FeedToken.user_id,
            FeedToken.organization_id,
            FeedToken.revoked_at,
            FeedToken.last_used_at,
            User.locale,
            Membership.role,
            Organization.kind,
            Organization.region,
            Organization.name,
            Organization.name_en,
            customer.revision.label("customer_revision"),
            customer.changed_at.label("customer_changed"),
            booker.revision.label("booker_revision"),
            booker.changed_at.label("booker_changed"),
            lab.revision.label("lab_revision"),
            lab.changed_at.label("lab_changed"),
            everything.revision.label("everything_revision"),
            everything.changed_at.label("everything_changed"),
        )
        .join(User, User.id == FeedToken.user_id)
        .join(
            Membership,
            and_(
                Membership.user_id == FeedToken.user_id,
                Membership.organization_id == FeedToken.organization_id,
            ),
        )
        .join(Organization, Organization.id == FeedToken.organization_id)
        .outerjoin(customer, on_customer)
        .outerjoin(booker, on_booker)
        .outerjoin(lab, on_lab)
        .outerjoin(everything, on_everything)
        .where(
            FeedToken.token_hash == bindparam("token_hash"),
            User.active.is_(True),
            Organization.status == OrgStatus.ACTIVE,
        )
    )


@functools.cache
def _resource_query():
    stamp, on_stamp = _stamp(FeedStampKind.RESOURCE, Resource.id)
    everything, on_everything = _stamp(FeedStampKind.EVERYTHING, 0)
    return (
        select(
            Resource.id,
            Resource.status,
            Resource.name_zh,
            Resource.name_en,
            stamp.revision.label("revision"),
            stamp.changed_at.label("changed"),
            everything.revision.label("everything_revision"),
            everything.changed_at.label("everything_changed"),
        )
        .outerjoin(stamp, on_stamp)
        .outerjoin(everything, on_everything)
        .where(Resource.id == bindparam("resource_id"))
    )


def open_token_feed(session: Session, token: str) -> Feed:
    """The feed behind a token, decided for its owner as they are now (404
    for an unknown or revoked token, or an owner no longer allowed), with its
    version. One query; at most once an hour also the ``last_used_at`` write."""
    if not token or not _TOKEN_SHAPE.match(token):
        raise NotFound()
    # On the connection: the statement selects columns, the ORM adds nothing.
    found = (
        session.connection()
        .execute(_token_query(), {"token_hash": hash_token(token)})
        .one_or_none()
    )
    if found is None:
        raise NotFound()
    owner = Actor(
        user_id=found.user_id,
        memberships=(
            MembershipView(
                org_id=found.organization_id,
                org_kind=found.kind.value,
                role=found.role.value,
                region=found.region,
            ),
        ),
    )
    if not authz.can(owner, "feed.read", found):
        raise NotFound()
    now = clock.now()
    if found.last_used_at is None or now - found.last_used_at > LAST_USED_EVERY:
        session.execute(update(FeedToken).where(FeedToken.id == found.id).values(last_used_at=now))
    locale = normalise_locale(found.locale)
    org_name = found.name_en if locale == "en" and found.name_en else found.name
    org_id = found.organization_id
    user_id = None
    if found.scope == FeedScope.LAB:
        kind, view = "lab", "lab"
        stamp = (found.lab_revision, found.lab_changed)
    elif owner.admin_of(org_id):
        kind, view = "me", "customer"
        stamp = (found.customer_revision, found.customer_changed)
    else:
        kind, view, user_id = "me", "customer", found.user_id
        stamp = (found.booker_revision, found.booker_changed)
    day_start = today_start(now)
    seed = (kind, found.id, org_id, found.role.value, locale, org_name)
    stamps = (stamp, (found.everything_revision, found.everything_changed))
    return Feed(
        kind=kind,
        view=view,
        locale=locale,
        name=ical.calendar_name(kind, locale, org_name),
        version=_version(day_start, seed, stamps),
        day_start=day_start,
        organization_id=org_id,
        user_id=user_id,
    )


def open_resource_feed(session: Session, resource_id: int, locale: str | None) -> Feed:
    """A listed resource's busy times, for anyone, with its version. One query."""
    found = (
        session.connection().execute(_resource_query(), {"resource_id": resource_id}).one_or_none()
    )
    if found is None or not authz.can(ANONYMOUS, "feed.resource", found):
        raise NotFound()
    locale = normalise_locale(locale)
    name = found.name_en if locale == "en" and found.name_en else found.name_zh
    day_start = today_start(clock.now())
    stamps = (
        (found.revision, found.changed),
        (found.everything_revision, found.everything_changed),
    )
    return Feed(
        kind="resource",
        view="busy",
        locale=locale,
        name=ical.calendar_name("resource", locale, name),
        version=_version(day_start, ("resource", resource_id, locale, name), stamps),
        day_start=day_start,
        resource_id=resource_id,
    )


# --- rendering -------------------------------------------------------------------


def render_feed(session: Session, feed: Feed) -> bytes:
    """The whole calendar, from kept texts; missing or stale ones are built
    and kept first."""
    key = _settings.format_key()
    rows = session.execute(
        select(Reservation.id, FeedEvent.text)
        .outerjoin(
            FeedEvent,
            and_(
                FeedEvent.reservation_id == Reservation.id,
                FeedEvent.view == feed.view,
                FeedEvent.locale == feed.locale,
                FeedEvent.sequence == Reservation.sequence,
                FeedEvent.source_updated_at == Reservation.updated_at,
                FeedEvent.format_key == key,
            ),
        )
        .where(*feed.criteria())
        .order_by(Reservation.start_at, Reservation.id)
    ).all()
    missing = [rid for rid, text in rows if text is None]
    built = (
        refresh_events(session, missing, views=(feed.view,), locales=(feed.locale,))
        if missing
        else {}
    )
    texts = [
        text if text is not None else built.get((rid, feed.view, feed.locale), "")
        for rid, text in rows
    ]
    head = ical.calendar_head(
        feed.name,
        clock.platform_tz(),
        refresh=timedelta(minutes=_settings.refresh_minutes),
    )
    return head + "".join(texts).encode() + ical.calendar_tail()


def render_feed_from_scratch(session: Session, feed: Feed) -> bytes:
    """The same calendar built with icalendar objects on every call: what the
    kept texts avoid. For comparison in the benchmark only."""
    from icalendar import Calendar

    ids = list(
        session.scalars(
            select(Reservation.id)
            .where(*feed.criteria())
            .order_by(Reservation.start_at, Reservation.id)
        )
    )
    tz = clock.platform_tz()
    calendar = Calendar.from_ical(
        ical.calendar_head(feed.name, tz, refresh=timedelta(minutes=_settings.refresh_minutes))
        + ical.calendar_tail()
    )
    data = load_event_data(session, ids)
    for rid in ids:
        if rid in data:
            calendar.add_component(
                ical.build_event(data[rid][0], feed.locale, feed.view, host=_settings.host, tz=tz)
            )
    return calendar.to_ical()


# --- one booking ---------------------------------------------------------------


def reservation_calendar(session: Session, actor: Actor, reservation_id: int) -> bytes:
    """One booking as an .ics file, for whoever may see it."""
    reservation = session.get(Reservation, reservation_id)
    if reservation is None:
        raise NotFound()
    authz.require(actor, "feed.download", reservation)
    data = load_event_data(session, [reservation_id])[reservation_id][0]
    return ical.single_event_calendar(
        data,
        normalise_locale(actor.locale),
        reservation_view(actor, reservation),
        host=_settings.host,
        tz=clock.platform_tz(),
    )


def event_data(session: Session, reservation_id: int) -> ical.EventData:
    """A booking's calendar data (for the notification mails' invitations)."""
    found = load_event_data(session, [reservation_id])
    if reservation_id not in found:
        raise NotFound()
    return found[reservation_id][0]


def invitation_for(session: Session, reservation_id: int, locale: str, method: str) -> bytes:
    """An iTIP REQUEST or CANCEL of a booking, with the feeds' UID and SEQUENCE."""
    return ical.invitation(
        event_data(session, reservation_id),
        normalise_locale(locale),
        method,
        host=_settings.host,
        tz=clock.platform_tz(),
        organizer_email=_settings.organizer_email,
    )


# --- kept texts ------------------------------------------------------------------


def _event_data_statement():
    provider = aliased(Organization)
    customer = aliased(Organization)
    return (
        select(
            Reservation.id,
            Reservation.status,
            Reservation.start_at,
            Reservation.end_at,
            Reservation.busy_start,
            Reservation.busy_end,
            Reservation.sequence,
            Reservation.created_at,
            Reservation.updated_at,
            Reservation.units,
            Reservation.samples,
            Reservation.purpose,
            Resource.name_zh,
            Resource.name_en,
            Resource.location,
            Resource.capacity_unit,
            provider.name.label("lab_name"),
            provider.name_en.label("lab_name_en"),
            customer.name.label("customer_name"),
            customer.name_en.label("customer_name_en"),
            User.name.label("user_name"),
            User.email.label("user_email"),
        )
        .join(Resource, Resource.id == Reservation.resource_id)
        .join(provider, provider.id == Resource.provider_id)
        .join(customer, customer.id == Reservation.customer_org_id)
        .join(User, User.id == Reservation.user_id)
        .where(Reservation.id.in_(bindparam("ids", expanding=True)))
    )


# Built once: every invitation mail and every feed rebuild reads through it.
_EVENT_DATA = _event_data_statement()


def load_event_data(
    session: Session, reservation_ids: Iterable[int]
) -> dict[int, tuple[ical.EventData, datetime]]:
    """Plain calendar data of bookings, with the ``updated_at`` it reflects,
    read with one query per ``BATCH`` bookings."""
    found: dict[int, tuple[ical.EventData, datetime]] = {}
    ids = sorted(set(reservation_ids))
    connection = session.connection()
    for offset in range(0, len(ids), BATCH):
        rows = connection.execute(_EVENT_DATA, {"ids": ids[offset : offset + BATCH]}).all()
        for row in rows:
            data = ical.EventData(
                reservation_id=row.id,
                status=row.status.value,
                start=row.start_at,
                end=row.end_at,
                busy_start=row.busy_start,
                busy_end=row.busy_end,
                sequence=row.sequence or 0,
                created=row.created_at,
                modified=row.updated_at,
                resource_name_zh=row.name_zh,
                resource_name_en=row.name_en,
                location=row.location or "",
                capacity_unit=row.capacity_unit or "",
                lab_name=row.lab_name,
                lab_name_en=row.lab_name_en,
                customer_name=row.customer_name,
                customer_name_en=row.customer_name_en,
                booked_by=row.user_name,
                booked_by_email=row.user_email,
                purpose=row.purpose or "",
                units=row.units,
                samples=row.samples,
                url=reservation_url(row.id),
            )
            found[row.id] = (data, row.updated_at)
    return found


def refresh_events(
    session: Session,
    reservation_ids: Iterable[int],
    *,
    views: Sequence[str] = ical.VIEWS,
    locales: Sequence[str] = ical.LOCALES,
) -> dict[tuple[int, str, str], str]:
    """Build and keep the event texts of bookings; answer them by
    ``(reservation_id, view, locale)``. A booking whose text cannot be built
    is logged and left out (its feed goes on without it) rather than failing
    the change that triggered the refresh."""
    data = load_event_data(session, reservation_ids)
    if not data:
        return {}
    tz = clock.platform_tz()
    host, key, now = _settings.host, _settings.format_key(), clock.now()
    rows = []
    for rid in sorted(data):
        event_data, updated_at = data[rid]
        for view in views:
            for locale in locales:
                try:
                    text = ical.event_text(event_data, locale, view, host=host, tz=tz).decode()
                except Exception:
                    log.exception(
                        "calendar event of reservation %s (%s, %s) failed", rid, view, locale
                    )
                    continue
                rows.append(
                    {
                        "reservation_id": rid,
                        "view": view,
                        "locale": locale,
                        "sequence": event_data.sequence,
                        "source_updated_at": updated_at,
                        "format_key": key,
                        "text": text,
                        "updated_at": now,
                    }
                )
    _upsert_events(session, rows)
    return {(r["reservation_id"], r["view"], r["locale"]): r["text"] for r in rows}


def _upsert_events(session: Session, rows: list[dict]) -> None:
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = FeedEvent.__table__
    # Rows go in key order, so two transactions keeping the same texts take
    # their row locks in the same order and never deadlock each other.
    for offset in range(0, len(rows), BATCH):
        stmt = insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["reservation_id", "view", "locale"],
            set_={
                name: stmt.excluded[name]
                for name in ("sequence", "source_updated_at", "format_key", "text", "updated_at")
            },
        )
        connection.execute(stmt, rows[offset : offset + BATCH])


def forget_events(session: Session, *criteria) -> None:
    """Drop kept texts of the bookings matching ``criteria``: they are built
    again when a feed next needs them."""
    session.connection().execute(
        delete(FeedEvent).where(
            FeedEvent.reservation_id.in_(select(Reservation.id).where(*criteria))
        )
    )


def rebuild_all(session: Session, *, only_window: bool = False) -> int:
    """Build and keep every booking's texts (after a deploy that changed the
    format, a restore, or raw SQL): the backfill. Answers how many bookings."""
    query = select(Reservation.id).order_by(Reservation.id)
    if only_window:
        query = query.where(*window_criteria(today_start(clock.now())))
    ids = list(session.scalars(query))
    for offset in range(0, len(ids), BATCH):
        refresh_events(session, ids[offset : offset + BATCH])
    session.connection().execute(
        delete(FeedEvent).where(FeedEvent.format_key != _settings.format_key())
    )
    bump_stamps(session, [(FeedStampKind.EVERYTHING.value, 0)])
    return len(ids)


# --- keeping texts and stamps fresh, whoever changes a booking --------------------

_RESOURCE_FIELDS = ("name_zh", "name_en", "location", "provider_id", "capacity_unit")
_ORGANIZATION_FIELDS = ("name", "name_en")
_USER_FIELDS = ("name", "email")
_PENDING = "feeds.pending"
SKIP_KEY = "feeds.skip_refresh"


@dataclass
class _Pending:
    """What a transaction changed that feeds care about, gathered flush by
    flush and acted on once, just before it commits."""

    resources: set[int] = field(default_factory=set)
    customers: set[int] = field(default_factory=set)
    bookers: set[int] = field(default_factory=set)
    labs_of: dict[int, int] = field(default_factory=dict)  # resource -> its provider, where known
    everything: bool = False

    def __bool__(self) -> bool:
        return bool(self.resources or self.customers or self.bookers or self.everything)


def _pending(session: Session) -> _Pending:
    return session.info.setdefault(_PENDING, _Pending())


def _values(obj, name: str) -> set:
    """An attribute's current value and, if this flush changed it, its old one."""
    history = inspect(obj).attrs[name].history
    return {v for v in (*history.unchanged, *history.added, *history.deleted) if v is not None}


def _changed(obj, names: Sequence[str]) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _note_reservation(pending: _Pending, obj: Reservation) -> None:
    pending.resources |= _values(obj, "resource_id")
    pending.customers |= _values(obj, "customer_org_id")
    pending.bookers |= _values(obj, "user_id")
    resource = obj.__dict__.get("resource")  # loaded with the booking: its lab is known
    if resource is not None and resource.__dict__.get("provider_id") is not None:
        pending.labs_of[resource.id] = resource.provider_id


def _after_flush(session: Session, _flush_context) -> None:
    """Note the feeds that show the bookings this flush added, changed or
    deleted (their stamps are bumped before commit; the bookings' texts are
    stale by their own stamp and rebuilt when a feed asks); forget the texts
    of bookings whose resource, customer, lab or booker was renamed."""
    if session.info.get(SKIP_KEY):
        return
    pending = _pending(session)
    stale: list = []
    for obj in session.new:
        if isinstance(obj, Reservation):
            _note_reservation(pending, obj)
    for obj in session.dirty:
        if isinstance(obj, Reservation):
            if session.is_modified(obj, include_collections=False):
                _note_reservation(pending, obj)
        elif isinstance(obj, Resource):
            if _changed(obj, _RESOURCE_FIELDS):
                stale.append(Reservation.resource_id == obj.id)
        elif isinstance(obj, Organization):
            if _changed(obj, _ORGANIZATION_FIELDS):
                stale.append(Reservation.customer_org_id == obj.id)
                stale.append(
                    Reservation.resource_id.in_(
                        select(Resource.id).where(Resource.provider_id == obj.id)
                    )
                )
        elif isinstance(obj, User) and _changed(obj, _USER_FIELDS):
            stale.append(Reservation.user_id == obj.id)
    for obj in session.deleted:
        if isinstance(obj, Reservation):
            _note_reservation(pending, obj)
    for criterion in stale:
        forget_events(session, criterion)
    if stale:
        pending.everything = True
    if not pending:
        session.info.pop(_PENDING, None)


def _on_orm_execute(state) -> None:
    """A bulk UPDATE or DELETE of bookings (``session.execute(update(...))``)
    passes no flush: revalidate every feed (texts are checked by stamp anyway)."""
    if (state.is_update or state.is_delete) and any(
        m.class_ is Reservation for m in state.all_mappers
    ):
        _pending(state.session).everything = True


def _before_commit(session: Session) -> None:
    """Bump the stamps of the feeds that show the bookings this transaction
    changed: once per transaction, as late as
    possible (stamp rows are shared; holding them briefly keeps bookings of
    one lab from queueing on each other), in key order (no deadlocks)."""
    if session.info.get(SKIP_KEY) or session.in_nested_transaction():
        # A savepoint's release is not the commit: the stamps wait for the
        # outermost transaction (what was noted stays pending until then).
        return
    # The commit's own flush comes after this hook: flush first, so the
    # changes it writes are noted too.
    if session.new or session.dirty or session.deleted:
        session.flush()
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    # The changed bookings' texts are now stale by their stamp (sequence,
    # updated_at): the next feed that shows them builds them (render_feed).
    bump_stamps(session, _stamp_keys(session, pending))


def _after_transaction_end(session: Session, transaction) -> None:
    # Rolled back or closed without commit: what was noted did not happen.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def _stamp_keys(session: Session, pending: _Pending) -> list[tuple[str, int]]:
    keys = {(FeedStampKind.CUSTOMER.value, i) for i in pending.customers}
    keys |= {(FeedStampKind.BOOKER.value, i) for i in pending.bookers}
    keys |= {(FeedStampKind.RESOURCE.value, i) for i in pending.resources}
    keys |= {(FeedStampKind.LAB.value, i) for i in _labs_of(session, pending)}
    if pending.everything:
        keys.add((FeedStampKind.EVERYTHING.value, 0))
    return sorted(keys)


def _labs_of(session: Session, pending: _Pending) -> set[int]:
    """The providers of the changed bookings' resources: known for those
    loaded with their booking, the rest by one query."""
    labs = {pending.labs_of[i] for i in pending.resources if i in pending.labs_of}
    missing = sorted(i for i in pending.resources if i not in pending.labs_of)
    if missing:
        rows = session.connection().execute(
            select(Resource.provider_id).where(Resource.id.in_(missing))
        )
        labs |= {i for (i,) in rows}
    return labs


@functools.lru_cache(maxsize=64)
def _bump_statement(count: int) -> TextClause:
    """The upsert raising ``count`` stamps, one statement for every dialect
    (PostgreSQL and SQLite share the ``ON CONFLICT … DO UPDATE`` form), made
    once per count. Written as text: SQLAlchemy cannot cache a multi-row
    ``VALUES`` construct and compiled it anew on every write (0.4 ms, more
    than running it)."""
    table = FeedStamp.__table__
    rows = ", ".join(f"(:kind_{n}, :ref_id_{n}, 1, :now)" for n in range(count))
    return sql_text(
        f"INSERT INTO {table.name} (kind, ref_id, revision, changed_at) VALUES {rows} "
        f"ON CONFLICT (kind, ref_id) DO UPDATE SET revision = {table.name}.revision + 1, "
        "changed_at = excluded.changed_at"
    ).bindparams(bindparam("now", type_=table.c.changed_at.type))


def bump_stamps(session: Session, keys: Sequence[tuple[str, int]]) -> None:
    """Raise the revision of each ``(kind, ref_id)`` stamp (made at 1)."""
    if not keys:
        return
    connection = session.connection()
    ordered = sorted(set(keys))
    params: dict = {"now": clock.now()}
    for n, (kind, ref_id) in enumerate(ordered):
        params[f"kind_{n}"], params[f"ref_id_{n}"] = kind, ref_id
    # One statement; its rows are written, and their locks taken, in key
    # order, so two transactions never wait for each other in a circle.
    connection.execute(_bump_statement(len(ordered)), params)


def install_session_hooks() -> None:
    """Keep texts and stamps fresh on every SQLAlchemy session (web, jobs,
    commands, tests)."""
    for name, hook in (
        ("after_flush", _after_flush),
        ("before_commit", _before_commit),
        ("after_transaction_end", _after_transaction_end),
        ("do_orm_execute", _on_orm_execute),
    ):
        if not event.contains(Session, name, hook):
            event.listen(Session, name, hook)


install_session_hooks()
