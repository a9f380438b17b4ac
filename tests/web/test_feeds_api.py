"""The feeds API (API.md, "Calendar feeds") and the feeds page."""

from __future__ import annotations

import re

from tests.factories.accounts import PASSWORD
from tests.web.test_pages_accounts import csrf_token


def test_make_list_and_revoke_a_feed(client, session, feed_world, auth_headers):
    w = feed_world
    headers = auth_headers(w.alice)
    made = client.post("/api/v1/feeds", json={"scope": "me", "label": "phone"}, headers=headers)
    assert made.status_code == 201
    body = made.get_json()
    assert set(body) >= {"id", "url"}
    assert re.fullmatch(r"http://testserver/ical/[A-Za-z0-9_-]{43,}\.ics", body["url"])
    assert body["webcal_url"].startswith("webcal://testserver/ical/")
    path = body["url"].removeprefix("http://testserver")
    assert client.get(path).status_code == 200

    listed = client.get("/api/v1/feeds", headers=headers).get_json()
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == body["id"]
    assert "url" not in listed["items"][0]  # only the hash is kept
    assert listed["items"][0]["created_at"].endswith("+08:00")

    # Someone else can neither see nor revoke it.
    other = auth_headers(w.bob)
    assert client.delete(f"/api/v1/feeds/{body['id']}", headers=other).status_code == 404
    assert client.get(f"/api/v1/feeds/{body['id']}", headers=other).status_code == 404

    assert client.delete(f"/api/v1/feeds/{body['id']}", headers=headers).status_code == 204
    assert client.get(path).status_code == 404
    assert client.get("/api/v1/feeds", headers=headers).get_json()["total"] == 0
    everything = client.get("/api/v1/feeds?include_revoked=true", headers=headers).get_json()
    assert everything["items"][0]["active"] is False


def test_the_lab_scope_is_for_lab_admins(client, session, feed_world, auth_headers):
    w = feed_world
    refused = client.post("/api/v1/feeds", json={"scope": "lab"}, headers=auth_headers(w.alice))
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "forbidden"
    made = client.post("/api/v1/feeds", json={"scope": "lab"}, headers=auth_headers(w.lab_admin))
    assert made.status_code == 201


def test_bad_requests(client, session, feed_world, auth_headers):
    w = feed_world
    session.commit()
    assert client.post("/api/v1/feeds", json={"scope": "me"}).status_code == 401
    wrong = client.post("/api/v1/feeds", json={"scope": "all"}, headers=auth_headers(w.alice))
    assert wrong.status_code == 422
    assert "scope" in wrong.get_json()["error"]["details"]["fields"]


def test_openapi_documents_the_feeds(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/feeds" in spec["paths"] and "/api/v1/feeds/{feed_id}" in spec["paths"]


def sign_in(client, email):
    token = csrf_token(client.get("/login").data)
    answer = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 302


def test_the_page_makes_a_feed_with_a_copy_button_and_a_qr_code(client, session, feed_world):
    w = feed_world
    session.commit()
    assert client.get("/feeds").status_code == 302  # sign in first
    sign_in(client, "alice@a.example.cn")
    page = client.get("/feeds")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "日历订阅" in text and f"me:{w.enterprise_a.id}" in text
    assert f"lab:{w.lab.id}" not in text

    made = client.post(
        "/feeds",
        data={
            "target": f"me:{w.enterprise_a.id}",
            "label": "手机",
            "csrf_token": csrf_token(page.data),
        },
    )
    assert made.status_code == 200
    assert made.headers["Cache-Control"] == "no-store"
    html = made.get_data(as_text=True)
    url = re.search(r'id="feed-url" type="text" readonly value="([^"]+)"', html).group(1)
    assert "<svg" in html and "data-copy" in html and "webcal://" in html
    assert "<style" not in html and "css/feeds.css" in html  # the CSP allows no inline style
    assert client.get(url.removeprefix("http://testserver")).status_code == 200

    listed = client.get("/feeds").get_data(as_text=True)
    assert "手机" in listed and url not in listed
    feed_id = re.search(r"/feeds/(\d+)/revoke", listed).group(1)
    revoked = client.post(f"/feeds/{feed_id}/revoke", data={"csrf_token": csrf_token(page.data)})
    assert revoked.status_code == 302
    assert client.get(url.removeprefix("http://testserver")).status_code == 404


def test_the_page_refuses_a_target_not_offered(client, session, feed_world):
    w = feed_world
    session.commit()
    sign_in(client, "alice@a.example.cn")
    page = client.get("/feeds")
    refused = client.post(
        "/feeds", data={"target": f"lab:{w.lab.id}", "csrf_token": csrf_token(page.data)}
    )
    assert refused.status_code == 422
