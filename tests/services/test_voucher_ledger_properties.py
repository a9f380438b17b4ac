"""Property-based: random sequences of issue, hold, release, redeem, adjust
and expire keep every voucher's figures equal to its ledger's sums, and
never below zero (POLICY.md rules 3, 8, 12, 13)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from booking.domain import vouchers as rules
from booking.domain.errors import RuleViolation
from booking.models.reservations import Reservation, ReservationStatus
from booking.models.vouchers import Voucher, VoucherLedgerEntry
from booking.services import vouchers as service
from tests.factories.accounts import actor_of
from tests.factories.reservations import create_reservation
from tests.factories.vouchers import build_voucher_world, create_voucher, local

D = Decimal
NOW = local(2026, 3, 2, 10)
money = st.decimals(min_value=D("0.01"), max_value=D("3000.00"), places=2)
booking_index = st.integers(min_value=0, max_value=2)

operations = st.one_of(
    st.tuples(st.just("hold"), booking_index, money),
    st.tuples(st.just("release"), booking_index),
    st.tuples(st.just("redeem"), booking_index, money),
    st.tuples(
        st.just("adjust"),
        st.decimals(min_value=D("-2000.00"), max_value=D("2000.00"), places=2).filter(bool),
    ),
    st.tuples(
        st.just("issue"), st.decimals(min_value=D("1.00"), max_value=D("90000.00"), places=2)
    ),
    st.tuples(st.just("expire")),
)


class Run:
    """One example: a world, three bookings on its voucher, the clock."""

    def __init__(self, session, time_machine):
        time_machine.move_to(NOW, tick=False)
        self.session = session
        self.time_machine = time_machine
        self.world = build_voucher_world(
            session, face_value="5000.00", voucher={"order_cap": "1500.00"}
        )
        self.lab = actor_of(session, self.world.lab_admin)
        self.officer = actor_of(session, self.world.officer)
        self.bookings: dict[int, Reservation] = {}

    def booking(self, index: int) -> Reservation:
        if index not in self.bookings:
            start = local(2026, 3, 10, 9) + timedelta(days=index)
            self.bookings[index] = create_reservation(
                self.session,
                self.world.resource,
                self.world.enterprise,
                self.world.customer,
                start,
                status="approved",
                voucher_id=self.world.voucher.id,
            )
        return self.bookings[index]

    def apply(self, op) -> None:
        name, *args = op
        written = self.entries()
        try:
            getattr(self, f"do_{name}")(*args)
        except RuleViolation as refused:
            # Refusals are allowed; they must name a rule and write nothing.
            assert refused.details["rule"] in {
                "voucher_balance",
                "voucher_expired",
                "annual_cap",
                "holder_tech_sme",  # a new year needs a new registration
                "voucher_not_active",
            }, refused.details
            assert self.entries() == written

    def entries(self) -> int:
        return len(self.session.scalars(select(VoucherLedgerEntry.id)).all())

    def do_hold(self, index, estimate):
        booking = self.booking(index)
        if booking.status != ReservationStatus.APPROVED:
            return
        booking.estimated_cost = estimate
        service.hold_for_booking(self.session, self.lab, booking)

    def do_release(self, index):
        service.release_for_booking(self.session, self.lab, self.booking(index), "cancelled")

    def do_redeem(self, index, cost):
        booking = self.booking(index)
        if booking.status != ReservationStatus.APPROVED:
            return
        booking.status = ReservationStatus.COMPLETED
        booking.final_cost = cost
        share = service.redeem_for_booking(self.session, self.lab, booking)
        assert share + booking.customer_amount == cost
        if cost > 0:
            assert booking.customer_amount >= D("0.01")  # ratio 0.50 < 1
        assert share <= D("1500.00")

    def do_adjust(self, amount):
        service.adjust_voucher(self.session, self.officer, self.world.voucher.id, amount, "fix")

    def do_issue(self, face):
        create_voucher(
            self.session,
            self.world.bureau,
            self.world.enterprise,
            f"{face:.2f}",
            officer=self.world.officer,
        )

    def do_expire(self):
        self.time_machine.move_to(local(2027, 1, 1, 0, 1), tick=False)
        from booking.domain import clock

        service.expire_due_vouchers(self.session, clock.now())

    def check(self) -> None:
        session = self.session
        vouchers = session.scalars(
            select(Voucher).where(Voucher.holder_org_id == self.world.enterprise.id)
        ).all()
        sums = service.totals_for(session, [v.id for v in vouchers])
        for voucher in vouchers:
            entries = session.execute(
                select(VoucherLedgerEntry.kind, VoucherLedgerEntry.amount).where(
                    VoucherLedgerEntry.voucher_id == voucher.id
                )
            ).all()
            folded = rules.totals_of((str(kind), amount) for kind, amount in entries)
            totals = sums[voucher.id]
            assert totals == folded
            assert totals.balance >= 0 and totals.held >= 0 and totals.available >= 0
            assert totals.face_value == voucher.face_value
            assert (
                totals.face_value + totals.adjusted
                == totals.balance + totals.redeemed + totals.expired + totals.revoked
            )
        main = sums[self.world.voucher.id]
        bookings = list(self.bookings.values())
        assert main.held == sum((b.voucher_hold for b in bookings), D("0"))
        assert main.redeemed == sum((b.voucher_amount or D("0") for b in bookings), D("0"))
        issued = sum((v.face_value for v in vouchers), D("0"))
        assert issued <= self.world.policy.annual_cap_per_enterprise


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operations, min_size=1, max_size=14))
def test_random_sequences_keep_balance_equal_to_the_ledger(session, time_machine, ops):
    run = Run(session, time_machine)
    run.check()
    for op in ops:
        run.apply(op)
        session.flush()
        run.check()
    session.rollback()
