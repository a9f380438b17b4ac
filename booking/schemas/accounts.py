"""Schemas of the accounts area: tokens, organisations, users."""

from __future__ import annotations

import marshmallow as ma

from booking.models.accounts import OrgKind, Role, SizeClass
from booking.schemas.common import Instant, Schema

OneOf = ma.validate.OneOf
Length = ma.validate.Length


class TokenRequestSchema(Schema):
    email = ma.fields.String(required=True, validate=Length(min=1, max=254))
    password = ma.fields.String(required=True, validate=Length(min=1, max=512), load_only=True)


class TokenSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    token = ma.fields.String(dump_only=True)
    expires_at = Instant(dump_only=True)


class OrganizationCreateSchema(Schema):
    kind = ma.fields.String(
        required=True, validate=OneOf([k.value for k in OrgKind if k != OrgKind.PLATFORM])
    )
    name = ma.fields.String(required=True, validate=Length(min=2, max=200))
    name_en = ma.fields.String(validate=Length(max=200), allow_none=True)
    uscc = ma.fields.String(required=True, validate=Length(min=18, max=20))
    region = ma.fields.String(required=True, validate=Length(equal=6))
    size_class = ma.fields.String(validate=OneOf([s.value for s in SizeClass]), allow_none=True)
    tech_sme_number = ma.fields.String(validate=Length(max=40), allow_none=True)
    tech_sme_year = ma.fields.Integer(validate=ma.validate.Range(2017, 2100), allow_none=True)
    controller_group = ma.fields.String(validate=Length(max=80), allow_none=True)
    voucher_provider = ma.fields.Boolean(load_default=False)


class OrganizationSchema(Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String()
    name = ma.fields.String()
    name_en = ma.fields.String(allow_none=True)
    uscc = ma.fields.String()
    region = ma.fields.String()
    status = ma.fields.String()
    size_class = ma.fields.String(allow_none=True)
    tech_sme_number = ma.fields.String(allow_none=True)
    tech_sme_year = ma.fields.Integer(allow_none=True)
    voucher_provider = ma.fields.Boolean()
    created_at = Instant()


class MembershipInSchema(Schema):
    organization_id = ma.fields.Integer(required=True, strict=True)
    role = ma.fields.String(required=True, validate=OneOf([r.value for r in Role]))


class UserCreateSchema(Schema):
    email = ma.fields.Email(required=True, validate=Length(max=254))
    password = ma.fields.String(required=True, load_only=True, validate=Length(max=512))
    name = ma.fields.String(required=True, validate=Length(min=1, max=120))
    phone = ma.fields.String(validate=Length(max=40), allow_none=True)
    locale = ma.fields.String(validate=OneOf(["zh_CN", "en"]), load_default="zh_CN")
    memberships = ma.fields.List(ma.fields.Nested(MembershipInSchema), load_default=list)


class MembershipSchema(Schema):
    organization_id = ma.fields.Integer()
    organization_name = ma.fields.Function(lambda m: m.organization.name)
    organization_kind = ma.fields.Function(lambda m: str(m.organization.kind))
    role = ma.fields.String()


class UserSchema(Schema):
    id = ma.fields.Integer()
    email = ma.fields.String()
    name = ma.fields.String()
    locale = ma.fields.String()
    platform_admin = ma.fields.Boolean()
    memberships = ma.fields.List(ma.fields.Nested(MembershipSchema))
    created_at = Instant()
