"""Benchmark of the reports: the voucher settlement report and the
open-sharing report over a million completed bookings with their ledger.

    .venv/bin/python bench/reports.py [--sizes 100000,1000000]
        [--url postgresql://postgres@127.0.0.1:5432/h5_reports_bench] [--repeat 3]
    .venv/bin/python bench/reports.py --measure-only   # the data already loaded

The database named by ``--url`` is made if missing and emptied (it must be a
database of its own); ``--measure-only`` keeps it and measures what it holds.
The data are generated inside PostgreSQL with ``INSERT ... SELECT
generate_series`` (minutes, not hours):

- 11 Shanxi city bureaus and the province, 500 labs spread over the cities,
  20,000 enterprises, one user each;
- 6,000 instruments: 5,000 in the national assessment's scope
  (government-funded, 500,000 CNY and more), 1,000 not;
- completed and settled bookings over 2024 and 2025, growing to each of
  ``--sizes`` in turn: one in ten by the lab itself (internal), a third with
  recorded prep/run/post minutes, three in ten rated, half paid with a
  voucher (one of 50,000, issued by the holder's city bureau, so a share of
  them flows across regions), each voucher booking with its hold, redeem and
  release ledger entries, and six in ten of those claimed (pending,
  approved, paid);
- 20,000 trainings; an expiry entry for three vouchers in ten.

Then, for each size, it times (median of ``--repeat`` runs, after one warm-up):

- the settlement report of 2025 for the province (every booking touches it)
  in each grouping, and for one city (cross-region flows);
- the XLSX of the settlement report in each grouping: writing it from the
  report, and query plus writing;
- the open-sharing report of 2025 for the province: 5,000 instruments;
- its XLSX (standard and NRII layout), query included.

Each figure is printed with the machine's 1-minute load average when it was
taken (the machine is shared), and the last table gives the growth from the
smallest to the largest size.

Targets (issue 8): settlement < 2 s in any grouping, open sharing < 3 s,
XLSX < 5 s, at 1,000,000 bookings.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import generate
from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.types import ARRAY, JSON, TypeDecorator

from booking import create_app
from booking.authz import Actor, MembershipView
from booking.extensions import db
from booking.process_settings import tune_garbage_collector
from booking.schemas import reports as schemas
from booking.services import reports

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/h5_reports_bench"
CITIES = [f"14{n:02d}00" for n in range(1, 12)]
PROVIDERS = 500
ENTERPRISES = 20_000
INSTRUMENTS = 5_000
OTHER_RESOURCES = 1_000
VOUCHERS = 50_000
TRAININGS = 20_000
GROUPINGS = ("provider", "enterprise", "category", "region", "month")

log = logging.getLogger("bench.reports")


def ensure_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(
        parsed.set(drivername="postgresql+psycopg", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        found = conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
        )
        if not found:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def _literal(value) -> str:
    import enum
    import json
    from datetime import date as date_type
    from datetime import datetime as datetime_type
    from decimal import Decimal

    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime_type | date_type):
        return f"'{value.isoformat()}'"
    if isinstance(value, list | dict):
        return "'" + json.dumps(value).replace("'", "''") + "'"
    return "'" + str(value).replace("'", "''") + "'"


def fill_defaults(table, given: dict[str, str]) -> dict[str, str]:
    """SQL for every NOT NULL column the generator does not set and the
    database has no default for (columns other areas add later): the model's
    own default where it has one, else a neutral value of the column's type."""
    sql = dict(given)
    for column in table.columns:
        if column.name in sql or column.nullable or column.server_default is not None:
            continue
        if column.primary_key:
            continue
        default = column.default
        if isinstance(column.type, ARRAY):
            sql[column.name] = "'{}'"
            continue
        if default is not None and getattr(default, "is_scalar", False):
            sql[column.name] = _literal(default.arg)
            continue
        if default is not None and getattr(default, "is_callable", False):
            try:
                sql[column.name] = _literal(default.arg(None))
                continue
            except Exception:
                pass
        kind = column.type
        if isinstance(kind, TypeDecorator):
            kind = kind.impl_instance
        if isinstance(kind, Boolean):
            sql[column.name] = "false"
        elif isinstance(kind, Integer | Numeric):
            sql[column.name] = "0"
        elif isinstance(kind, JSON):
            sql[column.name] = "'[]'"
        elif isinstance(kind, DateTime):
            sql[column.name] = "now()"
        elif isinstance(kind, Date):
            sql[column.name] = "current_date"
        elif getattr(kind, "enums", None):
            sql[column.name] = f"'{kind.enums[0]}'"
        else:
            sql[column.name] = "''"
    return sql


