"""Settings: environments, environment variables, refusals at start."""

import pytest

from booking import create_app


def test_production_refuses_to_start_without_a_secret_key(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("BOOKING_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.sqlite3")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()


def test_environment_variables_override_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("BOOKING_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.sqlite3")
    monkeypatch.setenv("TIMEZONE", "Asia/Urumqi")
    monkeypatch.setenv("BOOKING_API_TOKEN_DAYS", "7")
    app = create_app()
    assert app.config["SECRET_KEY"] == "from-the-environment"
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite+pysqlite:///")
    assert app.config["API_TOKEN_DAYS"] == 7
    assert app.config["SESSION_COOKIE_SECURE"] is True
    from booking.domain import clock

    assert str(clock.platform_tz()) == "Asia/Urumqi"
    clock.set_platform_tz("Asia/Shanghai")


def test_postgresql_urls_get_the_psycopg_driver():
    from booking.database import normalise_url

    assert normalise_url("postgresql://u@127.0.0.1:5432/db").startswith("postgresql+psycopg://")
    assert normalise_url("sqlite:////tmp/a.db") == "sqlite+pysqlite:////tmp/a.db"


@pytest.mark.parametrize("url", ["mailserver:25", "http://mail.example.cn", "smtp://host:port"])
def test_a_malformed_smtp_url_is_refused_at_start(monkeypatch, tmp_path, url):
    monkeypatch.setenv("BOOKING_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.sqlite3")
    monkeypatch.setenv("SMTP_URL", url)
    with pytest.raises(RuntimeError, match="SMTP_URL"):
        create_app()


def test_an_unknown_environment_name_is_refused(monkeypatch):
    monkeypatch.setenv("BOOKING_ENV", "staging")
    with pytest.raises(RuntimeError, match="BOOKING_ENV"):
        create_app()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(app, db):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_postgresql_sessions_run_without_the_jit_compiler(app, db, requires_postgres):
    """A catalog search spent a third of its time compiling with the JIT:
    every connection of the pool has it off, through commits and rollbacks."""
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar() == "off"
        conn.rollback()
        assert conn.exec_driver_sql("SHOW jit").scalar() == "off"
    connections = [db.engine.connect() for _ in range(3)]
    try:
        assert {c.exec_driver_sql("SHOW jit").scalar() for c in connections} == {"off"}
    finally:
        for c in connections:
            c.close()


def test_each_app_keeps_its_own_zone_and_feed_host_in_one_process(tmp_path):
    """Two apps in one process (tests, tools): whichever app's context is
    pushed works with its own platform zone and feed host, not the last
    created app's."""
    from booking.domain import clock
    from booking.services import feeds

    def make(zone, base_url, name):
        return create_app(
            {
                "ENV_NAME": "testing",
                "DATABASE_URL": f"sqlite:///{tmp_path}/{name}.sqlite3",
                "TIMEZONE": zone,
                "BASE_URL": base_url,
            }
        )

    first = make("Asia/Shanghai", "https://booking.jcg.example", "first")
    second = make("Asia/Urumqi", "http://127.0.0.1:5000", "second")
    with first.app_context():
        assert str(clock.platform_tz()) == "Asia/Shanghai"
        assert feeds.reservation_url(7) == "https://booking.jcg.example/reservations/7"
    with second.app_context():
        assert str(clock.platform_tz()) == "Asia/Urumqi"
        assert feeds.current_settings().host == "127.0.0.1"
    clock.set_platform_tz("Asia/Shanghai")


def test_each_app_keeps_its_own_waiting_list_offer_time(tmp_path):
    from booking.models.catalog import Resource
    from booking.services import waitlist

    def make(hours, name):
        config = {"ENV_NAME": "testing", "DATABASE_URL": f"sqlite:///{tmp_path}/{name}.sqlite3"}
        if hours is not None:
            config["WAITLIST_OFFER_HOURS"] = hours
        return create_app(config)

    short = make(2, "short")
    default = make(None, "default")
    with short.app_context():
        assert waitlist.offer_hours(Resource(extra={})) == 2.0
    with default.app_context():
        assert waitlist.offer_hours(Resource(extra={})) == float(waitlist.DEFAULT_OFFER_HOURS)
