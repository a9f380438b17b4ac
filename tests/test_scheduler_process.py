"""Two real scheduler processes (``flask --app wsgi scheduler``) started
together against the test database: one runs the jobs, the other stands by;
killed with SIGKILL, the first is replaced by the second well within a minute.

This is the one test that needs real seconds: leases are shortened (renewed
every 2 s, lapsing after 6 s) through BOOKING_* settings in the environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from booking.extensions import db
from booking.models.notifications import JobRun, SchedulerLease

ROOT = Path(__file__).resolve().parent.parent
RENEW_SECONDS, LEASE_SECONDS = 2, 6


def start_scheduler(database_url: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "BOOKING_ENV": "testing",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "scheduler-process-test",
        "BOOKING_SCHEDULER_RENEW_SECONDS": str(RENEW_SECONDS),
        "BOOKING_SCHEDULER_LEASE_SECONDS": str(LEASE_SECONDS),
        # The outbox every second, so the test sees who runs the jobs.
        "BOOKING_SCHEDULER_INTERVALS": '{"deliver_outbox": 1}',
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("SMTP_URL", None)
    with log.open("w") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "scheduler"],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def pid_of(holder: str) -> int:
    return int(holder.split(":")[1])


def runs() -> list[tuple[str, str]]:
    rows = db.session.execute(select(JobRun.holder, JobRun.job).order_by(JobRun.id)).all()
    db.session.commit()  # never hold SQLite's write lock between polls
    return [tuple(r) for r in rows]


def lease_holder() -> str | None:
    lease = db.session.get(SchedulerLease, "scheduler")
    holder = lease.holder if lease else None
    db.session.commit()
    db.session.expire_all()
    return holder


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_one_of_two_schedulers_runs_the_jobs_and_the_other_takes_over_when_it_dies(
    app, db, tmp_path
):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    first = start_scheduler(url, tmp_path / "first.log")
    second = start_scheduler(url, tmp_path / "second.log")
    processes = {first.pid: first, second.pid: second}
    try:
        wait_for(lambda: len(runs()) >= 3, 45, "the first job runs")
        time.sleep(RENEW_SECONDS + 1)  # give the standby every chance to misbehave
        leader = lease_holder()
        assert leader is not None and pid_of(leader) in processes
        holders = {holder for holder, _job in runs()}
        assert holders == {leader}, "only the lease holder runs jobs"
        assert "deliver_outbox" in {job for _h, job in runs()}

        killed = processes.pop(pid_of(leader))
        survivor = next(iter(processes.values()))
        assert survivor.poll() is None, "the standby waits, it does not exit"
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(10)
        died_at = time.monotonic()

        def survivor_runs_jobs():
            return any(pid_of(holder) == survivor.pid for holder, _job in runs())

        wait_for(survivor_runs_jobs, 60, "the standby to take over")
        took = time.monotonic() - died_at
        print(f"takeover after {took:.1f} s")
        assert took < 60
        assert took < LEASE_SECONDS + 3 * RENEW_SECONDS + 5  # in practice about 8 s
        assert pid_of(lease_holder()) == survivor.pid

        # A clean stop (SIGTERM) gives the lease up at once.
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(30) == 0
        lease = db.session.get(SchedulerLease, "scheduler")
        from booking.domain import clock

        assert lease.expires_at < clock.now()
        db.session.commit()
    except BaseException:
        for log in sorted(tmp_path.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-4000:]}")
        raise
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait(10)


def test_a_scheduler_with_a_malformed_smtp_url_refuses_to_start(app, tmp_path):
    env = {
        **os.environ,
        "BOOKING_ENV": "testing",
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": "scheduler-process-test",
        "SMTP_URL": "mail.example.cn:25",
    }
    started = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "scheduler"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode != 0
    assert "SMTP_URL='mail.example.cn:25' is not valid: write smtp://" in started.stderr
