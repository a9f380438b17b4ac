"""API of the vouchers area (API.md "Vouchers and settlement"): vouchers,
their ledger, batch issue from CSV, revoke, adjust, quotes; bureaus' voucher
policies; provider admissions, CMA certificates and related parties."""

from __future__ import annotations

from flask_babel import gettext

from booking.domain.errors import Forbidden, RuleViolation
from booking.extensions import db
from booking.schemas import vouchers as schemas
from booking.schemas.common import page_schema
from booking.services import admissions
from booking.services import vouchers as service
from booking.web.api.blueprint import Blueprint
from booking.web.api.idempotency import idempotent
from booking.web.auth import current_actor, require_signed_in

blp = Blueprint(
    "vouchers_api", __name__, description="Innovation vouchers, policies and voucher providers"
)

VoucherPage = page_schema(schemas.VoucherSchema, "VoucherPage")
LedgerPage = page_schema(schemas.LedgerEntrySchema, "LedgerPage")


def _page(items, total, args) -> dict:
    return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


def _one(voucher):
    return service.with_totals(db.session, [voucher])[0]


# --- vouchers ---------------------------------------------------------------------


@blp.route("/vouchers", methods=["POST"])
@idempotent
@blp.arguments(schemas.VoucherIssueSchema)
@blp.response(201, schemas.VoucherSchema)
def issue_voucher(data):
    """Issue one voucher (a bureau officer)."""
    return _one(service.issue_voucher(db.session, current_actor(), data))


@blp.route("/vouchers/batch", methods=["POST"])
@idempotent
@blp.arguments(schemas.BatchUploadSchema, location="files")
@blp.arguments(schemas.BatchFormSchema, location="form")
@blp.response(201, schemas.BatchResultSchema)
def issue_batch(files, form):
    """Issue a batch from a CSV file (field ``file``; UTF-8 with or without
    BOM, or GB18030). Columns: holder_uscc or holder_org_id, face_value,
    valid_from, valid_until, coverage_ratio, order_cap, service_categories and
    provider_regions (lists separated by ``;``). Every row is checked first;
    any problem refuses the whole file, listed by row in ``details.rows``."""
    upload = files["file"]
    content = upload.read() if hasattr(upload, "read") else upload
    try:
        issued = service.issue_batch(db.session, current_actor(), content, form.get("bureau_id"))
    except RuleViolation as exc:
        for row in exc.details.get("rows", []):
            message_id, params = row["message"], row.pop("params")
            row["message"] = gettext(message_id, **params)
        raise
    service.with_totals(db.session, issued)
    return {"batch_id": issued[0].batch_id, "total": len(issued), "items": issued}


@blp.route("/vouchers", methods=["GET"])
@blp.arguments(schemas.VoucherListArgs, location="query")
@blp.response(200, VoucherPage)
def list_vouchers(args):
    """Vouchers the caller may see: a bureau's region, a holder's own."""
    items, total = service.list_vouchers(
        db.session,
        current_actor(),
        holder_org_id=args.get("holder_org_id"),
        bureau_id=args.get("bureau_id"),
        status=args.get("status"),
        page=args["page"],
        per_page=args["per_page"],
    )
    return _page(service.with_totals(db.session, items), total, args)


@blp.route("/vouchers/<int:voucher_id>", methods=["GET"])
@blp.response(200, schemas.VoucherSchema)
def get_voucher(voucher_id):
    return _one(service.get_voucher(db.session, current_actor(), voucher_id))


@blp.route("/vouchers/<int:voucher_id>/ledger", methods=["GET"])
@blp.arguments(schemas.PageArgs, location="query")
@blp.response(200, LedgerPage)
def voucher_ledger(args, voucher_id):
    """The voucher's append-only ledger entries, oldest first."""
    items, total = service.ledger_of(
        db.session, current_actor(), voucher_id, args["page"], args["per_page"]
    )
    return _page(items, total, args)


@blp.route("/vouchers/<int:voucher_id>/revoke", methods=["POST"])
@blp.arguments(schemas.RevokeSchema)
@blp.response(200, schemas.VoucherSchema)
def revoke_voucher(data, voucher_id):
    """Take back an unused voucher (the issuing bureau)."""
    return _one(service.revoke_voucher(db.session, current_actor(), voucher_id, data["reason"]))


@blp.route("/vouchers/<int:voucher_id>/adjustments", methods=["POST"])
@blp.arguments(schemas.AdjustmentSchema)
@blp.response(201, schemas.LedgerEntrySchema)
def adjust_voucher(data, voucher_id):
    """A correction with its reason (the issuing bureau)."""
    return service.adjust_voucher(
        db.session,
        current_actor(),
        voucher_id,
        data["amount"],
        data["reason"],
        reservation_id=data.get("reservation_id"),
        claim_id=data.get("claim_id"),
    )


@blp.route("/vouchers/<int:voucher_id>/quote", methods=["POST"])
@blp.arguments(schemas.QuoteRequestSchema)
@blp.response(200, schemas.QuoteSchema)
def quote_voucher(data, voucher_id):
    """Would this voucher pay for a planned booking, and how much? Checks
    every rule a booking's voucher is checked against; writes nothing."""
    result = service.quote(db.session, current_actor(), voucher_id, data)
    return {
        "voucher_id": result.voucher_id,
        "estimated_cost": data["estimated_cost"],
        "voucher_share": result.voucher_share,
        "customer_share": result.customer_share,
    }


# --- policies --------------------------------------------------------------------


@blp.route("/voucher-policies", methods=["GET"])
@blp.arguments(schemas.PolicyListArgs, location="query")
@blp.response(200, schemas.PolicySchema(many=True))
def list_policies(args):
    return service.list_policies(db.session, current_actor(), args.get("bureau_id"))


