"""Redemption claims (兑付申请) and order confirmations (服务确认单).

A claimant (the provider by default, or the enterprise where the bureau's
policy says so, rule 14) gathers its completed, unclaimed voucher-paid
bookings of a period into a claim addressed to the bureau that issued their
vouchers (one bureau per claim, so a cross-region booking goes to the
voucher's issuer, rule 15), adds the evidence each line needs and files it
within the claim window (rule 16). The bureau audits line by line, at one or
two levels (rule 17), and marks the claim paid when its notice period and
payment cadence allow (rules 17, 18). A paid claim never changes.

When a claim closes (paid, or every line rejected), the money of its rejected
lines goes back to their vouchers as ``adjust`` entries naming the claim and
the booking, unless the booking is in another live claim: public money that
was not paid out is not lost from the voucher.

Life of a claim::

    draft ──submit──► submitted ──(every line decided)──► audited ──pay──► paid
      │                    └──(every line rejected)──► rejected
      └──withdraw──► withdrawn
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from booking import authz
from booking.authz import Actor
from booking.domain import clock
from booking.domain import vouchers as rules
from booking.domain.errors import (
    N_,
    Conflict,
    InvalidTransition,
    NotFound,
    RuleViolation,
    Unauthorized,
    ValidationFailed,
)
from booking.domain.money import ZERO
from booking.models.accounts import Organization, OrgKind
from booking.models.catalog import Resource
from booking.models.claims import (
    AuditDecision,
    Claim,
    ClaimLine,
    ClaimLineDecision,
    ClaimLineStatus,
    ClaimStatus,
    OrderConfirmation,
)
from booking.models.reservations import Reservation, ReservationStatus
from booking.models.vouchers import Voucher
from booking.services import admissions, audit, events
from booking.services import vouchers as voucher_service

DEFAULT_LEVEL = "bureau"


# --- order confirmations (服务确认单) -------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(clock.platform_tz()).isoformat() if value else None


def _org_part(org: Organization) -> dict:
    return {
        "id": org.id,
        "name": org.name,
        "name_en": org.name_en,
        "uscc": org.uscc,
        "region": org.region,
    }


def confirmation_content(session: Session, reservation: Reservation, voucher: Voucher) -> dict:
    """What the confirmation says: parties, resource, times, quantities,
    price, and who pays what."""
    resource = session.get(Resource, reservation.resource_id)
    customer = session.get(Organization, reservation.customer_org_id)
    provider = session.get(Organization, resource.provider_id)
    bureau = session.get(Organization, voucher.bureau_id)
    return {
        "reservation_id": reservation.id,
        "customer": _org_part(customer),
        "provider": _org_part(provider),
        "resource": {
            "id": resource.id,
            "name_zh": resource.name_zh,
            "name_en": resource.name_en,
            "kind": str(resource.kind),
            "service_category": str(resource.service_category),
            "location": resource.location,
            "model": resource.model,
        },
        "start": _iso(reservation.start_at),
        "end": _iso(reservation.end_at),
        "actual_start": _iso(reservation.actual_start),
        "actual_end": _iso(reservation.actual_end),
        "units": reservation.units,
        "actual_units": reservation.actual_units,
        "samples": reservation.samples,
        "service_way": str(reservation.service_way) if reservation.service_way else None,
        "price": reservation.price_snapshot or {},
        "final_cost": f"{reservation.final_cost:.2f}",
        "voucher_amount": f"{reservation.voucher_amount:.2f}",
        "customer_amount": f"{reservation.customer_amount:.2f}",
        "voucher": {
            "id": voucher.id,
            "number": voucher.number,
            "bureau_id": voucher.bureau_id,
            "bureau_name": bureau.name,
            "issuing_region": voucher.issuing_region,
            "coverage_ratio": f"{voucher.coverage_ratio.normalize():f}",
        },
    }


def make_order_confirmation(
    session: Session, actor: Actor | None, reservation: Reservation, voucher: Voucher
) -> OrderConfirmation:
    """Made once, at completion of a voucher-paid booking; idempotent."""
    existing = session.scalar(
        select(OrderConfirmation).where(OrderConfirmation.reservation_id == reservation.id)
    )
    if existing is not None:
        return existing
    content = confirmation_content(session, reservation, voucher)
    now = clock.now()
    local_day = now.astimezone(clock.platform_tz()).date()
    content["number"] = f"FW{local_day:%Y%m%d}-{reservation.id:06d}"
    content["issued_at"] = _iso(now)
    digest = hashlib.sha256(
        json.dumps(content, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()
    confirmation = OrderConfirmation(
        reservation_id=reservation.id,
        number=content["number"],
        content=content,
        content_hash=digest,
        created_at=now,
    )
    session.add(confirmation)
    session.flush()
    audit.record(session, actor, "confirmation.create", confirmation)
    return confirmation


def get_confirmation(session: Session, actor: Actor, reservation_id: int) -> OrderConfirmation:
    confirmation = session.scalar(
        select(OrderConfirmation).where(OrderConfirmation.reservation_id == reservation_id)
    )
    if confirmation is None or not authz.can(actor, "confirmation.view", confirmation):
        if confirmation is not None and not actor.authenticated:
            authz.require(actor, "confirmation.view", confirmation)
        raise NotFound()
    return confirmation


def confirm_order(
    session: Session, actor: Actor, reservation_id: int, side: str | None = None
) -> OrderConfirmation:
    """The customer or the lab confirms the service online (each once)."""
    confirmation = get_confirmation(session, actor, reservation_id)
    if side is None:
        if authz.can(actor, "confirmation.confirm_customer", confirmation):
            side = "customer"
        else:
            side = "provider"
    if side not in ("customer", "provider"):
        raise ValidationFailed({"side": N_("Confirm as customer or as provider.")})
    authz.require(actor, f"confirmation.confirm_{side}", confirmation)
    at_field, by_field = f"{side}_confirmed_at", f"{side}_confirmed_by_id"
    if getattr(confirmation, at_field) is None:
        setattr(confirmation, at_field, clock.now())
        setattr(confirmation, by_field, actor.user_id)
        session.flush()
        audit.record(
            session,
            actor,
            f"confirmation.confirm_{side}",
            confirmation,
            after={"side": side, "content_hash": confirmation.content_hash},
        )
    return confirmation


# --- gathering a claim ----------------------------------------------------------------------


def _completed_at():
    return func.coalesce(Reservation.actual_end, Reservation.end_at)


def _claimant(session: Session, actor: Actor, claimant_org_id: int | None) -> Organization:
    if claimant_org_id is None:
        labs = actor.org_ids("provider", "admin")
        enterprises = actor.org_ids("enterprise")
        candidates = labs or enterprises
        if not actor.authenticated:
            raise Unauthorized()
        if len(candidates) != 1:
            raise ValidationFailed({"claimant_org_id": N_("Name the organisation that claims.")})
        claimant_org_id = next(iter(candidates))
    claimant = session.get(Organization, claimant_org_id)
    if claimant is None:
        raise NotFound(details={"field": "claimant_org_id"})
    authz.require(actor, "claim.create", claimant)
    return claimant


def _period_bounds(period_from: date, period_to: date) -> tuple[datetime, datetime]:
    if period_to < period_from:
        raise RuleViolation(
            "period_order",
            N_("The period ends before it starts."),
            field="period_to",
        )
    tz = clock.platform_tz()
    return (
        rules.start_of_local_day(period_from, tz),
        rules.start_of_local_day(period_to + timedelta(days=1), tz),
    )


def _live_line_exists(reservation_id_column):
    return exists().where(
        ClaimLine.reservation_id == reservation_id_column,
        ClaimLine.status != ClaimLineStatus.REJECTED,
    )


def candidate_bookings(
    session: Session, claimant: Organization, period_from: date, period_to: date
) -> list[tuple[Reservation, Voucher, Resource]]:
    """Completed voucher-paid bookings of the claimant completed in the period
    and in no live claim."""
    start, end = _period_bounds(period_from, period_to)
    query = (
        select(Reservation, Voucher, Resource)
        .join(Voucher, Voucher.id == Reservation.voucher_id)
        .join(Resource, Resource.id == Reservation.resource_id)
        .where(
            Reservation.status == ReservationStatus.COMPLETED,
            Reservation.voucher_amount > 0,
            _completed_at() >= start,
            _completed_at() < end,
            ~_live_line_exists(Reservation.id),
        )
        .order_by(_completed_at(), Reservation.id)
    )
    if claimant.kind == OrgKind.PROVIDER:
        query = query.where(Resource.provider_id == claimant.id)
    else:
        query = query.where(Reservation.customer_org_id == claimant.id)
    return [tuple(row) for row in session.execute(query)]


def _deadline(voucher: Voucher, completed_at: datetime) -> datetime:
    return rules.claim_deadline(completed_at, voucher.valid_until, voucher.policy.claim_window_days)


def _line_problem(
    session: Session, claimant: Organization, reservation, voucher, resource, now
) -> str | None:
    """Why a booking cannot be claimed by this claimant now, or None."""
    if voucher_service.redeemed_for(session, reservation.id) <= ZERO:
        return "not_voucher_paid"
    today = now.astimezone(clock.platform_tz()).date()
    policy = voucher_service.policy_in_effect(session, voucher.bureau_id, today) or voucher.policy
    if str(policy.claimant) != str(claimant.kind):
        return "claimant"
    completed_at = reservation.actual_end or reservation.end_at
    if now > _deadline(voucher, completed_at):
        return "claim_window"
    customer = session.get(Organization, reservation.customer_org_id)
    provider = session.get(Organization, resource.provider_id)
    try:
        admissions.check_not_related(session, customer, provider)
    except RuleViolation:
        return "related_party"
    return None


def create_claim(session: Session, actor: Actor, data: dict) -> Claim:
    """A draft claim over the claimant's completed, unclaimed voucher-paid
    bookings of ``period_from``..``period_to`` (local dates, by completion),
    for one issuing bureau: ``bureau_id``, or the only one the bookings
    route to. Bookings that cannot be claimed are listed in
    ``claim.skipped`` with the rule that stops them."""
    claimant = _claimant(session, actor, data.get("claimant_org_id"))
    now = clock.now()
    candidates = candidate_bookings(session, claimant, data["period_from"], data["period_to"])
    by_bureau: dict[int, list] = {}
    skipped = []
    for reservation, voucher, resource in candidates:
        problem = _line_problem(session, claimant, reservation, voucher, resource, now)
        if problem:
            skipped.append({"reservation_id": reservation.id, "rule": problem})
            continue
        by_bureau.setdefault(voucher.bureau_id, []).append((reservation, voucher, resource))
    bureau_id = data.get("bureau_id")
    if bureau_id is None and len(by_bureau) > 1:
        raise RuleViolation(
            "claim_one_bureau",
            N_(
                "The bookings of this period were paid with vouchers of several bureaus; "
                "file one claim per bureau (name bureau_id)."
            ),
            field="bureau_id",
            details={
                "policy_rule": 15,
                "bureaus": [
                    {"bureau_id": b, "lines": len(items)} for b, items in sorted(by_bureau.items())
                ],
            },
        )
    if bureau_id is None and by_bureau:
        bureau_id = next(iter(by_bureau))
    chosen = by_bureau.get(bureau_id, [])
    if not chosen:
        raise RuleViolation(
            "claim_nothing_to_claim",
            N_("No completed, unclaimed voucher-paid booking in this period can be claimed."),
            field="period_from",
            details={"skipped": skipped},
        )
    bureau = session.get(Organization, bureau_id)
    evidence = {item["reservation_id"]: item for item in data.get("lines") or []}
    claim = Claim(
        bureau_id=bureau.id,
        bureau_region=bureau.region,
        claimant_org_id=claimant.id,
        claimant_kind=str(claimant.kind),
        period_from=data["period_from"],
        period_to=data["period_to"],
        status=ClaimStatus.DRAFT,
        created_by_id=actor.user_id,
    )
    for reservation, voucher, resource in chosen:
        claim.lines.append(_new_line(session, reservation, voucher, resource, evidence))
    claim.claimed_amount = sum((line.voucher_amount for line in claim.lines), ZERO)
    session.add(claim)
    _flush_lines(session)
    claim.number = f"{bureau.region}-{now.astimezone(clock.platform_tz()).year}-C{claim.id:06d}"
    session.flush()
    audit.record(session, actor, "claim.create", claim)
    claim.skipped = skipped
    return claim


def _new_line(session, reservation, voucher, resource, evidence) -> ClaimLine:
    given = evidence.get(reservation.id) or {}
    amount = voucher_service.redeemed_for(session, reservation.id)
    provider = session.get(Organization, resource.provider_id)
    return ClaimLine(
        reservation_id=reservation.id,
        voucher_id=voucher.id,
        provider_id=provider.id,
        provider_region=provider.region,
        customer_org_id=reservation.customer_org_id,
        status=ClaimLineStatus.PENDING,
        completed_at=reservation.actual_end or reservation.end_at,
        actual_start=reservation.actual_start,
        actual_end=reservation.actual_end,
        actual_units=reservation.actual_units,
        final_cost=reservation.final_cost,
        voucher_amount=amount,
        customer_amount=reservation.final_cost - amount,
        invoice_number=_clean(given.get("invoice_number")),
        payment_proof=_clean(given.get("payment_proof")),
        usage_record=_clean(given.get("usage_record")),
    )


def _flush_lines(session: Session) -> None:
    """Flush in a savepoint: a booking another claim took in the meantime
    (the unique index on live lines) becomes a 409, not a broken session."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(
            N_("A booking of this claim was claimed by another claim in the meantime."),
            details={"policy_rule": 11},
        ) from None


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


