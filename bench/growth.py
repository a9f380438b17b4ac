"""How the cost of each request grows with the data: every endpoint of the
load benchmark timed on the same province at 10k, 100k and 1M bookings.

    .venv/bin/python bench/growth.py [--sizes 10000,100000,1000000]
        [--requests 60] [--profile] [--json growth.json] [--national-url URL]

Each size is a database of its own made by ``bench/generate.py`` (the
province's world, ``--sizes`` bookings: ``<prefix>_growth_<n>``; the 1M one
is ``<prefix>_load`` when that holds the province at 1M; prefix
``BENCH_DB_PREFIX``, default ``bench``), made when missing, and settled
(``VACUUM ANALYZE``, ``CHECKPOINT``) before measuring. The sizes are
timed side by side: one gunicorn with one sync worker per database, and
for each endpoint of ``load.MIX`` (built as the load clients build them,
with the same seed), plus a feed's full answer (no ``If-None-Match``),
``--requests`` requests sent to the sizes in turn, one client, request
after request (the cost of a request, not of queueing; the machine's
noise falls on every size alike). Printed: the median and p95 of each at
each size, the ratio of the largest to the smallest (target ≤ 1.5: an
index keeps the cost flat; more says it grows) and the power of the
bookings the median grows with.

``--profile``: the endpoints above the target (or slower than 100 ms at the
largest size) are run again in this process under pyinstrument on the
largest database; their SQL is timed statement by statement, the slowest
statement explained (``EXPLAIN ANALYZE``); all of it is written to
``bench/profiles/<endpoint>.txt``.

``--national-url``: the same timings on a database made with
``generate.py --size national --bookings N`` (100,000 resources, 250,000
enterprises, N bookings), to see what a 50 times larger catalog costs;
the 50-million-booking figure is extrapolated from the growth measured.
"""

from __future__ import annotations

import argparse
import http.client
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

PROFILES = ROOT / "bench" / "profiles"
TARGET = 1.5
EXTRA = ["feed (personal, full)"]


def url_for(bookings: int) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{generate.DB_PREFIX}_growth_{bookings}"


def existing_meta(url: str) -> dict | None:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return generate.read_meta(conn)
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def settle_database(url: str, log=print) -> None:
    """``VACUUM ANALYZE`` and ``CHECKPOINT`` one size's database, so that the
    sizes are compared in the same state. ``bench/run.py``'s mixed run has just
    written to the largest: the pages it touched lose their all-visible bit,
    and counting a big customer's bookings then reads those pages too (8.5 ms
    for 5,266 bookings, 0.7 ms after the vacuum), while the smaller databases
    are as generated."""
    from sqlalchemy import create_engine

    engine = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as conn:
            generate.settle(conn, log)
    finally:
        engine.dispose()


def database_for(bookings: int, size: str = "province", regenerate: bool = False, log=print) -> str:
    """The database holding the province with ``bookings`` bookings, made
    if missing (or too old: its future must still be ahead)."""
    candidates = [url_for(bookings)]
    if size == "province" and bookings == generate.SIZES["province"].bookings:
        candidates.insert(0, generate.DEFAULT_URL)
    for url in candidates:
        meta = None if regenerate else existing_meta(url)
        if meta and meta.get("size") == size and meta.get("target_bookings") == bookings:
            made = datetime.fromisoformat(meta["generated_at"])
            if (datetime.now(UTC) - made).days < 7:
                return url
    url = candidates[-1]
    log(f"generating {size} with {bookings:,} bookings into {url} …")
    generate.recreate_database(url)
    app = generate.make_app(url)
    generate.create_schema(app)
    generate.generate(app, generate.SIZES[size], bookings=bookings, log=log)
    return url