def insert_select(conn, table, columns: dict[str, str], source: str) -> None:
    columns = fill_defaults(table, columns)
    names = ", ".join(columns)
    values = ", ".join(f"{expr}" for expr in columns.values())
    conn.execute(text(f"INSERT INTO {table.name} ({names}) SELECT {values} {source}"))


def tables():
    from booking.models.base import Base

    return Base.metadata.tables


def seed_world(conn) -> None:
    """Everything but the bookings: organisations, users, catalog, vouchers."""
    t = tables()
    conn.execute(text("SELECT setseed(0.42)"))
    insert_select(
        conn,
        t["organizations"],
        {
            "kind": "'bureau'",
            "name": "'科技局' || r.code",
            "uscc": "'11' || r.code || lpad(r.n::text, 10, '0')",
            "region": "r.code",
            "status": "'active'",
            "voucher_provider": "false",
        },
        "FROM (SELECT code, row_number() OVER () AS n FROM unnest(ARRAY["
        + ", ".join(f"'{c}'" for c in [*CITIES, "140000"])
        + "]) AS code) r",
    )
    cities = "ARRAY[" + ", ".join(f"'{c[:4]}'" for c in CITIES) + "]"
    insert_select(
        conn,
        t["organizations"],
        {
            "kind": "'provider'",
            "name": "'实验室' || i",
            "uscc": "'12' || lpad(i::text, 16, '0')",
            "region": f"({cities})[1 + i % 11] || '05'",
            "status": "'active'",
            "voucher_provider": "true",
        },
        f"FROM generate_series(1, {PROVIDERS}) i",
    )
    insert_select(
        conn,
        t["organizations"],
        {
            "kind": "'enterprise'",
            "name": "'企业' || i",
            "uscc": "'91' || lpad(i::text, 16, '0')",
            "region": f"({cities})[1 + (i * 7) % 11] || '02'",
            "status": "'active'",
            "size_class": "'small'",
            "voucher_provider": "false",
        },
        f"FROM generate_series(1, {ENTERPRISES}) i",
    )
    insert_select(
        conn,
        t["users"],
        {
            "email": "'u' || o.id || '@bench.cn'",
            "name": "o.name",
            "locale": "'zh_CN'",
            "password_hash": "'x'",
            "active": "true",
            "platform_admin": "false",
            "session_version": "1",
        },
        "FROM organizations o ORDER BY o.id",
    )
    insert_select(
        conn,
        t["memberships"],
        {
            "user_id": "u.id",
            "organization_id": "o.id",
            "role": "CASE WHEN o.kind = 'provider' THEN 'admin' ELSE 'member' END",
        },
        "FROM organizations o JOIN users u ON u.email = 'u' || o.id || '@bench.cn'",
    )
    insert_select(
        conn,
        t["categories"],
        {
            "code": "'B' || lpad(i::text, 3, '0')",
            "name_zh": "'类别' || i",
            "name_en": "'Category ' || i",
            "service_category": "(ARRAY['instrument_sharing', 'testing'])[1 + i % 2]",
            "nrii_code": "lpad((10100 + i)::text, 6, '0')",
            "aliases": "'[]'",
        },
        "FROM generate_series(1, 10) i",
    )
    resource_columns = {
        "provider_id": "p.id",
        "kind": "'instrument'",
        "category_id": "(SELECT min(id) FROM categories) + i % 10",
        "service_category": "(ARRAY['instrument_sharing', 'testing'])[1 + i % 2]",
        "name_zh": "'仪器' || i",
        "name_en": "'Instrument ' || i",
        "region": "p.region",
        "status": "CASE WHEN i % 20 = 0 THEN 'maintenance' ELSE 'available' END",
        "voucher_eligible": "true",
        "original_value": f"CASE WHEN i <= {INSTRUMENTS} THEN 500000 + (i % 97) * 25000 "
        "ELSE 120000 END",
        "funding_source": f"CASE WHEN i <= {INSTRUMENTS} THEN 'government' ELSE 'self' END",
        "accepted_on": "date '2020-01-01' + (i % 1800)",
        "nrii_reported_on": "CASE WHEN i % 10 = 0 THEN NULL ELSE date '2020-03-01' + (i % 1800) "
        "END",
        "special_purpose": "i % 8 = 0",
        "inner_id": "'BN-' || lpad(i::text, 6, '0')",
        "country": "'CHN'",
        "manufacturer": "'厂商'",
        "model": "'M-' || i",
        "capacity": "1",
        "capacity_unit": "'instrument'",
        "granularity_minutes": "30",
        "min_minutes": "30",
        "max_minutes": "480",
        "search_text": "''",
        "extra": "'{}'",
    }
    insert_select(
        conn,
        t["resources"],
        resource_columns,
        f"FROM generate_series(1, {INSTRUMENTS + OTHER_RESOURCES}) i "
        "JOIN (SELECT id, region, row_number() OVER (ORDER BY id) - 1 AS n "
        f"FROM organizations WHERE kind = 'provider') p ON p.n = i % {PROVIDERS}",
    )
    insert_select(
        conn,
        t["price_rules"],
        {
            "resource_id": "r.id",
            "customer_class": "'enterprise'",
            "unit": "'hour'",
            "unit_price": "200",
            "setup_fee": "0",
            "min_quantity": "0",
            "published": "true",
            "effective_from": "timestamptz '2020-01-01'",
        },
        "FROM resources r",
    )
    insert_select(
        conn,
        t["voucher_policies"],
        {"bureau_id": "b.id", "effective_from": "date '2020-01-01'"},
        "FROM organizations b WHERE b.kind = 'bureau'",
    )
    insert_select(
        conn,
        t["vouchers"],
        {
            "bureau_id": "b.id",
            "issuing_region": "b.region",
            "holder_org_id": "e.id",
            "holder_region": "e.region",
            "policy_id": "(SELECT id FROM voucher_policies WHERE bureau_id = b.id)",
            "face_value": "200000",
            "valid_from": "timestamptz '2024-01-01 00:00+08'",
            "valid_until": "timestamptz '2025-12-31 23:59:59+08'",
            "coverage_ratio": "0.5",
            "service_categories": '\'["instrument_sharing", "testing"]\'',
            "provider_regions": "'[]'",
            "status": "'active'",
            "issued_at": "timestamptz '2024-01-02 09:00+08'",
        },
        f"FROM generate_series(1, {VOUCHERS}) i "
        "JOIN (SELECT id, region, row_number() OVER (ORDER BY id) - 1 AS n "
        f"FROM organizations WHERE kind = 'enterprise') e ON e.n = i % {ENTERPRISES} "
        "JOIN organizations b ON b.kind = 'bureau' AND b.region = substr(e.region, 1, 4) || '00'",
    )
    insert_select(
        conn,
        t["voucher_ledger_entries"],
        {
            "voucher_id": "v.id",
            "issuing_region": "v.issuing_region",
            "holder_org_id": "v.holder_org_id",
            "kind": "'issue'",
            "amount": "v.face_value",
            "at": "v.issued_at",
        },
        "FROM vouchers v",
    )
    insert_select(
        conn,
        t["voucher_ledger_entries"],
        {
            "voucher_id": "v.id",
            "issuing_region": "v.issuing_region",
            "holder_org_id": "v.holder_org_id",
            "kind": "'expire'",
            "amount": "-1000",
            "at": "CASE WHEN v.id % 2 = 0 THEN timestamptz '2024-12-31 23:59:59+08' "
            "ELSE timestamptz '2025-12-31 23:59:59+08' END",
        },
        "FROM vouchers v WHERE v.id % 10 < 3",
    )
    insert_select(
        conn,
        t["training_records"],
        {
            "user_id": "(SELECT min(id) FROM users) + i % 20000",
            "resource_id": f"(SELECT min(id) FROM resources) + i % {INSTRUMENTS}",
            "granted_at": "timestamptz '2024-01-01' + (i % 700) * interval '1 day'",
        },
        f"FROM generate_series(1, {TRAININGS}) i",
    )


