"""The mixed HTTP workload: the platform under N concurrent clients, beside
its ceiling, in one run.

    .venv/bin/python bench/load.py [--database-url postgresql://postgres@127.0.0.1:5432/bench_load]
        [--clients 64] [--seconds 60] [--warmup 10] [--workers 4] [--json results.json]

Against a database made by ``bench/generate.py``: gunicorn (``--workers``
sync workers) serves the app; ``--clients`` threads, each with its own
HTTP connection (http.client; gunicorn's sync workers close it after every
answer, so it is opened again), send requests back to back in these
proportions (``MIX``):

- reads: catalog searches (text, kind, region, voucher and free-time
  filters), a resource's page, its availability over a week, the caller's
  bookings, a voucher, the lab's approval queue, calendar feeds polled with
  ``If-None-Match`` (personal, a lab's, a resource's: mostly 304), report
  downloads (a lab's open-sharing CSV, a city's monthly settlement CSV);
- writes: bookings of the resources the customers really use, in their
  opening hours, some with a voucher (on busy resources many collide: 409
  with suggestions), approvals and rejections by the lab's admin of the
  requests made, cancellations by the customer.

Then the ceiling (``bench/bare_app.py``, same gunicorn settings): the same
clients, the same mix, every read a primary-key read and every write one
INSERT under the same exclusion constraint.

Printed: requests a second overall and per endpoint, p50/p95/p99, answers by
status, 5xx (must be 0), every figure also as a ratio to the ceiling; the
load average of the machine; then, by SQL, that no live bookings overlap (or
exceed a pool's capacity) and that every voucher's ledger agrees with its
balance and bookings. Exit status 1 when a 5xx was answered or a check
failed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import generate  # noqa: E402

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
UTC8 = generate.UTC8
DAY, HOUR = generate.DAY, generate.HOUR

#: (endpoint, read or write, share in percent)
MIX = [
    ("search", "read", 26),
    ("resource", "read", 10),
    ("availability", "read", 18),
    ("my bookings", "read", 8),
    ("voucher", "read", 3),
    ("approval queue", "read", 3),
    ("feed (personal)", "read", 11),
    ("feed (resource)", "read", 2),
    ("feed (lab)", "read", 1),
    ("report", "read", 2),
    ("book", "write", 10),
    ("approve", "write", 4),
    ("cancel", "write", 2),
]
SEARCH_TERMS = [
    "电镜",
    "扫描电镜",
    "色谱",
    "液相",
    "质谱",
    "拉曼",
    "衍射",
    "核磁",
    "热分析",
    "GPU",
    "中试",
    "检测",
    "煤质",
    "sigma",
    "agilent",
    "zeiss",
    "粒度",
    "力学",
    "光谱",
    "CT",
]
KINDS = ["instrument", "testing_service", "hpc", "pilot_line"]


# --- the world as the clients know it -------------------------------------------------------


@dataclass
class Res:
    id: int
    kind: str
    capacity: int
    provider_id: int
    grid: int
    min_minutes: int
    max_minutes: int
    lead: int
    horizon_days: int
    cancel_minutes: int
    closed_on_holidays: bool
    voucher_eligible: bool
    hours: dict | None  # weekday -> [(open_s, close_s)], None: around the clock


@dataclass
class World:
    now: datetime
    resources: dict[int, Res]
    pairs: list  # (resource_id, user_id, org_id, org_kind): who books what, by popularity
    lab_admin: dict[int, int]
    labs: list[int]
    officers: list  # (user_id, region)
    vouchers: dict[int, list]  # org_id -> [(voucher_id, valid_from_ts, valid_until_ts)]
    voucher_views: list  # (voucher_id, user_id)
    personal_feeds: list[str]
    lab_feeds: list[str]
    approvals: collections.deque
    cancellable: collections.deque
    sample_bare_user: tuple[int, int] = (1, 1)
    resource_feeds: int = 200  # the most popular pairs' resources whose feeds are polled
    day_kinds: dict = field(default_factory=dict)


def load_world(
    engine,
    now: datetime,
    seed: int = 7,
    feeds: int = 300,
    lab_feeds: int = 8,
    resource_feeds: int = 200,
) -> World:
    """What the clients need to know, read from the database; ``feeds``,
    ``lab_feeds``, ``resource_feeds``: how many of each the clients poll
    (each is built once before the run)."""
    from sqlalchemy import func, select

    from booking.models.accounts import Membership, Organization
    from booking.models.catalog import OpeningHours, Resource
    from booking.models.feeds import FeedToken
    from booking.models.reservations import Reservation
    from booking.models.vouchers import Voucher

    rng = random.Random(seed)
    with engine.connect() as conn:
        hours: dict[int, dict] = {}
        for row in conn.execute(select(OpeningHours)):
            spans = hours.setdefault(row.resource_id, {})
            spans.setdefault(row.weekday, []).append(
                (
                    row.open.hour * 3600 + row.open.minute * 60,
                    row.close.hour * 3600 + row.close.minute * 60,
                )
            )
        resources = {}
        for r in conn.execute(select(Resource).where(Resource.status == "available")):
            resources[r.id] = Res(
                id=r.id,
                kind=str(r.kind),
                capacity=r.capacity,
                provider_id=r.provider_id,
                grid=r.granularity_minutes * 60,
                min_minutes=r.min_minutes,
                max_minutes=r.max_minutes,
                lead=r.lead_minutes * 60,
                horizon_days=r.horizon_days,
                cancel_minutes=r.cancel_minutes,
                closed_on_holidays=r.closed_on_holidays,
                voucher_eligible=r.voucher_eligible,
                hours=hours.get(r.id),
            )
        kinds = dict(conn.execute(select(Organization.id, Organization.kind)).all())
        recent = now - timedelta(days=90)
        pairs = [
            (row.resource_id, row.user_id, row.customer_org_id, str(kinds[row.customer_org_id]))
            for row in conn.execute(
                select(Reservation.resource_id, Reservation.user_id, Reservation.customer_org_id)
                .where(Reservation.start_at > recent)
                .order_by(func.random())
                .limit(20_000)
            )
            if row.resource_id in resources
        ]
        admins = conn.execute(
            select(
                Membership.organization_id,
                Membership.user_id,
                Organization.kind,
                Organization.region,
            )
            .join(Organization, Organization.id == Membership.organization_id)
            .where(Membership.role == "admin")
        ).all()
        lab_admin = {org: user for org, user, kind, _r in admins if str(kind) == "provider"}
        officers = [
            (row.user_id, row.region)
            for row in conn.execute(
                select(Membership.user_id, Organization.region)
                .join(Organization, Organization.id == Membership.organization_id)
                .where(Organization.kind == "bureau")
            )
        ]
        holder_admin = {org: user for org, user, kind, _r in admins if str(kind) == "enterprise"}
        vouchers: dict[int, list] = {}
        views = []
        for v in conn.execute(
            select(
                Voucher.id, Voucher.holder_org_id, Voucher.valid_from, Voucher.valid_until
            ).where(Voucher.status == "active")
        ):
            vouchers.setdefault(v.holder_org_id, []).append(
                (v.id, v.valid_from.timestamp(), v.valid_until.timestamp())
            )
            if v.holder_org_id in holder_admin:
                views.append((v.id, holder_admin[v.holder_org_id]))
        feed_rows = conn.execute(select(FeedToken.id, FeedToken.scope)).all()
        personal = [generate.feed_token(i) for i, scope in feed_rows if str(scope) == "me"]
        labs_feeds = [generate.feed_token(i) for i, scope in feed_rows if str(scope) == "lab"]
        rng.shuffle(personal)
        rng.shuffle(labs_feeds)
        soon = now + timedelta(hours=2)
        requested = conn.execute(
            select(Reservation.id, Resource.provider_id)
            .join(Resource, Resource.id == Reservation.resource_id)
            .where(Reservation.status == "requested", Reservation.start_at > soon)
            .order_by(func.random())
            .limit(5000)
        ).all()
        cancellable = [
            (row.id, row.user_id)
            for row in conn.execute(
                select(
                    Reservation.id,
                    Reservation.user_id,
                    Reservation.start_at,
                    Resource.cancel_minutes,
                )
                .join(Resource, Resource.id == Reservation.resource_id)
                .where(
                    Reservation.status.in_(("requested", "approved")),
                    Reservation.start_at > now + timedelta(days=4),
                )
                .order_by(func.random())
                .limit(5000)
            )
            if row.start_at - timedelta(minutes=row.cancel_minutes) > now + timedelta(hours=2)
        ]
    labs = sorted({r.provider_id for r in resources.values() if r.kind == "instrument"})
    return World(
        now=now,
        resources=resources,
        pairs=pairs,
        lab_admin=lab_admin,
        labs=labs,
        officers=officers,
        vouchers=vouchers,
        voucher_views=views,
        personal_feeds=personal[:feeds],
        lab_feeds=labs_feeds[:lab_feeds],
        approvals=collections.deque(
            (rid, lab_admin[provider]) for rid, provider in requested if provider in lab_admin
        ),
        cancellable=collections.deque(cancellable),
        sample_bare_user=(pairs[0][1], pairs[0][2]) if pairs else (1, 1),
        resource_feeds=resource_feeds,
    )


# --- requests -------------------------------------------------------------------------------


@dataclass
class Request:
    name: str
    kind: str  # read | write
    method: str
    path: str
    body: bytes | None = None
    headers: dict = field(default_factory=dict)
    after: object = None  # callable(status, data, response) or None


def auth(user_id: int) -> dict:
    return {"Authorization": f"Bearer {generate.api_token(user_id)}", "Accept-Language": "zh-CN"}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone(generate_tz()).isoformat()


_TZ = None


def generate_tz():
    global _TZ
    if _TZ is None:
        from zoneinfo import ZoneInfo

        _TZ = ZoneInfo("Asia/Shanghai")
    return _TZ


class Workload:
    """Builds the next request of a client, by the mix."""

    def __init__(self, world: World):
        self.world = world
        self.names = [name for name, _kind, _share in MIX]
        self.kinds = {name: kind for name, kind, _share in MIX}
        self.cumulative = list(generate._cumulative([share for _n, _k, share in MIX]))
        self.etags: dict[str, str] = {}
        self.now_ts = world.now.timestamp()
        self.today = datetime.fromtimestamp(self.now_ts + UTC8, UTC).date()
        self.builders = {
            "search": self.search,
            "resource": self.resource,
            "availability": self.availability,
            "my bookings": self.my_bookings,
            "voucher": self.voucher,
            "approval queue": self.approval_queue,
            "feed (personal)": self.personal_feed,
            "feed (resource)": self.resource_feed,
            "feed (lab)": self.lab_feed,
            "report": self.report,
            "book": self.book,
            "approve": self.approve,
            "cancel": self.cancel,
        }

    def pick(self, rng: random.Random) -> str:
        import bisect

        return self.names[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]

    def build(self, name: str, rng: random.Random) -> Request:
        return self.builders[name](rng)

    def pair(self, rng):
        return rng.choice(self.world.pairs)

    # reads

    def search(self, rng) -> Request:
        query = {"per_page": 20}
        if rng.random() < 0.85:
            query["q"] = rng.choice(SEARCH_TERMS)
        if rng.random() < 0.4 or "q" not in query:
            query["kind"] = rng.choice(KINDS)
        if rng.random() < 0.4:
            query["region"] = rng.choice(["14", "1401", "1407", "1404", "140105"])
        if rng.random() < 0.15:
            query["voucher_eligible"] = "true"
        if rng.random() < 0.1:
            day = self.today + timedelta(days=rng.randint(1, 10))
            start = generate.local_midnight(day) + 9 * HOUR
            query["available_from"] = iso(start)
            query["available_to"] = iso(start + 2 * HOUR)
        return Request("search", "read", "GET", "/api/v1/resources?" + urlencode(query))

    def resource(self, rng) -> Request:
        return Request("resource", "read", "GET", f"/api/v1/resources/{self.pair(rng)[0]}")

    def availability(self, rng) -> Request:
        resource_id = self.pair(rng)[0]
        start = generate.local_midnight(self.today + timedelta(days=rng.randint(1, 14)))
        window = urlencode({"from": iso(start), "to": iso(start + 7 * DAY)})
        return Request(
            "availability", "read", "GET", f"/api/v1/resources/{resource_id}/availability?{window}"
        )

    def my_bookings(self, rng) -> Request:
        user = self.pair(rng)[1]
        query = {"per_page": 20}
        if rng.random() < 0.3:
            query["status"] = rng.choice(["approved", "requested", "completed"])
        return Request(
            "my bookings",
            "read",
            "GET",
            "/api/v1/reservations?" + urlencode(query),
            headers=auth(user),
        )

    def voucher(self, rng) -> Request:
        if not self.world.voucher_views:
            return self.my_bookings(rng)
        voucher_id, user = rng.choice(self.world.voucher_views)
        return Request(
            "voucher", "read", "GET", f"/api/v1/vouchers/{voucher_id}", headers=auth(user)
        )

    def approval_queue(self, rng) -> Request:
        lab = self.world.resources[self.pair(rng)[0]].provider_id
        admin = self.world.lab_admin.get(lab)
        return Request(
            "approval queue", "read", "GET", "/api/v1/approvals?per_page=20", headers=auth(admin)
        )

    def _feed(self, name: str, path: str) -> Request:
        headers = {}
        etag = self.etags.get(path)
        if etag:
            headers["If-None-Match"] = etag

        def keep(status, _data, response):
            if status == 200 and response is not None:
                tag = response.getheader("ETag")
                if tag:
                    self.etags[path] = tag

        return Request(name, "read", "GET", path, headers=headers, after=keep)

    def personal_feed(self, rng) -> Request:
        if not self.world.personal_feeds:
            return self.resource_feed(rng)
        return self._feed("feed (personal)", f"/ical/{rng.choice(self.world.personal_feeds)}.ics")

    def lab_feed(self, rng) -> Request:
        if not self.world.lab_feeds:
            return self.resource_feed(rng)
        return self._feed("feed (lab)", f"/ical/{rng.choice(self.world.lab_feeds)}.ics")

    def resource_feed(self, rng) -> Request:
        polled = min(self.world.resource_feeds, len(self.world.pairs))
        resource_id = self.world.pairs[rng.randrange(polled)][0]
        return self._feed("feed (resource)", f"/ical/resources/{resource_id}.ics")

    def report(self, rng) -> Request:
        if rng.random() < 0.5 and self.world.labs:
            lab = rng.choice(self.world.labs)
            query = {"year": self.today.year - 1, "provider_id": lab, "format": "csv"}
            path = "/api/v1/reports/open-sharing?" + urlencode(query)
            return Request("report", "read", "GET", path, headers=auth(self.world.lab_admin[lab]))
        officer, region = rng.choice(self.world.officers)
        first = generate.add_months(self.today.replace(day=1), -1)
        last = self.today.replace(day=1) - timedelta(days=1)
        query = {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "group_by": "provider",
            "format": "csv",
            "region": region,
        }
        path = "/api/v1/reports/voucher-settlement?" + urlencode(query)
        return Request("report", "read", "GET", path, headers=auth(officer))

    # writes

    def spans_of(self, res: Res, day: date) -> list[tuple[int, int]]:
        from booking.domain.calendar import DayKind, national_day_kind

        if res.hours is None:
            return [(0, DAY)]
        kind = self.world.day_kinds.get(day)
        if kind is None:
            kind = self.world.day_kinds[day] = national_day_kind(day)[0]
        if kind == DayKind.HOLIDAY and res.closed_on_holidays:
            return []
        weekday = 0 if kind == DayKind.WORKDAY else day.weekday()
        return res.hours.get(weekday, [])

    def slot(self, rng, res: Res) -> tuple[float, float, int] | None:
        """A start, end and units the resource's rules allow, where the
        customer would look: the next weeks, inside opening hours."""
        earliest = self.now_ts + res.lead + HOUR
        latest_day = max(2, min(res.horizon_days - 2, 45))
        if res.kind == "pilot_line":
            day = self.today + timedelta(days=rng.randint(3, latest_day))
            start = generate.local_midnight(day)
            return start, start + rng.randint(2, 5) * DAY, 1
        if res.kind == "hpc":
            start = (int(earliest) // HOUR + rng.randint(1, 24 * min(20, latest_day))) * HOUR
            units = rng.choice([u for u in (1, 2, 4, 8, 32, 64, 128, 256) if u <= res.capacity])
            return start, start + rng.choice([1, 2, 4, 8, 12, 24]) * HOUR, units
        for _ in range(10):
            day = self.today + timedelta(days=rng.randint(1, latest_day))
            spans = self.spans_of(res, day)
            if not spans:
                continue
            opens, closes = rng.choice(spans)
            steps = (closes - opens) // res.grid
            low = max(1, -(-res.min_minutes * 60 // res.grid))
            high = min(steps, res.max_minutes * 60 // res.grid, low + 4)
            if high < low:
                continue
            length = rng.randint(low, high)
            start = generate.local_midnight(day) + opens + rng.randint(0, steps - length) * res.grid
            if start < earliest:
                continue
            return start, start + length * res.grid, 1
        return None

    def book(self, rng) -> Request:
        for _ in range(5):
            resource_id, user, org, org_kind = self.pair(rng)
            res = self.world.resources[resource_id]
            found = self.slot(rng, res)
            if found:
                break
        else:
            return self.search(rng)
        start, end, units = found
        body = {
            "resource_id": resource_id,
            "start": iso(start),
            "end": iso(end),
            "purpose": "负载测试预约",
            "customer_org_id": org,
        }
        if res.capacity > 1:
            body["units"] = units
        if res.kind == "testing_service":
            body["samples"] = rng.randint(1, 10)
        if org_kind == "enterprise" and res.voucher_eligible and rng.random() < 0.3:
            for voucher_id, valid_from, valid_until in self.world.vouchers.get(org, ()):
                if valid_from <= start and end <= valid_until:
                    body["voucher_id"] = voucher_id
                    break
        admin = self.world.lab_admin.get(res.provider_id)
        cancel_by = start - res.cancel_minutes * 60 - HOUR

        def remember(status, data, _response):
            if status != 201:
                return
            made = json.loads(data)
            if made.get("status") == "requested" and admin:
                self.world.approvals.append((made["id"], admin))
            if cancel_by > time.time() + 600 and rng.random() < 0.5:
                self.world.cancellable.append((made["id"], user))

        headers = {**auth(user), "Content-Type": "application/json"}
        return Request(
            "book",
            "write",
            "POST",
            "/api/v1/reservations",
            json.dumps(body).encode(),
            headers,
            remember,
        )

    def approve(self, rng) -> Request:
        try:
            reservation_id, admin = self.world.approvals.popleft()
        except IndexError:
            return self.approval_queue(rng)
        headers = {**auth(admin), "Content-Type": "application/json"}
        if rng.random() < 0.2:
            body = json.dumps({"reason": "该时段设备需校准"}).encode()
            path = f"/api/v1/reservations/{reservation_id}/reject"
        else:
            body, path = b"{}", f"/api/v1/reservations/{reservation_id}/approve"
        return Request("approve", "write", "POST", path, body, headers)

    def cancel(self, rng) -> Request:
        try:
            reservation_id, user = self.world.cancellable.popleft()
        except IndexError:
            return self.my_bookings(rng)
        headers = {**auth(user), "Content-Type": "application/json"}
        body = json.dumps({"reason": "实验计划调整"}).encode()
        return Request(
            "cancel",
            "write",
            "POST",
            f"/api/v1/reservations/{reservation_id}/cancel",
            body,
            headers,
        )


class BareWorkload:
    """The same mix mapped onto the ceiling: reads to one primary-key read,
    writes to one constrained INSERT (far in the future, removed afterwards)."""

    def __init__(self, workload: Workload):
        self.workload = workload
        self.base = int(workload.now_ts) // HOUR * HOUR + 4 * 365 * DAY

    def pick(self, rng):
        return self.workload.pick(rng)

    def build(self, name: str, rng) -> Request:
        resource_id = self.workload.pair(rng)[0]
        if self.workload.kinds[name] == "read":
            return Request("bare read", "read", "GET", f"/read/{resource_id}")
        start = self.base + rng.randint(0, 60) * DAY + rng.randint(8, 17) * HOUR
        body = {
            "resource_id": resource_id,
            "start": iso(start),
            "end": iso(start + rng.randint(1, 3) * HOUR),
        }
        return Request(
            "bare write",
            "write",
            "POST",
            "/write",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )


# --- driving ----------------------------------------------------------------------------------


@dataclass
class Figures:
    latencies: dict = field(default_factory=lambda: collections.defaultdict(list))
    statuses: dict = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    kinds: dict = field(default_factory=dict)
    seconds: float = 0.0

    def merge(self, other: Figures) -> None:
        for name, values in other.latencies.items():
            self.latencies[name].extend(values)
        for name, counter in other.statuses.items():
            self.statuses[name].update(counter)
        self.kinds.update(other.kinds)


def drive(
    port: int,
    workload,
    clients: int,
    seconds: float,
    warmup: float,
    seed: int,
    rounds: int | None = None,
) -> Figures:
    """``clients`` threads sending requests back to back for ``warmup`` and
    then ``seconds`` more; only the latter are counted. ``rounds`` given
    (the smoke test): no clock, each client sends every endpoint of ``MIX``
    that many times, in a shuffled order, all counted."""
    begin = time.perf_counter()
    measure_from = begin + warmup
    stop = measure_from + seconds
    if rounds is not None:
        measure_from, stop = begin, float("inf")
    results: list[Figures] = []

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        figures = Figures()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        todo = None
        if rounds is not None:
            todo = [name for name, _kind, _share in MIX] * rounds
            rng.shuffle(todo)
        while True:
            started = time.perf_counter()
            if started >= stop or todo == []:
                break
            name = workload.pick(rng) if todo is None else todo.pop()
            request = workload.build(name, rng)
            response = None
            data = b""
            try:
                conn.request(request.method, request.path, request.body, request.headers)
                response = conn.getresponse()
                data = response.read()
                status = response.status
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
            finished = time.perf_counter()
            if started >= measure_from and finished <= stop + 5:
                figures.latencies[request.name].append(finished - started)
                figures.statuses[request.name][status] += 1
                figures.kinds[request.name] = request.kind
            if request.after is not None:
                # a client's bookkeeping must never stop the run
                with contextlib.suppress(Exception):
                    request.after(status, data, response)
        conn.close()
        results.append(figures)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = Figures(seconds=seconds if rounds is None else time.perf_counter() - begin)
    for figures in results:
        total.merge(figures)
    return total


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(figures: Figures) -> dict:
    rows = {}
    everything = []
    for name, values in figures.latencies.items():
        everything.extend(values)
        statuses = figures.statuses[name]
        rows[name] = {
            "kind": figures.kinds.get(name, "read"),
            "count": len(values),
            "rps": len(values) / figures.seconds,
            "p50": percentile(values, 0.50) * 1000,
            "p95": percentile(values, 0.95) * 1000,
            "p99": percentile(values, 0.99) * 1000,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "5xx": sum(v for k, v in statuses.items() if k >= 500),
            "errors": statuses.get(0, 0),
        }
    return {
        "endpoints": rows,
        "total": {
            "count": len(everything),
            "rps": len(everything) / figures.seconds,
            "p50": percentile(everything, 0.50) * 1000,
            "p95": percentile(everything, 0.95) * 1000,
            "p99": percentile(everything, 0.99) * 1000,
            "5xx": sum(r["5xx"] for r in rows.values()),
            "errors": sum(r["errors"] for r in rows.values()),
            "writes": sum(r["count"] for r in rows.values() if r["kind"] == "write"),
        },
    }


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, path: str = "/healthz", timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port} within {timeout:.0f} s")


class Gunicorn:
    """``gunicorn -w N -k sync`` serving ``target`` on a free port, in a ``with``."""

    def __init__(self, target: str, database_url: str, workers: int, env: dict | None = None):
        self.target, self.workers = target, workers
        self.port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": secrets.token_urlsafe(32),
            "BOOKING_ENV": "production",
            "BASE_URL": f"http://127.0.0.1:{self.port}",
            "PYTHONPATH": str(ROOT),
            # The load polls a few hundred feed URLs many times a minute (a
            # calendar polls one every 15 minutes): at the production limit
            # most polls would be 429s and the figures would time the limiter.
            "BOOKING_FEED_RATE_LIMIT": "100000 per minute",
            **(env or {}),
        }

    def __enter__(self) -> Gunicorn:
        command = [
            GUNICORN,
            "-w",
            str(self.workers),
            "-k",
            "sync",
            "-b",
            f"127.0.0.1:{self.port}",
            "--backlog",
            "2048",
            "--timeout",
            "120",
            "--log-level",
            "warning",
            self.target,
        ]
        self.process = subprocess.Popen(command, cwd=str(ROOT), env=self.env)
        wait_for(self.port)
        return self

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


class WerkzeugServer:
    """The app on werkzeug's threaded server in this process (the smoke test)."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port

    def __enter__(self) -> WerkzeugServer:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def warm_feeds(port: int, workload: Workload, threads: int = 8) -> None:
    """First answers of the feeds the clients poll (each builds and keeps
    its event texts once), so the run polls them as calendars do."""
    paths = [f"/ical/{t}.ics" for t in workload.world.personal_feeds + workload.world.lab_feeds]
    resources = dict.fromkeys(
        pair[0] for pair in workload.world.pairs[: workload.world.resource_feeds]
    )
    paths += [f"/ical/resources/{resource_id}.ics" for resource_id in resources]
    queue = collections.deque(paths)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            try:
                path = queue.popleft()
            except IndexError:
                break
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status == 200 and response.getheader("ETag"):
                    workload.etags[path] = response.getheader("ETag")
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
        conn.close()

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def remove_bare_rows(engine) -> int:
    from sqlalchemy import text

    with engine.begin() as conn:
        return conn.execute(text("DELETE FROM reservations WHERE purpose = 'bare-bench'")).rowcount


