"""The migrations make exactly the schema the models describe, on SQLite and
on PostgreSQL (an autogenerate diff against a freshly upgraded database is
empty), PostgreSQL gets its exclusion constraint, and downgrade works."""

from __future__ import annotations

import os
import uuid
import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from booking import create_app
from booking.database import schema_object_filter
from booking.extensions import db as _db


def fresh_database_url(tmp_path) -> tuple[str, callable]:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{tmp_path}/migrated.sqlite3", lambda: None
    url = make_url(base)
    name = f"mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def diff_against_models(engine) -> list:
    with engine.connect() as conn, warnings.catch_warnings():
        # Alembic cannot compare expression indexes (lower(email)); it says so.
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        warnings.filterwarnings("ignore", message=".*autogenerate skipping.*")
        opts = {
            "compare_type": True,
            "include_object": schema_object_filter(conn.dialect.name),
        }
        context = MigrationContext.configure(conn, opts=opts)
        return compare_metadata(context, _db.metadata)


@pytest.fixture
def migrated_app(tmp_path):
    url, drop = fresh_database_url(tmp_path)
    app = create_app({"ENV_NAME": "testing", "DATABASE_URL": url})
    yield app
    with app.app_context():
        _db.engine.dispose()
    drop()


def test_upgrade_makes_the_models_schema_and_downgrade_undoes_it(migrated_app):
    from flask_migrate import downgrade, upgrade

    with migrated_app.app_context():
        upgrade()
        engine = _db.engine
        assert diff_against_models(engine) == []
        # What the diff cannot see: the expression index and the ledger trigger.
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                index_sql = "SELECT indexname FROM pg_indexes"
                trigger_sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
            else:
                index_sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
                trigger_sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            assert "uq_users_email_lower" in set(conn.execute(text(index_sql)).scalars())
            triggers = set(conn.execute(text(trigger_sql)).scalars())
            assert triggers & {"voucher_ledger_no_change", "voucher_ledger_no_update"}
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                found = (
                    conn.execute(text("SELECT conname FROM pg_constraint WHERE contype = 'x'"))
                    .scalars()
                    .all()
                )
            assert "ex_reservations_no_overlap" in found
            with engine.connect() as conn:
                statistics = set(
                    conn.execute(text("SELECT stxname FROM pg_statistic_ext")).scalars()
                )
            # The open-sharing report's plan depends on it (PostgreSQL 14+).
            if engine.dialect.server_version_info >= (14,):
                assert "st_reservations_usage_span" in statistics
        downgrade(revision="base")
        with engine.connect() as conn:
            tables = set(engine.dialect.get_table_names(conn)) - {"alembic_version"}
        assert tables == set()


def test_the_models_schema_has_the_usage_span_statistics_on_postgresql(session):
    """create_all (tests, benchmarks, bin/demo) makes what the migration makes."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql" or bind.dialect.server_version_info < (14,):
        pytest.skip("expression statistics: PostgreSQL 14+")
    names = set(session.execute(text("SELECT stxname FROM pg_statistic_ext")).scalars())
    assert "st_reservations_usage_span" in names
