"""Pages of the vouchers area: the printable order confirmation (服务确认单)
of a voucher booking, which the customer and the lab confirm online. The
other voucher pages come with the web-pages work."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import HiddenField

from booking import authz
from booking.extensions import db
from booking.services import claims
from booking.web.auth import current_actor

bp = Blueprint("vouchers_pages", __name__)

# (endpoint, label) pairs shown in the main navigation; labels lazy_gettext'd.
NAV: list = []


class ConfirmForm(FlaskForm):
    side = HiddenField()


@bp.get("/vouchers/confirmations/<int:reservation_id>")
@login_required
def confirmation(reservation_id: int):
    """The printable confirmation, with a confirm button for a side that has
    not confirmed yet and may."""
    actor = current_actor()
    record = claims.get_confirmation(db.session, actor, reservation_id)
    can_confirm = {
        side: getattr(record, f"{side}_confirmed_at") is None
        and authz.can(actor, f"confirmation.confirm_{side}", record)
        for side in ("customer", "provider")
    }
    return render_template(
        "vouchers/confirmation.html",
        confirmation=record,
        c=record.content,
        can_confirm=can_confirm,
        form=ConfirmForm(),
    )


@bp.post("/vouchers/confirmations/<int:reservation_id>/confirm")
@login_required
def confirm(reservation_id: int):
    form = ConfirmForm()
    if form.validate_on_submit():
        side = form.side.data if form.side.data in ("customer", "provider") else None
        claims.confirm_order(db.session, current_actor(), reservation_id, side)
        flash(gettext("The service is confirmed."), "success")
    return redirect(url_for("vouchers_pages.confirmation", reservation_id=reservation_id))
