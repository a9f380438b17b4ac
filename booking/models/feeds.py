"""Tables of the feeds area: calendar subscriptions and the kept event texts.

- ``FeedToken``: one calendar subscription (the secret in its URL). Only the
  SHA-256 of the token is stored; revoking sets ``revoked_at``. A personal
  feed (``me``) shows the owner's bookings in one organisation (all of its
  bookings when the owner is its admin); a lab feed (``lab``) shows every
  booking of a provider's resources, to its admins.
- ``FeedEvent``: a booking's VEVENT text, built once per change and per view
  (customer, lab, busy) and language, kept so a feed is assembled from texts
  instead of being built on every poll. A kept text is valid only while its
  stamp (the booking's ``sequence`` and ``updated_at``, and the format key
  of the platform settings it was built with) matches the booking: a stale
  one is never served, only rebuilt.
- ``FeedStamp``: how often the bookings behind a kind of feed changed, one
  row per customer organisation, booker, lab and resource (and one row,
  ``everything``, for changes that touch many feeds: renames, bulk updates),
  bumped in the transaction that changes a booking. A feed's ETag is made
  from its stamps, so a poll that finds nothing changed costs one small
  indexed query.

Public resource feeds (busy times) need no token.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from booking.models.base import Base, enum_column


class FeedScope(enum.StrEnum):
    ME = "me"
    LAB = "lab"


class FeedToken(Base):
    __tablename__ = "feed_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[FeedScope] = mapped_column(enum_column(FeedScope, "feed_scope", length=8))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    label: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    user = relationship("User")
    organization = relationship("Organization")

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def __repr__(self) -> str:
        return f"<FeedToken {self.id} {self.scope} user={self.user_id} org={self.organization_id}>"


class FeedEvent(Base):
    __tablename__ = "feed_events"
    __table_args__ = (
        # Also the index the feed's join and the refresh's delete use.
        UniqueConstraint("reservation_id", "view", "locale", name="uq_feed_events_kept"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reservation_id: Mapped[int] = mapped_column(ForeignKey("reservations.id", ondelete="CASCADE"))
    view: Mapped[str] = mapped_column(String(10))  # customer | lab | busy
    locale: Mapped[str] = mapped_column(String(10))
    # The stamp the text was built from.
    sequence: Mapped[int]
    source_updated_at: Mapped[datetime]
    format_key: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class FeedStampKind(enum.StrEnum):
    CUSTOMER = "customer"  # all bookings of a customer organisation
    BOOKER = "booker"  # all bookings a user made
    LAB = "lab"  # all bookings of a provider's resources
    RESOURCE = "resource"  # all bookings of one resource
    EVERYTHING = "everything"  # every feed (ref_id 0)


class FeedStamp(Base):
    __tablename__ = "feed_stamps"

    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    ref_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[datetime]
