"""The notifications API: the caller's inbox in the caller's language, marking
read, mail preferences; nobody sees anyone else's notifications."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from booking.models.audit import AuditEvent
from booking.services import events
from tests.factories.accounts import create_user
from tests.factories.notifications import at, count_rows

START = at(2026, 12, 1, 2)
NOW = at(2026, 11, 20, 1)


def two_news(session, scene):
    first = scene.booking(session, START)
    events.publish(session, "reservation.approved", first)
    second = scene.booking(session, START + timedelta(days=1), status="cancelled")
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        events.publish(session, "reservation.cancelled", second)
    session.commit()
    return first, second


@time_machine.travel(NOW, tick=False)
def test_the_inbox_is_the_callers_newest_first_in_their_language(
    client, session, lab_scene, auth_headers
):
    first, _second = two_news(session, lab_scene)
    headers = auth_headers(lab_scene.customer, "en")
    answer = client.get("/api/v1/notifications", headers=headers)
    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["total"], body["unread"], body["page"], body["per_page"]) == (2, 2, 1, 50)
    cancelled, approved = body["items"]
    assert cancelled["kind"] == "cancelled" and approved["kind"] == "approved"
    assert approved["subject"] == "Booking approved: X-ray diffractometer, Tue 1 Dec 2026, 10:00"
    assert approved["link"] == f"/reservations/{first.id}"
    assert (approved["target_type"], approved["target_id"]) == ("reservations", first.id)
    assert approved["read"] is False and approved["read_at"] is None
    assert approved["created_at"] == "2026-11-20T09:00:00+08:00"

    zh = client.get("/api/v1/notifications", headers={**headers, "Accept-Language": "zh-CN"})
    assert (
        zh.get_json()["items"][1]["subject"]
        == "预约已批准：X射线衍射仪，2026年12月1日（周二）10:00"
    )

    admin_headers = auth_headers(lab_scene.lab_admin)
    assert client.get("/api/v1/notifications", headers=admin_headers).get_json()["total"] == 0


@time_machine.travel(NOW, tick=False)
def test_marking_read_once_and_for_all(client, session, lab_scene, auth_headers):
    two_news(session, lab_scene)
    headers = auth_headers(lab_scene.customer)
    items = client.get("/api/v1/notifications", headers=headers).get_json()["items"]
    answer = client.post(f"/api/v1/notifications/{items[0]['id']}/read", headers=headers)
    assert answer.status_code == 200
    assert answer.get_json()["read"] is True
    assert answer.get_json()["read_at"] == "2026-11-20T09:00:00+08:00"
    again = client.post(f"/api/v1/notifications/{items[0]['id']}/read", headers=headers)
    assert again.get_json()["read_at"] == answer.get_json()["read_at"]

    unread = client.get("/api/v1/notifications?unread=true", headers=headers).get_json()
    assert (unread["total"], unread["unread"]) == (1, 1)
    marked = client.post("/api/v1/notifications/read-all", headers=headers)
    assert marked.get_json() == {"marked": 1}
    assert client.get("/api/v1/notifications", headers=headers).get_json()["unread"] == 0


@time_machine.travel(NOW, tick=False)
def test_no_one_reads_or_marks_another_users_notification(
    client, session, lab_scene, auth_headers, platform_admin
):
    two_news(session, lab_scene)
    items = client.get(
        "/api/v1/notifications", headers=auth_headers(lab_scene.customer)
    ).get_json()["items"]
    colleague = create_user(session, lab_scene.customer_org, "admin")
    for intruder in (colleague, platform_admin):
        answer = client.post(
            f"/api/v1/notifications/{items[0]['id']}/read", headers=auth_headers(intruder)
        )
        assert answer.status_code == 404
        assert answer.get_json()["error"]["code"] == "not_found"
    assert (
        client.post(
            "/api/v1/notifications/999999/read", headers=auth_headers(colleague)
        ).status_code
        == 404
    )
    assert client.get("/api/v1/notifications").status_code == 401
    session.expire_all()
    assert count_rows(session, AuditEvent, action="notification.read") == 0


def test_mail_preferences_are_read_and_changed_kind_by_kind(
    client, session, lab_scene, auth_headers
):
    headers = auth_headers(lab_scene.customer)
    answer = client.get("/api/v1/notifications/preferences", headers=headers)
    assert answer.status_code == 200
    email = answer.get_json()["email"]
    assert email["reminder"] is True and email["approved"] is True
    assert email["no_show"] is True and len(email) == 12

    changed = client.put(
        "/api/v1/notifications/preferences",
        json={"email": {"reminder": False}},
        headers=headers,
    )
    assert changed.status_code == 200
    email = changed.get_json()["email"]
    assert email["reminder"] is False and email["approved"] is True
    again = client.get("/api/v1/notifications/preferences", headers=headers).get_json()
    assert again["email"]["reminder"] is False
    assert count_rows(session, AuditEvent, action="notification.preferences") == 1


def test_bad_preferences_are_refused_and_change_nothing(client, session, lab_scene, auth_headers):
    headers = {**auth_headers(lab_scene.customer), "Accept-Language": "en"}
    for body in (
        {"email": {"reminders": False}},
        {"email": {"reminder": "sometimes"}},
        {"email": []},
        {},
    ):
        answer = client.put("/api/v1/notifications/preferences", json=body, headers=headers)
        assert answer.status_code == 422, body
        assert answer.get_json()["error"]["code"] == "validation_failed"
    answer = client.get("/api/v1/notifications/preferences", headers=headers).get_json()
    assert all(answer["email"].values())
    assert count_rows(session, AuditEvent, action="notification.preferences") == 0


def test_the_openapi_document_lists_the_notification_paths(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"get"} <= set(paths["/api/v1/notifications"])
    assert "post" in paths["/api/v1/notifications/{notification_id}/read"]
    assert {"get", "put"} <= set(paths["/api/v1/notifications/preferences"])
