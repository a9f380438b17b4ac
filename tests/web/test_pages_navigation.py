"""Each role sees its own menu; the platform admin's start page; the
language switch sets the page's ``lang``."""

from __future__ import annotations

import re

import pytest

from tests.factories.accounts import create_org, create_user
from tests.factories.catalog import create_lab
from tests.factories.vouchers import create_bureau
from tests.web.test_pages_accounts import csrf_token
from tests.web.test_pages_approvals import sign_in


def menu(client) -> set[str]:
    page = client.get("/").get_data(as_text=True)
    nav = re.search(r'<nav aria-label="[^"]*">(.*?)</nav>', page, re.S).group(1)
    return set(re.findall(r'href="([^"]+)"', nav))


@pytest.fixture
def people(session, platform_admin):
    enterprise = create_org(session, "enterprise")
    _lab, lab_admin, _ = create_lab(session)
    bureau = create_bureau(session)
    found = {
        "customer": create_user(session, enterprise),
        "lab": lab_admin,
        "officer": create_user(session, bureau),
        "admin": platform_admin,
    }
    create_org(session, "enterprise", status="pending")
    session.commit()
    return found


@pytest.mark.parametrize(
    ("who", "shown", "hidden"),
    [
        ("customer", {"/bookings", "/vouchers", "/catalog"}, {"/lab", "/bureau", "/admin"}),
        ("lab", {"/lab", "/claims", "/approvals", "/lab/schedule"}, {"/bureau", "/admin"}),
        ("officer", {"/bureau", "/vouchers", "/claims"}, {"/lab", "/admin", "/bookings"}),
        ("admin", {"/admin", "/admin/organizations", "/admin/users", "/outbox"}, {"/lab"}),
    ],
)
def test_each_role_sees_its_own_menu(client, people, who, shown, hidden):
    sign_in(client, people[who])
    links = menu(client)
    assert shown <= links, links
    assert not (hidden & links), links


def test_the_admin_start_page(client, people):
    sign_in(client, people["admin"])
    page = client.get("/admin").get_data(as_text=True)
    assert re.search(r'id="pending-organizations">1<', page)
    for path in ("/admin/organizations", "/admin/users", "/admin/calendar", "/outbox"):
        assert f'href="{path}' in page
    token = csrf_token(page.encode())
    client.post("/logout", data={"csrf_token": token})
    sign_in(client, people["customer"])
    assert client.get("/admin").status_code == 403


def test_the_language_switch_sets_lang(client, people):
    sign_in(client, people["customer"])
    page = client.get("/bookings").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    answer = client.post(
        "/language",
        data={"csrf_token": csrf_token(page.encode()), "locale": "en", "next": "/bookings"},
    )
    assert answer.headers["Location"].endswith("/bookings")
    english = client.get("/bookings").get_data(as_text=True)
    assert '<html lang="en">' in english
    assert "My bookings" in english
