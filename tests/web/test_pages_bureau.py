"""The bureau's pages and the voucher pages: issue one voucher (a refusal
beside its field, the input kept), a CSV batch (refused as a whole with the
problems by row), the overview; a holder's vouchers with balance, holds and
ledger. CSRF on every post; vouchers of others are 404."""

from __future__ import annotations

import io
import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.models.vouchers import Voucher
from booking.services import reservations as booking
from tests.factories.accounts import actor_of, create_org, create_user
from tests.factories.vouchers import create_enterprise
from tests.web.test_pages_accounts import csrf_token
from tests.web.test_pages_approvals import assert_nothing_inline, sign_in

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(voucher_world, session):
    w = voucher_world()
    w.other_holder = create_enterprise(session, name="阳泉某新材料公司")
    session.commit()
    return w


def vouchers_of(session, holder) -> list[Voucher]:
    session.expire_all()
    return session.query(Voucher).filter_by(holder_org_id=holder.id).all()


def test_issue_one_voucher(client, world, session):
    sign_in(client, world.officer)
    page = client.get("/bureau/vouchers/new").get_data(as_text=True)
    assert "阳泉某新材料公司" in page
    assert_nothing_inline(page)
    answer = client.post(
        "/bureau/vouchers/new",
        data={
            "csrf_token": csrf_token(page.encode()),
            "holder_org_id": str(world.other_holder.id),
            "face_value": "30000.00",
            "service_categories": ["testing", "instrument_sharing"],
        },
    )
    assert answer.status_code == 302
    [issued] = vouchers_of(session, world.other_holder)
    assert issued.face_value == Decimal("30000.00")
    assert sorted(issued.service_categories) == ["instrument_sharing", "testing"]
    assert answer.headers["Location"].endswith(f"/vouchers/{issued.id}")


def test_a_refused_voucher_says_why_beside_the_field_and_keeps_the_input(client, world, session):
    sign_in(client, world.officer)
    token = csrf_token(client.get("/bureau/vouchers/new").data)
    answer = client.post(
        "/bureau/vouchers/new",
        data={
            "csrf_token": token,
            "holder_org_id": str(world.other_holder.id),
            "face_value": "0",
            "order_cap": "5000.00",
        },
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(r'id="face_value-error" role="alert">[^<]+', page)
    assert 'value="5000.00"' in page
    assert vouchers_of(session, world.other_holder) == []
    over_cap = client.post(
        "/bureau/vouchers/new",
        data={
            "csrf_token": token,
            "holder_org_id": str(world.other_holder.id),
            "face_value": "250000.00",
        },
    )
    assert over_cap.status_code == 422
    assert "form-errors" in over_cap.get_data(as_text=True) or "face_value-error" in (
        over_cap.get_data(as_text=True)
    )


def test_issuing_needs_the_csrf_token_and_an_officer(client, world, session):
    sign_in(client, world.officer)
    answer = client.post(
        "/bureau/vouchers/new",
        data={"holder_org_id": str(world.other_holder.id), "face_value": "1000.00"},
    )
    assert answer.status_code == 400
    token = csrf_token(client.get("/bureau").data)
    client.post("/logout", data={"csrf_token": token})
    sign_in(client, world.customer)
    assert client.get("/bureau").status_code == 403
    assert client.get("/bureau/vouchers/new").status_code == 403
    assert vouchers_of(session, world.other_holder) == []


def upload(client, token, text: str):
    return client.post(
        "/bureau/vouchers/batch",
        data={"csrf_token": token, "file": (io.BytesIO(text.encode("utf-8-sig")), "b.csv")},
        content_type="multipart/form-data",
    )


def test_a_batch_with_a_bad_row_issues_nothing_and_lists_the_rows(client, world, session):
    sign_in(client, world.officer)
    token = csrf_token(client.get("/bureau/vouchers/batch").data)
    good = f"{world.other_holder.uscc},,1000.00,,,,,,"
    bad = "911401000000000000,,abc,,,,,,"
    header = (
        "holder_uscc,holder_org_id,face_value,valid_from,valid_until,coverage_ratio,"
        "order_cap,service_categories,provider_regions"
    )
    answer = upload(client, token, f"{header}\n{good}\n{bad}\n")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    rows = re.findall(r"<tr><td>(\d+)</td><td>([a-z_]*)</td>", page)
    assert ("3", "holder_uscc") in rows or ("3", "face_value") in rows
    assert vouchers_of(session, world.other_holder) == []

    answer = upload(client, token, f"{header}\n{good}\n")
    assert answer.status_code == 200
    assert len(vouchers_of(session, world.other_holder)) == 1
    assert "140100-2026-" in answer.get_data(as_text=True)


def test_a_batch_without_a_file_says_so(client, world):
    sign_in(client, world.officer)
    token = csrf_token(client.get("/bureau/vouchers/batch").data)
    answer = client.post("/bureau/vouchers/batch", data={"csrf_token": token})
    assert answer.status_code == 422
    assert 'id="file-error"' in answer.get_data(as_text=True)


def test_the_bureau_overview_counts_its_work(client, world):
    sign_in(client, world.officer)
    page = client.get("/bureau").get_data(as_text=True)
    assert re.search(r'id="claims-to-audit">0<', page)
    assert "/reports/voucher-settlement" in page
    assert 'href="/bureau"' in page  # in the navigation


# --- the vouchers' pages -----------------------------------------------------------------


def test_the_holder_sees_balance_holds_and_ledger(client, world, session):
    made = booking.create_reservation(
        session,
        actor_of(session, world.customer),
        {
            "resource_id": world.resource.id,
            "start": datetime(2026, 12, 2, 10, tzinfo=SH),
            "end": datetime(2026, 12, 2, 12, tzinfo=SH),
            "purpose": "SEM",
            "voucher_id": world.voucher.id,
        },
    )
    booking.approve(session, actor_of(session, world.lab_admin), made.id)
    session.commit()
    sign_in(client, world.customer)
    listing = client.get("/vouchers").get_data(as_text=True)
    assert world.voucher.number in listing
    assert "¥9,800.00" in listing  # available: 10,000 less 200 held
    page = client.get(f"/vouchers/{world.voucher.id}").get_data(as_text=True)
    assert re.search(r'id="voucher-balance">¥10,000.00<', page)
    assert re.search(r'id="voucher-held">¥200.00<', page)
    assert re.search(r'id="voucher-available">¥9,800.00<', page)
    assert f"/bookings/{made.id}" in page
    assert page.count("<tr>") >= 3  # the issue and hold entries, and the hold
    assert 'href="/vouchers"' in page
    assert_nothing_inline(page)


def test_another_enterprise_s_voucher_is_not_found(client, world, session):
    stranger_org = create_org(session, "enterprise")
    stranger = create_user(session, stranger_org)
    session.commit()
    sign_in(client, stranger)
    assert client.get(f"/vouchers/{world.voucher.id}").status_code == 404
    assert world.voucher.number not in client.get("/vouchers").get_data(as_text=True)
