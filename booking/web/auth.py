"""Who is calling: a bearer token (API) or the signed-in web session.

``load_actor`` runs before every request and leaves the frozen ``Actor`` in
``g.actor``; views read it with ``current_actor()`` and pass it to services.
"""

from __future__ import annotations

import flask_babel
from flask import Flask, current_app, g, request
from flask_login import current_user

from booking.authz import ANONYMOUS, Actor
from booking.domain import clock
from booking.domain.errors import N_, Unauthorized
from booking.extensions import db, login_manager
from booking.services import accounts

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The only API change an anonymous caller may ask: exchanging a password for a token.
ANONYMOUS_API_WRITES = frozenset({"accounts_api.create_token"})


def client_ip() -> str:
    # Behind a proxy, ProxyFix (configured in create_app) has already set this.
    return request.remote_addr or "unknown"


def current_actor() -> Actor:
    return g.get("actor", ANONYMOUS)


def require_signed_in() -> Actor:
    actor = current_actor()
    if not actor.authenticated:
        raise Unauthorized()
    return actor


@login_manager.user_loader
def _load_session_user(session_id: str):
    try:
        user_id, version = (int(part) for part in session_id.split(":"))
    except ValueError:
        return None
    user = accounts.load_user(db.session, user_id)
    if user is None or user.session_version != version:
        return None
    return user


def forget_previous_request() -> None:
    """A request never inherits what an earlier one left on ``g``: tests (and
    anything else that keeps one app context across requests) would otherwise
    see the previous caller's user, token or language."""
    for key in ("_login_user", "api_token", "actor", "csrf_token"):
        g.pop(key, None)
    flask_babel.refresh()


def load_actor() -> None:
    forget_previous_request()
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        found = accounts.actor_for_token(db.session, header[7:].strip(), client_ip())
        if found is None:
            raise Unauthorized(N_("The API token is unknown, expired or revoked."))
        g.actor, g.api_token = found
        accounts.note_token_use(
            db.session, g.api_token, clock.now(), read_only=request.method in SAFE_METHODS
        )
        return
    if request.path.startswith(("/api/", "/ical/", "/static/")):
        # The API authenticates by token only: a session cookie is not
        # honoured there, so no cross-site request can ride on it.
        g.actor = ANONYMOUS.__class__(ip=client_ip())
        if (
            request.path.startswith("/api/")
            and request.method not in SAFE_METHODS
            and request.endpoint not in ANONYMOUS_API_WRITES
        ):
            # Every change through the API needs a token: an anonymous caller
            # is told so (401) before its input is read, not 422 for the input.
            raise Unauthorized()
        return
    if current_user.is_authenticated:
        g.actor = accounts.actor_for(current_user, client_ip())
    else:
        g.actor = ANONYMOUS.__class__(ip=client_ip())


def register_auth(app: Flask) -> None:
    login_manager.login_view = "accounts_pages.login"
    login_manager.session_protection = "basic"
    app.before_request(load_actor)


def throttle_policy() -> accounts.ThrottlePolicy:
    c = current_app.config
    return accounts.ThrottlePolicy(
        window_minutes=c["LOGIN_WINDOW_MINUTES"],
        slow_after=c["LOGIN_SLOW_AFTER"],
        lock_after=c["LOGIN_LOCK_AFTER"],
        lock_minutes=c["LOGIN_LOCK_MINUTES"],
        slow_seconds=c["LOGIN_SLOW_SECONDS"],
    )
