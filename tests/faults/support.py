"""What the fault tests share: a real gunicorn serving ``wsgi:app`` on a free
port, HTTP calls that report a dropped connection instead of raising, the
children of a process, and waiting for a condition."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
DROPPED = 599  # the status recorded when the connection closed without an answer


def wait_for(condition, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == pid and state != "Z":
            found.add(int(entry))
    return found


def call(
    port: int,
    method: str,
    path: str,
    body: dict | None = None,
    headers: dict | None = None,
    timeout: float = 60,
) -> tuple[int, dict, dict]:
    """``(status, json body or {}, headers)``; ``DROPPED`` when the server
    closed the connection without answering."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body) if body is not None else None
        sent = {"Accept": "application/json", **(headers or {})}
        if payload is not None:
            sent["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=sent)
        answer = connection.getresponse()
        raw = answer.read()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"raw": raw.decode(errors="replace")[:500]}
        return answer.status, data, dict(answer.getheaders())
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        return DROPPED, {"exception": repr(exc)}, {}
    finally:
        connection.close()


@dataclass
class Gunicorn:
    """``gunicorn wsgi:app`` in its own process group, as deployed (sync
    workers), with the environment the app reads (config/__init__.py)."""

    database_url: str
    log: Path
    workers: int = 2
    config: Path | None = None
    env: dict = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> Gunicorn:
        env = {
            **os.environ,
            "BOOKING_ENV": "production",
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": "fault-tests-secret-key-not-for-anything-else",
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        env.pop("SMTP_URL", None)
        command = [
            GUNICORN,
            "wsgi:app",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            "sync",
            "--timeout",
            "90",
            "--graceful-timeout",
            "5",
        ]
        if self.config:
            command += ["--config", str(self.config)]
        with self.log.open("w") as handle:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self.serving, 60, "gunicorn to serve /healthz", interval=0.25)
        wait_for(lambda: len(self.workers_now()) == self.workers, 30, "all workers to boot")
        return self

    def serving(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited:\n{self.log.read_text()[-4000:]}")
        return call(self.port, "GET", "/healthz", timeout=10)[0] == 200

    def workers_now(self) -> set[int]:
        return children(self.process.pid)

    def stop(self) -> None:
        """SIGTERM to the master (it stops its workers); SIGKILL to the
        process group it leads if it has not stopped within 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text()[-6000:] if self.log.exists() else ""
