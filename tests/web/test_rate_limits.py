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
