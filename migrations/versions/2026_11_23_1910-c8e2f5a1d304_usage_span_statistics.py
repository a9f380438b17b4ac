"""statistics on the bookings' usage span

The open-sharing report selects a year's completed bookings by
``coalesce(actual_start, start_at)`` and ``coalesce(actual_end, end_at)``;
without statistics on these expressions PostgreSQL guesses a fifth of the
rows the year has and plans for that (hashing the bookings instead of their
ratings, a serial scan). PostgreSQL 14 and later; nothing on SQLite.

Revision ID: c8e2f5a1d304
Revises: b3d9e4f1a7c2
Create Date: 2026-11-23 19:10:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "c8e2f5a1d304"
down_revision = "b3d9e4f1a7c2"
branch_labels = None
depends_on = None

STATISTICS = (
    "CREATE STATISTICS IF NOT EXISTS st_reservations_usage_span ON "
    "(coalesce(actual_start, start_at)), (coalesce(actual_end, end_at)) FROM reservations"
)


def _applies() -> bool:
    bind = op.get_bind()
    return bind.dialect.name == "postgresql" and bind.dialect.server_version_info >= (14,)


def upgrade():
    if _applies():
        op.execute(STATISTICS)
        op.execute("ANALYZE reservations")


def downgrade():
    if _applies():
        op.execute("DROP STATISTICS IF EXISTS st_reservations_usage_span")
