"""The settlement facts the ledger writes with each entry (the booking's
resource and the voucher's issuing region and holder on the entry, the first
redemption's instant and voucher region on the booking) stay
equal to what the raw rows say after random sequences of voucher operations,
and the settlement report computed from them equals the report computed in
Python from the raw ledger, bookings and claim lines."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from booking.models.claims import Claim, ClaimLine
from booking.models.reservations import Reservation
from booking.models.vouchers import Voucher, VoucherLedgerEntry
from booking.services import reports
from tests.factories.accounts import actor_of, create_org, create_user
from tests.factories.reports import ledger
from tests.services.test_voucher_ledger_properties import Run, operations
from tests.services.test_voucher_ledger_properties import st as strategies

D = Decimal
ZERO = D("0.00")


def raw_facts(session):
    """What the facts must be, from the raw rows: per booking its first
    redemption (instant, voucher region), per booking its resource, per
    voucher its issuing region and holder."""
    vouchers = {
        v.id: (v.issuing_region, v.holder_org_id)
        for v in session.execute(select(Voucher.id, Voucher.issuing_region, Voucher.holder_org_id))
    }
    redeemed: dict[int, tuple] = {}
    for rid, at, entry_id, voucher_id in session.execute(
        select(
            VoucherLedgerEntry.reservation_id,
            VoucherLedgerEntry.at,
            VoucherLedgerEntry.id,
            VoucherLedgerEntry.voucher_id,
        ).where(VoucherLedgerEntry.kind == "redeem")
    ):
        first = redeemed.get(rid)
        if first is None or (at, entry_id) < first[:2]:
            redeemed[rid] = (at, entry_id, vouchers[voucher_id][0])
    resources = dict(session.execute(select(Reservation.id, Reservation.resource_id)).all())
    return {rid: (at, region) for rid, (at, _id, region) in redeemed.items()}, resources, vouchers


def check_facts(session) -> None:
    session.flush()
    redeemed, resources, vouchers = raw_facts(session)
    never = (None, None)
    # As stored in the rows...
    stored = {
        rid: (at, region)
        for rid, at, region in session.execute(
            select(Reservation.id, Reservation.redeemed_at, Reservation.redeemed_region)
        )
    }
    assert stored == {rid: redeemed.get(rid, never) for rid in stored}
    entry = VoucherLedgerEntry
    for rid, resource_id, voucher_id, region, holder in session.execute(
        select(
            entry.reservation_id,
            entry.resource_id,
            entry.voucher_id,
            entry.issuing_region,
            entry.holder_org_id,
        )
    ):
        assert (region, holder) == vouchers[voucher_id]
        if rid is not None:
            assert resource_id == resources[rid]
    # ... and as the bookings loaded in the session see them.
    for booking in session.scalars(select(Reservation)):
        assert (booking.redeemed_at, booking.redeemed_region) == redeemed.get(booking.id, never)


def expected(session, start, end, group_by: str) -> dict[int | None, dict[str, Decimal]]:
    """The platform-wide settlement figures per provider or enterprise (the
    voucher's holder), the slow way: every entry of the period joined to its
    booking and voucher in Python."""
    from booking.models.catalog import Resource

    provider_of = dict(session.execute(select(Resource.id, Resource.provider_id)).all())
    holder_of = dict(session.execute(select(Voucher.id, Voucher.holder_org_id)).all())
    bookings = {b.id: b for b in session.scalars(select(Reservation))}
    live = {
        line.reservation_id: (line, claim)
        for line, claim in session.execute(
            select(ClaimLine, Claim).join(Claim, Claim.id == ClaimLine.claim_id)
        )
        if line.status != "rejected" and claim.status in ("submitted", "audited", "paid")
    }
    out: dict[int | None, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for e in session.scalars(select(VoucherLedgerEntry)):
        if not (start <= e.at < end) or e.kind not in ("hold", "redeem", "expire"):
            continue
        booking = bookings.get(e.reservation_id)
        if group_by == "enterprise":
            key = holder_of[e.voucher_id]
        else:
            key = provider_of[booking.resource_id] if booking is not None else None
        figures = out[key]
        if e.kind == "hold":
            figures["held"] -= e.amount
        elif e.kind == "expire":
            figures["expired"] -= e.amount
        else:
            figures["redeemed"] -= e.amount
            figures["bookings"] += 1
            figures["total_fees"] += booking.final_cost or ZERO
            figures["voucher_share"] += booking.voucher_amount or ZERO
            figures["customer_share"] += booking.customer_amount or ZERO
            if e.reservation_id in live:
                line, claim = live[e.reservation_id]
                figures["claimed"] += line.voucher_amount
                if line.status == "approved":
                    figures["approved"] += line.voucher_amount
                    if claim.status == "paid":
                        figures["paid"] += line.voucher_amount
    return {k: {n: v for n, v in f.items() if v} for k, f in out.items()}


def report_of(session, admin, group_by: str) -> dict[int | None, dict[str, Decimal]]:
    result = reports.settlement_report(
        session,
        admin,
        period_from=date(2026, 1, 1),
        period_to=date(2027, 12, 31),
        group_by=group_by,
    )
    out = {}
    for line in result.lines:
        key = int(line.key) if line.key else None
        figures = {
            name: getattr(line, name)
            for name in ("bookings", *reports.rules.SETTLEMENT_AMOUNTS)
            if getattr(line, name)
        }
        out[key] = figures
    assert result.reconciliation.ok, result.reconciliation
    return out


@pytest.mark.slow
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=strategies.lists(operations, min_size=1, max_size=12))
def test_random_sequences_keep_the_facts_equal_to_the_raw_rows(session, time_machine, ops):
    run = Run(session, time_machine)
    admin = actor_of(
        session, create_user(session, create_org(session, "platform"), platform_admin=True)
    )
    for op in ops:
        run.apply(op)
        check_facts(session)
    from booking.domain import reports as rules

    start, end = rules.period_bounds(date(2026, 1, 1), date(2027, 12, 31), run_tz())
    for group_by in ("provider", "enterprise"):
        assert report_of(session, admin, group_by) == expected(session, start, end, group_by)
    session.rollback()


def run_tz():
    from booking.domain import clock

    return clock.platform_tz()


def test_an_entry_written_by_hand_gets_the_facts_too(session, time_machine):
    """The fixtures' ``ledger()`` (not the services' writer) goes through the
    same insert hooks; a later, earlier redemption moves ``redeemed_at``."""
    run = Run(session, time_machine)
    booking = run.booking(0)
    voucher = run.world.voucher
    from tests.factories.vouchers import local

    late = ledger(session, voucher, "redeem", "-10.00", booking=booking, at=local(2026, 3, 20))
    assert late.resource_id == booking.resource_id
    assert (late.issuing_region, late.holder_org_id) == (
        voucher.issuing_region,
        voucher.holder_org_id,
    )
    assert booking.redeemed_at == local(2026, 3, 20)
    assert booking.redeemed_region == voucher.issuing_region
    ledger(session, voucher, "redeem", "-5.00", booking=booking, at=local(2026, 3, 12))
    ledger(session, voucher, "redeem", "-5.00", booking=booking, at=local(2026, 3, 25))
    assert booking.redeemed_at == local(2026, 3, 12)
    hold = ledger(session, voucher, "hold", "-1.00", booking=booking, at=local(2026, 3, 26))
    assert hold.resource_id == booking.resource_id
    check_facts(session)


def test_the_database_refuses_a_booking_entry_without_its_resource(session, time_machine):
    run = Run(session, time_machine)
    booking = run.booking(0)
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(
            insert(VoucherLedgerEntry.__table__).values(
                voucher_id=run.world.voucher.id,
                issuing_region=run.world.voucher.issuing_region,
                holder_org_id=run.world.voucher.holder_org_id,
                kind="hold",
                amount=D("-1.00"),
                reservation_id=booking.id,
                at=booking.start_at,
            )
        )
