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

``--before DIR`` also measures a checkout of older code (``git worktree add
DIR <commit>``; the same virtualenv and database) in a process of its own,
the two in turns (ten rounds per request), and prints both side by side:
before and after in one command, on the same machine at the same time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
# --before runs this script again with the code of another checkout.
sys.path.insert(0, os.environ.get("CATALOG_COST_CODE") or str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))

import catalog_search  # noqa: E402

if os.environ.get("CATALOG_COST_CODE"):  # catalog_search put this checkout first
    sys.path.insert(0, os.environ["CATALOG_COST_CODE"])
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


def sample(client, path: str, count: int, headers=None) -> list[float]:
    """CPU seconds of ``count`` requests, one by one."""
    samples = []
    for _ in range(count):
        started = time.process_time()
        answer = client.get(path, headers=headers)
        samples.append(time.process_time() - started)
        assert answer.status_code == 200, (path, answer.status_code, answer.data[:300])
    return samples


def statements_of(app, client, path: str, headers=None) -> int:
    from booking.extensions import db

    with app.app_context():
        engine = db.engine
    with Counter(engine) as counter:
        client.get(path, headers=headers)
    return counter.count


class Side:
    """One version of the code measuring requests: this process, or (for
    ``--before``) this script again in a process of its own importing
    ``booking`` from another checkout, answering over a pipe."""

    def __init__(self, url: str, resource_id: int, code: Path | None = None):
        self.process = None
        if code is not None:
            env = dict(os.environ, CATALOG_COST_CODE=str(code.resolve()))
            self.process = subprocess.Popen(
                [sys.executable, __file__, "--database-url", url,
                 "--resource-id", str(resource_id), "--serve"],
                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            return
        self.app = make_app(url)
        self.client = self.app.test_client()
        self.requests = requests(resource_id)
        from booking.extensions import db

        def bare_read() -> None:
            with self.app.app_context():
                db.session.execute(
                    text(
                        "SELECT id, kind, name_zh, name_en, capacity, status FROM resources "
                        "WHERE id = :id"
                    ),
                    {"id": resource_id},
                ).one()
                db.session.remove()  # fmt: skip

        self.bare_read = bare_read

    def _ask(self, *words) -> Any:
        self.process.stdin.write(" ".join(map(str, words)) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def samples(self, index: int, count: int) -> list[float]:
        """CPU seconds of ``count`` requests of ``requests()[index]``; index
        -1: the bare read."""
        if self.process is not None:
            return self._ask("samples", index, count)
        if index < 0:
            found = []
            for _ in range(count):
                started = time.process_time()
                self.bare_read()
                found.append(time.process_time() - started)
            return found
        _, path, headers = self.requests[index]
        return sample(self.client, path, count, headers)

    def statements(self, index: int) -> int:
        if self.process is not None:
            return self._ask("statements", index)
        if index < 0:
            return 1
        _, path, headers = self.requests[index]
        return statements_of(self.app, self.client, path, headers)

    def serve(self) -> None:
        for line in sys.stdin:
            verb, *numbers = line.split()
            numbers = [int(n) for n in numbers]
            found = self.samples(*numbers) if verb == "samples" else self.statements(*numbers)
            print(json.dumps(found), flush=True)

    def close(self) -> None:
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait(timeout=30)


def requests(resource_id: int) -> list[tuple[str, str, dict | None]]:
    found: list[tuple[str, str, dict | None]] = [("GET /healthz (no database)", "/healthz", None)]
    found += [
        (f"search {label}", "/api/v1/resources?" + urlencode(query), None)
        for label, query in SEARCHES
    ]
    found += [
        ("GET /resources/{id} (zh)", f"/api/v1/resources/{resource_id}", None),
        ("GET /resources/{id} (en)", f"/api/v1/resources/{resource_id}", {"Accept-Language": "en"}),
    ]
    return found


def load_average() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--resources", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--reload", action="store_true", help="rebuild and reload the data")
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of older code (git worktree add): measured first, side by side",
    )
    parser.add_argument("--resource-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("the benchmark needs PostgreSQL")

    if args.serve:  # the other side of --before
        Side(args.database_url, args.resource_id).serve()
        return

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

    sides = {"after": Side(args.database_url, resource_id)}
    if args.before:
        sides = {"before": Side(args.database_url, resource_id, args.before), **sides}
    labels = ["primary-key read through the session (no request)"]
    labels += [label for label, _, _ in requests(resource_id)]
    rounds = 10
    per_round = max(1, args.repeat // rounds)
    figures = []
    try:
        for index, label in enumerate(labels, start=-1):
            for side in sides.values():  # warm-up
                side.samples(index, 5)
            samples: dict[str, list[float]] = {name: [] for name in sides}
            for _ in range(rounds):  # the sides in turn, so both see the same machine
                for name, side in sides.items():
                    samples[name] += side.samples(index, per_round)
            figures.append(
                (
                    label,
                    {name: median_ms(found) for name, found in samples.items()},
                    {name: side.statements(index) for name, side in sides.items()},
                )
            )
    finally:
        for side in sides.values():
            side.close()

    print(
        f"App CPU per request, in-process (Flask test client, PostgreSQL, "
        f"{args.resources:,} resources, resource {resource_id}), median of "
        f"{rounds * per_round}:"
    )
    if args.before:
        print(f"  before: the code in {args.before}; after: the code in {ROOT}")
        print(
            f"  {'request':<52} {'before ms':>9} {'after ms':>9} {'after/before':>12} "
            f"{'statements':>10}"
        )
        for label, ms, counts in figures:
            ratio = ms["after"] / ms["before"]
            count = f"{counts['before']} -> {counts['after']}"
            print(f"  {label:<52} {ms['before']:9.2f} {ms['after']:9.2f} {ratio:12.2f} {count:>10}")
    else:
        print(f"  {'request':<52} {'CPU ms':>8} {'statements':>10}")
        for label, ms, counts in figures:
            print(f"  {label:<52} {ms['after']:8.2f} {counts['after']:10d}")
    print(f"load average at the end: {load_average()} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
