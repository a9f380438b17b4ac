"""Notifications: who hears about what, in the inbox and by mail.

Subscribers of the domain events (``booking/services/events.py``) turn a
booking's or voucher's change into an inbox ``Notification`` for each person
concerned and, where that person wants mail of the kind, an ``OutboxMail`` in
their language. Both are written in the transaction of the change itself, so
nothing is announced for a change that rolls back; the scheduler's mailer
sends the outbox after commit.

Who hears what:

- ``reservation.requested`` → the resource's approvers (``Resource.approvers``
  if any, else the provider's admins), pointing at the approval queue;
- ``reservation.approved`` (with an .ics invitation, METHOD:REQUEST),
  ``rejected``, ``expired``, ``cancelled`` (METHOD:CANCEL when an invitation
  went out), ``rescheduled`` (an updated REQUEST; and, when the new time
  needs approval again, a new request to the approvers), ``completed`` (cost
  and voucher share), ``no_show`` (marked by the lab or by the scheduler;
  the no-show fee, if any), ``reservation.waitlist_offered`` → the
  booking's (or entry's) user;
- ``voucher.expiring`` → the holder's admins (members if it has none);
- ``claim.audited`` → the claim's filer;
- reminders before the start and voucher-expiry warnings are found by the
  scheduler (``send_due_reminders``, ``warn_expiring_vouchers``).

Exactly once: every notification carries a dedupe key, unique per user in the
database, and every mail one unique key; writes are ``INSERT ... ON CONFLICT
DO NOTHING``, so a job run twice, by two processes at once, or again after a
crash sends nothing twice.

Cheap in the request: a change tells all its recipients with a few
statements whatever their number — the recipients with their mail choice
in one query, the organisations' names from the session or one query, one
multi-row insert of inbox items and one of mails (rows in user order, so
racing writers of the same news wait for each other and never deadlock).

Inbox texts are message ids with parameters, translated when read (the inbox
follows the reader's language). Mails are written unrendered, in the same
transaction as the change: the row holds its Message-ID, the recipient's
address and language, and a snapshot of what it says (``OutboxMail.params``:
message ids, parameters, link, the recipient's name); the mailer renders it
from ``templates/emails/<kind>.txt`` and ``.html`` in that language when it
first delivers (or keeps) it, and keeps the texts (``ensure_rendered``); the
outbox page shows an unrendered mail as it will be rendered
(``mail_texts``). Attachments (the .ics invitation) are made at the change,
as the booking is then. Rendering needs the Flask app (templates, Babel),
which every caller — a request, a scheduler job — has pushed; it is the one
place this service touches Flask, imported where used.

Marking a notification read is the reader's own view state and is not
audited; a change of mail preferences is.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from booking import authz
from booking.authz import Actor
from booking.domain import clock
from booking.domain.errors import N_, NotFound, ValidationFailed
from booking.domain.money import format_money
from booking.models.accounts import Membership, Organization, Role, User
from booking.models.catalog import Resource, ResourceApprover
from booking.models.notifications import (
    MailStatus,
    Notification,
    NotificationKind,
    NotificationPreference,
    OutboxAttachment,
    OutboxMail,
)
from booking.models.reservations import Reservation, ReservationStatus, WaitlistEntry
from booking.services import audit, events

log = logging.getLogger(__name__)


#: Where approvers decide requests (the approvals area's queue).
APPROVAL_QUEUE = "/approvals"
#: Minutes before the start at which approved bookings are reminded.
DEFAULT_REMINDER_MINUTES = (24 * 60, 60)
#: Days before a voucher's last valid day at which its holder is warned.
VOUCHER_WARNING_DAYS = 30

KIND_LABELS = {
    NotificationKind.REQUEST_RECEIVED: N_("New booking requests to decide"),
    NotificationKind.APPROVED: N_("Booking approved"),
    NotificationKind.REJECTED: N_("Booking rejected"),
    NotificationKind.EXPIRED: N_("Booking request expired"),
    NotificationKind.CANCELLED: N_("Booking cancelled"),
    NotificationKind.RESCHEDULED: N_("Booking moved to another time"),
    NotificationKind.REMINDER: N_("Reminder before a booking starts"),
    NotificationKind.WAITLIST_OFFERED: N_("A waited-for slot is offered"),
    NotificationKind.COMPLETED: N_("Booking completed, with cost and voucher share"),
    NotificationKind.NO_SHOW: N_("Booking recorded as a no-show"),
    NotificationKind.VOUCHER_EXPIRING: N_("Innovation voucher about to expire"),
    NotificationKind.CLAIM_AUDITED: N_("Redemption claim audited"),
}

SUBJECTS = {
    NotificationKind.REQUEST_RECEIVED: N_("New booking request: %(resource)s, %(start)s"),
    NotificationKind.APPROVED: N_("Booking approved: %(resource)s, %(start)s"),
    NotificationKind.REJECTED: N_("Booking rejected: %(resource)s, %(start)s"),
    NotificationKind.EXPIRED: N_("Booking request expired: %(resource)s, %(start)s"),
    NotificationKind.CANCELLED: N_("Booking cancelled: %(resource)s, %(start)s"),
    NotificationKind.RESCHEDULED: N_("Booking moved: %(resource)s, now %(start)s"),
    NotificationKind.REMINDER: N_("Reminder: %(resource)s starts %(start)s"),
    NotificationKind.WAITLIST_OFFERED: N_("A slot is free for you: %(resource)s, %(start)s"),
    NotificationKind.COMPLETED: N_("Booking completed: %(resource)s, %(start)s"),
    NotificationKind.NO_SHOW: N_("Recorded as a no-show: %(resource)s, %(start)s"),
    NotificationKind.VOUCHER_EXPIRING: N_("Innovation voucher %(voucher)s expires on %(date)s"),
    NotificationKind.CLAIM_AUDITED: N_("Redemption claim %(claim)s audited: %(outcome)s"),
}

BODIES = {
    NotificationKind.REQUEST_RECEIVED: N_(
        "%(customer)s asks to book %(resource)s from %(start)s to %(end)s."
    ),
    NotificationKind.APPROVED: N_(
        "Your booking of %(resource)s from %(start)s to %(end)s is approved."
    ),
    NotificationKind.REJECTED: N_(
        "Your booking of %(resource)s from %(start)s was rejected: %(reason)s"
    ),
    NotificationKind.EXPIRED: N_(
        "Your request to book %(resource)s from %(start)s was not decided in time and has expired."
    ),
    NotificationKind.CANCELLED: N_(
        "The booking of %(resource)s from %(start)s to %(end)s is cancelled."
    ),
    NotificationKind.RESCHEDULED: N_(
        "Your booking of %(resource)s was moved from %(previous_start)s to %(start)s - %(end)s."
    ),
    NotificationKind.REMINDER: N_("Your booking of %(resource)s starts at %(start)s."),
    NotificationKind.WAITLIST_OFFERED: N_(
        "The slot you waited for on %(resource)s from %(start)s to %(end)s is free. "
        "Accept it before %(deadline)s."
    ),
    NotificationKind.COMPLETED: N_(
        "Your booking of %(resource)s is completed: cost %(cost)s CNY, paid by voucher "
        "%(voucher_amount)s CNY, to pay by you %(customer_amount)s CNY."
    ),
    NotificationKind.NO_SHOW: N_(
        "Nobody checked in to your booking of %(resource)s from %(start)s to %(end)s, "
        "so it is recorded as a no-show."
    ),
    NotificationKind.VOUCHER_EXPIRING: N_(
        "Innovation voucher %(voucher)s of %(holder)s expires at the end of %(date)s."
    ),
    NotificationKind.CLAIM_AUDITED: N_("Redemption claim %(claim)s was audited: %(outcome)s."),
}

#: The lines of a mail's detail table: (label, parameter), shown when set.
DETAILS = {
    NotificationKind.REQUEST_RECEIVED: (
        (N_("Resource"), "resource"),
        (N_("Customer"), "customer"),
        (N_("Start"), "start"),
        (N_("End"), "end"),
        (N_("Purpose"), "purpose"),
        (N_("Estimated cost (CNY)"), "estimated_cost"),
    ),
    NotificationKind.APPROVED: (
        (N_("Resource"), "resource"),
        (N_("Start"), "start"),
        (N_("End"), "end"),
        (N_("Location"), "location"),
    ),
    NotificationKind.REJECTED: (
        (N_("Resource"), "resource"),
        (N_("Start"), "start"),
        (N_("Reason"), "reason"),
    ),
    NotificationKind.EXPIRED: ((N_("Resource"), "resource"), (N_("Start"), "start")),
    NotificationKind.CANCELLED: (
        (N_("Resource"), "resource"),
        (N_("Start"), "start"),
        (N_("End"), "end"),
        (N_("Reason"), "reason"),
    ),
    NotificationKind.RESCHEDULED: (
        (N_("Resource"), "resource"),
        (N_("Before"), "previous_start"),
        (N_("Start"), "start"),
        (N_("End"), "end"),
        (N_("Location"), "location"),
    ),
    NotificationKind.REMINDER: (
        (N_("Resource"), "resource"),
        (N_("Start"), "start"),
        (N_("End"), "end"),
        (N_("Location"), "location"),
    ),
    NotificationKind.WAITLIST_OFFERED: (
        (N_("Resource"), "resource"),
        (N_("Start"), "start"),
        (N_("End"), "end"),
        (N_("Accept before"), "deadline"),
    ),
    NotificationKind.COMPLETED: (
        (N_("Resource"), "resource"),
        (N_("Start"), "start"),
        (N_("Cost (CNY)"), "cost"),
        (N_("Paid by voucher (CNY)"), "voucher_amount"),
        (N_("To pay by you (CNY)"), "customer_amount"),
    ),
    NotificationKind.NO_SHOW: (
        (N_("Resource"), "resource"),
        (N_("Start"), "start"),
        (N_("End"), "end"),
        (N_("No-show fee (CNY)"), "fee"),
    ),
    NotificationKind.VOUCHER_EXPIRING: (
        (N_("Voucher"), "voucher"),
        (N_("Holder"), "holder"),
        (N_("Last valid day"), "date"),
        (N_("Not used yet (CNY)"), "balance"),
    ),
    NotificationKind.CLAIM_AUDITED: (
        (N_("Claim"), "claim"),
        (N_("Outcome"), "outcome"),
        (N_("Approved amount (CNY)"), "approved_amount"),
    ),
}

CLAIM_OUTCOMES = {
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "partially_approved": N_("partly approved"),
    "partly_approved": N_("partly approved"),
    "audited": N_("audited"),
    "paid": N_("paid"),
}


# --- what a notification says --------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Message:
    """What to tell one person: the inbox texts (message ids and parameters),
    the mail template's extra values (JSON, kept with the mail until it is
    rendered), and how to make attachments in the recipient's language."""

    kind: NotificationKind
    params: dict[str, Any]
    link: str | None = None
    target: tuple[str, int] | None = None
    body: str | None = None
    context: dict[str, Any] = field(default_factory=dict)  # JSON values only
    attachments: Any = None  # callable(locale) -> list[Attachment]

    @property
    def subject(self) -> str:
        return SUBJECTS[self.kind]

    @property
    def body_id(self) -> str:
        return self.body or BODIES[self.kind]


