"""GET /api/v1/reports/voucher-settlement and /open-sharing: JSON, CSV (UTF-8
with BOM, Chinese headers), XLSX (typed cells, frozen header, totals row)
agree; the NRII export is deterministic; who may see what."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pytest
import time_machine

from tests.factories.accounts import create_org, create_user
from tests.factories.reports import build_open_sharing_world, build_settlement_world, local

D = Decimal
NOW = local(2025, 2, 1, 12)
SETTLEMENT = "/api/v1/reports/voucher-settlement?from=2024-01-01&to=2024-12-31"
OPEN_SHARING = "/api/v1/reports/open-sharing?year=2024"


@pytest.fixture
def get(client, auth_headers):
    def call(user, url, locale="zh-CN"):
        headers = auth_headers(user, locale)
        with time_machine.travel(NOW, tick=False):
            return client.get(url, headers=headers)

    return call


def read_csv(response) -> list[list[str]]:
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.data.startswith(b"\xef\xbb\xbf")  # the byte-order mark
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def read_xlsx(response):
    assert response.headers["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    workbook = openpyxl.load_workbook(io.BytesIO(response.data))
    return workbook.worksheets[0]


# --- settlement ----------------------------------------------------------------------------


def test_settlement_json(session, get):
    world = build_settlement_world(session)
    session.commit()
    response = get(world.officer, SETTLEMENT + "&group_by=provider")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["from"], body["to"], body["region"], body["group_by"]) == (
        "2024-01-01",
        "2024-12-31",
        "1401",
        "provider",
    )
    items = {(i["key"], i["flow"]): i for i in body["items"]}
    outbound = items[str(world.far_lab.id), "outbound"]
    assert outbound["cross_region"] is True
    assert outbound["label"] == "吕梁中试基地"
    assert (outbound["voucher_share"], outbound["claimed"], outbound["paid"]) == (
        "500.00",
        "500.00",
        "0.00",
    )
    assert items["", "local"]["label"] == "已过期（不归属服务机构）"
    totals = body["totals"]
    assert (totals["bookings"], totals["total_fees"], totals["expired"]) == (
        3,
        "2000.00",
        "1000.00",
    )
    assert body["totals_by_flow"]["inbound"]["voucher_share"] == "200.00"
    assert body["reconciliation"]["ok"] is True
    assert body["reconciliation"]["message"] == "合计与创新券台账核对一致，精确到分。"


def test_settlement_csv_xlsx_and_json_agree(session, get):
    world = build_settlement_world(session)
    session.commit()
    body = get(world.officer, SETTLEMENT + "&group_by=month").get_json()
    rows = read_csv(get(world.officer, SETTLEMENT + "&group_by=month&format=csv"))
    sheet = read_xlsx(get(world.officer, SETTLEMENT + "&group_by=month&format=xlsx"))
    assert rows[0][:4] == ["月份", "资金流向", "订单数", "服务费总额"]
    assert [c.value for c in sheet[1]][:4] == rows[0][:4]
    assert sheet.freeze_panes == "A2"
    assert len(rows) == len(body["items"]) + 3  # header, lines, totals, footer
    for item, row, xrow in zip(body["items"], rows[1:], sheet.iter_rows(min_row=2), strict=False):
        assert row[0] == item["label"] == xrow[0].value
        assert row[2] == str(item["bookings"]) and xrow[2].value == item["bookings"]
        assert row[3] == item["total_fees"]
        assert D(str(xrow[3].value)) == D(item["total_fees"])
        assert xrow[3].number_format == "#,##0.00"
        assert isinstance(xrow[3].value, int | float)
    totals_row = rows[len(body["items"]) + 1]
    assert totals_row[0] == "合计"
    assert totals_row[3] == body["totals"]["total_fees"] == "2000.00"
    last = len(body["items"]) + 2
    x_totals = next(sheet.iter_rows(min_row=last, max_row=last))
    assert x_totals[0].value == "合计" and x_totals[0].font.b
    assert (x_totals[9].value, x_totals[10].value) == (500, 300)  # approved, paid
    assert rows[-1] == ["合计与创新券台账核对一致，精确到分。"]


def test_settlement_csv_in_english(session, get):
    world = build_settlement_world(session)
    session.commit()
    rows = read_csv(get(world.officer, SETTLEMENT + "&format=csv", locale="en"))
    assert rows[0][:3] == ["Provider", "Flow", "Number of bookings"]
    assert rows[-1] == ["Totals reconcile with the voucher ledger to the fen."]


def test_settlement_access(session, get):
    world = build_settlement_world(session)
    session.commit()
    assert get(world.officer, SETTLEMENT + "&region=1411").status_code == 404
    assert get(world.far_officer, SETTLEMENT + "&region=14").status_code == 404
    refused = get(world.lab_admin, SETTLEMENT)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "forbidden"
    bad = get(world.officer, SETTLEMENT + "&group_by=colour")
    assert bad.status_code == 422
    assert "group_by" in bad.get_json()["error"]["details"]["fields"]


def test_reports_need_a_token(client):
    assert client.get(SETTLEMENT).status_code == 401
    assert client.get(OPEN_SHARING).status_code == 401


# --- open sharing ----------------------------------------------------------------------------


def test_open_sharing_json(session, get):
    world = build_open_sharing_world(session)
    session.commit()
    body = get(world.lab_admin, OPEN_SHARING + "&programme=shanxi").get_json()
    assert body["provider_id"] == world.lab.id
    assert body["programme"]["threshold"] == "200000.00"
    a, b = body["items"]
    assert (a["inner_id"], a["effective_hours"], a["external_hours"]) == ("L-001", 8.58, 7.67)
    assert (a["share_rate"], a["service_income"], a["rating_word"]) == (
        0.8939,
        "1300.00",
        "基本满意",
    )
    assert a["service_url"] == f"http://testserver/resources/{world.a.id}"
    assert (b["overdue"], b["reporting_deadline"], b["quota_hours"]) == (True, "2024-10-18", 800)
    t = body["totals"]
    assert (t["network_ratio"], t["running_ratio"], t["shared_ratio"], t["external_ratio"]) == (
        0.5,
        0.5,
        1.0,
        0.5,
    )
    assert [m["effective_hours"] for m in body["months"]][:3] == [1.0, 0.0, 3.92]


def test_open_sharing_csv_has_the_right_chinese_text(session, get):
    world = build_open_sharing_world(session)
    session.commit()
    rows = read_csv(get(world.lab_admin, OPEN_SHARING + "&format=csv&programme=shanxi"))
    header = rows[0]
    assert header[:3] == ["服务机构", "内部编号", "仪器名称"]
    assert "有效机时" in header and "对外服务机时" in header and "共享率" in header
    first = dict(zip(header, rows[1], strict=True))
    assert first["仪器名称"] == "场发射扫描电镜"
    assert (first["有效机时"], first["对外服务机时"], first["共享率"]) == ("8.58", "7.67", "0.8939")
    assert first["运行状态"] == "正常" and first["用户评价"] == "基本满意"
    second = dict(zip(header, rows[2], strict=True))
    assert (second["专用仪器"], second["未按时入网"], second["运行状态"]) == (
        "是",
        "是",
        "偶有故障",
    )
    totals = dict(zip(header, rows[3], strict=True))
    assert (totals["服务机构"], totals["有效机时"], totals["服务收入（元）"]) == (
        "合计",
        "10.58",
        "1350.00",
    )
    assert rows[4][0].startswith("入网比例: 50.00%")


def test_open_sharing_xlsx_cells_are_typed(session, get):
    world = build_open_sharing_world(session)
    session.commit()
    body = get(world.lab_admin, OPEN_SHARING + "&programme=shanxi").get_json()
    sheet = read_xlsx(get(world.lab_admin, OPEN_SHARING + "&format=xlsx&programme=shanxi"))
    header = [c.value for c in sheet[1]]
    row = dict(zip(header, sheet[2], strict=True))
    assert row["仪器名称"].value == "场发射扫描电镜" and row["仪器名称"].data_type == "s"
    assert row["原值（元）"].value == 600000 and row["原值（元）"].number_format == "#,##0.00"
    assert row["有效机时"].value == pytest.approx(8.58) and row["有效机时"].data_type == "n"
    assert row["共享率"].number_format == "0.00%"
    assert row["共享率"].value == pytest.approx(body["items"][0]["share_rate"])
    assert row["订单数"].value == 5 and isinstance(row["订单数"].value, int)
    assert isinstance(row["验收日期"].value, datetime)
    assert row["验收日期"].value.date() == date(2023, 3, 1)
    assert row["验收日期"].number_format == "yyyy-mm-dd"
    assert row["服务收入（元）"].value == 1300
    totals = dict(zip(header, sheet[4], strict=True))
    assert totals["服务机构"].value == "合计" and totals["服务机构"].font.b
    assert totals["有效机时"].value == pytest.approx(10.58)
    assert sheet.freeze_panes == "A2"


def test_nrii_export_is_deterministic_and_in_the_national_layout(session, get):
    world = build_open_sharing_world(session)
    session.commit()
    url = OPEN_SHARING + "&programme=shanxi&layout=nrii"
    first = get(world.lab_admin, url)
    second = get(world.lab_admin, url)
    assert first.data == second.data
    body = first.get_json()
    assert body["fields"][:5] == ["innerId", "cname", "ename", "instrCategory", "worth"]
    a = body["items"][0]
    assert list(a) == body["fields"]
    assert (a["innerId"], a["worth"], a["nation"], a["beginDate"]) == (
        "L-001",
        "60.00",
        "JPN",
        "2023-03-01",
    )
    assert (a["status"], a["shareMode"], a["serviceIncome"], a["rating"]) == (
        "正常",
        "外部共享",
        "0.13",
        "基本满意",
    )
    assert a["fee"] == "200.00元/小时"
    rows = read_csv(get(world.lab_admin, url + "&format=csv"))
    assert rows[0] == body["fields"]
    assert rows[1][0] == "L-001" and len(rows) == 3  # no totals row in the NRII layout
    assert (
        get(world.lab_admin, url + "&format=csv").data
        == get(world.lab_admin, url + "&format=csv").data
    )


def test_open_sharing_access(session, get):
    world = build_open_sharing_world(session)
    session.commit()
    assert (
        get(world.lab_admin, OPEN_SHARING + f"&provider_id={world.other_lab.id}").status_code == 404
    )
    assert get(world.far_officer, OPEN_SHARING + f"&provider_id={world.lab.id}").status_code == 404
    assert get(world.far_officer, OPEN_SHARING + "&region=1401").status_code == 404
    assert get(world.customer_user, OPEN_SHARING).status_code == 403
    region = get(world.officer, OPEN_SHARING).get_json()
    assert [i["inner_id"] for i in region["items"]] == ["L-001", "M-001"]
    assert get(world.lab_admin, OPEN_SHARING + "&programme=nowhere").status_code == 422


def test_programme_settings(session, get, client, auth_headers):
    platform = create_org(session, "platform")
    admin = create_user(session, platform, "admin", platform_admin=True)
    lab_admin = create_user(session, create_org(session, "provider"), "admin")
    session.commit()
    body = {
        "name_zh": "山西省",
        "name_en": "Shanxi",
        "threshold": "300000.00",
        "quota_hours": 1600,
        "special_quota_hours": 900,
        "effective_from": "2024-01-01",
    }
    assert (
        client.put(
            "/api/v1/reports/programmes/shanxi", json=body, headers=auth_headers(lab_admin)
        ).status_code
        == 403
    )
    saved = client.put("/api/v1/reports/programmes/shanxi", json=body, headers=auth_headers(admin))
    assert saved.status_code == 200, saved.get_json()
    listed = {p["code"]: p for p in get(admin, "/api/v1/reports/programmes").get_json()}
    assert listed["shanxi"]["threshold"] == "300000.00"
    assert listed["national"]["threshold"] == "500000.00"
