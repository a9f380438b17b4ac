"""Schemas of training and qualification: a grant, a revocation, the
register's query and its lines."""

from __future__ import annotations

import marshmallow as ma

from booking.domain.errors import N_
from booking.schemas.common import Instant, PageArgs, Schema

Length = ma.validate.Length
OneOf = ma.validate.OneOf

STATES = ("current", "expired", "revoked")


class TrainingGrantSchema(Schema):
    """The trainee by ``user_id`` or ``email``; exactly one of ``resource_id``
    or ``category_id``; ``provider_id`` names the granting lab where the
    caller administers several (a category grant)."""

    user_id = ma.fields.Integer(strict=True, allow_none=True)
    email = ma.fields.String(validate=Length(max=254), allow_none=True)
    resource_id = ma.fields.Integer(strict=True, allow_none=True)
    category_id = ma.fields.Integer(strict=True, allow_none=True)
    provider_id = ma.fields.Integer(strict=True, allow_none=True)
    valid_until = Instant(allow_none=True, metadata={"description": "open-ended when absent"})

    @ma.validates_schema
    def check_grant(self, data, **kwargs):
        errors: dict[str, list[str]] = {}
        if data.get("user_id") is None and not data.get("email"):
            errors["user_id"] = [N_("Name the trained user (id or email).")]
        if (data.get("resource_id") is None) == (data.get("category_id") is None):
            message = N_("Name either a resource or a category.")
            errors["resource_id"] = [message]
            errors["category_id"] = [message]
        if errors:
            raise ma.ValidationError(errors)


class TrainingRevokeSchema(Schema):
    reason = ma.fields.String(validate=Length(max=2000), allow_none=True)


class TrainingRegisterArgs(PageArgs):
    scope = ma.fields.String(
        load_default="lab",
        validate=OneOf(["lab", "mine"]),
        metadata={"description": "lab: a lab's register (its admins); mine: the caller's own"},
    )
    provider_id = ma.fields.Integer(allow_none=True)
    user_id = ma.fields.Integer(allow_none=True)
    resource_id = ma.fields.Integer(allow_none=True)
    category_id = ma.fields.Integer(allow_none=True)
    q = ma.fields.String(validate=Length(max=100), allow_none=True)
    state = ma.fields.String(validate=OneOf(STATES), allow_none=True)


class TraineeSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    email = ma.fields.String()


class GrantorSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class TrainedResourceSchema(Schema):
    id = ma.fields.Integer()
    name_zh = ma.fields.String()
    name_en = ma.fields.String()


class TrainedCategorySchema(Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    name_zh = ma.fields.String()
    name_en = ma.fields.String()


class TrainingSchema(Schema):
    """A line of the training register."""

    id = ma.fields.Integer(attribute="record.id")
    user = ma.fields.Nested(TraineeSchema)
    resource = ma.fields.Nested(TrainedResourceSchema, allow_none=True)
    category = ma.fields.Nested(TrainedCategorySchema, allow_none=True)
    provider_id = ma.fields.Integer(attribute="record.provider_id", allow_none=True)
    granted_by = ma.fields.Nested(GrantorSchema, allow_none=True)
    granted_at = Instant(attribute="record.granted_at")
    valid_until = Instant(attribute="record.valid_until", allow_none=True)
    revoked_at = Instant(attribute="record.revoked_at", allow_none=True)
    state = ma.fields.String(metadata={"description": "current, expired or revoked"})


class TrainingPageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(TrainingSchema))
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()
    total = ma.fields.Integer()
