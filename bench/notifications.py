"""What the notification fan-out costs a write request: app CPU and SQL
statements per booking, in-process, on PostgreSQL.

    .venv/bin/python bench/notifications.py [--requests 200] [--admins 3] [--json FILE]
        [--trace] [--profile PREFIX]

The database is ``BENCH_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/h4n_notifications_bench``), made when
missing; its tables are dropped and made again on every run. Five labs of 20
resources each that need approval, every lab with ``--admins`` admins who
want mail (so a request goes to that many people: an inbox item and a mail
each), 16 customers with API tokens.

Through Flask's test client (no HTTP, no gunicorn), one request after
another, after a warm-up:

1. ``POST /api/v1/reservations`` of a free slot (a request, which the
   subscribers announce to the lab's admins);
2. ``POST /api/v1/reservations/<id>/approve`` by a lab admin (one inbox item,
   one mail with its .ics invitation);

each taken in turns with the notifications' subscribers in place and with
them switched off (``events._subscribers`` emptied, as
``reservations_engine_app.py`` does), so both ways see the same machine: the
difference is the fan-out's share of the request, steady on a busy machine.
Then, where mails are rendered when delivered, the rendering the scheduler's
mailer does per mail (``notifications.render_outbox_mail``).

Printed per request: app CPU (``time.process_time``, mean and median, ms),
SQL statements sent, the rows written to ``notifications`` and
``outbox_mails``; the load average at the start and the end. ``--trace``
prints the statements of one create and one approval; ``--profile`` writes
cProfile listings.

Before and after a change: the script measures the ``booking`` package
beside it, so a copy in an export of another commit measures that commit::

    git archive <commit> | tar -x -C /tmp/before && cp bench/notifications.py /tmp/before/bench/
    .venv/bin/python /tmp/before/bench/notifications.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ.setdefault(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/h4n_notifications_bench"
)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reservations_common import DATABASE_URL, make_app, reset_schema, seed_world

SH = ZoneInfo("Asia/Shanghai")
LABS = 5
RESOURCES = 100
CUSTOMERS = 16
WARM_UP = 10


class Statements:
    """SQL statements sent through the app's engine."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.count = 0
        self.trace: list[str] | None = None
        event.listen(engine, "before_cursor_execute", self.seen)

    def seen(self, conn, cursor, statement, *args) -> None:
        self.count += 1
        if self.trace is not None:
            self.trace.append(" ".join(statement.split())[:160])


def ensure_database(url: str) -> None:
    """Make the benchmark's database when it is missing."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        ):
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def add_admins(app, world: dict, per_lab: int) -> list[str]:
    """``per_lab`` admins in every lab (the seed gives the first lab one);
    returns an API token of the first lab's admin."""
    from sqlalchemy import func, select

    from booking.extensions import db
    from booking.models.accounts import Membership, Organization, OrgKind, Role, User
    from booking.services import accounts

    with app.app_context():
        session = db.session
        password = accounts.hash_password("bench password 2026")
        labs = session.scalars(
            select(Organization).where(Organization.kind == OrgKind.PROVIDER)
        ).all()
        for n, lab in enumerate(labs):
            have = session.scalar(
                select(func.count()).where(
                    Membership.organization_id == lab.id, Membership.role == Role.ADMIN
                )
            )
            for i in range(have, per_lab):
                user = User(
                    email=f"lab{n}-admin{i}@example.cn",
                    name=f"实验室{n}管理员{i}",
                    password_hash=password,
                    locale="en" if i % 2 else "zh_CN",
                )
                user.memberships.append(Membership(organization=lab, role=Role.ADMIN))
                session.add(user)
        first = session.scalar(select(User).where(User.email == "bench-admin@example.cn"))
        token, _row = accounts.issue_token(session, first, days=30, label="bench")
        session.commit()
        return [token]


def free_slots(count: int, resources: list[int]):
    """``count`` distinct (resource, start, end) triples, none overlapping."""
    first = datetime.now(SH).date() + timedelta(days=3)
    found = []
    day = first
    while len(found) < count:
        for hour in range(8, 20):
            for resource in resources:
                start = datetime.combine(day, day_time(hour), tzinfo=SH)
                found.append((resource, start, start + timedelta(hours=1)))
        day += timedelta(days=1)
    random.shuffle(found)
    return found[:count]


