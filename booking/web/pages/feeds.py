"""Calendar feeds on the web: the .ics answers and the page to manage feeds.

| path | what |
| --- | --- |
| ``GET /ical/<token>.ics`` | a personal or lab feed (no sign-in: the token is the key) |
| ``GET /ical/resources/<id>.ics`` | a listed resource's busy times (public; ``?lang=en``) |
| ``GET /reservations/<id>.ics`` | one booking as a file, for whoever may see it |
| ``GET /feeds``, ``POST /feeds`` | the feeds page: make a feed (URL, copy button, QR code) |
| ``POST /feeds/<id>/revoke`` | revoke one |

Feeds answer ``text/calendar; charset=utf-8`` with a weak ``ETag`` and
``Last-Modified``; a matching ``If-None-Match`` (or, without one, an
``If-Modified-Since`` not older than the feed) answers 304 after one query
(the token, its owner's membership and the feed's stamps), without reading
or building any event.

Importing this module installs the feeds service's session hook, which keeps
every booking's event texts fresh; ``flask --app wsgi feeds rebuild`` builds
them all (the backfill).
"""

from __future__ import annotations

import click
import qrcode
import qrcode.image.svg
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
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from werkzeug.http import http_date
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from booking import process_settings
from booking.extensions import db, limiter
from booking.models.accounts import Organization
from booking.services import feeds
from booking.web.auth import current_actor

bp = Blueprint("feeds_pages", __name__, cli_group="feeds")

# (endpoint, label) pairs shown in the main navigation; labels lazy_gettext'd.
NAV: list = [("feeds_pages.index", lazy_gettext("Calendar feeds"))]

CALENDAR_TYPE = "text/calendar; charset=utf-8"


@bp.record_once
def _configure(state) -> None:
    config = state.app.config
    settings = feeds.FeedSettings(
        base_url=config.get("BASE_URL") or feeds.FeedSettings.base_url,
        days_back=int(config.get("FEED_DAYS_BACK", 90)),
        days_ahead=int(config.get("FEED_DAYS_AHEAD", 365)),
        ended_keep_days=int(config.get("FEED_ENDED_KEEP_DAYS", 30)),
        refresh_minutes=int(config.get("FEED_REFRESH_MINUTES", 15)),
        organizer_email=config.get("MAIL_FROM") or feeds.FeedSettings.organizer_email,
    )
    process_settings.keep(state.app, lambda: feeds.configure(settings))


# --- the feeds -----------------------------------------------------------------


def _not_modified(version: feeds.FeedVersion, etag: str) -> bool:
    if request.if_none_match:
        return request.if_none_match.star_tag or request.if_none_match.contains_weak(etag)
    since = request.if_modified_since
    return since is not None and version.last_modified <= since


def _serve(feed: feeds.Feed, cache: str) -> Response:
    version = feed.version
    headers = {
        "ETag": f'W/"{version.etag}"',
        "Last-Modified": http_date(version.last_modified),
        "Cache-Control": cache,
        "X-Robots-Tag": "noindex",
    }
    if _not_modified(version, version.etag):
        return Response(status=304, headers=headers)
    body = feeds.render_feed(db.session, feed)
    return Response(body, status=200, headers=headers, content_type=CALENDAR_TYPE)


def _feed_rate_limit() -> str:
    return current_app.config["FEED_RATE_LIMIT"]


@bp.get("/ical/<token>.ics")
@limiter.limit(_feed_rate_limit)
def token_feed(token: str):
    """A personal or lab feed. No sign-in: whoever holds the URL reads it."""
    feed = feeds.open_token_feed(db.session, token)
    response = _serve(feed, "private, no-cache")
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/ical/resources/<int:resource_id>.ics")
@limiter.limit(_feed_rate_limit)
def resource_feed(resource_id: int):
    """A listed resource's busy times: when it is taken, never by whom."""
    locale = request.args.get("lang") or request.accept_languages.best_match(
        ["zh-CN", "zh", "en"], default="zh-CN"
    )
    feed = feeds.open_resource_feed(db.session, resource_id, locale)
    response = _serve(feed, "public, no-cache")
    if not request.args.get("lang"):
        response.headers["Vary"] = "Accept-Language"
    return response