def add_bookings(conn, first: int, last: int) -> None:
    """Bookings ``first``..``last`` (1-based) with ratings, ledger and claims."""
    t = tables()
    conn.execute(text(f"SELECT setseed({(first % 1000) / 1000.0})"))
    conn.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS ids AS SELECT "
            "(SELECT min(id) FROM resources) AS r0, "
            "(SELECT min(id) FROM organizations WHERE kind = 'enterprise') AS e0, "
            "(SELECT min(id) FROM vouchers) AS v0"
        )
    )
    start = (
        "timestamptz '2024-01-01 08:00+08' + ((i * 7919) % 730) * interval '1 day' "
        "+ (i % 10) * interval '1 hour'"
    )
    hours = "(1 + i % 4)"
    voucher = "CASE WHEN i % 2 = 0 THEN ids.v0 + (i / 2) % 50000 END"

    def of_voucher(column: str) -> str:
        return f"(SELECT {column} FROM vouchers WHERE id = ids.v0 + (i / 2) % 50000)"

    columns = {
        "resource_id": f"ids.r0 + (i * 31) % {INSTRUMENTS + OTHER_RESOURCES}",
        # one in ten by the lab itself (internal use); a voucher pays only
        # for its holder's bookings
        "customer_org_id": f"CASE WHEN i % 2 = 0 THEN {of_voucher('holder_org_id')} "
        "WHEN i % 10 = 3 THEN r.provider_id "
        f"ELSE ids.e0 + (i * 13) % {ENTERPRISES} END",
        "user_id": "(SELECT min(id) FROM users) + (i * 13) % 20000",
        "start_at": start,
        "end_at": f"{start} + {hours} * interval '1 hour'",
        "busy_start": start,
        "busy_end": f"{start} + {hours} * interval '1 hour'",
        "exclusive": "true",
        "units": "1",
        "status": "CASE WHEN i % 3 = 0 THEN 'settled' ELSE 'completed' END",
        "purpose": "''",
        "with_operator": "false",
        "other_public_subsidy": "false",
        "customer_class": "'enterprise'",
        "price_snapshot": "'{}'",
        "estimated_cost": f"{hours} * 200",
        "voucher_id": voucher,
        "voucher_hold": "0",
        "final_cost": f"{hours} * 200",
        "voucher_amount": f"CASE WHEN i % 2 = 0 THEN {hours} * 100 ELSE 0 END",
        "customer_amount": f"CASE WHEN i % 2 = 0 THEN {hours} * 100 ELSE {hours} * 200 END",
        "actual_start": start,
        "actual_end": f"{start} + {hours} * interval '1 hour'",
        "prep_minutes": "CASE WHEN i % 3 = 1 THEN 10 END",
        "run_minutes": f"CASE WHEN i % 3 = 1 THEN {hours} * 60 - 20 END",
        "post_minutes": "CASE WHEN i % 3 = 1 THEN 5 END",
        "service_way": "'self_operated'",
        "sequence": "0",
        # the instant of its redeem entry below (what the ledger's insert hook
        # writes when the application redeems)
        "redeemed_at": f"CASE WHEN i % 2 = 0 THEN {start} + {hours} * interval '1 hour' "
        "+ interval '1 hour' END",
        "redeemed_region": f"CASE WHEN i % 2 = 0 THEN {of_voucher('issuing_region')} END",
    }
    insert_select(
        conn,
        t["reservations"],
        columns,
        f"FROM generate_series({first}::bigint, {last}::bigint) i CROSS JOIN ids "
        f"JOIN resources r ON r.id = ids.r0 + (i * 31) % {INSTRUMENTS + OTHER_RESOURCES}",
    )
    new = "r.id > (SELECT coalesce(max(reservation_id), 0) FROM ratings)"
    insert_select(
        conn,
        t["ratings"],
        {
            "reservation_id": "r.id",
            "user_id": "r.user_id",
            "score": "1 + r.id % 5",
            "comment": "''",
            "created_at": "r.end_at",
        },
        f"FROM reservations r WHERE r.id % 10 < 3 AND {new}",
    )
    fresh = "r.id > (SELECT coalesce(max(reservation_id), 0) FROM voucher_ledger_entries)"
    conn.execute(
        text(
            "CREATE TEMP TABLE fresh AS SELECT r.* FROM reservations r "
            f"WHERE r.voucher_id IS NOT NULL AND {fresh}"
        )
    )
    ledger = t["voucher_ledger_entries"]
    for kind, amount, at in (
        ("hold", "-f.voucher_amount", "f.start_at - interval '2 days'"),
        ("redeem", "-f.voucher_amount", "f.end_at + interval '1 hour'"),
        ("release", "f.voucher_amount", "f.end_at + interval '1 hour'"),
    ):
        insert_select(
            conn,
            ledger,
            {
                "voucher_id": "f.voucher_id",
                "issuing_region": "v.issuing_region",
                "holder_org_id": "v.holder_org_id",
                "kind": f"'{kind}'",
                "amount": amount,
                "reservation_id": "f.id",
                "resource_id": "f.resource_id",
                "at": at,
            },
            "FROM fresh f JOIN vouchers v ON v.id = f.voucher_id",
        )
    # Claims: one per provider and quarter of the new bookings, lines for six in ten.
    conn.execute(
        text(
            "CREATE TEMP TABLE claim_keys AS SELECT DISTINCT s.provider_id, "
            "date_trunc('quarter', f.end_at AT TIME ZONE 'Asia/Shanghai')::date AS q, "
            "v.bureau_id FROM fresh f JOIN resources s ON s.id = f.resource_id "
            "JOIN vouchers v ON v.id = f.voucher_id WHERE f.id % 10 < 6"
        )
    )
    claims_before = conn.scalar(text("SELECT coalesce(max(id), 0) FROM claims"))
    insert_select(
        conn,
        t["claims"],
        {
            "bureau_id": "k.bureau_id",
            "bureau_region": "(SELECT region FROM organizations WHERE id = k.bureau_id)",
            "claimant_org_id": "k.provider_id",
            "claimant_kind": "'provider'",
            "period_from": "k.q",
            "period_to": "(k.q + interval '3 months' - interval '1 day')::date",
            "status": "(ARRAY['submitted', 'audited', 'paid'])[1 + (k.provider_id % 3)]",
            "claimed_amount": "0",
            "audit_levels": "'[]'",
            "notice_days": "0",
            "payment_cadence": "'per_claim'",
        },
        "FROM claim_keys k",
    )
    insert_select(
        conn,
        t["claim_lines"],
        {
            "claim_id": "c.id",
            "reservation_id": "f.id",
            "voucher_id": "f.voucher_id",
            "provider_id": "s.provider_id",
            "provider_region": "p.region",
            "customer_org_id": "f.customer_org_id",
            "status": "CASE WHEN c.status = 'submitted' THEN 'pending' ELSE 'approved' END",
            "levels_passed": "0",
            "completed_at": "f.end_at",
            "final_cost": "f.final_cost",
            "voucher_amount": "f.voucher_amount",
            "customer_amount": "f.customer_amount",
        },
        "FROM fresh f JOIN resources s ON s.id = f.resource_id "
        "JOIN organizations p ON p.id = s.provider_id "
        "JOIN vouchers v ON v.id = f.voucher_id "
        "JOIN claims c ON c.claimant_org_id = s.provider_id AND c.bureau_id = v.bureau_id "
        "AND c.period_from = date_trunc('quarter', f.end_at AT TIME ZONE 'Asia/Shanghai')::date "
        f"AND c.id > {claims_before} "
        "WHERE f.id % 10 < 6 AND f.voucher_amount > 0",
    )
    conn.execute(text("DROP TABLE fresh"))
    conn.execute(text("DROP TABLE claim_keys"))


