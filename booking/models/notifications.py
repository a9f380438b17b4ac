"""Tables of the notifications area: the in-app inbox, the mail outbox, each
user's mail preferences, and the scheduler's leader lease and job log.

Exactly-once is kept by the database, not by the code that writes: a
notification is unique per ``(user, dedupe key)`` and an outbox mail per
``dedupe key``, so a job that runs twice, or in two processes at once, finds
its second write refused and sends nothing twice.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.models.base import Base, enum_column, utcnow


class NotificationKind(enum.StrEnum):
    """What a notification is about; users choose mail per kind."""

    REQUEST_RECEIVED = "request_received"  # to the resource's approvers
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"  # a request nobody decided in time
    CANCELLED = "cancelled"
    RESCHEDULED = "rescheduled"
    REMINDER = "reminder"
    WAITLIST_OFFERED = "waitlist_offered"
    COMPLETED = "completed"
    NO_SHOW = "no_show"  # nobody checked in: the lab or the scheduler recorded it
    VOUCHER_EXPIRING = "voucher_expiring"
    CLAIM_AUDITED = "claim_audited"


class Notification(Base):
    """One item of a user's inbox.

    ``message`` and ``body`` are English message ids with ``%(name)s``
    parameters from ``params``; they are translated when read, so the inbox
    follows the reader's current language. A parameter is a plain value, a
    ``{"zh_CN": ..., "en": ...}`` pair, ``{"instant": iso}`` or
    ``{"money": "12.50"}``.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "dedupe_key", name="uq_notifications_user_dedupe"),
        Index("ix_notifications_user_created", "user_id", "created_at"),
        Index("ix_notifications_user_unread", "user_id", "read_at"),
        # Jobs ask "was this already announced (to anyone)?" by key alone.
        Index("ix_notifications_dedupe_key", "dedupe_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(
        enum_column(NotificationKind, "notification_kind")
    )
    message: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(String(500), default="")
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    link: Mapped[str | None] = mapped_column(String(300))
    target_type: Mapped[str | None] = mapped_column(String(60))
    target_id: Mapped[int | None]
    dedupe_key: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]

    user = relationship("User")


class MailStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for the mailer
    SENT = "sent"
    FAILED = "failed"  # refused for good, or out of attempts
    KEPT = "kept"  # no SMTP_URL: kept here for a platform admin to read


class OutboxMail(Base):
    """A mail waiting to be sent, or sent. Written in the transaction that
    caused it, delivered by the scheduler's mailer after commit.

    ``message_id`` is fixed when the row is written, so a mail sent again
    after a crash between sending and marking it sent carries the same
    Message-ID and is recognisable as the same mail.

    A mail is written unrendered: ``params`` holds what it says, snapshotted
    at the change (message ids of subject and summary, their parameters, the
    link, the recipient's name, extra template values), and ``subject``,
    ``text_body`` and ``html_body`` are empty until the mailer renders them
    in ``locale`` when it first delivers (or keeps) the mail; from then on
    the rendered texts are kept and sent as they are. A mail written
    rendered (a password reset) has no ``params``. Attachments are made at
    the change, as they were then.
    """

    __tablename__ = "outbox_mails"
    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # Rendered (subject and text), or renderable (the snapshot).
        CheckConstraint(
            "(subject IS NOT NULL AND text_body IS NOT NULL) OR params IS NOT NULL",
            name="rendered_or_renderable",
        ),
        Index("ix_outbox_mails_status_due", "status", "next_attempt_at"),
        Index("ix_outbox_mails_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(254))
    params: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    subject: Mapped[str | None] = mapped_column(String(300))
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[MailStatus] = mapped_column(
        enum_column(MailStatus, "mail_status"), default=MailStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    attachments: Mapped[list[OutboxAttachment]] = relationship(
        back_populates="mail", cascade="all, delete-orphan", order_by="OutboxAttachment.id"
    )

    @property
    def rendered(self) -> bool:
        return self.subject is not None and self.text_body is not None


class OutboxAttachment(Base):
    """A file sent with an outbox mail, such as the .ics invitation."""

    __tablename__ = "outbox_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    mail_id: Mapped[int] = mapped_column(
        ForeignKey("outbox_mails.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(120))
    data: Mapped[bytes] = mapped_column(LargeBinary)

    mail: Mapped[OutboxMail] = relationship(back_populates="attachments")


class NotificationPreference(Base):
    """Whether a user wants mail of one kind. In-app notifications are always
    on; a missing row means the kind's default (mail on)."""

    __tablename__ = "notification_preferences"
    __table_args__ = (
        UniqueConstraint("user_id", "kind", name="uq_notification_preferences_user_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(
        enum_column(NotificationKind, "notification_preference_kind")
    )
    email: Mapped[bool] = mapped_column(default=True)


class SchedulerLease(Base):
    """The leader lease of the scheduler process: the one holder whose lease
    has not expired runs the jobs; the others wait and take it over when it
    lapses. Taken and renewed by one conditional UPDATE."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120), default="")
    expires_at: Mapped[datetime]
    acquired_at: Mapped[datetime | None]
    renewed_at: Mapped[datetime | None]


class JobRun(Base):
    """One run of a scheduled job: when, by which scheduler, what it did."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_started", "job", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(60))
    holder: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20))  # ok, error, skipped
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
