"""Benchmark of the calendar feeds: a 5,000-event feed, built and polled.

    .venv/bin/python bench/feeds.py [--events 5000] [--polls 300]
        [--postgres postgresql://postgres@127.0.0.1:5432/h_feeds_bench | --no-postgres]

For SQLite (a fresh file) and PostgreSQL (a database of its own, made if
missing and emptied), it seeds one enterprise whose admin's personal feed
holds ``--events`` bookings, then prints:

- cold build: the first answer, which builds every event with icalendar and
  keeps the texts (what the session hook otherwise does once per change);
- warm build: the feed assembled from kept texts, in-process and as a full
  200 answer over HTTP;
- 304: a poll with ``If-None-Match`` over HTTP (a real socket to a local WSGI
  server), median, 95th and 99th percentile;
- for comparison, the feed built with icalendar objects on every poll.

Targets (issue 6): warm build < 250 ms, 304 < 10 ms at the 95th percentile.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from booking import create_app
from booking.domain import clock
from booking.extensions import db
from booking.models.accounts import Membership, Organization, OrgKind, Role, User
from booking.models.catalog import Category, Resource, ResourceKind
from booking.models.feeds import FeedScope, FeedToken
from booking.models.reservations import Reservation
from booking.services import feeds

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/h_feeds_bench"
STATUSES = ["approved"] * 16 + ["requested"] * 2 + ["completed", "cancelled"]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def ensure_postgres_database(url: str) -> None:
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
        ).scalar()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def seed(events: int) -> str:
    """One lab, one enterprise whose admin's feed holds ``events`` bookings.
    Answers the feed token."""
    session = db.session
    lab = Organization(
        kind=OrgKind.PROVIDER, name="山西省分析测试中心", uscc="B" * 18, region="140105"
    )
    firm = Organization(
        kind=OrgKind.ENTERPRISE, name="太原甲新材料有限公司", uscc="A" * 18, region="140105"
    )
    admin = User(email="admin@a.example.cn", name="张安娜", password_hash="x", locale="zh_CN")
    admin.memberships.append(Membership(organization=firm, role=Role.ADMIN))
    category = Category(
        code="B001",
        name_zh="电子显微镜",
        name_en="Electron microscopes",
        service_category="instrument_sharing",
    )
    session.add_all([lab, firm, admin, category])
    session.flush()
    resources = []
    for n in range(4):
        resource = Resource(
            provider_id=lab.id,
            kind=ResourceKind.INSTRUMENT,
            category_id=category.id,
            service_category="instrument_sharing",
            name_zh=f"场发射扫描电镜 {n + 1} 号",
            name_en=f"Field-emission SEM no. {n + 1}",
            region="140105",
            location="测试楼 201",
            capacity=1,
        )
        session.add(resource)
        resources.append(resource)
    session.flush()
    now = clock.now().replace(microsecond=0)
    base = now - timedelta(days=80)
    rows = []
    for i in range(events):
        resource = resources[i % len(resources)]
        start = base + timedelta(hours=8 * (i // len(resources)))
        rows.append(
            {
                "resource_id": resource.id,
                "customer_org_id": firm.id,
                "user_id": admin.id,
                "start_at": start,
                "end_at": start + timedelta(hours=2),
                "busy_start": start,
                "busy_end": start + timedelta(hours=2),
                "exclusive": True,
                "units": 1,
                "samples": 3 if i % 5 == 0 else None,
                "status": STATUSES[i % len(STATUSES)],
                "purpose": f"观察样品 {i} 的断口形貌，需要能谱",
                "customer_class": "enterprise",
                "price_snapshot": {},
                "estimated_cost": Decimal("400.00"),
                "sequence": i % 3,
                "created_at": now,
                "updated_at": now,
            }
        )
    # Core inserts: no flush hook, so the first answer builds every text (cold).
    for offset in range(0, len(rows), 1000):
        session.execute(insert(Reservation), rows[offset : offset + 1000])
    token = "bench-" + "x" * 40
    session.add(
        FeedToken(
            token_hash=feeds.hash_token(token),
            scope=FeedScope.ME,
            user_id=admin.id,
            organization_id=firm.id,
            created_at=now,
        )
    )
    session.commit()
    return token


def analyze(app) -> None:
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        else:
            with db.engine.begin() as conn:
                conn.execute(text("ANALYZE"))


class Server:
    """The app behind a real socket, in a thread."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join()


