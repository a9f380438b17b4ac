"""Schemas of the vouchers area: vouchers and their ledger, policies,
admissions, CMA certificates, related parties, quotes.

Range rules (a share in (0, 1], validity order, known categories, caps) are
left to the voucher service on purpose: they are the bureau's rules and
answer 422 with ``details.rule``; the schemas only check that a value can be
read.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

import marshmallow as ma

from booking.domain import clock
from booking.domain.errors import N_
from booking.models.vouchers import AdmissionStatus, RelationKind, VoucherStatus
from booking.schemas.common import Instant, Money, PageArgs, Schema

Length = ma.validate.Length
OneOf = ma.validate.OneOf


class Ratio(ma.fields.Field):
    """A share as a string (``"0.50"``); a number is accepted too."""

    default_error_messages = {"invalid": N_("Not a valid share.")}

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault("type", "string")
        kwargs["metadata"].setdefault("example", "0.50")
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        text = f"{Decimal(value).normalize():f}"
        if "." not in text:
            text += ".00"
        elif len(text.split(".")[1]) < 2:
            text += "0"
        return text

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.make_error("invalid")
        try:
            parsed = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except InvalidOperation:
            raise self.make_error("invalid") from None
        try:
            # "1e100" cannot even be quantized (InvalidOperation: a 500 found by fuzzing).
            exact = parsed.is_finite() and parsed == parsed.quantize(Decimal("0.0001"))
        except InvalidOperation:
            exact = False
        if not exact:
            raise self.make_error("invalid")
        return parsed


class LocalDate(ma.fields.Field):
    """A calendar day in platform local time: ``2026-12-31``, or a date and
    time (read in its offset, or as local time without one)."""

    default_error_messages = {"invalid": N_("Not a valid date (YYYY-MM-DD).")}

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault("type", "string")
        kwargs["metadata"].setdefault("format", "date")
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.isoformat()

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        text = value.strip()
        try:
            if len(text) == 10:
                parsed = date.fromisoformat(text)
            else:
                instant = clock.parse_instant(text, clock.platform_tz())
                parsed = instant.astimezone(clock.platform_tz()).date()
        except ValueError:
            raise self.make_error("invalid") from None
        if not clock.MIN_YEAR <= parsed.year <= clock.MAX_YEAR:
            raise self.make_error("invalid")
        return parsed


def _totals(name: str):
    return Money(dump_only=True, attribute=f"totals.{name}")


# --- vouchers -------------------------------------------------------------------


class VoucherIssueSchema(Schema):
    holder_org_id = ma.fields.Integer(required=True, strict=True)
    face_value = Money(required=True, minimum=None)
    valid_from = LocalDate(load_default=None, allow_none=True)
    valid_until = LocalDate(load_default=None, allow_none=True)
    coverage_ratio = Ratio(load_default=None, allow_none=True)
    order_cap = Money(load_default=None, allow_none=True, minimum=None)
    service_categories = ma.fields.List(
        ma.fields.String(validate=Length(max=40)), load_default=None, allow_none=True
    )
    provider_regions = ma.fields.List(
        ma.fields.String(validate=Length(max=6)), load_default=None, allow_none=True
    )
    bureau_id = ma.fields.Integer(strict=True, load_default=None, allow_none=True)


class VoucherSchema(Schema):
    id = ma.fields.Integer()
    number = ma.fields.String()
    bureau_id = ma.fields.Integer()
    issuing_region = ma.fields.String()
    holder_org_id = ma.fields.Integer()
    holder_name = ma.fields.Function(lambda v: v.holder.name)
    policy_id = ma.fields.Integer()
    batch_id = ma.fields.String(allow_none=True)
    status = ma.fields.Function(lambda v: str(v.status))
    face_value = Money()
    balance = _totals("balance")
    held = _totals("held")
    available = _totals("available")
    redeemed = _totals("redeemed")
    expired = _totals("expired")
    revoked = _totals("revoked")
    adjusted = _totals("adjusted")
    valid_from = Instant()
    valid_until = Instant()
    coverage_ratio = Ratio()
    order_cap = Money(allow_none=True)
    formula = ma.fields.Function(lambda v: str(v.formula))
    tier1_limit = Money()
    tier1_rate = Ratio(allow_none=True)
    tier2_rate = Ratio(allow_none=True)
    service_categories = ma.fields.List(ma.fields.String())
    provider_regions = ma.fields.List(ma.fields.String())
    issued_at = Instant()
    expired_at = Instant(allow_none=True)
    revoked_at = Instant(allow_none=True)


class VoucherListArgs(PageArgs):
    holder_org_id = ma.fields.Integer()
    bureau_id = ma.fields.Integer()
    status = ma.fields.String(validate=OneOf([s.value for s in VoucherStatus]))


class BatchUploadSchema(Schema):
    file = ma.fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class BatchFormSchema(Schema):
    bureau_id = ma.fields.Integer(load_default=None)


class BatchResultSchema(Schema):
    batch_id = ma.fields.String()
    total = ma.fields.Integer()
    items = ma.fields.List(ma.fields.Nested(VoucherSchema))


class LedgerEntrySchema(Schema):
    id = ma.fields.Integer()
    voucher_id = ma.fields.Integer()
    kind = ma.fields.Function(lambda e: str(e.kind))
    amount = Money(minimum=None)
    reservation_id = ma.fields.Integer(allow_none=True)
    claim_id = ma.fields.Integer(allow_none=True)
    reason = ma.fields.String(allow_none=True)
    actor_user_id = ma.fields.Integer(allow_none=True)
    at = Instant()


class RevokeSchema(Schema):
    reason = ma.fields.String(required=True, validate=Length(min=1, max=500))


class AdjustmentSchema(Schema):
    amount = Money(required=True, minimum=None)
    reason = ma.fields.String(required=True, validate=Length(min=1, max=500))
    reservation_id = ma.fields.Integer(strict=True, load_default=None, allow_none=True)
    claim_id = ma.fields.Integer(strict=True, load_default=None, allow_none=True)


class QuoteRequestSchema(Schema):
    resource_id = ma.fields.Integer(required=True, strict=True)
    start = Instant(required=True)
    end = Instant(required=True)
    estimated_cost = Money(required=True)
    customer_org_id = ma.fields.Integer(strict=True, load_default=None)
    other_public_subsidy = ma.fields.Boolean(load_default=False)


class QuoteSchema(Schema):
    voucher_id = ma.fields.Integer()
    estimated_cost = Money()
    voucher_share = Money()
    customer_share = Money()


# --- policies --------------------------------------------------------------------


class PolicySettingsSchema(Schema):
    require_sme = ma.fields.Boolean()
    require_tech_sme = ma.fields.Boolean()
    annual_cap_per_enterprise = Money(minimum=None)
    cap_scope = ma.fields.String(validate=OneOf(["enterprise", "actual_controller"]))
    coverage_ratio = Ratio()
    order_cap = Money(allow_none=True, minimum=None)
    formula = ma.fields.String(validate=OneOf(["flat", "tiered"]))
    tier1_limit = Money(minimum=None)
    tier1_rate = Ratio(allow_none=True)
    tier2_rate = Ratio(allow_none=True)
    max_validity_days = ma.fields.Integer(strict=True)
    service_categories = ma.fields.List(ma.fields.String(validate=Length(max=40)))
    provider_regions = ma.fields.List(ma.fields.String(validate=Length(max=6)))
    claimant = ma.fields.String(validate=OneOf(["provider", "enterprise"]))
    claim_window_days = ma.fields.Integer(strict=True)
    audit_levels = ma.fields.List(ma.fields.String(validate=Length(min=1, max=40)))
    notice_days = ma.fields.Integer(strict=True)
    payment_cadence = ma.fields.String(validate=OneOf(["per_claim", "monthly"]))
    admission_notice_days = ma.fields.Integer(strict=True)


class PolicyCreateSchema(PolicySettingsSchema):
    bureau_id = ma.fields.Integer(strict=True, load_default=None)
    effective_from = LocalDate(load_default=None)


class PolicySchema(PolicySettingsSchema):
    id = ma.fields.Integer()
    bureau_id = ma.fields.Integer()
    effective_from = LocalDate()
    cap_scope = ma.fields.Function(lambda p: str(p.cap_scope))
    formula = ma.fields.Function(lambda p: str(p.formula))
    claimant = ma.fields.Function(lambda p: str(p.claimant))
    payment_cadence = ma.fields.Function(lambda p: str(p.payment_cadence))
    created_at = Instant()


class PolicyListArgs(Schema):
    bureau_id = ma.fields.Integer()


# --- providers -------------------------------------------------------------------


class DocumentSchema(Schema):
    name = ma.fields.String(required=True, validate=Length(min=1, max=200))
    reference = ma.fields.String(required=True, validate=Length(min=1, max=500))


class AdmissionApplySchema(Schema):
    provider_id = ma.fields.Integer(required=True, strict=True)
    documents = ma.fields.List(ma.fields.Nested(DocumentSchema), load_default=list)
    service_summary = ma.fields.String(load_default="", validate=Length(max=4000))


class AdmissionDecisionSchema(Schema):
    credit_check_passed = ma.fields.Boolean(load_default=False)
    credit_check_note = ma.fields.String(load_default=None, validate=Length(max=2000))
    notice_days = ma.fields.Integer(
        strict=True, load_default=None, validate=ma.validate.Range(0, 90)
    )
    reason = ma.fields.String(load_default=None, validate=Length(max=2000))


class ReasonSchema(Schema):
    reason = ma.fields.String(required=True, validate=Length(min=1, max=2000))


class AdmissionSchema(Schema):
    id = ma.fields.Integer()
    provider_id = ma.fields.Integer()
    provider_name = ma.fields.Function(lambda a: a.provider.name)
    status = ma.fields.Function(lambda a: str(a.status))
    documents = ma.fields.List(ma.fields.Dict())
    service_summary = ma.fields.String()
    credit_check_passed = ma.fields.Boolean(allow_none=True)
    credit_check_note = ma.fields.String(allow_none=True)
    notice_days = ma.fields.Integer()
    notice_until = Instant(allow_none=True)
    decided_at = Instant(allow_none=True)
    decision_reason = ma.fields.String(allow_none=True)
    suspended_at = Instant(allow_none=True)
    suspension_reason = ma.fields.String(allow_none=True)
    created_at = Instant()


class AdmissionListArgs(Schema):
    provider_id = ma.fields.Integer()
    status = ma.fields.String(validate=OneOf([s.value for s in AdmissionStatus]))


class CmaCreateSchema(Schema):
    number = ma.fields.String(required=True, validate=Length(min=1, max=40))
    scope = ma.fields.String(required=True, validate=Length(min=1, max=4000))
    category_codes = ma.fields.List(ma.fields.String(validate=Length(max=12)), load_default=list)
    issued_on = LocalDate(load_default=None)
    expires_on = LocalDate(required=True)


class CmaSchema(Schema):
    id = ma.fields.Integer()
    provider_id = ma.fields.Integer()
    number = ma.fields.String()
    scope = ma.fields.String()
    category_codes = ma.fields.List(ma.fields.String())
    issued_on = LocalDate(allow_none=True)
    expires_on = LocalDate()
    withdrawn_at = Instant(allow_none=True)
    created_at = Instant()


class RelatedPartyCreateSchema(Schema):
    related_org_id = ma.fields.Integer(required=True, strict=True)
    relation = ma.fields.String(required=True, validate=OneOf([r.value for r in RelationKind]))
    note = ma.fields.String(load_default="", validate=Length(max=2000))


class RelatedPartySchema(Schema):
    id = ma.fields.Integer()
    org_id = ma.fields.Integer()
    related_org_id = ma.fields.Integer()
    relation = ma.fields.Function(lambda d: str(d.relation))
    note = ma.fields.String()
    declared_at = Instant()
    withdrawn_at = Instant(allow_none=True)
