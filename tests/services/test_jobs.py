"""The scheduler's jobs: each runs in its own transaction, and run twice in a
row, by two threads at once, or again after a crash half-way, it sends
nothing twice and writes nothing twice. Time is moved with time-machine."""

from __future__ import annotations

import sys
import threading
import types
from datetime import date, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from booking.extensions import db
from booking.jobs import JOBS, Job, call_by_name, run_job
from booking.models.accounts import ApiToken
from booking.models.notifications import JobRun, MailStatus, Notification, OutboxMail
from booking.services import events, notifications
from tests.factories.accounts import create_user
from tests.factories.notifications import (
    at,
    count_rows,
    mails_to,
    notifications_of,
    rendered_mails_to,
)

NOW = at(2026, 11, 20, 1)  # Friday 09:00 in Shanghai


def end_transaction():
    # On SQLite every transaction holds the write lock (BEGIN IMMEDIATE), even
    # one that only read: the test's own must end before a job runs.
    db.session.commit()


def run(app, job_id: str, holder: str = "test"):
    end_transaction()
    return run_job(app, JOBS[job_id], holder)


def run_in_threads(app, job_id: str, count: int = 2) -> list:
    """Start ``count`` runs of a job at the same instant, each in its thread."""
    end_transaction()
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def work(i):
        barrier.wait()
        results[i] = run_job(app, JOBS[job_id], f"thread-{i}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in results)
    return results


def reminder_keys(session) -> list[str]:
    return sorted(
        session.scalars(
            select(Notification.dedupe_key).where(Notification.kind == "reminder")
        ).all()
    )


# --- reminders ------------------------------------------------------------------------


def test_reminders_go_once_at_24_hours_and_at_1_hour(app, session, lab_scene):
    tomorrow = lab_scene.booking(session, NOW + timedelta(hours=10))
    soon = lab_scene.booking(session, NOW + timedelta(minutes=30), end=NOW + timedelta(hours=1))
    lab_scene.booking(session, NOW + timedelta(hours=40))  # too far yet
    lab_scene.booking(session, NOW + timedelta(hours=5), status="requested")
    lab_scene.booking(session, NOW + timedelta(hours=6), status="cancelled")
    session.commit()

    with time_machine.travel(NOW, tick=False):
        first = run(app, "send_reminders")
        second = run(app, "send_reminders")
    assert first.status == "ok" and first.counts == {"sent": 2}
    assert second.counts == {"sent": 0}
    keys = reminder_keys(session)
    assert sorted(k.split(":")[3] for k in keys) == ["1440", "60"]
    assert {int(k.split(":")[1]) for k in keys} == {tomorrow.id, soon.id}
    # The booking starting in 30 minutes had no 24-hour reminder: too late for it.
    assert f"reservation:{soon.id}:reminder:1440" not in " ".join(keys)
    assert len(mails_to(session, lab_scene.customer.email)) == 2

    with time_machine.travel(tomorrow.start_at - timedelta(minutes=50), tick=False):
        assert run(app, "send_reminders").counts == {"sent": 1}
        assert run(app, "send_reminders").counts == {"sent": 0}
    with time_machine.travel(tomorrow.start_at + timedelta(minutes=5), tick=False):
        assert run(app, "send_reminders").counts == {"sent": 0}
    assert len(reminder_keys(session)) == 3
    assert len(mails_to(session, lab_scene.customer.email)) == 3


def test_a_moved_booking_is_reminded_again_for_its_new_time(app, session, lab_scene):
    booking = lab_scene.booking(session, NOW + timedelta(hours=3))
    session.commit()
    with time_machine.travel(NOW, tick=False):
        assert run(app, "send_reminders").counts == {"sent": 1}
        booking.start_at += timedelta(hours=2)
        booking.end_at += timedelta(hours=2)
        booking.busy_end = booking.end_at
        session.commit()
        assert run(app, "send_reminders").counts == {"sent": 1}
    assert len(reminder_keys(session)) == 2


def test_the_reminder_offsets_are_a_setting(app, session, lab_scene, monkeypatch):
    monkeypatch.setitem(app.config, "REMINDER_MINUTES", [120])
    lab_scene.booking(session, NOW + timedelta(hours=1))
    lab_scene.booking(session, NOW + timedelta(hours=10))
    session.commit()
    with time_machine.travel(NOW, tick=False):
        assert run(app, "send_reminders").counts == {"sent": 1}
    assert [k.split(":")[3] for k in reminder_keys(session)] == ["120"]


def test_a_reminder_mail_speaks_the_users_language(app, session, lab_scene):
    lab_scene.customer.locale = "en"
    lab_scene.booking(session, NOW + timedelta(hours=2))
    session.commit()
    with time_machine.travel(NOW, tick=False):
        run(app, "send_reminders")
    (mail,) = rendered_mails_to(session, lab_scene.customer.email)
    assert mail.subject == "Reminder: X-ray diffractometer starts Fri 20 Nov 2026, 11:00"


def test_reminders_sent_by_two_threads_at_once_go_once(app, session, lab_scene):
    for hours in range(1, 9):
        start = NOW + timedelta(hours=hours, minutes=30)
        lab_scene.booking(session, start, end=start + timedelta(minutes=30))
    session.commit()
    with time_machine.travel(NOW, tick=False):
        results = run_in_threads(app, "send_reminders")
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    assert sum(r.counts["sent"] for r in results) == 8
    assert count_rows(session, Notification, kind="reminder") == 8
    assert count_rows(session, OutboxMail, kind="reminder") == 8


def test_a_crash_half_way_writes_nothing_and_the_next_run_sends_each_once(
    app, session, lab_scene, monkeypatch
):
    for hours in (2, 4, 6):
        lab_scene.booking(session, NOW + timedelta(hours=hours))
    session.commit()
    real_notify = notifications.notify
    calls = []

    def crashing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the process died here")
        return real_notify(*args, **kwargs)

    monkeypatch.setattr(notifications, "notify", crashing)
    with time_machine.travel(NOW, tick=False):
        crashed = run(app, "send_reminders")
    assert crashed.status == "error" and "died" in crashed.error
    assert count_rows(session, Notification) == 0 and count_rows(session, OutboxMail) == 0

    monkeypatch.setattr(notifications, "notify", real_notify)
    with time_machine.travel(NOW, tick=False):
        assert run(app, "send_reminders").counts == {"sent": 3}
        assert run(app, "send_reminders").counts == {"sent": 0}
    assert count_rows(session, Notification) == 3 and count_rows(session, OutboxMail) == 3


# --- voucher-expiry warnings ------------------------------------------------------------


def voucher_scene(session, lab_scene):
    from tests.factories.vouchers import create_bureau, create_policy, create_voucher

    bureau = create_bureau(session)
    create_policy(session, bureau)
    holder = lab_scene.customer_org
    holder.tech_sme_number = "2026140105A0000001"
    holder.tech_sme_year = 2026
    holder_admin = create_user(session, holder, "admin", locale="en")
    soon = create_voucher(session, bureau, holder, valid_until=date(2026, 12, 10))
    later = create_voucher(session, bureau, holder, valid_until=date(2026, 12, 31))
    return holder_admin, soon, later


def test_a_voucher_is_warned_about_once_30_days_before_its_last_day(app, session, lab_scene):
    with time_machine.travel(NOW, tick=False):
        holder_admin, soon, later = voucher_scene(session, lab_scene)
        session.commit()
        first = run(app, "warn_expiring_vouchers")
        second = run(app, "warn_expiring_vouchers")
    assert first.status == "ok", first.error
    assert first.counts == {"warned": 1} and second.counts == {"warned": 0}
    (item,) = notifications_of(session, holder_admin)
    assert item.target_id == soon.id
    (mail,) = rendered_mails_to(session, holder_admin.email)
    assert mail.subject == f"Innovation voucher {soon.number} expires on 10 Dec 2026"
    assert "Not used yet (CNY): 10000.00" in mail.text_body

    with time_machine.travel(at(2026, 12, 1, 1), tick=False):  # 30 days before 31 Dec
        assert run(app, "warn_expiring_vouchers").counts == {"warned": 1}
        assert run(app, "warn_expiring_vouchers").counts == {"warned": 0}
    assert [n.target_id for n in notifications_of(session, holder_admin)] == [soon.id, later.id]


def test_voucher_warnings_by_two_threads_at_once_go_once(app, session, lab_scene):
    with time_machine.travel(NOW, tick=False):
        holder_admin, _soon, _later = voucher_scene(session, lab_scene)
        session.commit()
        results = run_in_threads(app, "warn_expiring_vouchers")
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    assert count_rows(session, Notification, user_id=holder_admin.id) == 1
    assert len(mails_to(session, holder_admin.email)) == 1


# --- the outbox ------------------------------------------------------------------------


def queue_approvals(session, lab_scene, count: int) -> None:
    for i in range(count):
        booking = lab_scene.booking(session, NOW + timedelta(days=3, hours=3 * i))
        events.publish(session, "reservation.approved", booking)
    session.commit()


def test_the_outbox_delivered_twice_sends_each_mail_once(app, session, mail_to, lab_scene):
    with time_machine.travel(NOW, tick=False):
        queue_approvals(session, lab_scene, 3)
        assert run(app, "deliver_outbox").counts == {"sent": 3}
        assert run(app, "deliver_outbox").counts == {}
    assert len(mail_to.received) == 3
    assert len({r.message["Message-ID"] for r in mail_to.received}) == 3


def test_two_mailers_at_once_send_each_mail_once(app, session, mail_to, lab_scene):
    with time_machine.travel(NOW, tick=False):
        queue_approvals(session, lab_scene, 12)
        results = run_in_threads(app, "deliver_outbox", count=3)
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    assert sum(r.counts.get("sent", 0) for r in results) == 12
    ids = [r.message["Message-ID"] for r in mail_to.received]
    assert len(ids) == len(set(ids)) == 12
    statuses = session.scalars(select(OutboxMail.status)).all()
    assert statuses == [MailStatus.SENT] * 12


# --- tokens, job log, jobs of other areas ----------------------------------------------------


def test_expired_tokens_are_purged_once(app, session, lab_scene):
    user = lab_scene.customer
    for days_ago in (40, 35, 1):
        session.add(
            ApiToken(
                user_id=user.id,
                token_hash=f"{days_ago:064d}",
                created_at=NOW - timedelta(days=days_ago + 90),
                expires_at=NOW - timedelta(days=days_ago),
            )
        )
    session.commit()
    with time_machine.travel(NOW, tick=False):
        assert run(app, "purge_expired_tokens").counts == {"count": 2}
        assert run(app, "purge_expired_tokens").counts == {"count": 0}
    assert count_rows(session, ApiToken) == 1


def test_expired_tokens_purged_by_two_threads_at_once_go_once(app, session, lab_scene):
    for days_ago in (40, 35, 33):
        session.add(
            ApiToken(
                user_id=lab_scene.customer.id,
                token_hash=f"{days_ago:064d}",
                created_at=NOW - timedelta(days=days_ago + 90),
                expires_at=NOW - timedelta(days=days_ago),
            )
        )
    session.commit()
    with time_machine.travel(NOW, tick=False):
        results = run_in_threads(app, "purge_expired_tokens")
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    assert count_rows(session, ApiToken) == 0


def test_every_run_is_logged_and_old_runs_are_pruned(app, session, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", None)
    with time_machine.travel(NOW - timedelta(days=10), tick=False):
        run(app, "deliver_outbox", holder="old")
    with time_machine.travel(NOW, tick=False):
        run(app, "deliver_outbox", holder="new")
        assert run(app, "prune_job_runs").counts == {"count": 1}
    rows = session.scalars(select(JobRun).order_by(JobRun.id)).all()
    assert [(r.job, r.holder, r.status) for r in rows] == [
        ("deliver_outbox", "new", "ok"),
        ("prune_job_runs", "test", "ok"),
    ]
    assert rows[0].started_at == NOW and rows[0].finished_at == NOW


@pytest.fixture
def fake_area(monkeypatch):
    """A stand-in module of another area, for the by-name call mechanism only."""
    module = types.ModuleType("booking.services.stand_in_area")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def test_a_job_of_another_area_is_called_by_name_with_the_session_and_the_time(
    app, session, fake_area
):
    seen = []

    def expire_things(session, now):
        seen.append(now)
        return 4

    fake_area.expire_things = expire_things
    job = Job("expire_things", 60, call_by_name(fake_area.__name__, "expire_things"))
    end_transaction()
    with time_machine.travel(NOW, tick=False):
        result = run_job(app, job, "test")
    assert (result.status, result.counts, seen) == ("ok", {"count": 4}, [NOW])


def test_a_job_whose_function_is_missing_is_logged_and_skipped(app, session, fake_area, caplog):
    missing_module = Job("a", 60, call_by_name("booking.services.not_written_yet", "expire"))
    missing_function = Job("b", 60, call_by_name(fake_area.__name__, "not_there"))

    def stub(session, now):
        raise NotImplementedError

    fake_area.stub = stub
    stubbed = Job("c", 60, call_by_name(fake_area.__name__, "stub"))
    end_transaction()
    results = [run_job(app, job, "test") for job in (missing_module, missing_function, stubbed)]
    assert [r.status for r in results] == ["skipped"] * 3
    assert "booking.services.not_written_yet.expire is not available" in results[0].error
    assert "not_there is not available" in results[1].error
    assert "not implemented yet" in results[2].error
    assert "skipped" in caplog.text
    assert session.scalar(select(func.count()).select_from(JobRun)) == 3


def test_the_jobs_have_their_ids_and_the_other_areas_functions_by_name():
    assert set(JOBS) == {
        "expire_requests",
        "mark_no_shows",
        "expire_waitlist_offers",
        "expire_vouchers",
        "send_reminders",
        "warn_expiring_vouchers",
        "purge_expired_tokens",
        "deliver_outbox",
        "prune_job_runs",
    }
    assert JOBS["expire_requests"].run.__name__ == "expire_overdue_requests"
    assert JOBS["mark_no_shows"].run.__name__ == "mark_no_shows"
    assert JOBS["expire_waitlist_offers"].run.__name__ == "expire_offers"
    assert JOBS["expire_vouchers"].run.__name__ == "expire_due_vouchers"
