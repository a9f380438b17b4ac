"""Racing requests never overspend a voucher (POLICY.md rule 12): 20
bookings on one voucher completed at once from 20 threads, each with its own
session and connection, committing; and 20 approvals holding at once.

Real races: on PostgreSQL every thread has its own connection and the
voucher row lock decides; on SQLite the transactions are serialised by
BEGIN IMMEDIATE."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from booking.domain.errors import RuleViolation
from booking.models.reservations import Reservation, ReservationStatus
from booking.models.vouchers import LedgerKind, VoucherLedgerEntry
from booking.services import vouchers as service
from tests.factories.accounts import actor_of
from tests.factories.claims import approved_voucher_booking
from tests.factories.reservations import create_reservation
from tests.factories.vouchers import local

D = Decimal
RACERS = 20


@pytest.fixture
def racing_engine(db, postgres):
    """PostgreSQL: an engine with a connection for every racer (the app's
    pool would queue them). SQLite: the app's engine, which begins every
    transaction IMMEDIATE."""
    if not postgres:
        yield db.engine
        return
    engine = create_engine(db.engine.url, pool_size=RACERS + 2, max_overflow=0)
    yield engine
    engine.dispose()


def race(app, engine, work, items) -> tuple[list, list]:
    # PostgreSQL: every racer opens its transaction first, then all go at
    # once. SQLite: BEGIN IMMEDIATE would make the first racer wait at the
    # barrier holding the write lock, so they connect after it.
    connect_first = engine.dialect.name == "postgresql"
    barrier = threading.Barrier(len(items))
    results, errors = [], []
    lock = threading.Lock()

    def run(item):
        session = Session(bind=engine)
        context = app.app_context()  # event subscribers may read the app's settings
        context.push()
        try:
            if connect_first:
                session.connection()
            barrier.wait(timeout=60)
            outcome = work(session, item)
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

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


def entries(session, voucher_id, kind):
    return session.scalars(
        select(VoucherLedgerEntry.amount).where(
            VoucherLedgerEntry.voucher_id == voucher_id, VoucherLedgerEntry.kind == kind
        )
    ).all()


def test_twenty_completions_at_once_never_redeem_more_than_the_face_value(
    app, session, voucher_world, racing_engine, time_machine
):
    time_machine.move_to(local(2026, 3, 2, 10), tick=False)
    world = voucher_world(face_value="1000.00")
    # Each holds 10.00 at approval, but completes at 400.00 and wants 200.00:
    # 20 × 200 = 4000 asked of a 1000 voucher.
    bookings = [
        approved_voucher_booking(
            session, world, local(2026, 3, 3, 9) + timedelta(days=i), estimated="20.00"
        ).id
        for i in range(RACERS)
    ]
    lab = actor_of(session, world.lab_admin)
    session.commit()

    def complete(racer: Session, booking_id: int) -> Decimal:
        booking = racer.get(Reservation, booking_id)
        booking.status = ReservationStatus.COMPLETED
        booking.actual_start, booking.actual_end = booking.start_at, booking.end_at
        booking.final_cost = D("400.00")
        return service.redeem_for_booking(racer, lab, booking)

    with app.app_context():
        results, errors = race(app, racing_engine, complete, bookings)
    assert errors == []
    assert len(results) == RACERS
    session.expire_all()
    redeemed = -sum(entries(session, world.voucher.id, LedgerKind.REDEEM), D("0"))
    assert redeemed == sum(results, D("0")) == D("1000.00")
    totals = service.totals_of(session, world.voucher.id)
    assert (totals.balance, totals.held, totals.available) == (0, 0, 0)
    rows = session.scalars(select(Reservation).where(Reservation.id.in_(bookings))).all()
    assert sum((r.voucher_amount for r in rows), D("0")) == D("1000.00")
    assert all(r.voucher_amount + r.customer_amount == D("400.00") for r in rows)


def test_twenty_approvals_at_once_never_hold_more_than_the_balance(
    app, session, voucher_world, racing_engine, time_machine
):
    time_machine.move_to(local(2026, 3, 2, 10), tick=False)
    world = voucher_world(face_value="1000.00")
    bookings = [
        create_reservation(
            session,
            world.resource,
            world.enterprise,
            world.customer,
            local(2026, 3, 3, 9) + timedelta(days=i),
            status="approved",
            estimated_cost=D("300.00"),  # wants 150.00 each
            voucher_id=world.voucher.id,
        ).id
        for i in range(RACERS)
    ]
    lab = actor_of(session, world.lab_admin)
    session.commit()

    def hold(racer: Session, booking_id: int) -> Decimal:
        return service.hold_for_booking(racer, lab, racer.get(Reservation, booking_id))

    with app.app_context():
        results, errors = race(app, racing_engine, hold, bookings)
    assert all(
        isinstance(e, RuleViolation) and e.details["rule"] == "voucher_balance" for e in errors
    ), errors
    assert sum(results, D("0")) == D("1000.00")  # 6 × 150 and one 100
    assert len(results) == 7 and len(errors) == RACERS - 7
    session.expire_all()
    totals = service.totals_of(session, world.voucher.id)
    assert (totals.balance, totals.held, totals.available) == (D("1000.00"), D("1000.00"), 0)


def test_racing_issues_never_pass_the_annual_cap(
    app, session, voucher_world, racing_engine, time_machine
):
    time_machine.move_to(local(2026, 3, 2, 10), tick=False)
    world = voucher_world(face_value="20000.00")  # 180,000 left under the 200,000 cap
    officer = actor_of(session, world.officer)
    holder_id = world.enterprise.id
    session.commit()

    def issue(racer: Session, _n: int):
        data = {"holder_org_id": holder_id, "face_value": D("30000.00")}
        return service.issue_voucher(racer, officer, data).id

    with app.app_context():
        results, errors = race(app, racing_engine, issue, list(range(10)))
    assert len(results) == 6, errors[:2]
    assert all(isinstance(e, RuleViolation) and e.details["rule"] == "annual_cap" for e in errors)
    year = service.issued_this_year(session, world.bureau.id, world.enterprise, "enterprise", 2026)
    assert year == D("200000.00")


def test_two_claims_racing_for_the_same_bookings_one_wins(
    app, session, voucher_world, racing_engine, time_machine
):
    from booking.domain.errors import Conflict
    from booking.models.claims import ClaimLine
    from booking.services import claims
    from tests.factories.claims import paid_booking

    time_machine.move_to(local(2026, 3, 2, 10), tick=False)
    world = voucher_world()
    booking_ids = [paid_booking(session, world, local(2026, 3, 3 + i, 9)).id for i in range(3)]
    lab = actor_of(session, world.lab_admin)
    session.commit()
    period = {"period_from": local(2026, 3, 1).date(), "period_to": local(2026, 3, 31).date()}

    def file(racer: Session, _n: int) -> int:
        return claims.create_claim(racer, lab, period).id

    results, errors = race(app, racing_engine, file, [1, 2, 3, 4])
    # One claim takes the bookings; the others found them taken (409) or,
    # serialised behind it, nothing left to claim (422).
    assert len(results) == 1
    assert all(
        isinstance(e, Conflict)
        or (isinstance(e, RuleViolation) and e.details["rule"] == "claim_nothing_to_claim")
        for e in errors
    ), errors
    session.expire_all()
    lines = session.scalars(select(ClaimLine.reservation_id)).all()
    assert sorted(lines) == sorted(booking_ids)
