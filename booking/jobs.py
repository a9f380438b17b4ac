"""Scheduled jobs and the scheduler process (``flask --app wsgi scheduler``).

The web workers never run jobs. The scheduler is its own process: an
APScheduler 3 ``BlockingScheduler`` with one entry per job (explicit ids,
``coalesce`` so a backlog runs once, one instance at a time). Its job store is
memory: APScheduler's stores are not meant to be shared between processes, so
which process runs the jobs is decided by a lease in the database instead.

Exactly one scheduler is active. Every process tries, every
``SCHEDULER_RENEW_SECONDS`` (10), to take or renew the ``SchedulerLease`` row
with one atomic ``UPDATE ... WHERE expires_at < now OR holder = me`` that
sets ``expires_at = now + SCHEDULER_LEASE_SECONDS`` (30). The holder runs the
jobs; the others find the lease alive and wait; when the holder dies its lease
lapses and the next standby to try takes it, within lease + renew seconds. A
holder that cannot renew (database gone) stops running jobs before its lease
could pass to another. Leases compare the processes' own clocks: keep the
machines' clocks in sync (NTP), as for everything else here.

Every job runs in its own transaction and commits; every job is idempotent
(run twice, by two processes at once, or again after a crash half-way, it
sends no mail twice and writes nothing twice) because what it does and the
mark that it was done are written in the same transaction, under unique keys
or conditional updates. Each run leaves a ``JobRun`` row.

Jobs of other areas are called by name (``booking.services.reservations.
expire_overdue_requests`` and the like); one that is not there (or still a
stub raising ``NotImplementedError``) is logged and skipped, never faked.

Settings (``BOOKING_<NAME>`` in the environment): ``SCHEDULER_LEASE_SECONDS``,
``SCHEDULER_RENEW_SECONDS``, ``SCHEDULER_INTERVALS`` (a JSON object of job id
to seconds), ``REMINDER_MINUTES`` (a JSON list, default ``[1440, 60]``),
``VOUCHER_WARNING_DAYS``, ``SMTP_TIMEOUT_SECONDS``, ``MAILER_BATCH``,
``JOB_RUNS_KEEP_DAYS``.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import case, delete, or_, update
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.extensions import db
from booking.models.notifications import JobRun, SchedulerLease
from booking.services import mailer, notifications

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"

DEFAULTS: dict[str, Any] = {
    "SCHEDULER_LEASE_SECONDS": 30,
    "SCHEDULER_RENEW_SECONDS": 10,
    "SCHEDULER_INTERVALS": {},
    "REMINDER_MINUTES": list(notifications.DEFAULT_REMINDER_MINUTES),
    "VOUCHER_WARNING_DAYS": notifications.VOUCHER_WARNING_DAYS,
    "SMTP_TIMEOUT_SECONDS": 30,
    "MAILER_BATCH": 200,
    "JOB_RUNS_KEEP_DAYS": 7,
}


def setting(app: Flask, name: str) -> Any:
    value = app.config.get(name)
    return DEFAULTS[name] if value is None else value


# --- the leader lease ---------------------------------------------------------------


def acquire_lease(
    session: Session, holder: str, now: datetime, seconds: float, name: str = LEASE_NAME
) -> bool:
    """Take the lease, or renew it when ``holder`` has it; True if ``holder``
    holds it now, until ``now + seconds``. One atomic conditional UPDATE: of
    two processes trying at once, exactly one wins."""
    notifications.insert_once(
        session,
        SchedulerLease,
        {"name": name, "holder": "", "expires_at": now - timedelta(seconds=1)},
        ("name",),
    )
    result = session.execute(
        update(SchedulerLease)
        .where(
            SchedulerLease.name == name,
            or_(SchedulerLease.expires_at < now, SchedulerLease.holder == holder),
        )
        .values(
            holder=holder,
            expires_at=now + timedelta(seconds=seconds),
            renewed_at=now,
            acquired_at=case(
                (SchedulerLease.holder == holder, SchedulerLease.acquired_at), else_=now
            ),
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release_lease(session: Session, holder: str, now: datetime, name: str = LEASE_NAME) -> None:
    """Give the lease up at a clean stop, so a standby takes over at its next try."""
    session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
        .values(expires_at=now - timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# --- the jobs ---------------------------------------------------------------------------


class JobUnavailable(Exception):
    """The function a job calls is not there (yet)."""


Runner = Callable[[Flask, Session, datetime], dict]


@dataclass(frozen=True)
class Job:
    id: str
    seconds: int
    run: Runner


def call_by_name(module_name: str, function_name: str) -> Runner:
    """A runner calling ``module.function(session, now)`` of another area,
    looked up at run time."""
    path = f"{module_name}.{function_name}"

    def run(app: Flask, session: Session, now: datetime) -> dict:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise JobUnavailable(f"{path} is not available: no module {exc.name}") from None
            raise
        function = getattr(module, function_name, None)
        if function is None:
            raise JobUnavailable(f"{path} is not available")
        try:
            result = function(session, now)
        except NotImplementedError:
            raise JobUnavailable(f"{path} is not implemented yet") from None
        return as_counts(result)

    run.__name__ = function_name
    return run


def as_counts(result: Any) -> dict:
    if isinstance(result, dict):
        return {str(k): v for k, v in result.items()}
    if isinstance(result, bool) or result is None:
        return {}
    if isinstance(result, int):
        return {"count": result}
    if isinstance(result, list | tuple | set):
        return {"count": len(result)}
    return {}


def purge_expired_tokens(app: Flask, session: Session, now: datetime) -> dict:
    from booking.services import accounts

    return {"count": accounts.purge_expired_tokens(session)}


def send_reminders(app: Flask, session: Session, now: datetime) -> dict:
    minutes = [int(m) for m in setting(app, "REMINDER_MINUTES")]
    return {"sent": notifications.send_due_reminders(session, now, minutes)}


def warn_expiring_vouchers(app: Flask, session: Session, now: datetime) -> dict:
    days = int(setting(app, "VOUCHER_WARNING_DAYS"))
    try:
        warned = notifications.warn_expiring_vouchers(session, now, days)
    except ImportError as exc:  # the vouchers area is not there yet
        raise JobUnavailable(f"vouchers are not available: {exc}") from None
    return {"warned": warned}


def deliver_outbox(app: Flask, session: Session, now: datetime) -> dict:
    """Send due mails, each in its own transaction (see ``booking.services.mailer``)."""
    settings = mailer.smtp_settings(app.config.get("SMTP_URL"))
    if settings is None:
        limit = int(setting(app, "MAILER_BATCH"))
        return {"kept": mailer.keep_pending_mails(session, now, limit=limit)}
    transport = mailer.SmtpTransport(settings, timeout=float(setting(app, "SMTP_TIMEOUT_SECONDS")))
    counts: Counter[str] = Counter()
    mail_from = app.config["MAIL_FROM"]
    # SQLite locks the whole database per transaction: never across a send.
    hold = mailer.HOLD_MINUTES if session.get_bind().dialect.name == "sqlite" else None
    try:
        for _ in range(int(setting(app, "MAILER_BATCH"))):
            claimed = mailer.claim_next(session, clock.now(), mail_from, hold_minutes=hold)
            if claimed is None:
                break
            if claimed.failed is not None:  # could not be rendered: retried later
                session.commit()
                counts[claimed.failed.status] += 1
                continue
            if hold:
                session.commit()
            result = mailer.send(transport, claimed)
            outcome = mailer.record(session, claimed, result, clock.now())
            session.commit()
            counts[outcome.status] += 1
            if outcome.stop:
                break
    finally:
        session.rollback()
        transport.close()
    return dict(counts)


def prune_job_runs(app: Flask, session: Session, now: datetime) -> dict:
    cutoff = now - timedelta(days=int(setting(app, "JOB_RUNS_KEEP_DAYS")))
    result = session.execute(delete(JobRun).where(JobRun.started_at < cutoff))
    return {"count": result.rowcount or 0}


JOBS: dict[str, Job] = {
    job.id: job
    for job in (
        Job(
            "expire_requests",
            300,
            call_by_name("booking.services.reservations", "expire_overdue_requests"),
        ),
        Job("mark_no_shows", 300, call_by_name("booking.services.reservations", "mark_no_shows")),
        Job(
            "expire_waitlist_offers", 60, call_by_name("booking.services.waitlist", "expire_offers")
        ),
        Job(
            "expire_vouchers", 600, call_by_name("booking.services.vouchers", "expire_due_vouchers")
        ),
        Job("send_reminders", 120, send_reminders),
        Job("warn_expiring_vouchers", 3600, warn_expiring_vouchers),
        Job("purge_expired_tokens", 6 * 3600, purge_expired_tokens),
        Job("deliver_outbox", 30, deliver_outbox),
        Job("prune_job_runs", 6 * 3600, prune_job_runs),
    )
}

_reported_unavailable: set[str] = set()
_report_lock = threading.Lock()


@dataclass(frozen=True)
class RunResult:
    """What one run of a job did (the ``JobRun`` row, detached from its session)."""

    job: str
    holder: str
    status: str  # ok, skipped, error
    counts: dict
    error: str | None
    started_at: datetime
    finished_at: datetime


def run_job(app: Flask, job: Job, holder: str = "manual") -> RunResult:
    """Run one job now in its own app context, session and transaction, and
    record the run. Never raises: a failing job is logged and recorded."""
    with app.app_context():
        session = db.session
        started = clock.now()
        status, counts, error = "ok", {}, None
        try:
            counts = job.run(app, session, started)
        except JobUnavailable as exc:
            session.rollback()
            status, error = "skipped", str(exc)
            with _report_lock:
                first = job.id not in _reported_unavailable
                _reported_unavailable.add(job.id)
            (log.warning if first else log.debug)("job %s skipped: %s", job.id, exc)
        except Exception as exc:
            session.rollback()
            log.exception("job %s failed", job.id)
            status, error = "error", f"{type(exc).__name__}: {exc}"
        result = RunResult(job.id, holder, status, counts, error, started, clock.now())
        try:
            session.add(
                JobRun(
                    job=job.id,
                    holder=holder,
                    status=status,
                    counts=counts,
                    error=error,
                    started_at=started,
                    finished_at=result.finished_at,
                )
            )
            session.commit()
        except Exception:
            session.rollback()
            log.exception("could not record the run of job %s", job.id)
        finally:
            db.session.remove()
        if status == "ok" and any(counts.values()):
            log.info("job %s: %s", job.id, counts)
        return result


# --- the process ------------------------------------------------------------------------


class SchedulerProcess:
    """One scheduler process: renews the lease and runs the jobs while it leads."""

    def __init__(self, app: Flask, holder: str | None = None) -> None:
        self.app = app
        self.holder = holder or default_holder()
        self.lease_seconds = float(setting(app, "SCHEDULER_LEASE_SECONDS"))
        self.renew_seconds = float(setting(app, "SCHEDULER_RENEW_SECONDS"))
        if self.renew_seconds >= self.lease_seconds:
            raise RuntimeError(
                "SCHEDULER_RENEW_SECONDS must be shorter than SCHEDULER_LEASE_SECONDS "
                f"(now {self.renew_seconds:g} and {self.lease_seconds:g})."
            )
        self.leading_until: datetime | None = None
        self.scheduler = None

    def is_leader(self, now: datetime | None = None) -> bool:
        until = self.leading_until
        return until is not None and (now or clock.now()) < until

    def renew(self) -> bool:
        """Take or renew the lease; remember until when this process may lead.
        It stops leading one renew interval before the lease lapses, so it
        never runs a job while another process may already hold the lease."""
        now = clock.now()
        with self.app.app_context():
            try:
                held = acquire_lease(db.session, self.holder, now, self.lease_seconds)
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("scheduler %s could not reach the lease", self.holder)
                held = False
            finally:
                db.session.remove()
        was_leader = self.is_leader(now)
        if held:
            self.leading_until = now + timedelta(seconds=self.lease_seconds - self.renew_seconds)
            if not was_leader:
                log.info("scheduler %s leads: it runs the jobs", self.holder)
        else:
            if was_leader or self.leading_until is None:
                log.info("scheduler %s stands by: another scheduler leads", self.holder)
            self.leading_until = now - timedelta(microseconds=1)
        return held

    def release(self) -> None:
        try:
            with self.app.app_context():
                release_lease(db.session, self.holder, clock.now())
                db.session.commit()
                db.session.remove()
        except Exception:
            log.exception("scheduler %s could not release the lease", self.holder)
        self.leading_until = None

    def run_if_leader(self, job_id: str) -> RunResult | None:
        if not self.is_leader():
            return None
        return run_job(self.app, JOBS[job_id], self.holder)

    def intervals(self) -> dict[str, float]:
        chosen = setting(self.app, "SCHEDULER_INTERVALS") or {}
        unknown = sorted(set(chosen) - set(JOBS))
        if unknown:
            raise RuntimeError(f"SCHEDULER_INTERVALS names unknown jobs: {', '.join(unknown)}")
        return {job_id: float(chosen.get(job_id, job.seconds)) for job_id, job in JOBS.items()}

    def build(self):
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        scheduler = BlockingScheduler(
            executors={"default": ThreadPoolExecutor(4), "lease": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=clock.platform_tz(),
        )
        start = datetime.now(clock.platform_tz())
        scheduler.add_job(
            self.renew,
            "interval",
            seconds=self.renew_seconds,
            id="scheduler_lease",
            executor="lease",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(self.renew_seconds)),
        )
        for job_id, seconds in self.intervals().items():
            scheduler.add_job(
                self.run_if_leader,
                "interval",
                args=[job_id],
                seconds=seconds,
                id=job_id,
                name=job_id,
                coalesce=True,
                max_instances=1,
                next_run_time=start + timedelta(seconds=1),
                misfire_grace_time=max(1, int(seconds)),
            )
        return scheduler

    def run(self) -> None:
        """Block running the scheduler until SIGTERM or SIGINT."""
        # APScheduler logs every run at INFO; the job log (JobRun) says more.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self.scheduler = self.build()
        self.renew()

        def stop(signum, _frame):
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stop)
        log.info("scheduler %s started", self.holder)
        try:
            self.scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            if self.scheduler.running:
                self.scheduler.shutdown(wait=True)
            self.release()
            log.info("scheduler %s stopped", self.holder)


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the scheduler process (one is active at a time; others stand by)."""
    SchedulerProcess(current_app._get_current_object()).run()