# --- changing a draft -------------------------------------------------------------------------


def _lock_claim(session: Session, claim_id: int) -> Claim | None:
    return session.scalar(
        select(Claim)
        .where(Claim.id == claim_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _claim_for(session: Session, actor: Actor, claim_id: int, action: str) -> Claim:
    claim = _lock_claim(session, claim_id)
    if claim is None:
        raise NotFound()
    authz.require(actor, action, claim)
    return claim


def _require_status(claim: Claim, *statuses: ClaimStatus) -> None:
    if claim.status not in statuses:
        raise InvalidTransition(
            N_("This is not possible in the claim's current state."),
            details={"status": str(claim.status)},
        )


def _line_of(claim: Claim, line_id: int) -> ClaimLine:
    for line in claim.lines:
        if line.id == line_id:
            return line
    raise NotFound(details={"field": "line_id"})


def set_line_evidence(
    session: Session, actor: Actor, claim_id: int, line_id: int, data: dict
) -> ClaimLine:
    claim = _claim_for(session, actor, claim_id, "claim.edit")
    _require_status(claim, ClaimStatus.DRAFT)
    line = _line_of(claim, line_id)
    before = audit.snapshot(line, ["invoice_number", "payment_proof", "usage_record"])
    for name in ("invoice_number", "payment_proof", "usage_record"):
        if name in data:
            setattr(line, name, _clean(data[name]))
    session.flush()
    audit.record(session, actor, "claim.evidence", line, before=before)
    return line


def remove_line(session: Session, actor: Actor, claim_id: int, line_id: int) -> Claim:
    claim = _claim_for(session, actor, claim_id, "claim.edit")
    _require_status(claim, ClaimStatus.DRAFT)
    line = _line_of(claim, line_id)
    audit.record(session, actor, "claim.remove_line", line, before=audit.snapshot(line), after={})
    claim.lines.remove(line)
    claim.claimed_amount = sum((item.voucher_amount for item in claim.lines), ZERO)
    session.flush()
    return claim


def withdraw_claim(session: Session, actor: Actor, claim_id: int) -> Claim:
    """Drop a draft; its bookings can be claimed again."""
    claim = _claim_for(session, actor, claim_id, "claim.edit")
    _require_status(claim, ClaimStatus.DRAFT)
    before = audit.snapshot(claim)
    claim.lines.clear()
    claim.status = ClaimStatus.WITHDRAWN
    session.flush()
    audit.record(session, actor, "claim.withdraw", claim, before=before)
    return claim


def _missing_evidence(session: Session, line: ClaimLine, now: datetime) -> list[str]:
    """Rule 14 (and 7, 16 again): what keeps a line from being filed."""
    missing = []
    if not line.invoice_number:
        missing.append("invoice_number")
    if line.customer_amount > ZERO and not line.payment_proof:
        missing.append("payment_proof")
    if not line.usage_record:
        missing.append("usage_record")
    if line.actual_end is None and line.actual_units is None:
        missing.append("actual_usage")
    confirmation = session.scalar(
        select(OrderConfirmation).where(OrderConfirmation.reservation_id == line.reservation_id)
    )
    if confirmation is None or confirmation.customer_confirmed_at is None:
        missing.append("customer_confirmation")
    if confirmation is None or confirmation.provider_confirmed_at is None:
        missing.append("provider_confirmation")
    voucher = session.get(Voucher, line.voucher_id)
    if now > _deadline(voucher, line.completed_at):
        missing.append("claim_window")
    customer = session.get(Organization, line.customer_org_id)
    provider = session.get(Organization, line.provider_id)
    try:
        admissions.check_not_related(session, customer, provider)
    except RuleViolation:
        missing.append("related_party")
    return missing


def submit_claim(session: Session, actor: Actor, claim_id: int) -> Claim:
    """File the claim with the bureau: every line complete (rule 14), within
    its window (16), no related party (7), claimant as the policy says (14).
    The bureau's audit levels, notice days and payment cadence in effect today
    are copied onto the claim."""
    claim = _claim_for(session, actor, claim_id, "claim.edit")
    _require_status(claim, ClaimStatus.DRAFT)
    if not claim.lines:
        raise RuleViolation("claim_empty", N_("The claim has no lines."))
    now = clock.now()
    today = now.astimezone(clock.platform_tz()).date()
    bureau = session.get(Organization, claim.bureau_id)
    policy = voucher_service.require_policy(session, bureau, today)
    if str(policy.claimant) != claim.claimant_kind:
        raise RuleViolation(
            "claimant",
            N_("Under this bureau's policy the enterprise files claims.")
            if str(policy.claimant) == "enterprise"
            else N_("Under this bureau's policy the provider files claims."),
            details={"policy_rule": 14, "claimant": str(policy.claimant)},
        )
    problems = {
        str(line.id): missing
        for line in claim.lines
        if (missing := _missing_evidence(session, line, now))
    }
    if problems:
        raise RuleViolation(
            "claim_incomplete",
            N_("Some lines lack evidence or can no longer be claimed; see the lines."),
            details={"policy_rule": 14, "lines": problems},
        )
    before = audit.snapshot(claim)
    claim.status = ClaimStatus.SUBMITTED
    claim.filed_at = now
    claim.filed_by_id = actor.user_id
    claim.audit_levels = list(policy.audit_levels or [])
    claim.notice_days = policy.notice_days
    claim.payment_cadence = str(policy.payment_cadence)
    session.flush()
    audit.record(session, actor, "claim.submit", claim, before=before)
    return claim


# --- audit ----------------------------------------------------------------------------------


def _levels(claim: Claim) -> list[str]:
    return list(claim.audit_levels or []) or [DEFAULT_LEVEL]


def _chosen_lines(claim: Claim, line_ids: list[int] | None) -> list[ClaimLine]:
    pending = [line for line in claim.lines if line.status == ClaimLineStatus.PENDING]
    if not line_ids:
        if not pending:
            raise InvalidTransition(N_("No line of this claim is waiting for a decision."))
        return pending
    chosen = []
    for line_id in dict.fromkeys(line_ids):
        line = _line_of(claim, line_id)
        if line.status != ClaimLineStatus.PENDING:
            raise InvalidTransition(
                N_("Line %(line)s has been decided already."),
                details={"line_id": line_id},
                line=line_id,
            )
        chosen.append(line)
    return chosen


def _decide(
    session: Session,
    actor: Actor,
    claim: Claim,
    line: ClaimLine,
    decision: AuditDecision,
    reason: str | None,
    now: datetime,
) -> None:
    levels = _levels(claim)
    index = line.levels_passed
    if any(d.user_id == actor.user_id for d in line.decisions):
        raise RuleViolation(
            "audit_separation",
            N_("Another officer must audit the next level of line %(line)s."),
            details={"policy_rule": 17, "line_id": line.id},
            line=line.id,
        )
    line.decisions.append(
        ClaimLineDecision(
            level_index=index,
            level_name=levels[index],
            decision=decision,
            reason=reason,
            user_id=actor.user_id,
            at=now,
        )
    )
    before = {"status": str(line.status), "levels_passed": line.levels_passed}
    if decision == AuditDecision.REJECT:
        line.status = ClaimLineStatus.REJECTED
        line.reason = reason
        line.decided_at = now
    else:
        line.levels_passed = index + 1
        if line.levels_passed >= len(levels):
            line.status = ClaimLineStatus.APPROVED
            line.decided_at = now
    session.flush()
    audit.record(
        session,
        actor,
        f"claim.line_{decision.value}",
        line,
        before=before,
        after={
            "status": str(line.status),
            "levels_passed": line.levels_passed,
            "level": levels[index],
            "reason": reason,
        },
    )


def approve_claim(
    session: Session, actor: Actor, claim_id: int, line_ids: list[int] | None = None
) -> Claim:
    """Approve lines (all pending ones when none are named) at their next
    audit level."""
    claim = _claim_for(session, actor, claim_id, "claim.audit")
    _require_status(claim, ClaimStatus.SUBMITTED)
    now = clock.now()
    for line in _chosen_lines(claim, line_ids):
        _decide(session, actor, claim, line, AuditDecision.APPROVE, None, now)
    _finish_audit(session, actor, claim, now)
    return claim


def reject_claim(
    session: Session,
    actor: Actor,
    claim_id: int,
    reason: str,
    line_ids: list[int] | None = None,
) -> Claim:
    """Reject lines (all pending ones when none are named), with a reason."""
    claim = _claim_for(session, actor, claim_id, "claim.audit")
    _require_status(claim, ClaimStatus.SUBMITTED)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed({"reason": N_("Give the reason for the rejection.")})
    now = clock.now()
    for line in _chosen_lines(claim, line_ids):
        _decide(session, actor, claim, line, AuditDecision.REJECT, reason, now)
    _finish_audit(session, actor, claim, now)
    return claim


def _finish_audit(session: Session, actor: Actor, claim: Claim, now: datetime) -> None:
    if any(line.status == ClaimLineStatus.PENDING for line in claim.lines):
        return
    before = audit.snapshot(claim)
    approved = [line for line in claim.lines if line.status == ClaimLineStatus.APPROVED]
    claim.approved_amount = sum((line.voucher_amount for line in approved), ZERO)
    claim.audited_at = now
    if not approved:
        claim.status = ClaimStatus.REJECTED
        _restore_rejected(session, actor, claim, now)
    else:
        claim.status = ClaimStatus.AUDITED
        claim.notice_until, claim.payable_from = payment_dates(
            now, claim.notice_days, claim.payment_cadence
        )
    session.flush()
    audit.record(session, actor, "claim.audited", claim, before=before)
    events.publish(session, "claim.audited", claim, actor=actor)


def payment_dates(audited_at: datetime, notice_days: int, cadence: str):
    """Rules 17, 18: the public notice runs ``notice_days`` whole local days
    after the audit day; payment is due at its end (``per_claim``) or on the
    first day of the following month (``monthly``)."""
    tz = clock.platform_tz()
    audited_day = audited_at.astimezone(tz).date()
    if notice_days > 0:
        notice_until = rules.start_of_local_day(audited_day + timedelta(days=notice_days + 1), tz)
    else:
        notice_until = audited_at
    payable_from = notice_until
    if cadence == "monthly":
        day = notice_until.astimezone(tz).date()
        first_next = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        payable_from = rules.start_of_local_day(first_next, tz)
    return notice_until, payable_from


def pay_claim(
    session: Session, actor: Actor, claim_id: int, payment_reference: str | None = None
) -> Claim:
    """Mark an audited claim paid: the paid amount is the sum of the approved
    lines; their bookings become ``settled``; the claim is final."""
    claim = _claim_for(session, actor, claim_id, "claim.pay")
    _require_status(claim, ClaimStatus.AUDITED)
    now = clock.now()
    if claim.payable_from and now < claim.payable_from:
        raise RuleViolation(
            "payment_not_due",
            N_("This claim can be paid from %(day)s (public notice and payment cadence)."),
            details={"policy_rule": 18, "payable_from": _iso(claim.payable_from)},
            day=_iso(claim.payable_from),
        )
    before = audit.snapshot(claim)
    approved = [line for line in claim.lines if line.status == ClaimLineStatus.APPROVED]
    claim.paid_amount = sum((line.voucher_amount for line in approved), ZERO)
    claim.paid_at = now
    claim.paid_by_id = actor.user_id
    claim.payment_reference = _clean(payment_reference)
    from booking.services import reservations

    for line in approved:
        reservation = session.get(Reservation, line.reservation_id)
        if reservation.status == ReservationStatus.COMPLETED:
            reservations.settle(session, actor, reservation)
    _restore_rejected(session, actor, claim, now)
    claim.status = ClaimStatus.PAID
    session.flush()
    audit.record(session, actor, "claim.paid", claim, before=before)
    events.publish(session, "claim.paid", claim, actor=actor)
    return claim


def _restore_rejected(session: Session, actor: Actor, claim: Claim, now: datetime) -> None:
    for line in claim.lines:
        if line.status != ClaimLineStatus.REJECTED or line.restored_at is not None:
            continue
        elsewhere = session.scalar(
            select(ClaimLine.id).where(
                ClaimLine.reservation_id == line.reservation_id,
                ClaimLine.status != ClaimLineStatus.REJECTED,
                ClaimLine.id != line.id,
            )
        )
        if elsewhere:
            continue
        amount = min(
            line.voucher_amount, voucher_service.redeemed_for(session, line.reservation_id)
        )
        if amount <= ZERO:
            continue
        voucher_service.restore_redemption(
            session,
            actor,
            line.voucher_id,
            line.reservation_id,
            claim.id,
            amount,
            f"claim {claim.number} line rejected: {line.reason}",
        )
        line.restored_at = now


# --- reading -------------------------------------------------------------------------------


def get_claim(session: Session, actor: Actor, claim_id: int) -> Claim:
    claim = session.scalar(
        select(Claim).where(Claim.id == claim_id).options(selectinload(Claim.lines))
    )
    if claim is None or not authz.can(actor, "claim.view", claim):
        if claim is not None and not actor.authenticated:
            authz.require(actor, "claim.view", claim)
        raise NotFound()
    return claim


def _visible_claims(actor: Actor):
    if actor.platform_admin:
        return None
    conditions = [Claim.claimant_org_id.in_(actor.org_ids() or {0})]
    if actor.bureau_ids():
        conditions.append(Claim.bureau_id.in_(actor.bureau_ids()))
    for region in actor.bureau_regions():
        prefix = rules.bureau_prefix(region) + "%"
        conditions.append(Claim.bureau_region.like(prefix))
        conditions.append(
            exists().where(ClaimLine.claim_id == Claim.id, ClaimLine.provider_region.like(prefix))
        )
    return or_(*conditions)


def list_claims(
    session: Session,
    actor: Actor,
    *,
    status: str | None = None,
    bureau_id: int | None = None,
    claimant_org_id: int | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Claim], int]:
    authz.require(actor, "claim.list")
    conditions = []
    visible = _visible_claims(actor)
    if visible is not None:
        conditions.append(visible)
    if status:
        conditions.append(Claim.status == ClaimStatus(status))
    if bureau_id is not None:
        conditions.append(Claim.bureau_id == bureau_id)
    if claimant_org_id is not None:
        conditions.append(Claim.claimant_org_id == claimant_org_id)
    where = and_(True, *conditions)
    total = session.scalar(select(func.count(Claim.id)).where(where)) or 0
    items = list(
        session.scalars(
            select(Claim)
            .where(where)
            .options(selectinload(Claim.lines).selectinload(ClaimLine.decisions))
            .order_by(Claim.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    return items, total
