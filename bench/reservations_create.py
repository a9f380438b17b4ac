"""Booking under load: the reservation API against a bare INSERT, in one run.

    .venv/bin/python bench/reservations_create.py [--seconds 20] [--connections 32]

On PostgreSQL (``BENCH_DATABASE_URL``, its tables remade), 1,000 resources
(around the clock; every other one needs approval) and 32 customers with
API tokens. wrk (Debian's ``wrk``) drives 32 connections, each request a
random resource and a 1- to 3-hour slot, against the two endpoints below.
Both get the same mix of free and conflicting slots, whatever their speed:
before each measured run every resource is booked for one whole day (the
"taken day"), and a fixed share of the requests (``--conflicts``, 25 %)
asks for a slot on that day, which is refused; the rest ask for a slot
anywhere in 60 other days, so few of them collide even at the bare
endpoint's rate (its table fills by a few per cent in a run). (Until 6 Dec
2026 all requests drew from two days' slots: the faster endpoint filled
them within seconds, so two thirds of its answers were cheap refusals and
the two endpoints were measured on different mixes.)

1. the bare endpoint (``POST /write`` of ``bench/bare_app.py``: one INSERT under
   the same exclusion constraint, nothing else), gunicorn with 4 sync
   workers;
2. ``POST /api/v1/reservations`` of the platform (authentication, every rule,
   row lock, conflict check with suggestions, savepoint, audit, events),
   gunicorn with 4 sync workers.

With ``--engine-only`` a third run serves the API with the other areas'
side effects switched off (``bench/reservations_engine_app.py``: no
notification subscribers, no feed refresh), to show the engine's own share.

Each gets a short warm-up, then the table is emptied and the measured run
starts. Printed: requests a second, p50/p95/p99 latency, status counts, the
ratio of the two; then a SQL check that no two live bookings of a resource
overlap, and the count of 5xx answers (must be 0).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
from datetime import date, datetime, time, timedelta
from pathlib import Path
from time import monotonic, sleep
from zoneinfo import ZoneInfo

import bare_app
from reservations_common import DATABASE_URL, Gunicorn, make_app, reset_schema, seed_world

SH = ZoneInfo("Asia/Shanghai")
RESOURCES = 1000
CUSTOMERS = 32

LUA = r"""
local tokens = {%(tokens)s}
local free_days = {%(free_days)s}
local taken_day = "%(taken_day)s"
local conflicts = %(conflicts)s
local resources = {%(resources)s}
local path = "%(path)s"
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(id * 7919 + os.time())
  statuses = {}
end

