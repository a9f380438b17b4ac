"""The inbox, the unread count in the header, mail preferences, and the
outbox a platform admin reads."""

from __future__ import annotations

import re

import time_machine

from booking.models.notifications import NotificationKind
from booking.services import events, notifications
from tests.factories.accounts import PASSWORD, actor_of
from tests.factories.notifications import at, mails_to, notifications_of

START = at(2026, 12, 1, 2)
NOW = at(2026, 11, 20, 1)


def csrf_token(page: bytes) -> str:
    match = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        rb'name="csrf_token" value="([^"]+)"', page
    )
    assert match, "page has no CSRF token"
    return match.group(1).decode()


def sign_in(client, user) -> None:
    token = csrf_token(client.get("/login").data)
    answer = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 302


def approved_booking(session, scene):
    booking = scene.booking(session, START)
    events.publish(session, "reservation.approved", booking)
    session.commit()
    return booking


@time_machine.travel(NOW, tick=False)
def test_the_header_shows_the_unread_count_and_the_inbox_lists_them(client, session, lab_scene):
    booking = approved_booking(session, lab_scene)
    sign_in(client, lab_scene.customer)
    home = client.get("/").get_data(as_text=True)
    assert re.search(r'href="/notifications">消息 \(1 条未读\)</a>', home)

    inbox = client.get("/notifications")
    page = inbox.get_data(as_text=True)
    assert inbox.status_code == 200
    assert "预约已批准：X射线衍射仪，2026年12月1日（周二）10:00" in page
    assert "2026年11月20日（周五）09:00" in page

    (item,) = notifications_of(session, lab_scene.customer)
    assert item.link == f"/reservations/{booking.id}"
    item.link = "/no-such-page/1"  # a page the platform does not serve
    session.commit()
    opened = client.post(
        f"/notifications/{item.id}/open", data={"csrf_token": csrf_token(inbox.data)}
    )
    assert opened.status_code == 302
    assert opened.headers["Location"].endswith("/notifications")
    session.expire_all()
    assert notifications_of(session, lab_scene.customer)[0].read_at == NOW
    assert "条未读" not in client.get("/").get_data(as_text=True)


@time_machine.travel(NOW, tick=False)
def test_opening_a_request_leads_the_approver_to_the_approval_queue(client, session, lab_scene):
    booking = lab_scene.booking(session, START, status="requested")
    events.publish(session, "reservation.requested", booking)
    session.commit()
    sign_in(client, lab_scene.lab_admin)
    inbox = client.get("/notifications")
    assert "New booking request: X-ray diffractometer" in inbox.get_data(as_text=True)
    (item,) = notifications_of(session, lab_scene.lab_admin)
    opened = client.post(
        f"/notifications/{item.id}/open", data={"csrf_token": csrf_token(inbox.data)}
    )
    assert opened.headers["Location"].endswith("/approvals")


@time_machine.travel(NOW, tick=False)
def test_mark_all_read_and_someone_elses_notification_is_not_found(client, session, lab_scene):
    approved_booking(session, lab_scene)
    (item,) = notifications_of(session, lab_scene.customer)
    sign_in(client, lab_scene.lab_admin)
    token = csrf_token(client.get("/notifications").data)
    assert (
        client.post(f"/notifications/{item.id}/read", data={"csrf_token": token}).status_code == 404
    )
    client.post("/logout", data={"csrf_token": token})

    sign_in(client, lab_scene.customer)
    token = csrf_token(client.get("/notifications").data)
    done = client.post("/notifications/read-all", data={"csrf_token": token}, follow_redirects=True)
    assert "已将 1 条消息标为已读" in done.get_data(as_text=True)
    session.expire_all()
    assert notifications_of(session, lab_scene.customer)[0].read_at is not None


def test_the_inbox_needs_a_signed_in_user(client):
    answer = client.get("/notifications")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_preferences_are_chosen_on_their_page(client, session, lab_scene):
    lab_scene.customer.locale = "en"
    session.commit()
    sign_in(client, lab_scene.customer)
    page = client.get("/notifications/preferences")
    text = page.get_data(as_text=True)
    assert "Reminder before a booking starts" in text
    assert text.count('type="checkbox"') == len(NotificationKind)
    wanted = {k.value: "y" for k in NotificationKind if k != NotificationKind.REMINDER}
    saved = client.post(
        "/notifications/preferences",
        data={**wanted, "csrf_token": csrf_token(page.data)},
        follow_redirects=True,
    )
    assert "Your mail preferences are saved." in saved.get_data(as_text=True)
    chosen = notifications.get_preferences(session, actor_of(session, lab_scene.customer))
    assert chosen[NotificationKind.REMINDER] is False
    assert chosen[NotificationKind.APPROVED] is True


@time_machine.travel(NOW, tick=False)
def test_a_platform_admin_reads_the_outbox_others_may_not(
    client, session, lab_scene, platform_admin, monkeypatch, app
):
    monkeypatch.setitem(app.config, "SMTP_URL", None)
    approved_booking(session, lab_scene)
    (mail,) = mails_to(session, lab_scene.customer.email)

    sign_in(client, lab_scene.lab_admin)
    assert client.get("/outbox").status_code == 403
    assert "发件箱" not in client.get("/").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").data)})

    sign_in(client, platform_admin)
    assert 'href="/outbox"' in client.get("/").get_data(as_text=True)
    # A pending mail is not rendered yet: the pages show it as it will be.
    subject = "预约已批准：X射线衍射仪，2026年12月1日（周二）10:00"
    listing = client.get("/outbox").get_data(as_text=True)
    assert lab_scene.customer.email in listing and subject in listing
    assert "待发送" in listing
    assert subject not in client.get("/outbox?status=sent").get_data(as_text=True)

    one = client.get(f"/outbox/{mail.id}").get_data(as_text=True)
    assert (
        "李娜，您好：" in one and mail.message_id.replace("<", "&lt;").replace(">", "&gt;") in one
    )
    assert f"<h1>{subject}</h1>" in one and "尚未生成" in one
    html = client.get(f"/outbox/{mail.id}/html")
    assert html.status_code == 200
    assert html.headers["Content-Security-Policy"].startswith("sandbox")
    assert "X射线衍射仪" in html.get_data(as_text=True)
    session.expire_all()
    assert not mail.rendered  # reading it rendered nothing into the row
    attachment = mail.attachments[0]
    ics = client.get(f"/outbox/{mail.id}/attachments/{attachment.id}")
    assert ics.headers["Content-Type"].startswith("text/calendar")
    assert b"METHOD:REQUEST" in ics.data
    assert client.get(f"/outbox/{mail.id}/attachments/999999").status_code == 404
