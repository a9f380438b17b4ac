"""Authorization rules of the notifications area.

A notification belongs to its recipient alone: nobody else, not even a
platform admin, reads someone's inbox (others get 404). Mail preferences are
each signed-in user's own. The outbox (every mail the platform wrote) is for
platform admins: its rule ``outbox.view`` lives with the accounts rules.
"""

from __future__ import annotations

from booking.authz import Actor, rule


@rule("notification.list")
def list_notifications(actor: Actor, _obj=None) -> bool:
    return actor.authenticated


@rule("notification.view")
def view_notification(actor: Actor, notification) -> bool:
    return actor.authenticated and notification.user_id == actor.user_id


@rule("notification.mark_read", sees="notification.view")
def mark_notification_read(actor: Actor, notification) -> bool:
    return actor.authenticated and notification.user_id == actor.user_id


@rule("notification.preferences")
def change_preferences(actor: Actor, _obj=None) -> bool:
    return actor.authenticated
