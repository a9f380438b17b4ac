"""App CPU and statements per request of the catalog's two hot reads (issue
10): the search (``GET /api/v1/resources?q=..``) and one resource
(``GET /api/v1/resources/{id}``), in-process through Flask's test client on
PostgreSQL with the search benchmark's 20,000 resources.

    .venv/bin/python bench/catalog_cost.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/h3c_catalog

The database is built and loaded by ``bench/catalog_search.py``'s own
functions when it does not hold ``--resources`` resources yet (made if
missing), and reused as it is otherwise (``--reload`` to rebuild it).

For every request it prints the median CPU time of this process
(``time.process_time()`` around the test client's call: routing, argument
parsing, building and running the statements, loading the rows, building
and encoding the JSON; PostgreSQL's own work is in its backend and not
counted) and how many statements the request sends; beside them, the same
figure for ``GET /healthz`` (no database) and for one bare primary-key read
through the app's session, the floor any answer of the app pays.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import catalog_search  # noqa: E402
from sqlalchemy import event, text  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/h3c_catalog"

#: The searches measured: the ones the mixed load sends most (per_page 20).
SEARCHES = [
    ("q=电镜", {"q": "电镜", "per_page": 20}),
    ("q=SEM", {"q": "SEM", "per_page": 20}),
    (
        "q=色谱 kind=instrument region=1401",
        {"q": "色谱", "kind": "instrument", "region": "1401", "per_page": 20},
    ),
    ("kind=instrument region=14 (no q)", {"kind": "instrument", "region": "14", "per_page": 20}),
    ("empty query, page 3", {"page": 3, "per_page": 20}),
]


def make_app(url: str):
    from booking import create_app

    return create_app(
        {"ENV_NAME": "production", "DATABASE_URL": url, "SECRET_KEY": secrets.token_urlsafe(32)}
    )


def loaded_resources(app) -> int | None:
    from booking.extensions import db

    with app.app_context():
        try:
            return db.session.scalar(text("SELECT count(*) FROM resources"))
        except Exception:  # no schema yet
            return None
        finally:
            db.session.remove()


class Counter:
    """Statements sent by the app's engine while active."""

    def __init__(self, engine):
        self.engine = engine
        self.count = 0

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._one)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._one)

    def _one(self, *args):
        self.count += 1


def measure(client, path: str, repeat: int, headers=None) -> tuple[float, list[float]]:
    """Median and all samples of the CPU seconds of one request."""
    for _ in range(5):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 200, (path, answer.status_code, answer.data[:300])
    samples = []
    for _ in range(repeat):
        started = time.process_time()
        answer = client.get(path, headers=headers)
        samples.append(time.process_time() - started)
        assert answer.status_code == 200
    return statistics.median(samples), samples


def statements_of(app, client, path: str, headers=None) -> int:
    from booking.extensions import db

    with app.app_context():
        engine = db.engine
    with Counter(engine) as counter:
        client.get(path, headers=headers)
    return counter.count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--resources", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--reload", action="store_true", help="rebuild and reload the data")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("the benchmark needs PostgreSQL")

    catalog_search.prepare_database(args.database_url)
    app = make_app(args.database_url)
    if args.reload or loaded_resources(app) != args.resources:
        catalog_search.build_schema(app)
        seconds = catalog_search.seed_resources(
            args.database_url, app, args.resources, random.Random(20300301)
        )
        print(f"loaded {args.resources:,} resources with prices and hours in {seconds:.1f} s")

    from booking.extensions import db

    with app.app_context():
        resource_id = db.session.scalar(
            text("SELECT id FROM resources WHERE kind = 'instrument' ORDER BY id LIMIT 1")
        )
        db.session.remove()

    client = app.test_client()
    rows: list[tuple[str, str, dict | None]] = [
        ("GET /healthz (no database)", "/healthz", None),
    ]
    rows += [
        (f"search {label}", "/api/v1/resources?" + urlencode(query), None)
        for label, query in SEARCHES
    ]
    rows += [
        (f"GET /resources/{resource_id} (zh)", f"/api/v1/resources/{resource_id}", None),
        (
            f"GET /resources/{resource_id} (en)",
            f"/api/v1/resources/{resource_id}",
            {"Accept-Language": "en"},
        ),
    ]

    # A primary-key read through the app's session, outside any request: the
    # floor of a database answer in this process.
    def bare_read() -> float:
        with app.app_context():
            started = time.process_time()
            db.session.execute(
                text(
                    "SELECT id, kind, name_zh, name_en, capacity, status FROM resources "
                    "WHERE id = :id"
                ),
                {"id": resource_id},
            ).one()
            db.session.remove()
            return time.process_time() - started  # fmt: skip

    for _ in range(20):
        bare_read()
    bare = statistics.median(bare_read() for _ in range(args.repeat))

    print(
        f"App CPU per request, in-process (Flask test client, PostgreSQL, "
        f"{args.resources:,} resources), median of {args.repeat}:"
    )
    print(f"  {'request':<52} {'CPU ms':>8} {'p90 ms':>8} {'statements':>10}")
    print(f"  {'primary-key read through the session (no request)':<52} {bare * 1000:8.2f}")
    for label, path, headers in rows:
        median, samples = measure(client, path, args.repeat, headers)
        p90 = sorted(samples)[int(0.9 * (len(samples) - 1))]
        count = statements_of(app, client, path, headers)
        print(f"  {label:<52} {median * 1000:8.2f} {p90 * 1000:8.2f} {count:10d}")
    with open("/proc/loadavg") as handle:
        print(
            f"load average during the run: {' '.join(handle.read().split()[:3])} "
            f"({os.cpu_count()} CPUs)"
        )


if __name__ == "__main__":
    main()