def bureau_actor(conn, region: str) -> Actor:
    org_id = conn.scalar(
        text("SELECT id FROM organizations WHERE kind = 'bureau' AND region = :r"), {"r": region}
    )
    return Actor(user_id=1, memberships=(MembershipView(org_id, "bureau", "member", region),))


class Timing:
    """Medians over the runs: wall-clock seconds, CPU seconds (this process
    plus the PostgreSQL backend serving it) and the 1-minute load average."""

    def __init__(self, seconds: float, cpu: float, load: float) -> None:
        self.seconds, self.cpu, self.load = seconds, cpu, load

    def __add__(self, other: Timing) -> Timing:
        return Timing(
            self.seconds + other.seconds, self.cpu + other.cpu, max(self.load, other.load)
        )


#: The PostgreSQL backend process serving the measurements (same machine).
BACKEND = {"pid": None}


def backend_cpu() -> float:
    """CPU seconds the backend has used so far (user + system, from /proc)."""
    pid = BACKEND["pid"]
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(fn, repeat: int) -> tuple[Timing, object]:
    fn()  # warm-up: plans and caches, as on a running server
    runs, cpus, loads = [], [], []
    result = None
    for _ in range(repeat):
        cpu_before = time.process_time() + backend_cpu()
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
        cpus.append(time.process_time() + backend_cpu() - cpu_before)
        loads.append(os.getloadavg()[0])
    timing = Timing(statistics.median(runs), statistics.median(cpus), statistics.median(loads))
    return timing, result


