"""The one search of the catalog, on SQLite and PostgreSQL alike: words in
Chinese or English found as parts of words (category aliases included), the
filters, sorting and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from booking.domain.errors import ValidationFailed
from booking.services import catalog
from booking.services.catalog import SearchQuery
from tests.factories.catalog import sigma_input


def names(page) -> list[str]:
    return [r.name_zh for r in page.items]


def search(session, **kw):
    return catalog.search_resources(session, SearchQuery(**kw))


@pytest.fixture
def shelf(session, categories, make_lab, make_catalog_resource):
    """A small catalog: the Sigma SEM, an NMR, a TEM in Taiyuan, an HPC
    partition in Lüliang, a coal testing service."""
    taiyuan, _, _ = make_lab("140105", name="山西大学分析测试中心")
    lvliang, _, _ = make_lab("141102", name="吕梁云计算中心")
    sem = make_catalog_resource(taiyuan)
    nmr = make_catalog_resource(
        taiyuan,
        data=sigma_input(
            name_zh="600 MHz超导核磁共振波谱仪",
            name_en="600 MHz NMR spectrometer",
            category="0105",
            manufacturer="Bruker",
            model="AVANCE NEO 600",
            description_zh="14.1 T超屏蔽磁体。",
            description_en="Ultrashielded magnet.",
            prices=[
                {"customer_class": "academic", "unit": "hour", "unit_price": "225.00"},
                {"customer_class": "enterprise", "unit": "hour", "unit_price": "400.00"},
            ],
        ),
    )
    tem = make_catalog_resource(
        taiyuan,
        data=sigma_input(
            name_zh="场发射透射电子显微镜",
            name_en="Field-emission transmission electron microscope",
            model="Talos F200X",
            manufacturer="Thermo Fisher",
            voucher_eligible=False,
            prices=[{"customer_class": "enterprise", "unit": "hour", "unit_price": "900.00"}],
        ),
    )
    hpc = make_catalog_resource(
        lvliang,
        data={
            "kind": "hpc",
            "name_zh": "天河二号CPU通用计算分区",
            "name_en": "Tianhe-2 CPU partition",
            "category": "0801",
            "capacity": 8192,
            "capacity_unit": "core",
            "prices": [{"customer_class": "enterprise", "unit": "core_hour", "unit_price": "0.10"}],
        },
    )
    coal = make_catalog_resource(
        taiyuan,
        data={
            "kind": "testing_service",
            "name_zh": "煤质工业分析",
            "name_en": "Coal proximate analysis",
            "category": "0905",
            "capacity": 20,
            "prices": [{"customer_class": "enterprise", "unit": "sample", "unit_price": "220.00"}],
        },
    )
    session.commit()
    return {"sem": sem, "nmr": nmr, "tem": tem, "hpc": hpc, "coal": coal, "taiyuan": taiyuan}


@pytest.mark.parametrize(
    "words", ["电镜", "扫描电子显微镜", "SEM", "sigma", "Sigma 300", "ＳＥＭ", "zeiss"]
)
def test_the_sigma_sem_is_found_by_every_way_people_ask(session, shelf, words):
    found = names(search(session, q=words))
    assert "场发射扫描电子显微镜" in found
    assert found[0] in ("场发射扫描电子显微镜", "场发射透射电子显微镜")


def test_english_words_and_parts_of_words(session, shelf):
    # The TEM is found too (its category's aliases say "scanning electron
    # microscope"), after the SEM whose own name says it.
    assert names(search(session, q="scanning electron"))[0] == "场发射扫描电子显微镜"
    assert names(search(session, q="talos")) == ["场发射透射电子显微镜"]
    assert names(search(session, q="spectrometer")) == ["600 MHz超导核磁共振波谱仪"]
    assert names(search(session, q="核磁 bruker")) == ["600 MHz超导核磁共振波谱仪"]
    assert names(search(session, q="超算")) == ["天河二号CPU通用计算分区"]
    assert names(search(session, q="煤")) == ["煤质工业分析"]


def test_every_word_must_match(session, shelf):
    assert names(search(session, q="电镜 talos")) == ["场发射透射电子显微镜"]
    assert search(session, q="电镜 bruker").total == 0


def test_a_chinese_word_is_found_whole_not_by_its_character_pairs(session, shelf):
    # The HPC partition's text holds both pairs of 超算力 (超算 in "超算",
    # 算力 in "算力") but not the word: the index of pairs only narrows.
    assert search(session, q="超算力").total == 0
    assert names(search(session, q="算力")) == ["天河二号CPU通用计算分区"]


def test_wildcards_in_the_query_are_literal(session, shelf):
    assert search(session, q="%").total == 0
    assert search(session, q="_").total == 0


def test_the_provider_name_and_the_description_are_searched(session, shelf):
    assert search(session, q="吕梁").total == 1
    assert names(search(session, q="超屏蔽")) == ["600 MHz超导核磁共振波谱仪"]


def test_relevance_puts_a_name_match_before_a_description_match(
    session, shelf, make_catalog_resource
):
    for name, description, code in (
        ("金相显微镜", "可与拉曼光谱数据比对", "0111"),
        ("显微共聚焦激光拉曼光谱仪", "", "0102"),
    ):
        make_catalog_resource(
            shelf["taiyuan"],
            data=sigma_input(
                name_zh=name, name_en="", category=code, description_zh=description, model=""
            ),
        )
    session.commit()
    assert names(search(session, q="拉曼")) == ["显微共聚焦激光拉曼光谱仪", "金相显微镜"]
    assert names(search(session, q="拉曼", sort="name"))[0] == "显微共聚焦激光拉曼光谱仪"


def test_filters_kind_category_provider_region_voucher(session, shelf):
    assert names(search(session, kind="hpc")) == ["天河二号CPU通用计算分区"]
    assert set(names(search(session, category="01"))) == {
        "场发射扫描电子显微镜",
        "场发射透射电子显微镜",
        "600 MHz超导核磁共振波谱仪",
    }
    assert set(names(search(session, category="0101"))) == {
        "场发射扫描电子显微镜",
        "场发射透射电子显微镜",
    }
    assert search(session, provider_id=shelf["taiyuan"].id).total == 4
    assert names(search(session, region="1411")) == ["天河二号CPU通用计算分区"]
    assert names(search(session, region="141100")) == ["天河二号CPU通用计算分区"]
    assert search(session, region="14").total == 5
    assert "场发射透射电子显微镜" not in names(search(session, voucher_eligible=True))
    assert names(search(session, voucher_eligible=False)) == ["场发射透射电子显微镜"]


def test_text_and_two_filters_together(session, shelf):
    page = search(session, q="显微镜", kind="instrument", region="1401")
    assert set(names(page)) == {"场发射扫描电子显微镜", "场发射透射电子显微镜"}


def test_price_range_for_a_customer_class_and_price_sort(session, shelf):
    page = search(session, price_min=Decimal("300"), price_max=Decimal("500"))
    assert set(names(page)) == {"场发射扫描电子显微镜", "600 MHz超导核磁共振波谱仪"}
    academic = search(session, customer_class="academic", price_max=Decimal("250"))
    assert names(academic) == ["600 MHz超导核磁共振波谱仪"]
    cheapest = names(search(session, sort="price"))
    assert cheapest[0] == "天河二号CPU通用计算分区" and cheapest[-1] == "场发射透射电子显微镜"
    assert names(search(session, sort="-price"))[0] == "场发射透射电子显微镜"


def test_unknown_category_and_reversed_ranges_name_the_field(session, shelf):
    with pytest.raises(ValidationFailed) as caught:
        search(session, category="9999", price_min=Decimal("5"), price_max=Decimal("1"))
    assert set(caught.value.fields) == {"category", "price_max"}
    with pytest.raises(ValidationFailed) as caught:
        search(session, available_from=datetime(2030, 1, 1, tzinfo=UTC))
    assert set(caught.value.fields) == {"available_to"}


def test_paging_and_totals(session, shelf):
    first = search(session, per_page=2, page=1, sort="name")
    second = search(session, per_page=2, page=2, sort="name")
    beyond = search(session, per_page=2, page=9, sort="name")
    assert first.total == second.total == beyond.total == 5
    assert not set(names(first)) & set(names(second))
    assert beyond.items == [] and first.pages == 3


def test_retired_resources_are_kept_but_not_listed(session, shelf):
    catalog.update_resource(
        session, catalog.lab_admin_actor(shelf["taiyuan"]), shelf["tem"].id, {"status": "retired"}
    )
    session.commit()
    assert "场发射透射电子显微镜" not in names(search(session, q="电镜"))
    assert catalog.get_resource(session, catalog.SYSTEM, shelf["tem"].id).status.value == "retired"


def test_newest_first(session, shelf):
    assert names(search(session, sort="newest"))[0] == "煤质工业分析"


# --- free between these times --------------------------------------------------------

START = datetime(2030, 3, 4, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a Monday


def free(session, start=START, hours=2, **kw):
    return names(
        search(session, available_from=start, available_to=start + timedelta(hours=hours), **kw)
    )


def test_a_live_booking_hides_an_exclusive_resource(
    session, shelf, make_org, make_user, make_reservation
):
    customer = make_org("enterprise")
    user = make_user(customer)
    make_reservation(shelf["sem"], customer, user, START + timedelta(hours=1), status="requested")
    session.commit()
    assert "场发射扫描电子显微镜" not in free(session)
    assert "场发射扫描电子显微镜" in free(session, START + timedelta(hours=4))


def test_cancelled_bookings_do_not_hide_it(session, shelf, make_org, make_user, make_reservation):
    customer = make_org("enterprise")
    user = make_user(customer)
    make_reservation(shelf["sem"], customer, user, START, status="cancelled")
    session.commit()
    assert "场发射扫描电子显微镜" in free(session)


def test_the_buffer_of_a_booking_counts(session, shelf, make_org, make_user, make_reservation):
    customer = make_org("enterprise")
    user = make_user(customer)
    # Ends at START; the SEM keeps 30 minutes after each booking.
    make_reservation(shelf["sem"], customer, user, START - timedelta(hours=2), status="approved")
    session.commit()
    assert "场发射扫描电子显微镜" not in free(session)


def test_pooled_capacity_left_keeps_it_listed(
    session, shelf, make_org, make_user, make_reservation
):
    customer = make_org("enterprise")
    user = make_user(customer)
    make_reservation(shelf["hpc"], customer, user, START, units=8000, status="approved")
    session.commit()
    assert "天河二号CPU通用计算分区" in free(session, kind="hpc")
    make_reservation(shelf["hpc"], customer, user, START, units=192, status="approved")
    session.commit()
    assert "天河二号CPU通用计算分区" not in free(session, kind="hpc")


def test_a_blackout_or_maintenance_hides_it(session, shelf):
    actor = catalog.lab_admin_actor(shelf["taiyuan"])
    catalog.add_blackout(
        session,
        actor,
        shelf["sem"].id,
        {
            "start": START,
            "end": START + timedelta(minutes=30),
            "reason": "校准",
            "kind": "calibration",
        },
    )
    catalog.update_resource(session, actor, shelf["nmr"].id, {"status": "maintenance"})
    session.commit()
    found = free(session)
    assert "场发射扫描电子显微镜" not in found and "600 MHz超导核磁共振波谱仪" not in found
    assert "600 MHz超导核磁共振波谱仪" in names(search(session, q="核磁"))
