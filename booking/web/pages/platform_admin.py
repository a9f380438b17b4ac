"""The platform admin's start page (``/admin``): what waits (organisations to
confirm, mails not sent) and the way to the pages of the other areas
(organisations, users, holidays, the outbox)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from booking.extensions import db
from booking.services import dashboards
from booking.web.auth import current_actor

bp = Blueprint("platform_admin_pages", __name__)

NAV: list = [("platform_admin_pages.home", _l("Administration"), lambda a: a.platform_admin)]


@bp.get("/admin")
@login_required
def home():
    overview = dashboards.platform_overview(db.session, current_actor())
    return render_template("platform_admin/home.html", o=overview)