class Stream:
    """Requests of one endpoint to one server, built as the load clients
    build them, one at a time (``step``); the first ``skip`` unmeasured."""

    def __init__(self, port: int, workload, name: str, seed: int, skip: int = 5):
        self.workload, self.name, self.skip = workload, name, skip
        self.rng = random.Random(seed)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.timings: list[float] = []
        self.statuses: dict[str, int] = {}

    def step(self) -> None:
        full = self.name == "feed (personal, full)"
        request = self.workload.build("feed (personal)" if full else self.name, self.rng)
        headers = dict(request.headers)
        if full:
            headers.pop("If-None-Match", None)
        started = time.perf_counter()
        try:
            self.conn.request(request.method, request.path, request.body, headers)
            response = self.conn.getresponse()
            data = response.read()
            status = response.status
            if response.will_close:
                self.conn.close()
        except (OSError, http.client.HTTPException):
            status, data, response = 0, b"", None
            self.conn.close()
        elapsed = time.perf_counter() - started
        if request.after is not None:
            request.after(status, data, response)
        if self.skip:
            self.skip -= 1
            return
        self.timings.append(elapsed)
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1

    def figures(self) -> dict:
        self.conn.close()
        return {
            "p50": load.percentile(self.timings, 0.5) * 1000,
            "p95": load.percentile(self.timings, 0.95) * 1000,
            "statuses": self.statuses,
        }


def timed(port: int, workload, name: str, requests: int, seed: int) -> dict:
    """``requests`` of one endpoint, one after the other, after 5 unmeasured."""
    stream = Stream(port, workload, name, seed)
    for _ in range(requests + 5):
        stream.step()
    return stream.figures()


def measure_side_by_side(urls: dict[int, str], requests: int, log=print) -> dict:
    """Every size at once: one gunicorn (one sync worker) per database, and
    for each endpoint its requests sent to the sizes in turn, one request to
    each, so the machine's noise (it is shared) falls on all sizes alike."""
    from contextlib import ExitStack

    from sqlalchemy import create_engine

    sides = {}
    for bookings, url in urls.items():
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        # fewer feeds than the load run polls: each is built once (cold) before the timing
        world = load.load_world(engine, datetime.now(UTC), feeds=40, lab_feeds=4, resource_feeds=30)
        with engine.connect() as conn:
            meta = generate.read_meta(conn)
        engine.dispose()
        sides[bookings] = {"workload": load.Workload(world), "meta": meta}
    figures: dict[int, dict] = {bookings: {} for bookings in urls}
    with ExitStack() as stack:
        for bookings, url in urls.items():
            server = stack.enter_context(load.Gunicorn("wsgi:app", url, workers=1))
            sides[bookings]["port"] = server.port
            load.warm_feeds(server.port, sides[bookings]["workload"])
        for index, name in enumerate([n for n, _k, _s in load.MIX] + EXTRA):
            streams = {
                b: Stream(side["port"], side["workload"], name, seed=100 + index)
                for b, side in sides.items()
            }
            for _ in range(requests + 5):
                for stream in streams.values():
                    stream.step()
            for bookings, stream in streams.items():
                figures[bookings][name] = stream.figures()
            log(
                f"  {name:<24} p50 "
                + "  ".join(f"{figures[b][name]['p50']:8.1f}" for b in urls)
                + " ms   "
                + " ".join(str(figures[b][name]["statuses"]) for b in urls)
            )
    average = os.getloadavg()
    return {
        str(bookings): {
            "bookings": sides[bookings]["meta"]["counts"].get("reservations"),
            "meta": sides[bookings]["meta"],
            "endpoints": figures[bookings],
            "load": average,
        }
        for bookings in urls
    }


def measure(url: str, requests: int, log=print) -> dict:
    return measure_side_by_side({0: url}, requests, log=log)["0"]


def verdicts(results: dict) -> dict:
    sizes = sorted(results, key=int)
    low, high = results[sizes[0]]["endpoints"], results[sizes[-1]]["endpoints"]
    found = {}
    for name in high:
        ratio = high[name]["p50"] / low[name]["p50"] if low.get(name) else float("nan")
        found[name] = {
            "ratio": ratio,
            "flat": ratio <= TARGET,
            "exponent": exponent(results, name),
        }
    return found


def exponent(results: dict, name: str) -> float:
    """How the median grows with the bookings, as a power ``k`` of their
    number (``p50 ∝ n^k``, least squares on logarithms over every size
    measured; 0 for a flat cost, 1 for a cost proportional to the data)."""
    import math

    points = [
        (math.log(row["bookings"]), math.log(row["endpoints"][name]["p50"]))
        for row in results.values()
        if row["endpoints"].get(name, {}).get("p50", 0) > 0 and row["bookings"]
    ]
    if len(points) < 2:
        return float("nan")
    mx = sum(x for x, _y in points) / len(points)
    my = sum(y for _x, y in points) / len(points)
    spread = sum((x - mx) ** 2 for x, _y in points)
    return sum((x - mx) * (y - my) for x, y in points) / spread if spread else float("nan")


