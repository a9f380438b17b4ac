"""Schemas of the feeds area: making, listing and revoking calendar feeds."""

from __future__ import annotations

import marshmallow as ma

from booking.models.feeds import FeedScope
from booking.schemas.common import Instant, PageArgs, Schema, page_schema

OneOf = ma.validate.OneOf
Length = ma.validate.Length


class FeedCreateSchema(Schema):
    scope = ma.fields.String(
        required=True,
        validate=OneOf([s.value for s in FeedScope]),
        metadata={
            "description": "me: my bookings (all of my enterprise's for its admin); "
            "lab: every booking of my lab's resources (lab admins)"
        },
    )
    organization_id = ma.fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        metadata={"description": "needed only when the caller belongs to several"},
    )
    label = ma.fields.String(load_default=None, allow_none=True, validate=Length(max=80))


class FeedSchema(Schema):
    id = ma.fields.Integer()
    scope = ma.fields.String()
    organization_id = ma.fields.Integer()
    label = ma.fields.String(allow_none=True)
    active = ma.fields.Boolean()
    created_at = Instant()
    revoked_at = Instant(allow_none=True)
    last_used_at = Instant(allow_none=True)


class FeedCreatedSchema(FeedSchema):
    url = ma.fields.String(
        metadata={"description": "the feed's address, holding its secret token; shown only now"}
    )
    webcal_url = ma.fields.String(metadata={"description": "the same with webcal://"})


class FeedListArgs(PageArgs):
    include_revoked = ma.fields.Boolean(load_default=False)


FeedPageSchema = page_schema(FeedSchema, "FeedPage")
