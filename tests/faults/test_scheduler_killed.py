"""The scheduler killed with SIGKILL in the middle of a job resumes without
duplicates.

Two real scheduler processes (``flask --app wsgi scheduler``) start together
against the PostgreSQL test database; the one holding the lease runs the jobs
(``booking/jobs.py``), the other stands by. Leases are shortened (renewed
every second, lapsing after 4 s) and the reminder and outbox jobs run every
second, through BOOKING_* settings.

1. Killed while ``send_reminders`` is writing: the kill lands while the
   leader's transaction holds uncommitted notification rows (seen in
   ``pg_locks``). Nothing of that run is kept; the standby takes over and
   writes every reminder, each exactly once (one inbox notification and one
   outbox mail per booking), and its later runs write nothing more.
2. Killed while the outbox is being delivered to a real SMTP server: the
   standby delivers the rest. Every reminder mail reaches the server, no
   reminder is written twice, and a mail is handed over twice at most once
   (the one in flight at the kill, marked sent only in the transaction the
   kill lost), then with the same Message-ID, so the copy is recognisable.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from booking.domain import clock
from tests.conftest import free_port
from tests.factories.accounts import create_org, create_user
from tests.factories.catalog import create_resource
from tests.factories.reservations import create_reservation
from tests.faults.support import ROOT, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

RENEW_SECONDS, LEASE_SECONDS = 1, 4


def scheduler_url(app, name: str) -> str:
    """The test database's URL, naming the connections ``name`` in pg_stat_activity."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    return url.update_query_dict({"application_name": name}).render_as_string(hide_password=False)


def start_scheduler(app, name: str, log: Path, smtp_url: str | None = None) -> subprocess.Popen:
    env = {
        **os.environ,
        "BOOKING_ENV": "production",
        "DATABASE_URL": scheduler_url(app, name),
        "SECRET_KEY": "scheduler-fault-test",
        "BOOKING_SCHEDULER_RENEW_SECONDS": str(RENEW_SECONDS),
        "BOOKING_SCHEDULER_LEASE_SECONDS": str(LEASE_SECONDS),
        "BOOKING_SCHEDULER_INTERVALS": '{"send_reminders": 1, "deliver_outbox": 1}',
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("SMTP_URL", None)
    if smtp_url:
        env["SMTP_URL"] = smtp_url
    with log.open("w") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "scheduler"],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class Schedulers:
    """Two scheduler processes, named for pg_stat_activity; stopped at the end."""

    def __init__(self, app, tmp_path: Path, smtp_url: str | None = None) -> None:
        self.tmp_path = tmp_path
        self.processes = {
            f"fault_scheduler_{i}": start_scheduler(
                app, f"fault_scheduler_{i}", tmp_path / f"scheduler_{i}.log", smtp_url
            )
            for i in range(2)
        }

    def by_pid(self, pid: int) -> str:
        return next(name for name, p in self.processes.items() if p.pid == pid)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text()[-3000:]}"
            for log in sorted(self.tmp_path.glob("scheduler_*.log"))
        )


def query(session, sql: str, **params) -> list:
    rows = session.execute(text(sql), params).all()
    session.rollback()
    return rows


def writing_notifications(session) -> str | None:
    """The scheduler whose open transaction has inserted notifications
    (it holds a RowExclusiveLock on the table until it commits), if any."""
    rows = query(
        session,
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.relation = 'notifications'::regclass AND l.mode = 'RowExclusiveLock' "
        "AND a.application_name LIKE 'fault_scheduler_%' AND a.datname = current_database()",
    )
    return rows[0][0] if rows else None


def lease_holder_pid(session, *, alive_only: bool = True) -> int | None:
    """The pid of the scheduler holding the lease (or the last one that did)."""
    rows = query(
        session,
        "SELECT holder, expires_at > :now FROM scheduler_leases WHERE name = 'scheduler'",
        now=clock.now(),
    )
    if not rows or not rows[0][0] or (alive_only and not rows[0][1]):
        return None
    return int(rows[0][0].split(":")[1])


def reminder_runs(session, pid: int) -> list[dict]:
    return [
        counts
        for holder, counts in query(
            session,
            "SELECT holder, counts FROM job_runs WHERE job = 'send_reminders' "
            "AND status = 'ok' ORDER BY id",
        )
        if int(holder.split(":")[1]) == pid
    ]


