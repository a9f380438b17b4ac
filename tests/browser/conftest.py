"""Browser tests: the test app served on 127.0.0.1 by werkzeug in a thread
(sharing the test database), driven by Debian's chromium through Playwright.

- ``live_server``: the running app (``.url``), one per test session.
- ``browser``: a headless chromium, one per test session.
- ``browser_page``: a fresh context and page per test, with the live
  server's address as its base URL, Chinese locale and Beijing time.

Data a test makes must be committed before the browser asks for it, and the
test's own session must not sit in an open transaction while the browser
works (on SQLite every transaction takes the write lock): commit or roll
back after reading.
"""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace

import pytest
from werkzeug.serving import make_server

from tests.conftest import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def live_server(app):
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}", app=app)
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"needs {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def browser_page(browser, live_server, db):
    context = browser.new_context(
        base_url=live_server.url, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()
