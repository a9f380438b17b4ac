"""The waiting list (候补) on the web: the page an offer's mail links to.

| path | what |
| --- | --- |
| ``GET /waitlist`` | the caller's open waiting-list entries |
| ``GET /waitlist/<id>`` | one entry: the wanted time, its state, an open offer's deadline |
| ``POST /waitlist/<id>/accept`` | take the offered slot (booked through the normal rules) |
| ``POST /waitlist/<id>/decline`` | let the offer go to the next in line |
| ``POST /waitlist/<id>/leave`` | stop waiting |

An entry the caller may not see answers 404, whoever asks.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm

from booking import authz
from booking.domain import clock
from booking.domain.errors import DomainError, NotFound
from booking.extensions import db
from booking.models.catalog import Resource
from booking.models.reservations import WaitlistEntry, WaitlistStatus
from booking.services import waitlist
from booking.web.auth import current_actor
from booking.web.pages import shared

bp = Blueprint("waitlist_pages", __name__)

NAV: list = []

W = WaitlistStatus

#: The states of a waiting-list entry, as the pages name them.
STATUS = {
    "waiting": _l("Waiting"),
    "offered": _l("Offered to you"),
    "accepted": _l("Booked"),
    "declined": _l("Declined"),
    "expired": _l("Expired"),
    "cancelled": _l("Left the list"),
}


class ActionForm(FlaskForm):
    """Only the CSRF token: the buttons say what to do."""


def _entry(entry_id: int) -> WaitlistEntry:
    try:
        return waitlist.get_entry(db.session, current_actor(), entry_id)
    except NotFound:
        abort(404)


def _view(entry: WaitlistEntry) -> dict:
    now = clock.now()
    actor = current_actor()
    responds = authz.can(actor, "waitlist.respond", entry)
    open_offer = entry.status == W.OFFERED and (
        entry.offer_expires_at is None or entry.offer_expires_at > now
    )
    return {
        "entry": entry,
        "resource": db.session.get(Resource, entry.resource_id),
        "status_label": STATUS[entry.status.value],
        "may": {
            "accept": responds and open_offer,
            "decline": responds and open_offer,
            "leave": responds and entry.status in (W.WAITING, W.OFFERED),
        },
    }


@bp.get("/waitlist")
@login_required
def index():
    entries = waitlist.list_entries(db.session, current_actor())
    resources = {
        r.id: r
        for r in db.session.query(Resource).filter(
            Resource.id.in_({e.resource_id for e in entries})
        )
    }
    return render_template(
        "waitlist/index.html", entries=entries, resources=resources, status_labels=STATUS
    )


@bp.get("/waitlist/<int:entry_id>")
@login_required
def detail(entry_id: int):
    return render_template("waitlist/detail.html", form=ActionForm(), **_view(_entry(entry_id)))


def _refused(entry_id: int, error: DomainError):
    db.session.rollback()
    entry = _entry(entry_id)
    messages = [m for ms in shared.domain_errors(error).values() for m in ms]
    return render_template(
        "waitlist/detail.html", form=ActionForm(), form_errors=messages, **_view(entry)
    ), error.status


def _checked(entry_id: int) -> WaitlistEntry:
    entry = _entry(entry_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    return entry


@bp.post("/waitlist/<int:entry_id>/accept")
@login_required
def accept(entry_id: int):
    _checked(entry_id)
    try:
        reservation = waitlist.accept(db.session, current_actor(), entry_id)
    except DomainError as error:
        return _refused(entry_id, error)
    flash(gettext("The offered time is booked for you."), "success")
    return redirect(url_for("bookings_pages.detail", reservation_id=reservation.id))


@bp.post("/waitlist/<int:entry_id>/decline")
@login_required
def decline(entry_id: int):
    _checked(entry_id)
    try:
        waitlist.decline(db.session, current_actor(), entry_id)
    except DomainError as error:
        return _refused(entry_id, error)
    flash(gettext("You declined the offer; the time goes to the next in line."), "success")
    return redirect(url_for("waitlist_pages.detail", entry_id=entry_id))


@bp.post("/waitlist/<int:entry_id>/leave")
@login_required
def leave(entry_id: int):
    _checked(entry_id)
    try:
        waitlist.leave(db.session, current_actor(), entry_id)
    except DomainError as error:
        return _refused(entry_id, error)
    flash(gettext("You left the waiting list."), "success")
    return redirect(url_for("waitlist_pages.detail", entry_id=entry_id))
