"""Where the time of a request goes: the CPU each endpoint of the load mix
costs in the app (Python) and in PostgreSQL, and its statements, beside the
ceiling's read and write; robust to a shared machine, where wall-clock
figures are mostly queueing.

    .venv/bin/python bench/cost.py [--database-url URL] [--requests 30] [--json FILE]
        [--profile bench/profiles/mix.txt]

In this process, one request after another through Flask's test client (no
HTTP, no gunicorn): for each endpoint of ``load.MIX`` (built as the load
clients build them), 5 unmeasured requests, then ``--requests`` measured:

- *app CPU*: this process's CPU time (``time.process_time``);
- *PostgreSQL CPU*: the CPU time of the server processes serving this
  process's connections (``/proc/<pid>/stat``, found by their
  ``application_name``; resolution 10 ms, so an average over the requests);
- *statements*: SQL statements sent, and their wall time.

The ceiling (``bench/bare_app.py``) is measured the same way. Its cost in
the mix's proportions over the platform's is the throughput ratio the CPU
allows: what the mixed workload can reach on any machine where the CPU is
the limit, whatever else runs beside it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import generate  # noqa: E402
import load  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(conn, name: str) -> float:
    """CPU seconds so far of the server processes named ``name``."""
    pids = [
        row[0]
        for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()
    ]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


class Counter:
    """Statements sent through a SQLAlchemy engine, and their wall time."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.count, self.seconds = 0, 0.0
        event.listen(engine, "before_cursor_execute", self.before)
        event.listen(engine, "after_cursor_execute", self.after)

    def before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["cost_started"] = time.perf_counter()

    def after(self, conn, cursor, statement, parameters, context, executemany):
        self.count += 1
        self.seconds += time.perf_counter() - conn.info.pop("cost_started", time.perf_counter())


def measure(
    send,
    builds,
    monitor,
    name: str,
    requests: int,
    counter=None,
    warmup: int = 5,
    count_calls: bool = False,
) -> dict:
    """``requests`` of one endpoint after ``warmup`` unmeasured; with
    ``count_calls``, as many more under cProfile for the Python calls a
    request makes (not timed: a count, the same on a busy machine)."""
    walls = []
    for _ in range(warmup):
        send(builds())
    cpu0, pg0 = time.process_time(), monitor()
    statements0 = (counter.count, counter.seconds) if counter else (0, 0.0)
    statuses: dict[str, int] = {}
    for _ in range(requests):
        request = builds()
        started = time.perf_counter()
        status = send(request)
        walls.append(time.perf_counter() - started)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    app_cpu = (time.process_time() - cpu0) / requests * 1000
    pg_cpu = (monitor() - pg0) / requests * 1000
    row = {
        "wall_p50": load.percentile(walls, 0.5) * 1000,
        "app_cpu": app_cpu,
        "pg_cpu": pg_cpu,
        "cpu": app_cpu + pg_cpu,
        "statuses": statuses,
    }
    if counter:
        row["statements"] = (counter.count - statements0[0]) / requests
        row["sql_wall"] = (counter.seconds - statements0[1]) / requests * 1000
    if count_calls:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            send(builds())
        profiler.disable()
        row["calls"] = pstats.Stats(profiler).total_calls / requests
    return row


