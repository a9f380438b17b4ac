"""Availability of one resource over 31 days with 2,000 bookings in the span.

    .venv/bin/python bench/reservations_availability.py [--requests 300]

On PostgreSQL (``BENCH_DATABASE_URL``, its tables remade): a pooled resource
(an HPC partition of 64 GPU cards, bookings of 1 to 8 cards overlapping
freely) and an exclusive instrument (bookings back to back with gaps), each
with 2,000 live bookings in the 31 days asked about. ``GET
/api/v1/resources/{id}/availability?from=&to=`` is asked ``--requests`` times
in a row through gunicorn (1 sync worker, so the figure is one request's own
cost, not queueing); printed: p50, p95 and p99 in milliseconds (target: p95
under 20 ms), and the size of the answer.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from reservations_common import Gunicorn, make_app, percentile, reset_schema, seed_world

BOOKINGS = 2000
DAYS = 31


def add_bookings(app, world: dict, resource_id: int, pooled: bool, start: datetime) -> None:
    from sqlalchemy import insert

    from booking.extensions import db
    from booking.models.reservations import Reservation

    rng = random.Random(resource_id)
    rows = []
    span = timedelta(days=DAYS)
    step = span / BOOKINGS
    for n in range(BOOKINGS):
        if pooled:
            begin = start + timedelta(minutes=rng.randrange(0, DAYS * 24 * 60 - 240, 10))
            end = begin + timedelta(minutes=rng.choice((30, 60, 120, 240)))
            units = rng.randint(1, 8)
        else:  # back to back, a gap now and then
            begin = start + step * n
            end = begin + step * rng.choice((0.5, 0.75, 1.0))
            units = 1
        rows.append(
            {
                "resource_id": resource_id,
                "customer_org_id": world["org_ids"][n % len(world["org_ids"])],
                "user_id": world["user_ids"][n % len(world["user_ids"])],
                "start_at": begin,
                "end_at": end,
                "busy_start": begin,
                "busy_end": end,
                "exclusive": not pooled,
                "units": units,
                "status": "approved",
                "purpose": "bench",
                "customer_class": "enterprise",
                "price_snapshot": {},
                "estimated_cost": 0,
                "voucher_hold": 0,
                "sequence": 0,
                "created_at": datetime.now(UTC),
                "updated_at": datetime.now(UTC),
            }
        )
    with app.app_context():
        db.session.execute(insert(Reservation), rows)
        db.session.commit()


def timed_requests(port: int, path: str, count: int) -> tuple[list[float], int, dict]:
    timings, size, body = [], 0, {}
    for _ in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        began = time.perf_counter()
        connection.request("GET", path)
        answer = connection.getresponse()
        data = answer.read()
        timings.append((time.perf_counter() - began) * 1000)
        connection.close()
        if answer.status != 200:
            raise RuntimeError(f"{answer.status}: {data[:300]!r}")
        size, body = len(data), json.loads(data)
    return timings, size, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    app = make_app()
    print("making the schema and seeding …", flush=True)
    reset_schema(app)
    world = seed_world(
        app,
        resources=2,
        customers=20,
        providers=1,
        granularity_minutes=10,
        min_minutes=10,
        max_minutes=24 * 60,
        horizon_days=365,
        requires_approval=False,
    )
    pooled_id, exclusive_id = world["resource_ids"]
    from sqlalchemy import text

    from booking.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        conn.execute(
            text("UPDATE resources SET kind = 'hpc', capacity = 64 WHERE id = :id"),
            {"id": pooled_id},
        )
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    add_bookings(app, world, pooled_id, True, start)
    add_bookings(app, world, exclusive_id, False, start)
    window = (
        f"from={quote(start.isoformat())}&to={quote((start + timedelta(days=DAYS)).isoformat())}"
    )
    with Gunicorn("wsgi:app", workers=1) as server:
        for name, resource_id in (
            ("pooled (64 GPU cards)", pooled_id),
            ("exclusive", exclusive_id),
        ):
            path = f"/api/v1/resources/{resource_id}/availability?{window}"
            timed_requests(server.port, path, 10)  # warm-up
            timings, size, body = timed_requests(server.port, path, args.requests)
            print(
                f"{name:<22} p50 {percentile(timings, 50):6.1f} ms   "
                f"p95 {percentile(timings, 95):6.1f} ms   p99 {percentile(timings, 99):6.1f} ms   "
                f"({len(body['busy'])} busy, {len(body['free'])} free intervals, "
                f"{size / 1024:.0f} KiB)   target p95 < 20 ms"
            )


if __name__ == "__main__":
    main()
