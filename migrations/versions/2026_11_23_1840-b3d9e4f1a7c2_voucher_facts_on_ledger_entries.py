"""voucher facts on the ledger entries and redeemed bookings

The settlement report reads a period's ledger entries and redeemed bookings
without joining them to their vouchers:

- ``voucher_ledger_entries.issuing_region`` and ``holder_org_id``: the
  voucher's (neither ever changes), filled for the existing entries from
  their vouchers, then NOT NULL; the index on ``at`` covers them too;
- ``reservations.redeemed_region``: the issuing region of the voucher of the
  booking's first redemption, filled from that entry; the partial index on
  ``redeemed_at`` covers it and the customer (the voucher's holder).

From now on they are written by the ledger entry's insert (the ORM hooks in
``booking/models/vouchers.py``).

The ledger is append-only (a trigger refuses updates): on PostgreSQL the
trigger is switched off for the fill, on SQLite the table is rebuilt (which
drops the trigger) and the trigger made again.

Revision ID: b3d9e4f1a7c2
Revises: 7a1f3c9e2b58
Create Date: 2026-11-23 18:40:00.000000

"""

import warnings
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b3d9e4f1a7c2"
down_revision = "7a1f3c9e2b58"
branch_labels = None
depends_on = None

LEDGER = "voucher_ledger_entries"
FK = "fk_voucher_ledger_entries_holder_org_id_organizations"
SQLITE_TRIGGER = (
    "CREATE TRIGGER voucher_ledger_no_update BEFORE UPDATE ON voucher_ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'voucher_ledger_entries is append-only'); END"
)
LEDGER_INCLUDE = ["kind", "amount", "voucher_id", "resource_id", "reservation_id"]
LEDGER_INCLUDE_NEW = [*LEDGER_INCLUDE, "issuing_region", "holder_org_id"]
BOOKING_INCLUDE = ["resource_id", "voucher_id", "final_cost", "voucher_amount", "customer_amount"]
BOOKING_INCLUDE_NEW = [
    "resource_id",
    "voucher_id",
    "customer_org_id",
    "redeemed_region",
    "final_cost",
    "voucher_amount",
    "customer_amount",
]
REDEEMED = "redeemed_at IS NOT NULL"


@contextmanager
def rebuilt(table: str):
    """A batch that rebuilds the table on SQLite (reflecting it reflects
    ``users``, whose expression index SQLAlchemy cannot reflect and says so)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        with op.batch_alter_table(table, recreate="always") as batch_op:
            yield batch_op


def _indexes(ledger_include, booking_include):
    op.create_index("ix_voucher_ledger_at", LEDGER, ["at"], postgresql_include=ledger_include)
    op.create_index(
        "ix_reservations_redeemed_at",
        "reservations",
        ["redeemed_at"],
        postgresql_include=booking_include,
        postgresql_where=sa.text(REDEEMED),
        sqlite_where=sa.text(REDEEMED),
    )


def _drop_indexes():
    op.drop_index(
        "ix_reservations_redeemed_at",
        table_name="reservations",
        postgresql_where=sa.text(REDEEMED),
        sqlite_where=sa.text(REDEEMED),
    )
    op.drop_index("ix_voucher_ledger_at", table_name=LEDGER)


def upgrade():
    is_pg = op.get_bind().dialect.name == "postgresql"
    _drop_indexes()
    op.add_column("reservations", sa.Column("redeemed_region", sa.String(6)))
    if is_pg:
        op.add_column(LEDGER, sa.Column("issuing_region", sa.String(6), nullable=True))
        op.add_column(LEDGER, sa.Column("holder_org_id", sa.Integer(), nullable=True))
        op.execute(f"ALTER TABLE {LEDGER} DISABLE TRIGGER voucher_ledger_no_change")
        op.execute(
            f"UPDATE {LEDGER} e SET issuing_region = v.issuing_region, "
            "holder_org_id = v.holder_org_id FROM vouchers v WHERE v.id = e.voucher_id"
        )
        op.execute(f"ALTER TABLE {LEDGER} ENABLE TRIGGER voucher_ledger_no_change")
        op.alter_column(LEDGER, "issuing_region", nullable=False)
        op.alter_column(LEDGER, "holder_org_id", nullable=False)
        op.create_foreign_key(FK, LEDGER, "organizations", ["holder_org_id"], ["id"])
        op.execute(
            "UPDATE reservations r SET redeemed_region = v.issuing_region FROM ("
            f"SELECT DISTINCT ON (reservation_id) reservation_id, voucher_id FROM {LEDGER} "
            "WHERE kind = 'redeem' AND reservation_id IS NOT NULL "
            "ORDER BY reservation_id, at, id) m JOIN vouchers v ON v.id = m.voucher_id "
            "WHERE m.reservation_id = r.id"
        )
    else:
        # Rebuilding the table drops its append-only trigger: fill, then make
        # the columns NOT NULL (a second rebuild) and the trigger again.
        with rebuilt(LEDGER) as batch_op:
            batch_op.add_column(sa.Column("issuing_region", sa.String(6), nullable=True))
            batch_op.add_column(sa.Column("holder_org_id", sa.Integer(), nullable=True))
        op.execute(
            f"UPDATE {LEDGER} SET issuing_region = (SELECT v.issuing_region FROM vouchers v "
            f"WHERE v.id = {LEDGER}.voucher_id), holder_org_id = (SELECT v.holder_org_id "
            f"FROM vouchers v WHERE v.id = {LEDGER}.voucher_id)"
        )
        with rebuilt(LEDGER) as batch_op:
            batch_op.alter_column("issuing_region", existing_type=sa.String(6), nullable=False)
            batch_op.alter_column("holder_org_id", existing_type=sa.Integer(), nullable=False)
            batch_op.create_foreign_key(FK, "organizations", ["holder_org_id"], ["id"])
        op.execute(SQLITE_TRIGGER)
        op.execute(
            "UPDATE reservations SET redeemed_region = (SELECT v.issuing_region "
            f"FROM {LEDGER} e JOIN vouchers v ON v.id = e.voucher_id "
            "WHERE e.reservation_id = reservations.id AND e.kind = 'redeem' "
            "ORDER BY e.at, e.id LIMIT 1) WHERE redeemed_at IS NOT NULL"
        )
    _indexes(LEDGER_INCLUDE_NEW, BOOKING_INCLUDE_NEW)


def downgrade():
    is_pg = op.get_bind().dialect.name == "postgresql"
    _drop_indexes()
    if is_pg:
        op.drop_constraint(FK, LEDGER, type_="foreignkey")
        op.drop_column(LEDGER, "holder_org_id")
        op.drop_column(LEDGER, "issuing_region")
    else:
        with rebuilt(LEDGER) as batch_op:
            batch_op.drop_constraint(FK, type_="foreignkey")
            batch_op.drop_column("holder_org_id")
            batch_op.drop_column("issuing_region")
        op.execute(SQLITE_TRIGGER)
    # SQLite drops a plain column in place (rebuilding the bookings' table
    # would break the keys that point at it).
    op.execute("ALTER TABLE reservations DROP COLUMN redeemed_region")
    _indexes(LEDGER_INCLUDE, BOOKING_INCLUDE)