def run(
    url: str,
    requests: int = 30,
    profile: str | None = None,
    sequence: int = 0,
    calls: bool = False,
    log=print,
) -> dict:
    import psycopg
    from sqlalchemy import create_engine

    from booking import create_app
    from booking.extensions import db

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    engine = create_engine(dsn.replace("postgresql://", "postgresql+psycopg://"))
    world = load.load_world(engine, datetime.now(UTC), feeds=40, lab_feeds=4, resource_feeds=30)
    engine.dispose()
    workload = load.Workload(world)
    app = create_app(
        {
            "ENV_NAME": "production",
            "DATABASE_URL": dsn,
            "SECRET_KEY": "bench-cost-secret-key-0123456789abcdef",
            "BASE_URL": "http://127.0.0.1",
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"application_name": "bench-cost"}},
            # as the load run has it (load.Gunicorn): feeds polled many times a minute
            "FEED_RATE_LIMIT": "100000 per minute",
        }
    )
    gc.collect()
    gc.freeze()  # as wsgi.py does for gunicorn's workers
    client = app.test_client()
    admin = psycopg.connect(dsn, autocommit=True)

    def monitor(name="bench-cost"):
        return backend_cpu(admin, name)

    # the feeds built once and their ETags kept, as before the load run
    paths = [f"/ical/{t}.ics" for t in world.personal_feeds + world.lab_feeds]
    paths += [
        f"/ical/resources/{r}.ics"
        for r in dict.fromkeys(p[0] for p in world.pairs[: world.resource_feeds])
    ]
    for path in paths:
        answer = client.get(path)
        if answer.status_code == 200 and answer.headers.get("ETag"):
            workload.etags[path] = answer.headers["ETag"]

    def send(request) -> int:
        answer = client.open(
            request.path, method=request.method, data=request.body, headers=request.headers
        )
        if request.after is not None:
            request.after(answer.status_code, answer.data, _Headers(answer))
        return answer.status_code

    with app.app_context():
        counter = Counter(db.engine)
    rows = {}
    profiler = None
    if profile:
        import cProfile

        # CPU time, not wall: on a shared machine the wall clock is mostly waiting
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    for index, (name, kind, _share) in enumerate(load.MIX):
        rng = random.Random(300 + index)
        rows[name] = measure(
            send,
            lambda n=name, r=rng: workload.build(n, r),
            monitor,
            name,
            requests,
            counter,
            count_calls=calls and not profile,
        )
        rows[name]["kind"] = kind
        log(_line(name, rows[name]))
    if profiler:
        profiler.disable()
        write_profile(profiler, Path(profile))
    sequence_row = None
    if sequence:
        # The mix as the load's clients send it, one request after another:
        # what the platform keeps between requests (the catalog's resources,
        # feeds' texts) is used as it is in a run, not cold per endpoint.
        rng = random.Random(500)
        sequence_row = measure(
            send,
            lambda: workload.build(workload.pick(rng), rng),
            monitor,
            "sequence",
            sequence,
            counter,
            warmup=sequence // 2,
            count_calls=calls,
        )
        log(_line("mix in sequence", sequence_row))

    os.environ["DATABASE_URL"] = dsn + ("&" if "?" in dsn else "?") + "application_name=bench-bare"
    os.environ["BARE_ORG_ID"] = str(world.sample_bare_user[1])
    os.environ["BARE_USER_ID"] = str(world.sample_bare_user[0])
    import bare_app

    bare_client = bare_app.app.test_client()
    bare = load.BareWorkload(workload)

    def send_bare(request) -> int:
        answer = bare_client.open(
            request.path, method=request.method, data=request.body, headers=request.headers
        )
        return answer.status_code

    rng = random.Random(400)
    for name, endpoint in (("bare read", "search"), ("bare write", "book")):
        rows[name] = measure(
            send_bare,
            lambda e=endpoint: bare.build(e, rng),
            lambda: monitor("bench-bare"),
            name,
            requests * 3,
        )
        rows[name]["statements"] = 1.0
        log(_line(name, rows[name]))
    with engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(text("DELETE FROM reservations WHERE purpose = 'bare-bench'"))
    engine.dispose()
    admin.close()

    shares = {name: share for name, _kind, share in load.MIX}
    total = sum(shares.values())
    platform = sum(rows[n]["cpu"] * s for n, s in shares.items()) / total
    ceiling = (
        sum(
            rows["bare write" if rows[n]["kind"] == "write" else "bare read"]["cpu"] * s
            for n, s in shares.items()
        )
        / total
    )
    statements = sum(rows[n]["statements"] * s for n, s in shares.items()) / total
    app_share = sum(rows[n]["app_cpu"] * s for n, s in shares.items()) / total / platform
    return {
        "requests": requests,
        "endpoints": rows,
        "mix": {
            "platform_cpu_ms": platform,
            "ceiling_cpu_ms": ceiling,
            "ratio_allowed": ceiling / platform,
            "statements": statements,
            "app_share": app_share,
            "sequence": sequence_row,
        },
        "load": os.getloadavg(),
    }


