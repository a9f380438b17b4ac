"""The load and scale benchmark (``bench/``) still works: the small data set
is consistent on the test database (SQLite or PostgreSQL), and the load
driver runs a few seconds against the app on werkzeug without a 5xx and
leaves no overlap and no ledger out of step."""

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


def test_the_small_data_set_is_consistent(app, db, small_world):
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


def test_every_generated_user_signs_in_with_the_derived_token(app, db, small_world):
    from booking.models.accounts import User

    user_id = db.session.scalar(select(User.id).where(User.platform_admin.is_(False)).limit(1))
    answer = app.test_client().get(
        "/api/v1/me", headers={"Authorization": f"Bearer {generate.api_token(user_id)}"}
    )
    assert answer.status_code == 200
    assert answer.get_json()["id"] == user_id


def test_the_load_driver_runs_without_errors_or_inconsistency(app, db, small_world):
    db.session.remove()
    result = load.run(
        app.config["SQLALCHEMY_DATABASE_URI"],
        clients=4,
        seconds=3,
        warmup=0.5,
        bare=False,
        app=app,
        log=lambda *_: None,
    )
    total = result["app"]["total"]
    assert total["count"] > 20
    assert total["5xx"] == 0, result["app"]["endpoints"]
    assert total["errors"] == 0
    assert result["checks"] == dict.fromkeys(generate.CONSISTENCY, 0)
    answered = result["app"]["endpoints"]
    assert {"search", "availability", "book"} <= set(answered)
    assert any(s in answered["book"]["statuses"] for s in ("201", "409"))