def localized(zh: str | None, en: str | None) -> dict[str, str]:
    return {"zh_CN": zh or en or "", "en": en or zh or ""}


def instant(value: datetime) -> dict[str, str]:
    return {"instant": value.isoformat()}


def money(value: Decimal | None) -> dict[str, str]:
    return {"money": format_money(value if value is not None else Decimal("0"))}


def day(value: date) -> dict[str, str]:
    return {"date": value.isoformat()}


def message_text(value: str) -> dict[str, str]:
    """A parameter that is itself a message id, translated when rendered."""
    return {"msgid": value}


def is_english(locale: str | None) -> bool:
    return bool(locale) and str(locale).lower().startswith("en")


def format_instant(value: datetime, locale: str) -> str:
    """A time as people of the platform read it: local time, their language."""
    from babel.dates import format_datetime

    if is_english(locale):
        return format_datetime(
            value, "EEE d MMM yyyy, HH:mm", tzinfo=clock.platform_tz(), locale="en"
        )
    return format_datetime(
        value, "yyyy年M月d日（EEE）HH:mm", tzinfo=clock.platform_tz(), locale="zh_CN"
    )


def format_day(value: date, locale: str) -> str:
    from babel.dates import format_date

    if is_english(locale):
        return format_date(value, "d MMM yyyy", locale="en")
    return format_date(value, "yyyy年M月d日", locale="zh_CN")


