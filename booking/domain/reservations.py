"""A booking's states and moves, and the timing rules of a resource.

States (DESIGN.md, "A booking's life")::

                  approve                check-in            complete
     requested ───────────► approved ───────────► in_use ─────────► completed ──► settled
         │  └─ auto-approve ─┘   │                  └ check-out (records the end)
         │ reject / expire       │ cancel / no-show
         ▼                       ▼
      rejected / expired     cancelled / no_show

A live booking (requested, approved, in use) holds its buffered span. Every
move has a name; ``next_status`` answers the state a move leads to, or raises
``InvalidTransition`` (409 ``invalid_state``) with a message saying why.
The ``can_*`` predicates answer the same question without raising.

Timing rules (``check_timing``), all at their boundary inclusive: the start
not in the past; start and end on the resource's granularity grid, counted
from local midnight; the length within the minimum and maximum; the start at
least the lead time from now; the end at most the horizon from now.

``placeable_spans`` and ``nearest_slots`` find where a booking of a given
length could go instead (the suggestions of a conflict answer).

Pure Python: no Flask, no SQLAlchemy.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from booking.domain.errors import N_, InvalidTransition, RuleViolation
from booking.domain.spans import Span, intersect, merge, subtract


class ReservationStatus(enum.StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    IN_USE = "in_use"
    COMPLETED = "completed"
    SETTLED = "settled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


S = ReservationStatus

#: States that hold the booking's time.
LIVE_STATUSES: tuple[ReservationStatus, ...] = (S.REQUESTED, S.APPROVED, S.IN_USE)
#: States a booking never leaves.
FINAL_STATUSES: tuple[ReservationStatus, ...] = (
    S.SETTLED,
    S.REJECTED,
    S.EXPIRED,
    S.CANCELLED,
    S.NO_SHOW,
)


@dataclass(frozen=True)
class Move:
    name: str
    sources: frozenset[ReservationStatus]
    target: ReservationStatus | None  # None: the state stays (or is decided by the caller)
    refused: str  # message id when the booking is in another state


MOVES: dict[str, Move] = {
    m.name: m
    for m in (
        Move(
            "approve",
            frozenset({S.REQUESTED}),
            S.APPROVED,
            N_("Only a requested booking can be approved; this one is %(status)s."),
        ),
        Move(
            "reject",
            frozenset({S.REQUESTED}),
            S.REJECTED,
            N_("Only a requested booking can be rejected; this one is %(status)s."),
        ),
        Move(
            "expire",
            frozenset({S.REQUESTED}),
            S.EXPIRED,
            N_("Only a requested booking can expire; this one is %(status)s."),
        ),
        Move(
            "cancel",
            frozenset({S.REQUESTED, S.APPROVED}),
            S.CANCELLED,
            N_("Only a requested or approved booking can be cancelled; this one is %(status)s."),
        ),
        Move(
            "reschedule",
            frozenset({S.REQUESTED, S.APPROVED}),
            None,
            N_("Only a requested or approved booking can be moved; this one is %(status)s."),
        ),
        Move(
            "check_in",
            frozenset({S.APPROVED}),
            S.IN_USE,
            N_("Only an approved booking can be checked in; this one is %(status)s."),
        ),
        Move(
            "check_out",
            frozenset({S.IN_USE}),
            S.IN_USE,
            N_("Only a booking in use can be checked out; this one is %(status)s."),
        ),
        Move(
            "complete",
            frozenset({S.APPROVED, S.IN_USE}),
            S.COMPLETED,
            N_("Only an approved booking or one in use can be completed; this one is %(status)s."),
        ),
        Move(
            "no_show",
            frozenset({S.APPROVED}),
            S.NO_SHOW,
            N_("Only an approved booking can be marked as a no-show; this one is %(status)s."),
        ),
        Move(
            "settle",
            frozenset({S.COMPLETED}),
            S.SETTLED,
            N_("Only a completed booking can be settled; this one is %(status)s."),
        ),
        Move(
            "rate",
            frozenset({S.COMPLETED, S.SETTLED}),
            None,
            N_("A booking can be rated once it is completed; this one is %(status)s."),
        ),
    )
}


def can(status: ReservationStatus | str, move: str) -> bool:
    return ReservationStatus(status) in MOVES[move].sources


def next_status(status: ReservationStatus | str, move: str) -> ReservationStatus:
    """The state ``move`` leads to from ``status``; ``InvalidTransition`` if none."""
    current = ReservationStatus(status)
    spec = MOVES[move]
    if current not in spec.sources:
        raise InvalidTransition(
            spec.refused,
            details={"status": current.value, "move": move},
            status=current.value,
        )
    return spec.target or current


def can_approve(status) -> bool:
    return can(status, "approve")


def can_reject(status) -> bool:
    return can(status, "reject")


def can_expire(status) -> bool:
    return can(status, "expire")


def can_cancel(status) -> bool:
    return can(status, "cancel")


def can_reschedule(status) -> bool:
    return can(status, "reschedule")


def can_check_in(status) -> bool:
    return can(status, "check_in")


def can_check_out(status) -> bool:
    return can(status, "check_out")


def can_complete(status) -> bool:
    return can(status, "complete")


def can_mark_no_show(status) -> bool:
    return can(status, "no_show")


def can_rate(status) -> bool:
    return can(status, "rate")


def is_live(status) -> bool:
    return ReservationStatus(status) in LIVE_STATUSES


# --- timing rules ------------------------------------------------------------


@dataclass(frozen=True)
class TimingRules:
    granularity_minutes: int = 30
    min_minutes: int = 30
    max_minutes: int = 480
    lead_minutes: int = 0
    horizon_days: int = 90
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0

    @property
    def buffer_before(self) -> timedelta:
        return timedelta(minutes=self.buffer_before_minutes)

    @property
    def buffer_after(self) -> timedelta:
        return timedelta(minutes=self.buffer_after_minutes)

    @property
    def granularity(self) -> timedelta:
        return timedelta(minutes=max(self.granularity_minutes, 1))

    def busy_span(self, span: Span) -> Span:
        """The span plus buffers: what a booking keeps from every other."""
        return span.widened(self.buffer_before, self.buffer_after)

    def earliest_start(self, now: datetime) -> datetime:
        return now + timedelta(minutes=self.lead_minutes)

    def latest_end(self, now: datetime) -> datetime:
        return now + timedelta(days=self.horizon_days)


def _local_midnight(instant: datetime, tz: ZoneInfo) -> datetime:
    local = instant.astimezone(tz)
    return datetime.combine(local.date(), time.min, tzinfo=tz)


def on_grid(instant: datetime, granularity: timedelta, tz: ZoneInfo) -> bool:
    """True when ``instant`` lies on the granularity grid counted from local midnight."""
    offset = instant.astimezone(tz) - _local_midnight(instant, tz)
    return offset % granularity == timedelta(0)


def grid_at_or_after(instant: datetime, granularity: timedelta, tz: ZoneInfo) -> datetime:
    midnight = _local_midnight(instant, tz)
    offset = instant.astimezone(tz) - midnight
    steps = -(-offset // granularity)
    candidate = midnight + steps * granularity
    next_midnight = datetime.combine(midnight.date() + timedelta(days=1), time.min, tzinfo=tz)
    return min(candidate, next_midnight).astimezone(UTC)


def grid_at_or_before(instant: datetime, granularity: timedelta, tz: ZoneInfo) -> datetime:
    midnight = _local_midnight(instant, tz)
    offset = instant.astimezone(tz) - midnight
    return (midnight + (offset // granularity) * granularity).astimezone(UTC)


def _minutes(value: timedelta) -> str:
    total = int(value.total_seconds() // 60)
    return str(total)


def check_timing(rules: TimingRules, span: Span, now: datetime, tz: ZoneInfo) -> None:
    """Raise ``RuleViolation`` for the first timing rule ``span`` breaks."""
    if span.start < now:
        raise RuleViolation("start_in_past", N_("The start lies in the past."), field="start")
    for name, instant in (("start", span.start), ("end", span.end)):
        if not on_grid(instant, rules.granularity, tz):
            raise RuleViolation(
                "granularity",
                N_("Bookings start and end on a %(minutes)s-minute grid from midnight."),
                field=name,
                details={"granularity_minutes": rules.granularity_minutes},
                minutes=rules.granularity_minutes,
            )
    length = span.duration
    if length < timedelta(minutes=rules.min_minutes):
        raise RuleViolation(
            "min_duration",
            N_("A booking lasts at least %(minutes)s minutes."),
            field="end",
            details={"min_minutes": rules.min_minutes},
            minutes=rules.min_minutes,
        )
    if length > timedelta(minutes=rules.max_minutes):
        raise RuleViolation(
            "max_duration",
            N_("A booking lasts at most %(minutes)s minutes."),
            field="end",
            details={"max_minutes": rules.max_minutes},
            minutes=rules.max_minutes,
        )
    if span.start < rules.earliest_start(now):
        raise RuleViolation(
            "lead_time",
            N_("Book at least %(minutes)s minutes ahead."),
            field="start",
            details={"lead_minutes": rules.lead_minutes},
            minutes=rules.lead_minutes,
        )
    if span.end > rules.latest_end(now):
        raise RuleViolation(
            "horizon",
            N_("Bookings can be made at most %(days)s days ahead."),
            field="end",
            details={"horizon_days": rules.horizon_days},
            days=rules.horizon_days,
        )


# --- where a booking could go ------------------------------------------------


def placeable_spans(
    open_spans: Iterable[Span],
    blocked: Iterable[Span],
    window: Span,
    before: timedelta,
    after: timedelta,
) -> list[Span]:
    """Where a booking's own span may lie within ``window``: inside opening
    hours, with its buffers clear of every ``blocked`` span."""
    gaps = subtract([window.widened(before, after)], blocked)
    shrunk = [
        Span(g.start + before, g.end - after) for g in gaps if g.start + before < g.end - after
    ]
    return intersect(merge(open_spans), shrunk)


@dataclass(frozen=True)
class SlotSearch:
    length: timedelta
    granularity: timedelta
    earliest: datetime
    latest: datetime
    tz: ZoneInfo
    max_steps: int = 10_000


def _fits(search: SlotSearch, start: datetime, piece: Span) -> bool:
    end = start + search.length
    return (
        piece.start <= start
        and end <= piece.end
        and search.earliest <= start
        and end <= search.latest
        and on_grid(end, search.granularity, search.tz)
    )


def first_slot_after(pieces: Sequence[Span], anchor: datetime, search: SlotSearch) -> Span | None:
    """The earliest bookable span starting at or after ``anchor``."""
    steps = 0
    for piece in pieces:
        if piece.end - search.length < anchor:
            continue
        start = grid_at_or_after(
            max(piece.start, anchor, search.earliest), search.granularity, search.tz
        )
        while start + search.length <= piece.end and steps < search.max_steps:
            if _fits(search, start, piece):
                return Span(start, start + search.length)
            start = grid_at_or_after(start + timedelta(seconds=1), search.granularity, search.tz)
            steps += 1
    return None


def last_slot_before(pieces: Sequence[Span], anchor: datetime, search: SlotSearch) -> Span | None:
    """The latest bookable span starting at or before ``anchor``."""
    steps = 0
    for piece in reversed(pieces):
        if piece.start > anchor:
            continue
        latest_start = min(piece.end - search.length, anchor)
        start = grid_at_or_before(latest_start, search.granularity, search.tz)
        while start >= piece.start and start >= search.earliest and steps < search.max_steps:
            if _fits(search, start, piece):
                return Span(start, start + search.length)
            start = grid_at_or_before(start - timedelta(seconds=1), search.granularity, search.tz)
            steps += 1
    return None
