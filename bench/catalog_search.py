"""Benchmark of the catalog search: 20,000 resources in PostgreSQL, a text
search with two filters through the HTTP API, against the same SQL run
directly through psycopg.

    .venv/bin/python bench/catalog_search.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/h_catalog_bench

What it does:

1. builds the schema from the models in the named database (made if
   missing, emptied if not), with ``pg_trgm``, and loads the categories;
2. loads ``--resources`` resources (60 labs across Shanxi, realistic
   bilingual names, makers, models, descriptions, search text built by the
   catalog's own function) with their prices and opening hours, by COPY;
3. serves the app with gunicorn (``--workers`` sync workers) on 127.0.0.1
   and asks ``GET /api/v1/resources?q=..&kind=..&region=..`` (a text search
   and two filters) ``--requests`` times, one client, after a warm-up;
4. captures the SQL that very request runs (the planner setting, the search
   and the loads of the page's resources) and runs it directly through
   psycopg as many times, the search statement alone and all of them;
5. prints p50/p95 of both and the ratios.

Targets (issue 3): p95 through HTTP under 50 ms, and within 3× of the same
query run directly.
"""

# ruff: noqa: E501  (tables of sample data and a printed report)
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import create_engine, event, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/h_catalog_bench"
GUNICORN = str(Path(sys.executable).parent / "gunicorn")

