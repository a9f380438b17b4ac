"""The lab admin's pages: the dashboard (``/lab``: today's bookings, requests
waiting, this month's hours and income, read by ``services.dashboards``);
the moves on one booking (approve, reject, check in, check out, no-show,
posted from the dashboard or the booking page); and the completion form
(``/lab/bookings/<id>/complete``: the actual use, after which the booking
page shows the final cost and the voucher's share). Every move is the
reservation service's."""

from __future__ import annotations

import marshmallow as ma
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice

from booking import authz
from booking.domain import clock
from booking.domain.errors import N_, DomainError, Forbidden
from booking.extensions import db
from booking.models.accounts import Organization
from booking.models.catalog import ResourceKind
from booking.models.reservations import Reservation, ReservationStatus
from booking.schemas import reservations as schemas
from booking.services import dashboards, reservations
from booking.web.auth import current_actor
from booking.web.pages import shared
from booking.web.pages.bookings import RejectForm, render_detail

bp = Blueprint("lab_pages", __name__)


def _lab_admin(actor) -> bool:
    return bool(actor.org_ids("provider", "admin"))


NAV: list = [("lab_pages.dashboard", _l("Lab dashboard"), _lab_admin)]

S = ReservationStatus


def _labs(actor) -> dict[int, str]:
    ids = sorted(actor.org_ids("provider", "admin"))
    if not ids:
        return {}
    rows = db.session.execute(
        select(Organization.id, Organization.name).where(Organization.id.in_(ids))
    ).all()
    return dict(sorted(rows))


@bp.get("/lab")
@login_required
def dashboard():
    actor = current_actor()
    labs = _labs(actor)
    provider_id = request.args.get("provider_id", type=int) or next(iter(labs), None)
    if provider_id is None:
        raise Forbidden(N_("The dashboard is for a lab's administrators."))
    data = dashboards.lab_dashboard(db.session, actor, provider_id)
    return render_template(
        "lab/dashboard.html", d=data, labs=labs, provider_id=provider_id, now=clock.now()
    )


# --- moves on one booking -------------------------------------------------------------------


def _back(reservation_id: int):
    target = request.form.get("next") or ""
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target)
    return redirect(url_for("bookings_pages.detail", reservation_id=reservation_id))


def _move(reservation_id: int, move, done: str):
    """Run a move; on a refusal roll back and say why on the page it came from."""
    try:
        move(db.session, current_actor(), reservation_id)
    except DomainError as error:
        if error.status in (401, 403, 404):
            raise
        db.session.rollback()
        flash(shared.message_of(error), "error")
        return _back(reservation_id)
    flash(done, "success")
    return _back(reservation_id)


@bp.post("/lab/bookings/<int:reservation_id>/approve")
@login_required
def approve(reservation_id: int):
    return _move(reservation_id, reservations.approve, gettext("The request is approved."))


@bp.post("/lab/bookings/<int:reservation_id>/reject")
@login_required
def reject(reservation_id: int):
    actor = current_actor()
    reservation = reservations.get_reservation(db.session, actor, reservation_id)
    form = RejectForm(prefix="reject")
    form.validate_on_submit()
    try:
        reservations.reject(db.session, actor, reservation_id, form.reason.data)
    except DomainError as error:
        db.session.rollback()
        reservation = reservations.get_reservation(db.session, actor, reservation_id)
        left = shared.attach(form, shared.domain_errors(error))
        return render_detail(reservation, 422, reject_form=form, form_errors=left)
    flash(gettext("The request is rejected."), "success")
    return _back(reservation.id)


@bp.post("/lab/bookings/<int:reservation_id>/check-in")
@login_required
def check_in(reservation_id: int):
    return _move(reservation_id, reservations.check_in, gettext("Checked in."))


@bp.post("/lab/bookings/<int:reservation_id>/check-out")
@login_required
def check_out(reservation_id: int):
    return _move(reservation_id, reservations.check_out, gettext("Checked out."))