@blp.route("/voucher-policies", methods=["POST"])
@idempotent
@blp.arguments(schemas.PolicyCreateSchema)
@blp.response(201, schemas.PolicySchema)
def create_policy(data):
    """A new version of the caller's bureau's policy, from ``effective_from``."""
    actor = require_signed_in()
    bureau_id = data.pop("bureau_id", None)
    if bureau_id is None:
        if len(actor.bureau_ids()) != 1:
            raise Forbidden()
        bureau_id = next(iter(actor.bureau_ids()))
    return service.create_policy(db.session, actor, bureau_id, data)


@blp.route("/voucher-policies/<int:policy_id>", methods=["GET"])
@blp.response(200, schemas.PolicySchema)
def get_policy(policy_id):
    return service.get_policy(db.session, current_actor(), policy_id)


@blp.route("/voucher-policies/<int:policy_id>", methods=["PATCH"])
@blp.arguments(schemas.PolicySettingsSchema)
@blp.response(200, schemas.PolicySchema)
def update_policy(data, policy_id):
    """Change a policy no voucher was issued under yet."""
    return service.update_policy(db.session, current_actor(), policy_id, data)


@blp.route("/voucher-policies/<int:policy_id>", methods=["DELETE"])
@blp.response(204)
def delete_policy(policy_id):
    service.delete_policy(db.session, current_actor(), policy_id)


# --- admissions --------------------------------------------------------------------


@blp.route("/admissions", methods=["GET"])
@blp.arguments(schemas.AdmissionListArgs, location="query")
@blp.response(200, schemas.AdmissionSchema(many=True))
def list_admissions(args):
    actor = require_signed_in()
    return admissions.list_admissions(
        db.session, actor, args.get("provider_id"), args.get("status")
    )


@blp.route("/admissions", methods=["POST"])
@idempotent
@blp.arguments(schemas.AdmissionApplySchema)
@blp.response(201, schemas.AdmissionSchema)
def apply_admission(data):
    """A provider applies to become a voucher service institution."""
    provider_id = data.pop("provider_id")
    return admissions.apply_for_admission(db.session, current_actor(), provider_id, data)


@blp.route("/admissions/<int:admission_id>", methods=["GET"])
@blp.response(200, schemas.AdmissionSchema)
def get_admission(admission_id):
    return admissions.get_admission(db.session, current_actor(), admission_id)


@blp.route("/admissions/<int:admission_id>/approve", methods=["POST"])
@blp.arguments(schemas.AdmissionDecisionSchema)
@blp.response(200, schemas.AdmissionSchema)
def approve_admission(data, admission_id):
    """Platform admin or bureau of the provider's region; optional public notice."""
    return admissions.approve_admission(db.session, current_actor(), admission_id, data)


@blp.route("/admissions/<int:admission_id>/reject", methods=["POST"])
@blp.arguments(schemas.ReasonSchema)
@blp.response(200, schemas.AdmissionSchema)
def reject_admission(data, admission_id):
    return admissions.reject_admission(db.session, current_actor(), admission_id, data["reason"])


@blp.route("/admissions/<int:admission_id>/suspend", methods=["POST"])
@blp.arguments(schemas.ReasonSchema)
@blp.response(200, schemas.AdmissionSchema)
def suspend_admission(data, admission_id):
    """No new voucher bookings; finished work can still be claimed."""
    return admissions.suspend_provider(db.session, current_actor(), admission_id, data["reason"])


@blp.route("/admissions/<int:admission_id>/reinstate", methods=["POST"])
@blp.response(200, schemas.AdmissionSchema)
def reinstate_admission(admission_id):
    return admissions.reinstate_provider(db.session, current_actor(), admission_id)


# --- CMA certificates and related parties ------------------------------------------------


@blp.route("/providers/<int:provider_id>/cma-certificates", methods=["GET"])
@blp.response(200, schemas.CmaSchema(many=True))
def list_cma(provider_id):
    return admissions.list_cma(db.session, current_actor(), provider_id)


@blp.route("/providers/<int:provider_id>/cma-certificates", methods=["POST"])
@blp.arguments(schemas.CmaCreateSchema)
@blp.response(201, schemas.CmaSchema)
def record_cma(data, provider_id):
    """A testing provider's CMA certificate: number, scope, expiry."""
    return admissions.record_cma(db.session, current_actor(), provider_id, data)


@blp.route("/cma-certificates/<int:certificate_id>/withdraw", methods=["POST"])
@blp.response(200, schemas.CmaSchema)
def withdraw_cma(certificate_id):
    return admissions.withdraw_cma(db.session, current_actor(), certificate_id)


@blp.route("/organizations/<int:org_id>/related-parties", methods=["GET"])
@blp.response(200, schemas.RelatedPartySchema(many=True))
def list_related_parties(org_id):
    return admissions.list_related_parties(db.session, current_actor(), org_id)


@blp.route("/organizations/<int:org_id>/related-parties", methods=["POST"])
@blp.arguments(schemas.RelatedPartyCreateSchema)
@blp.response(201, schemas.RelatedPartySchema)
def declare_related_party(data, org_id):
    """Declare a relation (same legal representative, shareholding, controller)."""
    return admissions.declare_related_party(db.session, current_actor(), org_id, data)


@blp.route("/related-parties/<int:declaration_id>/withdraw", methods=["POST"])
@blp.response(200, schemas.RelatedPartySchema)
def withdraw_related_party(declaration_id):
    return admissions.withdraw_related_party(db.session, current_actor(), declaration_id)