def render_param(value: Any, locale: str, translate=None) -> str:
    if isinstance(value, dict):
        if "instant" in value:
            return format_instant(datetime.fromisoformat(value["instant"]), locale)
        if "date" in value:
            return format_day(date.fromisoformat(value["date"]), locale)
        if "money" in value:
            return value["money"]
        if "msgid" in value:
            return translate(value["msgid"]) if translate else value["msgid"]
        return value.get("en" if is_english(locale) else "zh_CN", "")
    return "" if value is None else str(value)


def render_params(params: dict[str, Any], locale: str, translate=None) -> dict[str, str]:
    return {key: render_param(value, locale, translate) for key, value in params.items()}


def render_notification(notification: Notification, locale: str) -> tuple[str, str]:
    """Subject and body of an inbox item in ``locale`` (the reader's)."""
    from flask_babel import force_locale, gettext

    with force_locale(locale):
        params = render_params(notification.params or {}, locale, gettext)
        subject = gettext(notification.message, **params)
        body = gettext(notification.body, **params) if notification.body else ""
    return subject, body


# --- recipients and preferences -------------------------------------------------


def admins_of(session: Session, org_id: int) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.organization_id == org_id,
                Membership.role == Role.ADMIN,
                User.active.is_(True),
            )
            .order_by(User.id)
        )
    )


def members_of(session: Session, org_id: int) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.organization_id == org_id, User.active.is_(True))
            .order_by(User.id)
        )
    )


def approvers_of(session: Session, resource: Resource) -> list[User]:
    """The resource's named approvers who still belong to the lab, or else
    its provider's admins."""
    return [user for user, _wants in approvers_with_choice(session, resource)]


@functools.cache
def _approvers_statement(with_choice: bool):
    """The named approvers and the admins of a lab, each marked named or not,
    with their choice of mail of a kind: built once (it runs for every
    request a lab receives)."""
    named_ids = (
        select(ResourceApprover.user_id)
        .join(
            Membership,
            and_(
                Membership.user_id == ResourceApprover.user_id,
                Membership.organization_id == bindparam("provider_id"),
            ),
        )
        .where(ResourceApprover.resource_id == bindparam("resource_id"))
    )
    admin_ids = select(Membership.user_id).where(
        Membership.organization_id == bindparam("provider_id"), Membership.role == Role.ADMIN
    )
    named = User.id.in_(named_ids)
    query = select(User, named.label("named")).where(
        User.active.is_(True), or_(named, User.id.in_(admin_ids))
    )
    if with_choice:
        query = query.add_columns(NotificationPreference.email).outerjoin(
            NotificationPreference,
            and_(
                NotificationPreference.user_id == User.id,
                NotificationPreference.kind == bindparam("kind"),
            ),
        )
    return query.order_by(User.id)


def approvers_with_choice(
    session: Session, resource: Resource, kind: NotificationKind | None = None
) -> list[tuple[User, bool]]:
    """``approvers_of`` in one query, each with whether they want mail of
    ``kind`` (True when not asked)."""
    rows = session.execute(
        _approvers_statement(kind is not None),
        {"resource_id": resource.id, "provider_id": resource.provider_id, "kind": kind},
    ).all()
    # Without named approvers every row is an admin of the provider.
    chosen = [row for row in rows if row[1]] or rows
    return [(row[0], kind is None or row[2] is None or bool(row[2])) for row in chosen]


def email_preferences(session: Session, user_id: int) -> dict[NotificationKind, bool]:
    chosen = {
        row.kind: row.email
        for row in session.scalars(
            select(NotificationPreference).where(NotificationPreference.user_id == user_id)
        )
    }
    return {kind: chosen.get(kind, True) for kind in NotificationKind}


def email_choices(
    session: Session, user_ids: Sequence[int], kind: NotificationKind
) -> dict[int, bool]:
    """Whether each user wants mail of ``kind``, in one query (a missing
    preference means yes)."""
    chosen = dict(
        session.execute(
            select(NotificationPreference.user_id, NotificationPreference.email).where(
                NotificationPreference.user_id.in_(list(user_ids)),
                NotificationPreference.kind == kind,
            )
        ).all()
    )
    return {user_id: bool(chosen.get(user_id, True)) for user_id in user_ids}


#: What telling a user reads of them.
RECIPIENT_FIELDS = ("active", "email", "locale", "name")


def recipient_with_choice(
    session: Session, user_id: int, kind: NotificationKind
) -> tuple[User | None, bool]:
    """A user to tell, with whether they want mail of ``kind``: one query
    (the user joined with their choice), or only the choice's when the user
    is loaded already. (None, False) when there is no such user."""
    user = session.identity_map.get(identity_key(User, user_id))
    if user is not None and all(name in user.__dict__ for name in RECIPIENT_FIELDS):
        return user, email_choices(session, [user_id], kind)[user_id]
    row = session.execute(
        select(User, NotificationPreference.email)
        .outerjoin(
            NotificationPreference,
            and_(NotificationPreference.user_id == User.id, NotificationPreference.kind == kind),
        )
        .where(User.id == user_id)
    ).first()
    if row is None:
        return None, False
    return row[0], row[1] is None or bool(row[1])


