"""One error surface for the whole app.

Domain errors and HTTP errors become API.md's JSON error
(``{"error": {"code", "message", "details"}}``) for API clients, or an HTML
page for browsers, in the caller's language. A 500 rolls the session back and
is logged; its answer reveals nothing of the cause.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, jsonify, render_template, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from booking.domain.errors import N_, DomainError
from booking.extensions import db, login_manager

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: ("bad_request", N_("The request could not be read.")),
    401: ("unauthorized", N_("Please sign in.")),
    403: ("forbidden", N_("You are not allowed to do this.")),
    404: ("not_found", N_("Not found.")),
    405: ("method_not_allowed", N_("This method is not allowed here.")),
    406: ("not_acceptable", N_("No acceptable representation.")),
    409: ("conflict", N_("This conflicts with the current state.")),
    413: ("too_large", N_("The upload is too large.")),
    415: ("unsupported_media_type", N_("Unsupported media type.")),
    422: ("validation_failed", N_("Some fields are not valid.")),
    429: ("too_many_requests", N_("Too many attempts. Please wait and try again.")),
    500: ("internal_error", N_("An internal error occurred. It has been logged.")),
    503: ("unavailable", N_("The service is briefly unavailable. Please try again.")),
}


def wants_json() -> bool:
    if request.path.startswith(("/api/", "/ical/")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def translate(value: Any) -> Any:
    """Translate message ids inside details (field error lists and the like)."""
    if isinstance(value, str):
        return gettext(value) if value else value
    if isinstance(value, list):
        return [translate(v) for v in value]
    if isinstance(value, dict):
        return {k: translate(v) for k, v in value.items()}
    return value


def error_response(
    status: int, code: str, message: str, details: dict | None = None, headers: dict | None = None
):
    details = details or {}
    if wants_json():
        body = {"error": {"code": code, "message": message, "details": details}}
        response = jsonify(body)
    else:
        response = render_template(
            "errors/error.html", status=status, code=code, message=message, details=details
        )
    return response, status, headers or {}


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # pragma: no cover - the connection itself is gone
        log.exception("rollback failed")


def handle_domain_error(error: DomainError):
    _rollback()
    message = gettext(error.message, **error.params) if error.params else gettext(error.message)
    details = dict(error.details)
    if "fields" in details:
        details["fields"] = translate(details["fields"])
    return error_response(error.status, error.code, message, details)


def handle_http_exception(error: HTTPException):
    status = error.code or 500
    if status >= 400:
        _rollback()
    code, message_id = HTTP_CODES.get(status, ("error", error.description or ""))
    details: dict = {}
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if messages:
        fields: dict[str, Any] = {}
        for location, errs in messages.items():
            if isinstance(errs, dict):
                fields.update(errs)
            else:
                fields[location] = errs
        if status == 400:
            message_id = N_("The request body is not valid JSON.")
        else:
            details["fields"] = translate(fields)
    headers = dict(data.get("headers") or {})
    if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    return error_response(status, code, gettext(message_id), details, headers)


def handle_csrf_error(error: CSRFError):
    _rollback()
    return error_response(
        400, "csrf_failed", gettext("The form has expired. Please reload the page and try again.")
    )


#: Seconds a client is asked to wait when the database is unreachable.
RETRY_AFTER_SECONDS = 5


def database_unavailable_response():
    """The 503 answer while the database is unreachable. Building it must not
    reach for the database again: the language and the page header would
    load the signed-in user (and a rolled-back session would reload their
    memberships), so this answer is made as for a signed-out caller."""
    g._login_user = login_manager.anonymous_user()
    code, message_id = HTTP_CODES[503]
    return error_response(
        503, code, gettext(message_id), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


def handle_database_unavailable(error: DBAPIError):
    _rollback()
    if isinstance(error, OperationalError) or error.connection_invalidated:
        log.warning("database unavailable: %s", error.orig)
        return database_unavailable_response()
    if isinstance(error, DataError):
        return handle_value_out_of_range(error)
    return handle_unexpected(error)


def handle_value_out_of_range(error: Exception):
    """A value the database cannot hold: a number beyond its integer range
    (PostgreSQL's NumericValueOutOfRange, SQLite's OverflowError), found by
    fuzzing the API with huge ids in bodies. The input is at fault: 422."""
    _rollback()
    log.info("value out of range on %s %s: %s", request.method, request.path, error)
    code, message_id = HTTP_CODES[422]
    return error_response(422, code, gettext(message_id))


def handle_unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    _rollback()
    log.exception("unhandled error on %s %s", request.method, request.path)
    code, message_id = HTTP_CODES[500]
    return error_response(500, code, gettext(message_id))


def register_errorhandlers(app: Flask) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DBAPIError, handle_database_unavailable)
    app.register_error_handler(OverflowError, handle_value_out_of_range)
    app.register_error_handler(Exception, handle_unexpected)
