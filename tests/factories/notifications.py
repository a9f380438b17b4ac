"""Factories of the notifications area: a real SMTP server on 127.0.0.1, a
small lab scene (a provider with admins, a customer, a resource), and helpers
to publish events and run the scheduler's jobs."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from booking.models.notifications import Notification, OutboxMail
from tests.factories.accounts import create_org, create_user
from tests.factories.catalog import create_resource
from tests.factories.reservations import create_reservation

__all__ = ["lab_scene", "mail_to", "smtp_server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    message: EmailMessage


class CollectingHandler:
    """An aiosmtpd handler that keeps every mail it is given."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.refuse_next: str | None = None  # e.g. "451 try later" or "550 no such user"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_next:
            reply, self.refuse_next = self.refuse_next, None
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: CollectingHandler
    controller: object = field(repr=False)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.recipients]


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on 127.0.0.1 at a free port."""
    from aiosmtpd.controller import Controller

    handler = CollectingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler, controller)
    finally:
        controller.stop()


@pytest.fixture
def mail_to(app, monkeypatch, smtp_server):
    """The app sends through the test SMTP server."""
    monkeypatch.setitem(app.config, "SMTP_URL", smtp_server.url)
    return smtp_server


@dataclass
class LabScene:
    provider: object
    lab_admin: object
    customer_org: object
    customer: object
    resource: object

    def booking(self, session, start: datetime, **fields):
        return create_reservation(
            session, self.resource, self.customer_org, self.customer, start, **fields
        )


def create_lab_scene(session, *, admin_locale="en", customer_locale="zh_CN", **resource_fields):
    provider = create_org(
        session, "provider", name="太原理化测试中心", name_en="Taiyuan Test Centre"
    )
    lab_admin = create_user(session, provider, "admin", locale=admin_locale, name="Wang Lab")
    customer_org = create_org(
        session, "enterprise", name="晋材新材料有限公司", name_en="Jincai Materials"
    )
    customer = create_user(session, customer_org, locale=customer_locale, name="李娜")
    resource = create_resource(
        session,
        provider,
        name_zh=resource_fields.pop("name_zh", "X射线衍射仪"),
        name_en=resource_fields.pop("name_en", "X-ray diffractometer"),
        location=resource_fields.pop("location", "B201"),
        **resource_fields,
    )
    return LabScene(provider, lab_admin, customer_org, customer, resource)


@pytest.fixture
def lab_scene(session):
    return create_lab_scene(session)


def count_rows(session, model, **where) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return session.scalar(query)


def notifications_of(session, user) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
        )
    )


def mails_to(session, address: str) -> list[OutboxMail]:
    return list(
        session.scalars(
            select(OutboxMail).where(OutboxMail.recipient == address).order_by(OutboxMail.id)
        )
    )


def rendered_mails_to(session, address: str) -> list[OutboxMail]:
    """The mails to ``address``, rendered as the mailer renders them when it
    first delivers them (``notifications.ensure_rendered``): mails are
    written unrendered by the change."""
    from booking.services import notifications

    mails = mails_to(session, address)
    for mail in mails:
        assert not mail.rendered, "a mail is written unrendered"
        notifications.ensure_rendered(mail)
    return mails


def at(*args) -> datetime:
    """A UTC instant: ``at(2026, 12, 1, 2)``."""
    return datetime(*args, tzinfo=UTC)
