"""The science bureau officer's pages: ``/bureau`` (claims to audit and to
pay, vouchers issued this year, the report pages), issuing one voucher
(``/bureau/vouchers/new``) and a batch from a CSV file
(``/bureau/vouchers/batch``, refused as a whole with the problems listed by
row). The rules are the voucher service's (``issue_voucher``,
``issue_batch``); the claims are audited on ``/claims/<id>``."""

from __future__ import annotations

import marshmallow as ma
from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from wtforms import SelectField, SelectMultipleField, StringField, widgets
from wtforms.fields.choices import SelectChoice

from booking.domain import clock
from booking.domain.errors import N_, DomainError, Forbidden, RuleViolation
from booking.extensions import db
from booking.models.accounts import Organization
from booking.schemas import vouchers as schemas
from booking.services import dashboards, vouchers
from booking.web.auth import current_actor
from booking.web.pages import shared

bp = Blueprint("bureau_pages", __name__)


def _officer(actor) -> bool:
    return bool(actor.bureau_ids())


NAV: list = [("bureau_pages.home", _l("Bureau"), _officer)]


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class IssueForm(FlaskForm):
    bureau_id = SelectField(_l("Issuing bureau"), choices=[], validate_choice=False)
    holder_org_id = SelectField(_l("Enterprise"), choices=[], validate_choice=False)
    face_value = StringField(_l("Face value (CNY)"), render_kw={"inputmode": "decimal"})
    valid_from = StringField(_l("Valid from"), render_kw={"type": "date"})
    valid_until = StringField(_l("Valid until"), render_kw={"type": "date"})
    coverage_ratio = StringField(_l("Share of a fee it pays (e.g. 0.50)"))
    order_cap = StringField(_l("At most per order (CNY)"), render_kw={"inputmode": "decimal"})
    service_categories = CheckboxesField(_l("Pays for"), choices=[], validate_choice=False)
    provider_regions = StringField(_l("Providers only in regions (codes, e.g. 14)"))


class BatchForm(FlaskForm):
    bureau_id = SelectField(_l("Issuing bureau"), choices=[], validate_choice=False)
    file = FileField(_l("CSV file"))


def _bureau_choices(actor) -> list[SelectChoice]:
    ids = sorted(actor.bureau_ids()) or [0]
    rows = db.session.execute(
        select(Organization.id, Organization.name).where(Organization.id.in_(ids))
    ).all()
    return [SelectChoice(str(i), name) for i, name in sorted(rows)]


def _require_officer(actor) -> None:
    if not _officer(actor):
        raise Forbidden(N_("Only a bureau officer issues vouchers."))


@bp.get("/bureau")
@login_required
def home():
    actor = current_actor()
    _require_officer(actor)
    return render_template("bureau/home.html", o=dashboards.bureau_overview(db.session, actor))


def _fill_choices(form: IssueForm, actor) -> None:
    from booking.web.pages.catalog import SERVICE_CATEGORY_LABELS

    form.bureau_id.choices = _bureau_choices(actor)
    form.holder_org_id.choices = [SelectChoice("", gettext("Choose an enterprise"))] + [
        SelectChoice(str(o.id), f"{o.name} ({o.uscc})")
        for o in dashboards.holder_choices(db.session, actor)
    ]
    form.service_categories.choices = [
        SelectChoice(value, label) for value, label in SERVICE_CATEGORY_LABELS.items()
    ]


def _policy(actor, form: IssueForm):
    bureau_id = shared.int_or_text(form.bureau_id.data)
    if not isinstance(bureau_id, int):
        return None
    today = clock.now().astimezone(clock.platform_tz()).date()
    return vouchers.policy_in_effect(db.session, bureau_id, today)


def _issue_payload(form: IssueForm) -> dict:
    data: dict = {}
    for name in ("bureau_id", "holder_org_id"):
        value = shared.int_or_text(getattr(form, name).data)
        if value is not None:
            data[name] = value
    for name in ("face_value", "valid_from", "valid_until", "coverage_ratio", "order_cap"):
        text = (getattr(form, name).data or "").strip()
        if text:
            data[name] = text
    if form.service_categories.data:
        data["service_categories"] = list(form.service_categories.data)
    regions = [
        r.strip()
        for r in (form.provider_regions.data or "").replace("，", ",").replace(";", ",").split(",")
    ]
    if any(regions):
        data["provider_regions"] = [r for r in regions if r]
    return data


