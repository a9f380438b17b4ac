"""A booking recorded as a no-show, by the lab or by the scheduler, tells
its customer once: in the inbox and by mail in their language, with the
no-show fee where the price list has one, and as the mail preferences say."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from booking.models.notifications import Notification, NotificationKind, OutboxMail
from booking.services import notifications
from booking.services import reservations as service
from tests.factories.accounts import actor_of
from tests.factories.notifications import (
    at,
    count_rows,
    notifications_of,
    rendered_mails_to,
)

START = at(2026, 12, 1, 2)  # Tuesday 10:00 in Shanghai
AFTER = START + timedelta(hours=1)


def no_show_items(session, user) -> list[Notification]:
    return [n for n in notifications_of(session, user) if n.kind == NotificationKind.NO_SHOW]


@time_machine.travel(AFTER, tick=False)
def test_the_lab_marking_a_no_show_tells_the_customer_in_chinese_with_the_fee(session, lab_scene):
    booking = lab_scene.booking(session, START, price_snapshot={"no_show_fee": "150.00"})
    lab = actor_of(session, lab_scene.lab_admin)

    service.mark_no_show(session, lab, booking.id)

    (item,) = no_show_items(session, lab_scene.customer)
    assert item.link == f"/reservations/{booking.id}"
    subject, body = notifications.render_notification(item, "zh_CN")
    assert subject == "预约被记为爽约：X射线衍射仪，2026年12月1日（周二）10:00"
    assert "无人签到，已被记为爽约" in body
    (mail,) = [
        m for m in rendered_mails_to(session, lab_scene.customer.email) if m.kind == "no_show"
    ]
    assert mail.subject == subject
    assert "爽约费（元）: 150.00" in mail.text_body
    assert "实验室按其价目表收取爽约费" in mail.text_body
    assert "150.00" in mail.html_body
    # The lab admin who marked it hears nothing of it.
    assert no_show_items(session, lab_scene.lab_admin) == []


@time_machine.travel(START + timedelta(hours=3), tick=False)
def test_the_scheduler_marking_no_shows_tells_each_customer_once_in_english(session, lab_scene):
    lab_scene.customer.locale = "en"
    booking = lab_scene.booking(session, START)

    assert service.mark_no_shows(session, START + timedelta(hours=3)) == 1
    assert service.mark_no_shows(session, START + timedelta(hours=3)) == 0  # run again

    assert booking.status == "no_show"
    (item,) = no_show_items(session, lab_scene.customer)
    subject, _ = notifications.render_notification(item, "en")
    assert subject == "Recorded as a no-show: X-ray diffractometer, Tue 1 Dec 2026, 10:00"
    (mail,) = rendered_mails_to(session, lab_scene.customer.email)
    assert mail.kind == "no_show"
    assert "Nobody checked in to your booking of X-ray diffractometer" in mail.text_body
    # No fee in the price list: none shown, and the mail says nothing was charged.
    assert "No-show fee" not in mail.text_body
    assert "Nothing was charged" in mail.text_body


@time_machine.travel(AFTER, tick=False)
def test_a_customer_who_wants_no_no_show_mail_still_sees_it_in_the_inbox(session, lab_scene):
    customer = actor_of(session, lab_scene.customer)
    chosen = notifications.set_preferences(session, customer, {"no_show": False})
    assert chosen[NotificationKind.NO_SHOW] is False
    assert NotificationKind.NO_SHOW in notifications.KIND_LABELS
    booking = lab_scene.booking(session, START)

    service.mark_no_show(session, actor_of(session, lab_scene.lab_admin), booking.id)

    assert len(no_show_items(session, lab_scene.customer)) == 1
    assert count_rows(session, OutboxMail, recipient=lab_scene.customer.email) == 0
