"""SQLAlchemy models, one module per area. Importing this package registers
every table on ``Base.metadata`` (Alembic and the tests rely on that)."""

from booking.models import (  # noqa: F401
    accounts,
    audit,
    catalog,
    catalog_revision,
    claims,
    feeds,
    idempotency,
    notifications,
    password_reset,
    reports,
    reservations,
    vouchers,
)
from booking.models.base import Base

__all__ = ["Base"]
