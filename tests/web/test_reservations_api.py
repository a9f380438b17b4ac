"""The reservations API: API.md's contract, errors, time zones, visibility."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.models.reservations import Reservation

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


def body(world, start="2026-12-02T10:00:00+08:00", end="2026-12-02T12:00:00+08:00", **extra):
    return {
        "resource_id": world.resource.id,
        "start": start,
        "end": end,
        "purpose": "SEM 表征",
        **extra,
    }


def test_create_answers_the_reservation_as_api_md_says(client, world, auth_headers):
    headers = auth_headers(world.customer_user)
    answer = client.post("/api/v1/reservations", json=body(world), headers=headers)
    assert answer.status_code == 201, answer.get_json()
    item = answer.get_json()
    for name in (
        "id",
        "resource_id",
        "customer_org_id",
        "user_id",
        "start",
        "end",
        "units",
        "samples",
        "status",
        "purpose",
        "estimated_cost",
        "voucher_id",
        "voucher_hold",
        "actual_start",
        "actual_end",
        "final_cost",
        "voucher_amount",
        "customer_amount",
        "series_id",
        "created_at",
        "updated_at",
    ):
        assert name in item
    assert item["status"] == "requested"
    assert item["start"] == "2026-12-02T10:00:00+08:00"
    assert item["estimated_cost"] == "400.00"
    assert item["voucher_hold"] == "0.00"
    assert item["created_at"].endswith("+08:00")


@pytest.mark.parametrize(
    "start,end",
    [
        ("2026-12-02T10:00:00+08:00", "2026-12-02T12:00:00+08:00"),
        ("2026-12-02T02:00:00Z", "2026-12-02T04:00:00Z"),
        ("2026-12-02T10:00:00", "2026-12-02T12:00:00"),
    ],
)
def test_offset_z_and_no_offset_mean_the_same_instant(
    client, world, auth_headers, session, start, end
):
    answer = client.post(
        "/api/v1/reservations",
        json=body(world, start, end),
        headers=auth_headers(world.customer_user),
    )
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["start"] == "2026-12-02T10:00:00+08:00"
    stored = session.get(Reservation, answer.get_json()["id"])
    assert stored.start_at == datetime(2026, 12, 2, 2, 0, tzinfo=ZoneInfo("UTC"))


def test_same_instant_written_three_ways_collide(client, world, auth_headers):
    headers = auth_headers(world.customer_user)
    first = client.post("/api/v1/reservations", json=body(world), headers=headers)
    assert first.status_code == 201
    for start, end in (
        ("2026-12-02T02:00:00Z", "2026-12-02T04:00:00Z"),
        ("2026-12-02T10:00:00", "2026-12-02T12:00:00"),
    ):
        again = client.post("/api/v1/reservations", json=body(world, start, end), headers=headers)
        assert again.status_code == 409
        assert again.get_json()["error"]["code"] == "conflict"


def test_conflict_answer_carries_conflicts_and_suggestions(client, world, auth_headers, session):
    client.post("/api/v1/reservations", json=body(world), headers=auth_headers(world.customer_user))
    _org, other = world.another_customer()
    session.commit()
    answer = client.post(
        "/api/v1/reservations",
        json=body(world, "2026-12-02T11:00:00+08:00", "2026-12-02T13:00:00+08:00"),
        headers=auth_headers(other, "en"),
    )
    assert answer.status_code == 409
    error = answer.get_json()["error"]
    assert error["code"] == "conflict"
    assert error["message"] == "This time is already taken."
    assert error["details"]["conflicts"] == [
        {
            "kind": "booking",
            "start": "2026-12-02T10:00:00+08:00",
            "end": "2026-12-02T12:00:00+08:00",
            "units": 1,
        }
    ]
    assert [s["start"] for s in error["details"]["suggestions"]] == [
        "2026-12-02T08:00:00+08:00",
        "2026-12-02T12:00:00+08:00",
    ]


@pytest.mark.parametrize(
    "change,field",
    [
        ({"end": "2026-12-02T09:00:00+08:00"}, "end"),  # ends before it starts
        ({"start": "1900-12-02T10:00:00", "end": "1900-12-02T12:00:00"}, "start"),  # far out
        ({"start": "not a time"}, "start"),
        ({"units": 0}, "units"),
        ({"units": 5}, "units"),  # above capacity
        ({"samples": 3}, "samples"),  # samples on a time-slot resource
        ({"resource_id": 999999}, "resource_id"),  # unknown resource
        ({"purpose": None}, "purpose"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    client, world, auth_headers, session, change, field
):
    answer = client.post(
        "/api/v1/reservations",
        json={**body(world), **change},
        headers=auth_headers(world.customer_user),
    )
    assert answer.status_code == 422, answer.get_json()
    error = answer.get_json()["error"]
    assert field in error["details"].get("fields", {}) or error["details"].get("field") == field
    assert session.query(Reservation).count() == 0


def test_time_in_the_past_is_refused(client, world, auth_headers, session):
    answer = client.post(
        "/api/v1/reservations",
        json=body(world, "2026-11-30T10:00:00+08:00", "2026-11-30T12:00:00+08:00"),
        headers=auth_headers(world.customer_user),
    )
    assert answer.status_code == 422
    assert answer.get_json()["error"]["details"] == {"rule": "start_in_past", "field": "start"}
    assert session.query(Reservation).count() == 0


def test_unknown_voucher_is_refused_and_nothing_written(client, world, auth_headers, session):
    answer = client.post(
        "/api/v1/reservations",
        json=body(world, voucher_id=987654),
        headers=auth_headers(world.customer_user),
    )
    assert answer.status_code in (404, 422)
    assert session.query(Reservation).count() == 0


def test_idempotency_key_replays_the_first_answer(client, world, auth_headers, session):
    headers = {**auth_headers(world.customer_user), "Idempotency-Key": "k-123"}
    first = client.post("/api/v1/reservations", json=body(world), headers=headers)
    again = client.post("/api/v1/reservations", json=body(world), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert session.query(Reservation).count() == 1


def test_others_see_404_lab_admin_sees_and_decides(client, world, auth_headers, session):
    created = client.post(
        "/api/v1/reservations", json=body(world), headers=auth_headers(world.customer_user)
    )
    rid = created.get_json()["id"]
    _org, stranger = world.another_customer()
    session.commit()
    assert (
        client.get(f"/api/v1/reservations/{rid}", headers=auth_headers(stranger)).status_code == 404
    )
    assert (
        client.post(
            f"/api/v1/reservations/{rid}/approve", headers=auth_headers(stranger)
        ).status_code
        == 404
    )
    # the customer sees it but may not approve it
    own = auth_headers(world.customer_user)
    assert client.get(f"/api/v1/reservations/{rid}", headers=own).status_code == 200
    assert client.post(f"/api/v1/reservations/{rid}/approve", headers=own).status_code == 403
    lab = auth_headers(world.lab_admin)
    listed = client.get("/api/v1/reservations", headers=lab).get_json()
    assert [i["id"] for i in listed["items"]] == [rid] and listed["total"] == 1
    approved = client.post(f"/api/v1/reservations/{rid}/approve", headers=lab)
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    again = client.post(f"/api/v1/reservations/{rid}/approve", headers=lab)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "invalid_state"


def test_list_filters_and_paging(client, world, auth_headers):
    headers = auth_headers(world.customer_user)
    for day in (2, 3, 4):
        answer = client.post(
            "/api/v1/reservations",
            json=body(world, f"2026-12-0{day}T10:00:00+08:00", f"2026-12-0{day}T11:00:00+08:00"),
            headers=headers,
        )
        assert answer.status_code == 201
    page = client.get("/api/v1/reservations?per_page=2&page=2", headers=headers).get_json()
    assert page["total"] == 3 and len(page["items"]) == 1 and page["page"] == 2
    window = client.get(
        "/api/v1/reservations?from=2026-12-03T00:00:00&to=2026-12-04T00:00:00", headers=headers
    ).get_json()
    assert [i["start"][:10] for i in window["items"]] == ["2026-12-03"]
    none = client.get("/api/v1/reservations?status=approved", headers=headers).get_json()
    assert none["total"] == 0
    assert client.get("/api/v1/reservations?status=bogus", headers=headers).status_code == 422


def test_reject_needs_a_reason(client, world, auth_headers):
    rid = client.post(
        "/api/v1/reservations", json=body(world), headers=auth_headers(world.customer_user)
    ).get_json()["id"]
    lab = auth_headers(world.lab_admin)
    missing = client.post(f"/api/v1/reservations/{rid}/reject", json={}, headers=lab)
    assert (
        missing.status_code == 422 and "reason" in missing.get_json()["error"]["details"]["fields"]
    )
    done = client.post(
        f"/api/v1/reservations/{rid}/reject", json={"reason": "仪器检修"}, headers=lab
    )
    assert done.get_json()["status"] == "rejected" and done.get_json()["reason"] == "仪器检修"


def test_availability_has_no_customer_details(client, world, auth_headers):
    client.post("/api/v1/reservations", json=body(world), headers=auth_headers(world.customer_user))
    answer = client.get(
        f"/api/v1/resources/{world.resource.id}/availability"
        "?from=2026-12-02T00:00:00%2B08:00&to=2026-12-03T00:00:00%2B08:00"
    )
    assert answer.status_code == 200
    data = answer.get_json()
    assert data["busy"] == [
        {
            "start": "2026-12-02T10:00:00+08:00",
            "end": "2026-12-02T12:00:00+08:00",
            "units": 1,
            "kind": "booking",
        }
    ]
    assert data["free"] == [
        {"start": "2026-12-02T08:00:00+08:00", "end": "2026-12-02T10:00:00+08:00", "units": 1},
        {"start": "2026-12-02T12:00:00+08:00", "end": "2026-12-02T18:00:00+08:00", "units": 1},
    ]


def test_rating_once_after_completion(client, world, auth_headers, session, frozen):
    rid = client.post(
        "/api/v1/reservations", json=body(world), headers=auth_headers(world.customer_user)
    ).get_json()["id"]
    own = auth_headers(world.customer_user)
    lab = auth_headers(world.lab_admin)
    early = client.post(f"/api/v1/reservations/{rid}/rating", json={"score": 5}, headers=own)
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "invalid_state"
    client.post(f"/api/v1/reservations/{rid}/approve", headers=lab)
    frozen.move_to(datetime(2026, 12, 2, 13, 0, tzinfo=SH))
    own, lab = auth_headers(world.customer_user), auth_headers(world.lab_admin)  # day-long tokens
    done = client.post(f"/api/v1/reservations/{rid}/complete", json={}, headers=lab)
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["final_cost"] == "400.00"
    rated = client.post(
        f"/api/v1/reservations/{rid}/rating", json={"score": 4, "comment": "很好"}, headers=own
    )
    assert rated.status_code == 201 and rated.get_json()["score"] == 4
    twice = client.post(f"/api/v1/reservations/{rid}/rating", json={"score": 5}, headers=own)
    assert twice.status_code == 409
    assert (
        client.post(
            f"/api/v1/reservations/{rid}/rating", json={"score": 6}, headers=own
        ).status_code
        == 422
    )
