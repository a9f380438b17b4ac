"""A voucher booking from request to paid claim through the HTTP API, the
order confirmation (API and printable page), and the claims API's refusals."""

from __future__ import annotations

import re

import pytest

from tests.factories.accounts import PASSWORD, create_org, create_user
from tests.factories.vouchers import local


@pytest.fixture(autouse=True)
def _march(time_machine):
    time_machine.move_to(local(2026, 3, 3, 8), tick=False)


@pytest.fixture
def world(voucher_world, session):
    built = voucher_world(face_value="1000.00")
    session.commit()
    return built


def ok(answer, status=200):
    assert answer.status_code == status, answer.get_json()
    return answer.get_json()


def completed_voucher_booking(client, world, headers, time_machine) -> dict:
    booking = ok(
        client.post(
            "/api/v1/reservations",
            json={
                "resource_id": world.resource.id,
                "start": "2026-03-03T10:00:00+08:00",
                "end": "2026-03-03T12:00:00+08:00",
                "purpose": "SEM 表征",
                "voucher_id": world.voucher.id,
            },
            headers=headers["customer"],
        ),
        201,
    )
    rid = booking["id"]
    approved = ok(client.post(f"/api/v1/reservations/{rid}/approve", headers=headers["lab"]))
    assert approved["voucher_hold"] == "200.00"  # 2 h × 200.00, half
    voucher = ok(client.get(f"/api/v1/vouchers/{world.voucher.id}", headers=headers["customer"]))
    assert (voucher["held"], voucher["available"]) == ("200.00", "800.00")
    time_machine.move_to(local(2026, 3, 3, 12, 45), tick=False)
    done = ok(
        client.post(
            f"/api/v1/reservations/{rid}/complete",
            json={
                "actual_start": "2026-03-03T10:00:00+08:00",
                "actual_end": "2026-03-03T12:30:00+08:00",
            },
            headers=headers["lab"],
        )
    )
    return done


def test_from_booking_to_paid_claim(client, world, auth_headers, time_machine, session):
    headers = {
        "customer": auth_headers(world.customer),
        "lab": auth_headers(world.lab_admin),
        "bureau": auth_headers(world.officer),
    }
    done = completed_voucher_booking(client, world, headers, time_machine)
    rid = done["id"]
    cost = done["final_cost"]
    assert done["voucher_amount"] == f"{float(cost) / 2:.2f}"
    voucher = ok(client.get(f"/api/v1/vouchers/{world.voucher.id}", headers=headers["bureau"]))
    assert voucher["redeemed"] == done["voucher_amount"]
    assert voucher["held"] == "0.00"

    confirmation = ok(
        client.get(f"/api/v1/reservations/{rid}/confirmation", headers=headers["lab"])
    )
    assert confirmation["content"]["voucher_amount"] == done["voucher_amount"]
    assert confirmation["confirmed"] is False
    ok(
        client.post(
            f"/api/v1/reservations/{rid}/confirmation/confirm", json={}, headers=headers["customer"]
        )
    )
    confirmed = ok(
        client.post(
            f"/api/v1/reservations/{rid}/confirmation/confirm", json={}, headers=headers["lab"]
        )
    )
    assert confirmed["confirmed"] is True

    draft = ok(
        client.post(
            "/api/v1/claims",
            json={"period_from": "2026-03-01", "period_to": "2026-03-31"},
            headers=headers["lab"],
        ),
        201,
    )
    assert draft["status"] == "draft" and [line["reservation_id"] for line in draft["lines"]] == [
        rid
    ]
    line_id = draft["lines"][0]["id"]
    early = client.post(f"/api/v1/claims/{draft['id']}/submit", headers=headers["lab"])
    assert early.status_code == 422
    assert set(early.get_json()["error"]["details"]["lines"][str(line_id)]) == {
        "invoice_number",
        "payment_proof",
        "usage_record",
    }
    ok(
        client.patch(
            f"/api/v1/claims/{draft['id']}/lines/{line_id}",
            json={
                "invoice_number": "14012345",
                "payment_proof": "转账凭证",
                "usage_record": "机时记录",
            },
            headers=headers["lab"],
        )
    )
    submitted = ok(client.post(f"/api/v1/claims/{draft['id']}/submit", headers=headers["lab"]))
    assert submitted["status"] == "submitted"
    not_yet = client.post(f"/api/v1/claims/{draft['id']}/pay", json={}, headers=headers["bureau"])
    assert not_yet.status_code == 409
    audited = ok(
        client.post(f"/api/v1/claims/{draft['id']}/approve", json={}, headers=headers["bureau"])
    )
    assert audited["status"] == "audited" and audited["approved_amount"] == done["voucher_amount"]
    paid = ok(
        client.post(
            f"/api/v1/claims/{draft['id']}/pay",
            json={"payment_reference": "国库支付 2026-031"},
            headers=headers["bureau"],
        )
    )
    assert paid["status"] == "paid" and paid["paid_amount"] == done["voucher_amount"]
    booking = ok(client.get(f"/api/v1/reservations/{rid}", headers=headers["customer"]))
    assert booking["status"] == "settled"
    again = client.post(
        f"/api/v1/claims/{draft['id']}/reject", json={"reason": "x"}, headers=headers["bureau"]
    )
    assert again.status_code == 409
    listed = ok(client.get("/api/v1/claims?status=paid", headers=headers["bureau"]))
    assert listed["total"] == 1