def measure(app, repeat: int, parallel: bool) -> dict[str, Timing]:
    """Every figure, with PostgreSQL's parallel query as the server allows it
    (``parallel``: the production setting, what the targets are about) or
    switched off, so that the one backend does all of the database's work and
    its CPU time is all of it (parallel workers are other processes, whose
    CPU time this reading would miss)."""
    figures: dict[str, Timing] = {}

    def note(name: str, timing: Timing) -> None:
        figures[name] = timing
        log.info(
            "  %-66s %8.0f ms wall %8.0f ms CPU  (load %.1f)",
            name,
            timing.seconds * 1000,
            timing.cpu * 1000,
            timing.load,
        )

    with app.app_context():
        session = db.session
        conn = session.connection()
        if not parallel:
            conn.execute(text("SET max_parallel_workers_per_gather = 0"))
        log.info(
            "  parallel query %s (max_parallel_workers_per_gather = %s)",
            "allowed" if parallel else "off",
            conn.scalar(text("SHOW max_parallel_workers_per_gather")),
        )
        BACKEND["pid"] = conn.scalar(text("SELECT pg_backend_pid()"))
        province = bureau_actor(conn, "140000")
        taiyuan = bureau_actor(conn, "140100")
        # The machine's speed at the moment, to compare runs taken under
        # different loads: a plain scan of the ledger.
        timing, _ = timed(
            lambda: conn.scalar(text("SELECT count(*) FROM voucher_ledger_entries")), repeat
        )
        note("baseline: count(*) of the voucher ledger (a plain scan)", timing)
        period = {"period_from": date(2025, 1, 1), "period_to": date(2025, 12, 31)}
        written: dict[str, tuple[Timing, Timing, int]] = {}
        for group_by in GROUPINGS:
            timing, report = timed(
                lambda g=group_by: reports.settlement_report(
                    session, province, group_by=g, **period
                ),
                repeat,
            )
            assert report.reconciliation.ok, report.reconciliation
            note(f"settlement 2025, province, by {group_by} ({len(report.lines):,} lines)", timing)
            writing, body = timed(
                lambda r=report: schemas.to_xlsx(schemas.settlement_table(r, str)), repeat
            )
            written[group_by] = (timing, writing, len(body))
        timing, report = timed(
            lambda: reports.settlement_report(session, taiyuan, group_by="provider", **period),
            repeat,
        )
        note(f"settlement 2025, Taiyuan, by provider ({len(report.lines):,} lines)", timing)
        timing, wide = timed(
            lambda: reports.settlement_report(
                session,
                province,
                group_by="enterprise",
                period_from=date(2024, 1, 1),
                period_to=date(2025, 12, 31),
            ),
            repeat,
        )
        note(f"settlement 2024-2025, province, by enterprise ({len(wide.lines):,} lines)", timing)
        for group_by, (query, writing, size) in written.items():
            note(f"settlement XLSX by {group_by}, writing ({size // 1024:,} KiB)", writing)
            note(f"settlement XLSX by {group_by}, query + writing", query + writing)

        def open_sharing():
            return reports.open_sharing_report(session, province, year=2025, region="14")

        timing, report = timed(open_sharing, repeat)
        note(f"open sharing 2025, province ({len(report.lines):,} instruments)", timing)

        def xlsx_open_sharing():
            return schemas.to_xlsx(schemas.open_sharing_table(open_sharing(), str))

        timing, body = timed(xlsx_open_sharing, repeat)
        note(f"open sharing XLSX, query included ({len(body) // 1024:,} KiB)", timing)
        timing, _ = timed(lambda: schemas.to_xlsx(schemas.nrii_table(open_sharing())), repeat)
        note("open sharing NRII XLSX, query included", timing)
        session.rollback()
    return figures


