"""Fixtures of the web tests: a live HTTP server for races, and a lab with
its Sigma 300 for the catalog's tests."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from tests.conftest import free_port
from tests.factories.catalog import sigma_input


@pytest.fixture
def live_server(app):
    """werkzeug's threaded server on 127.0.0.1 serving the test app; its port."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def lab(session, categories, make_lab, auth_headers):
    provider, admin, member = make_lab("140105", name="山西大学分析测试中心")
    session.commit()
    return {
        "provider": provider,
        "admin": admin,
        "member": member,
        "headers": auth_headers(admin),
        "member_headers": auth_headers(member),
    }


@pytest.fixture
def sigma(client, lab):
    """The ZEISS Sigma 300, created through the API by the lab's admin."""
    answer = client.post("/api/v1/resources", json=sigma_input(), headers=lab["headers"])
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()
