"""Sign-in page: CSRF, errors beside the field, session renewal, language switch."""

import re

from tests.factories.accounts import PASSWORD


def csrf_token(page: bytes) -> str:
    match = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        rb'name="csrf_token" value="([^"]+)"', page
    )
    assert match, "page has no CSRF token"
    return match.group(1).decode()


def test_sign_in_needs_the_csrf_token(client, make_user, session):
    make_user(email="web@example.cn")
    session.commit()
    refused = client.post("/login", data={"email": "web@example.cn", "password": PASSWORD})
    assert refused.status_code == 400
    assert "表单已过期" in refused.get_data(as_text=True)


def test_sign_in_and_out(client, make_user, session):
    make_user(email="web@example.cn", name="李工")
    session.commit()
    token = csrf_token(client.get("/login").data)
    answer = client.post(
        "/login", data={"email": "web@example.cn", "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 302
    home = client.get("/")
    assert "李工" in home.get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(home.data)})
    assert "李工" not in client.get("/").get_data(as_text=True)


def test_wrong_password_keeps_the_email_and_says_why_beside_the_field(client, make_user, session):
    make_user(email="web@example.cn")
    session.commit()
    token = csrf_token(client.get("/login").data)
    answer = client.post(
        "/login", data={"email": "web@example.cn", "password": "wrong-one-x", "csrf_token": token}
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 401
    assert 'value="web@example.cn"' in page
    assert "邮箱或密码错误" in page
    assert 'role="alert"' in page


def test_password_change_ends_other_sessions(client, app, make_user, session):
    from booking.services import accounts

    user = make_user(email="web@example.cn")
    session.commit()
    token = csrf_token(client.get("/login").data)
    client.post(
        "/login", data={"email": "web@example.cn", "password": PASSWORD, "csrf_token": token}
    )
    assert "退出" in client.get("/").get_data(as_text=True)
    accounts.set_password(session, None, user, "another-long-password")
    session.commit()
    assert "退出" not in client.get("/").get_data(as_text=True)


def test_language_switch_changes_the_page_language(client):
    page = client.get("/")
    assert '<html lang="zh-CN">' in page.get_data(as_text=True)
    client.post(
        "/language", data={"locale": "en", "csrf_token": csrf_token(page.data), "next": "/"}
    )
    english = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in english
    assert "Jinchuanggu Open Sharing Platform" in english


def test_unknown_page_is_a_friendly_404_in_html(client):
    answer = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert answer.status_code == 404
    assert "未找到" in answer.get_data(as_text=True)


def test_pages_carry_security_headers_without_unsafe_inline(client):
    headers = client.get("/").headers
    csp = headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_session_cookie_is_httponly_and_samesite(client, app):
    token = csrf_token(client.get("/login").data)
    answer = client.post(
        "/login", data={"email": "x@example.cn", "password": "y", "csrf_token": token}
    )
    cookie = answer.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_signing_in_starts_a_new_session(client, make_user, session):
    """Whatever an attacker planted in a visitor's session before sign-in
    (and its CSRF secret) is gone once the visitor signs in."""
    make_user(email="web@example.cn")
    session.commit()
    token = csrf_token(client.get("/login").data)
    with client.session_transaction() as planted:
        planted["planted"] = "by someone else"
        before = dict(planted)
    answer = client.post(
        "/login", data={"email": "web@example.cn", "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 302
    with client.session_transaction() as after:
        assert "planted" not in after
        assert after.get("_user_id")
        assert after.get("csrf_token") != before.get("csrf_token")


def test_hsts_is_sent_behind_tls_only(client):
    plain = client.get("/")
    assert "Strict-Transport-Security" not in plain.headers
    secure = client.get("/", base_url="https://booking.example.cn")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    for path in ("/catalog", "/login", "/api/v1/categories"):
        answer = client.get(path, base_url="https://booking.example.cn")
        assert "max-age=" in answer.headers["Strict-Transport-Security"], path
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
