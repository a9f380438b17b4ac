"""The customer's booking pages: the form with its estimate and voucher
share, refusals beside the fields with the input kept, conflicts with the
nearest free slots as buttons, "my bookings", one booking with its moves;
CSRF on every post; other enterprises' bookings are 404."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.models.reservations import Rating, Reservation
from booking.services import reservations as booking
from tests.factories.accounts import actor_of, create_org, create_user
from tests.factories.reservations import create_reservation
from tests.factories.vouchers import create_enterprise, create_voucher
from tests.web.test_pages_accounts import csrf_token
from tests.web.test_pages_approvals import assert_nothing_inline, sign_in

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # a Tuesday


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(voucher_world, session):
    w = voucher_world()
    session.commit()
    return w


def form_url(world, **query) -> str:
    url = f"/catalog/resources/{world.resource.id}/book"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


def book(client, world, token=None, **fields):
    data = {
        "start": "2026-12-02T10:00",
        "end": "2026-12-02T12:00",
        "purpose": "SEM 形貌观察",
        "customer_org_id": str(world.enterprise.id),
        "voucher_id": str(world.voucher.id),
        "action": "book",
        **fields,
    }
    if token is not None:
        data["csrf_token"] = token
    return client.post(form_url(world), data=data)


def reload(session, reservation_id) -> Reservation:
    session.expire_all()
    return session.get(Reservation, reservation_id)


# --- the form -----------------------------------------------------------------------------


def test_a_picked_span_fills_the_form_with_the_estimate_and_the_voucher_share(client, world):
    sign_in(client, world.customer)
    answer = client.get(form_url(world, start="2026-12-02T10:00", end="2026-12-02T12:00"))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert 'value="2026-12-02T10:00"' in page and 'value="2026-12-02T12:00"' in page
    # 2 hours at the enterprise price of 200.00; the voucher covers half.
    assert re.search(r'id="estimate-total">¥400.00<', page)
    assert re.search(r'id="estimate-voucher">¥200.00<', page)
    assert re.search(r'id="estimate-customer">¥200.00<', page)
    # The voucher that pays most is chosen at first sight.
    assert re.search(rf'name="voucher_id" value="{world.voucher.id}" checked', page)
    assert world.voucher.number in page
    assert "js/booking_form.js" in page and 'data-book-url="' in page
    assert_nothing_inline(page)


def test_a_span_longer_than_a_booking_may_be_is_cut_to_the_default_length(client, world):
    sign_in(client, world.customer)
    page = client.get(form_url(world, start="2026-12-02T08:00", end="2026-12-02T18:00")).get_data(
        as_text=True
    )
    assert 'value="2026-12-02T08:00"' in page
    # The factory's resource: 30 minutes at least, 8 hours at most: an hour is offered.
    assert 'value="2026-12-02T09:00"' in page


def test_the_estimate_panel_alone_follows_the_fields(client, world):
    sign_in(client, world.customer)
    answer = client.get(
        f"/catalog/resources/{world.resource.id}/estimate?start=2026-12-02T10:00"
        f"&end=2026-12-02T13:00&voucher_id={world.voucher.id}"
        f"&customer_org_id={world.enterprise.id}"
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert "<html" not in page
    assert re.search(r'id="estimate-total">¥600.00<', page)
    assert re.search(r'id="estimate-customer">¥300.00<', page)
    no_voucher = client.get(
        f"/catalog/resources/{world.resource.id}/estimate?start=2026-12-02T10:00"
        f"&end=2026-12-02T13:00&voucher_id="
    ).get_data(as_text=True)
    assert re.search(r'id="estimate-customer">¥600.00<', no_voucher)


def test_booking_with_a_voucher_makes_a_request_and_shows_it(client, world, session):
    sign_in(client, world.customer)
    token = csrf_token(client.get(form_url(world)).data)
    answer = book(client, world, token)
    assert answer.status_code == 302
    made = session.scalars(Reservation.__table__.select().with_only_columns(Reservation.id)).all()
    assert len(made) == 1
    reservation = reload(session, made[0])
    assert reservation.status.value == "requested"
    assert reservation.voucher_id == world.voucher.id
    assert reservation.estimated_cost == Decimal("400.00")
    assert answer.headers["Location"].endswith(f"/bookings/{reservation.id}")
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert 'id="booking-state"' in page
    assert world.voucher.number in page
    assert f"/reservations/{reservation.id}.ics" in page


def test_booking_needs_the_csrf_token(client, world, session):
    sign_in(client, world.customer)
    answer = book(client, world, token=None)
    assert answer.status_code == 400
    assert session.query(Reservation).count() == 0


def test_a_refused_time_is_said_beside_the_field_and_the_input_is_kept(client, world, session):
    sign_in(client, world.customer)
    token = csrf_token(client.get(form_url(world)).data)
    answer = book(client, world, token, start="2026-12-02T20:00", end="2026-12-02T21:00")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(r'id="start-error" role="alert">[^<]+', page)
    assert 'aria-invalid="true"' in page
    assert 'value="2026-12-02T20:00"' in page
    assert "SEM 形貌观察" in page
    assert session.query(Reservation).count() == 0


def test_an_end_before_the_start_is_refused_beside_the_end(client, world):
    sign_in(client, world.customer)
    token = csrf_token(client.get(form_url(world)).data)
    answer = book(client, world, token, start="2026-12-02T12:00", end="2026-12-02T10:00")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(r'id="end-error" role="alert">[^<]+', page)
    assert 'value="2026-12-02T12:00"' in page


def test_a_missing_time_asks_for_one(client, world):
    sign_in(client, world.customer)
    token = csrf_token(client.get(form_url(world)).data)
    answer = book(client, world, token, start="", end="")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="start-error"' in page and 'id="end-error"' in page


def test_a_conflict_offers_the_nearest_free_slots_as_buttons_that_refill_the_form(
    client, world, session
):
    other_org = create_org(session, "enterprise")
    other_user = create_user(session, other_org)
    booking.create_reservation(
        session,
        actor_of(session, other_user),
        {
            "resource_id": world.resource.id,
            "start": datetime(2026, 12, 2, 10, tzinfo=SH),
            "end": datetime(2026, 12, 2, 12, tzinfo=SH),
            "purpose": "taken",
        },
    )
    session.commit()
    sign_in(client, world.customer)
    token = csrf_token(client.get(form_url(world)).data)
    answer = book(client, world, token)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 409
    picks = re.findall(r'name="pick" value="([^"]+)"', page)
    assert "2026-12-02T08:00|2026-12-02T10:00" in picks
    assert "2026-12-02T12:00|2026-12-02T14:00" in picks
    assert "SEM 形貌观察" in page

    token = csrf_token(page.encode())
    refilled = client.post(
        form_url(world),
        data={
            "csrf_token": token,
            "pick": "2026-12-02T12:00|2026-12-02T14:00",
            "purpose": "SEM 形貌观察",
            "voucher_id": str(world.voucher.id),
        },
    )
    page = refilled.get_data(as_text=True)
    assert refilled.status_code == 200
    assert 'value="2026-12-02T12:00"' in page and 'value="2026-12-02T14:00"' in page
    assert re.search(r'id="estimate-total">¥400.00<', page)
    assert session.query(Reservation).count() == 1  # a pick books nothing


def test_someone_else_s_voucher_is_refused_beside_the_voucher(client, world, session):
    holder = create_enterprise(session)
    foreign = create_voucher(session, world.bureau, holder, officer=world.officer)
    session.commit()
    sign_in(client, world.customer)
    token = csrf_token(client.get(form_url(world)).data)
    answer = book(client, world, token, voucher_id=str(foreign.id))
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(r'id="voucher_id-error" role="alert">[^<]+', page)
    assert session.query(Reservation).count() == 0


def test_the_form_needs_a_signed_in_user(client, world):
    answer = client.get(form_url(world))
    assert answer.status_code == 302
    assert "/login" in answer.headers["Location"]


# --- my bookings and one booking ---------------------------------------------------------


def past_completed(session, world) -> Reservation:
    return create_reservation(
        session,
        world.resource,
        world.enterprise,
        world.customer,
        datetime(2026, 11, 20, 9, tzinfo=SH),
        status="completed",
        final_cost=Decimal("400.00"),
        voucher_amount=Decimal("200.00"),
        customer_amount=Decimal("200.00"),
    )


def upcoming(session, world, day=3) -> Reservation:
    return booking.create_reservation(
        session,
        world.actor(session, world.customer),
        {
            "resource_id": world.resource.id,
            "start": datetime(2026, 12, day, 10, tzinfo=SH),
            "end": datetime(2026, 12, day, 12, tzinfo=SH),
            "purpose": "XRD",
        },
    )


def test_my_bookings_lists_upcoming_and_past_apart(client, world, session):
    soon = upcoming(session, world)
    done = past_completed(session, world)
    session.commit()
    sign_in(client, world.customer)
    page = client.get("/bookings").get_data(as_text=True)
    assert f'/bookings/{soon.id}"' in page
    assert f'/bookings/{done.id}"' not in page
    assert f"/bookings/{soon.id}/reschedule" in page
    past = client.get("/bookings?when=past").get_data(as_text=True)
    assert f'/bookings/{done.id}"' in past
    assert f"/bookings/{done.id}#rate" in past
    assert "¥400.00" in past and "¥200.00" in past
    assert 'href="/bookings"' in page  # in the navigation
    assert_nothing_inline(page)


def test_another_enterprise_s_booking_is_not_found(client, world, session):
    soon = upcoming(session, world)
    other_org = create_org(session, "enterprise")
    stranger = create_user(session, other_org)
    session.commit()
    sign_in(client, stranger)
    assert client.get(f"/bookings/{soon.id}").status_code == 404
    token = csrf_token(client.get("/bookings").data)
    assert client.post(f"/bookings/{soon.id}/cancel", data={"csrf_token": token}).status_code == 404
    assert client.get(f"/bookings/{soon.id}/reschedule").status_code == 404
    assert reload(session, soon.id).status.value == "requested"


def test_the_mail_address_of_a_booking_leads_to_its_page(client, world, session):
    soon = upcoming(session, world)
    session.commit()
    answer = client.get(f"/reservations/{soon.id}")
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/bookings/{soon.id}")


def test_cancel_from_the_booking_page(client, world, session):
    soon = upcoming(session, world)
    session.commit()
    sign_in(client, world.customer)
    token = csrf_token(client.get(f"/bookings/{soon.id}").data)
    assert client.post(f"/bookings/{soon.id}/cancel").status_code == 400
    answer = client.post(
        f"/bookings/{soon.id}/cancel", data={"csrf_token": token, "cancel-reason": "plans changed"}
    )
    assert answer.status_code == 302
    assert reload(session, soon.id).status.value == "cancelled"


def test_a_late_cancel_is_refused_beside_the_reason_with_it_kept(client, world, session, frozen):
    soon = upcoming(session, world, day=2)
    session.commit()
    frozen.move_to(datetime(2026, 12, 2, 9, 0, tzinfo=SH))  # an hour before the start
    sign_in(client, world.customer)
    token = csrf_token(client.get(f"/bookings/{soon.id}").data)
    answer = client.post(
        f"/bookings/{soon.id}/cancel", data={"csrf_token": token, "cancel-reason": "ill"}
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert re.search(r'id="cancel-reason-error" role="alert">[^<]+', page)
    assert re.search(r">\s*ill</textarea>", page)
    assert reload(session, soon.id).status.value == "requested"


def test_move_a_booking_to_another_time(client, world, session):
    soon = upcoming(session, world)
    session.commit()
    sign_in(client, world.customer)
    page = client.get(f"/bookings/{soon.id}/reschedule").get_data(as_text=True)
    assert 'value="2026-12-03T10:00"' in page
    token = csrf_token(page.encode())
    answer = client.post(
        f"/bookings/{soon.id}/reschedule",
        data={"csrf_token": token, "start": "2026-12-04T14:00", "end": "2026-12-04T16:00"},
    )
    assert answer.status_code == 302
    moved = reload(session, soon.id)
    assert moved.start_at == datetime(2026, 12, 4, 14, tzinfo=SH)

    bad = client.post(
        f"/bookings/{soon.id}/reschedule",
        data={"csrf_token": token, "start": "2026-12-05T14:00", "end": "2026-12-05T16:00"},
    )
    assert bad.status_code == 422  # a Saturday: closed
    assert re.search(r'id="start-error" role="alert">[^<]+', bad.get_data(as_text=True))
    assert 'value="2026-12-05T14:00"' in bad.get_data(as_text=True)


def test_rate_a_completed_booking_once(client, world, session):
    done = past_completed(session, world)
    session.commit()
    sign_in(client, world.customer)
    page = client.get(f"/bookings/{done.id}").get_data(as_text=True)
    assert 'id="final-cost">¥400.00<' in page
    assert 'id="voucher-amount">¥200.00<' in page
    token = csrf_token(page.encode())
    empty = client.post(f"/bookings/{done.id}/rate", data={"csrf_token": token})
    assert empty.status_code == 422
    assert 'id="rating-score-error"' in empty.get_data(as_text=True)
    answer = client.post(
        f"/bookings/{done.id}/rate",
        data={"csrf_token": token, "rating-score": "5", "rating-comment": "很专业"},
    )
    assert answer.status_code == 302
    assert session.query(Rating).filter_by(reservation_id=done.id).one().score == 5
    again = client.get(f"/bookings/{done.id}").get_data(as_text=True)
    assert "很专业" in again and 'id="rate"' not in again


def test_the_lab_sees_the_booking_with_its_moves_and_the_customer_does_not(client, world, session):
    soon = upcoming(session, world)
    session.commit()
    sign_in(client, world.customer)
    mine = client.get(f"/bookings/{soon.id}").get_data(as_text=True)
    assert f"/lab/bookings/{soon.id}/approve" not in mine
    client.post("/logout", data={"csrf_token": csrf_token(mine.encode())})
    sign_in(client, world.lab_admin)
    theirs = client.get(f"/bookings/{soon.id}").get_data(as_text=True)
    assert f"/lab/bookings/{soon.id}/approve" in theirs
    assert f"/lab/bookings/{soon.id}/reject" in theirs
