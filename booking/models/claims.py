"""Claim tables (兑付申请): claims, their lines with the evidence each needs,
the audit decisions per line and level, and the order confirmations
(服务确认单) both sides confirm online.

A booking is in at most one live claim line: the partial unique index
``uq_claim_lines_live_reservation`` on ``claim_lines(reservation_id) WHERE
status <> 'rejected'`` refuses a second one whatever the application does,
on PostgreSQL and on SQLite alike.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, event, inspect, text
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from booking.models.base import Base, TimestampMixin, enum_column, utcnow


class ClaimStatus(enum.StrEnum):
    DRAFT = "draft"  # gathered; evidence may still be added
    SUBMITTED = "submitted"  # filed with the bureau, being audited line by line
    AUDITED = "audited"  # every line decided; in notice or waiting for payment
    PAID = "paid"  # final and immutable
    REJECTED = "rejected"  # every line rejected; closed
    WITHDRAWN = "withdrawn"  # a draft the claimant dropped


#: Claims that can no longer change.
CLOSED_CLAIM_STATUSES = (ClaimStatus.PAID, ClaimStatus.REJECTED, ClaimStatus.WITHDRAWN)


class ClaimLineStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Claim(TimestampMixin, Base):
    """A claimant's voucher-paid bookings of a period, filed with the bureau
    that issued their vouchers (one bureau per claim, rule 15)."""

    __tablename__ = "claims"
    __table_args__ = (
        CheckConstraint("period_from <= period_to", name="period_order"),
        CheckConstraint("notice_days >= 0", name="notice_days_not_negative"),
        Index("ix_claims_bureau_status", "bureau_id", "status"),
        Index("ix_claims_claimant_status", "claimant_org_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    bureau_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    bureau_region: Mapped[str] = mapped_column(String(6))
    claimant_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    claimant_kind: Mapped[str] = mapped_column(String(20))
    period_from: Mapped[date]
    period_to: Mapped[date]
    status: Mapped[ClaimStatus] = mapped_column(
        enum_column(ClaimStatus, "claim_status"), default=ClaimStatus.DRAFT
    )
    # Copied from the bureau's policy when filed, so a later policy never
    # changes a claim in audit.
    audit_levels: Mapped[list] = mapped_column(JSON, default=list)
    notice_days: Mapped[int] = mapped_column(default=0)
    payment_cadence: Mapped[str] = mapped_column(String(20), default="per_claim")

    claimed_amount: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    approved_amount: Mapped[Decimal | None]
    paid_amount: Mapped[Decimal | None]

    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    filed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    filed_at: Mapped[datetime | None]
    audited_at: Mapped[datetime | None]
    notice_until: Mapped[datetime | None]
    payable_from: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    payment_reference: Mapped[str | None] = mapped_column(String(120))

    bureau = relationship("Organization", foreign_keys=[bureau_id])
    claimant = relationship("Organization", foreign_keys=[claimant_org_id])
    lines: Mapped[list[ClaimLine]] = relationship(
        back_populates="claim", order_by="ClaimLine.id", cascade="all, delete-orphan"
    )

    # Bookings left out when the claim was gathered, with the rule that
    # stopped each (set by the claims service, not stored).
    skipped = ()


class ClaimLine(Base):
    """One booking in a claim, with its figures and evidence (rule 14)."""

    __tablename__ = "claim_lines"
    __table_args__ = (
        Index(
            "uq_claim_lines_live_reservation",
            "reservation_id",
            unique=True,
            postgresql_where=text("status <> 'rejected'"),
            sqlite_where=text("status <> 'rejected'"),
        ),
        CheckConstraint("voucher_amount > 0", name="voucher_amount_positive"),
        CheckConstraint(
            "status <> 'rejected' OR (reason IS NOT NULL AND reason <> '')",
            name="rejection_has_reason",
        ),
        Index("ix_claim_lines_claim", "claim_id"),
        Index("ix_claim_lines_voucher", "voucher_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"))
    reservation_id: Mapped[int] = mapped_column(ForeignKey("reservations.id"))
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    provider_region: Mapped[str] = mapped_column(String(6))
    customer_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    status: Mapped[ClaimLineStatus] = mapped_column(
        enum_column(ClaimLineStatus, "claim_line_status"), default=ClaimLineStatus.PENDING
    )
    # Levels of audit this line has passed (0 .. len(claim.audit_levels)).
    levels_passed: Mapped[int] = mapped_column(default=0)

    # The booking's figures when it was claimed.
    completed_at: Mapped[datetime]
    actual_start: Mapped[datetime | None]
    actual_end: Mapped[datetime | None]
    actual_units: Mapped[int | None]
    final_cost: Mapped[Decimal]
    voucher_amount: Mapped[Decimal]
    customer_amount: Mapped[Decimal]

    # Evidence (rule 14): invoice, proof of the customer's payment, usage
    # record or result report (metering log for HPC, rule 23).
    invoice_number: Mapped[str | None] = mapped_column(String(60))
    payment_proof: Mapped[str | None] = mapped_column(Text)
    usage_record: Mapped[str | None] = mapped_column(Text)

    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None]
    # Set when the claim closes and this rejected line's money went back to
    # the voucher (an ``adjust`` entry of the same claim).
    restored_at: Mapped[datetime | None]

    claim: Mapped[Claim] = relationship(back_populates="lines")
    reservation = relationship("Reservation")
    voucher = relationship("Voucher")
    decisions: Mapped[list[ClaimLineDecision]] = relationship(
        back_populates="line", order_by="ClaimLineDecision.id", cascade="all, delete-orphan"
    )


class AuditDecision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ClaimLineDecision(Base):
    """One audit decision on one line at one level (rule 17)."""

    __tablename__ = "claim_line_decisions"
    __table_args__ = (
        CheckConstraint(
            "decision <> 'reject' OR (reason IS NOT NULL AND reason <> '')",
            name="rejection_has_reason",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(
        ForeignKey("claim_lines.id", ondelete="CASCADE"), index=True
    )
    level_index: Mapped[int]
    level_name: Mapped[str] = mapped_column(String(40))
    decision: Mapped[AuditDecision] = mapped_column(enum_column(AuditDecision, "audit_decision"))
    reason: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    line: Mapped[ClaimLine] = relationship(back_populates="decisions")


class OrderConfirmation(Base):
    """服务确认单: what was served, to whom, for how much, and who pays what.
    Made when a voucher booking is completed; its content is frozen and both
    the customer and the lab confirm it online. A claim line needs both."""

    __tablename__ = "order_confirmations"

    id: Mapped[int] = mapped_column(primary_key=True)
    reservation_id: Mapped[int] = mapped_column(ForeignKey("reservations.id"), unique=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    content: Mapped[dict] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    customer_confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    customer_confirmed_at: Mapped[datetime | None]
    provider_confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    provider_confirmed_at: Mapped[datetime | None]

    reservation = relationship("Reservation")

    @property
    def confirmed(self) -> bool:
        return self.customer_confirmed_at is not None and self.provider_confirmed_at is not None


def _claim_of(obj) -> Claim | None:
    if isinstance(obj, Claim):
        return obj
    if isinstance(obj, ClaimLine):
        return obj.claim
    if isinstance(obj, ClaimLineDecision):
        return obj.line.claim if obj.line is not None else None
    return None


def _stored_status(claim: Claim):
    state = inspect(claim)
    if "status" in state.unloaded:
        claim.status  # noqa: B018 - loads what the database holds
    history = state.attrs.status.history
    if history.deleted:
        return history.deleted[0]
    if history.unchanged:
        return history.unchanged[0]
    return None


@event.listens_for(Session, "before_flush")
def _paid_claims_never_change(session, _flush_context, _instances):
    """A paid claim is final (rule 18): refuse any change to it, its lines or
    their decisions, whatever code path tries. Corrections are ledger
    ``adjust`` entries."""
    touched = [*session.dirty, *session.deleted, *session.new]
    if not any(isinstance(o, Claim | ClaimLine | ClaimLineDecision) for o in touched):
        return
    with session.no_autoflush:
        for obj in touched:
            claim = _claim_of(obj)
            if claim is None or inspect(claim).pending or inspect(claim).transient:
                continue
            if obj in session.dirty and not session.is_modified(obj):
                continue
            if _stored_status(claim) == ClaimStatus.PAID:
                raise RuntimeError(f"claim {claim.id} is paid and can no longer change")
