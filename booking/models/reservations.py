"""Reservations (bookings), recurrence series and waiting lists.

A live booking (requested, approved, in use) holds its buffered span
``[busy_start, busy_end)``. On PostgreSQL the exclusion constraint
``ex_reservations_no_overlap`` refuses two live bookings of an exclusive
resource whose buffered spans overlap, whatever the application does; pooled
resources are guarded by a row lock on the resource (see the reservation
service).
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    DDL,
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    column,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

# The states live in the domain (pure); they are re-exported here for the tables' users.
from booking.domain.reservations import LIVE_STATUSES, ReservationStatus
from booking.models.base import Base, TimestampMixin, enum_column

_LIVE_SQL = ", ".join(f"'{s.value}'" for s in LIVE_STATUSES)


class ServiceWay(enum.StrEnum):
    """NRII 服务方式."""

    SELF_OPERATED = "self_operated"  # 占用共享: the user operates
    GUIDED = "guided"  # 技术共享: the user operates under guidance
    ENTRUSTED = "entrusted"  # 委托共享: the lab runs it for the user
    REMOTE = "remote"  # 远程共享
    OTHER = "other"


class ReservationSeries(Base):
    __tablename__ = "reservation_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[dict] = mapped_column(JSON)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class Reservation(TimestampMixin, Base):
    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("start_at < end_at", name="start_before_end"),
        CheckConstraint("busy_start <= start_at AND end_at <= busy_end", name="busy_covers_span"),
        CheckConstraint("units >= 1", name="units_positive"),
        Index("ix_reservations_resource_busy", "resource_id", "busy_start", "busy_end"),
        Index("ix_reservations_customer_start", "customer_org_id", "start_at"),
        # A customer's bookings in one state ("my bookings" filtered): without
        # it the page and its count read the customer's whole history.
        Index("ix_reservations_customer_status_start", "customer_org_id", "status", "start_at"),
        Index("ix_reservations_user_start", "user_id", "start_at"),
        Index("ix_reservations_status_start", "status", "start_at"),
        # The approval queue: a lab's undecided requests, without reading
        # every booking the lab ever had (which grows with the years).
        Index(
            "ix_reservations_requested",
            "resource_id",
            "created_at",
            postgresql_where=text("status = 'requested'"),
            sqlite_where=text("status = 'requested'"),
        ),
        # The settlement report's bookings redeemed in a period, read from
        # the index alone on PostgreSQL.
        Index(
            "ix_reservations_redeemed_at",
            "redeemed_at",
            postgresql_include=[
                "resource_id",
                "voucher_id",
                "customer_org_id",
                "redeemed_region",
                "final_cost",
                "voucher_amount",
                "customer_amount",
            ],
            postgresql_where=text("redeemed_at IS NOT NULL"),
            sqlite_where=text("redeemed_at IS NOT NULL"),
        ),
        ExcludeConstraint(
            (column("resource_id"), "="),
            (func.tstzrange(column("busy_start"), column("busy_end"), text("'[)'")), "&&"),
            name="ex_reservations_no_overlap",
            using="gist",
            where=text(f"exclusive AND status IN ({_LIVE_SQL})"),
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"))
    customer_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    series_id: Mapped[int | None] = mapped_column(ForeignKey("reservation_series.id"), index=True)

    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    # The span plus the resource's buffers: what the booking keeps from others.
    busy_start: Mapped[datetime]
    busy_end: Mapped[datetime]
    # Copied from the resource (capacity 1) so the database constraint can see it.
    exclusive: Mapped[bool]
    units: Mapped[int] = mapped_column(default=1)
    samples: Mapped[int | None]
    status: Mapped[ReservationStatus] = mapped_column(
        enum_column(ReservationStatus, "reservation_status")
    )
    purpose: Mapped[str] = mapped_column(Text, default="")
    with_operator: Mapped[bool] = mapped_column(default=False)
    other_public_subsidy: Mapped[bool] = mapped_column(default=False)

    # Money: estimate at request from the price snapshot, final at completion.
    customer_class: Mapped[str] = mapped_column(String(20))
    price_snapshot: Mapped[dict] = mapped_column(JSON)
    estimated_cost: Mapped[Decimal]
    voucher_id: Mapped[int | None] = mapped_column(ForeignKey("vouchers.id"), index=True)
    # The voucher's share of the estimate, as quoted when the booking was made.
    voucher_estimate: Mapped[Decimal | None]
    voucher_hold: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    final_cost: Mapped[Decimal | None]
    voucher_amount: Mapped[Decimal | None]
    customer_amount: Mapped[Decimal | None]
    # When the voucher paid its share: the earliest ``at`` of the booking's
    # ``redeem`` ledger entries, written with the entry itself (the ledger's
    # insert hook in models/vouchers.py; never set by hand).
    redeemed_at: Mapped[datetime | None]
    # The issuing region of the voucher of that redemption, written with it.
    # (The voucher's holder is the booking's customer: vouchers.redeem and
    # the hold refuse any other.)
    redeemed_region: Mapped[str | None] = mapped_column(String(6))

    # What really happened.
    actual_start: Mapped[datetime | None]
    actual_end: Mapped[datetime | None]
    actual_units: Mapped[int | None]
    service_way: Mapped[ServiceWay | None] = mapped_column(enum_column(ServiceWay, "service_way"))
    prep_minutes: Mapped[int | None]
    run_minutes: Mapped[int | None]
    post_minutes: Mapped[int | None]

    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    cancelled_at: Mapped[datetime | None]
    # Rises with every change: iCalendar SEQUENCE.
    sequence: Mapped[int] = mapped_column(default=0)

    resource = relationship("Resource")
    customer_org = relationship("Organization")
    user = relationship("User", foreign_keys=[user_id])
    series: Mapped[ReservationSeries | None] = relationship()


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class WaitlistEntry(Base):
    __tablename__ = "waitlist_entries"
    __table_args__ = (Index("ix_waitlist_resource_span", "resource_id", "start_at", "end_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"))
    customer_org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    units: Mapped[int] = mapped_column(default=1)
    samples: Mapped[int | None]
    purpose: Mapped[str] = mapped_column(Text, default="")
    voucher_id: Mapped[int | None]
    status: Mapped[WaitlistStatus] = mapped_column(
        enum_column(WaitlistStatus, "waitlist_status"), default=WaitlistStatus.WAITING
    )
    created_at: Mapped[datetime]
    offered_at: Mapped[datetime | None]
    offer_expires_at: Mapped[datetime | None]
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id"))


#: Statistics on the usage span the open-sharing report filters by (the
#: actual times, else the booked ones): without them PostgreSQL guesses a
#: fifth of the rows a year really has, hashes the bookings instead of their
#: ratings and keeps the scan serial. Expression statistics: PostgreSQL 14+.
USAGE_SPAN_STATISTICS = (
    "CREATE STATISTICS IF NOT EXISTS st_reservations_usage_span ON "
    "(coalesce(actual_start, start_at)), (coalesce(actual_end, end_at)) FROM reservations"
)


def _expression_statistics(_ddl, _target, bind, **_kw) -> bool:
    return bind.dialect.name == "postgresql" and bind.dialect.server_version_info >= (14,)


event.listen(
    Reservation.__table__,
    "after_create",
    DDL(USAGE_SPAN_STATISTICS).execute_if(callable_=_expression_statistics),
)


class Rating(Base):
    __tablename__ = "ratings"
    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reservation_id: Mapped[int] = mapped_column(ForeignKey("reservations.id"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    score: Mapped[int]
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
