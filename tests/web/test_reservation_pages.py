"""The lab admin's schedule page: day timeline and week grid of the lab's
resources, only for the lab's admins."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.models.catalog import Blackout
from booking.services import reservations as service

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def sign_in(client, user) -> None:
    with client.session_transaction() as web_session:
        web_session["_user_id"] = user.get_id()
        web_session["_fresh"] = True


@pytest.fixture
def lab(booking_world, session):
    world = booking_world()
    start = datetime(2026, 12, 2, 10, 0, tzinfo=SH)
    service.create_reservation(
        session,
        world.customer_actor,
        {
            "resource_id": world.resource.id,
            "start": start,
            "end": start.replace(hour=12),
            "purpose": "x",
        },
    )
    session.add(
        Blackout(
            resource_id=world.resource.id,
            start_at=start.replace(hour=14),
            end_at=start.replace(hour=15),
            reason="年度校准",
        )
    )
    session.commit()
    return world


def test_day_view_shows_bookings_with_customer_and_blackouts(client, lab):
    sign_in(client, lab.lab_admin)
    page = client.get("/lab/schedule?date=2026-12-02")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "太原某材料公司" in text and "年度校准" in text
    assert "10:00–12:00" in text
    # 10:00 for two hours, placed by js/schedule.js: the CSP allows no inline style.
    assert 'data-left="41.667" data-width="8.333"' in text
    assert "style=" not in text and "<style" not in text
    assert "css/schedule.css" in text and "js/schedule.js" in text
    assert "实验室排期" in text or "Lab schedule" in text


def test_week_view_lists_each_day(client, lab):
    sign_in(client, lab.lab_admin)
    text = client.get("/lab/schedule?date=2026-12-03&view=week").get_data(as_text=True)
    assert "11-30" in text and "12-06" in text  # Monday to Sunday
    assert "style=" not in text and "<style" not in text
    assert '<div class="schedule-scroll">' in text  # scrolls sideways on a phone
    assert "10:00–12:00" in text


def test_customers_and_other_labs_are_refused(client, lab, make_org, make_user, session):
    sign_in(client, lab.customer_user)
    assert client.get("/lab/schedule").status_code == 403
    other_admin = make_user(make_org("provider"), "admin")
    session.commit()
    client2 = client.application.test_client()
    sign_in(client2, other_admin)
    assert client2.get(f"/lab/schedule?provider_id={lab.provider.id}").status_code in (403, 404)
    own = client2.get("/lab/schedule")
    assert own.status_code == 200 and "太原某材料公司" not in own.get_data(as_text=True)


def test_anonymous_goes_to_sign_in(client, lab):
    answer = client.get("/lab/schedule")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
