"""Schemas of the approvals area: the queue, a batch of decisions and its
answer, a resource's named approvers."""

from __future__ import annotations

import marshmallow as ma

from booking.domain.errors import N_
from booking.schemas.common import Instant, Money, PageArgs, Schema

Length = ma.validate.Length

MAX_BATCH = 200


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError(N_("Give a reason."))


class QueueArgs(PageArgs):
    resource_id = ma.fields.Integer(allow_none=True)
    provider_id = ma.fields.Integer(allow_none=True)
    start = Instant(data_key="from", allow_none=True)
    end = Instant(data_key="to", allow_none=True)

    @ma.validates_schema
    def check_span(self, data, **kwargs):
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            raise ma.ValidationError(N_("The end must be after the start."), "to")


class QueueResourceSchema(Schema):
    id = ma.fields.Integer()
    name_zh = ma.fields.String()
    name_en = ma.fields.String()


class QueueOrganizationSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class QueueUserSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    email = ma.fields.String()


class QueueVoucherProblemSchema(Schema):
    code = ma.fields.String()
    rule = ma.fields.String(allow_none=True)
    message = ma.fields.String()


class QueueVoucherSchema(Schema):
    id = ma.fields.Integer()
    share = Money(allow_none=True, metadata={"description": "the voucher's share of the estimate"})
    customer_share = Money(allow_none=True)
    problem = ma.fields.Nested(
        QueueVoucherProblemSchema,
        allow_none=True,
        metadata={"description": "why the voucher cannot pay as things stand"},
    )


class QueueItemSchema(Schema):
    """A requested booking as the lab sees it in its queue."""

    id = ma.fields.Integer(attribute="reservation.id")
    status = ma.fields.Function(lambda item: item.reservation.status.value)
    resource = ma.fields.Nested(QueueResourceSchema)
    customer_org = ma.fields.Nested(QueueOrganizationSchema)
    user = ma.fields.Nested(QueueUserSchema)
    start = Instant(attribute="reservation.start_at")
    end = Instant(attribute="reservation.end_at")
    units = ma.fields.Integer(attribute="reservation.units")
    samples = ma.fields.Integer(attribute="reservation.samples", allow_none=True)
    purpose = ma.fields.String(attribute="reservation.purpose")
    customer_class = ma.fields.String(attribute="reservation.customer_class")
    estimated_cost = Money(attribute="reservation.estimated_cost")
    with_operator = ma.fields.Boolean(attribute="reservation.with_operator")
    voucher_id = ma.fields.Integer(attribute="reservation.voucher_id", allow_none=True)
    voucher = ma.fields.Nested(QueueVoucherSchema, allow_none=True)
    created_at = Instant(attribute="reservation.created_at")
    decide_by = Instant(metadata={"description": "undecided after this, the request expires"})


class QueuePageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(QueueItemSchema))
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()
    total = ma.fields.Integer()


class DecisionRejectionSchema(Schema):
    id = ma.fields.Integer(required=True, strict=True)
    reason = ma.fields.String(required=True, validate=[Length(min=1, max=2000), _not_blank])


class DecideSchema(Schema):
    """``{"approve": [ids], "reject": [{"id", "reason"}], "atomic"?: false}``."""

    approve = ma.fields.List(ma.fields.Integer(strict=True), load_default=list)
    reject = ma.fields.List(ma.fields.Nested(DecisionRejectionSchema), load_default=list)
    atomic = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "all or nothing: decide none if any one is refused"},
    )

    @ma.validates_schema
    def check_batch(self, data, **kwargs):
        ids = list(data.get("approve") or []) + [r["id"] for r in data.get("reject") or []]
        if not ids:
            raise ma.ValidationError(N_("Choose at least one request."), "approve")
        if len(ids) > MAX_BATCH:
            raise ma.ValidationError(N_("At most 200 requests at once."), "approve")
        if len(set(ids)) != len(ids):
            raise ma.ValidationError(N_("A request is listed twice."), "approve")


class DecisionOutcomeErrorSchema(Schema):
    code = ma.fields.String()
    message = ma.fields.String()
    details = ma.fields.Dict()


class DecisionOutcomeSchema(Schema):
    id = ma.fields.Integer()
    action = ma.fields.String(metadata={"description": "approve or reject"})
    outcome = ma.fields.String(metadata={"description": "approved, rejected or refused"})
    status = ma.fields.String(allow_none=True)
    error = ma.fields.Nested(DecisionOutcomeErrorSchema, allow_none=True)


class DecideResultSchema(Schema):
    results = ma.fields.List(ma.fields.Nested(DecisionOutcomeSchema))
    approved = ma.fields.Integer()
    rejected = ma.fields.Integer()
    refused = ma.fields.Integer()


class ApproverInSchema(Schema):
    user_id = ma.fields.Integer(strict=True, allow_none=True)
    email = ma.fields.String(validate=Length(max=254), allow_none=True)

    @ma.validates_schema
    def check_person(self, data, **kwargs):
        if data.get("user_id") is None and not data.get("email"):
            raise ma.ValidationError(N_("Name the approver (id or email)."), "user_id")


class ApproverSchema(Schema):
    resource_id = ma.fields.Integer()
    user_id = ma.fields.Integer()
    name = ma.fields.String()
    email = ma.fields.String()
    role = ma.fields.String()


class ApproverListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(ApproverSchema))