def write_profile(profiler, path: Path) -> None:
    """cProfile of every endpoint of the mix (the same number of requests
    each), by cumulative and by own time."""
    import io
    import pstats

    out = io.StringIO()
    out.write(
        "cProfile of the mix, every endpoint alike, in process (bench/cost.py), in CPU "
        "seconds of the app's process (waiting for PostgreSQL costs none)\n\n"
    )
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(90)
    stats.sort_stats("tottime").print_stats(40)
    path.parent.mkdir(exist_ok=True)
    path.write_text(out.getvalue().replace(str(ROOT) + "/", "").replace(sys.prefix + "/", ""))


def _line(name: str, row: dict) -> str:
    calls = f"{row['calls']:8.0f}" if "calls" in row else ""
    return (
        f"  {name:<18}{row['wall_p50']:9.1f}{row['app_cpu']:9.1f}{row['pg_cpu']:9.1f}"
        f"{row.get('statements', 0):8.1f}{calls}  {row['statuses']}"
    )


class _Headers:
    def __init__(self, response):
        self.response = response

    def getheader(self, name: str):
        return self.response.headers.get(name)


def print_report(out: dict, file=sys.stdout) -> None:
    print(
        f"{'endpoint':<20}{'wall p50':>9}{'app CPU':>9}{'PG CPU':>9}{'stmts':>8}"
        + (f"{'calls':>8}" if "calls" in out["endpoints"]["search"] else "")
        + "  (ms a request, in process)",
        file=file,
    )
    for name, row in out["endpoints"].items():
        print(_line(name, row), file=file)
    mix = out["mix"]
    print(
        f"mix: platform {mix['platform_cpu_ms']:.1f} ms CPU a request "
        f"({mix['app_share'] * 100:.0f} % of it in the app, {mix['statements']:.1f} statements), "
        f"ceiling {mix['ceiling_cpu_ms']:.1f} ms: the CPU allows a ratio of "
        f"{mix['ratio_allowed']:.2f}; load average {out['load'][0]:.2f}",
        file=file,
    )
    row = mix.get("sequence")
    if row:
        print(
            f"mix in sequence: {row['cpu']:.1f} ms CPU a request ({row['app_cpu']:.1f} in the "
            f"app, {row['pg_cpu']:.1f} in PostgreSQL, {row['statements']:.1f} statements"
            + (f", {row['calls']:.0f} Python calls" if "calls" in row else "")
            + "): "
            f"the CPU allows a ratio of {mix['ceiling_cpu_ms'] / row['cpu']:.2f}",
            file=file,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", generate.DEFAULT_URL)
    )
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--json")
    parser.add_argument("--profile", help="write a cProfile of the mix to this file")
    parser.add_argument(
        "--calls",
        action="store_true",
        help="also count the Python calls a request makes (a figure the machine's noise "
        "does not move: compare code with it; not with --profile)",
    )
    parser.add_argument(
        "--sequence",
        type=int,
        default=0,
        help="also this many requests of the mix in sequence, drawn as the load's clients "
        "draw them, after half as many unmeasured",
    )
    args = parser.parse_args()
    out = run(
        args.database_url,
        args.requests,
        profile=args.profile,
        sequence=args.sequence,
        calls=args.calls,
        log=lambda *_: None,
    )
    print_report(out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
