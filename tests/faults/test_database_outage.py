"""The database going away for some seconds gives clean 503 answers, and the
service recovers by itself.

PostgreSQL itself is never stopped (others use it): a small TCP proxy in this
test stands between the app and PostgreSQL. The app (``create_app`` with
production settings, ``DATABASE_URL`` pointing at the proxy) is served by
werkzeug's threaded server in a thread. Cutting the proxy closes every open
connection and refuses new ones, as a database restart or a network cut
does; restoring it lets connections through again. Nothing is restarted in
between: the pool's pre-ping throws the dead connections away.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from datetime import datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest
from flask import has_request_context, request
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from booking import create_app
from booking.extensions import db
from tests.conftest import free_port
from tests.factories.accounts import create_org, create_user, token_headers
from tests.factories.catalog import create_resource
from tests.faults.support import call, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SH = ZoneInfo("Asia/Shanghai")
OUTAGE_SECONDS = 4


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 (threads and sockets) that can be cut: while
    cut, open connections are closed and new ones closed as they arrive."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.stopping = False
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.accepted = 0
        self.refused = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set() or self.stopping:
                self.refused += 1
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            self.accepted += 1
            with self.lock:
                self.sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                _close(end)
            with self.lock:
                self.sockets.discard(source)
                self.sockets.discard(sink)

    def cut(self) -> None:
        self.up.clear()
        with self.lock:
            open_now = list(self.sockets)
            self.sockets.clear()
        for end in open_now:
            _close(end)

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.stopping = True
        self.cut()
        _close(self.listener)
        self.thread.join(timeout=5)


def _close(end: socket.socket) -> None:
    with contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)
    end.close()


@pytest.fixture
def proxied_server(app, requires_postgres, tmp_path):
    """``(port, proxy, app)``: the app served on a free port, its database reached
    through the proxy."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
    served = create_app(
        {
            "ENV_NAME": "production",
            "SECRET_KEY": "database-outage-test-secret-key",
            "DATABASE_URL": url.set(host="127.0.0.1", port=proxy.port).render_as_string(
                hide_password=False
            ),
        }
    )
    served.instance_path = str(tmp_path)
    port = free_port()
    server = make_server("127.0.0.1", port, served, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port, proxy, served
    finally:
        server.shutdown()
        thread.join(timeout=10)
        proxy.close()
        with served.app_context():
            db.engine.dispose()


def signed_in_cookie(served, user) -> str:
    """A ``Cookie`` header of a browser signed in as ``user``, made with the
    served app's own session serializer."""
    client = served.test_client()
    with client.session_transaction() as browser_session:
        browser_session["_user_id"] = f"{user.id}:{user.session_version}"
        browser_session["_fresh"] = True
    cookie = client.get_cookie(served.config["SESSION_COOKIE_NAME"])
    return f"{cookie.key}={cookie.value}"


def assert_unavailable(answer, language: str = "zh") -> None:
    status, body, headers = answer
    assert status == 503, answer
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == "unavailable"
    assert body["error"]["details"] == {}
    expected = (
        "The service is briefly unavailable. Please try again."
        if language == "en"
        else "服务暂时不可用，请稍后重试。"
    )
    assert body["error"]["message"] == expected
    assert int(headers["Retry-After"]) > 0


def test_a_database_outage_gives_clean_503s_and_the_service_recovers_by_itself(
    session, proxied_server
):
    port, proxy, served = proxied_server
    resource = create_resource(session, hours=[], closed_on_holidays=False)
    customer = create_user(session, create_org(session, "enterprise"))
    session.commit()
    headers = token_headers(session, customer)
    browser = {"Accept": "text/html", "Cookie": signed_in_cookie(served, customer)}
    english = {**headers, "Accept-Language": "en"}
    session.rollback()
    day = datetime.now(SH).date() + timedelta(days=3)

    def book(hour: int):
        start = datetime.combine(day, dtime(hour), tzinfo=SH)
        body = {
            "resource_id": resource.id,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "purpose": "outage",
        }
        return call(port, "POST", "/api/v1/reservations", body, headers, timeout=30)

    # Before: all well, and the pool holds live connections through the proxy.
    assert call(port, "GET", "/healthz")[0] == 200
    assert call(port, "GET", f"/api/v1/resources/{resource.id}")[0] == 200
    assert book(9)[0] == 201
    assert proxy.accepted >= 1

    proxy.cut()
    cut_at = time.monotonic()
    probes = 0
    slowest = 0.0
    while time.monotonic() - cut_at < OUTAGE_SECONDS:
        for method, path, sent in (
            ("GET", "/healthz", {}),
            ("GET", f"/api/v1/resources/{resource.id}", {}),
            ("GET", "/api/v1/me", headers),
        ):
            began = time.monotonic()
            assert_unavailable(call(port, method, path, None, sent, timeout=30))
            slowest = max(slowest, time.monotonic() - began)
            probes += 1
        assert_unavailable(book(11))
        assert_unavailable(call(port, "GET", "/api/v1/me", None, english), "en")
        # A browser gets the error page, with the same status and header.
        status, page, page_headers = call(
            port, "GET", "/catalog", None, {"Accept": "text/html"}, timeout=30
        )
        assert status == 503 and int(page_headers["Retry-After"]) > 0, page
        status, page, page_headers = call(port, "GET", "/catalog", None, browser, timeout=30)
        assert status == 503 and int(page_headers["Retry-After"]) > 0, page
        probes += 4
    assert proxy.refused >= 1, "the app did try to reconnect while the database was away"
    print(f"{probes} requests during a {OUTAGE_SECONDS} s outage, all 503; slowest {slowest:.2f} s")
    assert slowest < 5

    proxy.restore()
    restored_at = time.monotonic()
    wait_for(lambda: call(port, "GET", "/healthz")[0] == 200, 15, "the service to recover")
    print(f"recovered {time.monotonic() - restored_at:.2f} s after the database came back")
    assert call(port, "GET", f"/api/v1/resources/{resource.id}")[0] == 200
    assert call(port, "GET", "/api/v1/me", None, headers)[0] == 200
    assert call(port, "GET", "/catalog", None, {"Accept": "text/html"})[0] == 200
    status, page, _ = call(port, "GET", "/notifications", None, browser)
    assert status == 200, page
    again = book(11)
    assert again[0] == 201, again

    # The database going away in the middle of a booking, between its writes
    # and its commit: a clean 503, and the half-made booking is not kept.
    def cut_before_commit(flushing):
        if (
            has_request_context()
            and request.headers.get("X-Fault-Cut")
            and not flushing.in_nested_transaction()  # the request's own commit
        ):
            flushing.flush()
            proxy.cut()

    event.listen(Session, "before_commit", cut_before_commit)
    try:
        start = datetime.combine(day, dtime(14), tzinfo=SH)
        body = {
            "resource_id": resource.id,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "purpose": "outage",
        }
        cut = call(port, "POST", "/api/v1/reservations", body, {**headers, "X-Fault-Cut": "1"})
    finally:
        event.remove(Session, "before_commit", cut_before_commit)
        proxy.restore()
    assert_unavailable(cut)
    wait_for(lambda: call(port, "GET", "/healthz")[0] == 200, 15, "the service to recover")

    # The bookings refused during the outage wrote nothing.
    purposes = session.execute(
        text("SELECT start_at FROM reservations WHERE purpose = 'outage' ORDER BY start_at")
    ).all()
    session.rollback()
    assert len(purposes) == 2, purposes
