"""The catalog's revision: one row whose number the database changes in every
transaction that changes what a catalog answer shows (a resource, its
category, opening hours, price rules or photos, or a lab's name).

Processes keep resources they have read between requests
(``booking.services.catalog_cache``) and use them while the revision is the
one they were read at. Triggers keep it, not the services: no writer (a
service, an import, a migration, a hand-written UPDATE) can forget it.

The number is random, not counted up: a transaction rolled back, a restored
backup or a database made afresh never brings back a number that was used
for other content.

- PostgreSQL: deferred constraint triggers, so the revision row is written
  once per transaction, at its commit, after all its other work (the row is
  shared by every writer of the catalog: taken last, it is held briefly and
  never waited for while holding another lock).
- SQLite: plain triggers (one writer at a time; a transaction writes the row
  once per changed row, cheaply).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, event, inspect
from sqlalchemy.orm import Mapped, mapped_column

from booking.models.base import Base

#: (table, the change that revises the catalog)
WATCHED = (
    ("resources", "INSERT OR UPDATE OR DELETE"),
    ("categories", "INSERT OR UPDATE OR DELETE"),
    ("opening_hours", "INSERT OR UPDATE OR DELETE"),
    ("price_rules", "INSERT OR UPDATE OR DELETE"),
    ("resource_photos", "INSERT OR UPDATE OR DELETE"),
    ("organizations", "UPDATE OF name"),
)

_PG_FUNCTION = """
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


class CatalogRevision(Base):
    __tablename__ = "catalog_revision"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(BigInteger)


def _events(change: str) -> list[str]:
    return [part.strip() for part in change.split(" OR ")]


def create_statements(dialect: str) -> list[str]:
    """The row and the triggers, for ``dialect`` (after every watched table)."""
    if dialect == "postgresql":
        statements = [
            "INSERT INTO catalog_revision (id, revision) "
            "VALUES (1, floor(random() * 9e18)::bigint)",
            _PG_FUNCTION,
        ]
        for table, change in WATCHED:
            statements.append(
                f"CREATE CONSTRAINT TRIGGER catalog_revise_{table} AFTER {change} ON {table} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION catalog_revise()"
            )
            # TRUNCATE fires no row trigger (and no constraint trigger).
            statements.append(
                f"CREATE TRIGGER catalog_revise_{table}_truncate AFTER TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION catalog_revise()"
            )
        return statements
    statements = ["INSERT INTO catalog_revision (id, revision) VALUES (1, random())"]
    for table, change in WATCHED:
        for when in _events(change):
            name = when.split()[0].lower()
            statements.append(
                f"CREATE TRIGGER catalog_revise_{table}_{name} AFTER {when} ON {table} "
                "BEGIN UPDATE catalog_revision SET revision = random() WHERE id = 1; END"
            )
    return statements


@event.listens_for(Base.metadata, "after_create")
def _create_triggers(target, connection, **_kw) -> None:
    """With ``create_all`` (tests, the demo, the benchmarks' data): the row
    and the triggers once every table exists."""
    inspector = inspect(connection)
    needed = ["catalog_revision", *(table for table, _ in WATCHED)]
    if not all(inspector.has_table(table) for table in needed):
        return  # a partial create_all (a test's own tables)
    if connection.exec_driver_sql("SELECT count(*) FROM catalog_revision").scalar():
        return
    for statement in create_statements(connection.dialect.name):
        connection.exec_driver_sql(statement)
