"""Schemas of the notifications area: inbox items and mail preferences."""

from __future__ import annotations

import marshmallow as ma

from booking.models.notifications import NotificationKind
from booking.schemas.common import Instant, PageArgs, Schema

KINDS = [kind.value for kind in NotificationKind]


class NotificationListArgs(PageArgs):
    unread = ma.fields.Boolean(load_default=False, metadata={"description": "only unread items"})


class NotificationSchema(Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"enum": KINDS})
    subject = ma.fields.String(metadata={"description": "in the caller's language"})
    body = ma.fields.String()
    link = ma.fields.String(allow_none=True)
    target_type = ma.fields.String(allow_none=True)
    target_id = ma.fields.Integer(allow_none=True)
    read = ma.fields.Boolean()
    read_at = Instant(allow_none=True)
    created_at = Instant()


class NotificationPageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(NotificationSchema))
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()
    total = ma.fields.Integer()
    unread = ma.fields.Integer(metadata={"description": "the caller's unread items, all pages"})


class NotificationsMarkedSchema(Schema):
    marked = ma.fields.Integer()


class NotificationPreferencesSchema(Schema):
    """Which kinds come by mail too (in-app notifications always come)."""

    email = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.OneOf(KINDS)),
        values=ma.fields.Boolean(),
        required=True,
        metadata={"example": {"reminder": False, "approved": True}},
    )
