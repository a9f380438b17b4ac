"""Voucher redemption claims (兑付申请), both sides, on the claims service.

- The claimant (a lab admin by default): ``/claims/new`` gathers the
  completed, unclaimed voucher-paid bookings of a period into a draft;
  ``/claims/<id>`` adds the evidence line by line (invoice, proof of the
  customer's payment, usage record), removes lines, withdraws the draft or
  files it; what still stops a line is shown beside it.
- The bureau officer: ``/claims/<id>`` audits line by line (approve, or
  reject with a reason) and marks an audited claim paid.

``/claims`` lists the claims the viewer may see; ``/claims/<id>`` is the
address of the "claim audited" mail.
"""

from __future__ import annotations

from datetime import timedelta

import marshmallow as ma
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from booking import authz
from booking.domain import clock
from booking.domain.errors import DomainError, RuleViolation
from booking.extensions import db
from booking.models.accounts import Organization
from booking.models.claims import ClaimLineStatus, ClaimStatus
from booking.models.reservations import Reservation
from booking.schemas import claims as schemas
from booking.services import claims
from booking.web.auth import current_actor
from booking.web.pages import shared

bp = Blueprint("redemption_pages", __name__)


def _sees_claims(actor) -> bool:
    return bool(actor.org_ids("provider", "admin") or actor.bureau_ids())


NAV: list = [("redemption_pages.index", _l("Claims"), _sees_claims)]

PER_PAGE = 30


class NewClaimForm(FlaskForm):
    period_from = StringField(_l("Completed from"), render_kw={"type": "date"})
    period_to = StringField(_l("Completed until"), render_kw={"type": "date"})
    bureau_id = SelectField(_l("Issuing bureau"), choices=[], validate_choice=False)
    claimant_org_id = SelectField(_l("Claim for"), choices=[], validate_choice=False)


class EvidenceForm(FlaskForm):
    invoice_number = StringField(_l("Invoice number"))
    payment_proof = TextAreaField(_l("Proof of the customer's payment"), render_kw={"rows": 2})
    usage_record = TextAreaField(_l("Usage record"), render_kw={"rows": 2})


class AuditForm(FlaskForm):
    reason = TextAreaField(_l("Reason for rejecting the ticked lines"), render_kw={"rows": 2})


class PayForm(FlaskForm):
    payment_reference = StringField(_l("Payment reference"))