def extrapolate(results: dict, bookings: int = 50_000_000) -> dict:
    """Median at ``bookings``: the largest size's median grown by the power
    law fitted over all sizes (``exponent``; below 0, taken as 0). A rough
    guess: noise at small sizes moves the exponent, and a cost that grows as
    a logarithm (an index lookup) grows less than any power."""
    sizes = sorted(results, key=int)
    if len(sizes) < 2:
        return {}
    largest = results[sizes[-1]]
    out = {}
    for name, row in largest["endpoints"].items():
        k = exponent(results, name)
        if k == k:  # not nan
            out[name] = row["p50"] * (bookings / largest["bookings"]) ** max(0.0, k)
    return out


def print_table(results: dict, national: dict | None = None, out=sys.stdout) -> None:
    sizes = sorted(results, key=int)
    found = verdicts(results)
    guess = extrapolate(results)
    head = "".join(f"{int(s):>12,}" for s in sizes)
    extra = f"{'national*':>12}" if national else ""
    print(f"{'median ms at bookings':<24}{head}{extra}{'ratio':>8}{'50M (est.)':>12}", file=out)
    for name in results[sizes[-1]]["endpoints"]:
        cells = "".join(
            f"{results[s]['endpoints'].get(name, {}).get('p50', float('nan')):12.1f}" for s in sizes
        )
        if national:
            cells += f"{national['endpoints'].get(name, {}).get('p50', float('nan')):12.1f}"
        verdict = found[name]
        mark = "" if verdict["flat"] else "  grows"
        print(
            f"{name:<24}{cells}{verdict['ratio']:8.2f}{guess.get(name, float('nan')):12.1f}{mark}",
            file=out,
        )


# --- profiling ----------------------------------------------------------------------------------


def profile(url: str, names: list[str], requests: int = 20, log=print) -> dict[str, str]:
    """Each endpoint in this process: pyinstrument's call tree, the SQL it
    ran with the time of each statement, and the plan of the slowest."""
    import psycopg
    from sqlalchemy import create_engine, event

    os.environ.setdefault("SECRET_KEY", "bench-profile-secret-key-0123456789")
    from booking import create_app
    from booking.extensions import db

    app = create_app({"ENV_NAME": "production", "DATABASE_URL": url, "SECRET_KEY": "x" * 40})
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    world = load.load_world(engine, datetime.now(UTC))
    engine.dispose()
    workload = load.Workload(world)
    client = app.test_client()
    PROFILES.mkdir(exist_ok=True)
    written = {}
    for name in names:
        rng = random.Random(7)
        statements: list[tuple[float, str, object]] = []
        with app.app_context():
            target = db.engine

        def before(conn, cursor, statement, parameters, context, executemany):
            conn.info.setdefault("started", []).append(time.perf_counter())

        def after(conn, cursor, statement, parameters, context, executemany):
            began = conn.info["started"].pop()
            # the listener is removed before the loop moves on: this iteration's list
            statements.append((time.perf_counter() - began, statement, parameters))  # noqa: B023

        def send(request):
            full = name == "feed (personal, full)"  # noqa: B023 (called in this iteration only)
            headers = dict(request.headers)
            if full:
                headers.pop("If-None-Match", None)
            return client.open(
                request.path, method=request.method, data=request.body, headers=headers
            )

        base = "feed (personal)" if name == "feed (personal, full)" else name
        for _ in range(3):
            request = workload.build(base, rng)
            response = send(request)
            if request.after:
                request.after(response.status_code, response.data, _Headers(response))
        event.listen(target, "before_cursor_execute", before)
        event.listen(target, "after_cursor_execute", after)
        profiler = _profiler()
        profiler.start()
        started = time.perf_counter()
        for _ in range(requests):
            request = workload.build(base, rng)
            response = send(request)
            if request.after:
                request.after(response.status_code, response.data, _Headers(response))
        elapsed = (time.perf_counter() - started) / requests
        profiler.stop()
        event.remove(target, "before_cursor_execute", before)
        event.remove(target, "after_cursor_execute", after)
        by_sql: dict[str, list] = {}
        for seconds, sql, params in statements:
            entry = by_sql.setdefault(sql, [0.0, 0, params])
            entry[0] += seconds
            entry[1] += 1
        ranked = sorted(by_sql.items(), key=lambda kv: -kv[1][0])
        lines = [
            f"{name}: {elapsed * 1000:.1f} ms a request in process ({requests} requests), "
            f"{len(statements) / requests:.1f} statements a request, "
            f"{sum(s for s, _q, _p in statements) / requests * 1000:.1f} ms of them in SQL",
            "",
            "Statements by total time (ms a request, count a request):",
        ]
        for sql, (seconds, count, _params) in ranked[:8]:
            lines.append(
                f"  {seconds / requests * 1000:7.2f} ms  ×{count / requests:4.1f}  "
                + " ".join(sql.split())[:400]
            )
        if ranked:
            sql, (_seconds, _count, params) = ranked[0]
            dsn = url
            try:
                with psycopg.connect(dsn) as conn:
                    plan = conn.execute(
                        "EXPLAIN (ANALYZE, BUFFERS) " + sql,
                        params if isinstance(params, dict | tuple | list) else None,
                    ).fetchall()
                    conn.rollback()
                lines += ["", "Plan of the slowest statement:"] + ["  " + r[0] for r in plan]
            except psycopg.Error as error:
                lines += ["", f"(no plan: {error})"]
        lines += ["", profiler.text()]
        text = "\n".join(lines)
        path = (
            PROFILES
            / f"{name.replace(' ', '_').replace('(', '').replace(')', '').replace(',', '')}.txt"
        )
        path.write_text(text)
        written[name] = str(path.relative_to(ROOT))
        log(f"  profile of {name}: {elapsed * 1000:.1f} ms a request → {written[name]}")
    return written