def counts(app) -> dict[str, int]:
    with app.app_context():
        return {
            name: db.session.scalar(text(f"SELECT count(*) FROM {name}"))
            for name in ("reservations", "voucher_ledger_entries", "claim_lines", "ratings")
        }


def bench_app(url: str):
    """The app, in a process with the garbage collector's settings of a
    serving process (``wsgi.py``), as a report download runs in one."""
    app = create_app({"ENV_NAME": "testing", "DATABASE_URL": url, "TESTING": False})
    tune_garbage_collector()
    return app


def check_facts(conn) -> None:
    """The loaded data as the application writes it: every booking's
    ``redeemed_at`` and ``redeemed_region`` are its first redeem entry's
    instant and voucher region, every booking entry names the booking's
    resource, every entry its voucher's region and holder, every voucher
    booking's customer is the voucher's holder."""
    wrong = conn.scalar(
        text(
            "SELECT count(*) FROM reservations r LEFT JOIN (SELECT reservation_id, min(at) AS at "
            "FROM voucher_ledger_entries WHERE kind = 'redeem' GROUP BY reservation_id) m "
            "ON m.reservation_id = r.id WHERE r.redeemed_at IS DISTINCT FROM m.at"
        )
    )
    wrong += conn.scalar(
        text(
            "SELECT count(*) FROM reservations r JOIN vouchers v ON v.id = r.voucher_id "
            "WHERE r.customer_org_id <> v.holder_org_id OR (r.redeemed_at IS NOT NULL "
            "AND r.redeemed_region IS DISTINCT FROM v.issuing_region)"
        )
    )
    wrong += conn.scalar(
        text(
            "SELECT count(*) FROM voucher_ledger_entries e JOIN vouchers v ON v.id = e.voucher_id "
            "WHERE e.issuing_region <> v.issuing_region OR e.holder_org_id <> v.holder_org_id"
        )
    )
    wrong += conn.scalar(
        text(
            "SELECT count(*) FROM voucher_ledger_entries e JOIN reservations r "
            "ON r.id = e.reservation_id WHERE e.resource_id IS DISTINCT FROM r.resource_id"
        )
    )
    assert wrong == 0, f"{wrong} bookings or entries out of step"


