"""The scheduler's leader lease: one holder at a time, taken over when it
lapses, won by exactly one of many racing takers. Time is moved with
time-machine; the real-process takeover is in tests/test_scheduler_process.py."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine

from booking.extensions import db
from booking.jobs import (
    JOBS,
    SchedulerProcess,
    acquire_lease,
    release_lease,
)
from booking.models.notifications import JobRun, SchedulerLease
from tests.factories.notifications import at

T = at(2026, 11, 20, 1)


def take(holder: str, when, seconds: float = 30) -> bool:
    with time_machine.travel(when, tick=False):
        held = acquire_lease(db.session, holder, when, seconds)
        db.session.commit()
    return held


def test_the_lease_has_one_holder_until_it_lapses(app, session):
    assert take("a", T) is True
    assert take("b", T) is False
    assert take("a", T + timedelta(seconds=10)) is True  # renewed until T+40
    assert take("b", T + timedelta(seconds=35)) is False
    assert take("b", T + timedelta(seconds=41)) is True  # a died: b takes over
    assert take("a", T + timedelta(seconds=42)) is False  # and a cannot take it back
    lease = session.get(SchedulerLease, "scheduler")
    assert lease.holder == "b"
    assert lease.acquired_at == T + timedelta(seconds=41)
    assert lease.expires_at == T + timedelta(seconds=71)


def test_a_renewal_keeps_the_time_it_was_first_taken(app, session):
    take("a", T)
    take("a", T + timedelta(seconds=10))
    lease = session.get(SchedulerLease, "scheduler")
    assert lease.acquired_at == T and lease.renewed_at == T + timedelta(seconds=10)


def test_a_released_lease_is_taken_at_once(app, session):
    take("a", T)
    with time_machine.travel(T + timedelta(seconds=5), tick=False):
        release_lease(db.session, "a", T + timedelta(seconds=5))
        db.session.commit()
    assert take("b", T + timedelta(seconds=6)) is True


@pytest.mark.parametrize("takers", [8])
def test_of_many_racing_takers_exactly_one_wins(app, session, takers):
    session.commit()
    barrier = threading.Barrier(takers)
    won: list[str] = []
    errors: list[BaseException] = []

    def try_to_take(name: str) -> None:
        with app.app_context():
            try:
                barrier.wait()
                if acquire_lease(db.session, name, T, 30):
                    won.append(name)
                db.session.commit()
            except BaseException as exc:
                errors.append(exc)
            finally:
                db.session.remove()

    with time_machine.travel(T, tick=False):
        threads = [threading.Thread(target=try_to_take, args=(f"s{i}",)) for i in range(takers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == []
    assert len(won) == 1
    assert session.get(SchedulerLease, "scheduler").holder == won[0]


# --- the process object -----------------------------------------------------------------


@pytest.fixture
def short_lease(app, monkeypatch):
    monkeypatch.setitem(app.config, "SCHEDULER_LEASE_SECONDS", 6)
    monkeypatch.setitem(app.config, "SCHEDULER_RENEW_SECONDS", 2)
    monkeypatch.setitem(app.config, "SMTP_URL", None)


def test_only_the_leader_runs_jobs_and_a_standby_takes_over_when_it_stops_renewing(
    app, session, short_lease
):
    session.commit()
    first, second = SchedulerProcess(app, "first"), SchedulerProcess(app, "second")
    with time_machine.travel(T, tick=False):
        assert first.renew() is True and second.renew() is False
        assert first.is_leader() and not second.is_leader()
        assert first.run_if_leader("deliver_outbox").holder == "first"
        assert second.run_if_leader("deliver_outbox") is None
    # The leader stops leading one renewal before its lease lapses, even
    # unrenewed (its database gone), so two never lead at once.
    with time_machine.travel(T + timedelta(seconds=4), tick=False):
        assert not first.is_leader()
        assert second.renew() is False  # the lease still runs until T+6
    with time_machine.travel(T + timedelta(seconds=7), tick=False):
        assert second.renew() is True and second.is_leader()
        assert second.run_if_leader("deliver_outbox").holder == "second"
        assert first.renew() is False and not first.is_leader()
        assert first.run_if_leader("deliver_outbox") is None
    holders = [r.holder for r in session.query(JobRun).order_by(JobRun.id)]
    assert holders == ["first", "second"]


def test_a_clean_stop_hands_the_lease_over(app, session, short_lease):
    session.commit()
    first, second = SchedulerProcess(app, "first"), SchedulerProcess(app, "second")
    with time_machine.travel(T, tick=False):
        first.renew()
        first.release()
        assert second.renew() is True


def test_the_schedule_has_every_job_by_id_coalescing_one_at_a_time(app, monkeypatch):
    monkeypatch.setitem(app.config, "SCHEDULER_INTERVALS", {"deliver_outbox": 5})
    scheduler = SchedulerProcess(app, "x").build()
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == set(JOBS) | {"scheduler_lease"}
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1
    assert jobs["deliver_outbox"].trigger.interval == timedelta(seconds=5)
    assert jobs["send_reminders"].trigger.interval == timedelta(seconds=120)
    assert jobs["scheduler_lease"].executor == "lease"


def test_settings_that_cannot_work_are_refused(app, monkeypatch):
    monkeypatch.setitem(app.config, "SCHEDULER_RENEW_SECONDS", 30)
    monkeypatch.setitem(app.config, "SCHEDULER_LEASE_SECONDS", 30)
    with pytest.raises(RuntimeError, match="SCHEDULER_RENEW_SECONDS"):
        SchedulerProcess(app)
    monkeypatch.setitem(app.config, "SCHEDULER_RENEW_SECONDS", 10)
    monkeypatch.setitem(app.config, "SCHEDULER_INTERVALS", {"send_remiders": 60})
    with pytest.raises(RuntimeError, match="send_remiders"):
        SchedulerProcess(app).build()


def test_the_scheduler_is_a_command_of_its_own(app):
    result = app.test_cli_runner().invoke(args=["scheduler", "--help"])
    assert result.exit_code == 0
    assert "one is active at a time" in result.output
