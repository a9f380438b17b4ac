"""The load and scale benchmark (``bench/``) still works: the small data set
is consistent on the test database (SQLite or PostgreSQL) and its users sign
in with their derived tokens, and the load driver sends every endpoint of its
mix to the app (werkzeug, in this process) without a 5xx and leaves no
overlap and no ledger out of step."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402
import load  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

SMALL = generate.Size("smoke", providers=4, resources=16, enterprises=20, bookings=900)


@pytest.fixture
def small_world(app, db):
    return generate.generate(app, SMALL, fast=False, keep_meta=False, log=lambda *_: None)


def test_the_small_data_set_is_consistent_and_its_users_sign_in(app, db, small_world):
    from booking.models.accounts import User
    from booking.models.catalog import Resource
    from booking.models.reservations import Reservation
    from booking.models.vouchers import VoucherLedgerEntry

    made = small_world["counts"]
    assert 600 <= made["reservations"] <= 1500
    kinds = set(db.session.scalars(select(Resource.kind)))
    assert {str(k) for k in kinds} == {"instrument", "testing_service", "hpc", "pilot_line"}
    states = Counter(str(s) for s in db.session.scalars(select(Reservation.status)))
    for state in ("requested", "approved", "completed", "settled", "cancelled", "no_show"):
        assert states[state] > 0, states
    entries = {str(k) for k in db.session.scalars(select(VoucherLedgerEntry.kind))}
    assert {"issue", "hold", "release", "redeem", "expire"} <= entries
    assert generate.consistency(db.session.connection()) == dict.fromkeys(generate.CONSISTENCY, 0)

    user_id = db.session.scalar(select(User.id).where(User.platform_admin.is_(False)).limit(1))
    client = app.test_client()
    answer = client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {generate.api_token(user_id)}"}
    )
    assert answer.status_code == 200
    assert answer.get_json()["id"] == user_id
    wrong = client.get("/api/v1/me", headers={"Authorization": f"Bearer {generate.api_token(0)}"})
    assert wrong.status_code == 401


def test_the_load_driver_sends_every_endpoint_without_errors_or_inconsistency(app, db, small_world):
    db.session.remove()
    clients, rounds = 2, 1
    result = load.run(
        app.config["SQLALCHEMY_DATABASE_URI"],
        clients=clients,
        seconds=0,
        warmup=0,
        bare=False,
        app=app,
        rounds=rounds,
        log=lambda *_: None,
    )
    answered = result["app"]["endpoints"]
    assert {name: row["count"] for name, row in answered.items()} == {
        name: clients * rounds for name, _kind, _share in load.MIX
    }
    assert result["app"]["total"]["5xx"] == 0, answered
    assert result["app"]["total"]["errors"] == 0, answered
    for name in ("search", "resource", "availability", "my bookings", "report"):
        assert set(answered[name]["statuses"]) == {"200"}, (name, answered[name])
    assert set(answered["book"]["statuses"]) <= {"201", "409"}, answered["book"]
    assert result["checks"] == dict.fromkeys(generate.CONSISTENCY, 0)