function request()
  local r = resources[math.random(#resources)]
  local day = free_days[math.random(#free_days)]
  if math.random() < conflicts then day = taken_day end
  local hour = math.random(0, 20)
  local length = math.random(1, 3)
  local body = string.format(
    '{"resource_id": %%d, "start": "%%sT%%02d:00:00+08:00", '
    .. '"end": "%%sT%%02d:00:00+08:00", "purpose": "bench"}',
    r, day, hour, day, hour + length)
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses")
    for code, n in pairs(seen) do total[code] = (total[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(total) do table.insert(parts, string.format('"%%d": %%d', code, n)) end
  io.write(string.format(
    'WRK {"requests": %%d, "seconds": %%f, "errors": %%d, '
    .. '"p50": %%d, "p95": %%d, "p99": %%d, "statuses": {%%s}}\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    table.concat(parts, ", ")))
end
"""


FREE_DAYS = 60


def taken_day() -> date:
    """The day every resource is booked for before a measured run."""
    return datetime.now(SH).date() + timedelta(days=3)


def free_days() -> list[date]:
    first = taken_day() + timedelta(days=2)
    return [first + timedelta(days=n) for n in range(FREE_DAYS)]


def lua_script(world: dict, path: str, conflicts: float) -> str:
    return LUA % {
        "tokens": ", ".join(f'"{t}"' for t in world["tokens"]),
        "free_days": ", ".join(f'"{d.isoformat()}"' for d in free_days()),
        "taken_day": taken_day().isoformat(),
        "conflicts": repr(conflicts),
        "resources": ", ".join(str(r) for r in world["resource_ids"]),
        "path": path,
    }


def wrk(port: int, script: Path, seconds: int, connections: int) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    result = json.loads(line[4:])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def wait_until_quiet(conn, timeout: float = 30) -> None:
    """Wait for the requests wrk left in flight to finish: no other session
    of the database in a transaction."""
    from sqlalchemy import text

    deadline = monotonic() + timeout
    busy = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND state <> 'idle'"
    )
    while conn.execute(busy).scalar_one() and monotonic() < deadline:
        sleep(0.1)


def empty_bookings(app, world: dict) -> None:
    """No bookings but the taken day's: one for each resource, all day."""
    from sqlalchemy import text

    from booking.extensions import db

    start = datetime.combine(taken_day(), time(0), tzinfo=SH)
    with app.app_context(), db.engine.begin() as conn:
        wait_until_quiet(conn)
        conn.execute(text("TRUNCATE reservations, audit_events RESTART IDENTITY CASCADE"))
        # The bare endpoint's own INSERT, one row a resource.
        conn.exec_driver_sql(
            bare_app.INSERT,
            [
                {
                    "resource_id": resource_id,
                    "org": world["org_ids"][-1],
                    "user": world["user_ids"][-1],
                    "start": start,
                    "end": start + timedelta(days=1),
                    "purpose": "taken day",
                }
                for resource_id in world["resource_ids"]
            ],
        )


def overlaps(app) -> int:
    from sqlalchemy import text

    from booking.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM reservations a JOIN reservations b "
                "ON a.resource_id = b.resource_id AND a.id < b.id "
                "AND tstzrange(a.busy_start, a.busy_end) && tstzrange(b.busy_start, b.busy_end) "
                "WHERE a.status IN ('requested', 'approved', 'in_use') "
                "AND b.status IN ('requested', 'approved', 'in_use')"
            )
        ).scalar_one()


def booked(app) -> int:
    from sqlalchemy import text

    from booking.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM reservations")).scalar_one()


def measure(
    app, world: dict, server: Gunicorn, script: Path, seconds: int, connections: int
) -> dict:
    with server:
        wrk(server.port, script, 3, connections)  # warm-up: imports, connections, caches
        empty_bookings(app, world)
        result = wrk(server.port, script, seconds, connections)
    result["overlaps"] = overlaps(app)
    result["rows"] = booked(app)
    return result


def report(name: str, r: dict) -> None:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
    fivexx = sum(v for k, v in r["statuses"].items() if int(k) >= 500)
    print(
        f"{name:<28} {r['rps']:8.1f} req/s   p50 {r['p50'] / 1000:7.1f} ms   "
        f"p95 {r['p95'] / 1000:7.1f} ms   p99 {r['p99'] / 1000:7.1f} ms"
    )
    refused = r["statuses"].get("409", 0) / max(1, r["requests"])
    print(
        f"{'':<28} answers {{{statuses}}} ({refused:.0%} refused); socket errors "
        f"{r['errors']}; 5xx {fivexx}; rows {r['rows']} ({RESOURCES} of the taken day); "
        f"overlapping live pairs {r['overlaps']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--conflicts",
        type=float,
        default=0.25,
        help="share of the requests asking for a slot already taken (default 0.25)",
    )
    parser.add_argument(
        "--engine-only",
        action="store_true",
        help="also measure the API with the other areas' side effects (notifications, "
        "feed refresh) switched off (bench/reservations_engine_app.py)",
    )
    args = parser.parse_args()
    random.seed(7)

    app = make_app()
    print(f"database {DATABASE_URL}: making the schema and seeding …", flush=True)
    reset_schema(app)
    world = seed_world(
        app,
        resources=RESOURCES,
        customers=CUSTOMERS,
        granularity_minutes=60,
        min_minutes=60,
        max_minutes=480,
        lead_minutes=0,
        horizon_days=365,
        requires_approval=False,
    )
    from sqlalchemy import text

    from booking.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("UPDATE resources SET requires_approval = (id % 2 = 0)"))

    tmp = Path(tempfile.mkdtemp(prefix="bench-reservations-"))
    bare_script, api_script = tmp / "bare.lua", tmp / "api.lua"
    bare_script.write_text(lua_script(world, "/write", args.conflicts))
    api_script.write_text(lua_script(world, "/api/v1/reservations", args.conflicts))
    print(
        f"{RESOURCES} resources, {CUSTOMERS} customers; {args.conflicts:.0%} of the requests "
        f"on the taken day, the rest over {FREE_DAYS} days; "
        f"wrk -c{args.connections} for {args.seconds}s per endpoint, gunicorn "
        f"{args.workers} sync workers",
        flush=True,
    )

    bare_env = {
        "BARE_ORG_ID": str(world["org_ids"][0]),
        "BARE_USER_ID": str(world["user_ids"][0]),
    }
    bare = measure(
        app,
        world,
        Gunicorn("bench.bare_app:app", args.workers, bare_env),
        bare_script,
        args.seconds,
        args.connections,
    )
    api = measure(
        app, world, Gunicorn("wsgi:app", args.workers), api_script, args.seconds, args.connections
    )

    engine = None
    if args.engine_only:
        engine = measure(
            app,
            world,
            Gunicorn("bench.reservations_engine_app:app", args.workers),
            api_script,
            args.seconds,
            args.connections,
        )

    print()
    report("bare INSERT endpoint", bare)
    report("POST /api/v1/reservations", api)
    if engine is not None:
        report("  the same, engine only", engine)
        print(f"{'':<28} engine-only ratio to bare: {engine['rps'] / bare['rps']:.2f}")
    ratio = api["rps"] / bare["rps"]
    p99_ratio = api["p99"] / bare["p99"]
    fivexx = sum(v for k, v in api["statuses"].items() if int(k) >= 500)
    print()
    print(f"throughput ratio (API / bare): {ratio:.2f}   (target ≥ 0.50)")
    print(f"p99 ratio (API / bare):        {p99_ratio:.2f}   (target ≤ 2.00)")
    print(f"API 5xx answers:               {fivexx}   (target 0)")
    print(f"overlapping live bookings:     {api['overlaps']}   (target 0, by SQL)")


if __name__ == "__main__":
    main()