def bookings_to_remind(session, count: int) -> set[int]:
    """``count`` approved bookings starting 2 to 20 hours from now (each due
    its 24-hour reminder), of several users, on one pooled resource."""
    resource = create_resource(session, kind="hpc", hours=[], closed_on_holidays=False)
    org = create_org(session, "enterprise")
    users = [create_user(session, org) for _ in range(10)]
    now = clock.now()
    ids = set()
    for index in range(count):
        start = now + timedelta(hours=2, minutes=(index * 1080) // count)
        booking = create_reservation(session, resource, org, users[index % 10], start)
        ids.add(booking.id)
    session.commit()
    return ids


def assert_each_reminded_once(session, bookings: set[int]) -> list:
    notified = Counter(
        target_id
        for (target_id,) in query(
            session, "SELECT target_id FROM notifications WHERE kind = 'reminder'"
        )
    )
    assert set(notified) == bookings
    assert set(notified.values()) == {1}, "no booking is reminded twice"
    mails = query(
        session, "SELECT dedupe_key, message_id, status FROM outbox_mails WHERE kind = 'reminder'"
    )
    assert len(mails) == len(bookings), "one reminder mail per booking"
    reminded = {int(key.split(":")[1]) for key, _message_id, _status in mails}
    assert reminded == bookings
    return mails


def test_a_scheduler_killed_while_writing_reminders_leaves_them_to_the_standby_once(
    app, session, requires_postgres, tmp_path
):
    bookings = bookings_to_remind(session, 200)
    schedulers = Schedulers(app, tmp_path)
    try:
        leader = wait_for(lambda: writing_notifications(session), 60, "a reminder run", 0.01)
        schedulers.kill(leader)
        killed_at = time.monotonic()
        # The kill landed inside the run: nothing of it was committed.
        assert query(session, "SELECT count(*) FROM notifications")[0][0] == 0
        assert query(session, "SELECT count(*) FROM outbox_mails")[0][0] == 0
        killed_pid = schedulers.processes[leader].pid
        assert reminder_runs(session, killed_pid) == []

        standby = next(name for name in schedulers.processes if name != leader)
        standby_pid = schedulers.processes[standby].pid
        runs = wait_for(
            lambda: (
                len(reminder_runs(session, standby_pid)) >= 2
                and reminder_runs(session, standby_pid)
            ),
            40,
            "the standby to take over and run the reminders twice",
        )
        took = time.monotonic() - killed_at
        print(f"the standby finished the reminders {took:.1f} s after the kill")
        assert runs[0] == {"sent": len(bookings)}
        assert all(later == {"sent": 0} for later in runs[1:]), runs
        assert lease_holder_pid(session) == standby_pid
        assert_each_reminded_once(session, bookings)
    except BaseException:
        print(schedulers.logs())
        raise
    finally:
        schedulers.stop()


class SlowSmtpHandler:
    """An aiosmtpd handler that takes its time over each mail (so a kill can
    land in the middle of a delivery run) and keeps every Message-ID it is
    given, duplicates included."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.message_ids: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.seconds)
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.message_ids.append(str(message["Message-ID"]).strip())
        return "250 Message accepted for delivery"

    def received(self) -> list[str]:
        with self.lock:
            return list(self.message_ids)


@pytest.fixture
def slow_smtp():
    from aiosmtpd.controller import Controller

    handler = SlowSmtpHandler(0.1)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", handler
    finally:
        controller.stop()


def test_a_scheduler_killed_while_delivering_reminders_lets_the_standby_send_the_rest(
    app, session, requires_postgres, tmp_path, slow_smtp
):
    smtp_url, smtp = slow_smtp
    bookings = bookings_to_remind(session, 40)
    schedulers = Schedulers(app, tmp_path, smtp_url)
    try:
        wait_for(lambda: len(smtp.received()) >= 5, 60, "the first mails to arrive", 0.02)
        leader_pid = lease_holder_pid(session, alive_only=False)
        leader = schedulers.by_pid(leader_pid)
        schedulers.kill(leader)
        killed_at = time.monotonic()
        received_at_kill = len(smtp.received())
        pending = query(session, "SELECT count(*) FROM outbox_mails WHERE status = 'pending'")[0][0]
        assert pending > 0, "the kill landed before the delivery run was over"
        print(f"killed the leader after {received_at_kill} mails, {pending} left pending")

        def all_sent():
            statuses = Counter(
                status for (status,) in query(session, "SELECT status FROM outbox_mails")
            )
            return statuses and set(statuses) == {"sent"}

        wait_for(all_sent, 45, "the standby to deliver the rest", 0.2)
        print(f"all delivered {time.monotonic() - killed_at:.1f} s after the kill")
        standby = next(name for name in schedulers.processes if name != leader)
        assert lease_holder_pid(session) == schedulers.processes[standby].pid

        mails = assert_each_reminded_once(session, bookings)
        outbox_ids = {message_id for _key, message_id, _status in mails}
        received = Counter(smtp.received())
        assert set(received) == outbox_ids, "every reminder mail reached the server"
        twice = [message_id for message_id, n in received.items() if n > 1]
        assert len(twice) <= 1 and all(received[m] == 2 for m in twice), received
        print(f"{len(received)} reminder mails delivered, {len(twice)} handed over twice")
    except BaseException:
        print(schedulers.logs())
        raise
    finally:
        schedulers.stop()
