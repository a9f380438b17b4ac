"""The lab admin's pages: the dashboard's figures (read by SQL), check-in
and check-out, the completion form with the computed cost and voucher share,
approve and reject from the booking page; CSRF on every post; other labs'
bookings are 404."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.models.reservations import Reservation
from booking.services import reservations as booking
from tests.factories.accounts import actor_of
from tests.factories.catalog import create_lab
from tests.factories.reservations import create_reservation
from tests.web.test_pages_accounts import csrf_token
from tests.web.test_pages_approvals import assert_nothing_inline, sign_in

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # a Tuesday


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def request_booking(session, world, start, end, voucher=True) -> Reservation:
    return booking.create_reservation(
        session,
        actor_of(session, world.customer),
        {
            "resource_id": world.resource.id,
            "start": start,
            "end": end,
            "purpose": "SEM",
            "voucher_id": world.voucher.id if voucher else None,
        },
    )


@pytest.fixture
def world(voucher_world, session):
    w = voucher_world()
    w.today = request_booking(
        session, w, datetime(2026, 12, 1, 10, tzinfo=SH), datetime(2026, 12, 1, 12, tzinfo=SH)
    )
    booking.approve(session, actor_of(session, w.lab_admin), w.today.id)
    w.waiting = request_booking(
        session, w, datetime(2026, 12, 2, 10, tzinfo=SH), datetime(2026, 12, 2, 11, tzinfo=SH)
    )
    session.commit()
    return w


def reload(session, reservation_id) -> Reservation:
    session.expire_all()
    return session.get(Reservation, reservation_id)


def used(session, world, start, end, cost, voucher) -> Reservation:
    return create_reservation(
        session,
        world.resource,
        world.enterprise,
        world.customer,
        start,
        end,
        status="completed",
        actual_start=start,
        actual_end=end,
        final_cost=Decimal(cost),
        voucher_amount=Decimal(voucher),
        customer_amount=Decimal(cost) - Decimal(voucher),
    )


def test_the_dashboard_shows_today_the_queue_and_the_month(client, world, session):
    # Used this month (local time: 1 December 00:30 is 30 November in UTC) and last month.
    used(
        session,
        world,
        datetime(2026, 12, 1, 0, 30, tzinfo=SH),
        datetime(2026, 12, 1, 2, 0, tzinfo=SH),
        "300.00",
        "150.00",
    )
    used(
        session,
        world,
        datetime(2026, 11, 30, 20, 0, tzinfo=SH),
        datetime(2026, 11, 30, 23, 0, tzinfo=SH),
        "600.00",
        "300.00",
    )
    session.commit()
    sign_in(client, world.lab_admin)
    answer = client.get("/lab")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert re.search(r'id="pending-approvals">1<', page)
    assert re.search(r'id="month-hours">1.5<', page)
    assert re.search(r'id="month-income">¥300.00<', page)
    assert f"/lab/bookings/{world.today.id}/check-in" in page
    assert 'href="/lab"' in page  # in the navigation
    assert_nothing_inline(page)


def test_the_dashboard_is_for_lab_admins(client, world):
    sign_in(client, world.customer)
    assert client.get("/lab").status_code == 403
    assert 'href="/lab"' not in client.get("/bookings").get_data(as_text=True)


def test_check_in_and_check_out_from_the_dashboard(client, world, session, frozen):
    frozen.move_to(datetime(2026, 12, 1, 9, 55, tzinfo=SH))
    sign_in(client, world.lab_admin)
    token = csrf_token(client.get("/lab").data)
    path = f"/lab/bookings/{world.today.id}"
    assert client.post(f"{path}/check-in", data={"next": "/lab"}).status_code == 400
    answer = client.post(f"{path}/check-in", data={"csrf_token": token, "next": "/lab"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/lab")
    assert reload(session, world.today.id).status.value == "in_use"
    frozen.move_to(datetime(2026, 12, 1, 11, 40, tzinfo=SH))
    client.post(f"{path}/check-out", data={"csrf_token": token})
    done = reload(session, world.today.id)
    assert done.actual_end == datetime(2026, 12, 1, 11, 40, tzinfo=SH)


def test_a_refused_move_says_why(client, world, session):
    sign_in(client, world.lab_admin)
    token = csrf_token(client.get("/lab").data)
    # 08:00: check-in opens an hour before the 10:00 start.
    answer = client.post(
        f"/lab/bookings/{world.today.id}/check-in",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert "flash-error" in answer.get_data(as_text=True)
    assert reload(session, world.today.id).status.value == "approved"


def test_the_completion_form_computes_the_cost_and_the_voucher_share(
    client, world, session, frozen
):
    frozen.move_to(datetime(2026, 12, 1, 12, 30, tzinfo=SH))
    sign_in(client, world.lab_admin)
    page = client.get(f"/lab/bookings/{world.today.id}/complete").get_data(as_text=True)
    assert 'value="2026-12-01T10:00"' in page and 'value="2026-12-01T12:00"' in page
    token = csrf_token(page.encode())
    answer = client.post(
        f"/lab/bookings/{world.today.id}/complete",
        data={
            "csrf_token": token,
            "actual_start": "2026-12-01T10:00",
            "actual_end": "2026-12-01T11:30",
            "service_way": "guided",
            "prep_minutes": "15",
            "post_minutes": "10",
        },
    )
    assert answer.status_code == 302
    done = reload(session, world.today.id)
    assert done.status.value == "completed"
    assert done.final_cost == Decimal("300.00")
    assert done.voucher_amount == Decimal("150.00")
    assert done.prep_minutes == 15 and done.service_way.value == "guided"
    shown = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert 'id="final-cost">¥300.00<' in shown
    assert 'id="voucher-amount">¥150.00<' in shown
    assert 'id="customer-amount">¥150.00<' in shown


def test_a_completion_in_the_future_is_refused_beside_the_field(client, world, session, frozen):
    frozen.move_to(datetime(2026, 12, 1, 11, 0, tzinfo=SH))
    sign_in(client, world.lab_admin)
    token = csrf_token(client.get(f"/lab/bookings/{world.today.id}/complete").data)
    answer = client.post(
        f"/lab/bookings/{world.today.id}/complete",
        data={
            "csrf_token": token,
            "actual_start": "2026-12-01T10:00",
            "actual_end": "2026-12-01T12:00",
            "service_way": "self_operated",
            "prep_minutes": "abc",
        },
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(r'id="prep_minutes-error" role="alert">[^<]+', page)
    assert 'value="abc"' in page
    answer = client.post(
        f"/lab/bookings/{world.today.id}/complete",
        data={
            "csrf_token": token,
            "actual_start": "2026-12-01T10:00",
            "actual_end": "2026-12-01T12:00",
            "service_way": "self_operated",
        },
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(r'id="actual_end-error" role="alert">[^<]+', page)
    assert reload(session, world.today.id).status.value == "approved"


def test_another_lab_s_booking_is_not_found(client, world, session):
    _, other_admin, _ = create_lab(session)
    session.commit()
    sign_in(client, other_admin)
    token = csrf_token(client.get("/lab").data)
    assert client.get(f"/lab/bookings/{world.today.id}/complete").status_code == 404
    answer = client.post(f"/lab/bookings/{world.today.id}/check-in", data={"csrf_token": token})
    assert answer.status_code == 404
    assert client.get(f"/bookings/{world.today.id}").status_code == 404


def test_the_customer_may_not_complete(client, world):
    sign_in(client, world.customer)
    assert client.get(f"/lab/bookings/{world.today.id}/complete").status_code == 403


def test_approve_and_reject_from_the_booking_page(client, world, session):
    sign_in(client, world.lab_admin)
    token = csrf_token(client.get(f"/bookings/{world.waiting.id}").data)
    answer = client.post(
        f"/lab/bookings/{world.waiting.id}/reject", data={"csrf_token": token, "reject-reason": ""}
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(r'id="reject-reason-error" role="alert">[^<]+', page)
    assert reload(session, world.waiting.id).status.value == "requested"
    answer = client.post(f"/lab/bookings/{world.waiting.id}/approve", data={"csrf_token": token})
    assert answer.status_code == 302
    approved = reload(session, world.waiting.id)
    assert approved.status.value == "approved"
    assert approved.voucher_hold == Decimal("100.00")
