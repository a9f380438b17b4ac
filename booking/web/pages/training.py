"""Pages of training and qualification: a lab's training register (who is
trained on which of its resources or categories, by whom, until when), the
form to grant a training, and a revoke button per line. For the lab's admins.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, EmailField, SelectChoice, SelectField
from wtforms.validators import DataRequired, Email, Length, Optional

from booking.domain import clock
from booking.domain.errors import DomainError, Forbidden, ValidationFailed
from booking.extensions import db
from booking.models.accounts import Organization
from booking.models.catalog import Category, Resource, ResourceStatus
from booking.services import training as service
from booking.web.auth import current_actor
from booking.web.pages.approvals import local_time, message_of, name_of

bp = Blueprint("training_pages", __name__)

NAV: list = [
    (
        "training_pages.register",
        _l("Training register"),
        lambda actor: bool(actor.org_ids("provider", "admin")),
    )
]

PER_PAGE = 50
STATE_LABELS = {
    "current": _l("Current"),
    "expired": _l("Expired"),
    "revoked": _l("Revoked"),
    "all": _l("All"),
}


def optional_int(value) -> int | None:
    if value in (None, ""):
        return None
    return int(value)


class GrantForm(FlaskForm):
    email = EmailField(
        _l("Email of the trained user"), validators=[DataRequired(), Email(), Length(max=254)]
    )
    resource_id = SelectField(_l("Resource"), coerce=optional_int, validate_choice=False)
    category_id = SelectField(_l("or a whole category"), coerce=optional_int, validate_choice=False)
    valid_until = DateField(_l("Valid until (last day)"), validators=[Optional()])


def _labs() -> list[Organization]:
    actor = current_actor()
    ids = sorted(actor.org_ids("provider", "admin"))
    if not ids:
        raise Forbidden(gettext("Only a lab's administrators keep its training register."))
    return list(
        db.session.scalars(
            select(Organization).where(Organization.id.in_(ids)).order_by(Organization.id)
        )
    )


def _lab_id(labs: list[Organization]) -> int:
    """The lab whose register is shown: ``?lab=`` among the actor's, else the first."""
    try:
        wanted = int(request.args.get("lab", ""))
    except ValueError:
        wanted = None
    ids = [lab.id for lab in labs]
    return wanted if wanted in ids else ids[0]


def _choices(form: GrantForm, lab_id: int) -> None:
    resources = db.session.scalars(
        select(Resource)
        .where(Resource.provider_id == lab_id, Resource.status != ResourceStatus.RETIRED)
        .order_by(Resource.name_zh, Resource.id)
    ).all()
    form.resource_id.choices = [SelectChoice("", gettext("— choose a resource —"))] + [
        SelectChoice(str(r.id), name_of(r)) for r in resources
    ]
    category_ids = service.lab_categories(db.session, lab_id)
    categories = db.session.scalars(
        select(Category).where(Category.id.in_(category_ids)).order_by(Category.code)
    ).all()
    form.category_id.choices = [SelectChoice("", gettext("— or choose a category —"))] + [
        SelectChoice(str(c.id), f"{c.code} {name_of(c)}") for c in categories
    ]


def _attach(form: GrantForm, error: DomainError) -> None:
    """A refusal's message beside the field it concerns."""
    aliases = {"user_id": "email", "provider_id": "resource_id"}
    if isinstance(error, ValidationFailed):
        pairs = [(name, gettext(m)) for name, ms in error.fields.items() for m in ms]
    else:
        pairs = [(error.details.get("field") or "resource_id", message_of(error))]
    for name, message in pairs:
        target = getattr(form, aliases.get(name, name), None) or form.resource_id
        if message not in target.errors:
            target.errors = [*target.errors, message]


def _render(form: GrantForm, labs: list[Organization], lab_id: int, status: int = 200):
    state = request.args.get("state", "current")
    if state not in (*service.STATES, "all"):
        state = "current"
    q = (request.args.get("q") or "").strip()[:100]
    try:
        page = max(1, min(int(request.args.get("page", 1)), 100_000))
    except ValueError:
        page = 1
    filters = service.RegisterFilters(
        provider_id=lab_id,
        state=None if state == "all" else state,
        q=q or None,
        page=page,
        per_page=PER_PAGE,
    )
    entries, total = service.list_register(db.session, current_actor(), filters)
    return render_template(
        "training/register.html",
        form=form,
        labs=labs,
        lab_id=lab_id,
        entries=entries,
        total=total,
        state=state,
        q=q,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        state_labels=STATE_LABELS,
        local_time=local_time,
        name_of=name_of,
    ), status


@bp.get("/training")
@login_required
def register():
    labs = _labs()
    lab_id = _lab_id(labs)
    form = GrantForm()
    _choices(form, lab_id)
    return _render(form, labs, lab_id)


@bp.post("/training")
@login_required
def grant():
    labs = _labs()
    lab_id = _lab_id(labs)
    form = GrantForm()
    _choices(form, lab_id)
    if not form.validate_on_submit():
        return _render(form, labs, lab_id, 422)
    day = form.valid_until.data
    data = {
        "email": form.email.data,
        "resource_id": form.resource_id.data,
        "category_id": form.category_id.data,
        "provider_id": lab_id,
        "valid_until": clock.local_end_of_day(day, clock.platform_tz()) if day else None,
    }
    try:
        record = service.grant_training(db.session, current_actor(), data)
    except (ValidationFailed, DomainError) as error:
        if error.status not in (404, 409, 422):
            raise
        db.session.rollback()
        _attach(form, error)
        return _render(form, labs, lab_id, 422)
    entry = service.entry_for(db.session, record)
    flash(
        gettext(
            "%(user)s is trained on %(what)s.",
            user=entry.user.name,
            what=name_of(entry.resource or entry.category),
        ),
        "success",
    )
    return redirect(url_for(".register", lab=lab_id if len(labs) > 1 else None))


@bp.post("/training/<int:record_id>/revoke")
@login_required
def revoke(record_id: int):
    # CSRFProtect has checked the form's token before the view runs.
    record = service.revoke_training(db.session, current_actor(), record_id)
    entry = service.entry_for(db.session, record)
    flash(gettext("The training of %(user)s is revoked.", user=entry.user.name), "success")
    return redirect(
        url_for(
            ".register",
            lab=request.args.get("lab") or None,
            state=request.args.get("state") or None,
        )
    )
