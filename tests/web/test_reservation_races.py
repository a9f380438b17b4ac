"""Racing requests through the HTTP API against a real, threaded server:
a double booking must never happen, whatever the timing.

The server is werkzeug's threaded server on 127.0.0.1, serving the test app
(the same database: SQLite, or PostgreSQL with TEST_DATABASE_URL). Every
racer has its own user and token and its own connection (http.client); a
barrier releases them together. Afterwards the database itself is asked
whether two live bookings overlap.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from booking.domain.spans import usage_steps
from tests.factories.accounts import create_org, create_user, token_headers
from tests.factories.catalog import create_resource

SH = ZoneInfo("Asia/Shanghai")
RACERS = 40


def next_week_at(hour: int) -> datetime:
    day = datetime.now(SH).date() + timedelta(days=7)
    return datetime.combine(day, time(hour), tzinfo=SH)


def racers(session, count: int) -> list[dict]:
    """``count`` customers, each of their own enterprise, each with a token
    (committed)."""
    headers = []
    for _ in range(count):
        org = create_org(session, "enterprise")
        headers.append(token_headers(session, create_user(session, org)))
    return headers


def race(port: int, bodies: list[dict], headers: list[dict]) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(len(bodies))
    results: list[tuple[int, dict] | None] = [None] * len(bodies)

    def run(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        payload = json.dumps(bodies[index])
        barrier.wait()
        try:
            connection.request(
                "POST",
                "/api/v1/reservations",
                body=payload,
                headers={**headers[index], "Content-Type": "application/json"},
            )
            answer = connection.getresponse()
            results[index] = (answer.status, json.loads(answer.read() or b"{}"))
        except Exception as exc:  # a dropped connection counts as a failure
            results[index] = (599, {"exception": repr(exc)})
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return [r if r is not None else (598, {}) for r in results]


def overlapping_pairs(session) -> int:
    return session.execute(
        text(
            "SELECT count(*) FROM reservations a JOIN reservations b "
            "ON a.resource_id = b.resource_id AND a.id < b.id "
            "AND a.busy_start < b.busy_end AND b.busy_start < a.busy_end "
            "WHERE a.exclusive AND a.status IN ('requested', 'approved', 'in_use') "
            "AND b.status IN ('requested', 'approved', 'in_use')"
        )
    ).scalar_one()


def live_rows(session, resource_id: int) -> list:
    return session.execute(
        text(
            "SELECT busy_start, busy_end, units FROM reservations WHERE resource_id = :r "
            "AND status IN ('requested', 'approved', 'in_use')"
        ),
        {"r": resource_id},
    ).all()


def _instant(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def booking(resource_id: int, start: datetime, end: datetime, **extra) -> dict:
    return {
        "resource_id": resource_id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "purpose": "race",
        **extra,
    }


def test_forty_racers_for_one_slot_exactly_one_wins(session, live_server):
    resource = create_resource(session, hours=[], closed_on_holidays=False)
    headers = racers(session, RACERS)
    session.commit()
    start = next_week_at(10)
    bodies = [booking(resource.id, start, start + timedelta(hours=2))] * RACERS
    session.rollback()  # hold no transaction (on SQLite: no write lock) while racing
    results = race(live_server, bodies, headers)
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 1, results
    assert statuses.count(409) == RACERS - 1, results
    assert all(
        body["error"]["code"] == "conflict" and body["error"]["details"]["conflicts"]
        for status, body in results
        if status == 409
    )
    session.rollback()
    assert len(live_rows(session, resource.id)) == 1
    assert overlapping_pairs(session) == 0


def test_staggered_overlapping_racers_leave_no_overlap(session, live_server):
    resource = create_resource(session, hours=[], closed_on_holidays=False, buffer_after_minutes=30)
    headers = racers(session, RACERS)
    session.commit()
    base = next_week_at(6)
    bodies = [
        booking(
            resource.id, base + timedelta(minutes=30 * i), base + timedelta(minutes=30 * i + 90)
        )
        for i in range(RACERS)
    ]
    session.rollback()  # hold no transaction (on SQLite: no write lock) while racing
    results = race(live_server, bodies, headers)
    statuses = [status for status, _ in results]
    assert set(statuses) <= {201, 409}, results
    # every maximal set of these spans has at least 40 / 7 members
    assert statuses.count(201) >= 5
    session.rollback()
    assert overlapping_pairs(session) == 0
    rows = sorted((_instant(a), _instant(b)) for a, b, _ in live_rows(session, resource.id))
    assert len(rows) == statuses.count(201)
    assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(rows))


def test_pooled_capacity_is_never_exceeded_under_racing(session, live_server):
    capacity = 16
    resource = create_resource(
        session,
        kind="hpc",
        capacity=capacity,
        hours=[],
        closed_on_holidays=False,
        granularity_minutes=60,
        min_minutes=60,
    )
    headers = racers(session, RACERS)
    session.commit()
    base = next_week_at(2)
    bodies = [
        booking(
            resource.id,
            base + timedelta(hours=i % 5),
            base + timedelta(hours=i % 5 + 3),
            units=1 + i % 4,
        )
        for i in range(RACERS)
    ]
    session.rollback()  # hold no transaction (on SQLite: no write lock) while racing
    results = race(live_server, bodies, headers)
    statuses = [status for status, _ in results]
    assert set(statuses) <= {201, 409}, results
    assert 201 in statuses and 409 in statuses
    session.rollback()
    rows = live_rows(session, resource.id)
    assert len(rows) == statuses.count(201)
    peak = max(s.units for s in usage_steps((_instant(a), _instant(b), u) for a, b, u in rows))
    assert peak <= capacity