_organizations = Organization.__table__
#: Built once and run on the connection: every booking's notice asks for two
#: names, and building the statement and the ORM's result cost more than the query.
_ORG_NAMES = select(_organizations.c.id, _organizations.c.name, _organizations.c.name_en).where(
    _organizations.c.id.in_(bindparam("ids", expanding=True))
)


def org_names(session: Session, org_ids: Iterable[int | None]) -> dict[int, dict[str, str]]:
    """Localized names of organisations: from the session where loaded, the
    rest in one query (never a lazy load per organisation)."""
    names: dict[int, dict[str, str]] = {}
    missing = []
    for org_id in {i for i in org_ids if i is not None}:
        org = session.identity_map.get(identity_key(Organization, org_id))
        loaded = org.__dict__ if org is not None else {}
        if "name" in loaded and "name_en" in loaded:
            names[org_id] = localized(loaded["name"], loaded["name_en"])
        else:
            missing.append(org_id)
    if missing:
        rows = session.connection().execute(_ORG_NAMES, {"ids": sorted(missing)})
        for org_id, name, name_en in rows:
            names[org_id] = localized(name, name_en)
    return names


# --- writing, at most once --------------------------------------------------------


def _insert(session: Session, model):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the platform runs on these two
        raise RuntimeError(f"unsupported database {dialect}")
    return insert(model.__table__)


def _row(model, values: dict[str, Any]) -> dict[str, Any]:
    return {model.__table__.c[k].name: v for k, v in _bind_values(model, values).items()}


def insert_once(session: Session, model, values: dict[str, Any], keys: Sequence[str]):
    """``INSERT ... ON CONFLICT (keys) DO NOTHING RETURNING id``: the new row's
    primary key, or None when a row with the same keys exists (or is being written by a
    concurrent transaction, which this one then waits for)."""
    statement = (
        _insert(session, model)
        .values(**_row(model, values))
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(*model.__table__.primary_key.columns)
    )
    return session.execute(statement).scalar_one_or_none()


def insert_many(
    session: Session,
    model,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    returning: Sequence[str],
) -> list:
    """``insert_once`` for many rows: the ``returning`` columns of the rows
    written; a row whose keys exist (or are being written by a concurrent
    transaction, which this one waits for) is left out. One statement:
    SQLAlchemy sends the rows as one multi-row ``INSERT ... ON CONFLICT DO
    NOTHING RETURNING`` ("insertmanyvalues", up to 1,000 rows a statement),
    compiled once and cached, unlike ``.values([...])``. Writers of the same
    rows should send them in the same order, so that two of them at once
    wait rather than deadlock."""
    if not rows:
        return []
    table = model.__table__
    statement = (
        _insert(session, model)
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(*(table.c[name] for name in returning))
    )
    return session.execute(statement, [_row(model, values) for values in rows]).all()


def _bind_values(model, values: dict[str, Any]) -> dict[str, Any]:
    # Column defaults of the ORM (created_at and the like) do not apply to a
    # Core insert: fill in what the caller left out.
    table = model.__table__
    filled = dict(values)
    for column in table.columns:
        if column.key in filled or column.primary_key:
            continue
        if column.default is not None and column.default.is_callable:
            filled[column.key] = column.default.arg(None)
        elif column.default is not None and column.default.is_scalar:
            filled[column.key] = column.default.arg
    return filled


def notify(session: Session, user: User | int, message: Message, dedupe_key: str) -> int | None:
    """Tell ``user`` (a user or a user's id) once: an inbox item and, if they
    want mail of this kind, an outbox mail in their language. Returns the
    notification's id, or None when this key was already notified (nothing
    is written then) or there is no such user."""
    if isinstance(user, User):
        written = notify_all(session, [user], message, dedupe_key)
    else:
        found, wants = recipient_with_choice(session, user, message.kind)
        if found is None:
            return None
        written = notify_all(session, [found], message, dedupe_key, wants_email={found.id: wants})
    return written[0] if written else None


def notify_all(
    session: Session,
    users: Iterable[User],
    message: Message,
    dedupe_key: str,
    *,
    wants_email: dict[int, bool] | None = None,
) -> list[int]:
    """``notify`` for each of ``users`` (each once, the inactive left out),
    with a few statements whatever their number: one INSERT of the inbox
    items, one query of the mail preferences (none when ``wants_email``
    already tells), one INSERT of the mails. Returns the ids of the
    notifications written, in the order of ``users``."""
    recipients: dict[int, User] = {}
    for user in users:
        if user.active and user.id not in recipients:
            recipients[user.id] = user
    if not recipients:
        return []
    now = clock.now()
    # Rows in user order: two transactions writing the same news at once
    # meet on the same first row, and the second waits instead of deadlocking.
    ordered = sorted(recipients)
    item = {
        "kind": message.kind,
        "message": message.subject,
        "body": message.body_id,
        "params": message.params,
        "link": message.link,
        "target_type": message.target[0] if message.target else None,
        "target_id": message.target[1] if message.target else None,
        "dedupe_key": dedupe_key,
        "created_at": now,
    }
    written = {
        user_id: notification_id
        for notification_id, user_id in insert_many(
            session,
            Notification,
            [{**item, "user_id": user_id} for user_id in ordered],
            ("user_id", "dedupe_key"),
            ("id", "user_id"),
        )
    }
    mailed = [recipients[i] for i in ordered if i in written and recipients[i].email]
    if mailed:
        if wants_email is None:
            wants_email = email_choices(session, [u.id for u in mailed], message.kind)
        queue_mails(
            session, [u for u in mailed if wants_email.get(u.id, True)], message, dedupe_key, now
        )
    return [written[i] for i in recipients if i in written]


def mail_locale(user: User) -> str:
    return "en" if is_english(user.locale) else "zh_CN"


