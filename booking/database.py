"""Engine settings per database.

- ``DATABASE_URL`` as API.md writes it (``sqlite:///path``,
  ``postgresql://user@host:port/db``) becomes a URL with a maintained driver
  (pysqlite, psycopg 3).
- SQLite: WAL, foreign keys on, a busy timeout, and every transaction begun
  with ``BEGIN IMMEDIATE``, so writers are serialised from their first
  statement and a booking's check and insert cannot interleave with another's.
"""

from __future__ import annotations

import os

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url


def normalise_url(url: str) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend == "sqlite" and parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+pysqlite")
    return parsed.render_as_string(hide_password=False)


def default_sqlite_url(instance_path: str) -> str:
    os.makedirs(instance_path, exist_ok=True)
    return "sqlite+pysqlite:///" + os.path.join(instance_path, "booking.sqlite3")


def engine_options(url: str, busy_timeout_ms: int) -> dict:
    if make_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": busy_timeout_ms / 1000, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}


def configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Take transaction control away from pysqlite (see SQLAlchemy's
        # "Serializable isolation / Savepoints / Transactional DDL" recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def schema_object_filter(dialect_name: str):
    """An Alembic ``include_object`` hook that leaves out what the models
    create on another database only (``Index(...).ddl_if(dialect=...)``):
    autogenerate does not look at ``ddl_if`` by itself."""

    def include_object(obj, _name, _type, _reflected, _compare_to):
        condition = getattr(obj, "_ddl_if", None)
        return condition is None or condition.dialect in (None, dialect_name)

    return include_object


def configure_postgresql(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # In autocommit, so that the setting outlives the first transaction's
        # rollback (SQLAlchemy's recipe for session settings).
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
        dbapi_connection.autocommit = autocommit
