"""The printable report pages: figures, inline SVG charts (no script, no
inline style), download buttons, and who may open them."""

from __future__ import annotations

import csv
import io
import re

import openpyxl
import pytest

from tests.factories.accounts import PASSWORD
from tests.factories.reports import build_open_sharing_world, build_settlement_world


def sign_in(client, user) -> None:
    page = client.get("/login").data
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()
    answer = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 302, answer.data


@pytest.fixture
def browse(client):
    signed_in = {}

    def call(user, url):
        if signed_in.get("user") != user.id:
            sign_in(client, user)
            signed_in["user"] = user.id
        # Real time: the session does not survive a jump back in time.
        return client.get(url)

    return call


def test_reports_need_signing_in(client):
    answer = client.get("/reports/open-sharing?year=2024")
    assert answer.status_code == 302
    assert "/login" in answer.headers["Location"]


def test_index_offers_what_the_caller_may_pull(session, browse):
    world = build_settlement_world(session)
    session.commit()
    officer = browse(world.officer, "/reports").get_data(as_text=True)
    assert "创新券结算" in officer and "开放共享评价考核" in officer
    lab = browse(world.lab_admin, "/reports").get_data(as_text=True)
    assert "开放共享评价考核" in lab and 'action="/reports/voucher-settlement"' not in lab


def test_open_sharing_page(session, browse):
    world = build_open_sharing_world(session)
    session.commit()
    answer = browse(world.lab_admin, "/reports/open-sharing?year=2024&programme=shanxi")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert "2024 年度开放共享评价考核" in page
    assert "场发射扫描电镜" in page and "8.58" in page and "89.39%" in page
    assert "入网比例" in page and "50.00%" in page
    assert "未在规定时限内入网的纳入考核仪器：1 台" in page
    # two charts, drawn on the server, accessible, no script and no inline style
    assert page.count("<svg") == 2
    assert 'role="img"' in page and "2024 年各月机时" in page
    assert "<script" not in page and "style=" not in page
    # the download buttons carry the same query
    links = re.findall(r'href="(/reports/open-sharing/download\?[^"]+)"', page)
    assert len(links) == 4
    csv_link = next(link.replace("&amp;", "&") for link in links if "format=csv" in link)
    assert "programme=shanxi" in csv_link and "year=2024" in csv_link
    download = browse(world.lab_admin, csv_link)
    rows = list(csv.reader(io.StringIO(download.data.decode("utf-8-sig"))))
    assert rows[1][2] == "场发射扫描电镜"
    xlsx_link = next(
        link.replace("&amp;", "&") for link in links if "format=xlsx" in link and "nrii" in link
    )
    sheet = openpyxl.load_workbook(io.BytesIO(browse(world.lab_admin, xlsx_link).data)).active
    assert [c.value for c in sheet[1]][:2] == ["innerId", "cname"]
    assert sheet["E2"].value == 60  # worth in 万元


def test_open_sharing_page_of_a_region_lists_the_labs(session, browse):
    world = build_open_sharing_world(session)
    session.commit()
    page = browse(world.officer, "/reports/open-sharing?year=2024").get_data(as_text=True)
    assert "测试中心" in page and "另一实验室" in page


def test_settlement_page(session, browse):
    world = build_settlement_world(session)
    session.commit()
    answer = browse(world.officer, "/reports/voucher-settlement?from=2024-01-01&to=2024-12-31")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert "创新券结算 2024-01-01 至 2024-12-31" in page
    assert "吕梁中试基地" in page and "本地创新券在外地使用" in page
    assert "合计与创新券台账核对一致，精确到分。" in page
    assert "2,000.00" in page  # total fees
    assert page.count("<svg") == 3  # by provider, category, region
    assert "各发券地区的创新券金额" in page
    assert "<script" not in page and "style=" not in page
    # The wide table scrolls sideways on a phone instead of widening the page.
    assert '<div class="report-scroll"><table class="report-table">' in page
    link = re.search(r'href="(/reports/voucher-settlement/download\?[^"]*format=xlsx[^"]*)"', page)
    assert link is not None
    sheet = openpyxl.load_workbook(
        io.BytesIO(browse(world.officer, link.group(1).replace("&amp;", "&")).data)
    ).active
    assert sheet["A1"].value == "服务机构"


def test_pages_refuse_what_the_caller_may_not_see(session, browse):
    world = build_settlement_world(session)
    session.commit()
    far = browse(world.officer, "/reports/voucher-settlement?region=1411")
    assert far.status_code == 404
    assert browse(world.lab_admin, "/reports/voucher-settlement").status_code == 403
    assert browse(world.officer, "/reports/voucher-settlement?group_by=x").status_code == 422
