"""Calendar feeds over HTTP, as calendar programs see them: parsed by two
independent parsers and expanded by recurring-ical-events; the same instant
across time zones; cancellations; who sees what; revocation; ETag and 304."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
import recurring_ical_events
import vobject
from sqlalchemy import event, select

from booking.domain import ical
from booking.models.accounts import Membership, Role
from booking.services import feeds
from tests.factories.feeds import feed_path
from tests.factories.reservations import create_reservation

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, tomorrow


@pytest.fixture(autouse=True)
def fixed_clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


def book(session, w, user, org, start=START, end=None, **fields):
    return create_reservation(session, w.resource, org, user, start, end, **fields)


def parse(body: bytes):
    calendar = icalendar.Calendar.from_ical(body)
    other = vobject.readOne(body.decode("utf-8"))
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    other_uids = {e.uid.value for e in getattr(other, "vevent_list", [])}
    assert set(events) == other_uids, "the two parsers disagree"
    return calendar, events, other


def uid(reservation) -> str:
    return f"reservation-{reservation.id}@testserver"


@contextlib.contextmanager
def counted_queries(db):
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


# --- what calendar programs read ---------------------------------------------------


def test_personal_feed_parses_in_two_parsers_and_expands(client, session, feed_world, make_feed):
    w = feed_world
    mine = book(session, w, w.alice, w.enterprise_a, samples=3, purpose="观察断口")
    # A weekly series: one event per occurrence.
    series = [
        book(session, w, w.alice, w.enterprise_a, START + timedelta(days=7 * i, hours=4))
        for i in range(1, 4)
    ]
    token, _ = make_feed(w.alice, w.enterprise_a)
    session.commit()

    answer = client.get(feed_path(token))
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/calendar; charset=utf-8"
    calendar, events, _ = parse(answer.data)
    assert set(events) == {uid(mine), *(uid(r) for r in series)}
    assert "我的预约" in str(calendar["X-WR-CALNAME"])
    assert calendar["REFRESH-INTERVAL"].dt == timedelta(minutes=15)
    assert calendar["X-PUBLISHED-TTL"]
    event = events[uid(mine)]
    assert event["STATUS"] == "CONFIRMED" and event["SUMMARY"] == "场发射扫描电镜"
    assert f"R{mine.id:06d}" in str(event["DESCRIPTION"])
    assert f"http://testserver/reservations/{mine.id}" in str(event["DESCRIPTION"])
    assert "样品数：3" in str(event["DESCRIPTION"])

    expanded = recurring_ical_events.of(calendar).between(
        datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    )
    assert sorted(e["DTSTART"].dt.astimezone(UTC) for e in expanded) == [
        START,
        *(START + timedelta(days=7 * i, hours=4) for i in range(1, 4)),
    ]


def test_the_same_instant_as_booked_across_time_zones(client, session, feed_world, make_feed):
    from datetime import timezone

    w = feed_world
    booked_at = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    booking = book(session, w, w.alice, w.enterprise_a, booked_at, booked_at + timedelta(hours=2))
    token, _ = make_feed(w.alice, w.enterprise_a)
    session.commit()
    body = client.get(feed_path(token)).data
    assert b"DTSTART;TZID=Asia/Shanghai:20260302T090000" in body
    calendar, events, other = parse(body)
    event = events[uid(booking)]
    assert event["DTSTART"].dt.astimezone(UTC) == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert event["DTEND"].dt.astimezone(UTC) == datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    assert other.vevent.dtstart.value.astimezone(UTC) == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    # A client in New York expands it to the same instant (20:00 the evening before).
    from zoneinfo import ZoneInfo

    new_york = ZoneInfo("America/New_York")
    [occurrence] = recurring_ical_events.of(calendar).between(
        datetime(2026, 3, 1, tzinfo=new_york), datetime(2026, 3, 2, tzinfo=new_york)
    )
    assert occurrence["DTSTART"].dt.astimezone(new_york).hour == 20


def test_a_cancellation_reaches_the_client_and_leaves_after_30_days(
    client, session, feed_world, make_feed, fixed_clock
):
    w = feed_world
    booking = book(session, w, w.alice, w.enterprise_a)
    token, _ = make_feed(w.alice, w.enterprise_a)
    session.commit()
    before = parse(client.get(feed_path(token)).data)[1][uid(booking)]

    booking.status = "cancelled"
    booking.cancelled_at = NOW
    booking.sequence += 1
    session.commit()
    after = parse(client.get(feed_path(token)).data)[1][uid(booking)]
    assert after["STATUS"] == "CANCELLED"
    assert after["SEQUENCE"] > before["SEQUENCE"]
    assert after["LAST-MODIFIED"].dt >= before["LAST-MODIFIED"].dt
    assert "已取消" in after["SUMMARY"]

    fixed_clock.move_to(NOW + timedelta(days=29), tick=False)
    assert uid(booking) in parse(client.get(feed_path(token)).data)[1]
    fixed_clock.move_to(NOW + timedelta(days=31), tick=False)
    assert uid(booking) not in parse(client.get(feed_path(token)).data)[1]


def test_the_window_is_90_days_back_and_365_ahead(client, session, feed_world, make_feed):
    w = feed_world
    old = book(session, w, w.alice, w.enterprise_a, NOW - timedelta(days=92))
    recent = book(session, w, w.alice, w.enterprise_a, NOW - timedelta(days=80))
    near = book(session, w, w.alice, w.enterprise_a, NOW + timedelta(days=360))
    far = book(session, w, w.alice, w.enterprise_a, NOW + timedelta(days=370))
    token, _ = make_feed(w.alice, w.enterprise_a)
    session.commit()
    events = parse(client.get(feed_path(token)).data)[1]
    assert uid(recent) in events and uid(near) in events
    assert uid(old) not in events and uid(far) not in events


def test_summary_and_location_follow_the_owners_language(client, session, feed_world, make_feed):
    w = feed_world
    booking = book(session, w, w.anna, w.enterprise_a)
    token, _ = make_feed(w.anna, w.enterprise_a)  # anna reads English
    session.commit()
    calendar, events, _ = parse(client.get(feed_path(token)).data)
    event = events[uid(booking)]
    assert event["SUMMARY"] == "Field-emission SEM"
    assert event["LOCATION"] == "Shanxi Analysis Centre, 测试楼 201"
    assert str(calendar["X-WR-CALNAME"]).startswith("My bookings")


# --- who sees what ----------------------------------------------------------------------


def test_a_member_sees_own_bookings_and_the_enterprise_admin_all_of_them(
    client, session, feed_world, make_feed
):
    w = feed_world
    alices = book(session, w, w.alice, w.enterprise_a)
    annas = book(session, w, w.anna, w.enterprise_a, START + timedelta(hours=3))
    bobs = book(session, w, w.bob, w.enterprise_b, START + timedelta(hours=6))
    alice_token, _ = make_feed(w.alice, w.enterprise_a)
    anna_token, _ = make_feed(w.anna, w.enterprise_a)
    bob_token, _ = make_feed(w.bob, w.enterprise_b)
    session.commit()
    assert set(parse(client.get(feed_path(alice_token)).data)[1]) == {uid(alices)}
    assert set(parse(client.get(feed_path(anna_token)).data)[1]) == {uid(alices), uid(annas)}
    bob_sees = client.get(feed_path(bob_token)).data
    assert set(parse(bob_sees)[1]) == {uid(bobs)}
    for secret in (b"\xe5\xa4\xaa\xe5\x8e\x9f\xe7\x94\xb2", b"alice", "李爱丽".encode()):
        assert secret not in bob_sees


def test_the_lab_feed_shows_every_booking_of_its_resources_with_the_customer(
    client, session, feed_world, make_feed, make_resource, make_org
):
    w = feed_world
    a = book(session, w, w.alice, w.enterprise_a, purpose="观察断口")
    b = book(session, w, w.bob, w.enterprise_b, START + timedelta(hours=4))
    other_lab = make_org("provider")
    elsewhere = create_reservation(
        session, make_resource(other_lab), w.enterprise_a, w.alice, START
    )
    token, _ = make_feed(w.lab_admin, w.lab, "lab")
    session.commit()
    calendar, events, _ = parse(client.get(feed_path(token)).data)
    assert set(events) == {uid(a), uid(b)}
    assert uid(elsewhere) not in events
    assert events[uid(a)]["SUMMARY"] == "场发射扫描电镜 · 太原甲新材料有限公司"
    assert "观察断口" in str(events[uid(a)]["DESCRIPTION"])
    assert "山西省分析测试中心" in str(calendar["X-WR-CALNAME"])


def test_the_resource_feed_shows_busy_times_and_nothing_about_customers(
    client, session, feed_world
):
    w = feed_world
    a = book(session, w, w.alice, w.enterprise_a, purpose="观察断口形貌")
    book(session, w, w.bob, w.enterprise_b, START + timedelta(hours=4), status="requested")
    session.commit()
    answer = client.get(f"/ical/resources/{w.resource.id}.ics")
    assert answer.status_code == 200
    body = answer.data
    _calendar, events, _ = parse(body)
    assert len(events) == 2
    unfolded = body.decode().replace("\r\n ", "")
    for secret in (
        "太原甲",
        "Taiyuan",
        "吕梁乙",
        "李爱丽",
        "赵博",
        "alice@",
        "bob@",
        "观察断口",
        f"R{a.id:06d}",
        "/reservations/",
        "DESCRIPTION",
        "ATTENDEE",
        "ORGANIZER",
    ):
        assert secret not in unfolded
    busy = events[f"busy-{a.id}@testserver"]
    # The buffer after the booking is busy too.
    assert busy["DTEND"].dt.astimezone(UTC) == START + timedelta(hours=2, minutes=30)
    assert sorted(str(e["STATUS"]) for e in events.values()) == ["CONFIRMED", "TENTATIVE"]
    english = client.get(f"/ical/resources/{w.resource.id}.ics?lang=en").data
    assert b"Busy" in english and b"Field-emission SEM" in english


def test_a_retired_or_unknown_resource_has_no_feed(client, session, feed_world):
    w = feed_world
    assert client.get("/ical/resources/999999.ics").status_code == 404
    w.resource.status = "retired"
    session.commit()
    assert client.get(f"/ical/resources/{w.resource.id}.ics").status_code == 404


# --- tokens ------------------------------------------------------------------------------


def test_unknown_and_malformed_tokens_are_404(client, session, feed_world):
    assert client.get(feed_path("x" * 43)).status_code == 404
    assert client.get(feed_path("short")).status_code == 404
    assert client.get("/ical/%2e%2e.ics").status_code == 404


def test_a_revoked_feed_is_404(client, session, feed_world, actor):
    w = feed_world
    book(session, w, w.alice, w.enterprise_a)
    token, row = feeds.create_feed(session, actor(w.alice), "me")
    session.commit()
    assert client.get(feed_path(token)).status_code == 200
    feeds.revoke_feed(session, actor(w.alice), row.id)
    session.commit()
    gone = client.get(feed_path(token))
    assert gone.status_code == 404
    assert gone.get_json()["error"]["code"] == "not_found"


def test_a_token_stops_working_when_its_owner_leaves(client, session, feed_world, make_feed):
    w = feed_world
    book(session, w, w.alice, w.enterprise_a)
    token, _ = make_feed(w.alice, w.enterprise_a)
    lab_token, _ = make_feed(w.lab_admin, w.lab, "lab")
    session.commit()
    assert client.get(feed_path(token)).status_code == 200
    assert client.get(feed_path(lab_token)).status_code == 200
    membership = session.scalar(select(Membership).where(Membership.user_id == w.alice.id))
    session.delete(membership)
    lab_membership = session.scalar(select(Membership).where(Membership.user_id == w.lab_admin.id))
    lab_membership.role = Role.MEMBER
    session.commit()
    assert client.get(feed_path(token)).status_code == 404
    assert client.get(feed_path(lab_token)).status_code == 404


def test_an_enterprise_admin_demoted_sees_only_own_bookings(client, session, feed_world, make_feed):
    w = feed_world
    alices = book(session, w, w.alice, w.enterprise_a)
    annas = book(session, w, w.anna, w.enterprise_a, START + timedelta(hours=3))
    token, _ = make_feed(w.anna, w.enterprise_a)
    session.commit()
    assert set(parse(client.get(feed_path(token)).data)[1]) == {uid(alices), uid(annas)}
    membership = session.scalar(select(Membership).where(Membership.user_id == w.anna.id))
    membership.role = Role.MEMBER
    session.commit()
    assert set(parse(client.get(feed_path(token)).data)[1]) == {uid(annas)}


def test_a_deactivated_owner_or_suspended_organisation_ends_the_feed(
    client, session, feed_world, make_feed
):
    w = feed_world
    token, _ = make_feed(w.alice, w.enterprise_a)
    bob_token, _ = make_feed(w.bob, w.enterprise_b)
    session.commit()
    w.alice.active = False
    w.enterprise_b.status = "suspended"
    session.commit()
    assert client.get(feed_path(token)).status_code == 404
    assert client.get(feed_path(bob_token)).status_code == 404


# --- HTTP caching ------------------------------------------------------------------------


def test_etag_and_304(client, session, db, feed_world, make_feed, monkeypatch):
    w = feed_world
    booking = book(session, w, w.alice, w.enterprise_a)
    token, _ = make_feed(w.alice, w.enterprise_a)
    session.commit()
    first = client.get(feed_path(token))
    etag = first.headers["ETag"]
    assert etag.startswith('W/"') and first.headers["Last-Modified"]
    assert "no-cache" in first.headers["Cache-Control"]

    # The 304 path reads one token row and one aggregate, builds and reads no event.
    def no_building(*_args, **_kwargs):
        raise AssertionError("a 304 must not build or read events")

    monkeypatch.setattr(ical, "event_text", no_building)
    monkeypatch.setattr(feeds, "render_feed", no_building)
    with counted_queries(db) as statements:
        again = client.get(feed_path(token), headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) <= 2, statements
    assert not any("feed_events" in s for s in statements)
    assert (
        client.get(
            feed_path(token), headers={"If-Modified-Since": first.headers["Last-Modified"]}
        ).status_code
        == 304
    )
    monkeypatch.undo()
    assert client.get(feed_path(token), headers={"If-None-Match": '"other"'}).status_code == 200

    # Any change to a booking in the feed makes a new version.
    booking.purpose = "改为观察截面"
    booking.sequence += 1
    session.commit()
    changed = client.get(feed_path(token), headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    # So does a new booking, and the owner's language.
    book(session, w, w.alice, w.enterprise_a, START + timedelta(days=1))
    session.commit()
    newer = client.get(feed_path(token), headers={"If-None-Match": changed.headers["ETag"]})
    assert newer.status_code == 200
    w.alice.locale = "en"
    session.commit()
    english = client.get(feed_path(token), headers={"If-None-Match": newer.headers["ETag"]})
    assert english.status_code == 200 and b"Field-emission SEM" in english.data


def test_a_booking_of_someone_else_leaves_my_etag_alone(client, session, feed_world, make_feed):
    w = feed_world
    book(session, w, w.alice, w.enterprise_a)
    token, _ = make_feed(w.alice, w.enterprise_a)
    session.commit()
    etag = client.get(feed_path(token)).headers["ETag"]
    book(session, w, w.bob, w.enterprise_b, START + timedelta(hours=4))
    session.commit()
    assert client.get(feed_path(token), headers={"If-None-Match": etag}).status_code == 304


def test_the_last_use_is_recorded_at_most_hourly(
    client, session, feed_world, make_feed, fixed_clock
):
    w = feed_world
    token, row = make_feed(w.alice, w.enterprise_a)
    session.commit()
    client.get(feed_path(token))
    session.refresh(row)
    assert row.last_used_at == NOW
    fixed_clock.move_to(NOW + timedelta(minutes=20), tick=False)
    client.get(feed_path(token))
    session.refresh(row)
    assert row.last_used_at == NOW


# --- one booking as a file ------------------------------------------------------------------


def test_one_booking_as_a_file_for_its_owner_and_the_lab_only(
    client, session, feed_world, auth_headers
):
    w = feed_world
    booking = book(session, w, w.alice, w.enterprise_a)
    session.commit()
    path = f"/reservations/{booking.id}.ics"
    mine = client.get(path, headers=auth_headers(w.alice))
    assert mine.status_code == 200
    assert mine.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert "attachment" in mine.headers["Content-Disposition"]
    _calendar, events, _ = parse(mine.data)
    assert list(events) == [uid(booking)]
    lab = client.get(path, headers=auth_headers(w.lab_admin))
    assert lab.status_code == 200
    assert "太原甲新材料有限公司" in str(parse(lab.data)[1][uid(booking)]["SUMMARY"])
    assert client.get(path, headers=auth_headers(w.bob)).status_code == 404
    assert client.get(path).status_code in (401, 302)


def test_a_cancellation_through_the_reservation_service_reaches_the_feed(
    client, session, feed_world, make_feed, actor
):
    from booking.services import reservations

    w = feed_world
    booking = book(session, w, w.alice, w.enterprise_a, START + timedelta(days=3))
    token, _ = make_feed(w.alice, w.enterprise_a)
    lab_token, _ = make_feed(w.lab_admin, w.lab, "lab")
    session.commit()
    first = client.get(feed_path(token))
    before = parse(first.data)[1][uid(booking)]
    lab_etag = client.get(feed_path(lab_token)).headers["ETag"]
    public_etag = client.get(f"/ical/resources/{w.resource.id}.ics").headers["ETag"]

    reservations.cancel(session, actor(w.alice), booking.id, "计划有变")
    session.commit()
    answer = client.get(feed_path(token), headers={"If-None-Match": first.headers["ETag"]})
    assert answer.status_code == 200
    after = parse(answer.data)[1][uid(booking)]
    assert after["STATUS"] == "CANCELLED"
    assert after["SEQUENCE"] > before["SEQUENCE"]
    lab = client.get(feed_path(lab_token), headers={"If-None-Match": lab_etag})
    assert lab.status_code == 200 and b"STATUS:CANCELLED" in lab.data
    public = client.get(
        f"/ical/resources/{w.resource.id}.ics", headers={"If-None-Match": public_etag}
    )
    assert public.status_code == 200 and b"STATUS:CANCELLED" in public.data