def _names(ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    rows = db.session.execute(
        select(Organization.id, Organization.name).where(Organization.id.in_(ids))
    )
    return dict(rows.all())


@bp.get("/claims")
@login_required
def index():
    actor = current_actor()
    status = request.args.get("status") or None
    if status not in {s.value for s in ClaimStatus}:
        status = None
    page = shared.page_number()
    items, total = claims.list_claims(
        db.session, actor, status=status, page=page, per_page=PER_PAGE
    )
    names = _names([c.bureau_id for c in items] + [c.claimant_org_id for c in items])
    return render_template(
        "claims/index.html",
        items=items,
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        status=status,
        names=names,
        can_file=bool(actor.org_ids("provider", "admin")),
    )


def _claimant_choices(actor) -> list[SelectChoice]:
    ids = sorted(actor.org_ids("provider", "admin")) or sorted(actor.org_ids("enterprise"))
    names = _names(ids)
    return [SelectChoice(str(i), names.get(i, str(i))) for i in ids]


@bp.route("/claims/new", methods=["GET", "POST"])
@login_required
def new():
    actor = current_actor()
    form = NewClaimForm()
    form.claimant_org_id.choices = _claimant_choices(actor)
    form.bureau_id.choices = [SelectChoice("", gettext("The one the bookings go to"))]
    status, left, skipped = 200, [], []
    if request.method == "GET":
        today = clock.now().astimezone(clock.platform_tz()).date()
        last_month_end = today.replace(day=1) - timedelta(days=1)
        form.period_from.data = last_month_end.replace(day=1).isoformat()
        form.period_to.data = last_month_end.isoformat()
        if form.claimant_org_id.choices:
            form.claimant_org_id.data = form.claimant_org_id.choices[0].value
    elif form.validate_on_submit():
        payload = {
            "period_from": (form.period_from.data or "").strip(),
            "period_to": (form.period_to.data or "").strip(),
        }
        for name in ("bureau_id", "claimant_org_id"):
            value = shared.int_or_text(getattr(form, name).data)
            if value is not None:
                payload[name] = value
        try:
            data = schemas.ClaimCreateSchema().load(payload)
            claim = claims.create_claim(db.session, actor, data)
        except ma.ValidationError as error:
            left, status = shared.attach(form, shared.schema_errors(error)), 422
        except DomainError as error:
            db.session.rollback()
            details = error.details if isinstance(error.details, dict) else {}
            if isinstance(error, RuleViolation) and error.rule == "claim_one_bureau":
                names = _names(b["bureau_id"] for b in details.get("bureaus", []))
                form.bureau_id.choices += [
                    SelectChoice(
                        str(b["bureau_id"]),
                        gettext(
                            "%(name)s (%(count)s bookings)",
                            name=names.get(b["bureau_id"], ""),
                            count=b["lines"],
                        ),
                    )
                    for b in details.get("bureaus", [])
                ]
            skipped = details.get("skipped", [])
            left, status = shared.attach(form, shared.domain_errors(error)), 422
        else:
            flash(
                gettext(
                    "Draft claim %(number)s made with %(count)s bookings. Add the evidence of "
                    "each line, then file it.",
                    number=claim.number,
                    count=len(claim.lines),
                ),
                "success",
            )
            if claim.skipped:
                flash(
                    gettext(
                        "%(count)s bookings of the period cannot be claimed (see the rules).",
                        count=len(claim.skipped),
                    ),
                    "info",
                )
            return redirect(url_for("redemption_pages.detail", claim_id=claim.id))
    else:
        status = 400
    return render_template("claims/new.html", form=form, form_errors=left, skipped=skipped), status


def _detail(claim_id: int, status: int = 200, **extra):
    actor = current_actor()
    claim = claims.get_claim(db.session, actor, claim_id)
    bookings = {
        r.id: r
        for r in db.session.scalars(
            select(Reservation)
            .where(Reservation.id.in_([line.reservation_id for line in claim.lines] or [0]))
            .options(joinedload(Reservation.resource))
        )
    }
    editable = claim.status == ClaimStatus.DRAFT and authz.can(actor, "claim.edit", claim)
    auditable = claim.status == ClaimStatus.SUBMITTED and authz.can(actor, "claim.audit", claim)
    payable = claim.status == ClaimStatus.AUDITED and authz.can(actor, "claim.pay", claim)
    missing = extra.pop("missing", None)
    if missing is None and editable:
        # What the claims service would refuse on filing, line by line (rule 14).
        now = clock.now()
        missing = {line.id: claims._missing_evidence(db.session, line, now) for line in claim.lines}
    names = _names(
        [claim.bureau_id, claim.claimant_org_id] + [line.customer_org_id for line in claim.lines]
    )
    evidence_forms = extra.pop("evidence_forms", {})
    for line in claim.lines:
        if line.id not in evidence_forms:
            evidence_forms[line.id] = EvidenceForm(prefix=f"line{line.id}", obj=line)
    return render_template(
        "claims/detail.html",
        claim=claim,
        bookings=bookings,
        names=names,
        editable=editable,
        auditable=auditable,
        payable=payable,
        missing=missing or {},
        evidence_forms=evidence_forms,
        audit_form=extra.pop("audit_form", None) or AuditForm(prefix="audit"),
        pay_form=extra.pop("pay_form", None) or PayForm(prefix="pay"),
        form_errors=extra.pop("form_errors", []),
        checked=extra.pop("checked", set()),
        pending=ClaimLineStatus.PENDING,
    ), status


@bp.get("/claims/<int:claim_id>")
@login_required
def detail(claim_id: int):
    return _detail(claim_id)


@bp.post("/claims/<int:claim_id>/lines/<int:line_id>")
@login_required
def evidence(claim_id: int, line_id: int):
    form = EvidenceForm(prefix=f"line{line_id}")
    if not form.validate_on_submit():
        abort(400)
    try:
        data = schemas.EvidenceSchema().load(
            {
                "invoice_number": form.invoice_number.data or None,
                "payment_proof": form.payment_proof.data or None,
                "usage_record": form.usage_record.data or None,
            }
        )
        claims.set_line_evidence(db.session, current_actor(), claim_id, line_id, data)
    except ma.ValidationError as error:
        left = shared.attach(form, shared.schema_errors(error))
        return _detail(claim_id, 422, evidence_forms={line_id: form}, form_errors=left)
    except DomainError as error:
        if error.status in (401, 403, 404):
            raise
        db.session.rollback()
        left = shared.attach(form, shared.domain_errors(error))
        return _detail(claim_id, 422, evidence_forms={line_id: form}, form_errors=left)
    flash(gettext("The evidence of line %(line)s is saved.", line=line_id), "success")
    return redirect(url_for("redemption_pages.detail", claim_id=claim_id) + f"#line-{line_id}")


def _simple(claim_id: int, action, done: str):
    try:
        action()
    except DomainError as error:
        if error.status in (401, 403, 404):
            raise
        db.session.rollback()
        details = error.details if isinstance(error.details, dict) else {}
        missing = None
        if isinstance(details.get("lines"), dict):
            missing = {int(k): v for k, v in details["lines"].items()}
        return _detail(claim_id, 422, form_errors=[shared.message_of(error)], missing=missing)
    flash(done, "success")
    return redirect(url_for("redemption_pages.detail", claim_id=claim_id))


def _csrf_or_400() -> None:
    if not FlaskForm().validate_on_submit():
        abort(400)


@bp.post("/claims/<int:claim_id>/lines/<int:line_id>/remove")
@login_required
def remove_line(claim_id: int, line_id: int):
    _csrf_or_400()
    return _simple(
        claim_id,
        lambda: claims.remove_line(db.session, current_actor(), claim_id, line_id),
        gettext("The line is taken out of the claim; its booking can be claimed later."),
    )


@bp.post("/claims/<int:claim_id>/submit")
@login_required
def submit(claim_id: int):
    _csrf_or_400()
    return _simple(
        claim_id,
        lambda: claims.submit_claim(db.session, current_actor(), claim_id),
        gettext("The claim is filed with the bureau."),
    )


@bp.post("/claims/<int:claim_id>/withdraw")
@login_required
def withdraw(claim_id: int):
    _csrf_or_400()
    return _simple(
        claim_id,
        lambda: claims.withdraw_claim(db.session, current_actor(), claim_id),
        gettext("The draft is withdrawn."),
    )


@bp.post("/claims/<int:claim_id>/audit")
@login_required
def audit(claim_id: int):
    """Approve or reject the ticked lines (a reason is needed to reject)."""
    form = AuditForm(prefix="audit")
    if not form.validate_on_submit():
        abort(400)
    ids = [int(v) for v in request.form.getlist("lines") if v.isdigit()]
    action = request.form.get("action")
    actor = current_actor()
    if not ids:
        return _detail(
            claim_id,
            422,
            audit_form=form,
            form_errors=[gettext("Tick the lines to decide.")],
        )
    try:
        if action == "reject":
            claims.reject_claim(db.session, actor, claim_id, form.reason.data or "", ids)
        else:
            claims.approve_claim(db.session, actor, claim_id, ids)
    except DomainError as error:
        if error.status in (401, 403, 404):
            raise
        db.session.rollback()
        left = shared.attach(form, shared.domain_errors(error))
        return _detail(claim_id, 422, audit_form=form, form_errors=left, checked=set(ids))
    flash(
        gettext("%(count)s lines rejected.", count=len(ids))
        if action == "reject"
        else gettext("%(count)s lines approved.", count=len(ids)),
        "success",
    )
    return redirect(url_for("redemption_pages.detail", claim_id=claim_id))


@bp.post("/claims/<int:claim_id>/pay")
@login_required
def pay(claim_id: int):
    form = PayForm(prefix="pay")
    if not form.validate_on_submit():
        abort(400)
    try:
        data = schemas.PaySchema().load({"payment_reference": form.payment_reference.data or None})
        claims.pay_claim(db.session, current_actor(), claim_id, data["payment_reference"])
    except ma.ValidationError as error:
        left = shared.attach(form, shared.schema_errors(error))
        return _detail(claim_id, 422, pay_form=form, form_errors=left)
    except DomainError as error:
        if error.status in (401, 403, 404):
            raise
        db.session.rollback()
        left = shared.attach(form, shared.domain_errors(error))
        return _detail(claim_id, 422, pay_form=form, form_errors=left)
    flash(gettext("The claim is marked paid."), "success")
    return redirect(url_for("redemption_pages.detail", claim_id=claim_id))