# (category, kind, Chinese name, English name, makers and models)
TEMPLATES = [
    ("0101", "instrument", "场发射扫描电子显微镜", "Field-emission scanning electron microscope",
     [("ZEISS", "Sigma 300"), ("ZEISS", "GeminiSEM 500"), ("Hitachi", "SU8010"), ("JEOL", "JSM-7900F")]),
    ("0101", "instrument", "透射电子显微镜", "Transmission electron microscope",
     [("Thermo Fisher", "Talos F200X"), ("JEOL", "JEM-2100F"), ("FEI", "Tecnai G2 F20")]),
    ("0101", "instrument", "台式扫描电子显微镜", "Benchtop scanning electron microscope",
     [("Phenom", "XL G2"), ("Hitachi", "TM4000Plus")]),
    ("0102", "instrument", "显微共聚焦激光拉曼光谱仪", "Confocal Raman microscope",
     [("HORIBA", "LabRAM HR Evolution"), ("Renishaw", "inVia Qontor")]),
    ("0102", "instrument", "傅里叶变换红外光谱仪", "FTIR spectrometer",
     [("Thermo Fisher", "Nicolet iS50"), ("Bruker", "TENSOR II")]),
    ("0102", "instrument", "紫外可见近红外分光光度计", "UV-Vis-NIR spectrophotometer",
     [("Shimadzu", "UV-3600i Plus"), ("Agilent", "Cary 5000")]),
    ("0103", "instrument", "高效液相色谱仪", "HPLC system",
     [("Agilent", "1260 Infinity II"), ("Waters", "e2695"), ("Shimadzu", "LC-20AD")]),
    ("0103", "instrument", "气相色谱仪", "Gas chromatograph", [("Agilent", "8890"), ("Shimadzu", "GC-2030")]),
    ("0103", "instrument", "离子色谱仪", "Ion chromatograph", [("Thermo Fisher", "ICS-6000"), ("Metrohm", "930")]),
    ("0104", "instrument", "气相色谱-质谱联用仪", "GC-MS", [("Agilent", "7890B/5977B"), ("Shimadzu", "GCMS-QP2020")]),
    ("0104", "instrument", "液相色谱-质谱联用仪", "LC-MS/MS", [("SCIEX", "Triple Quad 6500+"), ("Waters", "Xevo TQ-S")]),
    ("0104", "instrument", "电感耦合等离子体质谱仪", "ICP-MS", [("Agilent", "7900"), ("Thermo Fisher", "iCAP RQ")]),
    ("0105", "instrument", "超导核磁共振波谱仪", "NMR spectrometer", [("Bruker", "AVANCE NEO 600"), ("JEOL", "ECZ400S")]),
    ("0106", "instrument", "多功能X射线衍射仪", "X-ray diffractometer", [("Rigaku", "SmartLab"), ("Bruker", "D8 ADVANCE")]),
    ("0106", "instrument", "X射线荧光光谱仪", "XRF spectrometer", [("Rigaku", "ZSX Primus IV"), ("PANalytical", "Axios")]),
    ("0107", "instrument", "同步热分析仪", "Simultaneous thermal analyser", [("NETZSCH", "STA 449 F5"), ("TA", "SDT 650")]),
    ("0107", "instrument", "差示扫描量热仪", "Differential scanning calorimeter", [("TA", "DSC 2500"), ("METTLER", "DSC 3")]),
    ("0108", "instrument", "激光粒度分析仪", "Laser particle size analyser", [("Malvern", "Mastersizer 3000")]),
    ("0108", "instrument", "比表面积及孔径分析仪", "Surface area and porosity analyser", [("Micromeritics", "ASAP 2460")]),
    ("0109", "instrument", "电化学工作站", "Electrochemical workstation", [("CH Instruments", "CHI760E"), ("Gamry", "Interface 1010")]),
    ("0110", "instrument", "电感耦合等离子体发射光谱仪", "ICP-OES", [("Agilent", "5110"), ("PerkinElmer", "Avio 500")]),
    ("0111", "instrument", "金相显微镜", "Metallographic microscope", [("Olympus", "BX53M"), ("Leica", "DM2700 M")]),
    ("0112", "instrument", "X射线光电子能谱仪", "XPS", [("Thermo Fisher", "ESCALAB Xi+"), ("Kratos", "AXIS Supra")]),
    ("0201", "instrument", "岩石力学三轴试验系统", "Rock mechanics triaxial system", [("MTS", "815")]),
    ("0202", "instrument", "电子万能材料试验机", "Universal testing machine", [("Instron", "5985"), ("ZwickRoell", "Z100")]),
    ("0203", "instrument", "综合物性测量系统", "Physical property measurement system", [("Quantum Design", "DynaCool")]),
    ("0701", "instrument", "高低温湿热试验箱", "Climatic test chamber", [("ESPEC", "PL-3KPH")]),
    ("0704", "instrument", "金属3D打印机", "Metal additive manufacturing system", [("EOS", "M 290"), ("铂力特", "BLT-S310")]),
    ("0801", "hpc", "CPU通用计算分区", "CPU partition", [("天河", "TH-2"), ("曙光", "Sugon 7000")]),
    ("0802", "hpc", "GPU加速计算分区", "GPU partition", [("NVIDIA", "V100"), ("NVIDIA", "A100"), ("华为", "昇腾910")]),
    ("0901", "testing_service", "金属材料化学成分分析", "Metal chemical composition analysis", [("", "")]),
    ("0903", "testing_service", "地表水常规指标检测", "Surface water testing", [("", "")]),
    ("0905", "testing_service", "煤质工业分析", "Coal proximate analysis", [("", "")]),
    ("0906", "testing_service", "焊缝超声无损检测", "Ultrasonic weld testing", [("", "")]),
    ("1001", "pilot_line", "煤化工中试装置", "Coal chemical pilot plant", [("", "")]),
    ("1002", "pilot_line", "新材料中试线", "New materials pilot line", [("", "")]),
]  # fmt: skip
DESCRIPTIONS = [
    ("适用于金属、陶瓷、催化剂、煤及矿物等固体样品的分析。", "For metals, ceramics, catalysts, coal and minerals."),
    ("可完成定性与定量分析，支持夜间自动排队测样。", "Qualitative and quantitative analysis; queued overnight runs."),
    ("配备自动进样器，适合批量样品的常规检测。", "With an autosampler, suited to routine batches."),
    ("由专业技术人员操作或经培训后自主上机。", "Run by staff, or by trained users themselves."),
]  # fmt: skip
UNITS = {
    "instrument": ("hour", 1),
    "testing_service": ("sample", 20),
    "hpc": ("core_hour", 4096),
    "pilot_line": ("day", 1),
}
QUERIES = [
    {"q": "电镜", "kind": "instrument", "region": "1401"},
    {"q": "色谱", "kind": "instrument", "region": "14"},
    {"q": "sigma", "kind": "instrument", "voucher_eligible": "true"},
    {"q": "质谱仪", "region": "1401", "voucher_eligible": "true"},
]


# --- set-up ----------------------------------------------------------------------------


def prepare_database(url: str) -> None:
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
        ).scalar()
        if not found:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def make_app(url: str):
    os.environ.setdefault("BOOKING_ENV", "development")
    from booking import create_app

    return create_app({"ENV_NAME": "development", "DATABASE_URL": url, "DEBUG": False})


def build_schema(app) -> None:
    from booking.extensions import db

    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        db.drop_all()
        db.create_all()


