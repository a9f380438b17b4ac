"""The catalogue of domain events in ``booking/services/events.py`` names
every event a service publishes, and every change to a training record
leaves an audit event next to the event it publishes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.models.audit import AuditEvent
from booking.services import events, training
from tests.factories.accounts import create_user

ROOT = Path(__file__).resolve().parents[2] / "booking"
PUBLISHED = re.compile(r"events\.publish\(\s*session,\s*\"([a-z_]+\.[a-z_]+)\"")
# The reservation moves publish through one helper:
# _record_move(session, actor, reservation, before, <audit action>, "<event>", ...)
PUBLISHED_BY_MOVE = re.compile(
    r"_record_move\(\s*session,\s*[\w.]+,\s*reservation,\s*before,\s*[^,]+,\s*\"([a-z_]+\.[a-z_]+)\""
)
CATALOGUED = re.compile(r"``([a-z_]+)\.([a-z_]+(?:\s*\|\s*[a-z_]+)*)``")
SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)


def published_names() -> set[str]:
    names = set()
    for path in ROOT.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        names |= set(PUBLISHED.findall(text)) | set(PUBLISHED_BY_MOVE.findall(text))
    return names


def catalogued_names() -> set[str]:
    names = set()
    for area, verbs in CATALOGUED.findall(events.__doc__ or ""):
        names |= {f"{area}.{verb.strip()}" for verb in verbs.split("|")}
    return names


def test_every_published_event_is_in_the_catalogue():
    published = published_names()
    assert {
        "training.granted",
        "training.revoked",
        "reservation.no_show",
        "reservation.approved",
        "reservation.rescheduled",
    } <= published
    missing = published - catalogued_names()
    assert not missing, f"events published but not listed in events.py: {sorted(missing)}"


@pytest.fixture
def heard():
    """What the training events said, with the audit trail at that moment."""
    log: list[tuple[str, int, list[str]]] = []

    def listen(session, name, record, actor=None, **data):
        trail = [
            e.action
            for e in session.query(AuditEvent)
            .filter_by(target_type="training_records", target_id=record.id)
            .order_by(AuditEvent.id)
        ]
        log.append((name, record.id, trail))

    events.subscribe("training.granted", "training.revoked")(listen)
    yield log
    for name in ("training.granted", "training.revoked"):
        events._subscribers[name].remove(listen)


def test_each_change_to_a_training_record_is_audited_and_published(session, booking_world, heard):
    world = booking_world()
    trainee = create_user(session, world.customer, "member")
    grant = {"user_id": trainee.id, "resource_id": world.resource.id}
    with time_machine.travel(NOW, tick=False) as clock:
        first = training.grant_training(
            session, world.lab_actor, {**grant, "valid_until": NOW + timedelta(days=1)}
        )
        training.grant_training(
            session, world.lab_actor, {**grant, "valid_until": NOW + timedelta(days=2)}
        )
        clock.shift(timedelta(days=3))
        second = training.grant_training(session, world.lab_actor, grant)
        training.revoke_training(session, world.lab_actor, second.id, "复训")

    assert heard == [
        ("training.granted", first.id, ["training.grant"]),
        ("training.granted", first.id, ["training.grant", "training.renew"]),
        ("training.granted", second.id, ["training.grant"]),
        ("training.revoked", second.id, ["training.grant", "training.revoke"]),
    ]
    # The expired record that gave way to the new grant: its change is audited too.
    superseded = session.query(AuditEvent).filter_by(action="training.supersede").one()
    assert superseded.target_id == first.id
    assert superseded.before["live_scope"] == f"r{world.resource.id}"
    assert superseded.after["live_scope"] is None
