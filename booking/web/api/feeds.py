"""API of the feeds area: make, list and revoke calendar feeds.

The feed itself (``GET /ical/{token}.ics``) is served by the feeds pages
blueprint; here only its management. The answer to ``POST /feeds`` holds the
secret URL, shown once: only the token's hash is stored, so the URL cannot be
shown again (and for the same reason this POST keeps no idempotent replay,
which would store the answer).
"""

from __future__ import annotations

from booking.extensions import db
from booking.schemas import feeds as schemas
from booking.services import feeds
from booking.web.api.blueprint import Blueprint
from booking.web.auth import require_signed_in

blp = Blueprint("feeds_api", __name__, description="Calendar feeds (iCalendar subscriptions)")


def _as_json(row, token: str | None = None) -> dict:
    body = {
        "id": row.id,
        "scope": row.scope.value,
        "organization_id": row.organization_id,
        "label": row.label,
        "active": row.active,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
        "last_used_at": row.last_used_at,
    }
    if token is not None:
        url = feeds.feed_url(token)
        body["url"] = url
        body["webcal_url"] = "webcal://" + url.split("://", 1)[1]
    return body


@blp.route("/feeds", methods=["POST"])
@blp.arguments(schemas.FeedCreateSchema)
@blp.response(201, schemas.FeedCreatedSchema)
def create_feed(data):
    """Make a feed: ``{"scope": "me"|"lab"}`` → its id and secret URL (shown once)."""
    actor = require_signed_in()
    token, row = feeds.create_feed(
        db.session, actor, data["scope"], data.get("organization_id"), data.get("label")
    )
    return _as_json(row, token)


@blp.route("/feeds", methods=["GET"])
@blp.arguments(schemas.FeedListArgs, location="query")
@blp.response(200, schemas.FeedPageSchema)
def list_feeds(args):
    """The caller's feeds (without their URLs, which are not kept)."""
    actor = require_signed_in()
    rows = feeds.list_feeds(db.session, actor, include_revoked=args["include_revoked"])
    page, per_page = args["page"], args["per_page"]
    items = rows[(page - 1) * per_page : page * per_page]
    return {
        "items": [_as_json(r) for r in items],
        "page": page,
        "per_page": per_page,
        "total": len(rows),
    }


@blp.route("/feeds/<int:feed_id>", methods=["GET"])
@blp.response(200, schemas.FeedSchema)
def get_feed(feed_id):
    actor = require_signed_in()
    return _as_json(feeds.get_feed(db.session, actor, feed_id))


@blp.route("/feeds/<int:feed_id>", methods=["DELETE"])
@blp.response(204)
def revoke_feed(feed_id):
    """Revoke a feed: its URL answers 404 from now on."""
    actor = require_signed_in()
    feeds.revoke_feed(db.session, actor, feed_id)