@bp.post("/lab/bookings/<int:reservation_id>/no-show")
@login_required
def no_show(reservation_id: int):
    return _move(reservation_id, reservations.mark_no_show, gettext("Recorded as a no-show."))


# --- completion -----------------------------------------------------------------------------


class CompleteForm(FlaskForm):
    actual_start = StringField(_l("Actual start"), render_kw={"type": "datetime-local"})
    actual_end = StringField(_l("Actual end"), render_kw={"type": "datetime-local"})
    actual_units = StringField(_l("Units used"), render_kw={"inputmode": "numeric"})
    samples = StringField(_l("Samples tested"), render_kw={"inputmode": "numeric"})
    service_way = SelectField(_l("Service way (NRII 服务方式)"), choices=[], validate_choice=False)
    prep_minutes = StringField(_l("Preparation (minutes)"), render_kw={"inputmode": "numeric"})
    post_minutes = StringField(_l("Post-processing (minutes)"), render_kw={"inputmode": "numeric"})


def _prefill(form: CompleteForm, reservation: Reservation) -> None:
    now = clock.now()
    form.actual_start.data = shared.local_input(reservation.actual_start or reservation.start_at)
    end = reservation.actual_end or min(now, reservation.end_at)
    form.actual_end.data = shared.local_input(end)
    form.actual_units.data = str(reservation.units)
    if reservation.samples is not None:
        form.samples.data = str(reservation.samples)
    way = reservation.service_way.value if reservation.service_way else None
    form.service_way.data = way or ("entrusted" if reservation.with_operator else "self_operated")
    form.prep_minutes.data = str(reservation.prep_minutes or 0)
    form.post_minutes.data = str(reservation.post_minutes or 0)


def _payload(form: CompleteForm, reservation: Reservation) -> dict:
    data: dict = {}
    for name in ("actual_start", "actual_end"):
        text = (getattr(form, name).data or "").strip()
        if text:
            data[name] = text
    names = ["prep_minutes", "post_minutes"]
    if reservation.resource.capacity > 1:
        names.append("actual_units")
    if reservation.resource.kind == ResourceKind.TESTING_SERVICE:
        names.append("samples")
    for name in names:
        value = shared.int_or_text(getattr(form, name).data)
        if value is not None:
            data[name] = value
    if form.service_way.data:
        data["service_way"] = form.service_way.data
    return data


@bp.route("/lab/bookings/<int:reservation_id>/complete", methods=["GET", "POST"])
@login_required
def complete(reservation_id: int):
    actor = current_actor()
    reservation = reservations.get_reservation(db.session, actor, reservation_id)
    authz.require(actor, "reservation.operate", reservation)
    form = CompleteForm()
    form.service_way.choices = [
        SelectChoice(value, label) for value, label in shared.SERVICE_WAY.items()
    ]
    status, left = 200, []
    if request.method == "GET":
        _prefill(form, reservation)
    elif form.validate_on_submit():
        try:
            data = schemas.ReservationCompleteSchema().load(_payload(form, reservation))
        except ma.ValidationError as error:
            left, status = shared.attach(form, shared.schema_errors(error)), 422
        else:
            try:
                done = reservations.complete(db.session, actor, reservation_id, data)
            except DomainError as error:
                db.session.rollback()
                reservation = reservations.get_reservation(db.session, actor, reservation_id)
                left, status = shared.attach(form, shared.domain_errors(error)), 422
            else:
                flash(
                    gettext(
                        "Completed: final cost %(cost)s, of which the voucher pays %(voucher)s "
                        "and the customer %(customer)s.",
                        cost=f"¥{done.final_cost:,.2f}",
                        voucher=f"¥{(done.voucher_amount or 0):,.2f}",
                        customer=f"¥{(done.customer_amount or 0):,.2f}",
                    ),
                    "success",
                )
                return redirect(
                    url_for("bookings_pages.detail", reservation_id=reservation_id) + "#cost"
                )
    else:
        status = 400
    return render_template("lab/complete.html", r=reservation, form=form, form_errors=left), status