def test_claims_api_refusals(client, world, auth_headers, session):
    lab = auth_headers(world.lab_admin)
    reversed_period = client.post(
        "/api/v1/claims", json={"period_from": "2026-03-31", "period_to": "2026-03-01"}, headers=lab
    )
    assert reversed_period.status_code == 422
    assert reversed_period.get_json()["error"]["details"]["rule"] == "period_order"
    nothing = client.post(
        "/api/v1/claims", json={"period_from": "2026-03-01", "period_to": "2026-03-31"}, headers=lab
    )
    assert nothing.get_json()["error"]["details"]["rule"] == "claim_nothing_to_claim"
    bureau = client.post(
        "/api/v1/claims",
        json={"period_from": "2026-03-01", "period_to": "2026-03-31"},
        headers=auth_headers(world.officer),
    )
    assert bureau.status_code == 422  # a bureau officer names no claimant of its own
    assert client.get("/api/v1/claims/12345", headers=lab).status_code == 404
    assert client.post("/api/v1/claims/12345/approve", json={}, headers=lab).status_code == 404


def sign_in(client, user):
    page = client.get("/login").data
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1).decode()
    answer = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 302


def test_printable_order_confirmation_page(client, world, auth_headers, time_machine, session):
    headers = {
        "customer": auth_headers(world.customer),
        "lab": auth_headers(world.lab_admin),
    }
    done = completed_voucher_booking(client, world, headers, time_machine)
    sign_in(client, world.customer)
    page = client.get(f"/vouchers/confirmations/{done['id']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "服务确认单" in html
    assert done["voucher_amount"] in html and done["customer_amount"] in html
    assert world.enterprise.name in html and world.voucher.number in html
    assert "onclick" not in html and "<style" not in html  # the CSP allows nothing inline
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    confirmed = client.post(
        f"/vouchers/confirmations/{done['id']}/confirm",
        data={"csrf_token": token, "side": "customer"},
    )
    assert confirmed.status_code == 302
    assert "确认" in client.get(f"/vouchers/confirmations/{done['id']}").get_data(as_text=True)
    stranger = create_user(session, create_org(session, "enterprise"), "member")
    session.commit()
    client.post("/logout", data={"csrf_token": token})
    other = client.application.test_client()
    sign_in(other, stranger)
    assert other.get(f"/vouchers/confirmations/{done['id']}").status_code == 404
