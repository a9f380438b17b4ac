"""Pages of the notifications area: the inbox, mail preferences and, for
platform admins, the outbox (every mail the platform wrote; with no
``SMTP_URL`` the only place mails can be read).

The unread count reaches every page through ``unread_notifications()`` in
the template context (a callable, so only pages that show it run the query).
"""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from wtforms import BooleanField

from booking.domain.errors import NotFound
from booking.extensions import db
from booking.models.notifications import MailStatus, NotificationKind
from booking.services import notifications
from booking.web.auth import current_actor

bp = Blueprint("notifications_pages", __name__)
log = logging.getLogger(__name__)

# (endpoint, label, shown-to) entries of the main navigation; the inbox link
# itself sits in the header with its unread count.
NAV: list = [
    ("notifications_pages.outbox", _l("Outbox"), lambda actor: actor.platform_admin),
]

PER_PAGE = 50

STATUS_LABELS = {
    MailStatus.PENDING: _l("pending"),
    MailStatus.SENT: _l("sent"),
    MailStatus.FAILED: _l("failed"),
    MailStatus.KEPT: _l("kept (no mail server)"),
}


@bp.app_context_processor
def inbox_context() -> dict:
    def unread_notifications() -> int:
        actor = current_actor()
        if not actor.authenticated:
            return 0
        try:
            return notifications.unread_count(db.session, actor.user_id)
        except SQLAlchemyError:
            # The page may be the error page of a database outage: it must
            # still render, without the count.
            log.warning("unread count unavailable", exc_info=True)
            return 0

    return {"unread_notifications": unread_notifications}


def reader_locale() -> str:
    return "en" if str(get_locale() or "zh_CN").startswith("en") else "zh_CN"


def when(value) -> str:
    return notifications.format_instant(value, reader_locale()) if value else ""


def page_number() -> int:
    try:
        return max(1, min(int(request.args.get("page", 1)), 100_000))
    except ValueError:
        return 1


def served_local_path(target: str | None) -> str | None:
    """``target`` if it is a path of this platform that a page answers (a
    notification may point at a page another area has not built yet)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    try:
        current_app.url_map.bind("localhost").match(target.split("?", 1)[0], method="GET")
    except HTTPException:
        return None
    return target


# --- the inbox ---------------------------------------------------------------------


@bp.get("/notifications")
@login_required
def inbox():
    actor = current_actor()
    unread_only = request.args.get("unread") == "1"
    page = page_number()
    items, total = notifications.list_notifications(
        db.session, actor, unread_only=unread_only, page=page, per_page=PER_PAGE
    )
    locale = reader_locale()
    rows = [(n, *notifications.render_notification(n, locale)) for n in items]
    return render_template(
        "notifications/inbox.html",
        when=when,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        unread_only=unread_only,
        unread=notifications.unread_count(db.session, actor.user_id),
        can_see_outbox=actor.platform_admin,
    )


@bp.post("/notifications/<int:notification_id>/open")
@login_required
def open_notification(notification_id: int):
    """Mark read and go where the notification points."""
    notification = notifications.mark_read(db.session, current_actor(), notification_id)
    return redirect(served_local_path(notification.link) or url_for(".inbox"))


@bp.post("/notifications/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int):
    notifications.mark_read(db.session, current_actor(), notification_id)
    return redirect(url_for(".inbox", unread=request.args.get("unread")))


@bp.post("/notifications/read-all")
@login_required
def mark_all_read():
    count = notifications.mark_all_read(db.session, current_actor())
    if count:
        flash(gettext("Marked %(count)s as read.", count=count), "info")
    return redirect(url_for(".inbox"))


# --- preferences ----------------------------------------------------------------------


def preferences_form(current: dict[NotificationKind, bool]) -> FlaskForm:
    fields = {
        kind.value: BooleanField(_l(notifications.KIND_LABELS[kind]), default=current[kind])
        for kind in NotificationKind
    }
    form_class = type("PreferencesForm", (FlaskForm,), fields)
    return form_class()


@bp.route("/notifications/preferences", methods=["GET", "POST"])
@login_required
def preferences():
    actor = current_actor()
    current = notifications.get_preferences(db.session, actor)
    form = preferences_form(current)
    if form.validate_on_submit():
        chosen = {kind.value: bool(form[kind.value].data) for kind in NotificationKind}
        notifications.set_preferences(db.session, actor, chosen)
        flash(gettext("Your mail preferences are saved."), "info")
        return redirect(url_for(".preferences"))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "notifications/preferences.html", form=form, kinds=list(NotificationKind)
    ), status


# --- the outbox (platform admins) -----------------------------------------------------


@bp.get("/outbox")
@login_required
def outbox():
    status = request.args.get("status") or None
    if status not in (None, *[s.value for s in MailStatus]):
        status = None
    page = page_number()
    mails, total = notifications.list_outbox(
        db.session, current_actor(), status=status, page=page, per_page=PER_PAGE
    )
    return render_template(
        "notifications/outbox.html",
        when=when,
        mails=mails,
        subjects={mail.id: notifications.mail_subject(mail) for mail in mails},
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        status=status,
        statuses=list(MailStatus),
        status_labels=STATUS_LABELS,
    )


@bp.get("/outbox/<int:mail_id>")
@login_required
def outbox_mail(mail_id: int):
    mail = notifications.get_outbox_mail(db.session, current_actor(), mail_id)
    return render_template(
        "notifications/outbox_mail.html",
        mail=mail,
        texts=notifications.mail_texts(mail),
        status_labels=STATUS_LABELS,
        when=when,
    )


@bp.get("/outbox/<int:mail_id>/html")
@login_required
def outbox_mail_html(mail_id: int):
    """The HTML version of a mail, as its recipient's mail program shows it:
    sandboxed, no scripts, nothing loaded from elsewhere."""
    mail = notifications.get_outbox_mail(db.session, current_actor(), mail_id)
    html = notifications.mail_texts(mail).html
    if not html:
        raise NotFound()
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    )
    return response


@bp.get("/outbox/<int:mail_id>/attachments/<int:attachment_id>")
@login_required
def outbox_attachment(mail_id: int, attachment_id: int):
    mail = notifications.get_outbox_mail(db.session, current_actor(), mail_id)
    for attachment in mail.attachments:
        if attachment.id == attachment_id:
            response = Response(attachment.data, content_type=attachment.content_type)
            response.headers["Content-Disposition"] = (
                f'attachment; filename="{attachment.filename}"'
            )
            return response
    raise NotFound()
