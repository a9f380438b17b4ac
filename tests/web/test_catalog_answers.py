"""The catalog's read answers, byte for byte: a fixed catalog (ids given, the
clock frozen) searched every way a client searches it, and its resources
read, in Chinese and in English, compared with the answers recorded in
``catalog_answers.json``. A change in what a client receives (a field, a
number's or a time's format, the order of the results, paging, a filter,
an error message) fails here; the same answers hold on SQLite and on
PostgreSQL.

After a deliberate change of the answers, rewrite the file with
``CATALOG_ANSWERS_WRITE=1 pytest tests/web/test_catalog_answers.py`` and
read its diff.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
import time_machine
from sqlalchemy import select

from booking.domain.organizations import make_uscc
from booking.models.accounts import Organization, OrgKind
from booking.models.catalog import (
    Blackout,
    BlackoutKind,
    OpeningHours,
    PriceRule,
    Resource,
    ResourcePhoto,
)
from booking.services import catalog
from tests.factories.catalog import load_categories

NOW = datetime(2030, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 Beijing time, a Friday
ANSWERS = Path(__file__).with_name("catalog_answers.json")

LABS = [
    (810001, "山西大学分析测试中心", "Shanxi University Analysis Centre", "140105"),
    (810002, "太原理工大学测试中心", "Taiyuan UT Testing Centre", "140109"),
    (810003, "晋中材料中试基地", "Jinzhong Materials Pilot Base", "140702"),
    (810004, "北京计算中心", "Beijing Computing Centre", "110105"),
]

# id, lab, kind, category, name_zh, name_en, fields
RESOURCES = [
    (820001, 810001, "instrument", "0101", "场发射扫描电子显微镜", "Field-emission SEM",
     {"manufacturer": "ZEISS", "model": "Sigma 300", "location": "理科楼B区105室",
      "description_zh": "热场发射电子枪，分辨率1.2 nm。", "description_en": "Resolution 1.2 nm.",
      "original_value": Decimal("2680000.00"), "funding_source": "government",
      "accepted_on": date(2019, 6, 18), "inner_id": "SXU-0001", "country": "DEU",
      "turnaround_days": 3, "special_purpose": True, "buffer_after_minutes": 30,
      "requires_training": True, "lead_minutes": 1440}),
    (820002, 810002, "instrument", "0101", "透射电子显微镜", "Transmission electron microscope",
     {"manufacturer": "JEOL", "model": "JEM-2100F", "status": "maintenance",
      "voucher_eligible": False, "original_value": Decimal("9800000.50")}),
    (820003, 810003, "instrument", "0101", "台式扫描电子显微镜", "Benchtop SEM",
     {"manufacturer": "Phenom", "model": "XL G2", "operator_allowed": True,
      "closed_on_holidays": False}),
    (820004, 810001, "instrument", "0101", "旧扫描电镜", "Old SEM", {"status": "retired"}),
    (820005, 810001, "instrument", "0103", "高效液相色谱仪", "HPLC system",
     {"manufacturer": "Agilent", "model": "1260 Infinity II"}),
    (820006, 810002, "instrument", "0103", "高效液相色谱仪", "HPLC system",
     {"manufacturer": "Waters", "model": "e2695", "voucher_eligible": False}),
    (820007, 810003, "instrument", "0103", "气相色谱仪", "Gas chromatograph",
     {"manufacturer": "Agilent", "model": "8890"}),
    (820008, 810002, "testing_service", "0901", "金属材料化学成分分析", "Metal composition",
     {"capacity": 20, "capacity_unit": "sample_slot", "service_category": "testing"}),
    (820009, 810004, "hpc", "0801", "CPU通用计算分区", "CPU partition",
     {"capacity": 4096, "capacity_unit": "core", "service_category": "computing"}),
    (820010, 810003, "pilot_line", "1002", "新材料中试线", "New materials pilot line",
     {"capacity_unit": "line", "service_category": "pilot_scale", "granularity_minutes": 1440,
      "min_minutes": 1440, "max_minutes": 43200}),
    (820011, 810001, "instrument", "0102", "显微共聚焦激光拉曼光谱仪", "Confocal Raman microscope",
     {"manufacturer": "HORIBA", "model": "LabRAM HR Evolution"}),
]  # fmt: skip

UNITS = {"instrument": "hour", "testing_service": "sample", "hpc": "core_hour", "pilot_line": "day"}

SEARCHES = [
    {},
    {"q": "电镜"},
    {"q": "SEM"},
    {"q": "sigma 300"},
    {"q": "扫描 电子"},
    {"q": "色谱", "kind": "instrument", "region": "14"},
    {"q": "色谱", "sort": "name"},
    {"kind": "instrument", "region": "1401", "voucher_eligible": "true"},
    {"category": "01", "sort": "price"},
    {"sort": "-price", "customer_class": "academic"},
    {"price_min": "100", "price_max": "400"},
    {"sort": "newest", "per_page": 4},
    {"status": "maintenance"},
    {"provider_id": 810002},
    {"voucher_eligible": "false"},
    {"per_page": 3, "page": 2},
    {"per_page": 3, "page": 99},
    {"q": "无此仪器"},
    {"available_from": "2030-03-04T09:00:00+08:00", "available_to": "2030-03-04T11:00:00+08:00"},
    {"kind": "bad"},
    {"price_min": "5", "price_max": "1"},
]
READS = [820001, 820002, 820003, 820004, 820008, 820009, 820010, 999999]
LANGUAGES = {"zh": "zh-CN,zh;q=0.9", "en": "en"}


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _price(rule_id, resource_id, customer_class, unit, unit_price, **fields):
    return PriceRule(
        id=rule_id,
        resource_id=resource_id,
        customer_class=customer_class,
        unit=unit,
        unit_price=Decimal(unit_price),
        effective_from=fields.pop("effective_from", NOW - timedelta(days=30)),
        **fields,
    )


def build_catalog(session) -> None:
    load_categories(session)
    codes = {c.code: c for c in catalog.categories(session)}
    for org_id, name, name_en, region in LABS:
        session.add(
            Organization(
                id=org_id,
                kind=OrgKind.PROVIDER,
                name=name,
                name_en=name_en,
                uscc=make_uscc(region, org_id, prefix="12"),
                region=region,
            )
        )
    session.flush()
    rule_ids = iter(range(830001, 831000))
    for n, (resource_id, lab, kind, code, name_zh, name_en, fields) in enumerate(RESOURCES):
        fields = dict(fields)
        category = codes[code]
        resource = Resource(
            id=resource_id,
            provider_id=lab,
            kind=kind,
            category_id=category.id,
            service_category=fields.pop("service_category", "instrument_sharing"),
            name_zh=name_zh,
            name_en=name_en,
            region=next(r for i, _, _, r in LABS if i == lab),
            capacity=fields.pop("capacity", 1),
            created_at=NOW - timedelta(days=100 - n),
            updated_at=NOW - timedelta(days=50 - n, minutes=n),
            **fields,
        )
        session.add(resource)
        session.flush()
        unit = UNITS[kind]
        base = Decimal(100 + 37 * n)
        session.add_all(
            [
                _price(next(rule_ids), resource_id, "internal", unit, base / 2),
                _price(next(rule_ids), resource_id, "academic", unit, base * Decimal("0.75")),
                _price(
                    next(rule_ids),
                    resource_id,
                    "enterprise",
                    unit,
                    base,
                    setup_fee=Decimal("50.00") if n % 2 else Decimal("0.00"),
                    min_quantity=Decimal("1.50"),
                    rounding_minutes=30,
                    rounding_threshold_minutes=10,
                    order_min=Decimal("80.00") if n % 3 == 0 else None,
                    order_max=Decimal("9999.99") if n % 3 == 0 else None,
                    no_show_fee=Decimal("25.5"),
                    operator_fee_per_hour=Decimal("120.00") if n % 2 else Decimal("0"),
                ),
                # closed, future and unpublished rules are never shown
                _price(
                    next(rule_ids),
                    resource_id,
                    "enterprise",
                    unit,
                    base * 3,
                    effective_from=NOW - timedelta(days=400),
                    effective_until=NOW - timedelta(days=30),
                ),
                _price(
                    next(rule_ids),
                    resource_id,
                    "enterprise",
                    unit,
                    base * 2,
                    effective_from=NOW + timedelta(days=10),
                ),
                _price(next(rule_ids), resource_id, "academic", unit, "1.00", published=False),
            ]
        )
        if n == 0:
            # a second unit for one class, and a price ending later
            session.add(
                _price(
                    next(rule_ids),
                    resource_id,
                    "academic",
                    "sample",
                    "35.00",
                    effective_until=NOW + timedelta(days=60),
                )
            )
        if kind in ("instrument", "testing_service") and n != 2:
            # entered out of order: the answer sorts them
            for weekday in (4, 0, 2, 1, 3):
                session.add_all(
                    [
                        OpeningHours(
                            resource_id=resource_id,
                            weekday=weekday,
                            open=time(14),
                            close=time(17, 30),
                        ),
                        OpeningHours(
                            resource_id=resource_id,
                            weekday=weekday,
                            open=time(8, 30),
                            close=time(12),
                        ),
                    ]
                )
        if n == 2:
            session.add(
                OpeningHours(resource_id=resource_id, weekday=5, open=time(9), close=time(21))
            )
    for photo_id, resource_id, caption in (
        (840002, 820001, "正面"),
        (840001, 820001, ""),
        (840003, 820005, "Agilent 1260"),
    ):
        session.add(
            ResourcePhoto(
                id=photo_id,
                resource_id=resource_id,
                content_type="image/jpeg",
                data=b"x",
                thumbnail=b"x",
                width=1600,
                height=1200,
                caption=caption,
                created_at=NOW,
            )
        )
    session.add(
        Blackout(
            resource_id=820005,
            start_at=datetime(2030, 3, 4, 0, 0, tzinfo=UTC),
            end_at=datetime(2030, 3, 4, 4, 0, tzinfo=UTC),
            kind=BlackoutKind.MAINTENANCE,
            reason="年度保养",
        )
    )
    session.flush()
    for resource in session.scalars(select(Resource).options(*catalog._search_text_loads())):
        catalog.refresh_search_text(resource)
    session.commit()


def requests() -> list[tuple[str, str, str]]:
    paths = [f"/api/v1/resources?{urlencode(query)}" for query in SEARCHES]
    paths += [f"/api/v1/resources/{resource_id}" for resource_id in READS]
    return [
        (f"{lang} {path}", path, header) for path in paths for lang, header in LANGUAGES.items()
    ]


def test_the_catalog_answers_are_the_recorded_ones(client, session):
    build_catalog(session)
    found = {}
    for key, path, language in requests():
        answer = client.get(path, headers={"Accept-Language": language})
        found[key] = {"status": answer.status_code, "body": answer.get_data(as_text=True)}
    if os.environ.get("CATALOG_ANSWERS_WRITE"):
        ANSWERS.write_text(json.dumps(found, ensure_ascii=False, indent=1) + "\n", "utf-8")
    recorded = json.loads(ANSWERS.read_text("utf-8"))
    assert list(found) == list(recorded)
    for key, answer in found.items():
        assert answer == recorded[key], key


def test_the_recorded_answers_cover_what_they_should():
    """The record is not trivially empty: searches find things, pages page,
    refusals refuse, in both languages."""
    recorded = json.loads(ANSWERS.read_text("utf-8"))
    bodies = {key: json.loads(a["body"]) for key, a in recorded.items()}
    everything = bodies["zh /api/v1/resources?"]
    assert everything["total"] == 10 and len(everything["items"]) == 10
    assert bodies["en /api/v1/resources?q=%E7%94%B5%E9%95%9C"]["total"] == 3
    assert bodies["zh /api/v1/resources?per_page=3&page=99"] == {
        "items": [],
        "page": 99,
        "per_page": 3,
        "total": 10,
    }
    one = bodies["zh /api/v1/resources/820001"]
    assert len(one["photos"]) == 2 and len(one["prices"]) == 4
    assert recorded["zh /api/v1/resources?kind=bad"]["status"] == 422
    assert (
        recorded["zh /api/v1/resources/999999"]["body"]
        != recorded["en /api/v1/resources/999999"]["body"]
    )
