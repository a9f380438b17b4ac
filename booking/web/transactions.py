"""One unit of work per request: services flush, the request commits once at
the end if the answer is a success, and rolls back otherwise. A commit that
fails turns into a clean error answer instead of a half-written state."""

from __future__ import annotations

import logging

from flask import Flask, Response
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError, OperationalError

from booking.extensions import db
from booking.web.errors import database_unavailable_response, error_response

log = logging.getLogger(__name__)


def finish_unit_of_work(response: Response) -> Response:
    if response.status_code >= 400 or (response.direct_passthrough and response.status_code >= 400):
        db.session.rollback()
        return response
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        replay = getattr(response, "idempotency_replay", None)
        if replay is not None:
            return replay()
        log.info("commit refused by a constraint: %s", exc.orig)
        body, status, headers = error_response(
            409, "conflict", gettext("This conflicts with the current state.")
        )
        return _as_response(body, status, headers)
    except OperationalError as exc:
        log.warning("commit failed: %s", exc.orig)
        try:
            db.session.rollback()
        except OperationalError:  # the connection is gone: nothing was committed
            log.warning("rollback after a failed commit failed too", exc_info=True)
        return _as_response(*database_unavailable_response())
    return response


def _as_response(body, status, headers) -> Response:
    from flask import make_response

    response = make_response(body, status)
    response.headers.update(headers)
    return response


def register_unit_of_work(app: Flask) -> None:
    app.after_request(finish_unit_of_work)
