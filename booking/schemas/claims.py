"""Schemas of the claims area: claims, their lines and evidence, audit
decisions, payment, and order confirmations (服务确认单)."""

from __future__ import annotations

import marshmallow as ma

from booking.models.claims import ClaimStatus
from booking.schemas.common import Instant, Money, PageArgs, Schema
from booking.schemas.vouchers import LocalDate

Length = ma.validate.Length
OneOf = ma.validate.OneOf


class EvidenceSchema(Schema):
    invoice_number = ma.fields.String(allow_none=True, validate=Length(max=60))
    payment_proof = ma.fields.String(allow_none=True, validate=Length(max=2000))
    usage_record = ma.fields.String(allow_none=True, validate=Length(max=4000))


class LineEvidenceSchema(EvidenceSchema):
    reservation_id = ma.fields.Integer(required=True, strict=True)


class ClaimCreateSchema(Schema):
    period_from = LocalDate(required=True)
    period_to = LocalDate(required=True)
    bureau_id = ma.fields.Integer(strict=True, load_default=None)
    claimant_org_id = ma.fields.Integer(strict=True, load_default=None)
    lines = ma.fields.List(ma.fields.Nested(LineEvidenceSchema), load_default=list)


class DecisionSchema(Schema):
    level_index = ma.fields.Integer()
    level_name = ma.fields.String()
    decision = ma.fields.Function(lambda d: str(d.decision))
    reason = ma.fields.String(allow_none=True)
    user_id = ma.fields.Integer(allow_none=True)
    at = Instant()


class ClaimLineSchema(Schema):
    id = ma.fields.Integer()
    reservation_id = ma.fields.Integer()
    voucher_id = ma.fields.Integer()
    provider_id = ma.fields.Integer()
    provider_region = ma.fields.String()
    customer_org_id = ma.fields.Integer()
    status = ma.fields.Function(lambda line: str(line.status))
    levels_passed = ma.fields.Integer()
    completed_at = Instant()
    actual_start = Instant(allow_none=True)
    actual_end = Instant(allow_none=True)
    actual_units = ma.fields.Integer(allow_none=True)
    final_cost = Money()
    voucher_amount = Money()
    customer_amount = Money()
    invoice_number = ma.fields.String(allow_none=True)
    payment_proof = ma.fields.String(allow_none=True)
    usage_record = ma.fields.String(allow_none=True)
    reason = ma.fields.String(allow_none=True)
    decided_at = Instant(allow_none=True)
    restored_at = Instant(allow_none=True)
    decisions = ma.fields.List(ma.fields.Nested(DecisionSchema))


class SkippedSchema(Schema):
    reservation_id = ma.fields.Integer()
    rule = ma.fields.String()


class ClaimSchema(Schema):
    id = ma.fields.Integer()
    number = ma.fields.String()
    bureau_id = ma.fields.Integer()
    bureau_region = ma.fields.String()
    claimant_org_id = ma.fields.Integer()
    claimant_kind = ma.fields.String()
    period_from = LocalDate()
    period_to = LocalDate()
    status = ma.fields.Function(lambda c: str(c.status))
    audit_levels = ma.fields.List(ma.fields.String())
    notice_days = ma.fields.Integer()
    payment_cadence = ma.fields.String()
    claimed_amount = Money()
    approved_amount = Money(allow_none=True)
    paid_amount = Money(allow_none=True)
    filed_at = Instant(allow_none=True)
    audited_at = Instant(allow_none=True)
    notice_until = Instant(allow_none=True)
    payable_from = Instant(allow_none=True)
    paid_at = Instant(allow_none=True)
    payment_reference = ma.fields.String(allow_none=True)
    created_at = Instant()
    lines = ma.fields.List(ma.fields.Nested(ClaimLineSchema))
    skipped = ma.fields.List(ma.fields.Nested(SkippedSchema))


class ClaimListArgs(PageArgs):
    status = ma.fields.String(validate=OneOf([s.value for s in ClaimStatus]))
    bureau_id = ma.fields.Integer()
    claimant_org_id = ma.fields.Integer()


class ApproveSchema(Schema):
    lines = ma.fields.List(ma.fields.Integer(strict=True), load_default=None)


class RejectSchema(Schema):
    reason = ma.fields.String(required=True, validate=Length(min=1, max=2000))
    lines = ma.fields.List(ma.fields.Integer(strict=True), load_default=None)


class PaySchema(Schema):
    payment_reference = ma.fields.String(load_default=None, validate=Length(max=120))


class ConfirmSchema(Schema):
    side = ma.fields.String(load_default=None, validate=OneOf(["customer", "provider"]))


class ConfirmationSchema(Schema):
    id = ma.fields.Integer()
    number = ma.fields.String()
    reservation_id = ma.fields.Integer()
    content = ma.fields.Dict()
    content_hash = ma.fields.String()
    created_at = Instant()
    customer_confirmed_at = Instant(allow_none=True)
    customer_confirmed_by_id = ma.fields.Integer(allow_none=True)
    provider_confirmed_at = Instant(allow_none=True)
    provider_confirmed_by_id = ma.fields.Integer(allow_none=True)
    confirmed = ma.fields.Boolean()
