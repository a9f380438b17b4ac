"""The approval queue and approvers pages: bulk decisions with CSRF, errors
beside the field with the ticks kept, nothing inline the CSP would block."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.models.reservations import Reservation
from booking.services import reservations as booking
from tests.factories.accounts import PASSWORD, create_user
from tests.web.test_pages_accounts import csrf_token

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # a Tuesday


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def sign_in(client, user) -> None:
    token = csrf_token(client.get("/login").data)
    answer = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 302


def request(world, day: int, purpose: str = "SEM") -> Reservation:
    return booking.create_reservation(
        world.session,
        world.customer_actor,
        {
            "resource_id": world.resource.id,
            "start": datetime(2026, 12, day, 10, tzinfo=SH),
            "end": datetime(2026, 12, day, 12, tzinfo=SH),
            "purpose": purpose,
        },
    )


@pytest.fixture
def world(booking_world, session, frozen):
    w = booking_world()
    w.later = request(w, 3, "XRD 物相分析")
    frozen.shift(timedelta(minutes=1))
    w.earlier = request(w, 2, "SEM 形貌观察")
    session.commit()
    return w


def status_of(session, reservation_id: int) -> str:
    session.expire_all()
    return session.get(Reservation, reservation_id).status.value


def assert_nothing_inline(page: str) -> None:
    assert "style=" not in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert not re.search(r"\son[a-z]+=", page)


def test_the_queue_page_lists_requests_oldest_first_with_checkboxes(client, world):
    sign_in(client, world.lab_admin)
    answer = client.get("/approvals")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert page.index("XRD 物相分析") < page.index("SEM 形貌观察")
    assert f'name="ids" value="{world.later.id}"' in page
    assert f'name="ids" value="{world.earlier.id}"' in page
    assert "太原某材料公司" in page
    assert "¥400.00" in page
    assert 'name="csrf_token"' in page
    assert "js/approvals.js" in page
    assert 'href="/approvals"' in page  # in the navigation
    assert_nothing_inline(page)


def test_approve_the_ticked_requests(client, world, session):
    sign_in(client, world.lab_admin)
    token = csrf_token(client.get("/approvals").data)
    answer = client.post(
        "/approvals/decide",
        data={"csrf_token": token, "ids": [world.later.id, world.earlier.id], "action": "approve"},
    )
    assert answer.status_code == 302
    assert status_of(session, world.later.id) == "approved"
    assert status_of(session, world.earlier.id) == "approved"
    after = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "2 个已批准" in after or "2 approved" in after
    assert "没有等待审核的申请" in after or "No requests are waiting" in after


def test_reject_without_a_reason_keeps_the_ticks_and_says_why_beside_the_field(
    client, world, session
):
    sign_in(client, world.lab_admin)
    token = csrf_token(client.get("/approvals").data)
    answer = client.post(
        "/approvals/decide",
        data={"csrf_token": token, "ids": [world.earlier.id], "action": "reject", "reason": " "},
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert f'value="{world.earlier.id}" id="request-{world.earlier.id}" checked' in page
    assert f'value="{world.later.id}" id="request-{world.later.id}">' in page
    assert re.search(r'id="reason-error" role="alert">[^<]*拒绝', page)
    assert status_of(session, world.earlier.id) == "requested"

    token = csrf_token(page.encode())
    answer = client.post(
        "/approvals/decide",
        data={
            "csrf_token": token,
            "ids": [world.earlier.id],
            "action": "reject",
            "reason": "样品不符合要求",
        },
    )
    assert answer.status_code == 302
    assert status_of(session, world.earlier.id) == "rejected"


def test_nothing_ticked_is_an_error_beside_the_list(client, world):
    sign_in(client, world.lab_admin)
    token = csrf_token(client.get("/approvals").data)
    answer = client.post("/approvals/decide", data={"csrf_token": token, "action": "approve"})
    assert answer.status_code == 422
    assert 'id="ids-error" role="alert"' in answer.get_data(as_text=True)


def test_a_refused_request_is_named_and_the_rest_decided(client, world, session):
    sign_in(client, world.lab_admin)
    token = csrf_token(client.get("/approvals").data)
    booking.cancel(session, world.customer_actor, world.later.id, None, "this")
    session.commit()
    answer = client.post(
        "/approvals/decide",
        data={"csrf_token": token, "ids": [world.later.id, world.earlier.id], "action": "approve"},
        follow_redirects=True,
    )
    page = answer.get_data(as_text=True)
    assert status_of(session, world.earlier.id) == "approved"
    assert f"申请 {world.later.id}" in page or f"Request {world.later.id}" in page


def test_deciding_needs_the_csrf_token(client, world, session):
    sign_in(client, world.lab_admin)
    answer = client.post("/approvals/decide", data={"ids": [world.later.id], "action": "approve"})
    assert answer.status_code == 400
    assert status_of(session, world.later.id) == "requested"


def test_customers_neither_see_nor_open_the_queue(client, world):
    sign_in(client, world.customer_user)
    assert 'href="/approvals"' not in client.get("/").get_data(as_text=True)
    assert client.get("/approvals").status_code == 403


def test_a_named_approver_sees_the_queue_in_the_navigation(client, world, session):
    from booking.services import approvals

    technician = create_user(session, world.provider, "member")
    approvals.name_approver(session, world.lab_actor, world.resource.id, user_id=technician.id)
    session.commit()
    sign_in(client, technician)
    assert 'href="/approvals"' in client.get("/").get_data(as_text=True)
    assert "XRD 物相分析" in client.get("/approvals").get_data(as_text=True)


def test_the_approvers_page_names_and_removes(client, world, session):
    technician = create_user(session, world.provider, "member", name="王技术员")
    session.commit()
    sign_in(client, world.lab_admin)
    url = f"/lab/resources/{world.resource.id}/approvers"
    page = client.get(url)
    assert page.status_code == 200
    assert_nothing_inline(page.get_data(as_text=True))

    token = csrf_token(page.data)
    refused = client.post(url, data={"csrf_token": token, "email": world.customer_user.email})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert f'value="{world.customer_user.email}"' in text
    assert 'id="email-error" role="alert"' in text

    named = client.post(url, data={"csrf_token": token, "email": technician.email})
    assert named.status_code == 302
    assert "王技术员" in client.get(url).get_data(as_text=True)

    removed = client.post(f"{url}/{technician.id}/remove", data={"csrf_token": token})
    assert removed.status_code == 302
    assert "王技术员" not in client.get(url).get_data(as_text=True)


def test_another_labs_approvers_page_is_not_found(client, world, booking_world, session):
    theirs = booking_world()
    session.commit()
    sign_in(client, theirs.lab_admin)
    assert client.get(f"/lab/resources/{world.resource.id}/approvers").status_code == 404
