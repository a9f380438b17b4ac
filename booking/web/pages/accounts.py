"""Account pages: sign in and out, enterprise sign-up, the user's own
account (profile, language, password, organisations), and the platform
admin's organisation and user lists."""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    abort,
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
from flask_login import login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import (
    EmailField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from booking import authz
from booking.domain.errors import ValidationFailed
from booking.domain.organizations import regions
from booking.extensions import db, limiter
from booking.models.accounts import Organization, OrgKind, OrgStatus, User
from booking.services import accounts
from booking.web.auth import client_ip, current_actor, throttle_policy

bp = Blueprint("accounts_pages", __name__)

NAV: list = [
    (
        "accounts_pages.organizations",
        _l("Organisations"),
        lambda actor: actor.platform_admin or bool(actor.bureau_regions()),
    ),
    ("accounts_pages.users", _l("Users"), lambda actor: actor.platform_admin),
]


class SignInForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=512)])


def region_choices() -> list[SelectChoice]:
    """Shanxi's cities and their counties, grouped by city, in code order."""
    table = regions()
    english = _english()
    choices = [SelectChoice("", gettext("Choose a region"))]
    for code in sorted(table):
        region = table[code]
        if not code.startswith("14") or region.level == "province":
            continue
        city = table.get(code[:4] + "00", region)
        group = city.name_en if english else city.name_zh
        name = region.name_en if english else region.name_zh
        choices.append(SelectChoice(code, f"{name} ({code})", optgroup=group))
    return choices


def _english() -> bool:
    from flask_babel import get_locale

    return str(get_locale() or "").startswith("en")


class SignUpForm(FlaskForm):
    org_name = StringField(_l("Company name"), validators=[DataRequired(), Length(min=2, max=200)])
    uscc = StringField(
        _l("Unified social credit code"), validators=[DataRequired(), Length(min=18, max=20)]
    )
    region = SelectField(_l("Region"), validators=[DataRequired()], choices=[])
    size_class = SelectField(
        _l("Size"),
        choices=[
            SelectChoice("micro", _l("Micro")),
            SelectChoice("small", _l("Small")),
            SelectChoice("medium", _l("Medium")),
            SelectChoice("large", _l("Large")),
        ],
    )
    tech_sme_number = StringField(
        _l("Tech-SME registration number (科技型中小企业入库登记编号)"),
        validators=[Optional(), Length(max=40)],
    )
    tech_sme_year = IntegerField(
        _l("Year of that registration"), validators=[Optional(), NumberRange(2017, 2100)]
    )
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=120)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])


class ProfileForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=120)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    locale = SelectField(
        _l("Language"), choices=[SelectChoice("zh_CN", "中文"), SelectChoice("en", "English")]
    )


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=256)])


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("home.index")


def _attach_errors(form: FlaskForm, error: ValidationFailed) -> None:
    for field, messages in error.fields.items():
        target = getattr(form, field, None)
        if target is not None:
            target.errors = list(target.errors) + [gettext(m) for m in messages]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["SIGN_IN_RATE_LIMIT"], methods=["POST"])
