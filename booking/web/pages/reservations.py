"""Pages of the reservations area: the lab admin's day and week schedule of
the lab's resources (``/lab/schedule``). The booking form and "my bookings"
belong to the web pages of the customer side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from booking.domain import clock
from booking.domain.errors import N_, Forbidden
from booking.domain.spans import Span
from booking.extensions import db
from booking.models.accounts import Organization
from booking.services import reservations as service
from booking.web.auth import current_actor

bp = Blueprint("reservations_pages", __name__)

# (endpoint, label, shown-to) pairs of the main navigation.
NAV: list = [
    (
        "reservations_pages.schedule",
        _l("Lab schedule"),
        lambda actor: bool(actor.org_ids("provider", "admin")),
    ),
]

STATUS_LABELS = {
    "requested": _l("requested"),
    "approved": _l("approved"),
    "in_use": _l("in use"),
    "completed": _l("completed"),
    "settled": _l("settled"),
    "no_show": _l("no-show"),
}


@dataclass
class Block:
    """One booking or blackout on the timeline of a day."""

    kind: str  # "booking" or "blackout"
    label: str
    detail: str
    status: str
    start: str  # local HH:MM (or the date and time when it began earlier)
    end: str
    left: float  # percent of the day
    width: float
    link: str | None = None


def _day_from_args() -> date:
    text = request.args.get("date", "")
    try:
        return date.fromisoformat(text)
    except ValueError:
        return clock.now().astimezone(clock.platform_tz()).date()


def _bounds(first: date, days: int) -> Span:
    tz = clock.platform_tz()
    start = datetime.combine(first, time.min, tzinfo=tz)
    return Span(start, start + timedelta(days=days))


def _clock_text(instant: datetime, day: date) -> str:
    local = instant.astimezone(clock.platform_tz())
    return local.strftime("%H:%M") if local.date() == day else local.strftime("%m-%d %H:%M")


def _blocks(items, blackouts, day: date) -> list[Block]:
    window = _bounds(day, 1)
    length = (window.end - window.start).total_seconds()
    blocks = []

    def place(kind, start, end, label, detail, status, link=None):
        left = max(start, window.start)
        right = min(end, window.end)
        if left >= right:
            return
        blocks.append(
            Block(
                kind=kind,
                label=label,
                detail=detail,
                status=status,
                start=_clock_text(start, day),
                end=_clock_text(end, day),
                left=round((left - window.start).total_seconds() / length * 100, 3),
                width=round((right - left).total_seconds() / length * 100, 3),
                link=link,
            )
        )

    for booking in items:
        place(
            "booking",
            booking.start_at,
            booking.end_at,
            booking.customer_org.name if booking.customer_org else "",
            booking.user.name if booking.user else "",
            booking.status.value,
            f"/api/v1/reservations/{booking.id}",
        )
    for blackout in blackouts:
        place("blackout", blackout.start_at, blackout.end_at, blackout.reason, "", "blackout")
    return blocks


@bp.get("/lab/schedule")
@login_required
def schedule():
    """The lab's resources over a day (a timeline) or a week (a grid)."""
    actor = current_actor()
    labs = sorted(actor.org_ids("provider", "admin"))
    provider_id = request.args.get("provider_id", type=int) or (labs[0] if labs else None)
    if provider_id is None:
        raise Forbidden(N_("The schedule is for a lab's administrators."))
    view = "week" if request.args.get("view") == "week" else "day"
    day = _day_from_args()
    first = day - timedelta(days=day.weekday()) if view == "week" else day
    days = [first + timedelta(days=n) for n in range(7 if view == "week" else 1)]
    data = service.lab_schedule(db.session, actor, provider_id, _bounds(first, len(days)))
    rows = []
    for resource in data.resources:
        per_day = [
            _blocks(
                [b for b in data.bookings[resource.id] if _touches(b.start_at, b.end_at, d)],
                [x for x in data.blackouts[resource.id] if _touches(x.start_at, x.end_at, d)],
                d,
            )
            for d in days
        ]
        rows.append({"resource": resource, "days": per_day})
    step = timedelta(days=7 if view == "week" else 1)
    lab_names = {
        org.id: org.name
        for org in db.session.query(Organization).filter(Organization.id.in_(labs or [provider_id]))
    }
    return render_template(
        "reservations/schedule.html",
        view=view,
        day=day,
        days=days,
        rows=rows,
        previous=first - step,
        following=first + step,
        today=clock.now().astimezone(clock.platform_tz()).date(),
        provider_id=provider_id,
        labs=lab_names,
        status_labels=STATUS_LABELS,
        hours=list(range(0, 24, 2)),
    )


def _touches(start: datetime, end: datetime, day: date) -> bool:
    window = _bounds(day, 1)
    return start < window.end and window.start < end