# --- reporting -------------------------------------------------------------------------------


def print_report(result: dict, out=sys.stdout) -> None:
    app, bare = result["app"], result.get("bare")
    print(file=out)
    print(
        f"{result['clients']} clients, {result['seconds']:.0f} s measured after "
        f"{result['warmup']:.0f} s warm-up, gunicorn {result['workers']} sync workers; "
        f"load average {result['load_before'][0]:.2f} before, {result['load_after'][0]:.2f} after",
        file=out,
    )
    head = f"{'endpoint':<18}{'share':>7}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
    if bare:
        head += f"{'p50×bare':>10}{'p99×bare':>10}"
    print(head + "  answers", file=out)
    bare_rows = bare["endpoints"] if bare else {}
    total = app["total"]["count"] or 1
    for name, _kind, _share in MIX:
        row = app["endpoints"].get(name)
        if not row:
            continue
        line = (
            f"{name:<18}{row['count'] / total * 100:6.1f}%{row['rps']:8.1f}"
            f"{row['p50']:9.1f}{row['p95']:9.1f}{row['p99']:9.1f}"
        )
        if bare:
            ref = bare_rows.get("bare write" if row["kind"] == "write" else "bare read")
            if ref:
                line += f"{row['p50'] / ref['p50']:10.1f}{row['p99'] / ref['p99']:10.1f}"
        answers = ", ".join(f"{k}: {v}" for k, v in row["statuses"].items())
        print(f"{line}  {answers}", file=out)
    t = app["total"]
    print(
        f"{'platform, all':<18}{100:6.1f}%{t['rps']:8.1f}{t['p50']:9.1f}{t['p95']:9.1f}"
        f"{t['p99']:9.1f}   5xx {t['5xx']}, connection errors {t['errors']}",
        file=out,
    )
    if bare:
        for name in ("bare read", "bare write"):
            row = bare_rows.get(name)
            if row:
                print(
                    f"{name:<18}{row['count'] / bare['total']['count'] * 100:6.1f}%"
                    f"{row['rps']:8.1f}{row['p50']:9.1f}{row['p95']:9.1f}{row['p99']:9.1f}  "
                    + ", ".join(f"{k}: {v}" for k, v in row["statuses"].items()),
                    file=out,
                )
        b = bare["total"]
        print(
            f"{'ceiling, all':<18}{100:6.1f}%{b['rps']:8.1f}{b['p50']:9.1f}{b['p95']:9.1f}"
            f"{b['p99']:9.1f}",
            file=out,
        )
        print(file=out)
        print(
            f"throughput, platform / ceiling (same clients, same mix): "
            f"{result['ratio']:.2f}   (target ≥ 0.50)",
            file=out,
        )
    print(
        f"platform p99: {t['p99']:.0f} ms   (target < 250 ms);  5xx: {t['5xx']}   (target 0)",
        file=out,
    )
    for name, count in result["checks"].items():
        print(f"{name}: {count}   (target 0)", file=out)


