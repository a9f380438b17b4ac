"""Pages of the approvals area: the lab's approval queue (oldest request
first, filters by resource and dates, approve or reject the ticked requests
at once, a reason required to reject) and a resource's named approvers.

Deciding from the page uses the service's default: what can be decided is
decided, and every request that could not be is named with its reason.
"""

from __future__ import annotations

from datetime import date, datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectMultipleField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional

from booking.authz import Actor
from booking.domain import clock
from booking.domain.errors import Conflict, DomainError, RuleViolation, ValidationFailed
from booking.domain.money import format_money
from booking.extensions import db
from booking.services import approvals as service
from booking.web.auth import current_actor

bp = Blueprint("approvals_pages", __name__)

PER_PAGE = 50


def _sees_queue(actor: Actor) -> bool:
    """Lab admins, and lab members named approver of a resource."""
    if actor.org_ids("provider", "admin"):
        return True
    return bool(actor.org_ids("provider")) and service.is_named_approver(db.session, actor.user_id)


NAV: list = [("approvals_pages.queue", _l("Approvals"), _sees_queue)]


class DecideForm(FlaskForm):
    ids = SelectMultipleField(_l("Requests"), coerce=int, validate_choice=False)
    reason = TextAreaField(_l("Reason for rejection"), validators=[Optional(), Length(max=2000)])


class ApproverForm(FlaskForm):
    email = EmailField(
        _l("Email of a member of the lab"),
        validators=[DataRequired(), Email(), Length(max=254)],
    )


def english() -> bool:
    return str(get_locale() or "").startswith("en")


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if value is None else value.astimezone(clock.platform_tz()).strftime(fmt)


def yuan(value) -> str:
    return "" if value is None else f"¥{format_money(value)}"


def name_of(obj) -> str:
    zh, en = getattr(obj, "name_zh", "") or "", getattr(obj, "name_en", "") or ""
    return (en or zh) if english() else (zh or en)


def say(message_id: str, params: dict | None) -> str:
    """A message id with its parameters, in the reader's language."""
    return gettext(message_id, **params) if params else gettext(message_id)


def message_of(error: DomainError) -> str:
    return say(error.message, error.params)


def problem_text(problem: dict) -> str:
    """Why a request's voucher cannot pay, in the reader's language."""
    return say(problem["message"], problem.get("params"))


def _int_arg(name: str) -> int | None:
    try:
        return int(request.args[name]) if request.args.get(name) else None
    except ValueError:
        return None


def _day_arg(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args[name]) if request.args.get(name) else None
    except ValueError:
        return None


def _filters() -> tuple[service.QueueFilters, dict]:
    """The queue's filters from the query string (bad values are ignored),
    and the values to keep in the form and in links."""
    tz = clock.platform_tz()
    day_from, day_to = _day_arg("from"), _day_arg("to")
    try:
        page = max(1, min(int(request.args.get("page", 1)), 100_000))
    except ValueError:
        page = 1
    filters = service.QueueFilters(
        resource_id=_int_arg("resource_id"),
        start=clock.local_day_bounds(day_from, tz)[0] if day_from else None,
        end=clock.local_day_bounds(day_to, tz)[1] if day_to else None,
        page=page,
        per_page=PER_PAGE,
    )
    kept = {
        "resource_id": filters.resource_id or "",
        "from": day_from.isoformat() if day_from else "",
        "to": day_to.isoformat() if day_to else "",
    }
    return filters, kept


def _render_queue(form: DecideForm, status: int = 200):
    actor = current_actor()
    filters, kept = _filters()
    items, total = service.approval_queue(db.session, actor, filters)
    return render_template(
        "approvals/queue.html",
        form=form,
        items=items,
        total=total,
        page=filters.page,
        pages=max(1, -(-total // PER_PAGE)),
        kept=kept,
        query={k: v for k, v in kept.items() if v},
        selected=set(form.ids.data or []),
        resources=service.decidable_resources(db.session, actor),
        local_time=local_time,
        yuan=yuan,
        name_of=name_of,
        problem_text=problem_text,
    ), status


@bp.get("/approvals")
@login_required
def queue():
    return _render_queue(DecideForm())


def _flash_outcomes(outcomes: list[service.Outcome]) -> None:
    approved = sum(o.outcome == "approved" for o in outcomes)
    rejected = sum(o.outcome == "rejected" for o in outcomes)
    if approved or rejected:
        flash(
            gettext(
                "%(approved)s approved, %(rejected)s rejected.",
                approved=approved,
                rejected=rejected,
            ),
            "success",
        )
    for outcome in outcomes:
        if outcome.error is not None:
            flash(
                gettext(
                    "Request %(id)s was not decided: %(why)s",
                    id=outcome.id,
                    why=message_of(outcome.error),
                ),
                "error",
            )


@bp.post("/approvals/decide")
@login_required
def decide():
    form = DecideForm()
    action = request.form.get("action")
    if not form.validate_on_submit() or action not in (service.APPROVE, service.REJECT):
        return _render_queue(form, 422)
    ids = list(dict.fromkeys(form.ids.data or []))
    reason = (form.reason.data or "").strip()
    batch = (
        service.Batch(approve=ids)
        if action == service.APPROVE
        else service.Batch(reject=[(i, reason) for i in ids])
    )
    try:
        outcomes = service.decide(db.session, current_actor(), batch)
    except ValidationFailed as error:
        db.session.rollback()
        for name, messages in error.fields.items():
            target = form.reason if name == "reason" else form.ids
            target.errors = list(target.errors) + [gettext(m) for m in messages]
        return _render_queue(form, 422)
    _flash_outcomes(outcomes)
    return redirect(url_for(".queue", **{k: v for k, v in _filters()[1].items() if v}))


# --- a resource's named approvers --------------------------------------------------------


def _render_approvers(resource_id: int, form: ApproverForm, status: int = 200):
    from booking.models.catalog import Resource

    actor = current_actor()
    approvers = service.list_approvers(db.session, actor, resource_id)
    resource = db.session.get(Resource, resource_id)
    return render_template(
        "approvals/approvers.html",
        resource=resource,
        approvers=approvers,
        form=form,
        can_manage=actor.lab_admin_of(resource.provider_id),
        name_of=name_of,
    ), status


@bp.get("/lab/resources/<int:resource_id>/approvers")
@login_required
def approvers(resource_id: int):
    return _render_approvers(resource_id, ApproverForm())


@bp.post("/lab/resources/<int:resource_id>/approvers")
@login_required
def add_approver(resource_id: int):
    form = ApproverForm()
    if not form.validate_on_submit():
        return _render_approvers(resource_id, form, 422)
    try:
        named = service.name_approver(
            db.session, current_actor(), resource_id, email=form.email.data
        )
    except (ValidationFailed, RuleViolation, Conflict) as error:
        db.session.rollback()
        if isinstance(error, ValidationFailed):
            messages = [gettext(m) for ms in error.fields.values() for m in ms]
        else:
            messages = [message_of(error)]
        form.email.errors = [*form.email.errors, *messages]
        return _render_approvers(resource_id, form, error.status)
    flash(gettext("%(name)s now decides this resource's requests.", name=named.name), "success")
    return redirect(url_for(".approvers", resource_id=resource_id))


@bp.post("/lab/resources/<int:resource_id>/approvers/<int:user_id>/remove")
@login_required
def remove_approver(resource_id: int, user_id: int):
    # CSRFProtect has checked the form's token before the view runs.
    service.remove_approver(db.session, current_actor(), resource_id, user_id)
    flash(gettext("The approver is removed."), "success")
    return redirect(url_for(".approvers", resource_id=resource_id))