def seed_labs(app, rng: random.Random, count: int = 60) -> list[SimpleNamespace]:
    from booking.domain.organizations import make_uscc, regions
    from booking.extensions import db
    from booking.models.accounts import Organization, OrgKind
    from booking.services import catalog

    counties = [c for c, r in regions().items() if c.startswith("14") and r.level == "county"]
    others = ["110105", "120101", "130102", "410105", "610113"]
    labs = []
    with app.app_context():
        catalog.load_categories(db.session, catalog.SYSTEM)
        for i in range(count):
            region = rng.choice(counties) if i % 10 else rng.choice(others)
            org = Organization(
                kind=OrgKind.PROVIDER,
                name=f"{rng.choice(['山西', '晋中', '太原', '吕梁', '长治'])}第{i + 1}分析测试中心",
                name_en=f"Analysis and testing centre {i + 1}",
                uscc=make_uscc(region, 900000 + i, prefix="12"),
                region=region,
                voucher_provider=bool(i % 3),
            )
            db.session.add(org)
            db.session.flush()
            labs.append(
                SimpleNamespace(id=org.id, name=org.name, name_en=org.name_en, region=region)
            )
        db.session.commit()
    return labs


def category_objects(app) -> dict[str, SimpleNamespace]:
    from booking.extensions import db
    from booking.models.catalog import Category

    with app.app_context():
        rows = db.session.scalars(select(Category)).all()
        by_id = {c.id: c for c in rows}
        out = {}
        for c in rows:
            parent = by_id.get(c.parent_id)
            out[c.code] = SimpleNamespace(
                id=c.id,
                name_zh=c.name_zh,
                name_en=c.name_en,
                aliases=list(c.aliases or []),
                service_category=c.service_category.value,
                parent=SimpleNamespace(
                    name_zh=parent.name_zh,
                    name_en=parent.name_en,
                    aliases=parent.aliases,
                    parent=None,
                )
                if parent
                else None,
            )
        return out


def column_defaults(table) -> dict:
    """Python-side defaults of a table's columns (COPY must give every one)."""
    found = {}
    for column in table.columns:
        default = column.default
        if default is None:
            found[column.name] = None
        elif default.is_callable:
            found[column.name] = default.arg(None)
        else:
            found[column.name] = default.arg
    return found


def copy_rows(conn: psycopg.Connection, table, rows: list[dict]) -> None:
    names = [c.name for c in table.columns if c.name != "id"]
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row([_pg(row.get(n)) for n in names])


def _pg(value):
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if hasattr(value, "value") and not isinstance(value, Decimal | datetime):
        return value.value
    return value


