"""A booking from search to settlement in a real browser.

An SME finds the instrument by a Chinese word, picks a free span in the week
view, books it with its innovation voucher and sees the estimate (the cost,
the voucher's share and what the enterprise pays); the lab admin approves
it, checks the customer in and out and completes it with the actual use;
the SME sees the final cost and the voucher's share; the bureau officer
downloads the settlement report as CSV and XLSX. Also: the language switch
and a form error that keeps what was typed.

The clock is fixed (ticking) at Tuesday 1 December 2026, 08:00 Beijing time,
for the server thread and the test alike; the browser's own clock does not
matter (the pages compute local times from what the server says).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from openpyxl import load_workbook
from playwright.sync_api import expect
from sqlalchemy import select

from booking.models.catalog import Category
from booking.models.reservations import Reservation
from booking.services import catalog
from tests.factories.accounts import PASSWORD

pytestmark = pytest.mark.browser

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def clock():
    with time_machine.travel(datetime(2026, 12, 1, 8, 0, tzinfo=SH), tick=True) as traveller:
        yield traveller


@pytest.fixture
def world(clock, categories, voucher_world, session):
    w = voucher_world()
    # "电镜" is in no name: the category of electron microscopes knows it.
    w.resource.category = session.scalar(select(Category).where(Category.code == "0101"))
    w.resource.name_zh = "场发射扫描电子显微镜"
    w.resource.name_en = "Field-emission scanning electron microscope"
    catalog.refresh_search_text(w.resource)
    found = {
        "customer": w.customer.email,
        "lab_admin": w.lab_admin.email,
        "officer": w.officer.email,
        "resource": w.resource.id,
        "voucher": w.voucher.number,
        "enterprise": w.enterprise.name,
        "provider": w.provider.name,
    }
    # Commit, and leave no transaction open while the browser works.
    session.commit()
    session.close()
    return found


def sign_in(page, email: str) -> None:
    page.goto("/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("form.card button[type=submit]").click()
    expect(page.locator(".site-header .who")).to_be_visible()


def new_page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        accept_downloads=True,
    )
    context.set_default_timeout(15_000)
    return context, context.new_page()


def test_an_sme_books_with_a_voucher_the_lab_completes_and_the_bureau_downloads_it(
    browser_page, browser, live_server, world, clock, session
):
    # --- the SME finds the instrument by a Chinese word and picks a free span
    page = browser_page
    sign_in(page, world["customer"])
    page.goto("/catalog")
    page.get_by_role("searchbox").fill("电镜")
    page.get_by_role("button", name="搜索").click()
    expect(page.locator(".result-count")).to_have_text("找到 1 个资源")
    page.locator(".resource-card h2 a").click()
    expect(page.locator("h1")).to_have_text("场发射扫描电子显微镜")

    # Wednesday is free from 08:00 to 18:00; chosen by keyboard, the span
    # starts at its beginning and takes the default length of an hour.
    wednesday = page.locator('#week a.slot.free[data-start="2026-12-02T08:00"]')
    expect(wednesday).to_have_attribute("aria-label", "空闲 08:00–18:00")
    wednesday.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/catalog/resources/{world['resource']}/book\?"))
    expect(page.locator("#start")).to_have_value("2026-12-02T08:00")
    expect(page.locator("#end")).to_have_value("2026-12-02T09:00")
    # One hour at the enterprise price of 200.00; the voucher covers half.
    expect(page.locator("#estimate-total")).to_have_text("¥200.00")
    voucher = page.get_by_role("radio", name=re.compile(world["voucher"]))
    expect(voucher).to_be_checked()

    # Two hours instead: the estimate follows the field without a reload.
    page.locator("#end").fill("2026-12-02T10:00")
    page.locator("#end").dispatch_event("change")
    expect(page.locator("#estimate-total")).to_have_text("¥400.00")
    expect(page.locator("#estimate-voucher")).to_have_text("¥200.00")
    expect(page.locator("#estimate-customer")).to_have_text("¥200.00")
    page.locator("#purpose").fill("锂电池正极材料形貌观察")
    page.get_by_role("button", name="预约", exact=True).click()

    expect(page).to_have_url(re.compile(r"/bookings/\d+$"))
    booking_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator(".flash")).to_be_visible()
    expect(page.locator("main")).to_contain_text("待审核")
    expect(page.locator("main")).to_contain_text(world["voucher"])

    # --- the lab admin approves, checks in and out, and completes it
    lab_context, lab = new_page(browser, live_server)
    sign_in(lab, world["lab_admin"])
    lab.goto("/approvals")
    lab.locator(f"#request-{booking_id}").check()
    lab.get_by_role("button", name="批准").click()
    expect(lab.locator(".flash")).to_be_visible()
    expect(lab.locator(f"#request-{booking_id}")).to_have_count(0)

    clock.move_to(datetime(2026, 12, 2, 7, 55, tzinfo=SH))
    lab.goto("/lab")
    today = lab.locator("table.today tr", has_text="场发射扫描电子显微镜")
    today.get_by_role("button", name="签到").click()
    today = lab.locator("table.today tr", has_text="场发射扫描电子显微镜")
    expect(today.locator(".state")).to_have_text("使用中")

    clock.move_to(datetime(2026, 12, 2, 9, 32, tzinfo=SH))
    today.get_by_role("button", name="签退").click()
    lab.locator("table.today tr", has_text="场发射扫描电子显微镜").get_by_role(
        "link", name="完成预约"
    ).click()
    expect(lab.locator("h1")).to_contain_text(f"#{booking_id}")
    # Used from 08:00 to 09:30: one and a half hours.
    lab.locator("#actual_start").fill("2026-12-02T08:00")
    lab.locator("#actual_end").fill("2026-12-02T09:30")
    lab.get_by_role("button", name="完成并计算费用").click()
    expect(lab.locator("#final-cost")).to_have_text("¥300.00")
    expect(lab.locator("#voucher-amount")).to_have_text("¥150.00")
    lab_context.close()

    row = session.get(Reservation, booking_id)
    assert row.status.value == "completed"
    assert (row.final_cost, row.voucher_amount) == (Decimal("300.00"), Decimal("150.00"))
    session.rollback()

    # --- the SME sees the final cost and the voucher's share
    page.reload()
    expect(page.locator("main")).to_contain_text("已完成")
    expect(page.locator("#final-cost")).to_have_text("¥300.00")
    expect(page.locator("#voucher-amount")).to_have_text("¥150.00")
    expect(page.locator("#customer-amount")).to_have_text("¥150.00")

    # --- the bureau officer downloads the settlement report
    bureau_context, bureau = new_page(browser, live_server)
    sign_in(bureau, world["officer"])
    bureau.goto("/reports")
    bureau.locator("#vs-from").fill("2026-12-01")
    bureau.locator("#vs-to").fill("2026-12-31")
    bureau.locator("form", has=bureau.locator("#vs-from")).get_by_role(
        "button", name="查看报表"
    ).click()
    expect(bureau.locator("h1")).to_contain_text("2026-12-01")
    expect(bureau.locator("table.report-table")).to_contain_text("150.00")

    with bureau.expect_download() as csv_download:
        bureau.get_by_role("link", name="下载 CSV").click()
    assert csv_download.value.suggested_filename.endswith(".csv")
    text = csv_download.value.path().read_text(encoding="utf-8-sig")
    cells = [cell for line in csv.reader(io.StringIO(text)) for cell in line]
    assert "300.00" in cells and "150.00" in cells, text

    with bureau.expect_download() as xlsx_download:
        bureau.get_by_role("link", name="下载 XLSX").click()
    assert xlsx_download.value.suggested_filename.endswith(".xlsx")
    workbook = load_workbook(io.BytesIO(xlsx_download.value.path().read_bytes()), read_only=True)
    numbers = {
        Decimal(str(cell))
        for row in workbook.worksheets[0].iter_rows(values_only=True)
        for cell in row
        if isinstance(cell, (int, float, Decimal)) or re.fullmatch(r"\d+\.\d\d", str(cell))
    }
    workbook.close()
    assert {Decimal("300"), Decimal("150")} <= numbers, numbers
    bureau_context.close()


def test_the_language_switch_turns_the_pages_to_english_and_back(browser_page, world):
    page = browser_page
    page.goto(f"/catalog/resources/{world['resource']}")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("场发射扫描电子显微镜")

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(re.compile(rf"/catalog/resources/{world['resource']}$"))
    expect(page.locator("h1")).to_have_text("Field-emission scanning electron microscope")
    page.goto("/catalog")
    expect(page.get_by_role("button", name="Search")).to_be_visible()

    page.get_by_role("button", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("button", name="搜索")).to_be_visible()


def test_a_booking_form_error_keeps_the_input_and_shows_the_message_by_the_field(
    browser_page, world
):
    page = browser_page
    sign_in(page, world["customer"])
    page.goto(f"/catalog/resources/{world['resource']}/book")
    page.locator("#start").fill("2026-12-02T10:00")
    page.locator("#end").fill("2026-12-02T09:00")
    page.locator("#purpose").fill("XRD 物相分析，样品 3 个")
    page.get_by_role("button", name="预约", exact=True).click()

    error = page.locator("#end-error")
    expect(error).to_be_visible()
    expect(page.locator("#end")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#end")).to_have_attribute("aria-describedby", re.compile("end-error"))
    expect(page.locator("#start")).to_have_value("2026-12-02T10:00")
    expect(page.locator("#end")).to_have_value("2026-12-02T09:00")
    expect(page.locator("#purpose")).to_have_value("XRD 物相分析，样品 3 个")
