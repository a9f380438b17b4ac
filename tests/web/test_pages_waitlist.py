"""The waiting-list pages, where an offer's mail links (/waitlist/<id>): the
entry answers its owner and 404s for anyone else; an open offer is booked
or declined from it; the pages need CSRF."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from booking.models.reservations import Reservation, WaitlistEntry
from booking.services import reservations as service
from booking.services import waitlist
from tests.factories.accounts import actor_of
from tests.web.test_pages_accounts import csrf_token
from tests.web.test_pages_approvals import sign_in

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 12, day, hour, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def offered(booking_world, session):
    """Wednesday 10-12 is taken; another enterprise waits for it; the holder
    cancels, so the one waiting is offered the time."""
    world = booking_world(name_zh="X射线衍射仪")
    wanted = {"resource_id": world.resource.id, "start": at(2, 10), "end": at(2, 12)}
    holder = service.create_reservation(session, world.customer_actor, {**wanted, "purpose": "XRD"})
    _org, waiting_user = world.another_customer("甲公司")
    entry = waitlist.join(session, actor_of(session, waiting_user), {**wanted, "purpose": "物相"})
    service.cancel(session, world.customer_actor, holder.id)
    assert entry.status.value == "offered"
    session.commit()
    return world, entry.id, waiting_user


def test_the_mail_link_shows_the_offer_to_its_owner_only(client, offered):
    world, entry_id, waiting_user = offered
    assert client.get(f"/waitlist/{entry_id}").status_code == 302  # signed out: sign in first

    sign_in(client, waiting_user)
    page = client.get(f"/waitlist/{entry_id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "X射线衍射仪" in text
    assert 'id="entry-state">已为您保留<' in text
    assert "2026-12-02 10:00" in text
    assert 'id="offer-deadline"><strong>2026-12-02 08:00<' in text  # 24 h, never past the start
    assert "预约这个时段" in text and "放弃" in text
    assert 'href="/waitlist">我的候补</a>' in client.get("/bookings").get_data(as_text=True)
    listed = client.get("/waitlist").get_data(as_text=True)
    assert f'href="/waitlist/{entry_id}"' in listed
    assert client.get("/waitlist/999999").status_code == 404

    client.post("/logout", data={"csrf_token": csrf_token(listed.encode())})
    # The first holder (another enterprise) and the lab see nothing there.
    for other in (world.customer_user, world.lab_admin):
        sign_in(client, other)
        assert client.get(f"/waitlist/{entry_id}").status_code == 404
        token = csrf_token(client.get("/bookings").data)
        assert (
            client.post(f"/waitlist/{entry_id}/accept", data={"csrf_token": token}).status_code
            == 404
        )
        client.post("/logout", data={"csrf_token": token})


def test_the_owner_books_the_offered_time(client, offered, session):
    _world, entry_id, waiting_user = offered
    sign_in(client, waiting_user)
    page = client.get(f"/waitlist/{entry_id}").data
    assert client.post(f"/waitlist/{entry_id}/accept").status_code == 400  # no CSRF token
    answer = client.post(f"/waitlist/{entry_id}/accept", data={"csrf_token": csrf_token(page)})
    assert answer.status_code == 302
    session.expire_all()
    entry = session.get(WaitlistEntry, entry_id)
    assert entry.status.value == "accepted"
    booking = session.get(Reservation, entry.reservation_id)
    assert (booking.start_at, booking.end_at) == (at(2, 10), at(2, 12))
    assert answer.headers["Location"].endswith(f"/bookings/{booking.id}")

    # Taken once: the offer is gone, and a second try says why.
    again = client.post(f"/waitlist/{entry_id}/accept", data={"csrf_token": csrf_token(page)})
    assert again.status_code == 409
    assert "该候补目前没有可接受的时段。" in again.get_data(as_text=True)


def test_the_owner_declines_and_the_entry_closes(client, offered, session):
    _world, entry_id, waiting_user = offered
    sign_in(client, waiting_user)
    token = csrf_token(client.get(f"/waitlist/{entry_id}").data)
    answer = client.post(
        f"/waitlist/{entry_id}/decline", data={"csrf_token": token}, follow_redirects=True
    )
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert 'id="entry-state">已放弃<' in text
    assert "预约这个时段" not in text
    session.expire_all()
    assert session.get(WaitlistEntry, entry_id).status.value == "declined"


def test_a_taken_time_offers_the_waiting_list_from_the_booking_form(client, booking_world, session):
    world = booking_world(name_zh="X射线衍射仪")
    wanted = {"resource_id": world.resource.id, "start": at(2, 10), "end": at(2, 12)}
    service.create_reservation(session, world.customer_actor, {**wanted, "purpose": "XRD"})
    _org, latecomer = world.another_customer("乙公司")
    session.commit()
    sign_in(client, latecomer)
    url = f"/catalog/resources/{world.resource.id}/book"
    fields = {
        "start": "2026-12-02T10:00",
        "end": "2026-12-02T12:00",
        "purpose": "物相分析",
        "csrf_token": csrf_token(client.get(url).data),
    }
    refused = client.post(url, data={**fields, "action": "book"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert 'name="action" value="waitlist">加入候补</button>' in page

    joined = client.post(url, data={**fields, "action": "waitlist"})
    assert joined.status_code == 302
    entry = session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.user_id == latecomer.id)
    ).one()
    assert joined.headers["Location"].endswith(f"/waitlist/{entry.id}")
    assert (entry.status.value, entry.start_at, entry.purpose) == ("waiting", at(2, 10), "物相分析")
    shown = client.get(f"/waitlist/{entry.id}").get_data(as_text=True)
    assert "您已加入候补。" in shown and 'id="entry-state">候补中<' in shown

    # Asking again leads to the same entry rather than a second one.
    again = client.post(url, data={**fields, "action": "waitlist"})
    assert again.headers["Location"].endswith(f"/waitlist/{entry.id}")
    session.rollback()
    assert len(session.scalars(select(WaitlistEntry)).all()) == 1

    # A free time is booked, not waited for: the message says so by the field.
    free = client.post(
        url,
        data={
            **fields,
            "start": "2026-12-03T10:00",
            "end": "2026-12-03T12:00",
            "action": "waitlist",
        },
    )
    assert free.status_code == 422
    text = free.get_data(as_text=True)
    assert "该时段空闲，请直接预约，无需候补。" in text and 'id="start-error"' in text
    assert 'value="2026-12-03T10:00"' in text and "物相分析" in text  # the input is kept