def written(app) -> tuple[int, int]:
    """Rows in ``notifications`` and ``outbox_mails``."""
    from sqlalchemy import text

    from booking.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        return tuple(
            conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM notifications), "
                    "(SELECT count(*) FROM outbox_mails)"
                )
            ).one()
        )


class Subscribers:
    """The domain events' subscribers (the notifications area), switched on
    and off between requests."""

    def __init__(self) -> None:
        from booking.services import events

        self.events = events
        self.saved = {k: list(v) for k, v in events._subscribers.items()}

    def switch(self, on: bool) -> None:
        self.events._subscribers.clear()
        if on:
            self.events._subscribers.update({k: list(v) for k, v in self.saved.items()})


def measure(app, counter: Statements, requests: list, subscribers: Subscribers) -> dict:
    """Send ``requests`` ((label, notify, send) triples; ``send`` takes the
    client and returns the answer) one after another, the subscribers on
    where ``notify``; CPU, statements and rows written per request, by label.
    Labels taken in turns see the same machine: the difference between them
    holds on a busy one."""
    client = app.test_client()
    seen: dict[str, dict[str, list]] = {}
    for label, notify, send in requests:
        subscribers.switch(notify)
        before = written(app)
        counted = counter.count
        started = time.process_time()
        answer = send(client)
        cpu = time.process_time() - started
        statements = counter.count - counted
        assert answer.status_code in (200, 201), (answer.status_code, answer.get_data()[:500])
        after = written(app)
        figures = seen.setdefault(label, {"cpu": [], "statements": [], "items": [], "mails": []})
        figures["cpu"].append(cpu)
        figures["statements"].append(statements)
        figures["items"].append(after[0] - before[0])
        figures["mails"].append(after[1] - before[1])
    subscribers.switch(True)
    return {
        label: {
            "requests": len(f["cpu"]),
            "cpu_ms_mean": 1000 * statistics.fmean(f["cpu"]),
            "cpu_ms_median": 1000 * statistics.median(f["cpu"]),
            "statements": statistics.fmean(f["statements"]),
            "notifications_per_request": statistics.fmean(f["items"]),
            "mails_per_request": statistics.fmean(f["mails"]),
        }
        for label, f in seen.items()
    }


def in_turns(what: str, with_: list, without: list) -> list:
    """The two ways of ``what`` taken in turns: with the notifications, without."""
    found = []
    for a, b in zip(with_, without, strict=True):
        found.append((f"{what}, with notifications", True, a))
        found.append((f"{what}, without notifications", False, b))
    return found


