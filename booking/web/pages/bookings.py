"""The customer's booking pages.

- ``/catalog/resources/<id>/book``: the booking form. A free span picked in
  the week view (``static/js/booking_form.js``; links carry ``?start=&end=``
  where scripts are off) fills it; beside it the estimate, the vouchers of
  the enterprise with what each would pay, and what the enterprise pays
  (``booking.services.booking_form.preview``, refreshed as one types through
  ``…/estimate``); refusals beside the fields with the input kept; a
  conflict offers the nearest free slots as buttons that refill the form.
- ``/bookings``: "my bookings", upcoming and past; ``/bookings/<id>``: one
  booking with what its viewer may do (cancel, move, rate, the .ics file; the
  lab's moves post to ``lab_pages``); ``/reservations/<id>`` (the address in
  mails) leads there.

Bookings are made and changed by ``booking.services.reservations`` only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import marshmallow as ma
from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from booking import authz
from booking.domain import clock
from booking.domain.errors import Conflict, DomainError, NotFound
from booking.extensions import db
from booking.models.accounts import Organization
from booking.models.catalog import Resource, ResourceKind, ResourceStatus
from booking.models.claims import OrderConfirmation
from booking.models.reservations import Reservation, ReservationStatus
from booking.schemas import reservations as schemas
from booking.services import booking_form, dashboards, reservations, vouchers, waitlist
from booking.web.auth import current_actor
from booking.web.pages import shared

bp = Blueprint("bookings_pages", __name__)


def _books(actor) -> bool:
    return bool(actor.customer_orgs() or actor.org_ids("provider", "member"))


NAV: list = [("bookings_pages.mine", _l("My bookings"), _books)]

PER_PAGE = 20
S = ReservationStatus


@bp.app_context_processor
def _page_labels() -> dict:
    return {
        "page_labels": shared.labels(),
        "local_input": shared.local_input,
        "message_of": shared.message_of,
    }


# --- the form -----------------------------------------------------------------------------


class BookingForm(FlaskForm):
    """The booking form; values are read by the API's schema and checked by
    the reservation service."""

    start = StringField(_l("Start"), render_kw={"type": "datetime-local"})
    end = StringField(_l("End"), render_kw={"type": "datetime-local"})
    units = StringField(_l("Units"), render_kw={"inputmode": "numeric"})
    samples = StringField(_l("Number of samples"), render_kw={"inputmode": "numeric"})
    purpose = TextAreaField(_l("Purpose of the booking"), render_kw={"rows": 3})
    with_operator = BooleanField(_l("The lab’s technician runs it for me"))
    customer_org_id = SelectField(_l("Book for"), choices=[], validate_choice=False)


class RescheduleForm(FlaskForm):
    start = StringField(_l("New start"), render_kw={"type": "datetime-local"})
    end = StringField(_l("New end"), render_kw={"type": "datetime-local"})
    units = StringField(_l("Units"), render_kw={"inputmode": "numeric"})


class CancelForm(FlaskForm):
    reason = TextAreaField(_l("Reason (optional)"), render_kw={"rows": 2})


class RejectForm(FlaskForm):
    reason = StringField(_l("Reason for rejection"))


class RatingForm(FlaskForm):
    score = SelectField(
        _l("Your rating"),
        choices=[
            SelectChoice("", _l("Choose")),
            SelectChoice("5", _l("5 — very satisfied")),
            SelectChoice("4", _l("4 — satisfied")),
            SelectChoice("3", _l("3 — neutral")),
            SelectChoice("2", _l("2 — dissatisfied")),
            SelectChoice("1", _l("1 — very poor")),
        ],
        validate_choice=False,
    )
    comment = TextAreaField(_l("Comment (optional)"), render_kw={"rows": 2})


def customer_orgs(actor) -> list[Organization]:
    """The organisations the actor may book for (enterprises, else labs)."""
    ids = sorted(actor.customer_orgs()) or sorted(actor.org_ids("provider"))
    if not ids:
        return []
    return list(db.session.scalars(select(Organization).where(Organization.id.in_(ids))))


def default_minutes(resource: Resource) -> int:
    """The length a picked free span is cut to: an hour, or the shortest
    booking if longer, on the resource's grid, within its longest."""
    grid = max(resource.granularity_minutes, 1)
    wanted = max(resource.min_minutes, 60)
    wanted = -(-wanted // grid) * grid
    return min(wanted, resource.max_minutes)


def _bookable(resource_id: int) -> Resource:
    resource = db.session.get(Resource, resource_id)
    if resource is None or resource.status == ResourceStatus.RETIRED:
        abort(404)
    return resource


def _prefill(form: BookingForm, resource: Resource) -> None:
    """A span picked in the week view (``?start=&end=``): cut to the
    default length when it is longer than a booking may be."""
    start_text, end_text = request.args.get("start", ""), request.args.get("end", "")
    try:
        start = clock.parse_instant(start_text, clock.platform_tz()) if start_text else None
        end = clock.parse_instant(end_text, clock.platform_tz()) if end_text else None
    except ValueError:
        return
    if start is None:
        return
    longest = timedelta(minutes=resource.max_minutes)
    if end is None or end <= start or end - start > longest:
        wanted = start + timedelta(minutes=default_minutes(resource))
        end = wanted if end is None or end <= start else min(end, wanted)
    form.start.data = shared.local_input(start)
    form.end.data = shared.local_input(end)
    if resource.capacity > 1 and not form.units.data:
        form.units.data = request.args.get("units", "1")
    if resource.kind == ResourceKind.TESTING_SERVICE and not form.samples.data:
        form.samples.data = request.args.get("samples", "1")


def _voucher_choice(source) -> str:
    return (source.get("voucher_id") or "").strip()


def _payload(form: BookingForm, resource: Resource, voucher_choice: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resource_id": resource.id,
        "start": (form.start.data or "").strip(),
        "end": (form.end.data or "").strip(),
        "purpose": (form.purpose.data or "").strip(),
        "with_operator": bool(form.with_operator.data),
    }
    for name in ("units", "samples"):
        value = shared.int_or_text(getattr(form, name).data)
        if value is not None:
            data[name] = value
    for name, value in (
        ("voucher_id", voucher_choice),
        ("customer_org_id", form.customer_org_id.data),
    ):
        parsed = shared.int_or_text(value)
        if parsed is not None:
            data[name] = parsed
    return data


def _read(form: BookingForm, resource: Resource, voucher_choice: str):
    """The form as the API reads it: ``(data, errors)``."""
    errors: dict[str, list[str]] = {}
    for name in ("start", "end"):
        if not (getattr(form, name).data or "").strip():
            errors[name] = [gettext("Pick a time in the week above, or type it here.")]
    if errors:
        return None, errors
    try:
        return schemas.ReservationCreateSchema().load(_payload(form, resource, voucher_choice)), {}
    except ma.ValidationError as error:
        return None, shared.schema_errors(error)


def _estimate_context(form, resource, voucher_choice, *, keep_default: bool) -> dict:
    """The estimate panel: the preview, or why there is none."""
    context: dict[str, Any] = {
        "preview": None,
        "problems": [],
        "conflict": None,
        "voucher_choice": voucher_choice,
        "vouchers": [],
    }
    actor = current_actor()
    data, errors = _read(form, resource, voucher_choice)
    if data is not None:
        try:
            preview = booking_form.preview(db.session, actor, data)
        except Conflict as conflict:
            context["conflict"] = _conflict_view(conflict)
        except DomainError as error:
            context["problems"] = [m for ms in shared.domain_errors(error).values() for m in ms]
        else:
            context["preview"] = preview
            if keep_default and not voucher_choice and preview.best is not None:
                # A first look preselects the voucher that pays most.
                context["voucher_choice"] = str(preview.best.voucher.id)
                data["voucher_id"] = preview.best.voucher.id
                preview = booking_form.preview(db.session, actor, data)
                context["preview"] = preview
            if preview.voucher_error is not None:
                context["problems"] = [shared.message_of(preview.voucher_error)]
    else:
        context["problems"] = [m for ms in errors.values() for m in ms]
    if context["preview"] is None:
        context["vouchers"] = _vouchers_of(form)
    return context


def _vouchers_of(form) -> list:
    """The booking organisation's active vouchers (before a quote is possible)."""
    actor = current_actor()
    orgs = customer_orgs(actor)
    org_id = shared.int_or_text(form.customer_org_id.data) or (orgs[0].id if orgs else None)
    if not isinstance(org_id, int) or not actor.member_of(org_id):
        return []
    return booking_form.customer_vouchers(db.session, actor, org_id)


def _conflict_view(conflict: Conflict) -> dict:
    tz = clock.platform_tz()
    suggestions = []
    for item in conflict.details.get("suggestions", []):
        start = datetime.fromisoformat(item["start"]).astimezone(tz)
        end = datetime.fromisoformat(item["end"]).astimezone(tz)
        suggestions.append(
            {
                "start": shared.local_input(start),
                "end": shared.local_input(end),
                "label": f"{start:%Y-%m-%d %H:%M} – {end:%H:%M}"
                if start.date() == end.date()
                else f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M}",
            }
        )
    return {"message": shared.message_of(conflict), "suggestions": suggestions}


