"""A gunicorn worker killed with SIGKILL in the middle of a request loses
nothing and leaves nothing half-written.

A real ``gunicorn wsgi:app`` (3 sync workers) serves the test database. One
voucher booking is stopped just before its commit by the test-only hook of
``gunicorn_pause.py``: its reservation, audit event, voucher hold and
notifications are flushed inside an open transaction, and it holds the row
locks of its resource and voucher. While a burst of racing bookings (some on
the same resource and voucher, one for the very same slot) is under way, that
worker is killed with SIGKILL. Then: the master has started a new worker and
serves; every other request got a real answer (201 or 409, nothing dropped,
nothing 5xx); every 201 is in the database; the killed booking left no trace;
every booking has its audit event and notification and, when it uses a
voucher, its ledger hold; no two live bookings overlap; and every voucher's
ledger adds up to what the API says is available.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tests.factories.accounts import create_org, create_user, token_headers
from tests.factories.catalog import create_resource
from tests.factories.vouchers import build_voucher_world, create_enterprise, create_voucher
from tests.faults.support import DROPPED, Gunicorn, call, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SH = ZoneInfo("Asia/Shanghai")
HERE = Path(__file__).resolve().parent
LIVE = "('requested', 'approved', 'in_use')"


def day_after_tomorrow_at(hour: int) -> datetime:
    day = datetime.now(SH).date() + timedelta(days=2)
    return datetime.combine(day, dtime(hour), tzinfo=SH)


def booking(resource_id: int, start: datetime, hours: int, purpose: str, **extra) -> dict:
    return {
        "resource_id": resource_id,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=hours)).isoformat(),
        "purpose": purpose,
        **extra,
    }


def rows(session, sql: str, **params) -> list:
    result = session.execute(text(sql), params).all()
    session.rollback()
    return result


def scalar(session, sql: str, **params):
    value = session.execute(text(sql), params).scalar_one()
    session.rollback()
    return value


def open_transactions(session, database: str) -> int:
    return scalar(
        session,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
        "AND state = 'idle in transaction' AND pid <> pg_backend_pid()",
        d=database,
    )


def test_a_worker_killed_mid_request_loses_nothing_and_leaves_nothing_half_written(
    app, session, requires_postgres, tmp_path
):
    # --- the world: a voucher-using enterprise and plain customers -----------------
    world = build_voucher_world(session)
    voucher_resource = create_resource(
        session, world.provider, hours=[], closed_on_holidays=False, requires_approval=False
    )
    # A second voucher-holding enterprise racing for the same resource and slot.
    rival = create_enterprise(session)
    rival_user = create_user(session, rival, "member")
    rival_voucher = create_voucher(session, world.bureau, rival, "5000.00", officer=world.officer)
    resources = [
        create_resource(session, hours=[], closed_on_holidays=False, requires_approval=False)
        for _ in range(3)
    ]
    customers = []
    for _ in range(6):
        org = create_org(session, "enterprise")
        customers.append(create_user(session, org))
    session.commit()
    paused_headers = token_headers(session, world.customer)
    rival_headers = token_headers(session, rival_user)
    customer_headers = [token_headers(session, user) for user in customers]
    vouchers = {world.voucher.id: world.voucher.face_value, rival_voucher.id: Decimal("5000.00")}
    session.rollback()

    slot_a = day_after_tomorrow_at(9)
    paused_body = booking(voucher_resource.id, slot_a, 2, "killed", voucher_id=world.voucher.id)
    # The rival asks for the very slot the paused request holds: it waits for
    # the resource lock, and wins only because the killed request never commits.
    burst: list[tuple[dict, dict]] = [
        (
            booking(voucher_resource.id, slot_a, 2, "burst", voucher_id=rival_voucher.id),
            rival_headers,
        )
    ]
    # Overlapping two-hour bookings every hour on three resources: about half win.
    for index in range(24):
        resource = resources[index % 3]
        start = day_after_tomorrow_at(8) + timedelta(hours=index // 3)
        burst.append((booking(resource.id, start, 2, "burst"), customer_headers[index % 6]))
    # More voucher bookings on the paused resource and vouchers, at the end (each
    # waits for the locks while the paused worker lives: they must not take every worker).
    for hours, voucher_id, headers in (
        (3, world.voucher.id, paused_headers),
        (6, rival_voucher.id, rival_headers),
    ):
        start = slot_a + timedelta(hours=hours)
        burst.append(
            (booking(voucher_resource.id, start, 2, "burst", voucher_id=voucher_id), headers)
        )

    database = app.config["SQLALCHEMY_DATABASE_URI"].rsplit("/", 1)[1].split("?")[0]
    pause_dir = tmp_path / "pause"
    pause_dir.mkdir()
    server = Gunicorn(
        app.config["SQLALCHEMY_DATABASE_URI"],
        tmp_path / "gunicorn.log",
        workers=3,
        config=HERE / "gunicorn_pause.py",
        env={"FAULT_PAUSE_DIR": str(pause_dir)},
    )
    try:
        began = time.monotonic()
        server.start()
        print(f"gunicorn serving after {time.monotonic() - began:.1f} s")
        first_workers = server.workers_now()

        # --- one voucher booking stopped just before its commit -------------------
        paused_result: list = []
        paused = threading.Thread(
            target=lambda: paused_result.append(
                call(
                    server.port,
                    "POST",
                    "/api/v1/reservations",
                    paused_body,
                    {**paused_headers, "X-Fault-Pause": "killed"},
                )
            )
        )
        paused.start()
        pid_file = pause_dir / "killed"
        wait_for(pid_file.exists, 30, "the paused request to reach its commit")
        victim = int(pid_file.read_text())
        assert victim in first_workers
        # Its writes are on the server, uncommitted, in an open transaction.
        assert open_transactions(session, database) >= 1

        # --- a burst of racing bookings, and the kill in the middle of it -------
        answers: list = [None] * len(burst)
        done = Counter()
        lock = threading.Lock()

        def send(index: int) -> None:
            body, headers = burst[index]
            answers[index] = call(server.port, "POST", "/api/v1/reservations", body, headers)
            with lock:
                done["n"] += 1

        with ThreadPoolExecutor(max_workers=6) as pool:
            futures = [pool.submit(send, i) for i in range(len(burst))]
            wait_for(lambda: done["n"] >= 6, 60, "the burst to get going", interval=0.02)
            in_flight = len(burst) - done["n"]
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            for future in futures:
                future.result(timeout=120)
        paused.join(timeout=30)
        print(f"burst answered {time.monotonic() - killed_at:.1f} s after the kill")
        print(f"killed worker {victim} with {in_flight} of {len(burst)} requests not answered")

        # --- the master replaces the worker and serves --------------------------
        wait_for(
            lambda: len(server.workers_now()) == 3 and victim not in server.workers_now(),
            30,
            "the master to start a new worker",
        )
        print(f"a new worker after {time.monotonic() - killed_at:.1f} s")
        assert server.process.poll() is None
        assert all(call(server.port, "GET", "/healthz")[0] == 200 for _ in range(8))
        after = call(
            server.port,
            "POST",
            "/api/v1/reservations",
            booking(resources[0].id, day_after_tomorrow_at(20), 2, "after"),
            customer_headers[0],
        )
        assert after[0] == 201, after

        # --- what the clients saw ----------------------------------------------
        assert paused_result and paused_result[0][0] == DROPPED, paused_result
        statuses = Counter(status for status, _body, _headers in answers)
        assert set(statuses) <= {201, 409}, answers
        created = {body["id"] for status, body, _ in answers if status == 201}
        created.add(after[1]["id"])
        assert statuses[409] >= 1 and statuses[201] >= 10, statuses
        # The rival won the slot the killed request held when it died.
        assert answers[0][0] == 201, answers[0]

        print(f"checks over HTTP done {time.monotonic() - killed_at:.1f} s after the kill")
        # --- what the database holds --------------------------------------------
        stored = {
            row.id: row
            for row in rows(
                session,
                "SELECT id, status, purpose, voucher_id, voucher_hold FROM reservations",
            )
        }
        assert created == set(stored), "every 201 is stored, and nothing else"
        assert not [r for r in stored.values() if r.purpose == "killed"]
        assert open_transactions(session, database) == 0

        audited = {
            target_id
            for (target_id,) in rows(
                session,
                "SELECT target_id FROM audit_events WHERE action = 'reservation.create' "
                "AND target_type = 'reservations'",
            )
        }
        assert audited == set(stored), "each booking has its audit event, and only they"
        notified = Counter(
            target_id
            for (target_id,) in rows(
                session,
                "SELECT target_id FROM notifications WHERE target_type = 'reservations'",
            )
        )
        assert set(notified) == set(stored)

        holds = dict(
            rows(
                session,
                "SELECT reservation_id, -sum(amount) FROM voucher_ledger_entries "
                "WHERE kind IN ('hold', 'release') GROUP BY reservation_id",
            )
        )
        with_voucher = {i: r for i, r in stored.items() if r.voucher_id is not None}
        assert len(with_voucher) == 3
        assert set(holds) == set(with_voucher), "a ledger hold for each voucher booking, only"
        for reservation_id, row in with_voucher.items():
            assert row.voucher_hold > 0
            assert holds[reservation_id] == row.voucher_hold

        overlaps = scalar(
            session,
            "SELECT count(*) FROM reservations a JOIN reservations b "
            "ON a.resource_id = b.resource_id AND a.id < b.id "
            "AND a.busy_start < b.busy_end AND b.busy_start < a.busy_end "
            f"WHERE a.status IN {LIVE} AND b.status IN {LIVE}",
        )
        assert overlaps == 0

        for voucher_id, face_value in vouchers.items():
            ledger_sum = scalar(
                session,
                "SELECT sum(amount) FROM voucher_ledger_entries WHERE voucher_id = :v",
                v=voucher_id,
            )
            held = sum(
                (r.voucher_hold for r in with_voucher.values() if r.voucher_id == voucher_id),
                Decimal("0"),
            )
            holder = paused_headers if voucher_id == world.voucher.id else rival_headers
            status, shown, _ = call(
                server.port, "GET", f"/api/v1/vouchers/{voucher_id}", None, holder
            )
            assert status == 200, shown
            assert Decimal(shown["balance"]) == face_value
            assert Decimal(shown["held"]) == held > 0
            assert ledger_sum == Decimal(shown["available"]) == face_value - held
    except BaseException:
        print(f"--- gunicorn\n{server.output()}")
        raise
    finally:
        server.stop()
