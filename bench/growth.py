"""How the cost of each request grows with the data: every endpoint of the
load benchmark timed on the same province at 10k, 100k and 1M bookings.

    /work/venv/bin/python bench/growth.py [--sizes 10000,100000,1000000]
        [--requests 60] [--profile] [--json growth.json] [--national-url URL]

Each size is a database of its own made by ``bench/generate.py`` (the
province's world, ``--sizes`` bookings: ``bench_growth_<n>``; the 1M one
is ``bench_load`` when that holds the province at 1M), made when missing.
On each, gunicorn with one sync worker answers one client, request after
request (the cost of a request, not of queueing): ``--requests`` of each
endpoint of ``load.MIX`` (built as the load clients build them, with the
same seed), plus a feed's full answer (no ``If-None-Match``). Printed: the
median and p95 of each at each size, and the ratio of the largest to the
smallest (target ≤ 1.5: an index keeps the cost flat; more says it grows).

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


def timed(port: int, workload, name: str, requests: int, seed: int) -> dict:
    """``requests`` of one endpoint, one after the other, after 5 unmeasured."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    timings, statuses = [], {}
    for n in range(requests + 5):
        full = name == "feed (personal, full)"
        request = workload.build("feed (personal)" if full else name, rng)
        headers = dict(request.headers)
        if full:
            headers.pop("If-None-Match", None)
        started = time.perf_counter()
        try:
            conn.request(request.method, request.path, request.body, headers)
            response = conn.getresponse()
            data = response.read()
            status = response.status
            if response.will_close:
                conn.close()
        except (OSError, http.client.HTTPException):
            status, data, response = 0, b"", None
            conn.close()
        elapsed = time.perf_counter() - started
        if request.after is not None:
            request.after(status, data, response)
        if n >= 5:
            timings.append(elapsed)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    conn.close()
    return {
        "p50": load.percentile(timings, 0.5) * 1000,
        "p95": load.percentile(timings, 0.95) * 1000,
        "statuses": statuses,
    }


def measure(url: str, requests: int, log=print) -> dict:
    from sqlalchemy import create_engine

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    world = load.load_world(engine, datetime.now(UTC))
    with engine.connect() as conn:
        meta = generate.read_meta(conn)
    engine.dispose()
    workload = load.Workload(world)
    figures = {}
    with load.Gunicorn("wsgi:app", url, workers=1) as server:
        load.warm_feeds(server.port, workload)
        for index, name in enumerate([n for n, _k, _s in load.MIX] + EXTRA):
            figures[name] = timed(server.port, workload, name, requests, seed=100 + index)
            log(
                f"  {name:<24} p50 {figures[name]['p50']:8.1f} ms   p95 "
                f"{figures[name]['p95']:8.1f} ms   {figures[name]['statuses']}"
            )
    return {
        "bookings": meta["counts"].get("reservations"),
        "meta": meta,
        "endpoints": figures,
        "load": os.getloadavg(),
    }


def verdicts(results: dict) -> dict:
    sizes = sorted(results, key=int)
    low, high = results[sizes[0]]["endpoints"], results[sizes[-1]]["endpoints"]
    found = {}
    for name in high:
        ratio = high[name]["p50"] / low[name]["p50"] if low.get(name) else float("nan")
        found[name] = {"ratio": ratio, "flat": ratio <= TARGET}
    return found


def extrapolate(results: dict, bookings: int = 50_000_000) -> dict:
    """Median at ``bookings``, continuing the growth between the two largest
    sizes measured in a straight line (costs that grow as a logarithm, as
    index lookups do, grow less: an upper estimate)."""
    sizes = sorted(results, key=int)
    if len(sizes) < 2:
        return {}
    a, b = sizes[-2], sizes[-1]
    na, nb = results[a]["bookings"], results[b]["bookings"]
    out = {}
    for name, row in results[b]["endpoints"].items():
        before = results[a]["endpoints"].get(name)
        if not before:
            continue
        slope = max(0.0, (row["p50"] - before["p50"]) / (nb - na))
        out[name] = row["p50"] + slope * (bookings - nb)
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
    results = {}
    for bookings in sizes:
        url = database_for(bookings, regenerate=regenerate, log=log)
        log(f"{bookings:,} bookings ({url}):")
        results[str(bookings)] = measure(url, requests, log=log)
    national = None
    if national_url:
        log(f"national world ({national_url}):")
        national = measure(national_url, requests, log=log)
    out = {
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