def _form_for(resource: Resource, actor) -> BookingForm:
    form = BookingForm()
    orgs = customer_orgs(actor)
    form.customer_org_id.choices = [SelectChoice(str(o.id), o.name) for o in orgs]
    if not form.customer_org_id.data and orgs:
        form.customer_org_id.data = str(orgs[0].id)
    return form


def _render_form(resource, form, context, status=200, form_errors=None):
    return (
        render_template(
            "bookings/new.html",
            resource=resource,
            form=form,
            form_errors=form_errors or [],
            week_start=_week_start(form),
            offset=_offset(),
            default_minutes=default_minutes(resource),
            **context,
        ),
        status,
    )


def _week_start(form) -> str:
    tz = clock.platform_tz()
    day = clock.now().astimezone(tz).date()
    try:
        if form.start.data:
            day = clock.parse_instant(form.start.data, tz).astimezone(tz).date()
    except ValueError:
        pass
    return (day - timedelta(days=day.weekday())).isoformat()


def _offset() -> str:
    text = clock.now().astimezone(clock.platform_tz()).strftime("%z")
    return f"{text[:3]}:{text[3:]}"


@bp.route("/catalog/resources/<int:resource_id>/book", methods=["GET", "POST"])
@login_required
def new(resource_id: int):
    """The booking form of a resource."""
    actor = current_actor()
    resource = _bookable(resource_id)
    form = _form_for(resource, actor)
    if request.method == "GET":
        _prefill(form, resource)
        if form.start.data:
            context = _estimate_context(form, resource, "", keep_default=True)
        else:
            context = _empty_context()
            context["vouchers"] = _vouchers_of(form)
        return _render_form(resource, form, context)
    if not form.validate_on_submit():
        return _render_form(resource, form, _empty_context(), 400, shared.attach(form, {}))
    choice = _voucher_choice(request.form)
    picked = request.form.get("pick", "")
    if picked:
        form.start.data, _, form.end.data = picked.partition("|")
    if picked or request.form.get("action") == "estimate":
        context = _estimate_context(form, resource, choice, keep_default=False)
        return _render_form(resource, form, context)
    data, errors = _read(form, resource, choice)
    if data is None:
        voucher_messages = errors.pop("voucher_id", [])
        left = shared.attach(form, errors)
        context = _empty_context(choice)
        context["vouchers"] = _vouchers_of(form)
        context["voucher_problems"] = voucher_messages
        return _render_form(resource, form, context, 422, left)
    if request.form.get("action") == "waitlist":
        return _join_waitlist(resource, form, data, choice)
    try:
        made = reservations.create_booking(db.session, actor, data)
    except Conflict as conflict:
        db.session.rollback()
        context = _empty_context(choice)
        context["vouchers"] = _vouchers_of(form)
        context["conflict"] = _conflict_view(conflict)
        return _render_form(resource, form, context, 409)
    except DomainError as error:
        db.session.rollback()
        found = shared.domain_errors(error)
        voucher_messages = found.pop("voucher_id", [])
        left = shared.attach(form, {k: v for k, v in found.items() if k != "resource_id"})
        left = found.get("resource_id", []) + left
        context = _empty_context(choice)
        context["vouchers"] = _vouchers_of(form)
        context["voucher_problems"] = voucher_messages
        if error.status in (401, 403):
            left = [shared.message_of(error)]
        return _render_form(resource, form, context, 422, left)
    booking = made if isinstance(made, Reservation) else made.made[0]
    if booking.status == S.APPROVED:
        flash(gettext("Booked. The booking is confirmed."), "success")
    else:
        flash(
            gettext("Your request is sent. The lab decides on it; you will be told by mail."),
            "success",
        )
    return redirect(url_for("bookings_pages.detail", reservation_id=booking.id))


