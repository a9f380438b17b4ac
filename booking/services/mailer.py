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


def keep_pending_mails(session: Session, now: datetime) -> int:
    """No SMTP server configured: pending mails stay in the outbox, marked
    ``kept``, for a platform admin to read."""
    result = session.execute(
        update(OutboxMail)
        .where(OutboxMail.status == MailStatus.PENDING)
        .values(status=MailStatus.KEPT, last_error=None)
    )
    return result.rowcount or 0


@dataclass
class Claimed:
    """A mail taken for sending: everything the send needs, so sending
    touches no database row."""

    mail_id: int
    recipient: str
    kind: str
    message: EmailMessage
    envelope_from: str


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
    database); a crash then lets it be sent again after the hold."""
    mail = session.scalar(
        select(OutboxMail)
        .where(OutboxMail.status == MailStatus.PENDING, OutboxMail.next_attempt_at <= now)
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if mail is None:
        return None
    mail.attempts += 1
    if hold_minutes:
        mail.next_attempt_at = now + timedelta(minutes=hold_minutes)
    claimed = Claimed(
        mail.id,
        mail.recipient,
        mail.kind,
        build_email(mail, mail_from),
        parseaddr(mail_from)[1] or mail_from,
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
