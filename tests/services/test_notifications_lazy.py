"""Mails are written unrendered in the change's transaction, with a snapshot
of what they say, and rendered by the mailer when it first delivers (or
keeps) them, in their reader's language; the texts are kept, a rendering
that fails is a failed attempt retried later, attachments are as they were
at the change; and announcing a change costs the same few statements
whatever the number of people told."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import timedelta

import time_machine
from icalendar import Calendar
from jinja2.exceptions import UndefinedError
from sqlalchemy import event, select, update

from booking.extensions import db
from booking.jobs import JOBS, run_job
from booking.models.notifications import MailStatus, Notification, OutboxMail
from booking.models.reservations import Reservation
from booking.services import events, mailer, notifications
from tests.factories.accounts import actor_of, create_user
from tests.factories.notifications import at, count_rows, mails_to

START = at(2026, 12, 1, 2)  # Tuesday 10:00 in Shanghai
NOW = at(2026, 11, 20, 1)


def deliver(app):
    db.session.commit()  # SQLite: the test's own transaction holds the write lock
    return run_job(app, JOBS["deliver_outbox"], "test")


@contextmanager
def counted_statements():
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def plain_text(received) -> str:
    return received.message.get_body(("plain",)).get_content()


@time_machine.travel(NOW, tick=False)
def test_a_mail_is_written_unrendered_with_what_it_will_say(session, lab_scene):
    booking = lab_scene.booking(session, START, status="requested", purpose="粉末衍射")
    events.publish(session, "reservation.requested", booking)
    (mail,) = mails_to(session, lab_scene.lab_admin.email)
    assert (mail.subject, mail.text_body, mail.html_body) == (None, None, None)
    assert not mail.rendered and mail.status == MailStatus.PENDING
    assert mail.locale == "en" and mail.message_id.endswith("@jcg-booking.local>")
    snapshot = mail.params
    assert snapshot["name"] == "Wang Lab" and snapshot["link"] == "/approvals"
    assert snapshot["params"]["resource"] == {"zh_CN": "X射线衍射仪", "en": "X-ray diffractometer"}
    assert snapshot["params"]["customer"] == {
        "zh_CN": "晋材新材料有限公司",
        "en": "Jincai Materials",
    }
    assert snapshot["params"]["purpose"] == "粉末衍射"


@time_machine.travel(NOW, tick=False)
def test_mails_are_rendered_at_delivery_in_each_readers_language_and_kept(
    app, session, mail_to, lab_scene
):
    booking = lab_scene.booking(session, START, status="requested")
    events.publish(session, "reservation.requested", booking)
    booking.status = "approved"
    events.publish(session, "reservation.approved", booking)
    session.commit()
    assert not any(m.rendered for m in session.scalars(select(OutboxMail)))

    assert deliver(app).counts == {"sent": 2}

    session.expire_all()
    (to_admin,) = mails_to(session, lab_scene.lab_admin.email)
    (to_customer,) = mails_to(session, lab_scene.customer.email)
    assert to_admin.subject.startswith("New booking request: X-ray diffractometer")
    assert "Jincai Materials asks to book X-ray diffractometer" in to_admin.text_body
    assert to_customer.subject == "预约已批准：X射线衍射仪，2026年12月1日（周二）10:00"
    assert "李娜，您好：" in to_customer.text_body and "<table" in to_customer.html_body
    (received,) = mail_to.to(lab_scene.customer.email)
    assert received.message["Subject"] == to_customer.subject
    assert plain_text(received).replace("\r\n", "\n").strip() == to_customer.text_body.strip()


def test_a_mail_is_rendered_once_and_a_retry_sends_the_kept_texts(
    app, session, mail_to, lab_scene, monkeypatch
):
    calls = []
    real = notifications.render_outbox_mail

    def counting(mail):
        calls.append(mail.id)
        return real(mail)

    monkeypatch.setattr(notifications, "render_outbox_mail", counting)
    with time_machine.travel(NOW, tick=False):
        booking = lab_scene.booking(session, START)
        events.publish(session, "reservation.approved", booking)
        session.commit()
        mail_to.handler.refuse_next = "451 4.3.0 try again later"
        assert deliver(app).counts == {"retry": 1}
        (mail,) = mails_to(session, lab_scene.customer.email)
        session.refresh(mail)
        assert mail.rendered and "李娜，您好：" in mail.text_body
        kept = (mail.subject, mail.text_body, mail.html_body)
        # What the mail would say now differs: the kept texts are sent all the same.
        snapshot = {**mail.params, "name": "Someone Else"}
        session.execute(update(OutboxMail).where(OutboxMail.id == mail.id).values(params=snapshot))
        session.commit()
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        assert deliver(app).counts == {"sent": 1}
    assert calls == [mail.id]
    (received,) = mail_to.received
    assert "李娜，您好：" in plain_text(received) and "Someone Else" not in plain_text(received)
    session.expire_all()
    assert (mail.subject, mail.text_body, mail.html_body) == kept
    assert (mail.status, mail.attempts) == (MailStatus.SENT, 2)


def test_a_template_error_at_delivery_is_a_failed_attempt_that_is_retried(
    app, session, mail_to, lab_scene, monkeypatch
):
    real = notifications.render_outbox_mail

    def broken(mail):
        raise UndefinedError("'p' is undefined")

    with time_machine.travel(NOW, tick=False):
        booking = lab_scene.booking(session, START)
        events.publish(session, "reservation.approved", booking)
        session.commit()
        (mail,) = mails_to(session, lab_scene.customer.email)
        message_id = mail.message_id
        monkeypatch.setattr(notifications, "render_outbox_mail", broken)
        assert deliver(app).counts == {"retry": 1}
        assert mail_to.received == []
        session.expire_all()
        assert (mail.status, mail.attempts, mail.rendered) == (MailStatus.PENDING, 1, False)
        assert "rendering failed: UndefinedError" in mail.last_error
        assert mail.next_attempt_at == NOW + timedelta(minutes=mailer.RETRY_MINUTES[0])
        assert deliver(app).counts == {}  # not due yet
    monkeypatch.setattr(notifications, "render_outbox_mail", real)  # the template is mended
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        assert deliver(app).counts == {"sent": 1}
    (received,) = mail_to.received
    assert received.message["Message-ID"] == message_id
    session.expire_all()
    assert (mail.status, mail.attempts, mail.last_error) == (MailStatus.SENT, 2, None)


def test_a_mail_that_never_renders_fails_after_the_last_attempt_and_stays_readable(
    app, session, mail_to, lab_scene, monkeypatch
):
    def broken(mail):
        raise UndefinedError("'p' is undefined")

    monkeypatch.setattr(notifications, "render_outbox_mail", broken)
    when = NOW
    with time_machine.travel(when, tick=False):
        booking = lab_scene.booking(session, START)
        events.publish(session, "reservation.approved", booking)
        session.commit()
    for attempt in range(1, mailer.MAX_ATTEMPTS + 1):
        with time_machine.travel(when, tick=False):
            expected = "failed" if attempt == mailer.MAX_ATTEMPTS else "retry"
            assert deliver(app).counts == {expected: 1}
        when += timedelta(minutes=mailer.RETRY_MINUTES[attempt - 1])
    session.expire_all()
    (mail,) = mails_to(session, lab_scene.customer.email)
    assert (mail.status, mail.attempts) == (MailStatus.FAILED, mailer.MAX_ATTEMPTS)
    assert mail.params["name"] == "李娜" and mail.attachments  # nothing of it is lost
    assert mail_to.received == []


def test_without_a_mail_server_kept_mails_are_rendered_once(app, session, lab_scene, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", None)
    with time_machine.travel(NOW, tick=False):
        first = lab_scene.booking(session, START)
        events.publish(session, "reservation.approved", first)
        session.commit()
        assert deliver(app).counts == {"kept": 1}
        (mail,) = mails_to(session, lab_scene.customer.email)
        session.refresh(mail)
        assert mail.status == MailStatus.KEPT
        assert mail.subject == "预约已批准：X射线衍射仪，2026年12月1日（周二）10:00"
        assert mail.attachments[0].filename == "invite.ics"

        second = lab_scene.booking(session, START + timedelta(hours=3))
        events.publish(session, "reservation.approved", second)
        session.commit()
        real = notifications.render_outbox_mail

        def broken(mail):
            raise KeyError("p")

        monkeypatch.setattr(notifications, "render_outbox_mail", broken)
        assert deliver(app).counts == {"kept": 0}
        session.expire_all()
        broken = mails_to(session, lab_scene.customer.email)[1]
        assert broken.status == MailStatus.PENDING and "rendering failed" in broken.last_error
        monkeypatch.setattr(notifications, "render_outbox_mail", real)
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        assert deliver(app).counts == {"kept": 1}
    session.expire_all()
    assert broken.status == MailStatus.KEPT and broken.rendered and broken.last_error is None


def calendar(data: bytes):
    return Calendar.from_ical(data).walk("VEVENT")[0]


def test_the_invitation_is_the_booking_as_it_was_at_the_change(app, session, mail_to, lab_scene):
    with time_machine.travel(NOW, tick=False):
        booking = lab_scene.booking(session, START)
        events.publish(session, "reservation.approved", booking)
        (mail,) = mails_to(session, lab_scene.customer.email)
        (attachment,) = mail.attachments  # made with the change, not at delivery
        assert "method=REQUEST" in attachment.content_type
        at_change = calendar(attachment.data)
        assert at_change.decoded("DTSTART") == START
        # The booking moves on before the mailer runs: the approval mail still
        # carries the invitation of the approval.
        for name in ("start_at", "end_at", "busy_start", "busy_end"):
            setattr(booking, name, getattr(booking, name) + timedelta(days=1))
        booking.sequence += 1
        session.commit()
        assert deliver(app).counts == {"sent": 1}
    (received,) = mail_to.received
    (part,) = [p for p in received.message.walk() if p.get_content_type() == "text/calendar"]
    sent = calendar(part.get_payload(decode=True))
    assert sent.decoded("DTSTART") == START
    assert int(sent["SEQUENCE"]) == int(at_change["SEQUENCE"])


@time_machine.travel(NOW, tick=False)
def test_a_request_costs_the_same_statements_for_one_approver_as_for_five(session, lab_scene):
    """The lab's admins and their mail choices in one query, the names in
    one, one INSERT of inbox items and one of mails: four statements."""

    def announce_a_request(hours: int) -> list[str]:
        booking = lab_scene.booking(session, START + timedelta(hours=hours), status="requested")
        booking_id = booking.id
        session.commit()  # nothing of the world loaded but the booking and its resource
        booking = session.get(Reservation, booking_id)
        _ = booking.resource.provider_id
        with counted_statements() as seen:
            events.publish(session, "reservation.requested", booking)
        return seen

    alone = announce_a_request(0)
    admins = [create_user(session, lab_scene.provider, "admin") for _ in range(4)]
    quiet = admins[0]
    notifications.set_preferences(session, actor_of(session, quiet), {"request_received": False})
    many = announce_a_request(3)

    assert len(alone) == len(many) == 4, many
    assert count_rows(session, Notification, user_id=quiet.id) == 1
    assert mails_to(session, quiet.email) == []  # the preference, read in the same query
    for admin in admins[1:]:
        assert len(mails_to(session, admin.email)) == 1
    assert len(mails_to(session, lab_scene.lab_admin.email)) == 2


def test_the_same_request_announced_by_racing_transactions_is_told_once(app, session, lab_scene):
    with time_machine.travel(NOW, tick=False):
        admins = [lab_scene.lab_admin] + [
            create_user(session, lab_scene.provider, "admin") for _ in range(3)
        ]
        booking_id = lab_scene.booking(session, START, status="requested").id
        session.commit()
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def announce():
        try:
            with time_machine.travel(NOW, tick=False), app.app_context():
                own = db.session
                booking = own.get(Reservation, booking_id)
                own.commit()  # SQLite: no write lock held while waiting for the others
                barrier.wait()
                events.publish(own, "reservation.requested", booking)
                own.commit()
                own.remove()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=announce) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    session.expire_all()
    for admin in admins:
        assert count_rows(session, Notification, user_id=admin.id) == 1
        assert len(mails_to(session, admin.email)) == 1
