"""One live training record per user and scope, held by the database: two
grants at once leave one record (the second renews it), and the unique key
refuses a second live record even where resource_id or category_id is NULL.

Real races: on PostgreSQL every racer has its own connection and the unique
``live_scope`` decides; on SQLite the transactions are serialised by BEGIN
IMMEDIATE."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from booking.models.audit import AuditEvent
from booking.models.catalog import TrainingRecord
from booking.services import training
from tests.factories.accounts import actor_of, create_user

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)
RACERS = 8


@pytest.fixture
def racing_engine(db, postgres):
    if not postgres:
        yield db.engine
        return
    engine = create_engine(db.engine.url, pool_size=RACERS + 2, max_overflow=0)
    yield engine
    engine.dispose()


def race(app, engine, work, count) -> tuple[list, list]:
    connect_first = engine.dialect.name == "postgresql"
    barrier = threading.Barrier(count)
    results, errors = [], []
    lock = threading.Lock()

    def run():
        session = Session(bind=engine)
        context = app.app_context()
        context.push()
        try:
            if connect_first:
                session.connection()
            barrier.wait(timeout=60)
            outcome = work(session)
            session.commit()
            with lock:
                results.append(outcome)
        except Exception as exc:  # collected, asserted on below
            session.rollback()
            with lock:
                errors.append(exc)
        finally:
            session.close()
            context.pop()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


def live_records(session, user_id) -> list[TrainingRecord]:
    session.expire_all()
    return list(
        session.scalars(
            select(TrainingRecord)
            .where(TrainingRecord.user_id == user_id, TrainingRecord.revoked_at.is_(None))
            .order_by(TrainingRecord.id)
        )
    )


def audit_actions(session, action) -> int:
    return session.query(AuditEvent).filter_by(action=action).count()


@pytest.mark.parametrize("scope", ["resource", "category"])
def test_racing_grants_leave_one_record(
    app, session, booking_world, racing_engine, time_machine, scope
):
    time_machine.move_to(NOW, tick=False)
    world = booking_world(requires_training=True)
    trainee = create_user(session, world.customer, "member")
    admins = [world.lab_admin] + [create_user(session, world.provider, "admin") for _ in range(3)]
    actors = [actor_of(session, a) for a in admins]
    data = {"user_id": trainee.id}
    if scope == "resource":
        data["resource_id"] = world.resource.id
    else:
        data["category_id"] = world.resource.category_id
    session.commit()
    turn = iter(range(RACERS))
    turn_lock = threading.Lock()

    def grant(racer: Session) -> int:
        with turn_lock:
            actor = actors[next(turn) % len(actors)]
        return training.grant_training(racer, actor, dict(data)).id

    results, errors = race(app, racing_engine, grant, RACERS)

    assert errors == []
    records = live_records(session, trainee.id)
    assert len(records) == 1
    assert set(results) == {records[0].id}
    # One grant, the rest renewals of it: each change audited.
    assert audit_actions(session, "training.grant") == 1
    assert audit_actions(session, "training.renew") == RACERS - 1


@pytest.mark.parametrize("scope", ["resource", "category"])
def test_the_database_refuses_a_second_live_record_of_a_scope(
    session, booking_world, time_machine, scope
):
    time_machine.move_to(NOW, tick=False)
    world = booking_world()
    trainee = create_user(session, world.customer, "member")
    if scope == "resource":
        fields = {"resource_id": world.resource.id, "provider_id": world.provider.id}
    else:
        fields = {"category_id": world.resource.category_id, "provider_id": world.provider.id}
    key = TrainingRecord.scope_key(
        fields.get("resource_id"), fields.get("category_id"), fields["provider_id"]
    )
    session.add(TrainingRecord(user_id=trainee.id, live_scope=key, **fields))
    session.flush()
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(TrainingRecord(user_id=trainee.id, live_scope=key, **fields))
        session.flush()
    # History (no live scope) may repeat as often as it happened.
    session.add(TrainingRecord(user_id=trainee.id, live_scope=None, **fields))
    session.add(TrainingRecord(user_id=trainee.id, live_scope=None, **fields))
    session.flush()


def test_a_grant_after_expiry_keeps_the_expired_record_as_history(
    session, booking_world, time_machine
):
    time_machine.move_to(NOW, tick=False)
    world = booking_world()
    trainee = create_user(session, world.customer, "member")
    grant = {"user_id": trainee.id, "resource_id": world.resource.id}
    first = training.grant_training(
        session, world.lab_actor, {**grant, "valid_until": NOW + timedelta(days=1)}
    )
    time_machine.move_to(NOW + timedelta(days=2), tick=False)
    second = training.grant_training(session, world.lab_actor, grant)

    assert second.id != first.id
    assert first.live_scope is None and second.live_scope == f"r{world.resource.id}"
    assert audit_actions(session, "training.supersede") == 1
    assert audit_actions(session, "training.grant") == 2
    # Revoking frees the scope too; granting anew makes a third record.
    training.revoke_training(session, world.lab_actor, second.id, "复训")
    assert second.live_scope is None
    third = training.grant_training(session, world.lab_actor, grant)
    assert third.id not in (first.id, second.id)
    assert len(live_records(session, trainee.id)) == 2  # the expired one and the new one
