"""settlement facts on the ledger and the bookings

The settlement report reads a period's ledger entries and redeemed bookings
without joining every entry to its booking:

- ``voucher_ledger_entries.resource_id``: the booking's resource on every
  entry about a booking (a CHECK refuses one without it), filled for the
  existing entries from their bookings; an index on ``at`` covering what the
  report reads (PostgreSQL ``INCLUDE``);
- ``reservations.redeemed_at``: the earliest ``at`` of the booking's
  ``redeem`` entries, filled from the ledger; a partial index on it covering
  the booking's costs.

From now on both are written by the ledger entry's insert (the ORM hooks in
``booking/models/vouchers.py``).

The ledger is append-only (a trigger refuses updates): on PostgreSQL the
trigger is switched off for the fill, on SQLite the table is rebuilt (which
drops the trigger) and the trigger made again.

Revision ID: 5e7d1c2a9b40
Revises: 0e204449a099
Create Date: 2026-11-23 16:10:00.000000

"""

import warnings
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5e7d1c2a9b40"
down_revision = "0e204449a099"
branch_labels = None
depends_on = None

LEDGER = "voucher_ledger_entries"
CHECK = "ck_voucher_ledger_entries_booking_entries_name_resource"
FK = "fk_voucher_ledger_entries_resource_id_resources"
SQLITE_TRIGGER = (
    "CREATE TRIGGER voucher_ledger_no_update BEFORE UPDATE ON voucher_ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'voucher_ledger_entries is append-only'); END"
)
LEDGER_INCLUDE = ["kind", "amount", "voucher_id", "resource_id", "reservation_id"]
BOOKING_INCLUDE = ["resource_id", "voucher_id", "final_cost", "voucher_amount", "customer_amount"]
REDEEMED = "redeemed_at IS NOT NULL"


@contextmanager
def rebuilt(table: str):
    """A batch that rebuilds the table on SQLite (reflecting it reflects
    ``users``, whose expression index SQLAlchemy cannot reflect and says so)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        with op.batch_alter_table(table, recreate="always") as batch_op:
            yield batch_op


def upgrade():
    is_pg = op.get_bind().dialect.name == "postgresql"
    op.add_column("reservations", sa.Column("redeemed_at", sa.DateTime(timezone=True)))
    if is_pg:
        op.add_column(LEDGER, sa.Column("resource_id", sa.Integer(), nullable=True))
        op.create_foreign_key(FK, LEDGER, "resources", ["resource_id"], ["id"])
        op.execute(f"ALTER TABLE {LEDGER} DISABLE TRIGGER voucher_ledger_no_change")
        op.execute(
            f"UPDATE {LEDGER} e SET resource_id = r.resource_id FROM reservations r "
            "WHERE r.id = e.reservation_id"
        )
        op.execute(f"ALTER TABLE {LEDGER} ENABLE TRIGGER voucher_ledger_no_change")
        op.create_check_constraint(
            CHECK, LEDGER, "reservation_id IS NULL OR resource_id IS NOT NULL"
        )
        op.execute(
            "UPDATE reservations r SET redeemed_at = m.at FROM (SELECT reservation_id, "
            f"min(at) AS at FROM {LEDGER} WHERE kind = 'redeem' AND reservation_id IS NOT NULL "
            "GROUP BY reservation_id) m WHERE m.reservation_id = r.id"
        )
    else:
        # Rebuilding the table drops its append-only trigger: fill, then
        # add the CHECK (a second rebuild) and make the trigger again.
        with rebuilt(LEDGER) as batch_op:
            batch_op.add_column(sa.Column("resource_id", sa.Integer(), nullable=True))
            batch_op.create_foreign_key(FK, "resources", ["resource_id"], ["id"])
        op.execute(
            f"UPDATE {LEDGER} SET resource_id = (SELECT r.resource_id FROM reservations r "
            f"WHERE r.id = {LEDGER}.reservation_id) WHERE reservation_id IS NOT NULL"
        )
        with rebuilt(LEDGER) as batch_op:
            batch_op.create_check_constraint(
                CHECK, "reservation_id IS NULL OR resource_id IS NOT NULL"
            )
        op.execute(SQLITE_TRIGGER)
        op.execute(
            f"UPDATE reservations SET redeemed_at = (SELECT min(e.at) FROM {LEDGER} e "
            "WHERE e.reservation_id = reservations.id AND e.kind = 'redeem') "
            f"WHERE id IN (SELECT reservation_id FROM {LEDGER} WHERE kind = 'redeem')"
        )
    op.create_index("ix_voucher_ledger_at", LEDGER, ["at"], postgresql_include=LEDGER_INCLUDE)
    op.create_index(
        "ix_reservations_redeemed_at",
        "reservations",
        ["redeemed_at"],
        postgresql_include=BOOKING_INCLUDE,
        postgresql_where=sa.text(REDEEMED),
        sqlite_where=sa.text(REDEEMED),
    )


def downgrade():
    is_pg = op.get_bind().dialect.name == "postgresql"
    op.drop_index(
        "ix_reservations_redeemed_at",
        table_name="reservations",
        postgresql_where=sa.text(REDEEMED),
        sqlite_where=sa.text(REDEEMED),
    )
    op.drop_index("ix_voucher_ledger_at", table_name=LEDGER)
    if is_pg:
        op.drop_constraint(CHECK, LEDGER, type_="check")
        op.drop_constraint(FK, LEDGER, type_="foreignkey")
        op.drop_column(LEDGER, "resource_id")
    else:
        with rebuilt(LEDGER) as batch_op:
            batch_op.drop_constraint(CHECK, type_="check")
            batch_op.drop_constraint(FK, type_="foreignkey")
            batch_op.drop_column("resource_id")
        op.execute(SQLITE_TRIGGER)
    # SQLite drops a plain column in place (rebuilding the bookings' table
    # would break the keys that point at it).
    op.execute("ALTER TABLE reservations DROP COLUMN redeemed_at")
