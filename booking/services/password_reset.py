"""Resetting a forgotten password by an emailed one-time link (找回密码).

- ``request_reset``: whoever asks gets the same answer, whether or not the
  address belongs to an account (nothing reveals who is registered). For an
  active account a random token (``secrets.token_urlsafe``, 256 bits) is made,
  only its SHA-256 is stored, older unused links of the user are voided, and
  the link goes out through the notifications area's outbox (sent by the
  scheduler's mailer, or kept for the platform admin when no mail server is
  set). At most ``MAX_PER_HOUR`` links per account an hour; more requests are
  answered the same and send nothing.
- ``reset_password``: the token row is locked, so a link works once even when
  two requests race; it must be unused, under an hour old, of an active user.
  The new password passes the same checks as any other
  (``accounts.set_password``, which also bumps ``session_version``: every
  session signed in before ends). Every other open link of the user is voided.

Both write audit events. Services flush, never commit. Rendering the mail
needs the Flask app (templates, Babel), as the notifications service does;
it is imported where used.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.errors import N_, ValidationFailed
from booking.models.accounts import User
from booking.models.notifications import MailStatus, OutboxMail
from booking.models.password_reset import PasswordResetToken
from booking.services import accounts, audit, notifications

#: How long a link works.
LIFETIME = timedelta(hours=1)
#: Links sent to one account within an hour, at most.
MAX_PER_HOUR = 3
#: The outbox's kind of these mails (not a notification kind: nobody can opt out).
MAIL_KIND = "password_reset"

INVALID_LINK = N_(
    "This link to reset your password has expired or has been used. Ask for a new one."
)


def _hash(token: str) -> str:
    return accounts.hash_token(token)


def _void_open_links(session: Session, user_id: int, now: datetime) -> None:
    session.execute(
        update(PasswordResetToken)
        .where(
            PasswordResetToken.user_id == user_id,
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.expires_at > now,
        )
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )


def _recent_requests(session: Session, user_id: int, now: datetime) -> int:
    return int(
        session.scalar(
            select(func.count(PasswordResetToken.id)).where(
                PasswordResetToken.user_id == user_id,
                PasswordResetToken.created_at > now - timedelta(hours=1),
            )
        )
        or 0
    )


def request_reset(session: Session, email: str, ip: str | None, base_url: str) -> None:
    """Send a one-time link to ``email`` if it is an active account's.
    Returns nothing either way: the caller answers every request alike."""
    user = accounts.find_user_by_email(session, (email or "").strip())
    now = clock.now()
    if user is None or not user.active or _recent_requests(session, user.id, now) >= MAX_PER_HOUR:
        return
    token = secrets.token_urlsafe(32)
    _void_open_links(session, user.id, now)
    row = PasswordResetToken(
        user_id=user.id,
        token_hash=_hash(token),
        created_at=now,
        expires_at=now + LIFETIME,
        requested_ip=(ip or "")[:64] or None,
    )
    session.add(row)
    session.flush()
    _queue_mail(session, user, f"{base_url.rstrip('/')}/password/reset/{token}", row)
    audit.record(
        session,
        accounts.actor_for(user, ip),
        "user.password_reset_request",
        row,
        after={"user_id": user.id, "expires_at": row.expires_at.isoformat()},
    )


def _usable(row: PasswordResetToken | None, now: datetime) -> bool:
    return (
        row is not None
        and row.used_at is None
        and row.expires_at > now
        and row.user is not None
        and row.user.active
    )


def check_token(session: Session, token: str) -> User | None:
    """The user a link resets, or None when it is unknown, used or expired."""
    if not token or len(token) > 200:
        return None
    row = session.scalar(
        select(PasswordResetToken).where(PasswordResetToken.token_hash == _hash(token))
    )
    return row.user if _usable(row, clock.now()) else None


def reset_password(session: Session, token: str, password: str, ip: str | None) -> User:
    """Set a new password with a one-time link; the link is used up.
    Raises ``ValidationFailed`` on ``token`` (a dead link) or ``password``
    (too weak: the message ids of ``accounts.password_problems``)."""
    now = clock.now()
    row = None
    if token and len(token) <= 200:
        row = session.scalar(
            select(PasswordResetToken)
            .where(PasswordResetToken.token_hash == _hash(token))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    if not _usable(row, now):
        raise ValidationFailed({"token": INVALID_LINK})
    user = row.user
    actor = accounts.actor_for(user, ip)
    accounts.set_password(session, actor, user, password)
    row.used_at = now
    _void_open_links(session, user.id, now)
    session.flush()
    audit.record(
        session,
        actor,
        "user.password_reset",
        row,
        after={"user_id": user.id, "used_at": now.isoformat()},
    )
    return user


def _queue_mail(session: Session, user: User, link: str, row: PasswordResetToken) -> None:
    """The mail with the link, in the user's language, into the outbox."""
    from flask import current_app, render_template
    from flask_babel import force_locale, gettext

    locale = "en" if notifications.is_english(user.locale) else "zh_CN"
    base_url = current_app.config["BASE_URL"].rstrip("/")
    with force_locale(locale):
        expires = notifications.format_instant(row.expires_at, locale)
        subject = gettext("Reset your password")
        context = {
            "recipient": user,
            "locale": locale,
            "subject": subject,
            "summary": gettext(
                "Someone, probably you, asked to reset the password of your account "
                "on the Jinchuanggu Open Sharing Platform."
            ),
            "details": [(gettext("The link works until"), expires)],
            "link": link,
            "base_url": base_url,
            "preferences_url": f"{base_url}/notifications/preferences",
        }
        text = render_template("emails/password_reset.txt", **context)
        html = render_template("emails/password_reset.html", **context)
    now = clock.now()
    notifications.insert_once(
        session,
        OutboxMail,
        {
            "dedupe_key": f"password_reset:{row.id}",
            "message_id": notifications.make_message_id(current_app.config["MAIL_FROM"]),
            "user_id": user.id,
            "kind": MAIL_KIND,
            "locale": locale,
            "recipient": user.email,
            "subject": subject[:300],
            "text_body": text,
            "html_body": html,
            "status": MailStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
        ("dedupe_key",),
    )
