"""The catalog in a real browser: a search by a Chinese word finds the
instrument; its page shows prices, opening hours and a week of free and busy
times; a lab admin edits it, and a form error keeps what was typed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories.accounts import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def sem(session, categories, make_lab, make_catalog_resource):
    lab, admin, _ = make_lab("140105", name="山西大学分析测试中心")
    resource = make_catalog_resource(lab)
    found = {"admin_email": admin.email, "id": resource.id}
    # Commit, and leave no transaction open while the browser works.
    session.commit()
    session.close()
    return found


def test_a_chinese_word_finds_the_instrument_and_its_page_shows_prices_and_hours(browser_page, sem):
    page = browser_page
    page.goto("/catalog")
    page.get_by_role("searchbox").fill("电镜")
    page.get_by_role("button", name="搜索").click()
    expect(page.locator(".result-count")).to_have_text("找到 1 个资源")
    card = page.locator(".resource-card").first
    expect(card.locator("h2")).to_have_text("场发射扫描电子显微镜")
    expect(card.locator(".price")).to_have_text("¥500.00")

    card.locator("h2 a").click()
    expect(page).to_have_url(re.compile(rf"/catalog/resources/{sem['id']}$"))
    prices = page.locator("#prices")
    expect(prices).to_contain_text("¥500.00")
    expect(prices).to_contain_text("¥300.00")
    expect(prices).to_contain_text("企业")
    hours = page.locator("#hours")
    expect(hours.locator("tr").first).to_contain_text("星期一")
    expect(hours.locator("tr").first).to_contain_text("08:30–12:00")
    expect(hours.locator("tr").nth(5)).to_contain_text("不开放")  # Saturday
    # The week view draws seven days, whether or not the schedule answers.
    expect(page.locator("#week .week-day")).to_have_count(7)
    expect(page.locator("#week .week-status")).not_to_have_text("正在加载日程……")


def test_english_search_and_a_filter(browser_page, sem):
    page = browser_page
    page.goto("/catalog?q=Sigma&kind=instrument")
    expect(page.locator(".resource-card h2")).to_have_text("场发射扫描电子显微镜")
    page.goto("/catalog?q=Sigma&kind=hpc")
    expect(page.locator(".empty")).to_be_visible()


def sign_in(page, email: str) -> None:
    page.goto("/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("form.card button[type=submit]").click()
    expect(page.locator(".site-header .who")).to_be_visible()


def test_a_lab_admin_edits_the_resource_and_an_error_keeps_the_input(browser_page, sem, session):
    page = browser_page
    sign_in(page, sem["admin_email"])
    page.goto(f"/lab/resources/{sem['id']}/edit")
    page.locator("#name_zh").fill("场发射扫描电镜（Sigma）")
    page.locator("#min_minutes").fill("600")
    page.locator("#max_minutes").fill("480")
    page.get_by_role("button", name="保存").click()

    error = page.locator("#max_minutes-error")
    expect(error).to_have_text("最长时长不能小于最短时长。")
    expect(page.locator("#max_minutes")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#name_zh")).to_have_value("场发射扫描电镜（Sigma）")
    expect(page.locator("#min_minutes")).to_have_value("600")

    page.locator("#min_minutes").fill("60")
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".flash")).to_have_text("修改已保存。")
    expect(page.locator("#name_zh")).to_have_value("场发射扫描电镜（Sigma）")

    page.goto(f"/catalog/resources/{sem['id']}")
    expect(page.locator("h1")).to_have_text("场发射扫描电镜（Sigma）")
    session.rollback()
