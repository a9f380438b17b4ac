"""The pure iCalendar builder: golden file, views, languages, time zones,
invitations. No app, no database."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
import time_machine
import vobject

from booking.domain import ical

GOLDEN = Path(__file__).parent.parent / "data" / "feeds" / "golden_feed.ics"
SHANGHAI = ZoneInfo("Asia/Shanghai")
HOST = "booking.example.cn"


def booking(**changes) -> ical.EventData:
    fields = {
        "reservation_id": 42,
        "status": "approved",
        "start": datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI),
        "end": datetime(2026, 3, 2, 11, 30, tzinfo=SHANGHAI),
        "busy_start": datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI),
        "busy_end": datetime(2026, 3, 2, 12, 0, tzinfo=SHANGHAI),
        "sequence": 2,
        "created": datetime(2026, 2, 1, 3, 4, 5, tzinfo=UTC),
        "modified": datetime(2026, 2, 3, 6, 7, 8, 999, tzinfo=UTC),
        "resource_name_zh": "场发射扫描电镜",
        "resource_name_en": "Field-emission SEM",
        "location": "测试楼 201, 长治路 1 号",
        "lab_name": "山西省分析测试中心",
        "lab_name_en": "Shanxi Analysis Centre",
        "customer_name": "太原甲新材料有限公司",
        "customer_name_en": "Taiyuan A Materials",
        "booked_by": "李爱丽",
        "booked_by_email": "alice@a.example.cn",
        "purpose": "观察断口形貌; 需要能谱, 约 3 个样品",
        "units": 1,
        "capacity_unit": "instrument",
        "samples": 3,
        "url": "https://booking.example.cn/reservations/42",
    }
    fields.update(changes)
    return ical.EventData(**fields)


def golden_calendar() -> bytes:
    head = ical.calendar_head("我的预约 · 太原甲新材料有限公司", SHANGHAI)
    events = [
        ical.event_text(booking(), "zh_CN", "customer", host=HOST, tz=SHANGHAI),
        ical.event_text(
            booking(reservation_id=43, status="requested", sequence=0),
            "en",
            "lab",
            host=HOST,
            tz=SHANGHAI,
        ),
        ical.event_text(
            booking(reservation_id=44, status="cancelled", sequence=5),
            "zh_CN",
            "busy",
            host=HOST,
            tz=SHANGHAI,
        ),
    ]
    return ical.assemble(head, events)


@time_machine.travel(datetime(2026, 2, 10, 8, 0, tzinfo=UTC), tick=False)
def test_builder_matches_the_golden_file():
    built = golden_calendar()
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_bytes(built)
    assert built == GOLDEN.read_bytes(), "rerun with UPDATE_GOLDEN=1 after a deliberate change"


def test_golden_file_is_valid_for_two_parsers_and_the_expander():
    text = GOLDEN.read_bytes()
    calendar = icalendar.Calendar.from_ical(text)
    assert calendar["VERSION"] == "2.0"
    assert str(calendar["X-WR-CALNAME"]).startswith("我的预约")
    assert calendar["REFRESH-INTERVAL"].dt == timedelta(minutes=15)
    assert str(calendar["X-PUBLISHED-TTL"]) == "PT15M" or calendar["X-PUBLISHED-TTL"]
    assert [e["UID"] for e in calendar.walk("VEVENT")] == [
        f"reservation-42@{HOST}",
        f"reservation-43@{HOST}",
        f"busy-44@{HOST}",
    ]
    parsed = vobject.readOne(text.decode())
    assert len(parsed.vevent_list) == 3
    assert parsed.vevent_list[0].dtstart.value.astimezone(UTC) == datetime(
        2026, 3, 2, 1, 0, tzinfo=UTC
    )
    expanded = recurring_ical_events.of(calendar).between(
        datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)
    )
    assert len(expanded) == 3


def test_every_line_is_folded_to_75_octets_and_ends_with_crlf():
    text = golden_calendar()
    assert text.endswith(b"END:VCALENDAR\r\n")
    for line in text.split(b"\r\n"):
        assert len(line) <= 75
        assert b"\n" not in line


def test_status_mapping_and_stable_stamps():
    tentative = icalendar.Event.from_ical(
        ical.event_text(booking(status="requested"), "zh_CN", "customer", host=HOST, tz=SHANGHAI)
    )
    assert tentative["STATUS"] == "TENTATIVE"
    assert "待审批" in tentative["SUMMARY"]
    for status in ("approved", "in_use", "completed"):
        event = ical.build_event(booking(status=status), "en", "customer", host=HOST, tz=SHANGHAI)
        assert event["STATUS"] == "CONFIRMED"
    for status in ("cancelled", "rejected", "expired", "no_show"):
        event = ical.build_event(booking(status=status), "en", "customer", host=HOST, tz=SHANGHAI)
        assert event["STATUS"] == "CANCELLED"
        assert event["TRANSP"] == "TRANSPARENT"
    event = ical.build_event(booking(), "en", "customer", host=HOST, tz=SHANGHAI)
    # A published feed's DTSTAMP is the booking's last change: texts are stable.
    assert event["DTSTAMP"].dt == datetime(2026, 2, 3, 6, 7, 8, tzinfo=UTC)
    assert event["LAST-MODIFIED"].dt == datetime(2026, 2, 3, 6, 7, 8, tzinfo=UTC)
    assert event["SEQUENCE"] == 2
    assert ical.event_text(booking(), "en", "lab", host=HOST, tz=SHANGHAI) == ical.event_text(
        booking(), "en", "lab", host=HOST, tz=SHANGHAI
    )


def test_summary_and_description_in_the_owners_language():
    zh = ical.build_event(booking(), "zh_CN", "customer", host=HOST, tz=SHANGHAI)
    en = ical.build_event(booking(), "en", "customer", host=HOST, tz=SHANGHAI)
    assert zh["SUMMARY"] == "场发射扫描电镜"
    assert en["SUMMARY"] == "Field-emission SEM"
    assert en["LOCATION"] == "Shanxi Analysis Centre, 测试楼 201, 长治路 1 号"
    description = str(en["DESCRIPTION"])
    for expected in (
        "Booking number: R000042",
        "Units: 1 instrument",
        "Samples: 3",
        "https://booking.example.cn/reservations/42",
    ):
        assert expected in description
    assert "预约编号：R000042" in str(zh["DESCRIPTION"])
    assert "数量：1 台" in str(zh["DESCRIPTION"])


def test_the_lab_view_names_the_customer_and_the_customer_view_does_not_need_to():
    lab = ical.build_event(booking(), "zh_CN", "lab", host=HOST, tz=SHANGHAI)
    assert lab["SUMMARY"] == "场发射扫描电镜 · 太原甲新材料有限公司"
    assert "预约单位：太原甲新材料有限公司" in str(lab["DESCRIPTION"])


def test_the_busy_view_tells_nothing_about_the_customer():
    text = ical.event_text(booking(), "zh_CN", "busy", host=HOST, tz=SHANGHAI).decode()
    unfolded = text.replace("\r\n ", "")
    for secret in ("太原甲", "Taiyuan", "李爱丽", "alice@", "断口", "R000042", "reservations/42"):
        assert secret not in unfolded
    event = icalendar.Event.from_ical(text)
    assert event["UID"] == f"busy-42@{HOST}"
    assert "DESCRIPTION" not in event and "URL" not in event
    # The busy view covers the buffer after the booking.
    assert event["DTEND"].dt == datetime(2026, 3, 2, 12, 0, tzinfo=SHANGHAI)


@pytest.mark.parametrize("offset_hours", [8, 0, -5, 5.5])
def test_the_same_instant_whatever_zone_it_was_booked_in(offset_hours):
    from datetime import timezone

    zone = timezone(timedelta(hours=offset_hours))
    instant = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    data = booking(
        start=instant.astimezone(zone), end=(instant + timedelta(hours=2)).astimezone(zone)
    )
    text = ical.assemble(
        ical.calendar_head("t", SHANGHAI),
        [ical.event_text(data, "en", "customer", host=HOST, tz=SHANGHAI)],
    )
    assert b"DTSTART;TZID=Asia/Shanghai:20260302T090000" in text
    event = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    assert event["DTSTART"].dt.astimezone(UTC) == instant
    other = vobject.readOne(text.decode()).vevent.dtstart.value
    assert other.astimezone(UTC) == instant


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        booking(start=datetime(2026, 3, 2, 9, 0))


@time_machine.travel(datetime(2026, 2, 10, 8, 0, tzinfo=UTC), tick=False)
def test_invitation_request_and_cancel():
    request = icalendar.Calendar.from_ical(
        ical.invitation(booking(), "en", "REQUEST", host=HOST, organizer_email="noreply@x.cn")
    )
    assert request["METHOD"] == "REQUEST"
    event = request.walk("VEVENT")[0]
    assert event["UID"] == f"reservation-42@{HOST}"
    assert event["SEQUENCE"] == 2
    assert str(event["ORGANIZER"]) == "mailto:noreply@x.cn"
    assert str(event["ATTENDEE"]) == "mailto:alice@a.example.cn"
    assert event["DTSTAMP"].dt == datetime(2026, 2, 10, 8, 0, tzinfo=UTC)

    cancel = icalendar.Calendar.from_ical(
        ical.invitation(booking(status="cancelled", sequence=3), "zh_CN", "cancel", host=HOST)
    )
    assert cancel["METHOD"] == "CANCEL"
    event = cancel.walk("VEVENT")[0]
    assert event["STATUS"] == "CANCELLED" and event["SEQUENCE"] == 3
    assert vobject.readOne(ical.invitation(booking(), "zh_CN", "REQUEST", host=HOST).decode())
    with pytest.raises(ValueError):
        ical.invitation(booking(), "en", "PUBLISH")


def test_invitation_takes_plain_fields_and_the_platforms_defaults(monkeypatch):
    from dataclasses import asdict

    monkeypatch.setattr(ical, "_defaults", {"host": HOST, "organizer_email": "noreply@x.cn"})
    fields = asdict(booking())
    event = icalendar.Calendar.from_ical(ical.invitation(fields, "zh_CN", "REQUEST")).walk(
        "VEVENT"
    )[0]
    assert event["UID"] == f"reservation-42@{HOST}"
    assert str(event["ORGANIZER"]) == "mailto:noreply@x.cn"
