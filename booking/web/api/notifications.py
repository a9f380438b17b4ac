"""API of the notifications area: the caller's inbox and mail preferences.

- ``GET /api/v1/notifications?unread=&page=&per_page=``: the caller's inbox,
  newest first, with the unread count;
- ``POST /api/v1/notifications/{id}/read``: mark one read (404 for anyone else's);
- ``POST /api/v1/notifications/read-all``: mark all read;
- ``GET /api/v1/notifications/preferences``: ``{"email": {kind: bool}}``;
- ``PUT /api/v1/notifications/preferences``: change some kinds; the others stay.

Subjects and bodies come in the caller's language (``Accept-Language``).
"""

from __future__ import annotations

from flask_babel import get_locale

from booking.extensions import db
from booking.models.notifications import Notification
from booking.schemas import notifications as schemas
from booking.services import notifications
from booking.web.api.blueprint import Blueprint
from booking.web.auth import require_signed_in

blp = Blueprint("notifications_api", __name__, description="Notifications: inbox and preferences")


def caller_locale() -> str:
    return "en" if str(get_locale() or "zh_CN").startswith("en") else "zh_CN"


def as_json(notification: Notification, locale: str) -> dict:
    subject, body = notifications.render_notification(notification, locale)
    return {
        "id": notification.id,
        "kind": notification.kind.value,
        "subject": subject,
        "body": body,
        "link": notification.link,
        "target_type": notification.target_type,
        "target_id": notification.target_id,
        "read": notification.read_at is not None,
        "read_at": notification.read_at,
        "created_at": notification.created_at,
    }


def preferences_json(preferences) -> dict:
    return {"email": {kind.value: wanted for kind, wanted in preferences.items()}}


@blp.route("/notifications", methods=["GET"])
@blp.arguments(schemas.NotificationListArgs, location="query")
@blp.response(200, schemas.NotificationPageSchema)
def list_notifications(args):
    """The caller's notifications, newest first."""
    actor = require_signed_in()
    items, total = notifications.list_notifications(
        db.session,
        actor,
        unread_only=args["unread"],
        page=args["page"],
        per_page=args["per_page"],
    )
    locale = caller_locale()
    return {
        "items": [as_json(n, locale) for n in items],
        "page": args["page"],
        "per_page": args["per_page"],
        "total": total,
        "unread": notifications.unread_count(db.session, actor.user_id),
    }


@blp.route("/notifications/<int:notification_id>/read", methods=["POST"])
@blp.response(200, schemas.NotificationSchema)
def mark_read(notification_id):
    """Mark one notification read (marking it again changes nothing)."""
    actor = require_signed_in()
    notification = notifications.mark_read(db.session, actor, notification_id)
    return as_json(notification, caller_locale())


@blp.route("/notifications/read-all", methods=["POST"])
@blp.response(200, schemas.NotificationsMarkedSchema)
def mark_all_read():
    """Mark all the caller's notifications read."""
    actor = require_signed_in()
    return {"marked": notifications.mark_all_read(db.session, actor)}


@blp.route("/notifications/preferences", methods=["GET"])
@blp.response(200, schemas.NotificationPreferencesSchema)
def get_preferences():
    """Which kinds of notification also come by mail."""
    actor = require_signed_in()
    return preferences_json(notifications.get_preferences(db.session, actor))


@blp.route("/notifications/preferences", methods=["PUT"])
@blp.arguments(schemas.NotificationPreferencesSchema)
@blp.response(200, schemas.NotificationPreferencesSchema)
def put_preferences(data):
    """Choose which kinds come by mail; kinds left out stay as they were."""
    actor = require_signed_in()
    return preferences_json(notifications.set_preferences(db.session, actor, data["email"]))
