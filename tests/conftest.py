"""Test fixtures.

Databases: SQLite (a fresh file per test session) unless ``TEST_DATABASE_URL``
names a PostgreSQL database, which CI sets for its second run. The schema is
made from the models; ``tests/test_migrations.py`` proves the migrations make
the same one. Each test starts from empty tables (truncated, not rolled back,
so tests that race threads or processes see each other's commits).
"""

from __future__ import annotations

import os
import secrets
import socket
import uuid

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import text

from booking import create_app
from booking.extensions import db as _db

# Property tests run on shared, noisy CI machines: a slow first draw (a busy
# core, a garbage collection) is not a failing property. Every example still
# runs and every assertion still holds; only the timing health checks go.
settings.register_profile("project", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("project")

pytest_plugins = ["tests.factories"]


def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite3")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        # Each xdist worker truncates tables between tests: give it a database
        # of its own next to the one named.
        url = worker_database(url, worker)
    return url


def worker_database(url: str, worker: str) -> str:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = f"{parsed.database}_{worker}"
    admin = create_engine(
        parsed.set(drivername="postgresql+psycopg", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def pytest_collection_modifyitems(config, items):
    """Browser tests need Debian's chromium: skipped without it, unless
    REQUIRE_BROWSER=1 (CI), where its absence is an error."""
    if os.path.exists("/usr/bin/chromium"):
        return
    if os.environ.get("REQUIRE_BROWSER"):
        raise pytest.UsageError("REQUIRE_BROWSER=1 but /usr/bin/chromium is missing")
    skip = pytest.mark.skip(reason="needs /usr/bin/chromium (apt-get install -y chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def is_postgres(url: str) -> bool:
    return url.startswith("postgres")


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    url = database_url(tmp_path_factory)
    app = create_app(
        {
            "ENV_NAME": "testing",
            "DATABASE_URL": url,
            "SERVER_NAME": "testserver",
        }
    )
    app.instance_path = str(tmp_path_factory.mktemp("instance"))
    with app.app_context():
        if _db.engine.dialect.name == "postgresql":
            with _db.engine.begin() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        _db.drop_all()
        _db.create_all()
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture(scope="session")
def postgres(app) -> bool:
    with app.app_context():
        return _db.engine.dialect.name == "postgresql"


@pytest.fixture
def requires_postgres(postgres):
    if not postgres:
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL")


def _truncate(app) -> None:
    with app.app_context():
        _db.session.remove()
        tables = [t.name for t in reversed(_db.metadata.sorted_tables)]
        with _db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for name in tables:
                    conn.execute(text(f"DELETE FROM {name}"))
            # As a new database has it (booking.models.catalog_revision): a
            # new number, so no process keeps the last test's catalog.
            conn.execute(
                text("INSERT INTO catalog_revision (id, revision) VALUES (1, :revision)"),
                {"revision": secrets.randbits(62)},
            )


@pytest.fixture(autouse=True)
def _clean_database(request, app):
    if "app" not in request.fixturenames and "db" not in request.fixturenames:
        # Pure domain tests need no database.
        yield
        return
    _truncate(app)
    yield


@pytest.fixture
def db(app):
    with app.app_context():
        yield _db
        _db.session.remove()


@pytest.fixture
def session(db):
    return db.session


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """A test that tries to reach outside this machine fails loudly."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if (
            isinstance(host, str)
            and host not in ("127.0.0.1", "localhost", "::1")
            and not (host.startswith("/"))
        ):
            raise RuntimeError(f"test tried to connect to {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
