"""Pages to reset a forgotten password: ask for a link by email
(``/password/forgot``, the same answer whether or not the address has an
account), and set a new password with the link (``/password/reset/<token>``).
The rules live in ``booking.services.password_reset``."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email, Length

from booking.domain.errors import ValidationFailed
from booking.extensions import db, limiter
from booking.services import password_reset as service
from booking.web.auth import client_ip

bp = Blueprint("password_reset_pages", __name__)

NAV: list = []


class ForgotForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=254)])


class ResetForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField(_l("New password again"), validators=[DataRequired(), Length(max=256)])


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["SIGN_IN_RATE_LIMIT"], methods=["POST"])
def forgot():
    form = ForgotForm()
    if form.validate_on_submit():
        service.request_reset(
            db.session, form.email.data, client_ip(), current_app.config["BASE_URL"]
        )
        return render_template("password_reset/sent.html", email=form.email.data)
    status = 422 if request.method == "POST" else 200
    return render_template("password_reset/forgot.html", form=form), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["SIGN_IN_RATE_LIMIT"], methods=["POST"])
def reset(token: str):
    if service.check_token(db.session, token) is None:
        return render_template("password_reset/invalid.html"), 410
    form = ResetForm()
    status = 200
    if form.validate_on_submit():
        if form.password.data != form.confirm.data:
            form.confirm.errors.append(gettext("The two passwords differ."))
            return render_template("password_reset/reset.html", form=form), 422
        try:
            service.reset_password(db.session, token, form.password.data, client_ip())
        except ValidationFailed as error:
            db.session.rollback()
            if "token" in error.fields:
                return render_template("password_reset/invalid.html"), 410
            form.password.errors.extend(gettext(m) for m in error.fields.get("password", []))
            return render_template("password_reset/reset.html", form=form), 422
        # Every session ended with the reset (session_version); this one too.
        locale = session.get("locale")
        logout_user()
        session.clear()
        if locale:
            session["locale"] = locale
        flash(gettext("Your password is changed. Sign in with the new one."), "success")
        return redirect(url_for("accounts_pages.login"))
    if request.method == "POST":
        status = 422
    return render_template("password_reset/reset.html", form=form), status
