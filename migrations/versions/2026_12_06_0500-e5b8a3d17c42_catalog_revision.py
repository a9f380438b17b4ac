"""the catalog's revision and the triggers that change it

Processes keep the catalog's resources between requests and use them while
this revision stands (booking.models.catalog_revision,
booking.services.catalog_cache).

Revision ID: e5b8a3d17c42
Revises: d4a7e2c91f05
Create Date: 2026-12-06 05:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e5b8a3d17c42"
down_revision = "d4a7e2c91f05"
branch_labels = None
depends_on = None

# A frozen copy of booking.models.catalog_revision as of this revision (a
# migration must not change when the models do).
WATCHED = (
    ("resources", ["INSERT", "UPDATE", "DELETE"]),
    ("categories", ["INSERT", "UPDATE", "DELETE"]),
    ("opening_hours", ["INSERT", "UPDATE", "DELETE"]),
    ("price_rules", ["INSERT", "UPDATE", "DELETE"]),
    ("resource_photos", ["INSERT", "UPDATE", "DELETE"]),
    ("organizations", ["UPDATE OF name"]),
)
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION catalog_revise() RETURNS trigger AS $$
BEGIN
  IF current_setting('booking.catalog_revised', true) IS DISTINCT FROM 'yes' THEN
    UPDATE catalog_revision SET revision = floor(random() * 9e18)::bigint WHERE id = 1;
    PERFORM set_config('booking.catalog_revised', 'yes', true);
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql
"""


def create_statements(dialect):
    if dialect == "postgresql":
        statements = [
            "INSERT INTO catalog_revision (id, revision) "
            "VALUES (1, floor(random() * 9e18)::bigint)",
            PG_FUNCTION,
        ]
        for table, events in WATCHED:
            statements.append(
                f"CREATE CONSTRAINT TRIGGER catalog_revise_{table} AFTER {' OR '.join(events)} "
                f"ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                "EXECUTE FUNCTION catalog_revise()"
            )
            statements.append(
                f"CREATE TRIGGER catalog_revise_{table}_truncate AFTER TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION catalog_revise()"
            )
        return statements
    statements = ["INSERT INTO catalog_revision (id, revision) VALUES (1, random())"]
    for table, events in WATCHED:
        for when in events:
            statements.append(
                f"CREATE TRIGGER catalog_revise_{table}_{when.split()[0].lower()} AFTER {when} "
                f"ON {table} BEGIN UPDATE catalog_revision SET revision = random() WHERE id = 1; END"
            )
    return statements


def drop_statements(dialect):
    if dialect == "postgresql":
        statements = [
            f"DROP TRIGGER IF EXISTS catalog_revise_{t}{suffix} ON {t}"
            for t, _ in WATCHED
            for suffix in ("", "_truncate")
        ]
        return [*statements, "DROP FUNCTION IF EXISTS catalog_revise()"]
    return [
        f"DROP TRIGGER IF EXISTS catalog_revise_{table}_{when.split()[0].lower()}"
        for table, events in WATCHED
        for when in events
    ]


def upgrade():
    op.create_table(
        "catalog_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_revision")),
    )
    bind = op.get_bind()
    for statement in create_statements(bind.dialect.name):
        bind.exec_driver_sql(statement)


def downgrade():
    bind = op.get_bind()
    for statement in drop_statements(bind.dialect.name):
        bind.exec_driver_sql(statement)
    op.drop_table("catalog_revision")