def mail_snapshot(message: Message, user: User) -> dict[str, Any]:
    """What a mail says, kept with it until it is rendered (JSON)."""
    return {
        "subject": message.subject,
        "summary": message.body_id,
        "params": message.params,
        "link": message.link,
        "name": user.name or "",
        "context": message.context,
    }


def queue_mails(
    session: Session, users: Sequence[User], message: Message, dedupe_key: str, now: datetime
) -> dict[int, int]:
    """Put ``message`` in the outbox once for each of ``users``, unrendered,
    in one INSERT; attachments are made now, once per language. Returns the
    ids of the mails written by user id."""
    from flask import current_app

    if not users:
        return {}
    mail_from = current_app.config["MAIL_FROM"]
    rows = [
        {
            "dedupe_key": f"{dedupe_key}:u{user.id}",
            "message_id": make_message_id(mail_from),
            "user_id": user.id,
            "kind": message.kind.value,
            "locale": mail_locale(user),
            "recipient": user.email,
            "params": mail_snapshot(message, user),
            "subject": None,
            "text_body": None,
            "html_body": None,
            "status": MailStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for user in sorted(users, key=lambda u: u.id)
    ]
    written = {
        user_id: mail_id
        for mail_id, user_id in insert_many(
            session, OutboxMail, rows, ("dedupe_key",), ("id", "user_id")
        )
    }
    if written and message.attachments is not None:
        made: dict[str, list[Attachment]] = {}
        locales = {user.id: mail_locale(user) for user in users}
        for user_id, mail_id in sorted(written.items()):
            locale = locales[user_id]
            if locale not in made:
                made[locale] = message.attachments(locale)
            session.add_all(
                OutboxAttachment(
                    mail_id=mail_id,
                    filename=item.filename,
                    content_type=item.content_type,
                    data=item.data,
                )
                for item in made[locale]
            )
    return written


def make_message_id(mail_from: str) -> str:
    domain = mail_from.rpartition("@")[2] or "localhost"
    return f"<{uuid.uuid4().hex}@{domain}>"


# --- rendering a mail, when it is delivered ----------------------------------------


def render_outbox_mail(mail: OutboxMail) -> tuple[str, str, str]:
    """Subject, text and HTML of an unrendered mail, from its snapshot, in its
    language. Raises what a template or a parameter gets wrong."""
    from flask import current_app, render_template
    from flask_babel import force_locale, gettext

    snapshot = mail.params
    if not snapshot:
        raise ValueError(f"mail {mail.id} has no texts and nothing to render them from")
    kind = NotificationKind(mail.kind)
    locale = mail.locale
    base_url = current_app.config["BASE_URL"].rstrip("/")
    link = snapshot.get("link")
    # Message ids kept with the mail (not literals: nothing to extract here).
    subject_id, summary_id = snapshot["subject"], snapshot["summary"]
    with force_locale(locale):
        params = render_params(snapshot.get("params") or {}, locale, gettext)
        context = {
            "locale": locale,
            "p": params,
            "details": [
                (gettext(label), params[key]) for label, key in DETAILS[kind] if params.get(key)
            ],
            "link": f"{base_url}{link}" if link else None,
            "base_url": base_url,
            "preferences_url": f"{base_url}/notifications/preferences",
            **(snapshot.get("context") or {}),
            "recipient": SimpleNamespace(name=snapshot.get("name") or ""),
            "subject": gettext(subject_id, **params),
            "summary": gettext(summary_id, **params),
        }
        template = f"emails/{kind.value}"
        text = render_template(f"{template}.txt", **context)
        html = render_template(f"{template}.html", **context)
    return context["subject"][:300], text, html


def ensure_rendered(mail: OutboxMail) -> None:
    """Render a mail not rendered yet and keep its texts on the row (flushed
    with the caller's transaction): it is rendered once, and a retry sends
    the same texts. Raises, leaving the row as it was, when rendering fails."""
    if mail.rendered:
        return
    subject, text, html = render_outbox_mail(mail)
    mail.subject, mail.text_body, mail.html_body = subject, text, html


@dataclass(frozen=True)
class MailTexts:
    """What the outbox page shows of a mail."""

    subject: str
    text: str
    html: str | None
    rendered: bool  # False: not rendered yet, shown as it would be now
    error: str | None = None  # it cannot be rendered


def mail_texts(mail: OutboxMail) -> MailTexts:
    """A mail's texts for its reader on the outbox page: kept ones as they
    are; an unrendered one rendered for the page only (nothing is written)."""
    if mail.rendered:
        return MailTexts(mail.subject or "", mail.text_body or "", mail.html_body, True)
    try:
        subject, text, html = render_outbox_mail(mail)
    except Exception as exc:  # shown on the page; the mailer records it as an attempt
        log.warning("mail %s cannot be rendered: %s", mail.id, exc)
        return MailTexts("", "", None, False, f"{type(exc).__name__}: {exc}")
    return MailTexts(subject, text, html, False)


def mail_subject(mail: OutboxMail) -> str:
    """A mail's subject for the outbox list: kept, or made from the snapshot
    (message id and parameters, no template)."""
    if mail.subject is not None:
        return mail.subject
    from flask_babel import force_locale, gettext

    snapshot = mail.params or {}
    try:
        subject_id = snapshot["subject"]
        with force_locale(mail.locale):
            params = render_params(snapshot.get("params") or {}, mail.locale, gettext)
            return gettext(subject_id, **params)[:300]
    except Exception as exc:  # the list still shows the mail
        log.warning("mail %s has no subject to show: %s", mail.id, exc)
        return ""


# --- reservations ---------------------------------------------------------------


def reservation_params(session: Session, reservation: Reservation) -> dict[str, Any]:
    resource = reservation.resource
    names = org_names(session, (reservation.customer_org_id, resource.provider_id))
    return {
        "resource": localized(resource.name_zh, resource.name_en),
        "start": instant(reservation.start_at),
        "end": instant(reservation.end_at),
        "customer": names.get(reservation.customer_org_id, ""),
        "location": resource.location or "",
        "provider": names.get(resource.provider_id, ""),
        "reservation": reservation.id,
    }


def reservation_key(reservation: Reservation, what: str) -> str:
    """Unique per change: a booking re-approved after a reschedule is new news."""
    start = int(reservation.start_at.timestamp())
    return f"reservation:{reservation.id}:{what}:{reservation.sequence}:{start}"


def reservation_message(
    session: Session, reservation: Reservation, kind: NotificationKind, **extra: Any
) -> Message:
    params = reservation_params(session, reservation)
    params.update(extra.pop("params", {}))
    return Message(
        kind=kind,
        params=params,
        link=f"/reservations/{reservation.id}",
        target=("reservations", reservation.id),
        **extra,
    )


@events.subscribe("reservation.requested")
def on_requested(session: Session, name: str, reservation: Reservation, actor=None, **data):
    message = reservation_message(
        session,
        reservation,
        NotificationKind.REQUEST_RECEIVED,
        params={
            "purpose": reservation.purpose or "",
            "estimated_cost": money(reservation.estimated_cost),
        },
    )
    message.link = APPROVAL_QUEUE
    approvers = approvers_with_choice(session, reservation.resource, message.kind)
    notify_all(
        session,
        [user for user, _wants in approvers],
        message,
        reservation_key(reservation, "requested"),
        wants_email={user.id: wants for user, wants in approvers},
    )


@events.subscribe("reservation.approved")
def on_approved(session: Session, name: str, reservation: Reservation, actor=None, **data):
    message = reservation_message(
        session,
        reservation,
        NotificationKind.APPROVED,
        attachments=lambda locale: [invitation_attachment(session, reservation, locale, "REQUEST")],
    )
    notify(session, reservation.user_id, message, reservation_key(reservation, "approved"))


@events.subscribe("reservation.rejected")
def on_rejected(session: Session, name: str, reservation: Reservation, actor=None, **data):
    reason = data.get("reason") or reservation.reason or ""
    message = reservation_message(
        session, reservation, NotificationKind.REJECTED, params={"reason": reason}
    )
    notify(session, reservation.user_id, message, reservation_key(reservation, "rejected"))


@events.subscribe("reservation.expired")
def on_expired(session: Session, name: str, reservation: Reservation, actor=None, **data):
    message = reservation_message(session, reservation, NotificationKind.EXPIRED)
    notify(session, reservation.user_id, message, reservation_key(reservation, "expired"))


@events.subscribe("reservation.cancelled")
def on_cancelled(session: Session, name: str, reservation: Reservation, actor=None, **data):
    reason = data.get("reason") or reservation.reason or ""
    invited = invitation_was_sent(session, reservation)
    message = reservation_message(
        session,
        reservation,
        NotificationKind.CANCELLED,
        params={"reason": reason},
        attachments=(
            (lambda locale: [invitation_attachment(session, reservation, locale, "CANCEL")])
            if invited
            else None
        ),
    )
    notify(session, reservation.user_id, message, reservation_key(reservation, "cancelled"))


#: Body of a move that sends the booking back to the lab for approval.
RESCHEDULED_FOR_APPROVAL = N_(
    "Your booking of %(resource)s was moved from %(previous_start)s to %(start)s - %(end)s. "
    "The lab has to approve the new time."
)


@events.subscribe("reservation.rescheduled")
def on_rescheduled(session: Session, name: str, reservation: Reservation, actor=None, **data):
    """The user hears of the new time (with an updated invitation when the
    booking is, or was, in their calendar); a move that needs approval again
    goes to the approvers as a new request."""
    previous = data.get("previous_start")
    waiting = str(reservation.status) == ReservationStatus.REQUESTED.value
    if waiting:
        on_requested(session, name, reservation, actor=actor)
    in_calendar = not waiting or invitation_was_sent(session, reservation)
    message = reservation_message(
        session,
        reservation,
        NotificationKind.RESCHEDULED,
        params={"previous_start": instant(previous) if previous else ""},
        body=RESCHEDULED_FOR_APPROVAL if waiting else None,
        attachments=(
            (lambda locale: [invitation_attachment(session, reservation, locale, "REQUEST")])
            if in_calendar
            else None
        ),
    )
    notify(session, reservation.user_id, message, reservation_key(reservation, "rescheduled"))


@events.subscribe("reservation.completed")
def on_completed(session: Session, name: str, reservation: Reservation, actor=None, **data):
    cost = reservation.final_cost
    voucher_amount = reservation.voucher_amount or Decimal("0.00")
    customer_amount = reservation.customer_amount
    if customer_amount is None and cost is not None:
        customer_amount = cost - voucher_amount
    message = reservation_message(
        session,
        reservation,
        NotificationKind.COMPLETED,
        params={
            "cost": money(cost),
            "voucher_amount": money(voucher_amount),
            "customer_amount": money(customer_amount),
        },
    )
    notify(session, reservation.user_id, message, reservation_key(reservation, "completed"))


@events.subscribe("reservation.no_show")
def on_no_show(session: Session, name: str, reservation: Reservation, actor=None, **data):
    """The customer hears that the booking became a no-show (marked by the
    lab, or by the scheduler after the grace time), with the fee if any."""
    fee = reservation.final_cost
    message = reservation_message(
        session,
        reservation,
        NotificationKind.NO_SHOW,
        params={"fee": money(fee) if fee else ""},
        context={"fee": format_money(fee) if fee else ""},
    )
    notify(session, reservation.user_id, message, reservation_key(reservation, "no_show"))


@events.subscribe("reservation.waitlist_offered")
def on_waitlist_offered(session: Session, name: str, entry: WaitlistEntry, actor=None, **data):
    resource = session.get(Resource, entry.resource_id)
    if resource is None:
        return
    offered = entry.offered_at or clock.now()
    deadline = entry.offer_expires_at or data.get("offer_expires_at")
    message = Message(
        kind=NotificationKind.WAITLIST_OFFERED,
        params={
            "resource": localized(resource.name_zh, resource.name_en),
            "start": instant(entry.start_at),
            "end": instant(entry.end_at),
            "deadline": instant(deadline) if deadline else "",
            "location": resource.location or "",
        },
        link=f"/waitlist/{entry.id}",
        target=("waitlist_entries", entry.id),
    )
    notify(
        session, entry.user_id, message, f"waitlist:{entry.id}:offered:{int(offered.timestamp())}"
    )


def invitation_was_sent(session: Session, reservation: Reservation) -> bool:
    """Did the booking's user get an .ics invitation (METHOD:REQUEST) for it?
    Then a cancellation carries METHOD:CANCEL so their calendar drops the
    event, and a move an updated REQUEST."""
    found = session.scalar(
        select(OutboxMail.id)
        .join(OutboxAttachment, OutboxAttachment.mail_id == OutboxMail.id)
        .where(
            OutboxMail.dedupe_key.startswith(f"reservation:{reservation.id}:"),
            OutboxMail.user_id == reservation.user_id,
            OutboxAttachment.content_type.contains("method=REQUEST"),
        )
        .limit(1)
    )
    return found is not None


# --- the calendar invitation ------------------------------------------------------


def invitation_attachment(
    session: Session, reservation: Reservation, locale: str, method: str
) -> Attachment:
    """The booking as an iTIP message, made by the feeds area
    (``booking.services.feeds.invitation_for``) so its UID and SEQUENCE are
    those of the feeds: a calendar holding the event updates it."""
    from booking.services import feeds

    session.flush()  # the feeds read the booking's row as it is now
    return Attachment(
        filename="invite.ics" if method == "REQUEST" else "cancel.ics",
        content_type=f"text/calendar; method={method}; charset=UTF-8",
        data=feeds.invitation_for(session, reservation.id, locale, method),
    )


# --- vouchers and claims ----------------------------------------------------------


def voucher_label(voucher) -> str:
    return str(
        getattr(voucher, "code", None) or getattr(voucher, "number", None) or f"#{voucher.id}"
    )


def voucher_last_day(voucher) -> date:
    value = voucher.valid_until
    return value.astimezone(clock.platform_tz()).date() if isinstance(value, datetime) else value


@events.subscribe("voucher.expiring")
def on_voucher_expiring(session: Session, name: str, voucher, actor=None, **data):
    holder = session.get(Organization, voucher.holder_org_id)
    if holder is None:
        return
    params = {
        "voucher": voucher_label(voucher),
        "holder": localized(holder.name, holder.name_en),
        "date": day(voucher_last_day(voucher)),
    }
    if data.get("balance") is not None:
        params["balance"] = money(data["balance"])
    message = Message(
        kind=NotificationKind.VOUCHER_EXPIRING,
        params=params,
        link=f"/vouchers/{voucher.id}",
        target=("vouchers", voucher.id),
    )
    recipients = admins_of(session, holder.id) or members_of(session, holder.id)
    notify_all(session, recipients, message, voucher_warning_key(voucher))


@events.subscribe("claim.audited")
def on_claim_audited(session: Session, name: str, claim, actor=None, **data):
    filer_id = getattr(claim, "filed_by_id", None) or getattr(claim, "created_by_id", None)
    filer = session.get(User, filer_id) if filer_id else None
    if filer is None:
        log.warning("claim %s audited but has no filer to notify", getattr(claim, "id", "?"))
        return
    outcome = claim_outcome(claim)
    params: dict[str, Any] = {
        "claim": str(getattr(claim, "number", None) or f"#{claim.id}"),
        "outcome": message_text(CLAIM_OUTCOMES[outcome]) if outcome in CLAIM_OUTCOMES else outcome,
    }
    if getattr(claim, "approved_amount", None) is not None:
        params["approved_amount"] = money(claim.approved_amount)
    message = Message(
        kind=NotificationKind.CLAIM_AUDITED,
        params=params,
        link=f"/claims/{claim.id}",
        target=("claims", claim.id),
    )
    audited_at = getattr(claim, "audited_at", None) or clock.now()
    notify(session, filer, message, f"claim:{claim.id}:audited:{int(audited_at.timestamp())}")


def claim_outcome(claim) -> str:
    """approved, partly_approved or rejected, from the claim's lines."""
    status = str(getattr(claim, "status", "") or "")
    lines = getattr(claim, "lines", None) or []
    decided = [str(getattr(line, "status", "")) for line in lines]
    if status == "rejected" or (decided and all(s == "rejected" for s in decided)):
        return "rejected"
    if any(s == "rejected" for s in decided):
        return "partly_approved"
    return "approved" if status in ("audited", "paid", "approved") else (status or "audited")


# --- found by the scheduler -----------------------------------------------------


def reminder_key(reservation: Reservation, minutes: int) -> str:
    return (
        f"reservation:{reservation.id}:reminder:{minutes}:{int(reservation.start_at.timestamp())}"
    )


def send_due_reminders(
    session: Session, now: datetime, minutes_before: Sequence[int] = DEFAULT_REMINDER_MINUTES
) -> int:
    """Remind the users of approved bookings starting soon, once per offset.

    With offsets 1440 and 60, a booking starting between 1 and 24 hours from
    now gets the 24-hour reminder and one starting within the hour the 1-hour
    one; a scheduler that was down for a while sends only the nearest that
    still makes sense, never a 24-hour reminder ten minutes before the start.
    """
    offsets = sorted({int(m) for m in minutes_before if int(m) > 0}, reverse=True)
    sent = 0
    for index, minutes in enumerate(offsets):
        nearer = offsets[index + 1] if index + 1 < len(offsets) else 0
        window_start = now + timedelta(minutes=nearer)
        window_end = now + timedelta(minutes=minutes)
        due = list(
            session.scalars(
                select(Reservation)
                .where(
                    Reservation.status == ReservationStatus.APPROVED,
                    Reservation.start_at > window_start,
                    Reservation.start_at <= window_end,
                )
                .order_by(Reservation.start_at, Reservation.id)
            )
        )
        done = already_notified(session, [reminder_key(r, minutes) for r in due])
        for reservation in due:
            key = reminder_key(reservation, minutes)
            if key in done:
                continue
            message = reservation_message(
                session,
                reservation,
                NotificationKind.REMINDER,
                params={"minutes": minutes, "hours": minutes // 60},
                context={"minutes_before": minutes},
            )
            if notify(session, reservation.user_id, message, key) is not None:
                sent += 1
    return sent


def already_notified(session: Session, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in range(0, len(keys), 500):
        part = keys[chunk : chunk + 500]
        found.update(
            session.scalars(
                select(Notification.dedupe_key).where(Notification.dedupe_key.in_(part))
            )
        )
    return found


def warn_expiring_vouchers(
    session: Session, now: datetime, days_before: int = VOUCHER_WARNING_DAYS
) -> int:
    """Publish ``voucher.expiring`` for active vouchers whose last valid day
    is at most ``days_before`` days away, with money left on them, whose
    holder was not warned yet. Returns how many vouchers were warned about."""
    from booking.models.vouchers import Voucher, VoucherStatus
    from booking.services.vouchers import totals_for

    tz = clock.platform_tz()
    today = now.astimezone(tz).date()
    horizon = clock.local_end_of_day(today + timedelta(days=days_before), tz)
    vouchers = list(
        session.scalars(
            select(Voucher)
            .where(
                Voucher.status == VoucherStatus.ACTIVE,
                Voucher.valid_until > now,
                Voucher.valid_until <= horizon,
            )
            .order_by(Voucher.id)
        )
    )
    keys = {v.id: voucher_warning_key(v) for v in vouchers}
    done = already_notified(session, list(keys.values()))
    vouchers = [v for v in vouchers if keys[v.id] not in done]
    totals = totals_for(session, [v.id for v in vouchers])
    warned = 0
    for voucher in vouchers:
        balance = totals[voucher.id].balance
        if balance <= 0:
            continue
        days_left = (voucher_last_day(voucher) - today).days
        events.publish(session, "voucher.expiring", voucher, days_left=days_left, balance=balance)
        warned += 1
    return warned


def voucher_warning_key(voucher) -> str:
    return f"voucher:{voucher.id}:expiring:{voucher_last_day(voucher).isoformat()}"


# --- the inbox, for its reader ---------------------------------------------------


def unread_count(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count(Notification.id)).where(
                Notification.user_id == user_id, Notification.read_at.is_(None)
            )
        )
        or 0
    )


def list_notifications(
    session: Session, actor: Actor, *, unread_only: bool = False, page: int = 1, per_page: int = 50
) -> tuple[list[Notification], int]:
    authz.require(actor, "notification.list")
    query = select(Notification).where(Notification.user_id == actor.user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return list(items), total


def get_notification(session: Session, actor: Actor, notification_id: int) -> Notification:
    authz.require(actor, "notification.list")
    notification = session.get(Notification, notification_id)
    # Someone else's notification is as unknown as one that does not exist.
    if notification is None or not authz.can(actor, "notification.view", notification):
        raise NotFound()
    return notification


def mark_read(session: Session, actor: Actor, notification_id: int) -> Notification:
    notification = get_notification(session, actor, notification_id)
    authz.require(actor, "notification.mark_read", notification)
    if notification.read_at is None:
        notification.read_at = clock.now()
        session.flush()
    return notification


def mark_all_read(session: Session, actor: Actor) -> int:
    authz.require(actor, "notification.list")
    rows = session.scalars(
        select(Notification).where(
            Notification.user_id == actor.user_id, Notification.read_at.is_(None)
        )
    ).all()
    now = clock.now()
    for row in rows:
        row.read_at = now
    session.flush()
    return len(rows)


def get_preferences(session: Session, actor: Actor) -> dict[NotificationKind, bool]:
    authz.require(actor, "notification.preferences")
    return email_preferences(session, actor.user_id)


def set_preferences(
    session: Session, actor: Actor, email: dict[str, bool]
) -> dict[NotificationKind, bool]:
    """Choose which kinds come by mail; kinds not named stay as they were."""
    authz.require(actor, "notification.preferences")
    known = {kind.value: kind for kind in NotificationKind}
    unknown = sorted(k for k in email if k not in known)
    if unknown:
        raise ValidationFailed(
            {k: [N_("Unknown kind of notification.")] for k in unknown},
        )
    before = email_preferences(session, actor.user_id)
    rows = {
        row.kind: row
        for row in session.scalars(
            select(NotificationPreference).where(NotificationPreference.user_id == actor.user_id)
        )
    }
    for name, wanted in email.items():
        kind = known[name]
        row = rows.get(kind)
        if row is None:
            session.add(
                NotificationPreference(user_id=actor.user_id, kind=kind, email=bool(wanted))
            )
        else:
            row.email = bool(wanted)
    session.flush()
    after = email_preferences(session, actor.user_id)
    if after != before:
        audit.record(
            session,
            actor,
            "notification.preferences",
            ("users", actor.user_id),
            before={k.value: v for k, v in before.items()},
            after={k.value: v for k, v in after.items()},
        )
    return after


# --- the outbox, for a platform admin ---------------------------------------------


def list_outbox(
    session: Session,
    actor: Actor,
    *,
    status: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[OutboxMail], int]:
    authz.require(actor, "outbox.view")
    query = select(OutboxMail)
    if status:
        try:
            query = query.where(OutboxMail.status == MailStatus(status))
        except ValueError:
            raise ValidationFailed({"status": [N_("Unknown mail status.")]}) from None
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(OutboxMail.created_at.desc(), OutboxMail.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return list(items), total


def get_outbox_mail(session: Session, actor: Actor, mail_id: int) -> OutboxMail:
    authz.require(actor, "outbox.view")
    mail = session.get(OutboxMail, mail_id)
    if mail is None:
        raise NotFound()
    return mail