def timed_get(
    conn: http.client.HTTPConnection, path: str, headers: dict
) -> tuple[float, int, dict, bytes]:
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    return elapsed, response.status, dict(response.getheaders()), body


def run(label: str, url: str, events: int, polls: int) -> dict:
    app = create_app({"ENV_NAME": "testing", "DATABASE_URL": url, "BASE_URL": "http://127.0.0.1"})
    results = {}
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        db.drop_all()
        db.create_all()
        token = seed(events)
        db.session.remove()
    analyze(app)

    path = f"/ical/{token}.ics"
    with Server(app) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        cold, status, headers, body = timed_get(conn, path, {})
        assert status == 200, status
        results["cold"] = cold
        results["bytes"] = len(body)
        results["events"] = body.count(b"BEGIN:VEVENT")
        etag = headers["ETag"]
        analyze(app)  # as autovacuum would: the kept texts are new to the planner

        full = [timed_get(conn, path, {})[0] for _ in range(10)]
        results["warm_http"] = statistics.median(full)

        not_modified = []
        for _ in range(polls):
            elapsed, status, _, _ = timed_get(conn, path, {"If-None-Match": etag})
            assert status == 304, status
            not_modified.append(elapsed)
        results["304_p50"] = statistics.median(not_modified)
        results["304_p95"] = percentile(not_modified, 0.95)
        results["304_p99"] = percentile(not_modified, 0.99)
        # For context: the same machine's noise on the smallest answer there is.
        health = [timed_get(conn, "/healthz", {})[0] for _ in range(polls)]
        results["health_p50"] = statistics.median(health)
        results["health_p95"] = percentile(health, 0.95)
        conn.close()

    with app.app_context():
        feed = feeds.open_token_feed(db.session, token)
        warm = []
        for _ in range(10):
            started = time.perf_counter()
            feeds.render_feed(db.session, feed)
            warm.append(time.perf_counter() - started)
        results["warm"] = statistics.median(warm)
        scratch = []
        for _ in range(2):
            started = time.perf_counter()
            feeds.render_feed_from_scratch(db.session, feed)
            scratch.append(time.perf_counter() - started)
        results["scratch"] = min(scratch)
        db.session.rollback()
        db.session.remove()
        db.engine.dispose()

    print(f"\n{label}: {results['events']} events, {results['bytes'] / 1e6:.1f} MB")
    print(f"  cold first answer (builds and keeps every text) {ms(results['cold'])}")
    print(
        f"  warm build from kept texts, in-process (median)  {ms(results['warm'])}"
        f"   target < 250 ms  {'OK' if results['warm'] < 0.25 else 'MISSED'}"
    )
    print(f"  warm full 200 answer over HTTP (median)         {ms(results['warm_http'])}")
    print(
        f"  304 over HTTP, {polls} polls: p50 {ms(results['304_p50'])}, "
        f"p95 {ms(results['304_p95'])}, p99 {ms(results['304_p99'])}"
        f"   target p95 < 10 ms  {'OK' if results['304_p95'] < 0.010 else 'MISSED'}"
    )
    print(
        f"  for context, GET /healthz (SELECT 1) over HTTP:  p50 {ms(results['health_p50'])}, "
        f"p95 {ms(results['health_p95'])}"
    )
    print(
        f"  for comparison: icalendar objects built per poll {ms(results['scratch'])}"
        f"   ({results['scratch'] / results['warm']:.0f}x the kept-text build)"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--polls", type=int, default=300)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG))
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("BOOKING_ENV", "testing")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (others' work skews the tails)")

    with tempfile.TemporaryDirectory() as folder:
        run("SQLite", f"sqlite:///{folder}/bench.sqlite3", args.events, args.polls)
    if not args.no_postgres:
        ensure_postgres_database(args.postgres)
        run("PostgreSQL", args.postgres, args.events, args.polls)


if __name__ == "__main__":
    main()
