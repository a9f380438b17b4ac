"""The mailer against a real SMTP server (aiosmtpd on 127.0.0.1): the right
recipients, the recipient's language, the .ics invitation; retries, failures,
the outbox kept without a server; SMTP_URL refused at start when malformed."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from icalendar import Calendar

from booking import create_app
from booking.jobs import JOBS, run_job
from booking.models.notifications import MailStatus, OutboxMail
from booking.services import events, mailer
from booking.services.notifications import set_preferences
from tests.factories.accounts import actor_of
from tests.factories.notifications import at, count_rows, mails_to

START = at(2026, 12, 1, 2)  # 10:00 in Shanghai
NOW = at(2026, 11, 20, 1)


def deliver(app):
    from booking.extensions import db

    # End the test's own transaction first: on SQLite every transaction takes
    # the write lock (BEGIN IMMEDIATE), even one that only read.
    db.session.commit()
    return run_job(app, JOBS["deliver_outbox"], "test")


def calendar_of(received) -> Calendar:
    parts = [p for p in received.message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, "one .ics attachment"
    return Calendar.from_ical(parts[0].get_payload(decode=True))


@time_machine.travel(NOW, tick=False)
def test_approved_and_request_mails_reach_the_right_people_in_their_language(
    app, session, mail_to, lab_scene
):
    scene = lab_scene  # lab admin reads English, the customer Chinese
    booking = scene.booking(session, START, status="requested", purpose="粉末衍射")
    events.publish(session, "reservation.requested", booking)
    booking.status = "approved"
    events.publish(session, "reservation.approved", booking)
    session.commit()

    run = deliver(app)
    assert run.status == "ok" and run.counts == {"sent": 2}

    to_admin = mail_to.to(scene.lab_admin.email)
    to_customer = mail_to.to(scene.customer.email)
    assert len(to_admin) == len(to_customer) == 1
    assert len(mail_to.received) == 2

    request = to_admin[0].message
    assert request["Subject"].startswith("New booking request: X-ray diffractometer")
    assert "Tue 1 Dec 2026, 10:00" in request["Subject"]
    assert (
        "Jincai Materials asks to book X-ray diffractometer"
        in request.get_body(("plain",)).get_content()
    )
    assert request["Content-Language"] == "en"

    approved = to_customer[0].message
    assert approved["Subject"] == "预约已批准：X射线衍射仪，2026年12月1日（周二）10:00"
    text = approved.get_body(("plain",)).get_content()
    assert "李娜，您好：" in text and "已获批准" in text
    assert "http://testserver/reservations/" in text
    html = approved.get_body(("html",)).get_content()
    assert "<table" in html and "X射线衍射仪" in html
    assert to_customer[0].mail_from == "noreply@jcg-booking.local"

    invite = calendar_of(to_customer[0])
    assert invite["METHOD"] == "REQUEST"
    event = invite.walk("VEVENT")[0]
    assert str(event["UID"]) == f"reservation-{booking.id}@testserver"
    assert event.decoded("DTSTART") == START
    assert "mailto:" + scene.customer.email in str(event["ATTENDEE"])
    assert not [p for p in request.walk() if p.get_content_type() == "text/calendar"]

    session.expire_all()
    mails = mails_to(session, scene.customer.email)
    assert [m.status for m in mails] == [MailStatus.SENT]
    assert mails[0].sent_at == NOW and mails[0].attempts == 1
    assert approved["Message-ID"] == mails[0].message_id


@time_machine.travel(NOW, tick=False)
def test_a_cancelled_booking_sends_method_cancel_with_the_same_uid(
    app, session, mail_to, lab_scene
):
    booking = lab_scene.booking(session, START, status="approved")
    events.publish(session, "reservation.approved", booking)
    booking.status = "cancelled"
    booking.sequence += 1
    events.publish(session, "reservation.cancelled", booking, reason="实验计划调整")
    session.commit()
    deliver(app)

    received = mail_to.to(lab_scene.customer.email)
    assert len(received) == 2
    request, cancel = (calendar_of(r) for r in received)
    assert request["METHOD"] == "REQUEST" and cancel["METHOD"] == "CANCEL"
    first, second = request.walk("VEVENT")[0], cancel.walk("VEVENT")[0]
    assert first["UID"] == second["UID"]
    assert second["STATUS"] == "CANCELLED"
    assert int(second["SEQUENCE"]) > int(first["SEQUENCE"])
    assert "实验计划调整" in received[1].message.get_body(("plain",)).get_content()


def move(booking, hours: int) -> None:
    for name in ("start_at", "end_at", "busy_start", "busy_end"):
        setattr(booking, name, getattr(booking, name) + timedelta(hours=hours))
    booking.sequence += 1


@time_machine.travel(NOW, tick=False)
def test_a_moved_booking_sends_an_updated_invitation(app, session, mail_to, lab_scene):
    booking = lab_scene.booking(session, START)
    events.publish(session, "reservation.approved", booking)
    move(booking, 24)
    events.publish(session, "reservation.rescheduled", booking, previous_start=START)
    session.commit()
    deliver(app)
    first, moved = mail_to.to(lab_scene.customer.email)
    assert moved.message["Subject"] == "预约已改期：X射线衍射仪，改为 2026年12月2日（周三）10:00"
    assert (
        "已从 2026年12月1日（周二）10:00 改到" in moved.message.get_body(("plain",)).get_content()
    )
    before, after = calendar_of(first).walk("VEVENT")[0], calendar_of(moved).walk("VEVENT")[0]
    assert calendar_of(moved)["METHOD"] == "REQUEST"
    assert before["UID"] == after["UID"]
    assert after.decoded("DTSTART") == START + timedelta(hours=24)
    assert int(after["SEQUENCE"]) > int(before["SEQUENCE"])


@time_machine.travel(NOW, tick=False)
def test_cancelling_a_request_never_approved_sends_no_calendar_cancel(
    app, session, mail_to, lab_scene
):
    booking = lab_scene.booking(session, START, status="cancelled")
    events.publish(session, "reservation.cancelled", booking)
    session.commit()
    deliver(app)
    (received,) = mail_to.to(lab_scene.customer.email)
    assert not [p for p in received.message.walk() if p.get_content_type() == "text/calendar"]


@time_machine.travel(NOW, tick=False)
def test_a_user_who_wants_no_mail_of_a_kind_gets_none_but_keeps_the_inbox_item(
    app, session, mail_to, lab_scene
):
    set_preferences(session, actor_of(session, lab_scene.customer), {"approved": False})
    booking = lab_scene.booking(session, START)
    events.publish(session, "reservation.approved", booking)
    session.commit()
    deliver(app)
    assert mail_to.received == []
    assert count_rows(session, OutboxMail) == 0


@time_machine.travel(NOW, tick=False)
def test_delivering_twice_sends_each_mail_once(app, session, mail_to, lab_scene):
    booking = lab_scene.booking(session, START)
    events.publish(session, "reservation.approved", booking)
    session.commit()
    assert deliver(app).counts == {"sent": 1}
    assert deliver(app).counts == {}
    assert len(mail_to.received) == 1


def test_a_passing_refusal_is_retried_later_and_a_final_one_fails(app, session, mail_to, lab_scene):
    with time_machine.travel(NOW, tick=False):
        booking = lab_scene.booking(session, START)
        events.publish(session, "reservation.approved", booking)
        session.commit()
        mail_to.handler.refuse_next = "451 4.3.0 try again later"
        assert deliver(app).counts == {"retry": 1}
        (mail,) = mails_to(session, lab_scene.customer.email)
        assert mail.status == MailStatus.PENDING and mail.attempts == 1
        assert mail.next_attempt_at == NOW + timedelta(minutes=1)
        assert "451" in mail.last_error
        assert deliver(app).counts == {}  # not due yet
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        assert deliver(app).counts == {"sent": 1}
    assert len(mail_to.received) == 1

    with time_machine.travel(NOW, tick=False):
        booking.status = "cancelled"
        events.publish(session, "reservation.cancelled", booking)
        session.commit()
        mail_to.handler.refuse_next = "550 5.1.1 no such user"
        assert deliver(app).counts == {"failed": 1}
        session.expire_all()
        failed = mails_to(session, lab_scene.customer.email)[-1]
        assert failed.status == MailStatus.FAILED and "550" in failed.last_error
        assert deliver(app).counts == {}


@time_machine.travel(NOW, tick=False)
def test_an_unreachable_server_keeps_mails_pending(app, session, monkeypatch, lab_scene):
    from tests.factories.notifications import free_port

    monkeypatch.setitem(app.config, "SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    for hours in (0, 3):
        booking = lab_scene.booking(session, START + timedelta(hours=hours))
        events.publish(session, "reservation.approved", booking)
    session.commit()
    run = deliver(app)
    assert run.counts == {"retry": 1}  # the second is left for later: the server is down
    session.expire_all()
    statuses = sorted((m.status, m.attempts) for m in mails_to(session, lab_scene.customer.email))
    assert statuses == [(MailStatus.PENDING, 0), (MailStatus.PENDING, 1)]


@time_machine.travel(NOW, tick=False)
def test_without_smtp_url_mails_are_kept_in_the_outbox(app, session, monkeypatch, lab_scene):
    monkeypatch.setitem(app.config, "SMTP_URL", None)
    booking = lab_scene.booking(session, START)
    events.publish(session, "reservation.approved", booking)
    session.commit()
    assert deliver(app).counts == {"kept": 1}
    (mail,) = mails_to(session, lab_scene.customer.email)
    session.refresh(mail)
    assert mail.status == MailStatus.KEPT and mail.sent_at is None
    assert mail.attachments[0].filename == "invite.ics"
    assert deliver(app).counts == {"kept": 0}


def test_a_mail_sent_again_after_a_crash_carries_the_same_message_id(
    app, session, mail_to, lab_scene
):
    """A crash between sending and marking sent: the commit never happens, the
    mail is sent again later, recognisable by its Message-ID."""
    with time_machine.travel(NOW, tick=False):
        booking = lab_scene.booking(session, START)
        events.publish(session, "reservation.approved", booking)
        session.commit()
        (mail,) = mails_to(session, lab_scene.customer.email)
        transport = mailer.SmtpTransport(mailer.smtp_settings(mail_to.url))
        try:
            outcome = mailer.deliver_next(session, transport, "noreply@jcg-booking.local", NOW)
        finally:
            transport.close()
        assert outcome.status == "sent"
        session.rollback()  # the process died before its commit
        assert deliver(app).counts == {"sent": 1}
    first, second = mail_to.received
    assert first.message["Message-ID"] == second.message["Message-ID"] == mail.message_id


# --- SMTP_URL ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("smtp://mail.example.cn", ("mail.example.cn", 25, "plain", None, None)),
        (
            "smtps://u%40x.cn:p%3Ass@mail.example.cn",
            ("mail.example.cn", 465, "ssl", "u@x.cn", "p:ss"),
        ),
        ("smtp+starttls://bot:pw@10.0.0.5:2525", ("10.0.0.5", 2525, "starttls", "bot", "pw")),
    ],
)
def test_smtp_urls_are_read(url, expected):
    s = mailer.smtp_settings(url)
    assert (s.host, s.port, s.mode, s.username, s.password) == expected


def test_no_smtp_url_means_keep_the_outbox():
    assert mailer.smtp_settings(None) is None and mailer.smtp_settings("") is None


@pytest.mark.parametrize(
    "url",
    ["mailserver:25", "http://mail.example.cn", "smtp://host:port", "smtp://:25", "smtp://h:99999"],
)
def test_a_malformed_smtp_url_stops_the_start_with_a_clear_message(monkeypatch, tmp_path, url):
    monkeypatch.setenv("BOOKING_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.sqlite3")
    monkeypatch.setenv("SMTP_URL", url)
    with pytest.raises(RuntimeError, match=r"SMTP_URL=.*(not valid|port)"):
        create_app()


def test_the_password_of_a_refused_url_is_not_repeated():
    with pytest.raises(RuntimeError) as refused:
        mailer.check_smtp_url("smtp://bot:secret@host:abc")
    assert "secret" not in str(refused.value)


def test_a_mail_held_for_sending_by_a_mailer_that_died_is_sent_after_the_hold(
    app, session, mail_to, lab_scene
):
    """SQLite's way: the claim holds the mail and commits before the send; a
    mailer that dies before recording leaves the mail to be sent after the hold."""
    with time_machine.travel(NOW, tick=False):
        booking = lab_scene.booking(session, START)
        events.publish(session, "reservation.approved", booking)
        session.commit()
        claimed = mailer.claim_next(
            session, NOW, "noreply@jcg-booking.local", hold_minutes=mailer.HOLD_MINUTES
        )
        session.commit()
        transport = mailer.SmtpTransport(mailer.smtp_settings(mail_to.url))
        try:
            assert mailer.send(transport, claimed).error is None
        finally:
            transport.close()
        # ... and the mailer dies here, before recording the send.
        assert deliver(app).counts == {}  # held: no second mailer takes it
    with time_machine.travel(NOW + timedelta(minutes=mailer.HOLD_MINUTES + 1), tick=False):
        assert deliver(app).counts == {"sent": 1}
    first, second = mail_to.received
    assert first.message["Message-ID"] == second.message["Message-ID"]
    (mail,) = mails_to(session, lab_scene.customer.email)
    assert (mail.status, mail.attempts) == (MailStatus.SENT, 2)
