"""Availability: free and busy intervals, with every rule taken into account."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.domain.errors import NotFound, ValidationFailed
from booking.models.catalog import Blackout, ResourceStatus
from booking.services import availability
from booking.services import reservations as service

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)


def at(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def book(world, start, end, **extra):
    data = {"resource_id": world.resource.id, "start": start, "end": end, "purpose": "x", **extra}
    return service.create_reservation(world.session, world.customer_actor, data)


def pairs(items):
    return [(i["start"][5:16], i["end"][5:16], i["units"]) for i in items]


def test_exclusive_free_and_busy_with_buffers_and_blackouts(booking_world, session):
    world = booking_world(buffer_after_minutes=30)
    book(world, at(2, 10), at(2, 11))
    session.add(
        Blackout(resource_id=world.resource.id, start_at=at(2, 15), end_at=at(2, 16), reason="维护")
    )
    session.flush()
    answer = availability.availability(session, world.resource.id, at(2, 0), at(3, 0))
    assert [(b["start"][11:16], b["end"][11:16], b["kind"]) for b in answer["busy"]] == [
        ("10:00", "11:30", "booking"),
        ("15:00", "16:00", "blackout"),
    ]
    # free: opening hours less busy time, and room for a booking's own 30-minute tail
    assert pairs(answer["free"]) == [
        ("12-02T08:00", "12-02T09:30", 1),
        ("12-02T11:30", "12-02T14:30", 1),
        ("12-02T16:00", "12-02T18:00", 1),
    ]
    assert all("customer" not in str(b) and "id" not in b for b in answer["busy"])


def test_pooled_free_units_over_time(booking_world):
    world = booking_world("hpc", capacity=8, hours=[], closed_on_holidays=False)
    book(world, at(2, 10), at(2, 14), units=3)
    book(world, at(2, 12), at(2, 16), units=5)
    answer = availability.availability(world.session, world.resource.id, at(2, 8), at(2, 18))
    assert pairs(answer["busy"]) == [
        ("12-02T10:00", "12-02T12:00", 3),
        ("12-02T12:00", "12-02T14:00", 8),
        ("12-02T14:00", "12-02T16:00", 5),
    ]
    assert pairs(answer["free"]) == [
        ("12-02T08:00", "12-02T10:00", 8),
        ("12-02T10:00", "12-02T12:00", 5),
        ("12-02T14:00", "12-02T16:00", 3),
        ("12-02T16:00", "12-02T18:00", 8),
    ]
    # asking for 4 units leaves out what has fewer free
    wanted = availability.availability(world.session, world.resource.id, at(2, 8), at(2, 18), 4)
    assert [f["units"] for f in wanted["free"]] == [8, 5, 8]


def test_lead_time_horizon_and_holidays_cut_the_free_time(booking_world, frozen):
    frozen.move_to(at(29, 8, month=9))
    world = booking_world(
        lead_minutes=120, horizon_days=3, hours=[(d, "08:00", "18:00") for d in range(7)]
    )
    answer = availability.availability(
        world.session, world.resource.id, at(29, 0, month=9), at(3, 0, month=10)
    )
    assert pairs(answer["free"]) == [
        ("09-29T10:00", "09-29T18:00", 1),  # from now plus the lead time
        ("09-30T08:00", "09-30T18:00", 1),  # 1 and 2 October: National Day, closed
    ]


def test_free_time_is_bookable_and_busy_is_not(booking_world, session):
    world = booking_world(buffer_before_minutes=15, granularity_minutes=15, min_minutes=15)
    book(world, at(2, 10), at(2, 11))
    answer = availability.availability(session, world.resource.id, at(2, 0), at(3, 0))
    for free in answer["free"]:
        start = datetime.fromisoformat(free["start"])
        end = datetime.fromisoformat(free["end"])
        booking = book(world, start, end)
        service.cancel(session, world.customer_actor, booking.id)


def test_window_checks(booking_world, session):
    world = booking_world()
    with pytest.raises(ValidationFailed):
        availability.availability(session, world.resource.id, at(3, 0), at(2, 0))
    with pytest.raises(ValidationFailed):
        availability.availability(
            session,
            world.resource.id,
            at(1, 0),
            at(1, 0, month=12).replace(month=12, day=1).replace(year=2027),
        )
    with pytest.raises(NotFound):
        availability.availability(session, 999999, at(2, 0), at(3, 0))
    world.resource.status = ResourceStatus.MAINTENANCE
    session.flush()
    assert availability.availability(session, world.resource.id, at(2, 0), at(3, 0))["free"] == []


def test_the_written_answer_is_the_same_json(booking_world, session):
    import json

    world = booking_world("hpc", capacity=8, hours=[], closed_on_holidays=False)
    book(world, at(2, 10), at(2, 14), units=3)
    session.add(
        Blackout(resource_id=world.resource.id, start_at=at(2, 15), end_at=at(2, 16), reason="维护")
    )
    session.flush()
    answer = availability.availability_of(session, world.resource.id, at(2, 0), at(3, 0))
    assert json.loads(answer.to_json()) == answer.as_dict()


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin", "America/St_Johns"])
def test_local_texts_match_isoformat_also_across_summer_time(zone):
    import random
    from datetime import UTC

    from booking.domain.spans import Span

    tz = ZoneInfo(zone)
    window = Span(datetime(2026, 2, 20, tzinfo=UTC), datetime(2026, 5, 20, tzinfo=UTC))
    texts = availability.local_texts(tz, window)
    rng = random.Random(3)
    base = int(window.start.timestamp())
    for seconds in [base, base + 59, *(base + rng.randrange(0, 88 * 86400) for _ in range(500))]:
        assert texts(seconds) == datetime.fromtimestamp(seconds, tz).isoformat()


@pytest.mark.parametrize(
    ("zone", "month"), [("Asia/Kolkata", 1), ("America/St_Johns", 6), ("UTC", 3)]
)
def test_texts_at_one_offset_match_isoformat_and_their_table_stays_bounded(
    zone, month, monkeypatch
):
    import random
    from datetime import UTC

    from booking.domain.spans import Span

    monkeypatch.setattr(availability, "TEXTS_KEPT", 100)
    tz = ZoneInfo(zone)
    window = Span(datetime(2026, month, 2, tzinfo=UTC), datetime(2026, month, 28, tzinfo=UTC))
    texts = availability.local_texts(tz, window)
    assert isinstance(texts, availability.OffsetTexts)
    assert availability.local_texts(tz, window) is texts  # one table serves every answer
    rng = random.Random(5)
    base = int(window.start.timestamp())
    for seconds in [base, base + 59, *(base + rng.randrange(0, 26 * 86400) for _ in range(500))]:
        assert texts(seconds) == datetime.fromtimestamp(seconds, tz).isoformat()
        assert len(texts) <= 100


def test_a_retired_resource_has_no_availability(booking_world, session):
    world = booking_world()
    assert availability.availability(session, world.resource.id, at(2, 0), at(3, 0))["free"]
    world.resource.status = ResourceStatus.RETIRED
    session.flush()
    with pytest.raises(NotFound):
        availability.availability(session, world.resource.id, at(2, 0), at(3, 0))