@bp.get("/reservations/<int:reservation_id>.ics")
def reservation_file(reservation_id: int):
    """One booking as a file to import, for its owner or the lab."""
    body = feeds.reservation_calendar(db.session, current_actor(), reservation_id)
    response = Response(body, content_type=CALENDAR_TYPE)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="reservation-{reservation_id}.ics"'
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- the page to make and revoke feeds --------------------------------------------


class FeedForm(FlaskForm):
    target = SelectField(lazy_gettext("What the feed shows"), validators=[DataRequired()])
    label = StringField(
        lazy_gettext("Name (for you, e.g. “phone”)"), validators=[Optional(), Length(max=80)]
    )


def _choices(actor) -> list[tuple[str, str]]:
    ids = actor.org_ids()
    names = dict(
        db.session.execute(
            select(Organization.id, Organization.name).where(Organization.id.in_(ids))
        ).all()
    )
    choices = []
    for membership in sorted(actor.memberships, key=lambda m: m.org_id):
        name = names.get(membership.org_id, "")
        if membership.org_kind == "provider" and membership.role == "admin":
            choices.append(
                (f"lab:{membership.org_id}", gettext("All bookings of %(lab)s", lab=name))
            )
        if membership.org_kind == "enterprise" and membership.role == "admin":
            label = gettext("All bookings of %(org)s", org=name)
        else:
            label = gettext("My bookings with %(org)s", org=name)
        choices.append((f"me:{membership.org_id}", label))
    return choices


def qr_svg(text: str) -> Markup:
    """A QR code as inline SVG, made here (no third-party service sees the URL)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    svg = image.to_string(encoding="unicode")
    return Markup(svg)


def _page(form: FeedForm, created: dict | None = None, status: int = 200):
    actor = current_actor()
    rows = feeds.list_feeds(db.session, actor, include_revoked=False)
    org_ids = {r.organization_id for r in rows}
    names = dict(
        db.session.execute(
            select(Organization.id, Organization.name).where(Organization.id.in_(org_ids))
        ).all()
    )
    return (
        render_template(
            "feeds/index.html",
            form=form,
            feeds=rows,
            names=names,
            created=created,
        ),
        status,
    )


def _require_page_user():
    actor = current_actor()
    if not actor.authenticated:
        return None, redirect(url_for("accounts_pages.login", next=request.path))
    return actor, None


@bp.get("/feeds")
def index():
    actor, login = _require_page_user()
    if login:
        return login
    form = FeedForm()
    form.target.choices = _choices(actor)
    return _page(form)


@bp.post("/feeds")
def create():
    actor, login = _require_page_user()
    if login:
        return login
    form = FeedForm()
    form.target.choices = _choices(actor)
    if not form.validate_on_submit():
        return _page(form, status=422)
    scope, _, org_id = form.target.data.partition(":")
    token, row = feeds.create_feed(db.session, actor, scope, int(org_id), form.label.data)
    url = feeds.feed_url(token)
    created = {
        "row": row,
        "url": url,
        "webcal": "webcal://" + url.split("://", 1)[1],
        "qr": qr_svg(url),
    }
    # The URL is shown on this answer only: it is not kept anywhere.
    fresh = FeedForm(formdata=None)
    fresh.target.choices = form.target.choices
    response = current_app.make_response(_page(fresh, created=created))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.post("/feeds/<int:feed_id>/revoke")
def revoke(feed_id: int):
    actor, login = _require_page_user()
    if login:
        return login
    form = FlaskForm()
    if not form.validate_on_submit():
        flash(gettext("The form has expired. Please reload the page and try again."), "error")
        return redirect(url_for(".index"))
    feeds.revoke_feed(db.session, actor, feed_id)
    flash(gettext("The feed is revoked. Its address no longer works."), "success")
    return redirect(url_for(".index"))


# --- commands ----------------------------------------------------------------------


@bp.cli.command("rebuild")
@click.option("--window-only", is_flag=True, help="only bookings inside the feed window")
def rebuild_command(window_only: bool) -> None:
    """Build and keep every booking's calendar texts (backfill)."""
    count = feeds.rebuild_all(db.session, only_window=window_only)
    db.session.commit()
    click.echo(f"calendar texts rebuilt for {count} bookings")
