"""API of the accounts area: tokens, organisations, users, me."""

from __future__ import annotations

import time

from flask import current_app, g

from booking.domain.errors import N_, NotFound, TooManyRequests, Unauthorized
from booking.extensions import db, limiter
from booking.models.accounts import User
from booking.schemas import accounts as schemas
from booking.services import accounts
from booking.web.api.blueprint import Blueprint
from booking.web.api.idempotency import idempotent
from booking.web.auth import client_ip, current_actor, require_signed_in, throttle_policy

blp = Blueprint("accounts_api", __name__, description="Accounts: tokens, organisations, users")


@blp.route("/auth/tokens", methods=["POST"])
@limiter.limit(lambda: current_app.config["TOKEN_RATE_LIMIT"])
@blp.arguments(schemas.TokenRequestSchema)
@blp.response(201, schemas.TokenSchema)
def create_token(data):
    """Exchange an email and password for a bearer token."""
    result = accounts.sign_in(
        db.session, data["email"], data["password"], client_ip(), throttle_policy()
    )
    if result.user is None:
        db.session.commit()  # the failed attempt must count even though we refuse
        if result.locked_until is not None:
            raise TooManyRequests(
                N_("Too many failed sign-ins. Try again after %(until)s."),
                until=result.locked_until.isoformat(timespec="minutes"),
                details={"retry_after": result.locked_until.isoformat()},
            )
        if result.delay_seconds:
            time.sleep(result.delay_seconds)
        raise Unauthorized(N_("The email or password is wrong."))
    token, row = accounts.issue_token(
        db.session, result.user, current_app.config["API_TOKEN_DAYS"], label="api"
    )
    return {"id": row.id, "token": token, "expires_at": row.expires_at}


@blp.route("/auth/tokens/current", methods=["DELETE"])
@blp.response(204)
def revoke_current_token():
    """Revoke the token this request is made with."""
    actor = require_signed_in()
    use = g.get("api_token")
    if use is None:
        raise NotFound()
    accounts.revoke_token(db.session, actor, accounts.token_in_use(db.session, use))


@blp.route("/organizations", methods=["POST"])
@idempotent
@blp.arguments(schemas.OrganizationCreateSchema)
@blp.response(201, schemas.OrganizationSchema)
def create_organization(data):
    """Register an organisation (platform admin)."""
    return accounts.create_organization(db.session, current_actor(), data)


@blp.route("/organizations/<int:org_id>", methods=["GET"])
@blp.response(200, schemas.OrganizationSchema)
def get_organization(org_id):
    return accounts.get_organization(db.session, current_actor(), org_id)


@blp.route("/users", methods=["POST"])
@idempotent
@blp.arguments(schemas.UserCreateSchema)
@blp.response(201, schemas.UserSchema)
def create_user(data):
    """Create a user with memberships (platform admin)."""
    return accounts.create_user(db.session, current_actor(), data)


@blp.route("/me", methods=["GET"])
@blp.response(200, schemas.UserSchema)
def me():
    """The caller, with memberships."""
    actor = require_signed_in()
    user = db.session.get(User, actor.user_id)
    return user
