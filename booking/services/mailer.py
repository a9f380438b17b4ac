"""The mailer: delivers the outbox over SMTP, one mail at a time.

``SMTP_URL`` says where: ``smtp://user:password@host:port`` (plain, port 25
by default), ``smtps://`` (TLS from the start, 465) or ``smtp+starttls://``
(STARTTLS, 587). A malformed URL stops the service at start
(``check_smtp_url``, called by ``create_app``). Unset, nothing is sent: the
mailer marks pending mails ``kept`` and a platform admin reads them on the
outbox page.

Delivery, per mail, in its own transaction (the scheduler job commits after
each mail). On PostgreSQL the next due mail is claimed with ``SELECT ... FOR
UPDATE SKIP LOCKED`` (two mailers never take the same mail and never wait for
each other), sent, and marked sent in that same transaction; a crash between
the send and the commit leaves it pending, and it is sent again later. On
SQLite a transaction locks the whole database, which must not wait for a mail
server: the claim also holds the mail for ``HOLD_MINUTES`` and commits, the
mail is sent outside any transaction, and the outcome is recorded in the
next; a crash in between sends it again after the hold. Either way the copy
carries the ``Message-ID`` fixed when the mail was written, so it is
recognisable as the same mail. A refusal for good (5xx) marks the
mail failed; a passing trouble (4xx, a lost connection) retries with a
growing delay until ``MAX_ATTEMPTS``.

Mails are written unrendered (see ``booking.services.notifications``): the
claim renders a mail the first time it is taken, in its recipient's
language, and keeps the texts on the row in the claim's transaction, so a
retry sends the same texts. A mail that cannot be rendered (a template or a
parameter that fails) is a failed attempt like a refused one: it is retried
later, and marked failed only after ``MAX_ATTEMPTS``; nothing is lost.
Without a mail server the mails are rendered when they are kept.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import unquote, urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from booking.models.notifications import MailStatus, OutboxMail
from booking.services import notifications

log = logging.getLogger(__name__)

SCHEMES = {"smtp": ("plain", 25), "smtps": ("ssl", 465), "smtp+starttls": ("starttls", 587)}
MAX_ATTEMPTS = 8
#: SQLite: how long a claimed mail is held while it is being sent.
HOLD_MINUTES = 5
#: Minutes to wait after the n-th failed attempt.
RETRY_MINUTES = (1, 5, 15, 30, 60, 120, 240, 480)


# --- settings -----------------------------------------------------------------


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    mode: str  # plain, ssl, starttls
    username: str | None = None
    password: str | None = None


def check_smtp_url(url: str | None) -> None:
    """Refuse a malformed ``SMTP_URL`` at start with a message that says how
    to write it. Unset (or empty) is fine: mails are kept in the outbox."""
    smtp_settings(url)


def smtp_settings(url: str | None) -> SmtpSettings | None:
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise RuntimeError(
            f"SMTP_URL={_masked(url)!r} is not valid: write smtp://user:password@host:port "
            "(smtps:// for TLS, smtp+starttls:// for STARTTLS), or leave it unset "
            "to keep mails in the outbox."
        )
    try:
        port = parts.port
    except ValueError:
        raise RuntimeError(
            f"SMTP_URL={_masked(url)!r} has a port that is not a number between 1 and 65535."
        ) from None
    mode, default_port = SCHEMES[parts.scheme]
    return SmtpSettings(
        host=parts.hostname,
        port=port or default_port,
        mode=mode,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def _masked(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


# --- the message ----------------------------------------------------------------


def build_email(mail: OutboxMail, mail_from: str) -> EmailMessage:
    """The MIME message of an outbox mail: text, HTML alternative, attachments."""
    message = EmailMessage(policy=policy.SMTP)
    message["Subject"] = mail.subject
    message["From"] = mail_from
    message["To"] = mail.recipient
    message["Message-ID"] = mail.message_id
    message["Date"] = format_datetime(mail.created_at)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.text_body)
    if mail.html_body:
        message.add_alternative(mail.html_body, subtype="html")
    for attachment in mail.attachments:
        maintype, subtype, params = _content_type(attachment.content_type)
        message.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
            params=params,
        )
    # After the parts: making a multipart moves Content-* headers into them.
    message["Content-Language"] = "en" if mail.locale.startswith("en") else "zh-CN"
    return message


def _content_type(value: str) -> tuple[str, str, dict[str, str]]:
    kind, *rest = (part.strip() for part in value.split(";"))
    maintype, _, subtype = kind.partition("/")
    params = {}
    for part in rest:
        name, _, param = part.partition("=")
        if name:
            params[name.strip().lower()] = param.strip().strip('"')
    return maintype or "application", subtype or "octet-stream", params


# --- the connection ---------------------------------------------------------------


class SmtpTransport:
    """One SMTP connection, opened at the first mail and reused for the rest
    of a delivery run."""

    def __init__(self, settings: SmtpSettings, *, timeout: float = 30.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        s = self.settings
        if s.mode == "ssl":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(
                s.host, s.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            connection = smtplib.SMTP(s.host, s.port, timeout=self.timeout)
            if s.mode == "starttls":
                connection.starttls(context=ssl.create_default_context())
        if s.username:
            connection.login(s.username, s.password or "")
        self._connection = connection
        return connection

    def send(self, message: EmailMessage, envelope_from: str, recipient: str) -> None:
        try:
            self._connect().send_message(message, from_addr=envelope_from, to_addrs=[recipient])
        except (smtplib.SMTPServerDisconnected, OSError):
            self.close()
            raise

    def close(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.quit()
        except (smtplib.SMTPException, OSError):
            self._connection.close()
        self._connection = None


# --- delivery ---------------------------------------------------------------------


@dataclass
class Outcome:
    mail_id: int
    status: str  # sent, retry, failed
    error: str | None = None
    stop: bool = False  # the server is unreachable: try the rest later


def keep_pending_mails(session: Session, now: datetime, *, limit: int | None = None) -> int:
    """No SMTP server configured: pending mails stay in the outbox, marked
    ``kept``, for a platform admin to read. Those not rendered yet are
    rendered first (at most ``limit`` of them in one call, the rest at the
    next); one that cannot be rendered stays pending, its failed attempt
    recorded, and is tried again when due. Returns how many were kept."""
    unrendered = (
        select(OutboxMail)
        .where(
            OutboxMail.status == MailStatus.PENDING,
            OutboxMail.text_body.is_(None),
            OutboxMail.next_attempt_at <= now,
        )
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
        .with_for_update(skip_locked=True)
    )
    if limit is not None:
        unrendered = unrendered.limit(limit)
    kept = 0
    for mail in session.scalars(unrendered).all():
        if _render(mail, now) is None:
            mail.status = MailStatus.KEPT
            mail.last_error = None
            kept += 1
    session.flush()
    result = session.execute(
        update(OutboxMail)
        .where(OutboxMail.status == MailStatus.PENDING, OutboxMail.text_body.is_not(None))
        .values(status=MailStatus.KEPT, last_error=None)
        .execution_options(synchronize_session=False)
    )
    return kept + (result.rowcount or 0)


def _render(mail: OutboxMail, now: datetime) -> Outcome | None:
    """Render a mail not rendered yet (``notifications.ensure_rendered``);
    None when it is ready, else the failed attempt, recorded on the row."""
    try:
        notifications.ensure_rendered(mail)
    except Exception as exc:  # a template or a parameter failed: retried like a refusal
        log.exception("mail %s (%s) cannot be rendered", mail.id, mail.kind)
        mail.attempts += 1
        return _failed(mail, now, f"rendering failed: {type(exc).__name__}: {exc}", permanent=False)
    return None


@dataclass
class Claimed:
    """A mail taken for sending: everything the send needs, so sending
    touches no database row."""

    mail_id: int
    recipient: str
    kind: str
    message: EmailMessage | None
    envelope_from: str
    #: The mail could not be rendered: this attempt failed before any send
    #: (recorded on the row); nothing is to be sent or recorded.
    failed: Outcome | None = None


@dataclass
class SendResult:
    error: str | None = None
    permanent: bool = False
    stop: bool = False


def claim_next(
    session: Session, now: datetime, mail_from: str, *, hold_minutes: int | None = None
) -> Claimed | None:
    """Take the oldest due pending mail: locked for this transaction, mails
    another mailer holds skipped (PostgreSQL). With ``hold_minutes`` the mail
    is also held by moving its next attempt that far ahead, so the caller may
    commit before sending (SQLite, where a transaction locks the whole
    database); a crash then lets it be sent again after the hold.

    A mail not rendered yet is rendered here and its texts kept; when that
    fails, the attempt is recorded as failed (retried later) and the
    ``Claimed`` carries that outcome instead of a message."""
    mail = session.scalar(
        select(OutboxMail)
        .where(OutboxMail.status == MailStatus.PENDING, OutboxMail.next_attempt_at <= now)
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if mail is None:
        return None
    envelope_from = parseaddr(mail_from)[1] or mail_from
    failed = _render(mail, now)
    if failed is not None:
        session.flush()
        return Claimed(mail.id, mail.recipient, mail.kind, None, envelope_from, failed)
    mail.attempts += 1
    if hold_minutes:
        mail.next_attempt_at = now + timedelta(minutes=hold_minutes)
    claimed = Claimed(
        mail.id, mail.recipient, mail.kind, build_email(mail, mail_from), envelope_from
    )
    session.flush()
    return claimed


def send(transport: SmtpTransport, claimed: Claimed) -> SendResult:
    """Hand one mail to the SMTP server; what went wrong, if anything."""
    try:
        transport.send(claimed.message, claimed.envelope_from, claimed.recipient)
    except smtplib.SMTPRecipientsRefused as exc:
        code = min((c for c, _ in exc.recipients.values()), default=550)
        return SendResult(f"{code} recipient refused", permanent=code >= 500)
    except smtplib.SMTPResponseException as exc:
        reply = exc.smtp_error
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return SendResult(
            f"{exc.smtp_code} {text}",
            permanent=500 <= exc.smtp_code < 600,
            stop=isinstance(exc, smtplib.SMTPAuthenticationError),
        )
    except (smtplib.SMTPException, OSError) as exc:
        return SendResult(f"{type(exc).__name__}: {exc}", stop=True)
    return SendResult()


def record(session: Session, claimed: Claimed, result: SendResult, now: datetime) -> Outcome:
    """Mark a claimed mail sent, or schedule its retry, or fail it (flushed)."""
    mail = session.get(OutboxMail, claimed.mail_id, populate_existing=True)
    if result.error is None:
        mail.status = MailStatus.SENT
        mail.sent_at = now
        mail.last_error = None
        log.info("mail %s (%s) sent to %s", mail.id, mail.kind, mail.recipient)
        outcome = Outcome(mail.id, "sent")
    else:
        outcome = _failed(mail, now, result.error, permanent=result.permanent, stop=result.stop)
    session.flush()
    return outcome


def deliver_next(
    session: Session, transport: SmtpTransport, mail_from: str, now: datetime
) -> Outcome | None:
    """Claim the next due mail, send it and record what happened, all in the
    caller's transaction, which holds the mail's row lock until it commits
    (at once). None when nothing is due."""
    claimed = claim_next(session, now, mail_from)
    if claimed is None:
        return None
    if claimed.failed is not None:
        return claimed.failed
    return record(session, claimed, send(transport, claimed), now)


def _failed(
    mail: OutboxMail, now: datetime, error: str, *, permanent: bool, stop: bool = False
) -> Outcome:
    mail.last_error = error[:2000]
    if permanent or mail.attempts >= MAX_ATTEMPTS:
        mail.status = MailStatus.FAILED
        log.warning("mail %s to %s failed for good: %s", mail.id, mail.recipient, error)
        return Outcome(mail.id, "failed", error, stop)
    delay = RETRY_MINUTES[min(mail.attempts, len(RETRY_MINUTES)) - 1]
    mail.next_attempt_at = now + timedelta(minutes=delay)
    log.warning(
        "mail %s to %s not sent (attempt %d), retry in %d min: %s",
        mail.id,
        mail.recipient,
        mail.attempts,
        delay,
        error,
    )
    return Outcome(mail.id, "retry", error, stop)
