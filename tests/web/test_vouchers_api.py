"""The vouchers API (API.md "Vouchers and settlement"): issue one or a CSV
batch, the figures from the ledger, visibility, policies, admissions, and
bad input — each 422 with the rule named in ``details``, nothing written."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from booking.models.audit import AuditEvent
from booking.models.reservations import Reservation
from booking.models.vouchers import Voucher, VoucherLedgerEntry
from tests.factories.accounts import create_org, create_user
from tests.factories.vouchers import create_enterprise, create_voucher, local

NOW = local(2026, 3, 2, 10)  # a Monday


@pytest.fixture(autouse=True)
def _march(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def world(voucher_world, session):
    built = voucher_world(face_value="10000.00")
    session.commit()
    return built


def written(session) -> tuple[int, int, int, int]:
    session.expire_all()
    return tuple(
        session.scalar(select(func.count()).select_from(model))
        for model in (Voucher, VoucherLedgerEntry, AuditEvent, Reservation)
    )


def test_issue_and_read_a_voucher_with_its_figures(client, world, auth_headers, session):
    officer = auth_headers(world.officer)
    answer = client.post(
        "/api/v1/vouchers",
        json={
            "holder_org_id": world.enterprise.id,
            "face_value": "5000.00",
            "valid_from": "2026-03-02",
            "valid_until": "2026-12-31",
            "coverage_ratio": "0.40",
            "order_cap": "2000.00",
            "service_categories": ["testing", "instrument_sharing"],
        },
        headers=officer,
    )
    assert answer.status_code == 201, answer.get_json()
    item = answer.get_json()
    assert item["face_value"] == item["balance"] == item["available"] == "5000.00"
    assert item["held"] == item["redeemed"] == item["expired"] == "0.00"
    assert item["coverage_ratio"] == "0.40" and item["order_cap"] == "2000.00"
    assert item["valid_until"] == "2026-12-31T23:59:59+08:00"
    assert item["service_categories"] == ["instrument_sharing", "testing"]
    assert item["issuing_region"] == "140100"
    holder = auth_headers(world.customer)
    one = client.get(f"/api/v1/vouchers/{item['id']}", headers=holder)
    assert one.status_code == 200 and one.get_json()["number"] == item["number"]
    ledger = client.get(f"/api/v1/vouchers/{item['id']}/ledger", headers=holder).get_json()
    assert ledger["total"] == 1
    assert ledger["items"][0]["kind"] == "issue" and ledger["items"][0]["amount"] == "5000.00"
    listed = client.get("/api/v1/vouchers?per_page=10", headers=officer).get_json()
    assert listed["total"] == 2 and listed["per_page"] == 10


def test_others_get_404_and_an_empty_list(client, world, auth_headers, session):
    stranger = create_user(session, create_enterprise(session), "member")
    other_bureau = create_user(session, create_org(session, "bureau", region="140400"), "member")
    lab = world.lab_admin
    for user in (stranger, other_bureau, lab):
        headers = auth_headers(user)
        assert (
            client.get(f"/api/v1/vouchers/{world.voucher.id}", headers=headers).status_code == 404
        )
        assert (
            client.get(f"/api/v1/vouchers/{world.voucher.id}/ledger", headers=headers).status_code
            == 404
        )
        assert client.get("/api/v1/vouchers", headers=headers).get_json()["total"] == 0
    province = create_user(session, create_org(session, "bureau", region="140000"), "member")
    assert client.get("/api/v1/vouchers", headers=auth_headers(province)).get_json()["total"] == 1
    assert client.get(f"/api/v1/vouchers/{world.voucher.id}").status_code == 401


@pytest.mark.parametrize(
    ("change", "rule", "field"),
    [
        ({"holder": "lvliang"}, "holder_region", "holder_org_id"),
        ({"face_value": "190000.01"}, "annual_cap", "face_value"),  # 10,000 issued already
        ({"coverage_ratio": "0"}, "coverage_ratio", "coverage_ratio"),
        ({"coverage_ratio": "1.5"}, "coverage_ratio", "coverage_ratio"),
        ({"coverage_ratio": "-0.2"}, "coverage_ratio", "coverage_ratio"),
        (
            {"valid_from": "2026-06-01", "valid_until": "2026-05-01"},
            "validity_order",
            "valid_until",
        ),
        ({"service_categories": ["astrology", "testing"]}, "service_categories", None),
        ({"valid_until": "2027-06-01"}, "validity_too_long", "valid_until"),
    ],
)
def test_bad_issue_is_422_naming_the_rule_and_writes_nothing(
    client, world, auth_headers, session, change, rule, field
):
    lvliang = create_enterprise(session, "141102")
    headers = auth_headers(world.officer)
    data = {"holder_org_id": world.enterprise.id, "face_value": "1000.00"}
    data.update(change)
    if data.pop("holder", None) == "lvliang":
        data["holder_org_id"] = lvliang.id
    before = written(session)
    answer = client.post("/api/v1/vouchers", json=data, headers=headers)
    assert answer.status_code == 422, answer.get_json()
    error = answer.get_json()["error"]
    assert error["code"] == "rule_violated"
    assert error["details"]["rule"] == rule
    if field:
        assert error["details"]["field"] == field
    assert error["message"]  # in Chinese by default
    assert written(session) == before


def test_unreadable_input_is_422_with_fields(client, world, auth_headers):
    answer = client.post(
        "/api/v1/vouchers",
        json={"holder_org_id": "x", "face_value": "12.345"},
        headers=auth_headers(world.officer),
    )
    assert answer.status_code == 422
    fields = answer.get_json()["error"]["details"]["fields"]
    assert set(fields) == {"holder_org_id", "face_value"}


def test_only_a_bureau_officer_issues(client, world, auth_headers):
    answer = client.post(
        "/api/v1/vouchers",
        json={"holder_org_id": world.enterprise.id, "face_value": "1000.00"},
        headers=auth_headers(world.customer),
    )
    assert answer.status_code == 403


def upload(client, headers, text: str):
    return client.post(
        "/api/v1/vouchers/batch",
        data={"file": (io.BytesIO(text.encode("utf-8-sig")), "vouchers.csv")},
        headers=headers,
        content_type="multipart/form-data",
    )


def test_batch_upload_all_or_nothing(client, world, auth_headers, session):
    firms = [create_enterprise(session) for _ in range(2)]
    outsider = create_enterprise(session, "140404")
    session.commit()
    headers = auth_headers(world.officer)
    before = written(session)
    bad = upload(
        client,
        headers,
        "holder_uscc,face_value,coverage_ratio\n"
        f"{firms[0].uscc},1000.00,0.5\n"
        f"{outsider.uscc},1000.00,0.5\n"
        f"{firms[1].uscc},1000.00,2\n",
    )
    assert bad.status_code == 422
    details = bad.get_json()["error"]["details"]
    assert details["rule"] == "batch_rows"
    assert [(r["row"], r["rule"]) for r in details["rows"]] == [
        (3, "holder_region"),
        (4, "coverage_ratio"),
    ]
    assert "140404" in details["rows"][0]["message"]  # formatted, in Chinese
    assert written(session) == before
    good = upload(
        client,
        headers,
        "holder_uscc,face_value,valid_until,service_categories\n"
        f"{firms[0].uscc},1000.00,2026-10-31,testing;computing\n"
        f"{firms[1].uscc},2000.00,,\n",
    )
    assert good.status_code == 201, good.get_json()
    body = good.get_json()
    assert body["total"] == 2
    assert [i["balance"] for i in body["items"]] == ["1000.00", "2000.00"]
    assert body["items"][0]["valid_until"] == "2026-10-31T23:59:59+08:00"


def test_revoke_and_adjust(client, world, auth_headers, session):
    spare = create_voucher(session, world.bureau, world.enterprise, "300.00", officer=world.officer)
    session.commit()
    headers = auth_headers(world.officer)
    answer = client.post(
        f"/api/v1/vouchers/{spare.id}/revoke", json={"reason": "twice"}, headers=headers
    )
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "revoked" and answer.get_json()["balance"] == "0.00"
    adjusted = client.post(
        f"/api/v1/vouchers/{world.voucher.id}/adjustments",
        json={"amount": "-100.00", "reason": "correction of claim 12"},
        headers=headers,
    )
    assert adjusted.status_code == 201 and adjusted.get_json()["amount"] == "-100.00"
    too_much = client.post(
        f"/api/v1/vouchers/{world.voucher.id}/adjustments",
        json={"amount": "-9900.01", "reason": "x"},
        headers=headers,
    )
    assert too_much.status_code == 422
    assert too_much.get_json()["error"]["details"]["rule"] == "voucher_balance"
    holder = auth_headers(world.customer)
    refused = client.post(
        f"/api/v1/vouchers/{world.voucher.id}/adjustments",
        json={"amount": "100.00", "reason": "gift"},
        headers=holder,
    )
    assert refused.status_code == 403


# --- a booking's voucher, through the reservations API -------------------------------


def book(client, world, headers, voucher_id, **extra):
    return client.post(
        "/api/v1/reservations",
        json={
            "resource_id": world.resource.id,
            "start": "2026-03-03T10:00:00+08:00",
            "end": "2026-03-03T12:00:00+08:00",
            "purpose": "SEM",
            "voucher_id": voucher_id,
            **extra,
        },
        headers=headers,
    )


def test_booking_with_a_voucher(client, world, auth_headers):
    answer = book(client, world, auth_headers(world.customer), world.voucher.id)
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["voucher_id"] == world.voucher.id


def test_booking_with_someone_elses_expired_or_wrong_category_voucher(
    client, world, auth_headers, session
):
    other = create_enterprise(session)
    theirs = create_voucher(session, world.bureau, other, "100.00", officer=world.officer)
    revoked = create_voucher(
        session, world.bureau, world.enterprise, "100.00", officer=world.officer
    )
    revoked.status = "revoked"
    testing_only = create_voucher(
        session,
        world.bureau,
        world.enterprise,
        "100.00",
        officer=world.officer,
        service_categories=["testing"],
    )
    session.commit()
    headers = auth_headers(world.customer)
    before = written(session)
    for voucher, rule in (
        (theirs, "voucher_holder"),
        (revoked, "voucher_expired"),
        (testing_only, "voucher_category"),
    ):
        answer = book(client, world, headers, voucher.id)
        assert answer.status_code == 422, answer.get_json()
        assert answer.get_json()["error"]["details"]["rule"] == rule
        assert written(session) == before


def test_quote_splits_the_estimate(client, world, auth_headers, session):
    answer = client.post(
        f"/api/v1/vouchers/{world.voucher.id}/quote",
        json={
            "resource_id": world.resource.id,
            "start": "2026-03-03T10:00:00",
            "end": "2026-03-03T12:00:00",
            "estimated_cost": "400.01",
        },
        headers=auth_headers(world.customer),
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {
        "voucher_id": world.voucher.id,
        "estimated_cost": "400.01",
        "voucher_share": "200.01",
        "customer_share": "200.00",
    }


# --- policies and admissions ---------------------------------------------------------


def test_policies(client, world, auth_headers):
    headers = auth_headers(world.officer)
    tiered = client.post(
        "/api/v1/voucher-policies",
        json={"effective_from": "2026-04-01", "formula": "tiered", "tier1_rate": "0.5"},
        headers=headers,
    )
    assert tiered.status_code == 422
    assert tiered.get_json()["error"]["details"]["rule"] == "tiered_rates_missing"
    made = client.post(
        "/api/v1/voucher-policies",
        json={
            "effective_from": "2026-04-01",
            "formula": "tiered",
            "tier1_rate": "0.5",
            "tier2_rate": "0.3",
            "audit_levels": ["county", "city"],
            "provider_regions": ["14"],
        },
        headers=headers,
    )
    assert made.status_code == 201, made.get_json()
    policy = made.get_json()
    assert policy["formula"] == "tiered" and policy["annual_cap_per_enterprise"] == "200000.00"
    changed = client.patch(
        f"/api/v1/voucher-policies/{policy['id']}", json={"notice_days": 7}, headers=headers
    )
    assert changed.status_code == 200 and changed.get_json()["notice_days"] == 7
    listed = client.get(
        f"/api/v1/voucher-policies?bureau_id={world.bureau.id}", headers=headers
    ).get_json()
    assert [p["effective_from"] for p in listed] == ["2020-01-01", "2026-04-01"]
    in_use = client.patch(
        f"/api/v1/voucher-policies/{world.policy.id}", json={"notice_days": 7}, headers=headers
    )
    assert in_use.status_code == 409


def test_admission_with_public_notice(client, world, auth_headers, session):
    provider = create_org(session, "provider", region="140105")
    lab = create_user(session, provider, "admin")
    session.commit()
    applied = client.post(
        "/api/v1/admissions",
        json={
            "provider_id": provider.id,
            "documents": [{"name": "营业执照", "reference": "scan-001.pdf"}],
        },
        headers=auth_headers(lab),
    )
    assert applied.status_code == 201, applied.get_json()
    admission_id = applied.get_json()["id"]
    bureau = auth_headers(world.officer)
    no_check = client.post(f"/api/v1/admissions/{admission_id}/approve", json={}, headers=bureau)
    assert no_check.get_json()["error"]["details"]["rule"] == "credit_check"
    approved = client.post(
        f"/api/v1/admissions/{admission_id}/approve",
        json={"credit_check_passed": True, "notice_days": 7},
        headers=bureau,
    )
    assert approved.status_code == 200
    assert approved.get_json()["status"] == "in_notice"
    assert approved.get_json()["notice_until"] == "2026-03-09T23:59:59+08:00"
    by_lab = client.post(
        f"/api/v1/admissions/{admission_id}/suspend",
        json={"reason": "x"},
        headers=auth_headers(lab),
    )
    assert by_lab.status_code == 403
    cma = client.post(
        f"/api/v1/providers/{provider.id}/cma-certificates",
        json={"number": "230412340876", "scope": "煤炭", "expires_on": "2028-06-30"},
        headers=auth_headers(lab),
    )
    assert cma.status_code == 201 and cma.get_json()["expires_on"] == "2028-06-30"


def test_openapi_documents_the_voucher_paths(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in (
        "/api/v1/vouchers",
        "/api/v1/vouchers/{voucher_id}",
        "/api/v1/vouchers/{voucher_id}/ledger",
        "/api/v1/vouchers/batch",
        "/api/v1/voucher-policies",
    ):
        assert path in paths
