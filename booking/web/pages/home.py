"""The front page and the language switch."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_login import current_user

from booking.extensions import db
from booking.i18n import normalise_locale

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    return render_template("home.html")


@bp.post("/language")
def set_language():
    locale = normalise_locale(request.form.get("locale"))
    session["locale"] = locale
    if current_user.is_authenticated:
        current_user.locale = locale
        db.session.flush()
    target = request.form.get("next") or url_for("home.index")
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("home.index")
    return redirect(target)


@bp.get("/healthz")
def healthz():
    db.session.execute(db.text("SELECT 1"))
    return {"status": "ok"}