def load(url: str, sizes: list[int], repeat: int, measure_each: bool) -> dict:
    """Empty the database, seed the world, grow the bookings to each size
    (measuring after each when ``measure_each``)."""
    results = {}
    ensure_database(url)
    app = bench_app(url)
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        db.drop_all()
        db.create_all()
        started = time.perf_counter()
        with db.engine.begin() as conn:
            seed_world(conn)
        log.info("world seeded in %.1f s", time.perf_counter() - started)
    done = 0
    for size in sizes:
        started = time.perf_counter()
        with app.app_context(), db.engine.begin() as conn:
            add_bookings(conn, done + 1, size)
            check_facts(conn)
        with (
            app.app_context(),
            db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
        ):
            generate.settle(conn, log.info)
        done = size
        log.info(
            "%s bookings loaded in %.1f s into %s: %s",
            f"{size:,}",
            time.perf_counter() - started,
            make_url(url).database,
            ", ".join(f"{k} {v:,}" for k, v in counts(app).items()),
        )
        if measure_each:
            results[size] = measure_both(app, repeat)
    return results


def measure_both(app, repeat: int) -> dict[str, dict[str, Timing]]:
    return {"parallel": measure(app, repeat, True), "serial": measure(app, repeat, False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=DEFAULT_URL,
        help="comma-separated: one database per size (or one for all sizes, grown in turn)",
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--measure-only", action="store_true", help="measure the data already in --url"
    )
    parser.add_argument("--load-only", action="store_true", help="load, do not measure")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    urls = args.url.split(",")
    results: dict[int, dict[str, dict[str, Timing]]] = {}
    if args.measure_only:
        for url in urls:
            app = bench_app(url)
            size = counts(app)["reservations"]
            log.info("%s bookings in %s", f"{size:,}", make_url(url).database)
            results[size] = measure_both(app, args.repeat)
        report(results, args.repeat)
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if len(urls) == len(sizes) > 1:
        for url, size in zip(urls, sizes, strict=True):
            results.update(load(url, [size], args.repeat, not args.load_only))
    else:
        results = load(urls[0], sizes, args.repeat, not args.load_only)
    if results:
        report(results, args.repeat)


def target_of(name: str) -> float | None:
    """The target of issue 8 at 1,000,000 bookings (wall clock, seconds) of a
    figure, by its name: XLSX < 5 s (query included), settlement < 2 s,
    open sharing < 3 s; none for the XLSX writing alone and the baseline."""
    name = name.split(" (")[0]
    if name.endswith(", writing") or name.startswith("baseline"):
        return None
    if "XLSX" in name:
        return 5.0
    if name.startswith("settlement"):
        return 2.0
    if name.startswith("open sharing"):
        return 3.0
    return None


def report(results: dict[int, dict[str, dict[str, Timing]]], repeat: int) -> None:
    """The table: per size, the wall-clock milliseconds with parallel query
    allowed (what the targets are about), then wall-clock and CPU
    milliseconds with it off (the backend's CPU is all of the database's)
    and the load average; the target and whether the largest size meets it;
    the growth of the CPU time from the smallest size to the largest."""
    sizes = sorted(results)

    def base(name: str) -> str:
        return name.split(" (")[0]

    def find(size: int, mode: str, name: str) -> Timing | None:
        match = [t for k, t in results[size][mode].items() if base(k) == base(name)]
        return match[0] if match else None

    print()
    print(
        f"median of {repeat} runs, ms: wall with parallel query | wall / CPU without it "
        "(load average)"
    )
    header = "".join(f"{f'{s:,} bookings':>34}" for s in sizes)
    growth = f"{'CPU growth':>11}" if len(sizes) > 1 else ""
    print(f"{'':<62}{header}{'target':>9}{'met':>5}{growth}")
    for name in results[sizes[-1]]["parallel"]:
        cells, cpus = [], []
        for size in sizes:
            par, ser = find(size, "parallel", name), find(size, "serial", name)
            if par and ser:
                cpus.append(ser.cpu)
                cells.append(
                    f"{par.seconds * 1000:7.0f} |{ser.seconds * 1000:7.0f} /"
                    f"{ser.cpu * 1000:6.0f} ({max(par.load, ser.load):4.1f})"
                )
            else:
                cpus.append(None)
                cells.append(f"{'–':>34}")
        target = target_of(name)
        last = find(sizes[-1], "parallel", name)
        met = "" if target is None or last is None else ("yes" if last.seconds < target else "NO")
        line = f"{name:<62}{''.join(f'{c:>34}' for c in cells)}"
        line += f"{f'< {target:.0f} s' if target else '':>9}{met:>5}"
        if len(sizes) > 1 and cpus[0] and cpus[-1] is not None:
            line += f"{cpus[-1] / cpus[0]:10.1f}×"
        print(line)


if __name__ == "__main__":
    main()