class _CProfile:
    """cProfile where pyinstrument is not installed: the functions by
    cumulative time, then by own time."""

    def __init__(self):
        import cProfile

        self.profile = cProfile.Profile()

    def start(self) -> None:
        self.profile.enable()

    def stop(self) -> None:
        self.profile.disable()

    def text(self) -> str:
        import io
        import pstats

        out = io.StringIO()
        out.write("cProfile, by cumulative time:\n")
        stats = pstats.Stats(self.profile, stream=out).strip_dirs()
        stats.sort_stats("cumulative").print_stats(45)
        out.write("cProfile, by own time:\n")
        stats.sort_stats("tottime").print_stats(30)
        return out.getvalue()


class _Pyinstrument:
    def __init__(self):
        from pyinstrument import Profiler

        self.profile = Profiler(interval=0.0005)

    def start(self) -> None:
        self.profile.start()

    def stop(self) -> None:
        self.profile.stop()

    def text(self) -> str:
        return self.profile.output_text(unicode=False, color=False, show_all=False)


def _profiler():
    """pyinstrument's call tree where it is installed, cProfile otherwise."""
    try:
        return _Pyinstrument()
    except ImportError:
        return _CProfile()


class _Headers:
    """What the workload's bookkeeping reads of an answer (``getheader``)."""

    def __init__(self, response):
        self.response = response

    def getheader(self, name: str):
        return self.response.headers.get(name)


def run(
    sizes: list[int],
    requests: int,
    *,
    regenerate=False,
    do_profile=False,
    national_url: str | None = None,
    log=print,
) -> dict:
    urls = {bookings: database_for(bookings, regenerate=regenerate, log=log) for bookings in sizes}
    for url in urls.values():
        settle_database(url, log)
    log("side by side, median ms at " + ", ".join(f"{b:,}" for b in sizes) + " bookings:")
    results = measure_side_by_side(urls, requests, log=log)
    national = None
    if national_url:
        log(f"national world ({national_url}):")
        national = measure(national_url, requests, log=log)
    out = {
        "requests": requests,
        "sizes": results,
        "verdicts": verdicts(results),
        "extrapolated_50M": extrapolate(results),
        "national": national,
    }
    if do_profile:
        largest = results[str(max(sizes))]["endpoints"]
        slow = [
            name
            for name, verdict in out["verdicts"].items()
            if not verdict["flat"] or largest[name]["p50"] > 100
        ]
        out["profiles"] = profile(database_for(max(sizes), log=log), slow, log=log) if slow else {}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--national-url")
    parser.add_argument("--json")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    out = run(
        sizes,
        args.requests,
        regenerate=args.regenerate,
        do_profile=args.profile,
        national_url=args.national_url,
    )
    print()
    print_table(out["sizes"], out.get("national"))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
