"""Shared pieces of the reservation benchmarks: a PostgreSQL database of their
own (schema from the models), bulk seeding, and gunicorn servers started and
stopped around a measurement.

The database is ``BENCH_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/h_reservations_bench``); its tables
are dropped and made again on every run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/h_reservations_bench"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
SECRET = "bench-secret-key-not-for-production-0123456789"


def make_app():
    from booking import create_app

    return create_app({"ENV_NAME": "testing", "DATABASE_URL": DATABASE_URL, "TESTING": False})


def reset_schema(app) -> None:
    """Drop and make every table (and the extensions the schema needs)."""
    from sqlalchemy import text

    from booking.extensions import db

    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        db.drop_all()
        db.create_all()


def seed_world(
    app, *, resources: int, customers: int, providers: int = 50, **resource_rules
) -> dict:
    """``providers`` labs sharing ``resources`` around-the-clock resources
    (published prices for every class; a platform's labs have tens of
    resources each, not a thousand), ``customers`` enterprise users with API
    tokens. Returns ids and tokens."""
    from booking.domain.organizations import make_uscc
    from booking.extensions import db
    from booking.models.accounts import Membership, Organization, OrgKind, Role, User
    from booking.models.catalog import Category, PriceRule, Resource
    from booking.services import accounts

    kind = resource_rules.pop("kind", "instrument")
    unit = resource_rules.pop("unit", "hour")
    with app.app_context():
        session = db.session
        labs = [
            Organization(
                kind=OrgKind.PROVIDER,
                name=f"基准测试中心{n}",
                uscc=make_uscc("140105", 1 + n),
                region="140105",
            )
            for n in range(providers)
        ]
        category = Category(
            code="B001", name_zh="基准", name_en="Bench", service_category="instrument_sharing"
        )
        session.add_all([*labs, category])
        session.flush()
        provider = labs[0]
        rows = []
        for n in range(resources):
            resource = Resource(
                provider_id=labs[n % providers].id,
                kind=kind,
                category_id=category.id,
                service_category="instrument_sharing" if kind == "instrument" else "computing",
                name_zh=f"基准仪器{n}",
                name_en=f"Bench instrument {n}",
                region="140105",
                closed_on_holidays=False,
                **resource_rules,
            )
            for customer_class, price in (
                ("internal", "100.00"),
                ("academic", "150.00"),
                ("enterprise", "200.00"),
            ):
                resource.prices.append(
                    PriceRule(
                        customer_class=customer_class,
                        unit=unit,
                        unit_price=Decimal(price),
                        effective_from=datetime(2020, 1, 1, tzinfo=UTC),
                    )
                )
            rows.append(resource)
        session.add_all(rows)
        session.flush()
        password = accounts.hash_password("bench password 2026")
        tokens, users, orgs = [], [], []
        for n in range(customers):
            org = Organization(
                kind=OrgKind.ENTERPRISE,
                name=f"基准企业{n}",
                uscc=make_uscc("140105", 10_000 + n),
                region="140105",
                size_class="small",
            )
            user = User(email=f"bench{n}@example.cn", name=f"基准用户{n}", password_hash=password)
            user.memberships.append(Membership(organization=org, role=Role.MEMBER))
            session.add_all([org, user])
            session.flush()
            token, _row = accounts.issue_token(session, user, days=30, label="bench")
            tokens.append(token)
            users.append(user.id)
            orgs.append(org.id)
        admin = User(email="bench-admin@example.cn", name="实验室管理员", password_hash=password)
        admin.memberships.append(Membership(organization=provider, role=Role.ADMIN))
        session.add(admin)
        session.commit()
        return {
            "resource_ids": [r.id for r in rows],
            "tokens": tokens,
            "user_ids": users,
            "org_ids": orgs,
            "provider_id": provider.id,
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, path: str = "/healthz", timeout: float = 60) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path)
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not answer within {timeout}s")


class Gunicorn:
    """``gunicorn -w N -k sync`` serving ``target`` on a free port, for a ``with``."""

    def __init__(self, target: str, workers: int = 4, env: dict | None = None, probe="/healthz"):
        self.target, self.workers, self.probe = target, workers, probe
        self.port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": DATABASE_URL,
            "SECRET_KEY": SECRET,
            "BOOKING_ENV": "production",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }

    def __enter__(self) -> Gunicorn:
        self.process = subprocess.Popen(
            [
                GUNICORN,
                "-w",
                str(self.workers),
                "-k",
                "sync",
                "-b",
                f"127.0.0.1:{self.port}",
                "--backlog",
                "2048",
                "--log-level",
                "warning",
                self.target,
            ],
            cwd=str(ROOT),
            env=self.env,
        )
        wait_for(self.port, self.probe)
        return self

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]
