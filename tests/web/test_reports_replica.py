"""Reports read from a read replica when ``REPORTS_DATABASE_URL`` names one.

The "replica" here is a second database of the same engine kind that holds a
settlement data set the main database does not: the caller signs in against
the main database, and the figures come from the replica only when the
setting is on.
"""

from __future__ import annotations

import pytest
import time_machine
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from booking.extensions import db as _db
from booking.models.base import Base
from tests.factories.accounts import create_org, create_user
from tests.factories.reports import build_open_sharing_world, build_settlement_world, local

SETTLEMENT = "/api/v1/reports/voucher-settlement?from=2024-01-01&to=2024-12-31&region=1401"


@pytest.fixture
def replica_url(app, tmp_path):
    """A database of its own with the schema, dropped afterwards."""
    main = make_url(str(_db.engine.url))
    if main.get_backend_name() == "postgresql":
        name = f"{main.database}_replica"
        admin = create_engine(main.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = main.set(database=name).render_as_string(hide_password=False)
    else:
        admin = None
        url = "sqlite:///" + str(tmp_path / "replica.sqlite3")
    engine = create_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    Base.metadata.create_all(engine)
    yield url, engine
    sessions = app.extensions.pop("report_sessions", None)
    if sessions is not None:
        sessions.dispose()
    engine.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_reports_read_from_the_replica_when_configured(
    app, session, client, auth_headers, replica_url, monkeypatch
):
    url, engine = replica_url
    with Session(engine) as replica:
        world = build_settlement_world(replica)
        open_world = build_open_sharing_world(replica)
        lab_id, far_lab_id = open_world.lab.id, world.far_lab.id
        replica.commit()
    # The main database knows the officer (to sign in) and nothing else.
    officer = create_user(session, create_org(session, "bureau", region="140100"))
    session.commit()
    headers = auth_headers(officer)

    def settlement():
        with time_machine.travel(local(2025, 2, 1, 12), tick=False):
            return client.get(SETTLEMENT, headers=headers)

    monkeypatch.delitem(app.config, "REPORTS_DATABASE_URL", raising=False)
    main = settlement()
    assert main.status_code == 200, main.get_json()
    assert main.get_json()["totals"]["voucher_share"] == "0.00"
    assert main.get_json()["items"] == []

    monkeypatch.setitem(app.config, "REPORTS_DATABASE_URL", url)
    answer = settlement()
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    # The hand-computed figures of build_settlement_world, seen from Taiyuan.
    assert body["totals"]["voucher_share"] == "1000.00"
    assert body["totals"]["expired"] == "1000.00"
    assert body["reconciliation"]["ok"] is True
    assert str(far_lab_id) in {i["key"] for i in body["items"]}

    # The open-sharing report of a lab found only on the replica.
    with time_machine.travel(local(2025, 1, 10, 12), tick=False):
        shared = client.get(
            f"/api/v1/reports/open-sharing?year=2024&region=1401&provider_id={lab_id}",
            headers=headers,
        )
    assert shared.status_code == 200, shared.get_json()
    assert [i["inner_id"] for i in shared.get_json()["items"]] == ["L-001"]

    # Without the setting the lab is unknown: the main database never had it.
    monkeypatch.delitem(app.config, "REPORTS_DATABASE_URL")
    with time_machine.travel(local(2025, 1, 10, 12), tick=False):
        missing = client.get(
            f"/api/v1/reports/open-sharing?year=2024&provider_id={lab_id}", headers=headers
        )
    assert missing.status_code == 404
