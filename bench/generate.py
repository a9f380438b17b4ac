"""The benchmark data set: a province's labs, enterprises, vouchers and a year
and more of bookings, shaped like real use, loaded fast.

    .venv/bin/python bench/generate.py --size small|province [--bookings N]
        [--database-url postgresql://postgres@127.0.0.1:5432/bench_load] [--seed 2026]

The database named is dropped and made again (its name must start with
``bench``; SQLite: the file is replaced), the schema made from the models
(``Base.metadata`` with the ``btree_gist`` and ``pg_trgm`` extensions), the
categories loaded by the catalog service, and everything else written in
bulk: ``COPY`` on PostgreSQL (foreign-key triggers off while loading, the
secondary indexes of the big tables dropped and made again afterwards),
``executemany`` on SQLite.

What is in it (``SIZES``; ``province``: 200 labs, 2,000 resources, 5,000
enterprises, about 1,000,000 bookings):

- 12 bureaus (the province and its 11 cities), each with a voucher policy
  (POLICY.md's defaults) and an officer; labs across Shanxi's counties (a
  few outside the province), nine in ten admitted voucher institutions,
  testing labs with a CMA certificate; enterprises (Taiyuan the largest),
  most of them tech SMEs; 1 to 3 users each; every user an API token (see
  ``api_token``), some a calendar feed (``feed_token``);
- resources of the four kinds with categories of the real taxonomy,
  bilingual names, makers, models, original values, search text, opening
  hours (office hours, long hours, around the clock), rules and published
  prices for the three customer classes (a tenth repriced half-way);
- bookings from ``months_back`` months ago to ``months_ahead`` months
  ahead, day by day: exclusive resources (instruments, pilot lines with
  changeover days) packed without overlap inside their opening hours, pooled
  ones (testing services, HPC partitions) never above their capacity;
  popularity Zipf-distributed (the popular instruments full, the tail
  quiet); customers mostly a resource's regulars, mostly from its city;
  holidays closed where the resource closes; maintenance days as blackouts;
- every state: requested, approved, in use, completed, settled, cancelled,
  rejected, expired, no-show, by where the booking lies against now; actual
  times, units and final cost by the pricing of the domain, service way and
  prep/run/post minutes, ratings for a third;
- vouchers per enterprise and year, spent in order of the bookings: holds at
  approval, releases at cancellation or no-show, release and redemption at
  completion, expiry of what is left at the end of the year; an order
  confirmation per redemption; claims per lab, issuing bureau and quarter
  (paid, audited or submitted by age), the bookings of paid claims settled.
  Every voucher's ledger sums to its figures; no balance goes below zero.

Not generated: audit events, notifications and kept feed texts of the
history (feeds build their texts on first answer).

``national`` (10,000 labs, 100,000 resources, 250,000 enterprises,
50,000,000 bookings) is on paper: ``--size national --bookings N`` makes
its world with N bookings (what fits), and the growth benchmark
extrapolates the rest.
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import hashlib
import heapq
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The databases' names start with BENCH_DB_PREFIX (default ``bench``): ``<prefix>_load``,
# ``<prefix>_growth_<n>``, ``<prefix>_small``; several people can then share one server.
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "bench")
DEFAULT_URL = f"postgresql://postgres@127.0.0.1:5432/{DB_PREFIX}_load"
PASSWORD = "bench password 2026"
_TOKEN_SECRET = "jcg-bench-2026"
UTC8 = 8 * 3600  # Asia/Shanghai has kept UTC+8 without summer time since 1991
DAY = 86400
HOUR = 3600


@dataclass(frozen=True)
class Size:
    name: str
    providers: int
    resources: int
    enterprises: int
    bookings: int
    months_back: int = 13
    months_ahead: int = 2


SIZES = {
    "small": Size("small", providers=6, resources=40, enterprises=40, bookings=3_000),
    "province": Size(
        "province", providers=200, resources=2_000, enterprises=5_000, bookings=1_000_000
    ),
    "national": Size(
        "national", providers=10_000, resources=100_000, enterprises=250_000, bookings=50_000_000
    ),
}


def api_token(user_id: int) -> str:
    """The API token of a generated user (the database keeps its SHA-256)."""
    digest = hashlib.sha256(f"{_TOKEN_SECRET}:api:{user_id}".encode()).hexdigest()
    return f"bench-{user_id}-{digest[:32]}"


def feed_token(feed_id: int) -> str:
    digest = hashlib.sha256(f"{_TOKEN_SECRET}:feed:{feed_id}".encode()).hexdigest()
    return f"benchfeed{feed_id}x{digest[:32]}"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- what the world is made of ------------------------------------------------------------

CITIES = [  # code, Chinese, English, share of the enterprises
    ("140100", "太原", "Taiyuan", 30),
    ("140200", "大同", "Datong", 7),
    ("140300", "阳泉", "Yangquan", 5),
    ("140400", "长治", "Changzhi", 9),
    ("140500", "晋城", "Jincheng", 7),
    ("140600", "朔州", "Shuozhou", 4),
    ("140700", "晋中", "Jinzhong", 10),
    ("140800", "运城", "Yuncheng", 9),
    ("140900", "忻州", "Xinzhou", 5),
    ("141000", "临汾", "Linfen", 8),
    ("141100", "吕梁", "Lüliang", 6),
]
OUTSIDE = ["110108", "120116", "410105", "610113", "130102"]

# (category code, Chinese, English, makers and models)
INSTRUMENTS = [
    (
        "0101",
        "场发射扫描电子显微镜",
        "Field-emission SEM",
        [("ZEISS", "Sigma 300"), ("Hitachi", "SU8010"), ("JEOL", "JSM-7900F")],
    ),
    (
        "0101",
        "透射电子显微镜",
        "Transmission electron microscope",
        [("Thermo Fisher", "Talos F200X"), ("JEOL", "JEM-2100F")],
    ),
    (
        "0102",
        "显微共聚焦激光拉曼光谱仪",
        "Confocal Raman microscope",
        [("HORIBA", "LabRAM HR Evolution"), ("Renishaw", "inVia Qontor")],
    ),
    (
        "0102",
        "傅里叶变换红外光谱仪",
        "FTIR spectrometer",
        [("Thermo Fisher", "Nicolet iS50"), ("Bruker", "TENSOR II")],
    ),
    (
        "0102",
        "紫外可见近红外分光光度计",
        "UV-Vis-NIR spectrophotometer",
        [("Shimadzu", "UV-3600i Plus"), ("Agilent", "Cary 5000")],
    ),
    (
        "0103",
        "高效液相色谱仪",
        "HPLC system",
        [("Agilent", "1260 Infinity II"), ("Waters", "e2695")],
    ),
    ("0103", "气相色谱仪", "Gas chromatograph", [("Agilent", "8890"), ("Shimadzu", "GC-2030")]),
    (
        "0104",
        "气相色谱-质谱联用仪",
        "GC-MS",
        [("Agilent", "7890B/5977B"), ("Shimadzu", "GCMS-QP2020")],
    ),
    (
        "0104",
        "液相色谱-质谱联用仪",
        "LC-MS/MS",
        [("SCIEX", "Triple Quad 6500+"), ("Waters", "Xevo TQ-S")],
    ),
    (
        "0104",
        "电感耦合等离子体质谱仪",
        "ICP-MS",
        [("Agilent", "7900"), ("Thermo Fisher", "iCAP RQ")],
    ),
    (
        "0105",
        "超导核磁共振波谱仪",
        "NMR spectrometer",
        [("Bruker", "AVANCE NEO 600"), ("JEOL", "ECZ400S")],
    ),
    (
        "0106",
        "多功能X射线衍射仪",
        "X-ray diffractometer",
        [("Rigaku", "SmartLab"), ("Bruker", "D8 ADVANCE")],
    ),
    (
        "0106",
        "X射线荧光光谱仪",
        "XRF spectrometer",
        [("Rigaku", "ZSX Primus IV"), ("PANalytical", "Axios")],
    ),
    (
        "0107",
        "同步热分析仪",
        "Simultaneous thermal analyser",
        [("NETZSCH", "STA 449 F5"), ("TA", "SDT 650")],
    ),
    ("0108", "激光粒度分析仪", "Laser particle size analyser", [("Malvern", "Mastersizer 3000")]),
    (
        "0108",
        "比表面积及孔径分析仪",
        "Surface area and porosity analyser",
        [("Micromeritics", "ASAP 2460")],
    ),
    (
        "0109",
        "电化学工作站",
        "Electrochemical workstation",
        [("CH Instruments", "CHI760E"), ("Gamry", "Interface 1010")],
    ),
    (
        "0110",
        "电感耦合等离子体发射光谱仪",
        "ICP-OES",
        [("Agilent", "5110"), ("PerkinElmer", "Avio 500")],
    ),
    (
        "0111",
        "金相显微镜",
        "Metallographic microscope",
        [("Olympus", "BX53M"), ("Leica", "DM2700 M")],
    ),
    (
        "0112",
        "X射线光电子能谱仪",
        "XPS",
        [("Thermo Fisher", "ESCALAB Xi+"), ("Kratos", "AXIS Supra")],
    ),
    ("0201", "岩石力学三轴试验系统", "Rock mechanics triaxial system", [("MTS", "815")]),
    (
        "0202",
        "电子万能材料试验机",
        "Universal testing machine",
        [("Instron", "5985"), ("ZwickRoell", "Z100")],
    ),
    (
        "0203",
        "综合物性测量系统",
        "Physical property measurement system",
        [("Quantum Design", "DynaCool")],
    ),
    (
        "0206",
        "工业CT检测系统",
        "Industrial CT system",
        [("YXLON", "FF35 CT"), ("ZEISS", "METROTOM 1500")],
    ),
    ("0701", "高低温湿热试验箱", "Climatic test chamber", [("ESPEC", "PL-3KPH")]),
    (
        "0704",
        "金属3D打印机",
        "Metal additive manufacturing system",
        [("EOS", "M 290"), ("铂力特", "BLT-S310")],
    ),
]
TESTING = [
    ("0901", "金属材料化学成分分析", "Metal chemical composition analysis"),
    ("0902", "材料力学性能检测", "Mechanical testing of materials"),
    ("0903", "地表水常规指标检测", "Surface water testing"),
    ("0904", "食品安全指标检测", "Food safety testing"),
    ("0905", "煤质工业分析", "Coal proximate analysis"),
    ("0906", "焊缝超声无损检测", "Ultrasonic weld testing"),
    ("0907", "压力仪表计量校准", "Pressure gauge calibration"),
    ("1102", "结构有限元仿真分析", "Finite-element structural analysis"),
    ("1203", "科技查新检索", "Novelty search"),
]
HPC = [
    ("0801", "CPU通用计算分区", "CPU partition", "core", "core_hour", (2048, 4096, 8192)),
    ("0802", "GPU加速计算分区", "GPU partition", "gpu", "gpu_hour", (16, 32, 64)),
    ("0803", "大内存计算分区", "Large-memory partition", "node", "node_hour", (16, 32)),
]
PILOT = [
    ("1001", "煤化工中试装置", "Coal chemical pilot plant"),
    ("1002", "新材料中试线", "New materials pilot line"),
    ("1003", "精细化工中试平台", "Fine chemicals pilot platform"),
    ("1004", "生物医药中试车间", "Biopharma pilot workshop"),
    ("1005", "装备制造中试基地", "Equipment manufacturing pilot base"),
]
DESCRIPTIONS = [
    (
        "适用于金属、陶瓷、催化剂、煤及矿物等固体样品的分析。",
        "For metals, ceramics, catalysts, coal and minerals.",
    ),
    (
        "可完成定性与定量分析，支持夜间自动排队测样。",
        "Qualitative and quantitative analysis; queued overnight runs.",
    ),
    ("配备自动进样器，适合批量样品的常规检测。", "With an autosampler, suited to routine batches."),
    ("由专业技术人员操作或经培训后自主上机。", "Run by staff, or by trained users themselves."),
]
PURPOSES = [
    "新产品研发测试",
    "来料质量检验",
    "工艺优化实验",
    "科研项目样品分析",
    "失效分析",
    "课题验证",
]
COMMENTS = ["", "", "服务很好", "出报告及时", "操作规范，数据可靠", "预约方便", "等待时间略长"]
REJECT_REASONS = ["该时段设备需校准", "样品不符合送检要求", "请补充实验方案后再预约"]
CANCEL_REASONS = [None, "实验计划调整", "样品未准备好", "改约其他时间"]
PROVIDER_WORDS = [
    "分析测试中心",
    "检验检测研究院",
    "理化测试中心",
    "材料研究所",
    "工程技术研究中心",
]
ENTERPRISE_WORDS = ["新材料", "智能装备", "生物科技", "煤化工", "电子科技", "环保科技", "精密制造"]

# Opening hours profiles of time-booked resources: local (open, close) spans, Monday..Sunday.
OFFICE = [[(8 * 60 + 30, 12 * 60), (14 * 60, 17 * 60 + 30)]] * 5 + [[], []]
LONG = [[(8 * 60, 20 * 60)]] * 5 + [[(9 * 60, 17 * 60)], []]
ROUND_THE_CLOCK = None


# --- writing ------------------------------------------------------------------------------


class RawJSON(str):
    """A JSON text already serialised (COPY takes it as it is)."""


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value) -> str:
    return str(value).translate(_ESCAPES)


def _pg_array(values) -> str:
    items = ('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return ("{" + ",".join(items) + "}").translate(_ESCAPES)


def _converter(column):
    from sqlalchemy import JSON, Boolean, Date, DateTime, Integer, Numeric, Time
    from sqlalchemy.dialects.postgresql import ARRAY
    from sqlalchemy.types import TypeDecorator

    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    variant = getattr(column.type, "_variant_mapping", None) or {}
    if isinstance(kind, ARRAY) or any(isinstance(v, ARRAY) for v in variant.values()):
        return _pg_array
    if isinstance(kind, Boolean):
        return lambda v: "t" if v else "f"
    if isinstance(kind, Integer | Numeric):
        return str
    if isinstance(kind, DateTime):
        return lambda v: v.isoformat()
    if isinstance(kind, Date | Time):
        return lambda v: v.isoformat()
    if isinstance(kind, JSON):
        return lambda v: (
            v.translate(_ESCAPES)
            if isinstance(v, RawJSON)
            else json.dumps(v, ensure_ascii=False).translate(_ESCAPES)
        )
    return _text


def _column_default(column, now: datetime):
    default = column.default
    if default is None:
        return None
    if default.is_callable:
        try:
            value = default.arg(None)
        except TypeError:
            value = default.arg()
        return now if isinstance(value, datetime) else value
    return default.arg


class Writer:
    """Rows by table, buffered and written in the tables' dependency order
    (COPY on PostgreSQL, ``executemany`` on SQLite)."""

    FLUSH_EVERY = 40_000

    def __init__(self, connection, now: datetime):
        from booking.models import Base

        self.conn = connection  # a SQLAlchemy Connection
        self.postgres = connection.dialect.name == "postgresql"
        self.now = now
        self.tables = Base.metadata.tables
        self.order = [t.name for t in Base.metadata.sorted_tables]
        self.buffers: dict[str, list] = {}
        self.specs: dict[str, tuple] = {}
        self.counts: dict[str, int] = {}
        self.pending = 0

    def _spec(self, name: str, row: dict) -> tuple:
        spec = self.specs.get(name)
        if spec is None:
            table = self.tables[name]
            columns = [
                c
                for c in table.columns
                if c.name in row or not (c.default is None and c.server_default is not None)
            ]
            defaults = [_column_default(c, self.now) for c in columns]
            names = [c.name for c in columns]
            converters = [_converter(c) for c in columns] if self.postgres else None
            spec = self.specs[name] = (names, defaults, converters)
        return spec

    def add(self, name: str, row: dict) -> None:
        names, defaults, converters = self._spec(name, row)
        get = row.get
        if self.postgres:
            values = []
            append = values.append
            for column, default, convert in zip(names, defaults, converters, strict=True):
                value = get(column, default)
                append("\\N" if value is None else convert(value))
            self.buffers.setdefault(name, []).append("\t".join(values))
        else:
            self.buffers.setdefault(name, []).append(
                {
                    column: _sqlite_value(get(column, default))
                    for column, default in zip(names, defaults, strict=True)
                }
            )
        self.counts[name] = self.counts.get(name, 0) + 1
        self.pending += 1
        if self.pending >= self.FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        for name in self.order:
            rows = self.buffers.get(name)
            if not rows:
                continue
            names = self.specs[name][0]
            if self.postgres:
                raw = self.conn.connection.driver_connection
                with raw.cursor() as cursor:
                    sql = f"COPY {name} ({', '.join(names)}) FROM STDIN"
                    with cursor.copy(sql) as copy:
                        copy.write("\n".join(rows) + "\n")
            else:
                self.conn.execute(self.tables[name].insert(), rows)
            rows.clear()
        self.pending = 0


def _sqlite_value(value):
    if isinstance(value, RawJSON):
        return json.loads(value)
    return value


# --- time ---------------------------------------------------------------------------------


def local_midnight(day: date) -> int:
    return calendar.timegm(day.timetuple()) - UTC8


def instant(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def local_day(ts: int) -> date:
    return datetime.fromtimestamp(ts + UTC8, UTC).date()


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def quarter_end(day: date) -> date:
    return add_months(quarter_start(day), 3) - timedelta(days=1)


# --- the generator --------------------------------------------------------------------------


@dataclass
class Res:
    """A resource as the booking generator sees it."""

    id: int
    kind: str
    provider_id: int
    city: str
    capacity: int
    grid: int  # seconds
    hours: list | None  # per weekday [(open_min, close_min)], None: around the clock
    closed_on_holidays: bool
    buffer_before: int  # seconds
    buffer_after: int
    requires_approval: bool
    requires_training: bool
    operator_allowed: bool
    voucher_eligible: bool
    service_category: str
    available: bool
    weight: float = 0.0
    rate: float = 0.0  # occupancy (exclusive), arrivals per grid step or hour (pooled)
    durations: tuple = ()  # grid steps
    mean: float = 1.0  # mean duration in grid steps
    duration_weights: tuple = ()
    unit_choices: tuple = (1,)
    terms: dict = field(default_factory=dict)  # class -> [(from_ts, PriceTerms, json)]
    clientele: list = field(default_factory=list)
    clientele_weights: list = field(default_factory=list)
    free_from: int = 0
    active: list = field(default_factory=list)
    used: int = 0
    no_show_fee: Decimal = Decimal("0.00")


class Generator:
    def __init__(self, size: Size, seed: int, bookings: int, now: datetime):
        self.size = size
        self.target = bookings
        self.rng = random.Random(seed)
        self.now = now
        self.now_ts = int(now.timestamp())
        today = local_day(self.now_ts)
        self.first_day = add_months(today, -size.months_back)
        self.last_day = add_months(today, size.months_ahead)
        self.period_start = local_midnight(self.first_day)
        self.period_end = local_midnight(self.last_day)
        self.ids: dict[str, int] = {}
        self.cost_cache: dict = {}
        self.cost_json: dict = {}
        self.trained: set = set()
        self.stats = {"statuses": {}}

    def next_id(self, table: str) -> int:
        self.ids[table] = self.ids.get(table, 0) + 1
        return self.ids[table]

    # --- organisations and people --------------------------------------------------------

    def world(self, w: Writer, categories: dict) -> None:
        from booking.domain.organizations import make_uscc, regions
        from booking.services.accounts import hash_password

        rng = self.rng
        self.password_hash = hash_password(PASSWORD)
        counties: dict[str, list[str]] = {}
        for code, region in regions().items():
            if region.level == "county" and region.parent_code in {c[0] for c in CITIES}:
                counties.setdefault(region.parent_code, []).append(code)
        self.counties = counties
        city_names = {c[0]: c[1] for c in CITIES}
        city_weights = [c[3] for c in CITIES]
        city_codes = [c[0] for c in CITIES]
        created = instant(self.period_start - 400 * DAY)

        # the platform admin
        self.admin_id = self.user(w, None, None, name="平台管理员", platform_admin=True)

        # bureaus: the province and its cities
        self.bureaus: dict[str, int] = {}
        self.officers: dict[int, int] = {}
        for n, (region, name) in enumerate(
            [("140000", "山西省"), *((c[0], c[1] + "市") for c in CITIES)]
        ):
            org = self.org(
                w, "bureau", f"{name}科学技术局", make_uscc(region, 100 + n, "11"), region, created
            )
            self.bureaus[region] = org
            self.officers[org] = self.user(w, org, "member", name=f"{name}科技局经办人")
            w.add(
                "voucher_policies",
                {
                    "id": self.next_id("voucher_policies"),
                    "bureau_id": org,
                    "effective_from": date(self.first_day.year - 1, 1, 1),
                    "created_at": created,
                },
            )

        # labs
        self.providers: list[SimpleNamespace] = []
        kinds = ["analysis"] * 70 + ["testing"] * 15 + ["hpc"] * 5 + ["pilot"] * 10
        for n in range(self.size.providers):
            if n % 20 == 19:
                region = OUTSIDE[n % len(OUTSIDE)]
                city = region[:4] + "00"
                city_name = "外省"
            else:
                city = rng.choices(city_codes, city_weights)[0]
                region = rng.choice(counties[city])
                city_name = city_names[city]
            kind = kinds[n % len(kinds)] if n >= 4 else ["analysis", "hpc", "testing", "pilot"][n]
            word = {"hpc": "超级计算中心", "pilot": "中试基地"}.get(kind) or rng.choice(
                PROVIDER_WORDS
            )
            admitted = n % 10 != 9
            org = self.org(
                w,
                "provider",
                f"{city_name}第{n + 1}{word}",
                make_uscc(region, 500_000 + n, "12"),
                region,
                created,
                name_en=f"Lab {n + 1}",
                voucher_provider=admitted,
            )
            admin = self.user(w, org, "admin", name=f"实验室管理员{n + 1}")
            staff = [
                self.user(w, org, "member", name=f"实验员{n + 1}-{k}") for k in range(1 + n % 3)
            ]
            lab = SimpleNamespace(
                id=org,
                kind=kind,
                region=region,
                city=city,
                admin=admin,
                staff=staff,
                name=f"{city_name}第{n + 1}{word}",
                name_en=f"Lab {n + 1}",
                admitted=admitted,
            )
            self.providers.append(lab)
            if admitted:
                w.add(
                    "provider_admissions",
                    {
                        "id": self.next_id("provider_admissions"),
                        "provider_id": org,
                        "status": "admitted",
                        "documents": [{"name": "营业执照", "reference": f"LIC-{org}"}],
                        "service_summary": "开放共享服务",
                        "credit_check_passed": True,
                        "notice_days": 7,
                        "decided_by_id": self.officers[self.bureaus["140000"]],
                        "decided_at": created,
                        "created_at": created,
                        "updated_at": created,
                    },
                )
            if kind in ("analysis", "testing"):
                w.add(
                    "cma_certificates",
                    {
                        "id": self.next_id("cma_certificates"),
                        "provider_id": org,
                        "number": f"CMA{org:08d}",
                        "scope": "化学成分、力学性能、环境与食品检测",
                        "category_codes": [],
                        "issued_on": self.first_day - timedelta(days=400),
                        "expires_on": self.last_day + timedelta(days=700),
                        "created_at": created,
                    },
                )
            feed = self.next_id("feed_tokens")
            w.add(
                "feed_tokens",
                {
                    "id": feed,
                    "token_hash": sha256(feed_token(feed)),
                    "scope": "lab",
                    "user_id": admin,
                    "organization_id": org,
                    "label": "实验室日历",
                    "created_at": created,
                },
            )

        # enterprises
        self.enterprises: list[SimpleNamespace] = []
        self.by_city: dict[str, list] = {}
        for n in range(self.size.enterprises):
            city = rng.choices(city_codes, city_weights)[0]
            region = rng.choice(counties[city])
            tech = rng.random() < 0.7
            size_class = rng.choices(["micro", "small", "medium", "large"], [30, 40, 22, 8])[0]
            org = self.org(
                w,
                "enterprise",
                f"山西{city_names[city]}{rng.choice(ENTERPRISE_WORDS)}有限公司{n + 1}",
                make_uscc(region, 1_000_000 + n, "91"),
                region,
                created,
                size_class=size_class,
                size_checked_year=self.now.year,
                tech_sme_number=f"{self.now.year}{region}A{n:06d}" if tech else None,
                tech_sme_year=self.now.year if tech else None,
            )
            users = [self.user(w, org, "admin", name=f"企业联系人{n + 1}")]
            users += [
                self.user(w, org, "member", name=f"研发工程师{n + 1}-{k}")
                for k in range((rng.random() < 0.4) + (rng.random() < 0.1))
            ]
            for user in users:
                if rng.random() < 0.15:
                    feed = self.next_id("feed_tokens")
                    w.add(
                        "feed_tokens",
                        {
                            "id": feed,
                            "token_hash": sha256(feed_token(feed)),
                            "scope": "me",
                            "user_id": user,
                            "organization_id": org,
                            "label": "我的预约",
                            "created_at": created,
                        },
                    )
            enterprise = SimpleNamespace(
                id=org,
                city=city,
                region=region,
                users=users,
                tech=tech,
                vouchers={},
                activity=1.0 / (rng.random() * n + 5) ** 0.7,
            )
            self.enterprises.append(enterprise)
            self.by_city.setdefault(city, []).append(enterprise)
        self.city_weights = {
            city: list(_cumulative([e.activity for e in items]))
            for city, items in self.by_city.items()
        }
        self.all_weights = list(_cumulative([e.activity for e in self.enterprises]))
        self.vouchers(w)
        self.resources(w, categories)

    def org(self, w, kind, name, uscc, region, created, **extra) -> int:
        org_id = self.next_id("organizations")
        w.add(
            "organizations",
            {
                "id": org_id,
                "kind": kind,
                "name": name,
                "uscc": uscc,
                "region": region,
                "status": "active",
                "voucher_provider": False,
                "created_at": created,
                "updated_at": created,
                **extra,
            },
        )
        return org_id

    def user(self, w, org_id, role, *, name: str, platform_admin: bool = False) -> int:
        user_id = self.next_id("users")
        created = instant(self.period_start - 400 * DAY)
        w.add(
            "users",
            {
                "id": user_id,
                "email": f"u{user_id}@bench.cn",
                "name": name,
                "locale": "en" if user_id % 10 == 0 else "zh_CN",
                "password_hash": self.password_hash,
                "active": True,
                "platform_admin": platform_admin,
                "session_version": 1,
                "created_at": created,
                "updated_at": created,
            },
        )
        if org_id is not None:
            w.add(
                "memberships",
                {
                    "id": self.next_id("memberships"),
                    "user_id": user_id,
                    "organization_id": org_id,
                    "role": role,
                },
            )
        w.add(
            "api_tokens",
            {
                "id": self.next_id("api_tokens"),
                "user_id": user_id,
                "token_hash": sha256(api_token(user_id)),
                "label": "bench",
                "created_at": self.now - timedelta(days=1),
                "expires_at": self.now + timedelta(days=365),
            },
        )
        return user_id

    # --- vouchers ----------------------------------------------------------------------

    def vouchers(self, w: Writer) -> None:
        """One voucher a year for seven in ten tech SMEs, from their city's
        bureau (one in seven from the province's), issued on 10 January."""
        from booking.domain.vouchers import SERVICE_CATEGORIES, ShareTerms

        rng = self.rng
        self.voucher_state: dict[int, SimpleNamespace] = {}
        self.voucher_facts: dict[int, tuple[str, int]] = {}
        years = range(self.first_day.year, local_day(self.now_ts).year + 1)
        for enterprise in self.enterprises:
            if not enterprise.tech or rng.random() > 0.7:
                continue
            for year in years:
                bureau_region = "140000" if rng.random() < 0.15 else enterprise.city
                bureau = self.bureaus[bureau_region]
                issued = local_midnight(date(year, 1, 10)) + 9 * HOUR
                valid_from = local_midnight(date(year, 1, 1))
                valid_until = local_midnight(date(year + 1, 1, 1)) - 1
                if issued > self.now_ts:
                    continue
                face = Decimal(rng.choices([20000, 50000, 100000, 200000], [25, 35, 25, 15])[0])
                order_cap = Decimal("20000.00") if rng.random() < 0.2 else None
                voucher_id = self.next_id("vouchers")
                expired = valid_until < self.now_ts
                w.add(
                    "vouchers",
                    {
                        "id": voucher_id,
                        "number": f"{bureau_region}{year}{voucher_id:07d}",
                        "bureau_id": bureau,
                        "issuing_region": bureau_region,
                        "holder_org_id": enterprise.id,
                        "holder_region": enterprise.region,
                        "policy_id": list(self.bureaus.values()).index(bureau) + 1,
                        "batch_id": f"{bureau_region}-{year}-01",
                        "face_value": face,
                        "valid_from": instant(valid_from),
                        "valid_until": instant(valid_until),
                        "coverage_ratio": Decimal("0.5000"),
                        "order_cap": order_cap,
                        "service_categories": list(SERVICE_CATEGORIES),
                        "provider_regions": [],
                        "status": "expired" if expired else "active",
                        "issued_at": instant(issued),
                        "issued_by_id": self.officers[bureau],
                        "expired_at": instant(valid_until) if expired else None,
                        "created_at": instant(issued),
                        "updated_at": instant(valid_until if expired else issued),
                    },
                )
                self.voucher_facts[voucher_id] = (bureau_region, enterprise.id)
                self.ledger(w, voucher_id, "issue", face, None, issued, self.officers[bureau])
                state = SimpleNamespace(
                    id=voucher_id,
                    bureau=bureau,
                    bureau_region=bureau_region,
                    valid_from=valid_from,
                    valid_until=valid_until,
                    face=face,
                    available=face,
                    redeemed=Decimal("0.00"),
                    terms=ShareTerms(coverage_ratio=Decimal("0.50"), order_cap=order_cap),
                    expired=expired,
                )
                self.voucher_state[voucher_id] = state
                enterprise.vouchers[year] = state

    def ledger(
        self, w, voucher_id, kind, amount, reservation_id, at, actor, reason=None, resource_id=None
    ):
        """One entry; a booking's entries name its resource, every entry its
        voucher's issuing region and holder, as the application's ledger
        writer does (models/vouchers.py)."""
        region, holder = self.voucher_facts[voucher_id]
        w.add(
            "voucher_ledger_entries",
            {
                "id": self.next_id("voucher_ledger_entries"),
                "voucher_id": voucher_id,
                "issuing_region": region,
                "holder_org_id": holder,
                "kind": kind,
                "amount": amount,
                "reservation_id": reservation_id,
                "resource_id": resource_id,
                "reason": reason,
                "actor_user_id": actor,
                "at": instant(at),
            },
        )

    # --- the catalog ---------------------------------------------------------------------

    def resources(self, w: Writer, categories: dict) -> None:
        from booking.domain.catalog import text_grams
        from booking.domain.pricing import PriceTerms
        from booking.services.catalog import build_search_text

        rng = self.rng
        size = self.size
        weights = [1 / (i + 3) ** 0.6 for i in range(len(self.providers))]
        total = sum(weights)
        counts = [max(1, round(size.resources * x / total)) for x in weights]
        while sum(counts) > size.resources:
            counts[counts.index(max(counts))] -= 1
        while sum(counts) < size.resources:
            counts[rng.randrange(len(counts))] += 1
        self.res: list[Res] = []
        period_from = instant(self.period_start - 30 * DAY)
        repriced = instant((self.period_start + self.now_ts) // 2)
        for lab, count in zip(self.providers, counts, strict=True):
            for serial in range(count):
                kind = self.kind_for(lab.kind, serial)
                row, res = self.resource_row(lab, kind, serial, categories)
                row["search_text"] = build_search_text(
                    SimpleNamespace(
                        **{k: row[k] for k in ("name_zh", "name_en", "model", "manufacturer")},
                        inner_id=row["inner_id"],
                        location=row["location"],
                        description_zh=row["description_zh"],
                        description_en=row["description_en"],
                        category=categories[row["code"]],
                        provider=lab,
                    )
                )
                row["search_grams"] = text_grams(row["search_text"])
                del row["code"]
                unit, base = row.pop("_unit"), row.pop("_price")
                w.add("resources", row)
                self.hours_rows(w, res)
                versions = [(period_from, None, base)]
                if rng.random() < 0.1:
                    versions = [
                        (period_from, repriced, base),
                        (repriced, None, (base * Decimal("1.1")).quantize(Decimal("0.01"))),
                    ]
                for customer_class, factor in (
                    ("internal", Decimal("0.5")),
                    ("academic", Decimal("0.75")),
                    ("enterprise", Decimal("1")),
                ):
                    for since, until, price in versions:
                        rule_id = self.next_id("price_rules")
                        terms = PriceTerms(
                            customer_class=customer_class,
                            unit=unit,
                            unit_price=(price * factor).quantize(Decimal("0.01")),
                            setup_fee=Decimal("50.00") if res.kind == "instrument" else Decimal(0),
                            min_quantity=Decimal("1") if unit == "hour" else Decimal(0),
                            rounding_minutes=30 if unit == "hour" else 0,
                            no_show_fee=res.no_show_fee,
                            price_rule_id=rule_id,
                        )
                        w.add(
                            "price_rules",
                            {
                                "id": rule_id,
                                "resource_id": res.id,
                                "customer_class": customer_class,
                                "unit": unit,
                                "unit_price": terms.unit_price,
                                "setup_fee": terms.setup_fee,
                                "min_quantity": terms.min_quantity,
                                "rounding_minutes": terms.rounding_minutes,
                                "rounding_threshold_minutes": 0,
                                "no_show_fee": terms.no_show_fee,
                                "operator_fee_per_hour": Decimal("100.00"),
                                "published": True,
                                "effective_from": since,
                                "effective_until": until,
                            },
                        )
                        snapshot = json.dumps(terms.to_snapshot(), ensure_ascii=False)
                        res.terms.setdefault(customer_class, []).append(
                            (int(since.timestamp()), terms, snapshot[:-1])
                        )
                self.res.append(res)
        self.popularity()
        self.clienteles(w)

    def kind_for(self, lab_kind: str, serial: int) -> str:
        roll = self.rng.random()
        if lab_kind == "hpc":
            return "hpc" if serial < 10 else "instrument"
        if lab_kind == "pilot":
            return "pilot_line" if roll < 0.6 else "instrument"
        if lab_kind == "testing":
            return "testing_service" if roll < 0.7 else "instrument"
        return "testing_service" if roll < 0.15 else "instrument"

    def resource_row(self, lab, kind: str, serial: int, categories: dict) -> tuple[dict, Res]:
        rng = self.rng
        resource_id = self.next_id("resources")
        rules = {
            "granularity_minutes": 30,
            "min_minutes": 60,
            "max_minutes": 480,
            "lead_minutes": 60,
            "horizon_days": 90,
            "buffer_before_minutes": 0,
            "buffer_after_minutes": 0,
            "requires_approval": rng.random() < 0.7,
            "requires_training": False,
            "operator_allowed": rng.random() < 0.5,
            "cancel_minutes": 1440,
            "closed_on_holidays": True,
        }
        hours, capacity, capacity_unit, turnaround = OFFICE, 1, "instrument", None
        manufacturer = model = ""
        no_show_fee = Decimal("0.00")
        if kind == "instrument":
            code, name_zh, name_en, makers = rng.choice(INSTRUMENTS)
            manufacturer, model = rng.choice(makers)
            profile = rng.random()
            if profile < 0.15:
                hours = ROUND_THE_CLOCK
                rules.update(max_minutes=1440, closed_on_holidays=False)
            elif profile < 0.4:
                hours = LONG
            rules["requires_training"] = rng.random() < 0.25
            rules["buffer_after_minutes"] = rng.choice([0, 0, 0, 15, 30])
            unit, price = "hour", Decimal(rng.randint(8, 90) * 10)
            no_show_fee = Decimal("100.00") if rng.random() < 0.3 else Decimal("0.00")
            durations, duration_weights = (2, 3, 4, 6, 8), (30, 15, 25, 18, 12)
            if hours is ROUND_THE_CLOCK:
                durations, duration_weights = (2, 4, 8, 16, 24), (20, 30, 25, 15, 10)
            value = Decimal(int(rng.lognormvariate(13.3, 1.0)) // 1000 * 1000 + 50_000)
        elif kind == "testing_service":
            code, name_zh, name_en = rng.choice(TESTING)
            capacity, capacity_unit, turnaround = (
                rng.choice([4, 6, 8, 10]),
                "order",
                rng.randint(3, 7),
            )
            rules.update(requires_approval=rng.random() < 0.5, operator_allowed=False)
            unit, price = "sample", Decimal(rng.randint(5, 80) * 10)
            durations, duration_weights = (2, 4, 6, 8), (35, 35, 20, 10)
            value = Decimal(rng.randint(20, 300) * 1000)
        elif kind == "hpc":
            code, name_zh, name_en, capacity_unit, unit, capacities = rng.choice(HPC)
            capacity = rng.choice(capacities)
            manufacturer, model = rng.choice(
                [("曙光", "Sugon 7000"), ("华为", "Atlas 900"), ("浪潮", "NF5488")]
            )
            hours = ROUND_THE_CLOCK
            rules.update(
                granularity_minutes=60,
                min_minutes=60,
                max_minutes=4320,
                lead_minutes=0,
                horizon_days=30,
                requires_approval=False,
                operator_allowed=False,
                closed_on_holidays=False,
                cancel_minutes=0,
            )
            price = {
                "core_hour": Decimal("0.06"),
                "gpu_hour": Decimal("4.50"),
                "node_hour": Decimal("3.00"),
            }[unit]
            durations, duration_weights = (
                (1, 2, 4, 8, 12, 24, 48, 72),
                (20, 20, 18, 14, 10, 9, 6, 3),
            )
            value = Decimal(rng.randint(500, 3000) * 10_000)
        else:
            code, name_zh, name_en = rng.choice(PILOT)
            hours = ROUND_THE_CLOCK
            rules.update(
                granularity_minutes=1440,
                min_minutes=1440,
                max_minutes=43200,
                lead_minutes=1440,
                horizon_days=180,
                buffer_before_minutes=1440,
                buffer_after_minutes=1440,
                requires_approval=True,
                operator_allowed=False,
                closed_on_holidays=False,
                cancel_minutes=4320,
            )
            unit, price = "day", Decimal(rng.randint(30, 300) * 100)
            durations, duration_weights = (2, 3, 5, 7, 10, 14), (20, 25, 25, 15, 10, 5)
            value = Decimal(rng.randint(200, 5000) * 10_000)
        status = "maintenance" if rng.random() < 0.01 else "available"
        voucher_eligible = rng.random() < 0.85
        description = rng.choice(DESCRIPTIONS)
        category = self.categories[code]
        government = rng.random() < 0.7
        accepted = self.first_day - timedelta(days=rng.randint(60, 3000))
        row = {
            "id": resource_id,
            "code": code,
            "provider_id": lab.id,
            "kind": kind,
            "category_id": category.id,
            "service_category": category.service_category,
            "name_zh": name_zh if serial % 3 else f"{name_zh}（{serial + 1}号）",
            "name_en": name_en,
            "description_zh": description[0],
            "description_en": description[1],
            "region": lab.region,
            "location": f"{rng.choice('ABCDEF')}区{rng.randint(101, 520)}室",
            "manufacturer": manufacturer,
            "model": model,
            "status": status,
            "voucher_eligible": voucher_eligible,
            "original_value": value,
            "funding_source": "government" if government else rng.choice(["self", "other"]),
            "accepted_on": accepted,
            "special_purpose": rng.random() < 0.1,
            "inner_id": f"A{lab.id:05d}-{serial + 1:03d}",
            "country": rng.choice(["CHN", "CHN", "USA", "DEU", "JPN"]),
            "nrii_reported_on": accepted + timedelta(days=rng.randint(5, 40))
            if government and rng.random() < 0.9
            else None,
            "capacity": capacity,
            "capacity_unit": capacity_unit,
            "turnaround_days": turnaround,
            "approval_deadline_minutes": 2880,
            "no_show_grace_minutes": 30,
            "extra": {},
            "created_at": instant(self.period_start - 400 * DAY),
            "updated_at": instant(self.period_start - 400 * DAY),
            "_unit": unit,
            "_price": price,
            **rules,
        }
        res = Res(
            id=resource_id,
            kind=kind,
            provider_id=lab.id,
            city=lab.city,
            capacity=capacity,
            grid=rules["granularity_minutes"] * 60,
            hours=hours,
            closed_on_holidays=rules["closed_on_holidays"],
            buffer_before=rules["buffer_before_minutes"] * 60,
            buffer_after=rules["buffer_after_minutes"] * 60,
            requires_approval=rules["requires_approval"],
            requires_training=rules["requires_training"],
            operator_allowed=rules["operator_allowed"],
            voucher_eligible=voucher_eligible,
            service_category=category.service_category,
            available=status == "available",
            durations=durations,
            duration_weights=tuple(_cumulative(duration_weights)),
            no_show_fee=no_show_fee,
        )
        res.mean = _mean(res.durations, res.duration_weights)
        if kind == "hpc":
            res.unit_choices = (
                (32, 64, 128, 256, 512, 1024)
                if capacity_unit == "core"
                else (1, 2, 4, 8)
                if capacity_unit == "gpu"
                else (1, 2, 4)
            )
        return row, res

    def hours_rows(self, w: Writer, res: Res) -> None:
        if res.hours is None:
            return
        for weekday, spans in enumerate(res.hours):
            for opens, closes in spans:
                w.add(
                    "opening_hours",
                    {
                        "id": self.next_id("opening_hours"),
                        "resource_id": res.id,
                        "weekday": weekday,
                        "open": clock_time(opens // 60, opens % 60),
                        "close": clock_time(closes // 60, closes % 60),
                    },
                )

    def popularity(self) -> None:
        """Zipf weights within each kind (random ranks), then the rates that
        make each kind's expected count its share of the target."""
        shares = {"instrument": 0.56, "testing_service": 0.28, "hpc": 0.15, "pilot_line": 0.01}
        present = {r.kind for r in self.res if r.available}
        total_share = sum(shares[k] for k in present)
        for kind in present:
            items = [r for r in self.res if r.kind == kind and r.available]
            self.rng.shuffle(items)
            for rank, res in enumerate(items):
                res.weight = 1.0 / (rank + 4) ** 0.8
            target = self.target * shares[kind] / total_share
            low, high = 0.0, 1e6
            for _ in range(60):
                k = (low + high) / 2
                if sum(self.expected(r, k) for r in items) < target:
                    low = k
                else:
                    high = k
            for res in items:
                self.expected(res, high, set_rate=True)

    def open_steps(self, res: Res) -> tuple[float, float]:
        """(grid steps of opening time over the period, open days)."""
        days = (self.last_day - self.first_day).days
        if res.hours is None:
            return days * DAY / res.grid, days
        weekly = sum(c - o for spans in res.hours for o, c in spans) * 60 / res.grid
        open_days = sum(1 for spans in res.hours if spans)
        return weekly * days / 7 * 0.96, open_days * days / 7 * 0.96

    def expected(self, res: Res, k: float, set_rate: bool = False) -> float:
        steps, days = self.open_steps(res)
        mean = _mean(res.durations, res.duration_weights)
        if res.kind == "instrument":
            rate = min(0.93, k * res.weight)
            buffer = res.buffer_after / res.grid
            count = steps * rate / (mean + buffer) * 0.93
        elif res.kind == "pilot_line":
            rate = min(0.5, k * res.weight)
            count = days / (1 / rate + mean + 1) if rate > 0 else 0
        elif res.kind == "hpc":
            units = sum(res.unit_choices) / len(res.unit_choices)
            ceiling = 0.8 * res.capacity / (units * mean)  # jobs an hour at 80 % use
            rate = min(ceiling, k * res.weight)
            count = steps * rate
        else:
            rate = min(0.8 * res.capacity / mean, k * res.weight)
            count = steps * rate * 0.85
        if set_rate:
            res.rate = rate
        return count

    def clienteles(self, w: Writer) -> None:
        """Each resource's regulars: (organisation, user, customer class),
        mostly enterprises of its city, some of the lab's own staff
        (internal) and of other labs (academic); trained where it needs it."""
        rng = self.rng
        labs = self.providers
        lab_by_id = {p.id: p for p in labs}
        for res in self.res:
            size = int(6 + 200 * res.weight) if res.kind != "pilot_line" else 6
            lab = lab_by_id[res.provider_id]
            members = []
            for _ in range(size):
                roll = rng.random()
                if roll < 0.08:
                    members.append((lab.id, rng.choice(lab.staff), "internal"))
                elif roll < 0.14 and len(labs) > 1:
                    other = rng.choice(labs)
                    if other.id != lab.id:
                        members.append((other.id, rng.choice(other.staff), "academic"))
                else:
                    local = rng.random() < 0.7 and res.city in self.by_city
                    pool = self.by_city[res.city] if local else self.enterprises
                    cum = self.city_weights[res.city] if local else self.all_weights
                    enterprise = pool[bisect.bisect(cum, rng.random() * cum[-1])]
                    members.append((enterprise.id, rng.choice(enterprise.users), "enterprise"))
            members = list(dict.fromkeys(members))
            res.clientele = members
            res.clientele_weights = list(
                _cumulative([1 / (i + 1) ** 0.9 for i in range(len(members))])
            )
            if res.requires_training:
                for _org, user, _class in members:
                    if (user, res.id) not in self.trained:
                        self.trained.add((user, res.id))
                        w.add(
                            "training_records",
                            {
                                "id": self.next_id("training_records"),
                                "user_id": user,
                                "resource_id": res.id,
                                "provider_id": res.provider_id,
                                "granted_by_id": lab.admin,
                                "granted_at": instant(
                                    self.period_start - rng.randint(1, 300) * DAY
                                ),
                            },
                        )
        self.lab_admin = {p.id: p.admin for p in labs}
        self.lab_region = {p.id: p.region for p in labs}
        self.enterprise_by_id = {e.id: e for e in self.enterprises}

    # --- bookings, day by day -------------------------------------------------------------

    def bookings(self, w: Writer) -> None:
        from booking.domain.calendar import DayKind, national_day_kind

        self.claims: dict[tuple, dict] = {}
        self.deferred_lines: list[dict] = []
        day = self.first_day
        while day < self.last_day:
            midnight = local_midnight(day)
            kind, _name = national_day_kind(day)
            weekday = 0 if kind == DayKind.WORKDAY else day.weekday()
            holiday = kind == DayKind.HOLIDAY
            for res in self.res:
                if not res.available or res.rate <= 0:
                    continue
                if res.kind == "hpc":
                    self.hpc_day(w, res, midnight)
                elif res.kind == "pilot_line":
                    self.pilot_day(w, res, midnight)
                elif holiday and res.closed_on_holidays:
                    continue
                elif res.kind == "testing_service":
                    self.pooled_day(w, res, midnight, weekday)
                else:
                    self.exclusive_day(w, res, midnight, weekday)
            day += timedelta(days=1)
        self.finish_vouchers(w)
        self.finish_claims(w)

    def spans(self, res: Res, weekday: int) -> list[tuple[int, int]]:
        if res.hours is None:
            return [(0, DAY)]
        return [(o * 60, c * 60) for o, c in res.hours[weekday]]

    def exclusive_day(self, w: Writer, res: Res, midnight: int, weekday: int) -> None:
        """Bookings packed into the day's opening spans: durations drawn until
        the day's share of the time is used, the rest spread as gaps."""
        rng = self.rng
        if rng.random() < 0.004:  # a maintenance day
            self.blackout(w, res, midnight)
            res.free_from = max(res.free_from, midnight + DAY)
            return
        grid = res.grid
        buffer = -(-res.buffer_after // grid)
        rate = min(0.97, res.rate * rng.uniform(0.6, 1.4) * (0.5 if weekday == 5 else 1.0))
        for opens, closes in self.spans(res, weekday):
            first = max(midnight + opens, res.free_from)
            first = midnight + -(-(first - midnight) // grid) * grid
            steps = (midnight + closes - first) // grid
            if steps <= 0:
                continue
            target = rate * steps
            lengths = []
            used = 0
            while used < target:
                d = res.durations[
                    bisect.bisect(res.duration_weights, rng.random() * res.duration_weights[-1])
                ]
                if used + d > target and rng.random() * res.mean >= target - used:
                    break  # the last one only in the share of it the target leaves
                if used + d > steps:
                    d = steps - used
                    if d < 2:
                        break
                lengths.append(d)
                used += d + buffer
            if not lengths:
                continue
            slack = max(0, steps - sum(lengths) - buffer * (len(lengths) - 1))
            cuts = sorted(rng.randint(0, slack) for _ in lengths)
            position, previous = first, 0
            for length, cut in zip(lengths, cuts, strict=True):
                position += (cut - previous) * grid
                previous = cut
                start, end = position, position + length * grid
                if end > midnight + closes:
                    break
                self.booking(w, res, start, end, start, end + res.buffer_after, 1, None)
                position = end + buffer * grid
                res.free_from = end + res.buffer_after

    def pilot_day(self, w: Writer, res: Res, midnight: int) -> None:
        rng = self.rng
        if midnight - res.buffer_before < res.free_from or rng.random() >= res.rate:
            return
        days = res.durations[
            bisect.bisect(res.duration_weights, rng.random() * res.duration_weights[-1])
        ]
        end = midnight + days * DAY
        self.booking(
            w, res, midnight, end, midnight - res.buffer_before, end + res.buffer_after, 1, None
        )
        res.free_from = end + res.buffer_after

    def _admit(self, res: Res, start: int, units: int) -> bool:
        active = res.active
        while active and active[0][0] <= start:
            res.used -= heapq.heappop(active)[1]
        return res.used + units <= res.capacity

    def _arrivals(self, rate: float) -> int:
        whole = int(rate)
        return whole + (self.rng.random() < rate - whole)

    def hpc_day(self, w: Writer, res: Res, midnight: int) -> None:
        """Jobs arrive by the hour (more in working hours) and run when the
        partition has the units free; never above its capacity."""
        rng = self.rng
        for hour in range(24):
            busy = 1.6 if 9 <= hour < 18 else 0.64
            for _ in range(self._arrivals(res.rate * busy)):
                units = rng.choice(res.unit_choices)
                start = midnight + hour * HOUR
                if not self._admit(res, start, units):
                    continue
                steps = res.durations[
                    bisect.bisect(res.duration_weights, rng.random() * res.duration_weights[-1])
                ]
                end = start + steps * HOUR
                heapq.heappush(res.active, (end, units))
                res.used += units
                self.booking(w, res, start, end, start, end, units, None)

    def pooled_day(self, w: Writer, res: Res, midnight: int, weekday: int) -> None:
        rng = self.rng
        if rng.random() < 0.004:
            self.blackout(w, res, midnight)
            return
        grid = res.grid
        rate = res.rate * rng.uniform(0.6, 1.4)
        for opens, closes in self.spans(res, weekday):
            for step in range((closes - opens) // grid):
                start = midnight + opens + step * grid
                for _ in range(self._arrivals(rate)):
                    d = res.durations[
                        bisect.bisect(res.duration_weights, rng.random() * res.duration_weights[-1])
                    ]
                    end = start + d * grid
                    if end > midnight + closes or not self._admit(res, start, 1):
                        continue
                    heapq.heappush(res.active, (end, 1))
                    res.used += 1
                    self.booking(w, res, start, end, start, end, 1, rng.randint(1, 30))

    def blackout(self, w: Writer, res: Res, midnight: int) -> None:
        w.add(
            "blackouts",
            {
                "id": self.next_id("blackouts"),
                "resource_id": res.id,
                "start_at": instant(midnight),
                "end_at": instant(midnight + DAY),
                "kind": self.rng.choice(["maintenance", "calibration"]),
                "reason": "设备年度维护保养",
                "created_by_id": self.lab_admin[res.provider_id],
                "created_at": instant(min(midnight - 7 * DAY, self.now_ts)),
            },
        )

    # --- one booking ----------------------------------------------------------------------

    def cost(self, terms, seconds: int, units: int, samples, operator: bool):
        from booking.domain import pricing

        key = (terms.price_rule_id, seconds, units, samples, operator)
        found = self.cost_cache.get(key)
        if found is None:
            usage = pricing.Usage(timedelta(seconds=seconds), units, samples, operator)
            result = pricing.cost(terms, usage)
            found = self.cost_cache[key] = (
                result.total,
                json.dumps(result.as_dict(), ensure_ascii=False),
            )
        return found

    def booking(self, w, res: Res, start, end, busy_start, busy_end, units, samples) -> None:
        rng = self.rng
        now = self.now_ts
        cum = res.clientele_weights
        org_id, user_id, customer_class = res.clientele[bisect.bisect(cum, rng.random() * cum[-1])]
        lead = int(rng.expovariate(1 / (4 * DAY))) + HOUR
        if res.kind == "pilot_line":
            lead += 10 * DAY
        created = start - lead
        if start > now:
            created = min(created, now - rng.randint(60, 3 * DAY))
        created = max(created, self.period_start - 30 * DAY)
        # the state, by where the booking lies against now
        roll = rng.random()
        approval = res.requires_approval
        if end <= now:
            status = (
                "cancelled"
                if roll < 0.10
                else "no_show"
                if roll < 0.13
                else "rejected"
                if approval and roll < 0.17
                else "expired"
                if approval and roll < 0.19
                else "completed"
            )
        elif start <= now:
            status = "in_use"
        else:
            far = start - now > 2 * DAY
            status = (
                "cancelled"
                if roll < 0.07
                else "requested"
                if approval and roll < (0.42 if far else 0.15)
                else "approved"
            )
        operator = res.operator_allowed and rng.random() < 0.1
        terms_list = res.terms[customer_class]
        entry = terms_list[0]
        for candidate in terms_list:
            if candidate[0] <= created:
                entry = candidate
        _since, terms, snapshot_head = entry
        estimate, estimate_json = self.cost(terms, end - start, units, samples, operator)
        row = {
            "id": self.next_id("reservations"),
            "resource_id": res.id,
            "customer_org_id": org_id,
            "user_id": user_id,
            "start_at": instant(start),
            "end_at": instant(end),
            "busy_start": instant(busy_start),
            "busy_end": instant(busy_end),
            "exclusive": res.capacity == 1,
            "units": units,
            "samples": samples,
            "purpose": PURPOSES[row_mod(start, len(PURPOSES))],
            "with_operator": operator,
            "other_public_subsidy": False,
            "customer_class": customer_class,
            "estimated_cost": estimate,
            "voucher_hold": Decimal("0.00"),
            "created_at": instant(created),
        }
        sequence = 0
        decided = None
        if status not in ("requested", "expired", "rejected"):
            decided = created if not approval else min(created + rng.randint(300, DAY), start - 60)
            decided = max(min(decided, now), created)
            row["decided_at"] = instant(decided)
            row["decided_by_id"] = self.lab_admin[res.provider_id] if approval else None
            sequence += 1
        if status == "rejected":
            decided = min(created + rng.randint(300, DAY), start - 60, now)
            row.update(
                decided_at=instant(max(decided, created)),
                reason=rng.choice(REJECT_REASONS),
                decided_by_id=self.lab_admin[res.provider_id],
            )
            sequence += 1
        updated = decided or created
        cancelled_after_approval = status == "cancelled" and (not approval or rng.random() < 0.6)
        if status == "cancelled":
            if not cancelled_after_approval:
                row.pop("decided_at", None)
                row.pop("decided_by_id", None)
                sequence = 0
            cancelled = min(max(updated, created) + rng.randint(600, 3 * DAY), start - 600, now)
            updated = max(cancelled, updated)
            row.update(cancelled_at=instant(updated), reason=rng.choice(CANCEL_REASONS))
            sequence += 1
        elif status == "expired":
            updated = min(created + 2 * DAY, start)
            sequence += 1
        final = None
        completed_at = None
        if status in ("completed", "in_use"):
            actual_start = min(start + rng.randint(-5, 10) * 60, now - 60)
            row["actual_start"] = instant(actual_start)
            sequence += 1
            updated = max(updated, actual_start)
        if status == "completed":
            actual_end = max(actual_start + 15 * 60, end + rng.randint(-30, 15) * 60)
            actual_end = max(min(actual_end, now - 60), actual_start + 60)
            actual_units = units if res.kind != "hpc" else max(1, int(units * rng.uniform(0.6, 1)))
            final, final_json = self.cost(
                terms, actual_end - actual_start, actual_units, samples, operator
            )
            completed_at = min(actual_end + rng.randint(0, 2 * DAY), now - 30)
            completed_at = max(completed_at, actual_end)
            way = self.service_way(res, operator)
            minutes = (actual_end - actual_start) // 60
            row.update(
                actual_end=instant(actual_end),
                actual_units=actual_units,
                final_cost=final,
                service_way=way,
                run_minutes=minutes,
                prep_minutes=rng.choice([0, 10, 15, 30]) if res.kind == "instrument" else None,
                post_minutes=rng.choice([0, 5, 10, 20]) if res.kind == "instrument" else None,
            )
            sequence += 1
            updated = completed_at
        if status == "no_show":
            fee = terms.no_show_fee
            row.update(final_cost=fee, voucher_amount=Decimal("0.00"), customer_amount=fee)
            updated = max(updated, min(start + 3600, now))
            sequence += 1
        snapshot = snapshot_head + ', "estimate": ' + estimate_json
        if final is not None:
            snapshot += ', "final": ' + final_json
        row["price_snapshot"] = RawJSON(snapshot + "}")
        self.voucher_for(
            w,
            res,
            row,
            status,
            created,
            decided,
            updated,
            estimate,
            final,
            completed_at,
            cancelled_after_approval,
        )
        if final is not None and row.get("voucher_amount") is None:
            row["voucher_amount"] = Decimal("0.00")
            row["customer_amount"] = final
        if row.get("_settled"):
            status = "settled"
            sequence += 1
            updated = max(updated, row.pop("_settled"))
        row.pop("_settled", None)
        row["status"] = status
        row["sequence"] = sequence
        row["updated_at"] = instant(max(updated, created))
        w.add("reservations", row)
        self.stats["statuses"][status] = self.stats["statuses"].get(status, 0) + 1
        if status in ("completed", "settled") and rng.random() < 0.35:
            rated = min(completed_at + rng.randint(3600, 5 * DAY), now - 10)
            w.add(
                "ratings",
                {
                    "id": self.next_id("ratings"),
                    "reservation_id": row["id"],
                    "user_id": user_id,
                    "score": rng.choices([1, 2, 3, 4, 5], [3, 5, 12, 35, 45])[0],
                    "comment": rng.choice(COMMENTS),
                    "created_at": instant(max(rated, completed_at)),
                },
            )

    def service_way(self, res: Res, operator: bool) -> str:
        if operator or res.kind == "testing_service":
            return "entrusted"
        if res.kind == "hpc":
            return "remote"
        return self.rng.choices(["self_operated", "guided", "entrusted"], [50, 30, 20])[0]

    def voucher_for(
        self,
        w,
        res,
        row,
        status,
        created,
        decided,
        updated,
        estimate,
        final,
        completed_at,
        cancelled_after_approval,
    ) -> None:
        """Attach a voucher where the enterprise has one that may pay, and
        write its ledger entries for what happened to the booking."""
        from booking.domain.vouchers import voucher_share

        if row["customer_class"] != "enterprise" or not res.voucher_eligible:
            return
        if not self.lab_admitted(res.provider_id):
            return
        enterprise = self.enterprise_by_id[row["customer_org_id"]]
        start, end = int(row["start_at"].timestamp()), int(row["end_at"].timestamp())
        voucher = enterprise.vouchers.get(local_day(start).year)
        if (
            voucher is None
            or start < voucher.valid_from
            or end > voucher.valid_until
            or created > voucher.valid_until
            or self.rng.random() > 0.75
        ):
            return
        share = voucher_share(estimate, voucher.terms, voucher.available)
        if share <= 0:
            return
        row["voucher_id"] = voucher.id
        row["voucher_estimate"] = share
        actor = self.lab_admin[res.provider_id]
        rid = row["id"]
        on = {"resource_id": row["resource_id"]}
        held = status in ("approved", "in_use", "completed", "no_show") or (
            status == "cancelled" and cancelled_after_approval
        )
        if not held:
            return
        self.ledger(w, voucher.id, "hold", -share, rid, decided or created, actor, **on)
        if status in ("approved", "in_use"):
            voucher.available -= share
            row["voucher_hold"] = share
            return
        if status in ("cancelled", "no_show"):
            self.ledger(w, voucher.id, "release", share, rid, updated, actor, status, **on)
            return
        # completed: release the hold, redeem the share of the final cost
        at = min(completed_at, voucher.valid_until)
        self.ledger(w, voucher.id, "release", share, rid, at, actor, "completed", **on)
        paid = voucher_share(final, voucher.terms, voucher.available)
        row["voucher_amount"] = paid
        row["customer_amount"] = final - paid
        if paid <= 0:
            return
        voucher.available -= paid
        voucher.redeemed += paid
        self.ledger(w, voucher.id, "redeem", -paid, rid, at, actor, **on)
        row["redeemed_at"] = instant(at)
        row["redeemed_region"] = voucher.bureau_region
        self.confirmation(w, row, res, voucher, at)
        self.claim_line(row, res, voucher, at)

    def lab_admitted(self, provider_id: int) -> bool:
        found = getattr(self, "_admitted", None)
        if found is None:
            found = self._admitted = {p.id for p in self.providers if p.admitted}
        return provider_id in found

    def confirmation(self, w, row, res, voucher, at: int) -> None:
        content = {
            "reservation_id": row["id"],
            "resource_id": res.id,
            "customer_org_id": row["customer_org_id"],
            "voucher_number": f"{voucher.bureau_region}-{voucher.id}",
            "final_cost": f"{row['final_cost']:.2f}",
            "voucher_amount": f"{row['voucher_amount']:.2f}",
            "customer_amount": f"{row['customer_amount']:.2f}",
            "number": f"FW{local_day(at):%Y%m%d}-{row['id']:06d}",
        }
        text = json.dumps(content, sort_keys=True, ensure_ascii=False)
        confirmed = instant(min(at + DAY, self.now_ts))
        w.add(
            "order_confirmations",
            {
                "id": self.next_id("order_confirmations"),
                "reservation_id": row["id"],
                "number": content["number"],
                "content": RawJSON(text),
                "content_hash": sha256(text),
                "created_at": instant(at),
                "customer_confirmed_by_id": row["user_id"],
                "customer_confirmed_at": confirmed,
                "provider_confirmed_by_id": self.lab_admin[res.provider_id],
                "provider_confirmed_at": confirmed,
            },
        )

    def claim_line(self, row, res, voucher, at: int) -> None:
        """Quarters already over are claimed; the claim's age decides its state."""
        day = local_day(at)
        end = quarter_end(day)
        age = (local_day(self.now_ts) - end).days
        if age <= 3:
            return
        key = (res.provider_id, voucher.bureau, quarter_start(day))
        claim = self.claims.get(key)
        if claim is None:
            status = "paid" if age > 75 else "audited" if age > 30 else "submitted"
            claim = self.claims[key] = {
                "id": self.next_id("claims"),
                "status": status,
                "end": end,
                "claimed": Decimal("0.00"),
                "bureau_region": voucher.bureau_region,
            }
        claim["claimed"] += row["voucher_amount"]
        filed = local_midnight(end) + 5 * DAY + 10 * HOUR
        approved = claim["status"] != "submitted"
        self.deferred_lines.append(
            {
                "id": self.next_id("claim_lines"),
                "claim_id": claim["id"],
                "reservation_id": row["id"],
                "voucher_id": voucher.id,
                "provider_id": res.provider_id,
                "provider_region": self.lab_region[res.provider_id],
                "customer_org_id": row["customer_org_id"],
                "status": "approved" if approved else "pending",
                "levels_passed": 1 if approved else 0,
                "completed_at": instant(at),
                "actual_start": row["actual_start"],
                "actual_end": row["actual_end"],
                "actual_units": row["actual_units"],
                "final_cost": row["final_cost"],
                "voucher_amount": row["voucher_amount"],
                "customer_amount": row["customer_amount"],
                "invoice_number": f"INV{row['id']:09d}",
                "payment_proof": "银行转账回单",
                "usage_record": "上机记录",
                "decided_at": instant(filed + 20 * DAY) if approved else None,
            }
        )
        if claim["status"] == "paid":
            row["_settled"] = min(filed + 60 * DAY, self.now_ts - 60)

    def finish_vouchers(self, w: Writer) -> None:
        """What is left of each voucher whose year is over expires with it."""
        for voucher in self.voucher_state.values():
            if voucher.expired:
                remaining = voucher.face - voucher.redeemed
                if remaining > 0:
                    self.ledger(
                        w, voucher.id, "expire", -remaining, None, voucher.valid_until, None
                    )

    def finish_claims(self, w: Writer) -> None:
        for (provider_id, bureau, period_from), claim in self.claims.items():
            end = claim["end"]
            filed = local_midnight(end) + 5 * DAY + 10 * HOUR
            status = claim["status"]
            w.add(
                "claims",
                {
                    "id": claim["id"],
                    "number": f"CL{period_from:%Y%m}-{claim['id']:06d}",
                    "bureau_id": bureau,
                    "bureau_region": claim["bureau_region"],
                    "claimant_org_id": provider_id,
                    "claimant_kind": "provider",
                    "period_from": period_from,
                    "period_to": end,
                    "status": status,
                    "audit_levels": [],
                    "notice_days": 0,
                    "payment_cadence": "per_claim",
                    "claimed_amount": claim["claimed"],
                    "approved_amount": claim["claimed"] if status != "submitted" else None,
                    "paid_amount": claim["claimed"] if status == "paid" else None,
                    "created_by_id": self.lab_admin[provider_id],
                    "filed_by_id": self.lab_admin[provider_id],
                    "filed_at": instant(filed),
                    "audited_at": instant(filed + 20 * DAY) if status != "submitted" else None,
                    "payable_from": instant(filed + 20 * DAY) if status != "submitted" else None,
                    "paid_at": instant(min(filed + 60 * DAY, self.now_ts - 60))
                    if status == "paid"
                    else None,
                    "paid_by_id": self.officers[bureau] if status == "paid" else None,
                    "payment_reference": f"PAY{claim['id']:08d}" if status == "paid" else None,
                    "created_at": instant(filed),
                    "updated_at": instant(filed),
                },
            )
        w.flush()
        for line in self.deferred_lines:
            w.add("claim_lines", line)
        self.deferred_lines = []


def row_mod(value: int, n: int) -> int:
    return (value // 1800) % n


def _cumulative(values):
    total = 0.0
    for value in values:
        total += value
        yield total


def _mean(values, cumulative) -> float:
    weights = [b - a for a, b in zip((0.0, *cumulative[:-1]), cumulative, strict=True)]
    return sum(v * x for v, x in zip(values, weights, strict=True)) / sum(weights)


# --- the database -------------------------------------------------------------------------

#: Tables written in bulk whose secondary indexes are made after the load.
BIG_TABLES = ("reservations", "voucher_ledger_entries", "ratings", "claim_lines")


def recreate_database(url: str) -> None:
    """Drop and make the database (PostgreSQL) or remove the file (SQLite)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database)
        if path.exists():
            path.unlink()
        return
    if "bench" not in parsed.database:
        raise SystemExit(f"refusing to drop {parsed.database!r}: its name must hold 'bench'")
    admin = create_engine(
        parsed.set(drivername="postgresql+psycopg", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def make_app(url: str):
    from booking import create_app

    return create_app({"ENV_NAME": "testing", "DATABASE_URL": url, "TESTING": False})


def create_schema(app) -> None:
    from sqlalchemy import text

    from booking.extensions import db

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        db.create_all()


def load_categories(app) -> dict:
    from sqlalchemy import select

    from booking.extensions import db
    from booking.models.catalog import Category
    from booking.services import catalog

    with app.app_context():
        session = db.session
        if session.scalar(select(Category.id).limit(1)) is None:
            catalog.load_categories(session, catalog.SYSTEM)
            session.commit()
        rows = session.scalars(select(Category)).all()
        by_id = {c.id: c for c in rows}
        found = {}
        for c in rows:
            parent = by_id.get(c.parent_id)
            found[c.code] = SimpleNamespace(
                id=c.id,
                name_zh=c.name_zh,
                name_en=c.name_en,
                aliases=list(c.aliases or []),
                service_category=c.service_category.value,
                parent=SimpleNamespace(
                    name_zh=parent.name_zh,
                    name_en=parent.name_en,
                    aliases=list(parent.aliases or []),
                    parent=None,
                )
                if parent
                else None,
            )
        session.remove()
        return found


def _secondary_indexes(conn) -> list:
    from booking.models import Base

    found = []
    for name in BIG_TABLES:
        table = Base.metadata.tables[name]
        found.extend(index for index in table.indexes if index.name)
    return found


def write_meta(conn, meta: dict) -> None:
    from sqlalchemy import text

    conn.execute(
        text("CREATE TABLE IF NOT EXISTS bench_meta (key VARCHAR(40) PRIMARY KEY, value TEXT)")
    )
    conn.execute(text("DELETE FROM bench_meta"))
    for key, value in meta.items():
        conn.execute(
            text("INSERT INTO bench_meta (key, value) VALUES (:k, :v)"),
            {"k": key, "v": json.dumps(value, ensure_ascii=False, default=str)},
        )


def read_meta(conn) -> dict:
    from sqlalchemy import text

    rows = conn.execute(text("SELECT key, value FROM bench_meta")).all()
    return {key: json.loads(value) for key, value in rows}


def settle(conn, log=print) -> None:
    """After a bulk load, on an AUTOCOMMIT connection to PostgreSQL: fresh
    statistics and visibility map (``VACUUM ANALYZE``), then the loaded pages
    written out (``CHECKPOINT``) now rather than during the first
    measurement (a run started right after generating measured half the
    throughput, with stalls of seconds, while the checkpoint wrote them)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    conn.execute(text("VACUUM ANALYZE"))
    try:
        conn.execute(text("CHECKPOINT"))
    except DBAPIError as exc:  # neither a superuser nor pg_checkpoint
        log(f"  no CHECKPOINT ({exc.orig}); let the server settle before measuring")


def generate(
    app,
    size: Size,
    *,
    bookings: int | None = None,
    seed: int = 2026,
    now: datetime | None = None,
    fast: bool = True,
    keep_meta: bool = True,
    log=print,
) -> dict:
    """Fill the (empty) schema of ``app``'s database. ``fast`` (PostgreSQL):
    foreign-key triggers off and the big tables' secondary indexes made
    after the load. Returns what was made."""
    from sqlalchemy import text

    from booking.extensions import db

    started = time.perf_counter()
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    categories = load_categories(app)
    generator = Generator(size, seed, bookings or size.bookings, now)
    generator.categories = categories
    with app.app_context(), db.engine.begin() as conn:
        postgres = conn.dialect.name == "postgresql"
        dropped = []
        if postgres and fast:
            conn.execute(text("SET session_replication_role = replica"))
            for index in _secondary_indexes(conn):
                conn.execute(text(f'DROP INDEX IF EXISTS "{index.name}"'))
                dropped.append(index)
        writer = Writer(conn, now)
        generator.world(writer, categories)
        writer.flush()
        log(
            f"  world: {time.perf_counter() - started:.1f} s; bookings from "
            f"{generator.first_day} to {generator.last_day} …"
        )
        generator.bookings(writer)
        writer.flush()
        generated = time.perf_counter() - started
        log(f"  {writer.counts.get('reservations', 0):,} bookings written in {generated:.1f} s")
        if postgres:
            conn.execute(text("SET session_replication_role = origin"))
            for index in dropped:
                index.create(conn)
            for name, ids in generator.ids.items():
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), {ids})"))
        meta = {
            "size": size.name,
            "seed": seed,
            "generated_at": now.isoformat(),
            "first_day": generator.first_day.isoformat(),
            "last_day": generator.last_day.isoformat(),
            "target_bookings": bookings or size.bookings,
            "counts": dict(sorted(writer.counts.items())),
            "statuses": generator.stats["statuses"],
            "seconds_generate": round(generated, 1),
        }
        if keep_meta:
            write_meta(conn, meta)
    if postgres and fast:
        with (
            app.app_context(),
            db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
        ):
            settle(conn, log)
    meta["seconds_total"] = round(time.perf_counter() - started, 1)
    if keep_meta:
        with app.app_context(), db.engine.begin() as conn:
            write_meta(conn, meta)
    return meta


LIVE = "('requested', 'approved', 'in_use')"

CONSISTENCY = {
    "overlapping live bookings (exclusive resources)": f"""
        SELECT count(*) FROM reservations a JOIN reservations b
          ON b.resource_id = a.resource_id AND b.id > a.id
         AND b.busy_start < a.busy_end AND a.busy_start < b.busy_end
         WHERE a.exclusive AND b.exclusive AND a.status IN {LIVE} AND b.status IN {LIVE}""",
    "live bookings above a pooled resource's capacity": f"""
        SELECT count(*) FROM reservations a JOIN resources s ON s.id = a.resource_id
         WHERE NOT a.exclusive AND a.status IN {LIVE} AND s.capacity < (
               SELECT sum(b.units) FROM reservations b
                WHERE b.resource_id = a.resource_id AND b.status IN {LIVE}
                  AND b.busy_start <= a.busy_start AND b.busy_end > a.busy_start)""",
    "vouchers whose ledger disagrees with their face value, bookings or state": """
        SELECT count(*) FROM vouchers v
          LEFT JOIN (SELECT voucher_id,
                  sum(CASE WHEN kind = 'issue' THEN amount ELSE 0 END) AS issued,
                  sum(CASE WHEN kind IN ('issue', 'redeem', 'expire', 'revoke', 'adjust')
                      THEN amount ELSE 0 END) AS balance,
                  -sum(CASE WHEN kind IN ('hold', 'release') THEN amount ELSE 0 END) AS held,
                  -sum(CASE WHEN kind = 'redeem' THEN amount ELSE 0 END) AS redeemed
                  FROM voucher_ledger_entries GROUP BY voucher_id) l ON l.voucher_id = v.id
          LEFT JOIN (SELECT voucher_id, sum(voucher_hold) AS held,
                  sum(CASE WHEN status IN ('completed', 'settled')
                      THEN coalesce(voucher_amount, 0) ELSE 0 END) AS paid
                  FROM reservations WHERE voucher_id IS NOT NULL GROUP BY voucher_id) r
            ON r.voucher_id = v.id
         WHERE l.voucher_id IS NULL OR abs(l.issued - v.face_value) > 0.005
            OR l.balance < -0.005 OR l.held < -0.005 OR l.balance - l.held < -0.005
            OR abs(l.held - coalesce(r.held, 0)) > 0.005
            OR abs(l.redeemed - coalesce(r.paid, 0)) > 0.005
            OR (v.status = 'expired' AND abs(l.balance) > 0.005)""",
    "bookings whose hold or redemption disagrees with the ledger": """
        SELECT count(*) FROM reservations r
          LEFT JOIN (SELECT reservation_id,
                  -sum(CASE WHEN kind IN ('hold', 'release') THEN amount ELSE 0 END) AS held,
                  -sum(CASE WHEN kind = 'redeem' THEN amount ELSE 0 END) AS redeemed,
                  min(voucher_id) AS voucher_id, max(voucher_id) AS other_voucher
                  FROM voucher_ledger_entries WHERE reservation_id IS NOT NULL
                  GROUP BY reservation_id) l ON l.reservation_id = r.id
         WHERE (l.reservation_id IS NOT NULL AND (r.voucher_id IS NULL
                OR l.voucher_id <> r.voucher_id OR l.other_voucher <> r.voucher_id))
            OR abs(coalesce(l.held, 0) - r.voucher_hold) > 0.005
            OR (r.status IN ('completed', 'settled')
                AND abs(coalesce(l.redeemed, 0) - coalesce(r.voucher_amount, 0)) > 0.005)
            OR (r.final_cost IS NOT NULL AND r.voucher_amount IS NOT NULL
                AND abs(r.voucher_amount + r.customer_amount - r.final_cost) > 0.005)""",
    "bookings or entries whose settlement facts disagree with the ledger": """
        SELECT (SELECT count(*) FROM reservations r
                  LEFT JOIN (SELECT reservation_id, min(at) AS at FROM voucher_ledger_entries
                              WHERE kind = 'redeem' GROUP BY reservation_id) m
                    ON m.reservation_id = r.id
                 WHERE r.redeemed_at <> m.at OR (r.redeemed_at IS NULL) <> (m.at IS NULL))
             + (SELECT count(*) FROM voucher_ledger_entries e
                  JOIN reservations r ON r.id = e.reservation_id
                 WHERE e.resource_id IS NULL OR e.resource_id <> r.resource_id)
             + (SELECT count(*) FROM voucher_ledger_entries e
                  JOIN vouchers v ON v.id = e.voucher_id
                 WHERE e.issuing_region <> v.issuing_region OR e.holder_org_id <> v.holder_org_id)
             + (SELECT count(*) FROM reservations r JOIN vouchers v ON v.id = r.voucher_id
                 WHERE r.customer_org_id <> v.holder_org_id
                    OR (r.redeemed_at IS NOT NULL
                        AND r.redeemed_region IS DISTINCT FROM v.issuing_region))""",
}


def consistency(conn) -> dict[str, int]:
    """Each check's count of offending rows (all must be 0)."""
    from sqlalchemy import text

    return {name: conn.execute(text(sql)).scalar_one() for name, sql in CONSISTENCY.items()}


def database_url_for(size: str, bookings: int | None) -> str:
    name = f"{DB_PREFIX}_load" if size == "province" and not bookings else f"{DB_PREFIX}_{size}"
    if bookings and size != "small":
        name = f"{DB_PREFIX}_{size}_{bookings}"
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--bookings", type=int, help="instead of the size's number")
    parser.add_argument("--database-url", help="default: bench_load (province) or bench_<size>")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    size = SIZES[args.size]
    if size.name == "national" and not args.bookings:
        parser.error("national is on paper: give --bookings N for the part to measure")
    url = (
        args.database_url
        or os.environ.get("BENCH_DATABASE_URL")
        or database_url_for(args.size, args.bookings)
    )
    print(
        f"{size.name}: {size.providers:,} labs, {size.resources:,} resources, "
        f"{size.enterprises:,} enterprises, {args.bookings or size.bookings:,} bookings → {url}"
    )
    recreate_database(url)
    app = make_app(url)
    create_schema(app)
    meta = generate(app, size, bookings=args.bookings, seed=args.seed)
    print(json.dumps(meta, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
