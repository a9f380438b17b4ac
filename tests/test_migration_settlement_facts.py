"""The migrations that add the settlement facts fill them for the rows
already there: a world written at the head revision, taken back to the
revision before each (the columns dropped) and upgraded again, has the same
facts as the ledger's insert hooks wrote, on SQLite and on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text

from booking.extensions import db as _db
from tests.factories.reports import build_settlement_world
from tests.test_migrations import migrated_app  # noqa: F401 (a fixture)

#: Before the voucher facts (b3d9e4f1a7c2), before the resource and
#: redemption facts (5e7d1c2a9b40).
BEFORE = ("7a1f3c9e2b58", "0e204449a099")
FACTS = {
    "redeemed": "SELECT id, redeemed_at, redeemed_region FROM reservations ORDER BY id",
    "entries": "SELECT id, resource_id, issuing_region, holder_org_id "
    "FROM voucher_ledger_entries ORDER BY id",
}


def facts(engine) -> dict[str, list]:
    with engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(text(sql))] for name, sql in FACTS.items()}


def test_the_migration_fills_the_facts_of_existing_rows(migrated_app):  # noqa: F811
    from flask_migrate import downgrade, upgrade

    with migrated_app.app_context():
        upgrade()
        build_settlement_world(_db.session)
        _db.session.commit()
        _db.session.remove()
        written = facts(_db.engine)
        assert any(at is not None and region for _id, at, region in written["redeemed"])
        assert any(rid is not None for _id, rid, _r, _h in written["entries"])
        assert all(region and holder for _id, _rid, region, holder in written["entries"])
        for revision in BEFORE:
            downgrade(revision=revision)
            upgrade()
            assert facts(_db.engine) == written
        with _db.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
            else:
                sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            triggers = set(conn.execute(text(sql)).scalars())
        assert triggers & {"voucher_ledger_no_change", "voucher_ledger_no_update"}
        downgrade(revision="base")