@bp.route("/bureau/vouchers/new", methods=["GET", "POST"])
@login_required
def issue():
    actor = current_actor()
    _require_officer(actor)
    form = IssueForm()
    _fill_choices(form, actor)
    if not form.bureau_id.data and form.bureau_id.choices:
        form.bureau_id.data = form.bureau_id.choices[0].value
    status, left = 200, []
    if request.method == "GET":
        if request.args.get("holder_org_id"):
            form.holder_org_id.data = request.args["holder_org_id"]
    elif form.validate_on_submit():
        try:
            data = schemas.VoucherIssueSchema().load(_issue_payload(form))
            voucher = vouchers.issue_voucher(db.session, actor, data)
        except ma.ValidationError as error:
            left, status = shared.attach(form, shared.schema_errors(error)), 422
        except DomainError as error:
            if error.status == 401:
                raise
            db.session.rollback()
            left, status = shared.attach(form, shared.domain_errors(error)), 422
        else:
            flash(
                gettext(
                    "Voucher %(number)s of %(amount)s is issued to %(holder)s.",
                    number=voucher.number,
                    amount=f"¥{voucher.face_value:,.2f}",
                    holder=voucher.holder.name,
                ),
                "success",
            )
            return redirect(url_for("balances_pages.detail", voucher_id=voucher.id))
    else:
        status = 400
    return render_template(
        "bureau/issue.html", form=form, form_errors=left, policy=_policy(actor, form)
    ), status


@bp.route("/bureau/vouchers/batch", methods=["GET", "POST"])
@login_required
def batch():
    actor = current_actor()
    _require_officer(actor)
    form = BatchForm()
    form.bureau_id.choices = _bureau_choices(actor)
    if not form.bureau_id.data and form.bureau_id.choices:
        form.bureau_id.data = form.bureau_id.choices[0].value
    status, left, rows, issued = 200, [], [], []
    if request.method == "POST":
        if not form.validate_on_submit():
            status = 400
        elif not form.file.data:
            form.file.errors = [gettext("Choose the CSV file.")]
            status = 422
        else:
            content = form.file.data.read()
            bureau_id = shared.int_or_text(form.bureau_id.data)
            try:
                issued = vouchers.issue_batch(
                    db.session, actor, content, bureau_id if isinstance(bureau_id, int) else None
                )
            except RuleViolation as error:
                db.session.rollback()
                rows = [
                    {
                        "row": row["row"],
                        "field": row.get("field") or "",
                        "message": shared.translated(row["message"], row.get("params")),
                    }
                    for row in error.details.get("rows", [])
                ]
                found = shared.domain_errors(error)
                left = [shared.message_of(error)] if rows else shared.attach(form, found)
                status = 422
            except DomainError as error:
                if error.status == 401:
                    raise
                db.session.rollback()
                left, status = shared.attach(form, shared.domain_errors(error)), 422
            else:
                vouchers.with_totals(db.session, issued)
                flash(gettext("%(count)s vouchers are issued.", count=len(issued)), "success")
    return render_template(
        "bureau/batch.html",
        form=form,
        form_errors=left,
        rows=rows,
        issued=issued,
        columns=vouchers.CSV_COLUMNS,
    ), status


@bp.get("/bureau/vouchers/batch/template.csv")
@login_required
def batch_template():
    """An example file with the columns the batch reads."""
    header = ",".join(vouchers.CSV_COLUMNS)
    example = (
        "91140105831125525K,,50000.00,2026-01-01,2026-12-31,0.50,20000.00,"
        "testing;instrument_sharing,"
    )
    response = make_response("\ufeff" + header + "\r\n" + example + "\r\n")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = 'attachment; filename="vouchers-batch.csv"'
    return response
