"""Catalog tables: categories, resources with their booking rules, opening
hours, calendar overrides (holidays and 调休 working days), blackouts,
versioned price rules and photos.

Search: ``Resource.search_text`` holds the normalised words a search box
matches (names, model, maker, provider, category names and aliases,
description), rebuilt by the catalog service whenever the resource changes;
on PostgreSQL a GIN trigram index (pg_trgm) serves ``LIKE '%term%'``, and a
GIN index on ``search_grams`` (the Chinese characters and character pairs)
serves the short Chinese words trigrams cannot.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from decimal import Decimal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.models.base import Base, TimestampMixin, enum_column, utcnow


class ResourceKind(enum.StrEnum):
    INSTRUMENT = "instrument"
    TESTING_SERVICE = "testing_service"
    HPC = "hpc"
    PILOT_LINE = "pilot_line"


class ResourceStatus(enum.StrEnum):
    AVAILABLE = "available"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


class ServiceCategory(enum.StrEnum):
    INSTRUMENT_SHARING = "instrument_sharing"
    TESTING = "testing"
    COMPUTING = "computing"
    PILOT_SCALE = "pilot_scale"
    RD_DESIGN = "rd_design"
    TECH_CONSULTING = "tech_consulting"


class FundingSource(enum.StrEnum):
    GOVERNMENT = "government"
    SELF = "self"
    OTHER = "other"


class CustomerClass(enum.StrEnum):
    INTERNAL = "internal"
    ACADEMIC = "academic"
    ENTERPRISE = "enterprise"


class PriceUnit(enum.StrEnum):
    HOUR = "hour"
    SAMPLE = "sample"
    CORE_HOUR = "core_hour"
    NODE_HOUR = "node_hour"
    GPU_HOUR = "gpu_hour"
    DAY = "day"
    SHIFT = "shift"
    BATCH = "batch"


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(160))
    service_category: Mapped[ServiceCategory] = mapped_column(
        enum_column(ServiceCategory, "service_category")
    )
    nrii_code: Mapped[str | None] = mapped_column(String(6))
    # Other words people search this category by (电镜, SEM, ...); they go
    # into the search text of every resource of the category.
    aliases: Mapped[list] = mapped_column(JSON, default=list)

    parent: Mapped[Category | None] = relationship(remote_side="Category.id")


class Resource(TimestampMixin, Base):
    __tablename__ = "resources"
    __table_args__ = (
        CheckConstraint("capacity >= 1", name="capacity_positive"),
        CheckConstraint("granularity_minutes >= 1", name="granularity_positive"),
        CheckConstraint("min_minutes <= max_minutes", name="min_not_above_max"),
        Index("ix_resources_kind_status", "kind", "status"),
        Index(
            "ix_resources_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        Index("ix_resources_search_grams", "search_grams", postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[ResourceKind] = mapped_column(enum_column(ResourceKind, "resource_kind"))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    service_category: Mapped[ServiceCategory] = mapped_column(
        enum_column(ServiceCategory, "resource_service_category")
    )
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    region: Mapped[str] = mapped_column(String(6), index=True)
    location: Mapped[str] = mapped_column(String(200), default="")
    manufacturer: Mapped[str] = mapped_column(String(120), default="")
    model: Mapped[str] = mapped_column(String(120), default="")
    status: Mapped[ResourceStatus] = mapped_column(
        enum_column(ResourceStatus, "resource_status"), default=ResourceStatus.AVAILABLE
    )
    voucher_eligible: Mapped[bool] = mapped_column(default=True)

    # Assessment (开放共享评价考核) and NRII reporting fields.
    original_value: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    funding_source: Mapped[FundingSource] = mapped_column(
        enum_column(FundingSource, "funding_source"), default=FundingSource.OTHER
    )
    accepted_on: Mapped[date | None]
    special_purpose: Mapped[bool] = mapped_column(default=False)
    inner_id: Mapped[str | None] = mapped_column(String(60))
    country: Mapped[str | None] = mapped_column(String(3))
    nrii_reported_on: Mapped[date | None]

    # Capacity: 1 and exclusive for an instrument; pooled units otherwise.
    capacity: Mapped[int] = mapped_column(default=1)
    capacity_unit: Mapped[str] = mapped_column(String(20), default="instrument")
    turnaround_days: Mapped[int | None]

    # Booking rules.
    granularity_minutes: Mapped[int] = mapped_column(default=30)
    min_minutes: Mapped[int] = mapped_column(default=30)
    max_minutes: Mapped[int] = mapped_column(default=480)
    lead_minutes: Mapped[int] = mapped_column(default=0)
    horizon_days: Mapped[int] = mapped_column(default=90)
    buffer_before_minutes: Mapped[int] = mapped_column(default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(default=0)
    requires_approval: Mapped[bool] = mapped_column(default=True)
    requires_training: Mapped[bool] = mapped_column(default=False)
    operator_allowed: Mapped[bool] = mapped_column(default=False)
    cancel_minutes: Mapped[int] = mapped_column(default=1440)
    approval_deadline_minutes: Mapped[int] = mapped_column(default=2880)
    no_show_grace_minutes: Mapped[int] = mapped_column(default=30)
    closed_on_holidays: Mapped[bool] = mapped_column(default=True)
    # Normalised text the search matches against (names, model, maker,
    # category names, description), rebuilt whenever the resource changes.
    # Both are only written by Python and read by SQL: never loaded with a row.
    search_text: Mapped[str] = mapped_column(Text, default="", deferred=True)
    # The Chinese characters and character pairs of search_text (PostgreSQL
    # indexes them: trigrams cannot find a two-character word such as 电镜).
    search_grams: Mapped[list] = mapped_column(
        ARRAY(Text).with_variant(JSON(), "sqlite"), default=list, deferred=True
    )
    extra: Mapped[dict] = mapped_column(JSON, default=dict)

    provider = relationship("Organization")
    category: Mapped[Category] = relationship()
    opening_hours: Mapped[list[OpeningHours]] = relationship(
        back_populates="resource",
        cascade="all, delete-orphan",
        order_by="(OpeningHours.weekday, OpeningHours.open)",
    )
    prices: Mapped[list[PriceRule]] = relationship(
        back_populates="resource", cascade="all, delete-orphan"
    )
    # Users named to decide this resource's requests (delegation); when the
    # list is empty, the provider's admins decide.
    approvers: Mapped[list[ResourceApprover]] = relationship(cascade="all, delete-orphan")
    photos: Mapped[list[ResourcePhoto]] = relationship(
        cascade="all, delete-orphan", order_by="ResourcePhoto.id"
    )

    @property
    def exclusive(self) -> bool:
        return self.capacity == 1


class OpeningHours(Base):
    """One opening span of a weekday (0 = Monday), local wall-clock time."""

    __tablename__ = "opening_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("open < close", name="open_before_close"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int]
    open: Mapped[time]
    close: Mapped[time]

    resource: Mapped[Resource] = relationship(back_populates="opening_hours")


class CalendarDayKind(enum.StrEnum):
    HOLIDAY = "holiday"  # 法定节假日: closed
    WORKDAY = "workday"  # 调休上班: open with Monday's hours


class CalendarDay(Base):
    """A platform admin's entry for a date the holiday library does not know
    yet (or gets wrong). It wins over the library."""

    __tablename__ = "calendar_days"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(unique=True)
    kind: Mapped[CalendarDayKind] = mapped_column(enum_column(CalendarDayKind, "calendar_day_kind"))
    name: Mapped[str] = mapped_column(String(80), default="")


class BlackoutKind(enum.StrEnum):
    MAINTENANCE = "maintenance"
    CALIBRATION = "calibration"
    BREAKDOWN = "breakdown"
    CLOSURE = "closure"


class Blackout(Base):
    __tablename__ = "blackouts"
    __table_args__ = (
        CheckConstraint("start_at < end_at", name="start_before_end"),
        Index("ix_blackouts_resource_span", "resource_id", "start_at", "end_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    kind: Mapped[BlackoutKind] = mapped_column(
        enum_column(BlackoutKind, "blackout_kind"), default=BlackoutKind.MAINTENANCE
    )
    reason: Mapped[str] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PriceRule(Base):
    """A published price of a resource for one customer class and unit.

    Versioned: a change closes the current row (``effective_until``) and adds a
    new one, so a booking's snapshot always points at what it was made under.
    """

    __tablename__ = "price_rules"
    __table_args__ = (
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        CheckConstraint("setup_fee >= 0", name="setup_fee_not_negative"),
        Index("ix_price_rules_lookup", "resource_id", "customer_class", "effective_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    customer_class: Mapped[CustomerClass] = mapped_column(
        enum_column(CustomerClass, "customer_class")
    )
    unit: Mapped[PriceUnit] = mapped_column(enum_column(PriceUnit, "price_unit"))
    unit_price: Mapped[Decimal]
    setup_fee: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    # Minimum billable quantity in the price unit (e.g. 2 hours).
    min_quantity: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    # Time is billed in blocks of rounding_minutes; a remainder below
    # rounding_threshold_minutes is not billed (0: every started block counts).
    rounding_minutes: Mapped[int] = mapped_column(default=0)
    rounding_threshold_minutes: Mapped[int] = mapped_column(default=0)
    order_min: Mapped[Decimal | None]
    order_max: Mapped[Decimal | None]
    no_show_fee: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    operator_fee_per_hour: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    published: Mapped[bool] = mapped_column(default=True)
    effective_from: Mapped[datetime] = mapped_column(default=utcnow)
    effective_until: Mapped[datetime | None]

    resource: Mapped[Resource] = relationship(back_populates="prices")


class ResourcePhoto(Base):
    __tablename__ = "resource_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), index=True
    )
    content_type: Mapped[str] = mapped_column(String(40))
    # The image bytes are loaded only when served, never with a listing.
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    thumbnail: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    width: Mapped[int]
    height: Mapped[int]
    caption: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingRecord(Base):
    """A user is trained (qualified) on a resource or a whole category."""

    __tablename__ = "training_records"
    __table_args__ = (
        CheckConstraint(
            "(resource_id IS NOT NULL) OR (category_id IS NOT NULL)", name="resource_or_category"
        ),
        # At most one live record per user and scope. ``live_scope`` names the
        # scope ("r<resource>" or "c<category>p<lab>") while the record is the
        # user's live one of it, and is NULL once it is history (revoked, or
        # expired and replaced by a new grant). Unlike a constraint over the
        # nullable resource_id/category_id, this one holds on both databases
        # (NULLs never collide), so two racing grants cannot both insert.
        UniqueConstraint("user_id", "live_scope", name="uq_training_live_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    resource_id: Mapped[int | None] = mapped_column(ForeignKey("resources.id"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    # The lab that granted it: a category grant qualifies on that lab's
    # resources only (NULL: an older grant, valid everywhere).
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    valid_until: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    live_scope: Mapped[str | None] = mapped_column(String(40))

    @staticmethod
    def scope_key(resource_id: int | None, category_id: int | None, provider_id: int | None) -> str:
        """The ``live_scope`` of a grant on a resource, or on a category by a lab."""
        if resource_id is not None:
            return f"r{resource_id}"
        return f"c{category_id}p{provider_id if provider_id is not None else '-'}"


class ResourceApprover(Base):
    __tablename__ = "resource_approvers"
    __table_args__ = (UniqueConstraint("resource_id", "user_id", name="uq_resource_approver"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