def login():
    form = SignInForm()
    status = 200
    if form.validate_on_submit():
        result = accounts.sign_in(
            db.session, form.email.data, form.password.data, client_ip(), throttle_policy()
        )
        if result.user is not None:
            # A fresh session at sign-in: nothing planted before survives it.
            locale = session.get("locale")
            session.clear()
            if locale:
                session["locale"] = locale
            login_user(result.user)
            return redirect(_safe_next(request.args.get("next")))
        db.session.commit()
        if result.locked_until is not None:
            form.password.errors.append(
                gettext("Too many failed sign-ins. Try again in a few minutes.")
            )
            status = 429
        else:
            if result.delay_seconds:
                time.sleep(result.delay_seconds)
            form.password.errors.append(gettext("The email or password is wrong."))
            status = 401
    elif request.method == "POST":
        status = 422
    return render_template("accounts/login.html", form=form), status


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("home.index"))


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["SIGN_IN_RATE_LIMIT"], methods=["POST"])
def signup():
    form = SignUpForm()
    form.region.choices = region_choices()
    status = 200
    if form.validate_on_submit():
        try:
            user = accounts.sign_up_enterprise(
                db.session, {**form.data, "locale": session.get("locale", "zh_CN")}, client_ip()
            )
        except ValidationFailed as error:
            db.session.rollback()
            _attach_errors(form, error)
            status = 422
        else:
            login_user(user)
            flash(
                gettext(
                    "Thank you. Your enterprise is registered and waits for the platform's "
                    "confirmation; you can book as soon as it is confirmed."
                ),
                "success",
            )
            return redirect(url_for("accounts_pages.account"))
    elif request.method == "POST":
        status = 422
    return render_template("accounts/signup.html", form=form), status


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    actor = current_actor()
    user = accounts.load_user(db.session, actor.user_id)
    profile = ProfileForm(obj=user, prefix="profile")
    password = PasswordForm(prefix="password")
    status = 200
    if request.method == "POST" and request.form.get("form") == "profile":
        if profile.validate_on_submit():
            accounts.update_profile(db.session, actor, user, profile.data)
            session["locale"] = user.locale
            flash(gettext("Your details are saved."), "success")
            return redirect(url_for("accounts_pages.account"))
        status = 422
    elif request.method == "POST" and request.form.get("form") == "password":
        if password.validate_on_submit():
            try:
                accounts.change_password(
                    db.session,
                    actor,
                    user,
                    password.current_password.data,
                    password.new_password.data,
                )
            except ValidationFailed as error:
                db.session.rollback()
                renamed = {
                    ("new_password" if k == "password" else k): v for k, v in error.fields.items()
                }
                _attach_errors(password, ValidationFailed(renamed))
                status = 422
            else:
                login_user(user)  # the session of the one who changed it lives on
                flash(gettext("Your password is changed."), "success")
                return redirect(url_for("accounts_pages.account"))
        else:
            status = 422
    return render_template(
        "accounts/account.html", user=user, profile=profile, password=password
    ), status


@bp.get("/admin/organizations")
@login_required
def organizations():
    actor = current_actor()
    authz.require(actor, "organization.list")
    status = request.args.get("status") or None
    if status not in (None, "pending", "active", "suspended"):
        status = None
    stmt = accounts.list_organizations(
        db.session, actor, status=status, q=request.args.get("q") or None
    )
    rows = db.session.scalars(stmt.limit(500)).all()
    pending = db.session.scalar(
        select(func.count())
        .select_from(Organization)
        .where(Organization.status == OrgStatus.PENDING)
    )
    return render_template(
        "accounts/organizations.html",
        organizations=rows,
        pending=pending,
        status=status,
        can_confirm=actor.platform_admin,
    )


@bp.post("/admin/organizations/<int:org_id>/<action>")
@login_required
def organization_action(org_id: int, action: str):
    actor = current_actor()
    org = db.session.get(Organization, org_id)
    if org is None or not authz.can(actor, "organization.view", org):
        abort(404)
    if action == "confirm":
        accounts.confirm_organization(db.session, actor, org)
        flash(gettext("%(name)s is confirmed.", name=org.name), "success")
    elif action == "suspend":
        accounts.set_organization_status(db.session, actor, org, OrgStatus.SUSPENDED)
        flash(gettext("%(name)s is suspended.", name=org.name), "success")
    elif action == "reactivate":
        accounts.set_organization_status(db.session, actor, org, OrgStatus.ACTIVE)
        flash(gettext("%(name)s is active again.", name=org.name), "success")
    else:
        abort(404)
    return redirect(url_for("accounts_pages.organizations", status=request.args.get("status")))


@bp.get("/admin/users")
@login_required
def users():
    actor = current_actor()
    authz.require(actor, "user.list")
    q = (request.args.get("q") or "").strip()
    stmt = select(User).order_by(User.id.desc()).limit(500)
    if q:
        stmt = stmt.where(User.email.ilike(f"%{q}%") | User.name.ilike(f"%{q}%"))
    return render_template("accounts/users.html", users=db.session.scalars(stmt).all(), q=q)


def org_kind_label(kind: OrgKind) -> str:
    return {
        OrgKind.ENTERPRISE: gettext("Enterprise"),
        OrgKind.PROVIDER: gettext("Service provider"),
        OrgKind.BUREAU: gettext("Science bureau"),
        OrgKind.PLATFORM: gettext("Platform"),
    }[OrgKind(kind)]


@bp.app_template_filter("org_kind")
def _org_kind_filter(kind) -> str:
    return org_kind_label(kind)