def create_requests(world: dict, slots) -> list:
    def make(resource, start, end):
        token = random.choice(world["tokens"])
        body = {
            "resource_id": resource,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "purpose": "bench",
        }

        def send(client):
            answer = client.post(
                "/api/v1/reservations", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            if answer.status_code == 201:
                made.append(answer.get_json()["id"])
            return answer

        return send

    made: list[int] = []
    return [make(*slot) for slot in slots], made


def approve_requests(ids: list[int], token: str) -> list:
    def make(reservation_id):
        return lambda client: client.post(
            f"/api/v1/reservations/{reservation_id}/approve",
            json={},
            headers={"Authorization": f"Bearer {token}"},
        )

    return [make(i) for i in ids]


def render_pending(app, limit: int) -> dict | None:
    """The mailer's rendering of pending mails, per mail, where mails are
    rendered at delivery; None where they are rendered when written."""
    from sqlalchemy import select

    from booking.extensions import db
    from booking.models.notifications import MailStatus, OutboxMail
    from booking.services import notifications

    render = getattr(notifications, "render_outbox_mail", None)
    if render is None:
        return None
    with app.app_context():
        mails = db.session.scalars(
            select(OutboxMail).where(OutboxMail.status == MailStatus.PENDING).limit(limit)
        ).all()
        cpu = []
        for mail in mails:
            started = time.process_time()
            render(mail)
            cpu.append(time.process_time() - started)
        db.session.rollback()
    return {"mails": len(cpu), "cpu_ms_mean": 1000 * statistics.fmean(cpu)} if cpu else None


def profiled(path: str, function, *args):
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    result = profiler.runcall(function, *args)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(150)
    Path(path).write_text(out.getvalue())
    return result


def line(name: str, r: dict) -> str:
    return (
        f"{name:<44} app CPU {r['cpu_ms_mean']:6.2f} ms (median {r['cpu_ms_median']:6.2f})   "
        f"statements {r['statements']:5.1f}   "
        f"inbox rows {r['notifications_per_request']:.1f}   mails {r['mails_per_request']:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--admins", type=int, default=3)
    parser.add_argument("--json", help="write the figures to this file too")
    parser.add_argument(
        "--trace", action="store_true", help="print the statements of one create and one approve"
    )
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="cProfile the measured creates and approvals into PREFIX-create.txt and "
        "PREFIX-approve.txt (cumulative, top 150)",
    )
    args = parser.parse_args()
    random.seed(11)
    load_start = os.getloadavg()

    ensure_database(DATABASE_URL)
    app = make_app()
    app.config["SMTP_URL"] = None
    print(f"database {DATABASE_URL}: making the schema and seeding …", flush=True)
    reset_schema(app)
    world = seed_world(
        app,
        resources=RESOURCES,
        customers=CUSTOMERS,
        providers=LABS,
        granularity_minutes=60,
        min_minutes=60,
        max_minutes=480,
        lead_minutes=0,
        horizon_days=365,
        requires_approval=True,
    )
    admin_tokens = add_admins(app, world, args.admins)
    from booking.extensions import db

    with app.app_context():
        counter = Statements(db.engine)
    subscribers = Subscribers()
    # Only resources of the first lab: its admin approves them.
    first_lab = [r for i, r in enumerate(world["resource_ids"]) if i % LABS == 0]
    n = args.requests
    slots = free_slots(2 * (n + WARM_UP) + 1, first_lab)
    token = admin_tokens[0]

    warm, made_warm = create_requests(world, slots[:WARM_UP])
    warm_without, made_without = create_requests(world, slots[WARM_UP : 2 * WARM_UP])
    measure(app, counter, in_turns("create", warm, warm_without), subscribers)
    creates, made = create_requests(world, slots[2 * WARM_UP : 2 * WARM_UP + n])
    creates_without, made_without_ = create_requests(world, slots[2 * WARM_UP + n : -1])
    run = in_turns("create", creates, creates_without)
    if args.profile:
        results = profiled(f"{args.profile}-create.txt", measure, app, counter, run, subscribers)
    else:
        results = measure(app, counter, run, subscribers)
    measure(
        app,
        counter,
        in_turns(
            "approve",
            approve_requests(made_warm[:-1], token),
            approve_requests(made_without[:-1], token),
        ),
        subscribers,
    )
    run = in_turns("approve", approve_requests(made, token), approve_requests(made_without_, token))
    if args.profile:
        results.update(
            profiled(f"{args.profile}-approve.txt", measure, app, counter, run, subscribers)
        )
    else:
        results.update(measure(app, counter, run, subscribers))
    if args.trace:
        for what, send in (
            ("create", create_requests(world, slots[-1:])[0][0]),
            ("approve", approve_requests(made_warm[-1:], token)[0]),
        ):
            counter.trace = []
            measure(app, counter, [(what, True, send)], subscribers)
            print(f"--- statements of one {what}, with notifications:")
            print("\n".join(f"  {s}" for s in counter.trace))
            counter.trace = None
    rendering = render_pending(app, 200)

    print()
    print(
        f"{args.requests} requests each, in-process (Flask test client), PostgreSQL; "
        f"{args.admins} admins per lab"
    )
    for name, figures in sorted(results.items()):
        print(line(name, figures))
    for what in ("create", "approve"):
        with_, without = (
            results[f"{what}, with notifications"],
            results[f"{what}, without notifications"],
        )
        share = with_["cpu_ms_mean"] - without["cpu_ms_mean"]
        print(
            f"fan-out share of a {what:<8} {share:6.2f} ms app CPU "
            f"({100 * share / with_['cpu_ms_mean']:.0f} %), "
            f"{with_['statements'] - without['statements']:.1f} statements"
        )
    if rendering:
        print(
            f"rendering at delivery (scheduler, per mail): {rendering['cpu_ms_mean']:.2f} ms "
            f"app CPU over {rendering['mails']} mails"
        )
    else:
        print("rendering at delivery: none (mails are rendered in the request)")
    load_end = os.getloadavg()
    print(f"load average: start {load_start[0]:.2f}, end {load_end[0]:.2f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"results": results, "rendering": rendering, "load": [load_start, load_end]},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
