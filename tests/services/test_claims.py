"""Claims (兑付): gathering, evidence, cross-region routing, audit per line at
one or two levels, notice and cadence, payment, immutability, and a booking
in at most one live claim (POLICY.md rules 7, 11, 14–19)."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from booking.domain.errors import (
    Forbidden,
    InvalidTransition,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from booking.models.audit import AuditEvent
from booking.models.claims import Claim, ClaimLine, ClaimLineStatus, ClaimStatus
from booking.models.reservations import ReservationStatus
from booking.models.vouchers import LedgerKind, VoucherLedgerEntry
from booking.services import admissions
from booking.services import claims as service
from booking.services import vouchers as voucher_service
from tests.factories.accounts import actor_of, create_org, create_user
from tests.factories.claims import EVIDENCE, confirm_both, evidence_for, paid_booking
from tests.factories.reservations import create_reservation
from tests.factories.vouchers import (
    create_bureau,
    create_enterprise,
    create_policy,
    create_voucher,
    local,
    officer_of,
)

D = Decimal
MARCH = {"period_from": date(2026, 3, 1), "period_to": date(2026, 3, 31)}


@pytest.fixture(autouse=True)
def _march(time_machine):
    time_machine.move_to(local(2026, 3, 2, 10), tick=False)


def day(n: int, hour: int = 9):
    return local(2026, 3, 2 + n, hour)


def refused(rule: str, call, *args, **kwargs) -> RuleViolation:
    with pytest.raises(RuleViolation) as caught:
        call(*args, **kwargs)
    assert caught.value.details["rule"] == rule, caught.value.details
    return caught.value


def file_claim(session, world, *bookings, **data):
    lab = actor_of(session, world.lab_admin)
    claim = service.create_claim(session, lab, {**MARCH, "lines": evidence_for(*bookings), **data})
    return service.submit_claim(session, lab, claim.id)


def lines_of(claim) -> dict[int, ClaimLine]:
    return {line.reservation_id: line for line in claim.lines}


def test_a_claim_gathers_the_periods_completed_unclaimed_voucher_bookings(session, voucher_world):
    world = voucher_world()
    first = paid_booking(session, world, day(1), "400.00")
    second = paid_booking(session, world, day(2), "300.01")
    april = paid_booking(session, world, local(2026, 4, 2, 9), "400.00")
    create_reservation(  # approved, not completed
        session,
        world.resource,
        world.enterprise,
        world.customer,
        day(3),
        voucher_id=world.voucher.id,
    )
    create_reservation(  # completed without a voucher
        session,
        world.resource,
        world.enterprise,
        world.customer,
        day(4),
        status="completed",
        final_cost=D("100.00"),
        voucher_amount=D("0.00"),
        customer_amount=D("100.00"),
    )
    claim = service.create_claim(session, actor_of(session, world.lab_admin), MARCH)
    assert claim.status == ClaimStatus.DRAFT
    assert set(lines_of(claim)) == {first.id, second.id}
    assert april.id not in lines_of(claim)
    assert lines_of(claim)[second.id].voucher_amount == D("150.01")  # 150.005 half-up
    assert claim.claimed_amount == D("350.01")
    assert claim.bureau_id == world.bureau.id
    assert claim.number.startswith("140100-2026-C")
    assert (
        session.scalar(select(AuditEvent.action).where(AuditEvent.target_type == "claims"))
        == "claim.create"
    )


def test_submit_needs_every_piece_of_evidence(session, voucher_world):
    world = voucher_world()
    booking = paid_booking(session, world, day(1), confirm=False)
    lab = actor_of(session, world.lab_admin)
    claim = service.create_claim(session, lab, MARCH)
    line = claim.lines[0]
    problem = refused("claim_incomplete", service.submit_claim, session, lab, claim.id)
    assert set(problem.details["lines"][str(line.id)]) == {
        "invoice_number",
        "payment_proof",
        "usage_record",
        "customer_confirmation",
        "provider_confirmation",
    }
    service.set_line_evidence(session, lab, claim.id, line.id, EVIDENCE)
    service.confirm_order(session, actor_of(session, world.customer), booking.id)
    problem = refused("claim_incomplete", service.submit_claim, session, lab, claim.id)
    assert problem.details["lines"][str(line.id)] == ["provider_confirmation"]
    service.confirm_order(session, lab, booking.id)
    submitted = service.submit_claim(session, lab, claim.id)
    assert submitted.status == ClaimStatus.SUBMITTED and submitted.filed_by_id == world.lab_admin.id
    with pytest.raises(InvalidTransition):
        service.set_line_evidence(session, lab, claim.id, line.id, {"invoice_number": "x"})


def test_audit_per_line_pay_the_approved_sum_and_restore_the_rejected(session, voucher_world):
    world = voucher_world(face_value="1000.00")
    good = paid_booking(session, world, day(1), "400.00")  # 200 redeemed
    bad = paid_booking(session, world, day(2), "200.00")  # 100 redeemed
    claim = file_claim(session, world, good, bad)
    officer = actor_of(session, world.officer)
    by_booking = lines_of(claim)
    service.approve_claim(session, officer, claim.id, [by_booking[good.id].id])
    assert claim.status == ClaimStatus.SUBMITTED
    with pytest.raises(ValidationFailed):
        service.reject_claim(session, officer, claim.id, " ")
    service.reject_claim(
        session, officer, claim.id, "invoice does not match", [by_booking[bad.id].id]
    )
    assert claim.status == ClaimStatus.AUDITED
    assert claim.approved_amount == D("200.00")
    before = voucher_service.totals_of(session, world.voucher.id)
    paid = service.pay_claim(session, officer, claim.id, "TR-2026-0001")
    assert paid.status == ClaimStatus.PAID and paid.paid_amount == D("200.00")
    assert good.status == ReservationStatus.SETTLED
    assert bad.status == ReservationStatus.COMPLETED
    restore = session.scalar(
        select(VoucherLedgerEntry).where(
            VoucherLedgerEntry.claim_id == claim.id, VoucherLedgerEntry.kind == LedgerKind.ADJUST
        )
    )
    assert restore.amount == D("100.00") and restore.reservation_id == bad.id
    after = voucher_service.totals_of(session, world.voucher.id)
    assert after.balance == before.balance + D("100.00")
    # A booking whose money went back is not voucher-paid any more.
    assert voucher_service.redeemed_for(session, bad.id) == 0
    refused(
        "claim_nothing_to_claim",
        service.create_claim,
        session,
        actor_of(session, world.lab_admin),
        MARCH,
    )
    # A paid claim never changes.
    with pytest.raises(InvalidTransition):
        service.approve_claim(session, officer, claim.id)
    with pytest.raises(InvalidTransition):
        service.pay_claim(session, officer, claim.id)
    session.commit()
    claim.payment_reference = "changed"
    with pytest.raises(RuntimeError, match="paid"):
        session.flush()
    session.rollback()
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.target_type.in_(["claims", "claim_lines"]))
    ).all()
    for action in ("claim.create", "claim.submit", "claim.line_approve", "claim.line_reject"):
        assert action in actions
    assert actions[-1] == "claim.paid"


def test_all_lines_rejected_closes_the_claim_and_frees_the_money(session, voucher_world):
    world = voucher_world(face_value="1000.00")
    booking = paid_booking(session, world, day(1), "400.00")
    claim = file_claim(session, world, booking)
    service.reject_claim(session, actor_of(session, world.officer), claim.id, "not eligible")
    assert claim.status == ClaimStatus.REJECTED
    assert voucher_service.totals_of(session, world.voucher.id).balance == D("1000.00")


def cross_region(session, world):
    """A Lüliang enterprise holding a Lüliang voucher, booking the Taiyuan lab."""
    bureau = create_bureau(session, "141100")
    policy = create_policy(session, bureau)
    officer = officer_of(session, bureau)
    firm = create_enterprise(session, "141102")
    customer = create_user(session, firm, "member")
    voucher = create_voucher(session, bureau, firm, "5000.00", officer=officer)
    return dataclasses.replace(
        world,
        bureau=bureau,
        officer=officer,
        policy=policy,
        enterprise=firm,
        customer=customer,
        voucher=voucher,
    )


def test_cross_region_bookings_are_claimed_from_the_issuing_bureau(session, voucher_world):
    taiyuan = voucher_world()
    lvliang = cross_region(session, taiyuan)
    local_booking = paid_booking(session, taiyuan, day(1))
    remote_booking = paid_booking(session, lvliang, day(2))
    lab = actor_of(session, taiyuan.lab_admin)
    problem = refused("claim_one_bureau", service.create_claim, session, lab, MARCH)
    assert {b["bureau_id"] for b in problem.details["bureaus"]} == {
        taiyuan.bureau.id,
        lvliang.bureau.id,
    }
    data = {**MARCH, "bureau_id": lvliang.bureau.id, "lines": evidence_for(remote_booking)}
    claim = service.create_claim(session, lab, data)
    assert set(lines_of(claim)) == {remote_booking.id}
    assert claim.bureau_id == lvliang.bureau.id and claim.bureau_region == "141100"
    service.submit_claim(session, lab, claim.id)
    # Taiyuan's bureau sees the flow that touches its region, but may not audit it.
    taiyuan_officer = actor_of(session, taiyuan.officer)
    assert service.get_claim(session, taiyuan_officer, claim.id).id == claim.id
    with pytest.raises(Forbidden):
        service.approve_claim(session, taiyuan_officer, claim.id)
    changzhi = actor_of(session, officer_of(session, create_bureau(session, "140400")))
    with pytest.raises(NotFound):
        service.get_claim(session, changzhi, claim.id)
    service.approve_claim(session, actor_of(session, lvliang.officer), claim.id)
    assert claim.status == ClaimStatus.AUDITED
    other = file_claim(session, taiyuan, local_booking)
    assert other.bureau_id == taiyuan.bureau.id
    visible, total = service.list_claims(session, taiyuan_officer)
    assert {c.id for c in visible} == {claim.id, other.id} and total == 2
    mine, _ = service.list_claims(session, actor_of(session, lvliang.officer))
    assert [c.id for c in mine] == [claim.id]


def test_a_booking_is_in_at_most_one_live_claim_by_database_constraint(session, voucher_world):
    world = voucher_world()
    booking = paid_booking(session, world, day(1))
    claim = file_claim(session, world, booking)
    session.commit()
    line = claim.lines[0]
    twin = Claim(
        bureau_id=claim.bureau_id,
        bureau_region=claim.bureau_region,
        claimant_org_id=claim.claimant_org_id,
        claimant_kind="provider",
        period_from=date(2026, 3, 1),
        period_to=date(2026, 3, 31),
    )
    copy = {
        name: getattr(line, name)
        for name in (
            "reservation_id",
            "voucher_id",
            "provider_id",
            "provider_region",
            "customer_org_id",
            "completed_at",
            "final_cost",
            "voucher_amount",
            "customer_amount",
        )
    }
    twin.lines.append(ClaimLine(**copy))
    session.add(twin)
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    # Once rejected, the booking may be claimed again (a fresh live line).
    service.reject_claim(session, actor_of(session, world.officer), claim.id, "no invoice")
    twin = session.merge(twin)
    twin.lines[0].status = ClaimLineStatus.PENDING
    session.flush()


def test_a_rejected_line_can_be_filed_again_before_its_claim_closes(session, voucher_world):
    world = voucher_world(face_value="1000.00")
    first = paid_booking(session, world, day(1))
    second = paid_booking(session, world, day(2))
    claim = file_claim(session, world, first, second)
    officer = actor_of(session, world.officer)
    service.reject_claim(
        session, officer, claim.id, "invoice missing", [lines_of(claim)[first.id].id]
    )
    again = file_claim(session, world, first)
    assert set(lines_of(again)) == {first.id}
    service.approve_claim(session, officer, claim.id)
    service.pay_claim(session, officer, claim.id)
    # Still live in the second claim: no money goes back.
    assert lines_of(claim)[first.id].restored_at is None
    assert voucher_service.redeemed_for(session, first.id) == D("200.00")


def test_two_audit_levels_need_two_officers(session, voucher_world):
    world = voucher_world(policy={"audit_levels": ["county", "city"]})
    booking = paid_booking(session, world, day(1))
    claim = file_claim(session, world, booking)
    assert claim.audit_levels == ["county", "city"]
    first = actor_of(session, world.officer)
    service.approve_claim(session, first, claim.id)
    line = claim.lines[0]
    assert (line.status, line.levels_passed) == (ClaimLineStatus.PENDING, 1)
    refused("audit_separation", service.approve_claim, session, first, claim.id)
    second = actor_of(session, officer_of(session, world.bureau))
    service.approve_claim(session, second, claim.id)
    assert line.status == ClaimLineStatus.APPROVED
    assert [d.level_name for d in line.decisions] == ["county", "city"]
    assert claim.status == ClaimStatus.AUDITED


def test_notice_days_and_monthly_payment(session, voucher_world, time_machine):
    world = voucher_world(policy={"notice_days": 5, "payment_cadence": "monthly"})
    booking = paid_booking(session, world, day(1))
    claim = file_claim(session, world, booking)
    officer = actor_of(session, world.officer)
    service.approve_claim(session, officer, claim.id)
    assert claim.notice_until == local(2026, 3, 8)  # 3–7 March in notice
    assert claim.payable_from == local(2026, 4, 1)
    refused("payment_not_due", service.pay_claim, session, officer, claim.id)
    time_machine.move_to(local(2026, 3, 31, 23, 59), tick=False)
    refused("payment_not_due", service.pay_claim, session, officer, claim.id)
    time_machine.move_to(local(2026, 4, 1, 8), tick=False)
    assert service.pay_claim(session, officer, claim.id).status == ClaimStatus.PAID


def test_claim_window(session, voucher_world, time_machine):
    world = voucher_world(policy={"claim_window_days": 30})
    booking = paid_booking(session, world, day(1))  # ends 3 March 11:00
    lab = actor_of(session, world.lab_admin)
    claim = service.create_claim(session, lab, {**MARCH, "lines": evidence_for(booking)})
    time_machine.move_to(local(2026, 4, 2, 11, 1), tick=False)
    problem = refused("claim_incomplete", service.submit_claim, session, lab, claim.id)
    assert problem.details["lines"][str(claim.lines[0].id)] == ["claim_window"]
    service.withdraw_claim(session, lab, claim.id)
    problem = refused("claim_nothing_to_claim", service.create_claim, session, lab, MARCH)
    assert problem.details["skipped"] == [{"reservation_id": booking.id, "rule": "claim_window"}]


def test_the_policy_decides_who_claims(session, voucher_world):
    world = voucher_world(policy={"claimant": "enterprise"})
    booking = paid_booking(session, world, day(1))
    lab = actor_of(session, world.lab_admin)
    problem = refused("claim_nothing_to_claim", service.create_claim, session, lab, MARCH)
    assert problem.details["skipped"] == [{"reservation_id": booking.id, "rule": "claimant"}]
    firm = actor_of(session, world.customer)
    claim = service.create_claim(session, firm, {**MARCH, "lines": evidence_for(booking)})
    assert claim.claimant_kind == "enterprise"
    assert service.submit_claim(session, firm, claim.id).status == ClaimStatus.SUBMITTED


def test_related_party_is_checked_again_at_claim(session, voucher_world):
    world = voucher_world()
    booking = paid_booking(session, world, day(1))
    admissions.declare_related_party(
        session,
        actor_of(session, world.lab_admin),
        world.provider.id,
        {"related_org_id": world.enterprise.id, "relation": "legal_representative"},
    )
    problem = refused(
        "claim_nothing_to_claim",
        service.create_claim,
        session,
        actor_of(session, world.lab_admin),
        MARCH,
    )
    assert problem.details["skipped"] == [{"reservation_id": booking.id, "rule": "related_party"}]


def test_suspension_blocks_new_voucher_bookings_not_claims_for_work_done(session, voucher_world):
    world = voucher_world()
    done = paid_booking(session, world, day(1))
    platform = create_user(session, create_org(session, "platform"), "admin", platform_admin=True)
    admission = admissions.current_admission(session, world.provider.id)
    admissions.suspend_provider(session, actor_of(session, platform), admission.id, "complaint")
    new = create_reservation(
        session, world.resource, world.enterprise, world.customer, day(5), status="requested"
    )
    refused(
        "provider_suspended",
        voucher_service.quote_for_booking,
        session,
        actor_of(session, world.customer),
        world.voucher.id,
        new,
    )
    claim = file_claim(session, world, done)
    service.approve_claim(session, actor_of(session, world.officer), claim.id)
    assert service.pay_claim(session, actor_of(session, world.officer), claim.id).paid_amount


def test_withdrawing_a_draft_frees_its_bookings(session, voucher_world):
    world = voucher_world()
    booking = paid_booking(session, world, day(1))
    lab = actor_of(session, world.lab_admin)
    draft = service.create_claim(session, lab, MARCH)
    service.withdraw_claim(session, lab, draft.id)
    assert draft.status == ClaimStatus.WITHDRAWN and draft.lines == []
    again = service.create_claim(session, lab, MARCH)
    assert set(lines_of(again)) == {booking.id}


def test_only_the_claimant_and_bureaus_see_a_claim(session, voucher_world):
    world = voucher_world()
    booking = paid_booking(session, world, day(1))
    claim = file_claim(session, world, booking)
    stranger = actor_of(session, create_user(session, create_org(session, "provider"), "admin"))
    with pytest.raises(NotFound):
        service.get_claim(session, stranger, claim.id)
    with pytest.raises(NotFound):
        service.approve_claim(session, stranger, claim.id)
    with pytest.raises(Forbidden):
        service.approve_claim(session, actor_of(session, world.lab_admin), claim.id)
    confirm_both(session, world, booking)  # idempotent: a second confirmation changes nothing


def test_period_dates_reversed(session, voucher_world):
    world = voucher_world()
    refused(
        "period_order",
        service.create_claim,
        session,
        actor_of(session, world.lab_admin),
        {"period_from": date(2026, 3, 31), "period_to": date(2026, 3, 1)},
    )


def test_tiered_formula_from_policy_to_redemption(session, voucher_world):
    world = voucher_world(
        face_value="5000.00",
        policy={
            "formula": "tiered",
            "tier1_limit": D("1000.00"),
            "tier1_rate": D("0.50"),
            "tier2_rate": D("0.30"),
        },
    )
    assert str(world.voucher.formula) == "tiered"
    booking = paid_booking(session, world, day(1), "3000.00")
    # 1000 × 0.50 + 2000 × 0.30 = 1100.00
    assert (booking.voucher_amount, booking.customer_amount) == (D("1100.00"), D("1900.00"))
