"""The floor: what the platform's cheapest requests get beside the ceiling's,
under the same gunicorn settings, in one run.

    .venv/bin/python bench/floor.py [--database-url URL] [--seconds 10] [--rounds 2]

The load benchmark (``bench/load.py``) holds the platform's mix to half of
what a bare Flask app (``bench/bare_app.py``) gets. This one asks what that
target leaves room for: wrk drives ``--connections`` connections at one URL
at a time, each URL in turn, ``--rounds`` times (the machine's noise falls on
all alike), against

- the ceiling: its ``/healthz`` (no database) and ``GET /read/<id>`` (one
  primary-key read), as the load benchmark's ceiling reads;
- the platform's cheapest requests: ``/healthz`` (``SELECT 1`` through the
  request's session: every hook of a request, no work), a calendar feed
  answered 304 (the token looked up with the feed's stamps in one indexed
  query, nothing built), and one resource of the catalog (anonymous, two
  statements).

It prints each URL's requests a second (the median of the rounds) and its
ratio to the ceiling's read. A request of the mix does at least what these
do (authentication, its unit of work, security headers, the error and
language machinery), most of them much more: the best of these ratios bounds
what the mix can reach.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import generate  # noqa: E402
import growth  # noqa: E402
import load  # noqa: E402

#: prints requests, seconds and non-2xx/3xx answers as one JSON line
REPORT = """
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format('WRK {"requests": %d, "seconds": %f, "errors": %d, "p99_ms": %f}\\n',
    summary.requests, summary.duration / 1e6, errors, latency:percentile(99) / 1e3))
end
"""


def wrk(port: int, path: str, headers: dict, seconds: float, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(REPORT)
    command = ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "-s", script.name]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    try:
        out = subprocess.run(
            [*command, f"http://127.0.0.1:{port}{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    line = next(x for x in out.splitlines() if x.startswith("WRK "))
    result = json.loads(line[4:])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def targets(server_port: int, world: load.World) -> list[tuple[str, str, str, dict]]:
    """(name, server, path, headers) of every URL measured."""
    import http.client

    feed = f"/ical/{world.personal_feeds[0]}.ics"
    conn = http.client.HTTPConnection("127.0.0.1", server_port, timeout=60)
    conn.request("GET", feed)
    answer = conn.getresponse()
    answer.read()
    etag = answer.getheader("ETag")
    conn.close()
    if answer.status != 200 or not etag:
        raise SystemExit(f"the feed {feed} answered {answer.status} without an ETag")
    resource = world.pairs[0][0]
    return [
        ("bare healthz (no database)", "bare", "/healthz", {}),
        ("bare read (the ceiling's read)", "bare", f"/read/{resource}", {}),
        ("platform healthz (SELECT 1)", "app", "/healthz", {}),
        ("platform feed, 304", "app", feed, {"If-None-Match": etag}),
        ("platform resource", "app", f"/api/v1/resources/{resource}", {}),
    ]


def run(url: str, seconds: float, rounds: int, connections: int, workers: int) -> dict:
    from sqlalchemy import create_engine

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    world = load.load_world(engine, datetime.now(UTC), feeds=1, lab_feeds=1, resource_feeds=1)
    engine.dispose()
    bare_env = {
        "BARE_ORG_ID": str(world.sample_bare_user[1]),
        "BARE_USER_ID": str(world.sample_bare_user[0]),
    }
    figures: dict[str, list[dict]] = {}
    with (
        load.Gunicorn("bench.bare_app:app", url, workers, bare_env) as bare,
        load.Gunicorn("wsgi:app", url, workers) as app,
    ):
        ports = {"bare": bare.port, "app": app.port}
        urls = targets(app.port, world)
        for _name, server, path, headers in urls:  # warm-up: imports, connections, caches
            wrk(ports[server], path, headers, 2, connections)
        for _ in range(rounds):
            for name, server, path, headers in urls:
                figures.setdefault(name, []).append(
                    wrk(ports[server], path, headers, seconds, connections)
                )
    rows = {}
    for name, runs in figures.items():
        rows[name] = {
            "rps": statistics.median(r["rps"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
            "runs": [round(r["rps"], 1) for r in runs],
        }
    ceiling = rows["bare read (the ceiling's read)"]["rps"]
    for row in rows.values():
        row["ratio"] = row["rps"] / ceiling
    return {
        "connections": connections,
        "seconds": seconds,
        "rounds": rounds,
        "workers": workers,
        "rows": rows,
        "load": os.getloadavg(),
    }


def print_report(result: dict) -> None:
    print(
        f"wrk -c{result['connections']}, {result['seconds']:.0f} s a URL, "
        f"{result['rounds']} rounds (median), gunicorn {result['workers']} sync workers"
    )
    print(f"{'URL':<34}{'req/s':>9}{'p99 ms':>9}{'× read':>8}  errors  rounds")
    for name, row in result["rows"].items():
        print(
            f"{name:<34}{row['rps']:9.1f}{row['p99_ms']:9.1f}{row['ratio']:8.2f}"
            f"  {row['errors']:>6}  {row['runs']}"
        )
    print(f"load average {result['load'][0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--json")
    args = parser.parse_args()
    url = args.database_url or growth.database_for(generate.SIZES["province"].bookings)
    result = run(url, args.seconds, args.rounds, args.connections, args.workers)
    print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