def seed_resources(url: str, app, count: int, rng: random.Random) -> float:
    from booking.domain.catalog import text_grams
    from booking.models.catalog import OpeningHours, PriceRule, Resource
    from booking.services.catalog import build_search_text

    started = time.perf_counter()
    labs = seed_labs(app, rng)
    categories = category_objects(app)
    resource_defaults = column_defaults(Resource.__table__)
    now = datetime.now(UTC)
    resources, hours_rows, price_rows = [], [], []
    for serial in range(1, count + 1):
        code, kind, name_zh, name_en, makers = rng.choice(TEMPLATES)
        maker, model = rng.choice(makers)
        lab = rng.choice(labs)
        description = rng.choice(DESCRIPTIONS)
        category = categories[code]
        unit, capacity = UNITS[kind]
        row = dict(resource_defaults)
        row.update(
            provider_id=lab.id,
            kind=kind,
            category_id=category.id,
            service_category=category.service_category,
            name_zh=f"{name_zh}（{serial}号）" if serial % 7 else name_zh,
            name_en=name_en,
            description_zh=description[0],
            description_en=description[1],
            region=lab.region,
            location=f"{rng.choice('ABCDEF')}区{rng.randint(101, 520)}室",
            manufacturer=maker,
            model=model,
            status="available" if serial % 50 else "maintenance",
            voucher_eligible=bool(serial % 4),
            original_value=Decimal(rng.randint(5, 800) * 10000),
            funding_source="government" if serial % 3 else "other",
            capacity=capacity,
            capacity_unit={"instrument": "instrument", "hpc": "core"}.get(kind, "line"),
            granularity_minutes=1440 if kind == "pilot_line" else 30,
            min_minutes=1440 if kind == "pilot_line" else 30,
            max_minutes=43200 if kind == "pilot_line" else 480,
            inner_id=f"B{serial:06d}",
            extra={},
            created_at=now,
            updated_at=now,
        )
        row["search_text"] = build_search_text(
            SimpleNamespace(
                **{k: row[k] for k in ("name_zh", "name_en", "model", "manufacturer", "inner_id")},
                location=row["location"],
                description_zh=row["description_zh"],
                description_en=row["description_en"],
                category=category,
                provider=lab,
            )
        )
        row["search_grams"] = text_grams(row["search_text"])
        row["id"] = serial
        resources.append(row)
        if kind in ("instrument", "testing_service"):
            for weekday in range(5):
                for opens, closes in (
                    (clock_time(8, 30), clock_time(12)),
                    (clock_time(14), clock_time(17, 30)),
                ):
                    hours_rows.append(
                        {"resource_id": serial, "weekday": weekday, "open": opens, "close": closes}
                    )
        base = Decimal(rng.randint(20, 900))
        for customer_class, factor in (
            ("internal", "0.5"),
            ("academic", "0.75"),
            ("enterprise", "1"),
        ):
            price_rows.append(
                {
                    "resource_id": serial,
                    "customer_class": customer_class,
                    "unit": unit,
                    "unit_price": (base * Decimal(factor)).quantize(Decimal("0.01")),
                    "setup_fee": Decimal("0.00"),
                    "min_quantity": Decimal("1.00"),
                    "rounding_minutes": 30 if unit == "hour" else 0,
                    "rounding_threshold_minutes": 0,
                    "order_min": None,
                    "order_max": None,
                    "no_show_fee": Decimal("0.00"),
                    "operator_fee_per_hour": Decimal("0.00"),
                    "published": True,
                    "effective_from": now,
                    "effective_until": None,
                }
            )
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        names = [c.name for c in Resource.__table__.columns]
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY resources ({', '.join(names)}) FROM STDIN") as copy,
        ):
            for row in resources:
                copy.write_row([_pg(row.get(n)) for n in names])
        conn.execute("SELECT setval('resources_id_seq', %s)", (count,))
        copy_rows(conn, OpeningHours.__table__, hours_rows)
        copy_rows(conn, PriceRule.__table__, price_rows)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE resources")
        conn.execute("VACUUM ANALYZE price_rules")
        conn.execute("VACUUM ANALYZE opening_hours")
    return time.perf_counter() - started


