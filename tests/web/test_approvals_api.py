"""The approvals API: the queue, bulk decisions, a resource's approvers."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.models.audit import AuditEvent
from booking.models.reservations import Reservation
from tests.factories.accounts import create_user

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # a Tuesday


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(booking_world, session):
    w = booking_world()
    session.commit()
    return w


def book(client, world, headers, day: int, **extra) -> int:
    """A request made through the reservation API."""
    body = {
        "resource_id": world.resource.id,
        "start": f"2026-12-{day:02d}T10:00:00+08:00",
        "end": f"2026-12-{day:02d}T12:00:00+08:00",
        "purpose": "SEM 表征",
        **extra,
    }
    answer = client.post("/api/v1/reservations", json=body, headers=headers)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def status_of(session, reservation_id: int) -> str:
    session.expire_all()
    return session.get(Reservation, reservation_id).status.value


def test_queue_answers_the_labs_requests_oldest_first(client, world, auth_headers, frozen):
    customer = auth_headers(world.customer_user)
    later = book(client, world, customer, 3)
    frozen.shift(timedelta(minutes=1))
    earlier = book(client, world, customer, 2)
    answer = client.get("/api/v1/approvals", headers=auth_headers(world.lab_admin))
    assert answer.status_code == 200, answer.get_json()
    page = answer.get_json()
    assert (page["total"], page["page"], page["per_page"]) == (2, 1, 50)
    assert [i["id"] for i in page["items"]] == [later, earlier]
    item = page["items"][0]
    assert item["customer_org"] == {"id": world.customer.id, "name": "太原某材料公司"}
    assert item["user"]["id"] == world.customer_user.id
    assert item["resource"]["id"] == world.resource.id
    assert item["purpose"] == "SEM 表征"
    assert item["estimated_cost"] == "400.00"
    assert item["with_operator"] is False
    assert item["voucher"] is None and item["voucher_id"] is None
    assert item["start"] == "2026-12-03T10:00:00+08:00"
    assert item["status"] == "requested"
    assert item["decide_by"].endswith("+08:00")


def test_queue_filters_by_resource_and_time(client, world, auth_headers):
    customer = auth_headers(world.customer_user)
    book(client, world, customer, 2)
    wanted = book(client, world, customer, 4)
    lab = auth_headers(world.lab_admin)
    answer = client.get(
        "/api/v1/approvals",
        query_string={
            "resource_id": world.resource.id,
            "from": "2026-12-03T00:00:00",
            "to": "2026-12-05T00:00:00",
        },
        headers=lab,
    )
    assert [i["id"] for i in answer.get_json()["items"]] == [wanted]
    bad = client.get(
        "/api/v1/approvals", query_string={"from": "2026-12-05", "to": "2026-12-03"}, headers=lab
    )
    assert bad.status_code == 422


def test_other_labs_requests_are_absent_and_not_found(
    client, world, booking_world, session, auth_headers
):
    theirs = booking_world()
    session.commit()
    ours_id = book(client, world, auth_headers(world.customer_user), 2)
    their_id = book(client, theirs, auth_headers(theirs.customer_user), 2)
    lab = auth_headers(world.lab_admin)
    assert [i["id"] for i in client.get("/api/v1/approvals", headers=lab).get_json()["items"]] == [
        ours_id
    ]
    answer = client.post("/api/v1/approvals/decide", json={"approve": [their_id]}, headers=lab)
    assert answer.status_code == 200
    [result] = answer.get_json()["results"]
    assert result["outcome"] == "refused"
    assert result["error"]["code"] == "not_found"
    assert result["status"] is None
    assert status_of(session, their_id) == "requested"
    # The single-request endpoint says the same.
    single = client.post(f"/api/v1/reservations/{their_id}/approve", headers=lab)
    assert single.status_code == 404


def test_customers_are_refused_the_queue(client, world, auth_headers):
    answer = client.get("/api/v1/approvals", headers=auth_headers(world.customer_user))
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "forbidden"
    assert client.get("/api/v1/approvals").status_code == 401


def test_bulk_approve_and_reject_in_one_request(client, world, session, auth_headers):
    customer = auth_headers(world.customer_user)
    a, b, c = (book(client, world, customer, day) for day in (2, 3, 4))
    answer = client.post(
        "/api/v1/approvals/decide",
        json={"approve": [a, c], "reject": [{"id": b, "reason": "样品不符合要求"}]},
        headers=auth_headers(world.lab_admin),
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["approved"], body["rejected"], body["refused"]) == (2, 1, 0)
    assert [(r["id"], r["outcome"], r["status"]) for r in body["results"]] == [
        (a, "approved", "approved"),
        (b, "rejected", "rejected"),
        (c, "approved", "approved"),
    ]
    assert [status_of(session, i) for i in (a, b, c)] == ["approved", "rejected", "approved"]
    assert session.get(Reservation, b).reason == "样品不符合要求"
    actions = [e.action for e in session.query(AuditEvent).order_by(AuditEvent.id)]
    assert actions.count("reservation.approve") == 2
    assert actions.count("reservation.reject") == 1


@pytest.mark.parametrize(
    "rejection", [{"id": 1}, {"id": 1, "reason": ""}, {"id": 1, "reason": "  "}]
)
def test_a_rejection_without_a_reason_is_422_naming_it(
    client, world, session, auth_headers, rejection
):
    customer = auth_headers(world.customer_user)
    first = book(client, world, customer, 2)
    second = book(client, world, customer, 3)
    rejection = {**rejection, "id": second}
    answer = client.post(
        "/api/v1/approvals/decide",
        json={"approve": [first], "reject": [rejection]},
        headers=auth_headers(world.lab_admin, "en"),
    )
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert "reason" in error["details"]["fields"]["reject"]["0"]
    # Nothing was decided, not even the approval.
    assert (status_of(session, first), status_of(session, second)) == ("requested", "requested")


def test_a_mixed_batch_reports_the_already_approved_one(client, world, session, auth_headers):
    customer = auth_headers(world.customer_user)
    lab = auth_headers(world.lab_admin, "en")
    done = book(client, world, customer, 2)
    assert client.post(f"/api/v1/reservations/{done}/approve", headers=lab).status_code == 200
    fresh = book(client, world, customer, 3)
    answer = client.post("/api/v1/approvals/decide", json={"approve": [done, fresh]}, headers=lab)
    assert answer.status_code == 200
    body = answer.get_json()
    results = {r["id"]: r for r in body["results"]}
    assert results[fresh]["outcome"] == "approved"
    assert results[done]["outcome"] == "refused"
    assert results[done]["status"] == "approved"
    assert results[done]["error"]["code"] == "invalid_state"
    assert results[done]["error"]["message"]  # in the caller's language
    assert "params" not in results[done]["error"]
    assert (body["approved"], body["refused"]) == (1, 1)
    assert status_of(session, fresh) == "approved"


def test_an_atomic_batch_is_409_and_decides_nothing(client, world, session, auth_headers):
    customer = auth_headers(world.customer_user)
    lab = auth_headers(world.lab_admin)
    done = book(client, world, customer, 2)
    client.post(f"/api/v1/reservations/{done}/approve", headers=lab)
    fresh = book(client, world, customer, 3)
    answer = client.post(
        "/api/v1/approvals/decide", json={"approve": [done, fresh], "atomic": True}, headers=lab
    )
    assert answer.status_code == 409
    error = answer.get_json()["error"]
    assert error["code"] == "conflict"
    results = {r["id"]: r for r in error["details"]["results"]}
    assert results[done]["error"]["code"] == "invalid_state"
    assert status_of(session, fresh) == "requested"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"approve": []},
        {"approve": [1, 1]},
        {"approve": ["x"]},
        {"approve": list(range(1, 202))},
    ],
)
def test_a_malformed_batch_is_refused_whole(client, world, auth_headers, body):
    answer = client.post(
        "/api/v1/approvals/decide", json=body, headers=auth_headers(world.lab_admin)
    )
    assert answer.status_code == 422
    assert "approve" in answer.get_json()["error"]["details"]["fields"]


# --- a resource's approvers ---------------------------------------------------------------


def test_a_named_approver_decides_through_the_api(client, world, session, auth_headers):
    technician = create_user(session, world.provider, "member", name="王技术员")
    session.commit()
    lab = auth_headers(world.lab_admin)
    url = f"/api/v1/resources/{world.resource.id}/approvers"
    named = client.post(url, json={"email": technician.email.upper()}, headers=lab)
    assert named.status_code == 201, named.get_json()
    assert named.get_json() == {
        "resource_id": world.resource.id,
        "user_id": technician.id,
        "name": "王技术员",
        "email": technician.email,
        "role": "member",
    }
    listed = client.get(url, headers=lab).get_json()["items"]
    assert [a["user_id"] for a in listed] == [technician.id]
    pending = book(client, world, auth_headers(world.customer_user), 2)
    tech = auth_headers(technician)
    assert [i["id"] for i in client.get("/api/v1/approvals", headers=tech).get_json()["items"]] == [
        pending
    ]
    decided = client.post(
        "/api/v1/approvals/decide",
        json={"reject": [{"id": pending, "reason": "时段已预留给校内课程"}]},
        headers=tech,
    )
    assert decided.get_json()["results"][0]["outcome"] == "rejected"
    removed = client.delete(f"{url}/{technician.id}", headers=lab)
    assert removed.status_code == 204
    assert client.get(url, headers=lab).get_json()["items"] == []
    assert client.delete(f"{url}/{technician.id}", headers=lab).status_code == 404


def test_a_member_not_named_cannot_decide(client, world, session, auth_headers):
    member = create_user(session, world.provider, "member")
    session.commit()
    pending = book(client, world, auth_headers(world.customer_user), 2)
    headers = auth_headers(member)
    assert client.get("/api/v1/approvals", headers=headers).get_json()["items"] == []
    answer = client.post("/api/v1/approvals/decide", json={"approve": [pending]}, headers=headers)
    assert answer.get_json()["results"][0]["outcome"] == "refused"
    assert status_of(session, pending) == "requested"


def test_naming_a_non_member_is_422(client, world, session, auth_headers):
    answer = client.post(
        f"/api/v1/resources/{world.resource.id}/approvers",
        json={"user_id": world.customer_user.id},
        headers=auth_headers(world.lab_admin, "en"),
    )
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["details"]["rule"] == "approver_not_member"
    assert "member of the lab" in error["message"]
    missing = client.post(
        f"/api/v1/resources/{world.resource.id}/approvers",
        json={},
        headers=auth_headers(world.lab_admin),
    )
    assert missing.status_code == 422
    assert "user_id" in missing.get_json()["error"]["details"]["fields"]


def test_approvers_of_another_labs_resource_are_not_found(
    client, world, booking_world, session, auth_headers
):
    theirs = booking_world()
    member = create_user(session, world.provider, "member")
    session.commit()
    url = f"/api/v1/resources/{world.resource.id}/approvers"
    other_admin = auth_headers(theirs.lab_admin)
    assert client.get(url, headers=other_admin).status_code == 404
    assert client.post(url, json={"user_id": member.id}, headers=other_admin).status_code == 404
    assert client.delete(f"{url}/{member.id}", headers=other_admin).status_code == 404
    # A member of the lab reads who decides but does not name anyone.
    own_member = auth_headers(member)
    assert client.get(url, headers=own_member).status_code == 200
    assert client.post(url, json={"user_id": member.id}, headers=own_member).status_code == 403


def test_result_messages_follow_the_callers_language(client, world, auth_headers):
    lab_zh = auth_headers(world.lab_admin)
    zh = client.post("/api/v1/approvals/decide", json={"approve": [999_999]}, headers=lab_zh)
    en = client.post(
        "/api/v1/approvals/decide",
        json={"approve": [999_999]},
        headers={**lab_zh, "Accept-Language": "en"},
    )
    zh_message = zh.get_json()["results"][0]["error"]["message"]
    en_message = en.get_json()["results"][0]["error"]["message"]
    assert en_message == "Not found."
    assert not zh_message.isascii()
