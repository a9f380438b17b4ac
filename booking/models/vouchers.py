"""Voucher tables (科技创新券): the bureaus' policies, vouchers and their
append-only ledger, provider admission (创新券服务机构), CMA certificates of
testing providers, and declared related parties.

A voucher's balance is never stored: it is the sum of its ledger. Amounts
are signed by their effect on what is available to spend (see
``booking.domain.vouchers.amount_sign_ok``, repeated here as the CHECK
constraint ``ck_voucher_ledger_entries_amount_sign``), so

- available = SUM(amount),
- balance = SUM(amount) over issue, redeem, expire, revoke, adjust,
- held = −SUM(amount) over hold and release.

The ledger is append-only: the ORM refuses to update or delete an entry, and
the database does too (a trigger on PostgreSQL and on SQLite; SQLite only
refuses updates, since the test suite empties tables with DELETE).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    DDL,
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    event,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.types import TypeDecorator

from booking.domain.vouchers import SERVICE_CATEGORIES
from booking.models.base import Base, TimestampMixin, enum_column, utcnow

RATIO_QUANTUM = Decimal("0.0001")


class Ratio(TypeDecorator):
    """A share between 0 and 1 as NUMERIC(5,4); Decimal in Python."""

    impl = Numeric(5, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Numeric(5, 4, asdecimal=False))
        return dialect.type_descriptor(Numeric(5, 4))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("a ratio must be Decimal, not float")
        return Decimal(value).quantize(RATIO_QUANTUM)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            value = repr(value)
        return Decimal(value).quantize(RATIO_QUANTUM)


class CapScope(enum.StrEnum):
    ENTERPRISE = "enterprise"
    ACTUAL_CONTROLLER = "actual_controller"  # 同一实际控制人 (Liaocheng pattern)


class Formula(enum.StrEnum):
    FLAT = "flat"
    TIERED = "tiered"  # Shanxi 2017: first tier at one rate, the rest at another


class Claimant(enum.StrEnum):
    PROVIDER = "provider"
    ENTERPRISE = "enterprise"  # Shanxi 2017: the enterprise files, the provider confirms


class PaymentCadence(enum.StrEnum):
    PER_CLAIM = "per_claim"
    MONTHLY = "monthly"


class VoucherPolicy(Base):
    """A bureau's voucher rules from ``effective_from`` (a local date) until the
    next version. Data, never constants: every setting of POLICY.md."""

    __tablename__ = "voucher_policies"
    __table_args__ = (
        UniqueConstraint("bureau_id", "effective_from", name="uq_voucher_policies_bureau_from"),
        CheckConstraint("coverage_ratio > 0 AND coverage_ratio <= 1", name="coverage_ratio_range"),
        CheckConstraint("annual_cap_per_enterprise > 0", name="annual_cap_positive"),
        CheckConstraint("order_cap IS NULL OR order_cap > 0", name="order_cap_positive"),
        CheckConstraint(
            "formula <> 'tiered' OR (tier1_rate IS NOT NULL AND tier2_rate IS NOT NULL)",
            name="tiered_needs_rates",
        ),
        CheckConstraint("max_validity_days >= 1", name="max_validity_positive"),
        CheckConstraint("claim_window_days >= 1", name="claim_window_positive"),
        CheckConstraint(
            "notice_days >= 0 AND admission_notice_days >= 0", name="notice_not_negative"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bureau_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    effective_from: Mapped[date]
    # Who may hold vouchers (rules 1, 2).
    require_sme: Mapped[bool] = mapped_column(default=True)
    require_tech_sme: Mapped[bool] = mapped_column(default=True)
    # Rule 3.
    annual_cap_per_enterprise: Mapped[Decimal] = mapped_column(default=Decimal("200000.00"))
    cap_scope: Mapped[CapScope] = mapped_column(
        enum_column(CapScope, "voucher_cap_scope"), default=CapScope.ENTERPRISE
    )
    # Rules 8–10: the largest share a voucher may have, its cap per order,
    # and the optional tiered formula.
    coverage_ratio: Mapped[Decimal] = mapped_column(Ratio(), default=Decimal("0.50"))
    order_cap: Mapped[Decimal | None]
    formula: Mapped[Formula] = mapped_column(
        enum_column(Formula, "voucher_formula"), default=Formula.FLAT
    )
    tier1_limit: Mapped[Decimal] = mapped_column(default=Decimal("50000.00"))
    tier1_rate: Mapped[Decimal | None] = mapped_column(Ratio())
    tier2_rate: Mapped[Decimal | None] = mapped_column(Ratio())
    # Rule 4: validity in whole local days, at most this many.
    max_validity_days: Mapped[int] = mapped_column(default=366)
    # Rules 5, 6: empty provider_regions = any region (通用通兑).
    service_categories: Mapped[list] = mapped_column(JSON, default=lambda: list(SERVICE_CATEGORIES))
    provider_regions: Mapped[list] = mapped_column(JSON, default=list)
    # Rules 14–19.
    claimant: Mapped[Claimant] = mapped_column(
        enum_column(Claimant, "voucher_claimant"), default=Claimant.PROVIDER
    )
    claim_window_days: Mapped[int] = mapped_column(default=90)
    audit_levels: Mapped[list] = mapped_column(JSON, default=list)
    notice_days: Mapped[int] = mapped_column(default=0)
    payment_cadence: Mapped[PaymentCadence] = mapped_column(
        enum_column(PaymentCadence, "voucher_payment_cadence"), default=PaymentCadence.PER_CLAIM
    )
    admission_notice_days: Mapped[int] = mapped_column(default=7)

    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    bureau = relationship("Organization")


class VoucherStatus(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class Voucher(TimestampMixin, Base):
    """One voucher issued by a bureau to one enterprise. Its terms are copied
    from the bureau's policy at issue, so a later policy never changes them."""

    __tablename__ = "vouchers"
    __table_args__ = (
        CheckConstraint("face_value > 0", name="face_value_positive"),
        CheckConstraint("valid_from < valid_until", name="valid_from_before_until"),
        CheckConstraint("coverage_ratio > 0 AND coverage_ratio <= 1", name="coverage_ratio_range"),
        CheckConstraint("order_cap IS NULL OR order_cap > 0", name="order_cap_positive"),
        CheckConstraint(
            "formula <> 'tiered' OR (tier1_rate IS NOT NULL AND tier2_rate IS NOT NULL)",
            name="tiered_needs_rates",
        ),
        Index("ix_vouchers_holder_issued", "holder_org_id", "issued_at"),
        Index("ix_vouchers_bureau_issued", "bureau_id", "issued_at"),
        Index("ix_vouchers_status_until", "status", "valid_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # 券号: the issuing region, the year and the id (set right after insert).
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    bureau_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    issuing_region: Mapped[str] = mapped_column(String(6), index=True)
    holder_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    holder_region: Mapped[str] = mapped_column(String(6), index=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("voucher_policies.id"))
    batch_id: Mapped[str | None] = mapped_column(String(40), index=True)

    face_value: Mapped[Decimal]
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    coverage_ratio: Mapped[Decimal] = mapped_column(Ratio())
    order_cap: Mapped[Decimal | None]
    formula: Mapped[Formula] = mapped_column(
        enum_column(Formula, "voucher_terms_formula"), default=Formula.FLAT
    )
    tier1_limit: Mapped[Decimal] = mapped_column(default=Decimal("50000.00"))
    tier1_rate: Mapped[Decimal | None] = mapped_column(Ratio())
    tier2_rate: Mapped[Decimal | None] = mapped_column(Ratio())
    service_categories: Mapped[list] = mapped_column(JSON)
    provider_regions: Mapped[list] = mapped_column(JSON, default=list)

    status: Mapped[VoucherStatus] = mapped_column(
        enum_column(VoucherStatus, "voucher_status"), default=VoucherStatus.ACTIVE
    )
    issued_at: Mapped[datetime]
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    expired_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(Text)

    bureau = relationship("Organization", foreign_keys=[bureau_id])
    holder = relationship("Organization", foreign_keys=[holder_org_id])
    policy: Mapped[VoucherPolicy] = relationship()

    # Regions of the providers this voucher has paid or holds money for, set by
    # the voucher service before an authorization check (cross-region flows
    # are visible to the bureau of the provider's region too).
    provider_regions_used = ()
    # Totals from the ledger, set by ``vouchers.with_totals`` for answers.
    totals = None

    def __repr__(self) -> str:
        return f"<Voucher {self.id} {self.number} {self.face_value}>"


class LedgerKind(enum.StrEnum):
    ISSUE = "issue"
    HOLD = "hold"
    RELEASE = "release"
    REDEEM = "redeem"
    EXPIRE = "expire"
    ADJUST = "adjust"
    REVOKE = "revoke"


_SIGN_CHECK = (
    "(kind IN ('issue', 'release') AND amount > 0)"
    " OR (kind IN ('hold', 'redeem', 'expire', 'revoke') AND amount < 0)"
    " OR (kind = 'adjust' AND amount <> 0)"
)


class VoucherLedgerEntry(Base):
    """One append-only movement of a voucher's money, with the booking or the
    claim it concerns."""

    __tablename__ = "voucher_ledger_entries"
    __table_args__ = (
        CheckConstraint(_SIGN_CHECK, name="amount_sign"),
        CheckConstraint(
            "kind NOT IN ('hold', 'release', 'redeem') OR reservation_id IS NOT NULL",
            name="booking_entries_name_booking",
        ),
        CheckConstraint(
            "kind <> 'adjust' OR (reason IS NOT NULL AND reason <> '')",
            name="adjust_has_reason",
        ),
        CheckConstraint(
            "reservation_id IS NULL OR resource_id IS NOT NULL",
            name="booking_entries_name_resource",
        ),
        Index("ix_voucher_ledger_voucher_kind", "voucher_id", "kind"),
        Index("ix_voucher_ledger_reservation", "reservation_id"),
        # A period's entries for the settlement report, from the index alone
        # on PostgreSQL.
        Index(
            "ix_voucher_ledger_at",
            "at",
            postgresql_include=[
                "kind",
                "amount",
                "voucher_id",
                "resource_id",
                "reservation_id",
                "issuing_region",
                "holder_org_id",
            ],
        ),
        Index("ix_voucher_ledger_claim", "claim_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id"))
    kind: Mapped[LedgerKind] = mapped_column(enum_column(LedgerKind, "voucher_ledger_kind"))
    amount: Mapped[Decimal]
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id"))
    # The booking's resource (a booking never changes resource), so that the
    # settlement report groups a period's entries by provider and category
    # without reading the bookings. Filled on insert (``_entry_names_resource``).
    resource_id: Mapped[int | None] = mapped_column(ForeignKey("resources.id"))
    # The voucher's issuing region and holder (neither ever changes), so that
    # the report reads a period's entries without joining their vouchers.
    # Filled on insert (``_entry_names_voucher_facts``).
    issuing_region: Mapped[str] = mapped_column(String(6))
    holder_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    claim_id: Mapped[int | None] = mapped_column(ForeignKey("claims.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    voucher: Mapped[Voucher] = relationship()


@event.listens_for(VoucherLedgerEntry, "before_update")
@event.listens_for(VoucherLedgerEntry, "before_delete")
def _ledger_is_append_only(_mapper, _connection, target):
    raise RuntimeError(f"voucher ledger entry {target.id} is append-only")


# What the settlement report reads instead of joining every entry to its
# booking, written by the insert of the entry itself, so that no writer of the
# ledger (the services' ``_append``, fixtures, scripts using the ORM) can leave
# it out. Writers in plain SQL (the benchmarks' loaders) fill them themselves;
# the CHECK ``booking_entries_name_resource`` refuses an entry without its
# resource, NOT NULL one without its voucher's facts.
# tests/services/test_settlement_facts.py recomputes them from the raw rows.


@event.listens_for(VoucherLedgerEntry, "before_insert")
def _entry_names_resource(_mapper, connection, target):
    if target.reservation_id is not None and target.resource_id is None:
        from booking.models.reservations import Reservation

        target.resource_id = connection.scalar(
            select(Reservation.resource_id).where(Reservation.id == target.reservation_id)
        )


@event.listens_for(VoucherLedgerEntry, "before_insert")
def _entry_names_voucher_facts(_mapper, connection, target):
    if target.issuing_region is not None and target.holder_org_id is not None:
        return
    voucher = target.__dict__.get("voucher")
    if voucher is None:
        session = object_session(target)
        if session is not None:
            voucher = session.identity_map.get(identity_key(Voucher, target.voucher_id))
    if voucher is not None and "issuing_region" in voucher.__dict__:
        region, holder = voucher.issuing_region, voucher.holder_org_id
    else:
        table = Voucher.__table__
        region, holder = connection.execute(
            select(table.c.issuing_region, table.c.holder_org_id).where(
                table.c.id == target.voucher_id
            )
        ).one()
    target.issuing_region, target.holder_org_id = region, holder


@event.listens_for(VoucherLedgerEntry, "after_insert")
def _redeem_dates_booking(_mapper, connection, target):
    """A ``redeem`` entry sets its booking's ``redeemed_at`` (the earliest
    redemption) and ``redeemed_region`` (its voucher's issuing region), and
    the booking loaded in the session sees them."""
    if target.kind != LedgerKind.REDEEM or target.reservation_id is None:
        return
    from booking.models.reservations import Reservation

    table = Reservation.__table__
    connection.execute(
        update(table)
        .where(
            table.c.id == target.reservation_id,
            or_(table.c.redeemed_at.is_(None), table.c.redeemed_at > target.at),
        )
        .values(redeemed_at=target.at, redeemed_region=target.issuing_region)
    )
    session = object_session(target)
    if session is not None:
        booking = session.identity_map.get(identity_key(Reservation, target.reservation_id))
        if booking is not None:
            row = connection.execute(
                select(table.c.redeemed_at, table.c.redeemed_region).where(
                    table.c.id == target.reservation_id
                )
            ).one()
            set_committed_value(booking, "redeemed_at", row.redeemed_at)
            set_committed_value(booking, "redeemed_region", row.redeemed_region)


event.listen(
    VoucherLedgerEntry.__table__,
    "after_create",
    DDL(
        "CREATE OR REPLACE FUNCTION voucher_ledger_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'voucher_ledger_entries is append-only'; END; "
        "$$ LANGUAGE plpgsql"
    ).execute_if(dialect="postgresql"),
)
event.listen(
    VoucherLedgerEntry.__table__,
    "after_create",
    DDL(
        "CREATE TRIGGER voucher_ledger_no_change BEFORE UPDATE OR DELETE "
        "ON voucher_ledger_entries FOR EACH ROW EXECUTE FUNCTION voucher_ledger_append_only()"
    ).execute_if(dialect="postgresql"),
)
event.listen(
    VoucherLedgerEntry.__table__,
    "after_create",
    DDL(
        "CREATE TRIGGER voucher_ledger_no_update BEFORE UPDATE ON voucher_ledger_entries "
        "BEGIN SELECT RAISE(ABORT, 'voucher_ledger_entries is append-only'); END"
    ).execute_if(dialect="sqlite"),
)


# --- providers -------------------------------------------------------------------


class AdmissionStatus(enum.StrEnum):
    APPLIED = "applied"  # documents in, waiting for the decision
    IN_NOTICE = "in_notice"  # approved, in its public-notice period (公示)
    ADMITTED = "admitted"
    REJECTED = "rejected"
    SUSPENDED = "suspended"  # no new voucher bookings; finished work can be claimed
    WITHDRAWN = "withdrawn"


#: Admission states that count as the provider's current record.
LIVE_ADMISSION_STATUSES = ("applied", "in_notice", "admitted", "suspended")


class ProviderAdmission(TimestampMixin, Base):
    """A provider's admission as a voucher service institution (rule 19):
    documents, credit check, decision, optional public notice, suspension."""

    __tablename__ = "provider_admissions"
    __table_args__ = (
        Index(
            "uq_provider_admissions_live",
            "provider_id",
            unique=True,
            postgresql_where=text("status IN ('applied', 'in_notice', 'admitted', 'suspended')"),
            sqlite_where=text("status IN ('applied', 'in_notice', 'admitted', 'suspended')"),
        ),
        CheckConstraint("notice_days >= 0", name="notice_days_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    status: Mapped[AdmissionStatus] = mapped_column(
        enum_column(AdmissionStatus, "admission_status"), default=AdmissionStatus.APPLIED
    )
    # [{"name": ..., "reference": ...}]: licence, qualification, fee list, ...
    documents: Mapped[list] = mapped_column(JSON, default=list)
    service_summary: Mapped[str] = mapped_column(Text, default="")
    credit_check_passed: Mapped[bool | None]
    credit_check_note: Mapped[str | None] = mapped_column(Text)
    notice_days: Mapped[int] = mapped_column(default=0)
    notice_until: Mapped[datetime | None]
    applied_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)
    suspended_at: Mapped[datetime | None]
    suspended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    suspension_reason: Mapped[str | None] = mapped_column(Text)

    provider = relationship("Organization")


class CmaCertificate(Base):
    """A testing provider's CMA (检验检测机构资质认定) certificate (rule 22).
    ``category_codes``: the catalog categories the certified scope covers
    (prefix match); empty means the scope text alone, not checked by code."""

    __tablename__ = "cma_certificates"
    __table_args__ = (
        UniqueConstraint("provider_id", "number", name="uq_cma_certificates_provider_number"),
        CheckConstraint(
            "issued_on IS NULL OR issued_on <= expires_on", name="issued_before_expiry"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    number: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(Text)
    category_codes: Mapped[list] = mapped_column(JSON, default=list)
    issued_on: Mapped[date | None]
    expires_on: Mapped[date]
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None]


class RelationKind(enum.StrEnum):
    LEGAL_REPRESENTATIVE = "legal_representative"  # 同一法定代表人
    SHAREHOLDING = "shareholding"  # 持股
    CONTROLLER = "controller"  # 同一实际控制人
    OTHER = "other"


class RelatedPartyDeclaration(Base):
    """A relation between two organisations declared by one of them, a
    bureau or the platform (rule 7). Withdrawn, never deleted."""

    __tablename__ = "related_party_declarations"
    __table_args__ = (
        CheckConstraint("org_id <> related_org_id", name="not_self"),
        Index("ix_related_parties_pair", "org_id", "related_org_id"),
        Index("ix_related_parties_reverse", "related_org_id", "org_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    related_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    relation: Mapped[RelationKind] = mapped_column(enum_column(RelationKind, "relation_kind"))
    note: Mapped[str] = mapped_column(Text, default="")
    declared_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    declared_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    org = relationship("Organization", foreign_keys=[org_id])
    related_org = relationship("Organization", foreign_keys=[related_org_id])