def run(
    database_url: str,
    *,
    clients: int = 64,
    seconds: float = 60,
    warmup: float = 10,
    workers: int = 4,
    bare: bool = True,
    seed: int = 7,
    app=None,
    rounds: int | None = None,
    log=print,
) -> dict:
    """The whole benchmark; ``app`` given: serve it with werkzeug in this
    process instead of gunicorn (and no ceiling); ``rounds``: see ``drive``."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url)
    world = load_world(engine, datetime.now(UTC))
    log(
        f"world: {len(world.resources)} resources, {len(world.pairs)} customer-resource pairs, "
        f"{len(world.approvals)} requests to decide, {len(world.cancellable)} bookings to cancel, "
        f"{len(world.personal_feeds)} + {len(world.lab_feeds)} feeds"
    )
    workload = Workload(world)
    result = {
        "clients": clients,
        "seconds": seconds,
        "warmup": warmup,
        "workers": workers,
        "database_url": database_url,
    }
    if bare and app is None:
        org_user = {
            "BARE_ORG_ID": str(world.sample_bare_user[1]),
            "BARE_USER_ID": str(world.sample_bare_user[0]),
        }
        log(f"ceiling: bench/bare_app.py, {clients} clients, {seconds:.0f} s …")
        with Gunicorn("bench.bare_app:app", database_url, workers, org_user) as server:
            figures = drive(server.port, BareWorkload(workload), clients, seconds, warmup, seed)
        result["bare"] = summary(figures)
        removed = remove_bare_rows(engine)
        log(f"  {result['bare']['total']['rps']:.0f} req/s; {removed} rows of its writes removed")
    result["load_before"] = load_average()
    server = Gunicorn("wsgi:app", database_url, workers) if app is None else WerkzeugServer(app)
    with server:
        log("platform: warming the feeds …")
        warm_feeds(server.port, workload)
        log(f"platform: {clients} clients, {seconds:.0f} s …")
        figures = drive(server.port, workload, clients, seconds, warmup, seed, rounds)
    result["load_after"] = load_average()
    result["app"] = summary(figures)
    if "bare" in result:
        result["ratio"] = result["app"]["total"]["rps"] / result["bare"]["total"]["rps"]
    with engine.connect() as conn:
        result["checks"] = generate.consistency(conn)
    engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", generate.DEFAULT_URL)
    )
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--no-bare", action="store_true", help="without the ceiling")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    result = run(
        args.database_url,
        clients=args.clients,
        seconds=args.seconds,
        warmup=args.warmup,
        workers=args.workers,
        bare=not args.no_bare,
    )
    print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, ensure_ascii=False))
    failed = result["app"]["total"]["5xx"] or any(result["checks"].values())
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
