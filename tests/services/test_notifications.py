"""Who hears about what: the subscribers of the domain events write one inbox
item per person concerned and, where wanted, one mail in their language."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import time_machine
from sqlalchemy import select

from booking.models.audit import AuditEvent
from booking.models.catalog import ResourceApprover
from booking.models.notifications import (
    Notification,
    NotificationKind,
    OutboxMail,
)
from booking.models.reservations import WaitlistEntry
from booking.services import events, notifications
from tests.factories.accounts import actor_of, create_user
from tests.factories.notifications import (
    at,
    count_rows,
    mails_to,
    notifications_of,
    rendered_mails_to,
)

START = at(2026, 12, 1, 2)  # Tuesday 10:00 in Shanghai
NOW = at(2026, 11, 20, 1)


def kinds(session, user) -> list[str]:
    return [n.kind.value for n in notifications_of(session, user)]


@time_machine.travel(NOW, tick=False)
def test_a_request_goes_to_every_admin_of_the_lab_and_to_no_one_else(session, lab_scene):
    second_admin = create_user(session, lab_scene.provider, "admin")
    lab_member = create_user(session, lab_scene.provider, "member")
    booking = lab_scene.booking(session, START, status="requested")
    events.publish(session, "reservation.requested", booking)

    for admin in (lab_scene.lab_admin, second_admin):
        assert kinds(session, admin) == ["request_received"]
    assert kinds(session, lab_member) == [] and kinds(session, lab_scene.customer) == []
    assert count_rows(session, OutboxMail) == 2


@time_machine.travel(NOW, tick=False)
def test_a_resource_with_named_approvers_asks_only_them(session, lab_scene):
    deputy = create_user(session, lab_scene.provider, "member", locale="en")
    session.add(ResourceApprover(resource_id=lab_scene.resource.id, user_id=deputy.id))
    session.flush()
    booking = lab_scene.booking(session, START, status="requested")
    events.publish(session, "reservation.requested", booking)
    assert kinds(session, deputy) == ["request_received"]
    assert kinds(session, lab_scene.lab_admin) == []


@time_machine.travel(NOW, tick=False)
def test_each_step_of_a_booking_reaches_its_user_once(session, lab_scene):
    booking = lab_scene.booking(session, START, status="approved")
    for name in ("approved", "rejected", "expired", "cancelled", "completed"):
        events.publish(session, f"reservation.{name}", booking)
        events.publish(session, f"reservation.{name}", booking)  # the same news again
    assert kinds(session, lab_scene.customer) == [
        "approved",
        "rejected",
        "expired",
        "cancelled",
        "completed",
    ]
    assert len(mails_to(session, lab_scene.customer.email)) == 5
    assert kinds(session, lab_scene.lab_admin) == []


@time_machine.travel(NOW, tick=False)
def test_a_booking_approved_again_after_a_reschedule_is_news_again(session, lab_scene):
    booking = lab_scene.booking(session, START)
    events.publish(session, "reservation.approved", booking)
    for name in ("start_at", "end_at", "busy_start", "busy_end"):
        setattr(booking, name, getattr(booking, name) + timedelta(days=1))
    booking.sequence += 1
    events.publish(session, "reservation.approved", booking)
    assert kinds(session, lab_scene.customer) == ["approved", "approved"]


@time_machine.travel(NOW, tick=False)
def test_a_move_that_needs_approval_again_asks_the_approvers_and_tells_the_user(session, lab_scene):
    booking = lab_scene.booking(session, START, status="requested")
    for name in ("start_at", "end_at", "busy_start", "busy_end"):
        setattr(booking, name, getattr(booking, name) + timedelta(hours=3))
    booking.sequence += 1
    events.publish(session, "reservation.rescheduled", booking, previous_start=START)
    assert kinds(session, lab_scene.lab_admin) == ["request_received"]
    (item,) = notifications_of(session, lab_scene.customer)
    _subject, body = notifications.render_notification(item, "en")
    assert body.endswith("The lab has to approve the new time.")
    (mail,) = rendered_mails_to(session, lab_scene.customer.email)
    assert mail.attachments == []  # it was never in the user's calendar


@time_machine.travel(NOW, tick=False)
def test_an_inactive_user_is_not_notified(session, lab_scene):
    lab_scene.customer.active = False
    booking = lab_scene.booking(session, START)
    events.publish(session, "reservation.approved", booking)
    assert count_rows(session, Notification) == 0


@time_machine.travel(NOW, tick=False)
def test_mail_preferences_leave_the_inbox_untouched_and_are_audited(session, lab_scene):
    actor = actor_of(session, lab_scene.customer)
    chosen = notifications.set_preferences(session, actor, {"approved": False})
    assert chosen[NotificationKind.APPROVED] is False
    assert chosen[NotificationKind.REMINDER] is True
    booking = lab_scene.booking(session, START)
    events.publish(session, "reservation.approved", booking)
    events.publish(session, "reservation.cancelled", booking)
    assert kinds(session, lab_scene.customer) == ["approved", "cancelled"]
    assert [m.kind for m in mails_to(session, lab_scene.customer.email)] == ["cancelled"]
    trail = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "notification.preferences")
    ).all()
    assert len(trail) == 1 and trail[0].after["approved"] is False
    notifications.set_preferences(session, actor, {"approved": False})  # no change, no event
    assert count_rows(session, AuditEvent, action="notification.preferences") == 1


@time_machine.travel(NOW, tick=False)
def test_the_inbox_speaks_the_readers_language_at_read_time(app, session, lab_scene):
    booking = lab_scene.booking(session, START, status="rejected", reason="设备检修")
    events.publish(session, "reservation.rejected", booking)
    (item,) = notifications_of(session, lab_scene.customer)
    subject_zh, body_zh = notifications.render_notification(item, "zh_CN")
    subject_en, _body_en = notifications.render_notification(item, "en")
    assert subject_zh == "预约被拒绝：X射线衍射仪，2026年12月1日（周二）10:00"
    assert body_zh.endswith("未获批准，原因：设备检修")
    assert subject_en == "Booking rejected: X-ray diffractometer, Tue 1 Dec 2026, 10:00"
    assert item.link == f"/reservations/{booking.id}"


@time_machine.travel(NOW, tick=False)
def test_a_completed_booking_tells_the_cost_and_the_voucher_share(session, lab_scene):
    lab_scene.customer.locale = "en"
    booking = lab_scene.booking(
        session,
        START,
        status="completed",
        final_cost=Decimal("1200.00"),
        voucher_amount=Decimal("600.00"),
        customer_amount=Decimal("600.00"),
    )
    events.publish(session, "reservation.completed", booking)
    (mail,) = rendered_mails_to(session, lab_scene.customer.email)
    assert "cost 1200.00 CNY, paid by voucher 600.00 CNY, to pay by you 600.00 CNY" in (
        mail.text_body
    )
    assert "Paid by voucher (CNY): 600.00" in mail.text_body


@time_machine.travel(NOW, tick=False)
def test_a_waiting_list_offer_reaches_the_one_waiting(session, lab_scene):
    waiting = create_user(session, lab_scene.customer_org, locale="en")
    entry = WaitlistEntry(
        resource_id=lab_scene.resource.id,
        customer_org_id=lab_scene.customer_org.id,
        user_id=waiting.id,
        start_at=START,
        end_at=START + timedelta(hours=2),
        status="offered",
        created_at=NOW,
        offered_at=NOW,
        offer_expires_at=NOW + timedelta(hours=4),
    )
    session.add(entry)
    session.flush()
    events.publish(session, "reservation.waitlist_offered", entry)
    events.publish(session, "reservation.waitlist_offered", entry)
    (item,) = notifications_of(session, waiting)
    assert item.kind == NotificationKind.WAITLIST_OFFERED
    (mail,) = rendered_mails_to(session, waiting.email)
    assert "Accept it before Fri 20 Nov 2026, 13:00" in mail.text_body


@time_machine.travel(NOW, tick=False)
def test_an_expiring_voucher_warns_its_holders_admins(session, lab_scene):
    holder_admin = create_user(session, lab_scene.customer_org, "admin", locale="en")
    voucher = SimpleNamespace(
        id=7,
        number="140100-2026-000007",
        holder_org_id=lab_scene.customer_org.id,
        valid_until=at(2026, 12, 31, 15, 59, 59),  # 23:59:59 on 31 December in Shanghai
    )
    events.publish(session, "voucher.expiring", voucher, balance=Decimal("3500.00"))
    events.publish(session, "voucher.expiring", voucher, balance=Decimal("3500.00"))
    assert kinds(session, holder_admin) == ["voucher_expiring"]
    assert kinds(session, lab_scene.customer) == []  # a member, not an admin
    (mail,) = rendered_mails_to(session, holder_admin.email)
    assert mail.subject == "Innovation voucher 140100-2026-000007 expires on 31 Dec 2026"
    assert "Not used yet (CNY): 3500.00" in mail.text_body


@time_machine.travel(NOW, tick=False)
def test_an_audited_claim_reaches_its_filer(session, lab_scene):
    filer = lab_scene.lab_admin
    claim = SimpleNamespace(
        id=3,
        number="C-2026-0003",
        filed_by_id=filer.id,
        status="audited",
        audited_at=NOW,
        approved_amount=Decimal("800.00"),
        lines=[SimpleNamespace(status="approved"), SimpleNamespace(status="rejected")],
    )
    events.publish(session, "claim.audited", claim)
    (item,) = notifications_of(session, filer)
    subject, _body = notifications.render_notification(item, "zh_CN")
    assert subject == "兑付申请 C-2026-0003 审核结果：部分通过"
    (mail,) = rendered_mails_to(session, filer.email)
    assert mail.subject == "Redemption claim C-2026-0003 audited: partly approved"


def test_nothing_is_announced_for_a_change_that_rolls_back(app, session, lab_scene):
    booking = lab_scene.booking(session, START)
    session.commit()
    events.publish(session, "reservation.approved", booking)
    session.rollback()
    assert count_rows(session, Notification) == 0 and count_rows(session, OutboxMail) == 0
