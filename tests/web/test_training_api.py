"""The training API, and the reservation API's training rule it serves."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.models.audit import AuditEvent
from booking.models.catalog import TrainingRecord
from tests.factories.accounts import create_user

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # a Tuesday


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(booking_world, session):
    w = booking_world(requires_training=True)
    session.commit()
    return w


def booking_body(world, day: int = 2) -> dict:
    return {
        "resource_id": world.resource.id,
        "start": f"2026-12-{day:02d}T10:00:00+08:00",
        "end": f"2026-12-{day:02d}T12:00:00+08:00",
        "purpose": "SEM 表征",
    }


def test_training_decides_whether_the_reservation_api_accepts_a_booking(
    client, world, session, auth_headers, frozen
):
    customer = auth_headers(world.customer_user, "en")
    lab = auth_headers(world.lab_admin)

    refused = client.post("/api/v1/reservations", json=booking_body(world), headers=customer)
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["details"]["rule"] == "training_required"
    assert error["details"]["training"]["resource_id"] == world.resource.id

    granted = client.post(
        "/api/v1/trainings",
        json={
            "email": world.customer_user.email,
            "resource_id": world.resource.id,
            "valid_until": "2026-12-20T23:59:59",
        },
        headers=lab,
    )
    assert granted.status_code == 201, granted.get_json()
    record = granted.get_json()
    assert record["user"]["id"] == world.customer_user.id
    assert record["resource"]["id"] == world.resource.id
    assert record["category"] is None
    assert record["provider_id"] == world.provider.id
    assert record["granted_by"]["id"] == world.lab_admin.id
    assert record["granted_at"] == "2026-12-01T08:00:00+08:00"
    assert record["valid_until"] == "2026-12-20T23:59:59+08:00"
    assert record["state"] == "current"

    accepted = client.post("/api/v1/reservations", json=booking_body(world), headers=customer)
    assert accepted.status_code == 201, accepted.get_json()

    # After its end the training no longer counts.
    frozen.move_to(datetime(2026, 12, 21, 8, 0, tzinfo=SH))
    customer = auth_headers(world.customer_user, "en")  # the test tokens last a day
    lab = auth_headers(world.lab_admin)
    expired = client.post("/api/v1/reservations", json=booking_body(world, 22), headers=customer)
    assert expired.status_code == 422
    assert expired.get_json()["error"]["details"]["rule"] == "training_required"
    listed = client.get("/api/v1/trainings", query_string={"state": "expired"}, headers=lab)
    assert [r["id"] for r in listed.get_json()["items"]] == [record["id"]]


def test_revoke_through_the_api(client, world, session, auth_headers):
    lab = auth_headers(world.lab_admin)
    customer = auth_headers(world.customer_user)
    created = client.post(
        "/api/v1/trainings",
        json={"user_id": world.customer_user.id, "resource_id": world.resource.id},
        headers=lab,
    ).get_json()
    revoked = client.post(
        f"/api/v1/trainings/{created['id']}/revoke", json={"reason": "违规操作"}, headers=lab
    )
    assert revoked.status_code == 200
    assert revoked.get_json()["state"] == "revoked"
    assert revoked.get_json()["revoked_at"] == "2026-12-01T08:00:00+08:00"
    again = client.post(f"/api/v1/trainings/{created['id']}/revoke", json={}, headers=lab)
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "invalid_state"
    refused = client.post("/api/v1/reservations", json=booking_body(world), headers=customer)
    assert refused.get_json()["error"]["details"]["rule"] == "training_required"
    actions = [e.action for e in session.query(AuditEvent).order_by(AuditEvent.id)]
    assert actions.count("training.grant") == 1
    assert actions.count("training.revoke") == 1


def test_granting_on_another_labs_resource_is_refused(
    client, world, booking_world, session, auth_headers
):
    theirs = booking_world()
    session.commit()
    answer = client.post(
        "/api/v1/trainings",
        json={"user_id": world.customer_user.id, "resource_id": theirs.resource.id},
        headers=auth_headers(world.lab_admin),
    )
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "not_found"
    session.expire_all()
    assert session.query(TrainingRecord).count() == 0


def test_a_category_grant_needs_resources_of_it(
    client, world, make_category, session, auth_headers
):
    elsewhere = make_category()
    session.commit()
    lab = auth_headers(world.lab_admin, "en")
    refused = client.post(
        "/api/v1/trainings",
        json={"user_id": world.customer_user.id, "category_id": elsewhere.id},
        headers=lab,
    )
    assert refused.status_code == 422
    assert refused.get_json()["error"]["details"] == {
        "rule": "category_not_offered",
        "field": "category_id",
    }
    granted = client.post(
        "/api/v1/trainings",
        json={"user_id": world.customer_user.id, "category_id": world.resource.category_id},
        headers=lab,
    )
    assert granted.status_code == 201
    assert granted.get_json()["category"]["id"] == world.resource.category_id
    customer = auth_headers(world.customer_user)
    accepted = client.post("/api/v1/reservations", json=booking_body(world), headers=customer)
    assert accepted.status_code == 201


@pytest.mark.parametrize(
    "body,field",
    [
        ({"resource_id": 1}, "user_id"),
        ({"user_id": 1}, "resource_id"),
        ({"user_id": 1, "resource_id": 1, "category_id": 1}, "category_id"),
        ({"user_id": 1, "resource_id": 1, "valid_until": "soon"}, "valid_until"),
    ],
)
def test_malformed_grants_name_the_field(client, world, auth_headers, body, field):
    answer = client.post("/api/v1/trainings", json=body, headers=auth_headers(world.lab_admin))
    assert answer.status_code == 422
    assert field in answer.get_json()["error"]["details"]["fields"]


def test_the_register_is_the_labs_own(client, world, booking_world, session, auth_headers):
    theirs = booking_world()
    member = create_user(session, world.provider, "member")
    session.commit()
    lab = auth_headers(world.lab_admin)
    created = client.post(
        "/api/v1/trainings",
        json={"user_id": world.customer_user.id, "resource_id": world.resource.id},
        headers=lab,
    ).get_json()
    page = client.get("/api/v1/trainings", headers=lab).get_json()
    assert page["total"] == 1 and page["items"][0]["id"] == created["id"]

    other = auth_headers(theirs.lab_admin)
    assert client.get("/api/v1/trainings", headers=other).get_json()["items"] == []
    query = {"provider_id": world.provider.id}
    assert client.get("/api/v1/trainings", query_string=query, headers=other).status_code == 404
    assert client.get(f"/api/v1/trainings/{created['id']}", headers=other).status_code == 404
    revoke = client.post(f"/api/v1/trainings/{created['id']}/revoke", json={}, headers=other)
    assert revoke.status_code == 404
    assert client.get("/api/v1/trainings", headers=auth_headers(member)).status_code == 403

    # The trainee reads their own record, and their trainings of every lab.
    customer = auth_headers(world.customer_user)
    assert client.get(f"/api/v1/trainings/{created['id']}", headers=customer).status_code == 200
    mine = client.get("/api/v1/trainings", query_string={"scope": "mine"}, headers=customer)
    assert [r["id"] for r in mine.get_json()["items"]] == [created["id"]]
    assert client.get("/api/v1/trainings", headers=customer).status_code == 403


def test_a_grant_with_an_idempotency_key_is_made_once(client, world, session, auth_headers):
    headers = {**auth_headers(world.lab_admin), "Idempotency-Key": "grant-1"}
    body = {"user_id": world.customer_user.id, "resource_id": world.resource.id}
    first = client.post("/api/v1/trainings", json=body, headers=headers)
    second = client.post("/api/v1/trainings", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    session.expire_all()
    assert session.query(TrainingRecord).count() == 1