# --- measuring ---------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str, workers: int):
        self.port = free_port()
        env = dict(
            os.environ,
            DATABASE_URL=url,
            BOOKING_ENV="production",
            SECRET_KEY=secrets.token_urlsafe(32),
            PYTHONPATH=str(ROOT),
        )
        self.process = subprocess.Popen(
            [GUNICORN, "-w", str(workers), "-k", "sync", "-b", f"127.0.0.1:{self.port}",
             "--log-level", "warning", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, _ = self.get("/healthz")
                if status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not start: " + self.process.stderr.read().decode())

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers={"Accept": "application/json"})
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of processes (``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def worker_pids(master: int) -> list[int]:
    with open(f"/proc/{master}/task/{master}/children") as handle:
        return [int(p) for p in handle.read().split()]


def backend_pids(url: str) -> list[int]:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    database = make_url(url).database
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return [r[0] for r in rows]


def time_http(server: Server, queries: list[dict], repeat: int, path: str = "") -> list[float]:
    paths = [f"/api/v1/resources?{urlencode(q)}" for q in queries] or [path]
    for each in paths:  # warm-up: every worker, every query
        for _ in range(6):
            status, body = server.get(each)
            assert status == 200, body[:300]
    samples = []
    for i in range(repeat):
        each = paths[i % len(paths)]
        started = time.perf_counter()
        status, _ = server.get(each)
        samples.append(time.perf_counter() - started)
        assert status == 200
    return samples


def captured_sql(app, query: dict) -> list[tuple[str, dict]]:
    """The statements one API search runs, with their parameters."""
    from booking.extensions import db
    from booking.schemas.catalog import ResourceQuerySchema
    from booking.services import catalog

    statements: list[tuple[str, dict]] = []
    with app.app_context():
        engine = db.engine

        def keep(conn, cursor, statement, parameters, context, executemany):
            statements.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", keep)
        try:
            args = ResourceQuerySchema().load(query)
            catalog.search_resources(db.session, catalog.SearchQuery(**args))
        finally:
            event.remove(engine, "before_cursor_execute", keep)
            db.session.remove()
    return statements


def run(conn: psycopg.Connection, sql: str, params) -> None:
    cursor = conn.execute(sql, params)
    if cursor.description is not None:
        cursor.fetchall()


def time_direct(url: str, statements: list[tuple[str, dict]], repeat: int) -> list[float]:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    samples = []
    with psycopg.connect(dsn) as conn:
        for _ in range(10):
            for sql, params in statements:
                run(conn, sql, params)
            conn.rollback()
        for _ in range(repeat):
            started = time.perf_counter()
            for sql, params in statements:
                run(conn, sql, params)
            samples.append(time.perf_counter() - started)
            conn.rollback()
    return samples


def explain(url: str, statement: tuple[str, dict]) -> str:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement[0], statement[1]).fetchall()
    return "\n".join(r[0] for r in rows)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


def report(label: str, samples: list[float]) -> str:
    return (
        f"  {label:<44} p50 {ms(statistics.median(samples))}   p95 {ms(percentile(samples, 0.95))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--resources", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--explain", action="store_true", help="print the search's plan")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("the benchmark needs PostgreSQL")

    rng = random.Random(20300301)
    prepare_database(args.database_url)
    app = make_app(args.database_url)
    build_schema(app)
    seconds = seed_resources(args.database_url, app, args.resources, rng)
    print(f"loaded {args.resources:,} resources with prices and hours in {seconds:.1f} s")

    queries = [{**q, "per_page": str(args.per_page)} for q in QUERIES]
    headline = queries[0]
    server = Server(args.database_url, args.workers)
    try:
        for q in queries:
            _status, body = server.get(f"/api/v1/resources?{urlencode(q)}")
            found = json.loads(body)
            print(f"  {urlencode(q)}: {found['total']} found, {len(found['items'])} on the page")
        bare = time_http(server, [], args.requests // 2, path="/healthz")
        http_mix = time_http(server, queries, args.requests)
        time_http(server, [headline], 10)  # every worker holds its connection now
        app_pids = worker_pids(server.process.pid)
        db_pids = backend_pids(args.database_url)
        cpu_before = cpu_seconds(app_pids), cpu_seconds(db_pids)
        http_one = time_http(server, [headline], args.requests)
        app_cpu = (cpu_seconds(app_pids) - cpu_before[0]) / len(http_one)
        db_cpu = (cpu_seconds(db_pids) - cpu_before[1]) / len(http_one)
    finally:
        server.stop()

    statements = captured_sql(app, dict(headline))
    search = [st for st in statements if "count(*) OVER ()" in st[0]]
    direct_search = time_direct(args.database_url, search, args.requests)
    direct_all = time_direct(args.database_url, statements, args.requests)

    print()
    print(
        f"Through HTTP (gunicorn, {args.workers} sync workers, one client, per_page={args.per_page}):"
    )
    print(report("GET /healthz (one SELECT 1; the floor)", bare))
    print(report("the four searches in turn", http_mix))
    print(report("q=电镜&kind=instrument&region=1401", http_one))
    print("The same query directly through psycopg (prepared, warm):")
    print(report("the search statement", direct_search))
    print(report(f"all {len(statements)} statements the request runs", direct_all))
    print(
        f"CPU per request (headline query): app {ms(app_cpu).strip()}, database "
        f"{ms(db_cpu).strip()}; about {ms(app_cpu + db_cpu).strip()} of latency on an idle machine"
    )
    p95 = percentile(http_one, 0.95)
    ratio_search = p95 / percentile(direct_search, 0.95)
    ratio_all = p95 / percentile(direct_all, 0.95)
    print(
        f"Ratio of p95, HTTP / direct: {ratio_search:.1f}x against the search statement, "
        f"{ratio_all:.1f}x against all statements of the request"
    )
    met = p95 < 0.050 and ratio_all <= 3
    print(
        f"Target (p95 < 50 ms through HTTP, within 3x of the direct query): "
        f"{'met' if met else 'NOT met'} (p95 {ms(p95).strip()}, {ratio_all:.1f}x)"
    )
    with open("/proc/loadavg") as handle:
        print(
            f"load average during the run: {' '.join(handle.read().split()[:3])} ({os.cpu_count()} CPUs)"
        )
    if args.explain:
        print()
        print(explain(args.database_url, search[0]))


if __name__ == "__main__":
    main()
