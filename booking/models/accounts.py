"""Organisations, users, memberships, API tokens and sign-in attempts."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.models.base import Base, TimestampMixin, enum_column


class OrgKind(enum.StrEnum):
    ENTERPRISE = "enterprise"
    PROVIDER = "provider"
    BUREAU = "bureau"
    PLATFORM = "platform"


class SizeClass(enum.StrEnum):
    MICRO = "micro"
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class OrgStatus(enum.StrEnum):
    PENDING = "pending"  # signed up, waiting for the platform admin
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Role(enum.StrEnum):
    MEMBER = "member"
    ADMIN = "admin"


class Organization(TimestampMixin, Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[OrgKind] = mapped_column(enum_column(OrgKind, "org_kind"))
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    region: Mapped[str] = mapped_column(String(6), index=True)
    status: Mapped[OrgStatus] = mapped_column(
        enum_column(OrgStatus, "org_status"), default=OrgStatus.ACTIVE
    )
    size_class: Mapped[SizeClass | None] = mapped_column(enum_column(SizeClass, "size_class"))
    size_checked_year: Mapped[int | None]
    tech_sme_number: Mapped[str | None] = mapped_column(String(40))
    tech_sme_year: Mapped[int | None]
    controller_group: Mapped[str | None] = mapped_column(String(80), index=True)
    voucher_provider: Mapped[bool] = mapped_column(default=False)

    memberships: Mapped[list[Membership]] = relationship(back_populates="organization")

    def __repr__(self) -> str:
        return f"<Organization {self.id} {self.kind} {self.name}>"


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN")
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    platform_admin: Mapped[bool] = mapped_column(default=False)
    # Bumped on password change: invalidates web sessions made before it.
    session_version: Mapped[int] = mapped_column(default=1)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    # Flask-Login's user protocol, kept here so the web layer needs no wrapper.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


# Emails are unique whatever their case (the service also stores them lowered).
Index("uq_users_email_lower", func.lower(User.email), unique=True)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "organization_id", name="uq_memberships_user_org"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    role: Mapped[Role] = mapped_column(enum_column(Role, "membership_role"), default=Role.MEMBER)

    user: Mapped[User] = relationship(back_populates="memberships")
    organization: Mapped[Organization] = relationship(back_populates="memberships")


class ApiToken(Base):
    """A bearer token. Only the SHA-256 of the token is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class LoginAttempt(Base):
    """One sign-in attempt, for throttling by account and by address."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    success: Mapped[bool]