def _join_waitlist(resource: Resource, form: BookingForm, data: dict, choice: str):
    """The time is taken: wait for it (the waiting list offers it when it frees up)."""
    try:
        entry = waitlist.join(db.session, current_actor(), data)
    except DomainError as error:
        db.session.rollback()
        waiting = error.details.get("waitlist_entry_id") if isinstance(error, Conflict) else None
        if waiting is not None:
            flash(shared.message_of(error), "info")
            return redirect(url_for("waitlist_pages.detail", entry_id=waiting))
        context = _empty_context(choice)
        context["vouchers"] = _vouchers_of(form)
        left = shared.attach(form, shared.domain_errors(error))
        return _render_form(resource, form, context, error.status, left)
    flash(
        gettext("You are on the waiting list. If the time becomes free it is kept for you."),
        "success",
    )
    return redirect(url_for("waitlist_pages.detail", entry_id=entry.id))


def _empty_context(choice: str = "") -> dict:
    return {
        "preview": None,
        "problems": [],
        "conflict": None,
        "voucher_choice": choice,
        "vouchers": [],
        "voucher_problems": [],
    }


@bp.get("/catalog/resources/<int:resource_id>/estimate")
@login_required
def estimate(resource_id: int):
    """The estimate panel alone, for the form's script (read only)."""
    resource = _bookable(resource_id)
    form = BookingForm(formdata=request.args, meta={"csrf": False})
    form.customer_org_id.choices = [
        SelectChoice(str(o.id), o.name) for o in customer_orgs(current_actor())
    ]
    context = _estimate_context(form, resource, _voucher_choice(request.args), keep_default=False)
    response = make_response(
        render_template("bookings/_estimate.html", resource=resource, **context)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- my bookings --------------------------------------------------------------------------


@bp.get("/bookings")
@login_required
def mine():
    actor = current_actor()
    when = "past" if request.args.get("when") == "past" else "upcoming"
    page = shared.page_number()
    items, total = dashboards.customer_bookings(
        db.session, actor, when, page=page, per_page=PER_PAGE
    )
    return render_template(
        "bookings/mine.html",
        items=items,
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        when=when,
        rated=dashboards.rated_ids(db.session, [r.id for r in items]),
        has_orgs=_books(actor),
    )


@bp.get("/reservations/<int:reservation_id>")
def reservation_link(reservation_id: int):
    """The address mails and notifications use."""
    return redirect(url_for("bookings_pages.detail", reservation_id=reservation_id))


def _confirmation(reservation: Reservation) -> OrderConfirmation | None:
    if reservation.voucher_id is None:
        return None
    return db.session.scalar(
        select(OrderConfirmation).where(OrderConfirmation.reservation_id == reservation.id)
    )


def detail_context(reservation: Reservation, **forms) -> dict:
    """What the booking page shows to its viewer, and which moves it offers."""
    actor = current_actor()
    now = clock.now()
    status = reservation.status
    owner_side = authz.can(actor, "reservation.rate", reservation)
    lab_side = authz.can(actor, "reservation.operate", reservation)
    decides = authz.can(actor, "reservation.decide", reservation)
    live = status in (S.REQUESTED, S.APPROVED)
    rating = dashboards.rating_of(db.session, reservation.id)
    voucher = reservation_voucher(reservation)
    snapshot = reservation.price_snapshot or {}
    may = {
        "cancel": live and authz.can(actor, "reservation.cancel", reservation),
        "reschedule": live and authz.can(actor, "reservation.reschedule", reservation),
        "rate": owner_side and status in (S.COMPLETED, S.SETTLED) and rating is None,
        "decide": decides and status == S.REQUESTED,
        "check_in": lab_side and status == S.APPROVED,
        "check_out": lab_side and status == S.IN_USE and reservation.actual_end is None,
        "complete": lab_side and status in (S.APPROVED, S.IN_USE),
        "no_show": lab_side and status == S.APPROVED and now >= reservation.start_at,
    }
    deadline = reservation.start_at - timedelta(minutes=reservation.resource.cancel_minutes)
    return {
        "r": reservation,
        "may": may,
        "lab_side": lab_side,
        "owner_side": owner_side,
        "rating": rating,
        "voucher": voucher,
        "estimate": snapshot.get("estimate"),
        "final": snapshot.get("final"),
        "confirmation": _confirmation(reservation),
        "cancel_deadline": deadline if not lab_side else None,
        "cancel_form": forms.get("cancel_form") or CancelForm(prefix="cancel"),
        "rating_form": forms.get("rating_form") or RatingForm(prefix="rating"),
        "reject_form": forms.get("reject_form") or RejectForm(prefix="reject"),
        "form_errors": forms.get("form_errors") or [],
    }


def reservation_voucher(reservation: Reservation):
    """The booking's voucher with its totals, if the viewer may see it."""
    if reservation.voucher_id is None:
        return None
    try:
        voucher = vouchers.get_voucher(db.session, current_actor(), reservation.voucher_id)
    except NotFound:
        return None
    return vouchers.with_totals(db.session, [voucher])[0]


def render_detail(reservation: Reservation, status: int = 200, **forms):
    return render_template("bookings/detail.html", **detail_context(reservation, **forms)), status


@bp.get("/bookings/<int:reservation_id>")
@login_required
def detail(reservation_id: int):
    reservation = reservations.get_reservation(db.session, current_actor(), reservation_id)
    return render_detail(reservation)


def _visible(reservation_id: int) -> Reservation:
    try:
        return reservations.get_reservation(db.session, current_actor(), reservation_id)
    except NotFound:
        abort(404)


@bp.post("/bookings/<int:reservation_id>/cancel")
@login_required
def cancel(reservation_id: int):
    reservation = _visible(reservation_id)
    form = CancelForm(prefix="cancel")
    if not form.validate_on_submit():
        return render_detail(reservation, 400, cancel_form=form)
    try:
        reservations.cancel(db.session, current_actor(), reservation_id, form.reason.data)
    except DomainError as error:
        db.session.rollback()
        reservation = _visible(reservation_id)
        left = shared.attach(form, shared.domain_errors(error))
        for message in left:
            form.reason.errors.append(message)
        return render_detail(reservation, 422, cancel_form=form)
    flash(gettext("The booking is cancelled."), "success")
    return redirect(url_for("bookings_pages.detail", reservation_id=reservation_id))


@bp.post("/bookings/<int:reservation_id>/rate")
@login_required
def rate(reservation_id: int):
    reservation = _visible(reservation_id)
    form = RatingForm(prefix="rating")
    if not form.validate_on_submit():
        return render_detail(reservation, 400, rating_form=form)
    score = shared.int_or_text(form.score.data)
    if not isinstance(score, int):
        form.score.errors.append(gettext("Choose a score from 1 to 5."))
        return render_detail(reservation, 422, rating_form=form)
    try:
        reservations.rate(db.session, current_actor(), reservation_id, score, form.comment.data)
    except DomainError as error:
        db.session.rollback()
        reservation = _visible(reservation_id)
        for message in shared.attach(form, shared.domain_errors(error)):
            form.score.errors.append(message)
        return render_detail(reservation, 422, rating_form=form)
    flash(gettext("Thank you for your rating."), "success")
    return redirect(url_for("bookings_pages.detail", reservation_id=reservation_id))


@bp.route("/bookings/<int:reservation_id>/reschedule", methods=["GET", "POST"])
@login_required
def reschedule(reservation_id: int):
    """Move a booking: the week view and a new time; refused like a new
    booking, with the nearest free slots on a conflict."""
    actor = current_actor()
    reservation = _visible(reservation_id)
    authz.require(actor, "reservation.reschedule", reservation)
    form = RescheduleForm()
    conflict = None
    status = 200
    left: list[str] = []
    if request.method == "GET":
        if request.args.get("start"):
            _prefill_move(form, reservation)
        else:
            form.start.data = shared.local_input(reservation.start_at)
            form.end.data = shared.local_input(reservation.end_at)
        form.units.data = form.units.data or str(reservation.units)
    elif form.validate_on_submit():
        picked = request.form.get("pick", "")
        if picked:
            form.start.data, _, form.end.data = picked.partition("|")
        else:
            moved, status, conflict, left = _move(form, reservation)
            if moved:
                flash(gettext("The booking is moved."), "success")
                return redirect(url_for("bookings_pages.detail", reservation_id=reservation_id))
            reservation = _visible(reservation_id)
    else:
        status = 400
    return render_template(
        "bookings/reschedule.html",
        r=reservation,
        resource=reservation.resource,
        form=form,
        conflict=conflict,
        form_errors=left,
        week_start=_week_start(form),
        offset=_offset(),
        default_minutes=default_minutes(reservation.resource),
    ), status


def _prefill_move(form: RescheduleForm, reservation: Reservation) -> None:
    proxy = BookingForm(formdata=None, meta={"csrf": False})
    _prefill(proxy, reservation.resource)
    form.start.data, form.end.data = proxy.start.data, proxy.end.data


def _move(form: RescheduleForm, reservation: Reservation):
    payload: dict[str, Any] = {
        "start": (form.start.data or "").strip(),
        "end": (form.end.data or "").strip(),
    }
    units = shared.int_or_text(form.units.data)
    if units is not None and reservation.resource.capacity > 1:
        payload["units"] = units
    try:
        data = schemas.ReservationRescheduleSchema().load(payload)
    except ma.ValidationError as error:
        return False, 422, None, shared.attach(form, shared.schema_errors(error))
    try:
        reservations.reschedule(
            db.session,
            current_actor(),
            reservation.id,
            data["start"],
            data["end"],
            data.get("units"),
        )
    except Conflict as conflict:
        db.session.rollback()
        return False, 409, _conflict_view(conflict), []
    except DomainError as error:
        db.session.rollback()
        return False, 422, None, shared.attach(form, shared.domain_errors(error))
    return True, 302, None, []
