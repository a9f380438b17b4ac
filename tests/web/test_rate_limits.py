"""Rate limits per client address on sign-in and token creation."""

import pytest

from booking import create_app


@pytest.fixture
def limited_client(app):
    limited = create_app(
        {
            "ENV_NAME": "testing",
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "RATELIMIT_ENABLED": True,
            "TOKEN_RATE_LIMIT": "3 per minute",
        }
    )
    return limited.test_client()


def test_token_requests_beyond_the_limit_get_429_in_the_error_shape(limited_client, db):
    body = {"email": "nobody@example.cn", "password": "wrong-password-x"}
    codes = [
        limited_client.post(
            "/api/v1/auth/tokens", json=body, environ_base={"REMOTE_ADDR": "10.1.1.1"}
        )
        for _ in range(4)
    ]
    assert [c.status_code for c in codes] == [401, 401, 401, 429]
    assert codes[-1].get_json()["error"]["code"] == "too_many_requests"
    other = limited_client.post(
        "/api/v1/auth/tokens", json=body, environ_base={"REMOTE_ADDR": "10.1.1.2"}
    )
    assert other.status_code == 401


def test_feed_polls_beyond_the_limit_get_429_per_address(app, db, session):
    limited = create_app(
        {
            "ENV_NAME": "testing",
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "RATELIMIT_ENABLED": True,
            "FEED_RATE_LIMIT": "3 per minute",
        }
    ).test_client()
    unknown = "/ical/" + "x" * 43 + ".ics"

    def poll(path, address):
        return limited.get(path, environ_base={"REMOTE_ADDR": address}).status_code

    assert [poll(unknown, "10.2.2.2") for _ in range(4)] == [404, 404, 404, 429]
    assert [poll("/ical/resources/999999.ics", "10.2.2.3") for _ in range(4)] == [
        404,
        404,
        404,
        429,
    ]
    assert poll(unknown, "10.2.2.4") == 404  # another address has its own allowance


def test_sign_in_and_password_reset_posts_beyond_the_limit_get_429(app, db, session):
    limited = create_app(
        {
            "ENV_NAME": "testing",
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "RATELIMIT_ENABLED": True,
            "SIGN_IN_RATE_LIMIT": "2 per minute",
            "WTF_CSRF_ENABLED": False,
        }
    ).test_client()

    def post(path, data, address="10.3.3.3"):
        return limited.post(path, data=data, environ_base={"REMOTE_ADDR": address}).status_code

    login = {"email": "nobody@example.cn", "password": "wrong-password-x"}
    codes = [post("/login", login) for _ in range(3)]
    assert codes[:2] != [429, 429] and codes[2] == 429
    assert post("/login", login, address="10.3.3.4") != 429
    assert limited.get("/login", environ_base={"REMOTE_ADDR": "10.3.3.3"}).status_code == 200
    forgot = {"email": "nobody@example.cn"}
    codes = [post("/password/forgot", forgot, address="10.3.3.5") for _ in range(3)]
    assert codes[2] == 429 and 429 not in codes[:2]
