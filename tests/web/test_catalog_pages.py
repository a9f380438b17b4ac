"""The catalog's pages: search and resource pages for everyone; the lab's
own pages (CSRF, errors beside the field, what was typed kept, others 404);
the platform admin's calendar page."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
import time_machine
from PIL import Image
from sqlalchemy import func, select

from booking.models.catalog import Blackout, CalendarDay, PriceRule, Resource, ResourcePhoto
from tests.factories.accounts import PASSWORD

NOW = datetime(2030, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def csrf(page: bytes) -> str:
    match = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        rb'name="csrf_token" value="([^"]+)"', page
    )
    assert match, "page has no CSRF token"
    return match.group(1).decode()


def sign_in(client, user) -> None:
    token = csrf(client.get("/login").data)
    answer = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 302


@pytest.fixture
def lab(session, categories, make_lab):
    provider, admin, member = make_lab("140105", name="山西大学分析测试中心")
    session.commit()
    return provider, admin, member


@pytest.fixture
def sem(session, lab, make_catalog_resource):
    resource = make_catalog_resource(lab[0])
    session.commit()
    return resource


def text(answer) -> str:
    return answer.get_data(as_text=True)


# --- everyone's pages -------------------------------------------------------------------


def test_the_catalog_finds_the_sem_by_a_chinese_word(client, sem):
    page = client.get("/catalog", query_string={"q": "电镜"})
    assert page.status_code == 200
    body = text(page)
    assert "场发射扫描电子显微镜" in body and "找到 1 个资源" in body
    assert f'/catalog/resources/{sem.id}"' in body
    assert "¥500.00" in body  # the enterprise price, shown by default


def test_the_catalog_in_english_and_its_filters(client, sem):
    client.post("/language", data={"locale": "en", "csrf_token": csrf(client.get("/catalog").data)})
    body = text(
        client.get("/catalog", query_string={"q": "sigma", "kind": "instrument", "region": "1401"})
    )
    assert "Field-emission scanning electron microscope" in body and "1 resources found" in body
    assert text(client.get("/catalog", query_string={"kind": "hpc"})).count("resource-card") == 0


def test_bad_filters_are_shown_beside_them(client, sem):
    page = client.get("/catalog", query_string={"price_min": "abc", "q": "电镜"})
    assert page.status_code == 422
    body = text(page)
    assert 'id="price_min-error"' in body and 'value="abc"' in body and 'value="电镜"' in body


def test_the_resource_page_shows_prices_hours_rules_and_the_week(client, sem):
    page = client.get(f"/catalog/resources/{sem.id}")
    body = text(page)
    assert page.status_code == 200
    for expected in (
        "¥500.00",
        "¥300.00",
        "¥200.00",
        "08:30–12:00",
        "14:00–17:30",
        "星期一",
        "ZEISS",
        "Sigma 300",
    ):
        assert expected in body, expected
    assert "法定节假日不开放" in body
    assert 'id="week"' in body and "js/catalog_week.js" in body and "css/catalog.css" in body
    assert f"/api/v1/resources/{sem.id}/availability" in body
    assert client.get("/catalog/resources/99999").status_code == 404


def test_the_catalog_is_in_the_navigation(client):
    assert 'href="/catalog"' in text(client.get("/"))


# --- the lab's pages ----------------------------------------------------------------------


def test_a_lab_admin_edits_a_resource(client, session, lab, sem):
    sign_in(client, lab[1])
    form = client.get(f"/lab/resources/{sem.id}/edit")
    assert form.status_code == 200
    data = {
        "csrf_token": csrf(form.data),
        "name_zh": "场发射扫描电镜",
        "name_en": "FE-SEM",
        "category": "0101",
        "status": "available",
        "funding_source": "government",
        "capacity": "1",
        "capacity_unit": "instrument",
        "region": "140105",
        "original_value": "2680000.00",
        "granularity_minutes": "30",
        "min_minutes": "60",
        "max_minutes": "240",
        "lead_minutes": "1440",
        "horizon_days": "60",
        "buffer_before_minutes": "0",
        "buffer_after_minutes": "30",
        "cancel_minutes": "1440",
        "approval_deadline_minutes": "2880",
        "no_show_grace_minutes": "30",
        "requires_approval": "y",
        "voucher_eligible": "y",
        "closed_on_holidays": "y",
    }
    saved = client.post(f"/lab/resources/{sem.id}/edit", data=data)
    assert saved.status_code == 302
    session.expire_all()
    resource = session.get(Resource, sem.id)
    assert resource.name_zh == "场发射扫描电镜" and resource.max_minutes == 240
    assert resource.requires_training is False  # unticked


def test_a_form_error_is_shown_beside_the_field_and_keeps_the_input(client, session, lab, sem):
    sign_in(client, lab[1])
    form = client.get(f"/lab/resources/{sem.id}/edit")
    data = {
        "csrf_token": csrf(form.data),
        "name_zh": "改过的名字",
        "category": "0101",
        "status": "available",
        "funding_source": "government",
        "capacity": "1",
        "min_minutes": "600",
        "max_minutes": "480",
        "granularity_minutes": "30",
    }
    answer = client.post(f"/lab/resources/{sem.id}/edit", data=data)
    body = text(answer)
    assert answer.status_code == 422
    assert 'value="改过的名字"' in body and 'value="600"' in body
    assert re.search(r'id="max_minutes-error" role="alert">最长时长不能小于最短时长。', body)
    session.expire_all()
    assert session.get(Resource, sem.id).name_zh == "场发射扫描电子显微镜"


def test_a_lab_admin_adds_a_resource(client, session, lab):
    sign_in(client, lab[1])
    form = client.get("/lab/resources/new?kind=hpc")
    body = text(form)
    assert form.status_code == 200 and 'value="60"' in body  # the HPC default slot
    answer = client.post(
        "/lab/resources/new",
        data={
            "csrf_token": csrf(form.data),
            "kind": "hpc",
            "name_zh": "GPU加速计算分区",
            "category": "0802",
            "status": "available",
            "funding_source": "other",
            "capacity": "",
            "granularity_minutes": "60",
            "min_minutes": "60",
            "max_minutes": "10080",
        },
    )
    assert answer.status_code == 422 and 'id="capacity-error"' in text(answer)
    assert session.scalar(select(func.count()).select_from(Resource)) == 0


def test_other_labs_and_customers_get_404_on_the_lab_pages(
    client, session, sem, make_lab, make_org, make_user
):
    _, other_admin, _ = make_lab("140109")
    customer = make_user(make_org("enterprise"))
    session.commit()
    for user in (other_admin, customer):
        client.post("/logout", data={"csrf_token": csrf(client.get("/login").data)})
        sign_in(client, user)
        for page in ("edit", "hours", "prices", "blackouts", "photos"):
            assert client.get(f"/lab/resources/{sem.id}/{page}").status_code == 404, page
    assert client.get("/lab/resources").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client, sem):
    answer = client.get(f"/lab/resources/{sem.id}/edit")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_the_lab_list_shows_retired_resources_too(client, session, lab, sem):
    from booking.services import catalog

    catalog.update_resource(session, catalog.lab_admin_actor(lab[0]), sem.id, {"status": "retired"})
    session.commit()
    sign_in(client, lab[1])
    body = text(client.get("/lab/resources"))
    assert "场发射扫描电子显微镜" in body and "已停用" in body


def test_hours_are_edited_per_weekday(client, session, lab, sem):
    sign_in(client, lab[1])
    form = client.get(f"/lab/resources/{sem.id}/hours")
    assert 'value="08:30-12:00, 14:00-17:30"' in text(form)
    bad = client.post(
        f"/lab/resources/{sem.id}/hours",
        data={
            "csrf_token": csrf(form.data),
            "day_0": "08:00-12:00, 11:00-13:00",
            "day_2": "18:00-09:00",
        },
    )
    body = text(bad)
    assert bad.status_code == 422
    assert 'id="day_0-error"' in body and 'id="day_2-error"' in body
    assert 'value="08:00-12:00, 11:00-13:00"' in body
    good = client.post(
        f"/lab/resources/{sem.id}/hours",
        data={"csrf_token": csrf(form.data), "day_5": "09:00-24:00", "closed_on_holidays": "y"},
    )
    assert good.status_code == 302
    session.expire_all()
    hours = session.get(Resource, sem.id).opening_hours
    assert [(h.weekday, h.open.isoformat(), h.close.isoformat()) for h in hours] == [
        (5, "09:00:00", "23:59:00")
    ]


def test_prices_are_published_from_the_form(client, session, lab, sem):
    sign_in(client, lab[1])
    form = client.get(f"/lab/resources/{sem.id}/prices")
    assert 'value="500.00"' in text(form)
    data = {
        "csrf_token": csrf(form.data),
        "prices-0-unit": "hour",
        "prices-0-unit_price": "200.00",
        "prices-1-unit": "hour",
        "prices-1-unit_price": "-3",
        "prices-2-unit": "hour",
        "prices-2-unit_price": "550.00",
        "prices-2-rounding_minutes": "30",
        "prices-2-rounding_threshold_minutes": "45",
    }
    bad = client.post(f"/lab/resources/{sem.id}/prices", data=data)
    body = text(bad)
    assert bad.status_code == 422
    assert 'id="prices-1-unit_price-error"' in body and 'value="-3"' in body
    assert session.scalar(select(func.count()).select_from(PriceRule)) == 3
    data.update({"prices-1-unit_price": "310.00", "prices-2-rounding_threshold_minutes": "15"})
    assert client.post(f"/lab/resources/{sem.id}/prices", data=data).status_code == 302
    assert session.scalar(select(func.count()).select_from(PriceRule)) == 5


def test_blackouts_from_the_lab_page(client, session, lab, sem):
    sign_in(client, lab[1])
    form = client.get(f"/lab/resources/{sem.id}/blackouts")
    bad = client.post(
        f"/lab/resources/{sem.id}/blackouts",
        data={
            "csrf_token": csrf(form.data),
            "start": "2030-03-05T12:00",
            "end": "2030-03-05T08:00",
            "kind": "maintenance",
            "reason": "保养",
        },
    )
    assert bad.status_code == 422 and 'id="end-error"' in text(bad) and 'value="保养"' in text(bad)
    good = client.post(
        f"/lab/resources/{sem.id}/blackouts",
        data={
            "csrf_token": csrf(form.data),
            "start": "2030-03-05T08:00",
            "end": "2030-03-05T12:00",
            "kind": "maintenance",
            "reason": "保养",
        },
    )
    assert good.status_code == 302
    blackout = session.scalars(select(Blackout)).one()
    assert blackout.start_at == datetime(2030, 3, 5, 0, 0, tzinfo=UTC)
    page = client.get(f"/lab/resources/{sem.id}/blackouts")
    assert "2030-03-05 08:00" in text(page)
    removed = client.post(
        f"/lab/resources/{sem.id}/blackouts/{blackout.id}/delete",
        data={"csrf_token": csrf(page.data)},
    )
    assert removed.status_code == 302
    assert session.scalar(select(func.count()).select_from(Blackout)) == 0


def test_photos_from_the_lab_page(client, session, lab, sem):
    sign_in(client, lab[1])
    form = client.get(f"/lab/resources/{sem.id}/photos")
    refused = client.post(
        f"/lab/resources/{sem.id}/photos",
        data={"csrf_token": csrf(form.data), "file": (io.BytesIO(b"not a picture"), "x.jpg")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422 and 'id="file-error"' in text(refused)
    picture = io.BytesIO()
    Image.new("RGB", (320, 240), (10, 120, 90)).save(picture, "JPEG")
    picture.seek(0)
    added = client.post(
        f"/lab/resources/{sem.id}/photos",
        data={"csrf_token": csrf(form.data), "file": (picture, "front.jpg"), "caption": "正面"},
        content_type="multipart/form-data",
    )
    assert added.status_code == 302
    photo = session.scalars(select(ResourcePhoto)).one()
    assert f"/catalog/photos/{photo.id}/thumbnail" in text(
        client.get(f"/catalog/resources/{sem.id}")
    )


def test_an_import_with_bad_rows_shows_a_table_of_cells(client, session, lab):
    sign_in(client, lab[1])
    form = client.get("/lab/resources/import")
    content = "name_zh,kind,category\n电镜,instrument,9999\n".encode()
    answer = client.post(
        "/lab/resources/import",
        data={"csrf_token": csrf(form.data), "file": (io.BytesIO(content), "list.csv")},
        content_type="multipart/form-data",
    )
    body = text(answer)
    assert answer.status_code == 422
    assert "<td>2</td><td>category</td><td>未知的分类。</td>" in body
    assert session.scalar(select(func.count()).select_from(Resource)) == 0


# --- the platform admin's calendar --------------------------------------------------------


def test_the_platform_admin_enters_next_years_dates(client, session, platform_admin):
    sign_in(client, platform_admin)
    page = client.get("/admin/calendar?year=2027")
    assert page.status_code == 200 and "节假日库尚无本年数据" in text(page)
    bad = client.post(
        "/admin/calendar?year=2027",
        data={
            "csrf_token": csrf(page.data),
            "days": "2027-01-01 holiday 元旦\n2027-02-09 班 调休\nnot-a-date",
        },
    )
    body = text(bad)
    assert bad.status_code == 422 and "第 3 行" in body and "2027-02-09 班 调休" in body
    assert session.scalar(select(func.count()).select_from(CalendarDay)) == 0
    bad = client.post(
        "/admin/calendar?year=2027",
        data={"csrf_token": csrf(page.data), "days": "2027-01-01 holiday 元旦\n2027-02-09 班 调休"},
    )
    assert "第 2 行：调休上班日只能是星期六或星期日。" in text(bad)
    good = client.post(
        "/admin/calendar?year=2027",
        data={"csrf_token": csrf(page.data), "days": "2027-01-01 休 元旦\n2027-02-06 班 春节调休"},
    )
    assert good.status_code == 302
    assert session.scalar(select(func.count()).select_from(CalendarDay)) == 2
    assert "春节调休" in text(client.get("/admin/calendar?year=2027"))


def test_the_calendar_page_is_the_platform_admins(client, lab):
    sign_in(client, lab[1])
    assert client.get("/admin/calendar").status_code == 404
