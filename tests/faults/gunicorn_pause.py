"""A gunicorn configuration for the fault tests only (``-c`` on the command line).

In each worker it installs one test hook: a request carrying the header
``X-Fault-Pause: <name>`` flushes everything it wrote, writes the worker's
pid to ``$FAULT_PAUSE_DIR/<name>`` and then sleeps just before its commit, so
a test can kill the worker while the request is really half-way: its rows
are on the database server inside an open transaction, its locks held, and no
answer sent. Nothing of this is in the application itself.
"""

from __future__ import annotations

import os
import re
import time

PAUSE_SECONDS = 60


def post_worker_init(worker):
    from flask import has_request_context, request
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    pause_dir = os.environ["FAULT_PAUSE_DIR"]

    def pause_before_commit(session):
        if not has_request_context() or session.in_nested_transaction():
            return  # only the request's own commit, not a savepoint's release
        name = request.headers.get("X-Fault-Pause", "")
        if not re.fullmatch(r"[a-z0-9_]{1,40}", name):
            return
        session.flush()
        path = os.path.join(pause_dir, name)
        with open(path + ".tmp", "w") as handle:
            handle.write(str(os.getpid()))
        os.replace(path + ".tmp", path)
        time.sleep(PAUSE_SECONDS)

    event.listen(Session, "before_commit", pause_before_commit)
