"""The reservations API beyond creating: moving, using, series, the waiting
list, and the error shape of refused moves."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(booking_world, session):
    w = booking_world(requires_approval=False)
    session.commit()
    return w


def body(world, start="2026-12-02T10:00:00+08:00", end="2026-12-02T12:00:00+08:00", **extra):
    return {"resource_id": world.resource.id, "start": start, "end": end, "purpose": "XRD", **extra}


def test_reschedule_through_the_api_and_refusal_keeps_the_time(
    client, world, auth_headers, session
):
    own = auth_headers(world.customer_user)
    rid = client.post("/api/v1/reservations", json=body(world), headers=own).get_json()["id"]
    _org, other = world.another_customer()
    session.commit()
    client.post(
        "/api/v1/reservations",
        json=body(world, "2026-12-02T14:00:00+08:00", "2026-12-02T15:00:00+08:00"),
        headers=auth_headers(other),
    )
    refused = client.post(
        f"/api/v1/reservations/{rid}/reschedule",
        json={"start": "2026-12-02T13:00:00+08:00", "end": "2026-12-02T15:00:00+08:00"},
        headers=own,
    )
    assert refused.status_code == 409
    assert client.get(f"/api/v1/reservations/{rid}", headers=own).get_json()["start"] == (
        "2026-12-02T10:00:00+08:00"
    )
    moved = client.post(
        f"/api/v1/reservations/{rid}/reschedule",
        json={"start": "2026-12-03T10:00:00+08:00", "end": "2026-12-03T11:00:00+08:00"},
        headers=own,
    )
    assert moved.status_code == 200 and moved.get_json()["start"] == "2026-12-03T10:00:00+08:00"
    assert moved.get_json()["estimated_cost"] == "200.00"


def test_check_in_out_complete_and_no_show(client, world, auth_headers, frozen):
    own, lab = auth_headers(world.customer_user), auth_headers(world.lab_admin)
    first = client.post("/api/v1/reservations", json=body(world), headers=own).get_json()["id"]
    second = client.post(
        "/api/v1/reservations",
        json=body(world, "2026-12-02T13:00:00+08:00", "2026-12-02T14:00:00+08:00"),
        headers=own,
    ).get_json()["id"]
    frozen.move_to(datetime(2026, 12, 2, 10, 5, tzinfo=SH))
    own, lab = auth_headers(world.customer_user), auth_headers(world.lab_admin)
    assert client.post(f"/api/v1/reservations/{first}/check-in", headers=own).status_code == 403
    checked = client.post(f"/api/v1/reservations/{first}/check-in", headers=lab)
    assert checked.get_json()["status"] == "in_use"
    assert checked.get_json()["actual_start"] == "2026-12-02T10:05:00+08:00"
    frozen.move_to(datetime(2026, 12, 2, 11, 35, tzinfo=SH))
    out = client.post(f"/api/v1/reservations/{first}/check-out", json={}, headers=lab)
    assert out.get_json()["actual_end"] == "2026-12-02T11:35:00+08:00"
    done = client.post(
        f"/api/v1/reservations/{first}/complete", json={"service_way": "entrusted"}, headers=lab
    )
    assert done.status_code == 200
    assert (done.get_json()["final_cost"], done.get_json()["customer_amount"]) == (
        "300.00",
        "300.00",
    )
    future = client.post(
        f"/api/v1/reservations/{second}/complete",
        json={
            "actual_start": "2026-12-02T13:00:00+08:00",
            "actual_end": "2026-12-02T14:00:00+08:00",
        },
        headers=lab,
    )
    assert future.status_code == 409  # not started yet
    frozen.move_to(datetime(2026, 12, 2, 13, 40, tzinfo=SH))
    lab = auth_headers(world.lab_admin)
    gone = client.post(f"/api/v1/reservations/{second}/no-show", headers=lab)
    assert gone.status_code == 200 and gone.get_json()["status"] == "no_show"


def test_illegal_move_answers_invalid_state_in_the_callers_language(client, world, auth_headers):
    lab = auth_headers(world.lab_admin, "en")
    rid = client.post(
        "/api/v1/reservations", json=body(world), headers=auth_headers(world.customer_user)
    ).get_json()["id"]
    answer = client.post(f"/api/v1/reservations/{rid}/check-out", json={}, headers=lab)
    assert answer.status_code == 409
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_state"
    assert error["message"] == "Only a booking in use can be checked out; this one is approved."
    assert error["details"] == {"status": "approved", "move": "check_out"}
    chinese = client.post(
        f"/api/v1/reservations/{rid}/check-out", json={}, headers=auth_headers(world.lab_admin)
    )
    assert "只有使用中的预约才能签退" in chinese.get_json()["error"]["message"]


def test_cancel_window_is_a_rule_with_its_name(client, world, auth_headers, frozen):
    own = auth_headers(world.customer_user)
    rid = client.post("/api/v1/reservations", json=body(world), headers=own).get_json()["id"]
    frozen.move_to(datetime(2026, 12, 1, 12, 0, tzinfo=SH))  # 22 hours before, window 24
    own = auth_headers(world.customer_user)
    late = client.post(f"/api/v1/reservations/{rid}/cancel", json={}, headers=own)
    assert late.status_code == 422
    assert late.get_json()["error"]["details"]["rule"] == "cancellation_window"
    lab = auth_headers(world.lab_admin)
    no_reason = client.post(f"/api/v1/reservations/{rid}/cancel", json={}, headers=lab)
    assert no_reason.status_code == 422
    done = client.post(f"/api/v1/reservations/{rid}/cancel", json={"reason": "停电"}, headers=lab)
    assert done.status_code == 200 and done.get_json()["status"] == "cancelled"


def test_series_through_the_api(client, world, auth_headers):
    own = auth_headers(world.customer_user)
    made = client.post(
        "/api/v1/reservations",
        json=body(world, recurrence={"freq": "weekly", "count": 3, "byweekday": ["WE"]}),
        headers=own,
    )
    assert made.status_code == 201
    answer = made.get_json()
    assert [i["start"][:10] for i in answer["items"]] == ["2026-12-02", "2026-12-09", "2026-12-16"]
    assert answer["refused"] == [] and answer["series_id"]
    listed = client.get(f"/api/v1/reservations?series_id={answer['series_id']}", headers=own)
    assert listed.get_json()["total"] == 3
    rest = client.post(
        f"/api/v1/reservations/{answer['items'][1]['id']}/cancel",
        json={"scope": "following"},
        headers=own,
    )
    assert rest.status_code == 200
    live = client.get(
        f"/api/v1/reservations?series_id={answer['series_id']}&status=approved", headers=own
    ).get_json()
    assert [i["start"][:10] for i in live["items"]] == ["2026-12-02"]


def test_series_refusal_lists_each_occurrence_in_the_callers_language(client, world, auth_headers):
    answer = client.post(
        "/api/v1/reservations",
        json=body(world, recurrence={"freq": "daily", "count": 5}),
        headers=auth_headers(world.customer_user, "en"),
    )
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["details"]["rule"] == "recurrence"
    refused = error["details"]["occurrences"]
    assert [r["start"][:10] for r in refused] == ["2026-12-05", "2026-12-06"]
    assert refused[0]["error"]["message"] == "The booking lies outside the opening hours."


def test_waiting_list_through_the_api(client, world, auth_headers, session):
    holder = auth_headers(world.customer_user)
    rid = client.post("/api/v1/reservations", json=body(world), headers=holder).get_json()["id"]
    _org, waiting_user = world.another_customer()
    session.commit()
    waiter = auth_headers(waiting_user)
    joined = client.post("/api/v1/waitlist", json=body(world), headers=waiter)
    assert joined.status_code == 201 and joined.get_json()["status"] == "waiting"
    entry = joined.get_json()["id"]
    client.post(f"/api/v1/reservations/{rid}/cancel", json={}, headers=holder)
    mine = client.get("/api/v1/waitlist", headers=waiter).get_json()["items"]
    assert mine[0]["status"] == "offered"
    assert mine[0]["offer_expires_at"] == (NOW + timedelta(hours=24)).isoformat()
    assert client.post(f"/api/v1/waitlist/{entry}/accept", headers=holder).status_code == 404
    booked = client.post(f"/api/v1/waitlist/{entry}/accept", headers=waiter)
    assert booked.status_code == 201 and booked.get_json()["status"] == "approved"
    assert client.post(f"/api/v1/waitlist/{entry}/decline", headers=waiter).status_code == 409


def test_availability_query_errors(client, world):
    path = f"/api/v1/resources/{world.resource.id}/availability"
    assert client.get(path).status_code == 422
    backwards = client.get(path + "?from=2026-12-03T00:00:00&to=2026-12-02T00:00:00")
    assert (
        backwards.status_code == 422 and "to" in backwards.get_json()["error"]["details"]["fields"]
    )
    too_long = client.get(path + "?from=2026-12-01T00:00:00&to=2027-06-01T00:00:00")
    assert too_long.status_code == 422
    assert (
        client.get(
            "/api/v1/resources/999999/availability?from=2026-12-01T00:00:00&to=2026-12-02T00:00:00"
        ).status_code
        == 404
    )
