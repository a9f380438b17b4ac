"""API of the claims area (API.md "Vouchers and settlement"): claims with
their lines and evidence, the bureau's audit and payment, and the order
confirmations (服务确认单) both sides confirm."""

from __future__ import annotations

from booking.extensions import db
from booking.schemas import claims as schemas
from booking.schemas.common import page_schema
from booking.services import claims as service
from booking.web.api.blueprint import Blueprint
from booking.web.api.idempotency import idempotent
from booking.web.auth import current_actor

blp = Blueprint("claims_api", __name__, description="Voucher redemption claims and confirmations")

ClaimPage = page_schema(schemas.ClaimSchema, "ClaimPage")


@blp.route("/claims", methods=["POST"])
@idempotent
@blp.arguments(schemas.ClaimCreateSchema)
@blp.response(201, schemas.ClaimSchema)
def create_claim(data):
    """A draft claim over the claimant's completed, unclaimed voucher-paid
    bookings of the period, for one issuing bureau (``bureau_id`` where the
    bookings route to several). Evidence may be given per line in ``lines``."""
    return service.create_claim(db.session, current_actor(), data)


@blp.route("/claims", methods=["GET"])
@blp.arguments(schemas.ClaimListArgs, location="query")
@blp.response(200, ClaimPage)
def list_claims(args):
    items, total = service.list_claims(
        db.session,
        current_actor(),
        status=args.get("status"),
        bureau_id=args.get("bureau_id"),
        claimant_org_id=args.get("claimant_org_id"),
        page=args["page"],
        per_page=args["per_page"],
    )
    return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


@blp.route("/claims/<int:claim_id>", methods=["GET"])
@blp.response(200, schemas.ClaimSchema)
def get_claim(claim_id):
    return service.get_claim(db.session, current_actor(), claim_id)


@blp.route("/claims/<int:claim_id>/lines/<int:line_id>", methods=["PATCH"])
@blp.arguments(schemas.EvidenceSchema)
@blp.response(200, schemas.ClaimLineSchema)
def set_evidence(data, claim_id, line_id):
    """Evidence of a draft claim's line: invoice, payment proof, usage record."""
    return service.set_line_evidence(db.session, current_actor(), claim_id, line_id, data)


@blp.route("/claims/<int:claim_id>/lines/<int:line_id>", methods=["DELETE"])
@blp.response(200, schemas.ClaimSchema)
def remove_line(claim_id, line_id):
    return service.remove_line(db.session, current_actor(), claim_id, line_id)


@blp.route("/claims/<int:claim_id>/submit", methods=["POST"])
@blp.response(200, schemas.ClaimSchema)
def submit_claim(claim_id):
    """File the claim with the bureau (every line's evidence complete)."""
    return service.submit_claim(db.session, current_actor(), claim_id)


@blp.route("/claims/<int:claim_id>/withdraw", methods=["POST"])
@blp.response(200, schemas.ClaimSchema)
def withdraw_claim(claim_id):
    return service.withdraw_claim(db.session, current_actor(), claim_id)


@blp.route("/claims/<int:claim_id>/approve", methods=["POST"])
@blp.arguments(schemas.ApproveSchema)
@blp.response(200, schemas.ClaimSchema)
def approve_claim(data, claim_id):
    """Approve lines (all pending ones without ``lines``) at their next level."""
    return service.approve_claim(db.session, current_actor(), claim_id, data.get("lines"))


@blp.route("/claims/<int:claim_id>/reject", methods=["POST"])
@blp.arguments(schemas.RejectSchema)
@blp.response(200, schemas.ClaimSchema)
def reject_claim(data, claim_id):
    """Reject lines (all pending ones without ``lines``), with a reason."""
    return service.reject_claim(
        db.session, current_actor(), claim_id, data["reason"], data.get("lines")
    )


@blp.route("/claims/<int:claim_id>/pay", methods=["POST"])
@blp.arguments(schemas.PaySchema)
@blp.response(200, schemas.ClaimSchema)
def pay_claim(data, claim_id):
    """Mark an audited claim paid: the sum of its approved lines. Final."""
    return service.pay_claim(db.session, current_actor(), claim_id, data.get("payment_reference"))


@blp.route("/reservations/<int:reservation_id>/confirmation", methods=["GET"])
@blp.response(200, schemas.ConfirmationSchema)
def get_confirmation(reservation_id):
    """The booking's order confirmation (服务确认单)."""
    return service.get_confirmation(db.session, current_actor(), reservation_id)


@blp.route("/reservations/<int:reservation_id>/confirmation/confirm", methods=["POST"])
@blp.arguments(schemas.ConfirmSchema)
@blp.response(200, schemas.ConfirmationSchema)
def confirm(data, reservation_id):
    """Confirm the service online, as the customer or as the lab."""
    return service.confirm_order(db.session, current_actor(), reservation_id, data.get("side"))
