"""Availability of a resource: what is busy, what is free, what stands in the
way of a new booking, and where it could go instead.

- ``occupants``: everything holding time on a resource in a window — live
  bookings (their buffered spans), blackouts, and waiting-list offers still
  open (an offered slot is kept for the person it was offered to until the
  offer runs out) — read in one query of plain rows (no ORM objects: the
  availability of a busy resource reads thousands).
- ``find_conflicts``: which of them a new booking would collide with: any
  overlapping booking or offer of an exclusive resource; for a pooled one,
  the bookings at the instants where the units in use plus the new units
  would pass the capacity; any overlapping blackout.
- ``suggestions``: the nearest free slots of the same length before and after
  a refused span, honouring every rule (grid, opening hours and holidays,
  lead time and horizon, buffers, blackouts, capacity).
- ``availability``: API.md's ``{"free": [...], "busy": [...]}``; busy
  intervals carry no customer details. A free interval is where a booking of
  the asked units may lie whole (its buffers are already taken into account),
  within the opening hours, the lead time and the horizon.

Reads only: the reservation service takes the locks.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import NamedTuple

from sqlalchemy import (
    BigInteger,
    CompoundSelect,
    Integer,
    String,
    bindparam,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.calendar import HolidayCalendar, OpeningCalendar, WeeklyHours
from booking.domain.errors import N_, NotFound, ValidationFailed
from booking.domain.reservations import (
    LIVE_STATUSES,
    SlotSearch,
    TimingRules,
    first_slot_after,
    last_slot_before,
    placeable_spans,
)
from booking.domain.spans import Span, merge, usage_steps
from booking.models.catalog import (
    Blackout,
    CalendarDay,
    OpeningHours,
    Resource,
    ResourceStatus,
)
from booking.models.reservations import Reservation, WaitlistEntry, WaitlistStatus

#: The longest window one availability answer covers.
MAX_WINDOW_DAYS = 93
#: How far around a refused span suggestions are looked for, widening step by step.
SUGGESTION_WINDOWS_DAYS = (3, 14, 62)


@dataclass(frozen=True, slots=True)
class Occupant:
    kind: str  # "booking", "blackout" or "hold" (a waiting-list offer)
    id: int
    start: datetime  # the buffered span for bookings and holds
    end: datetime
    units: int
    customer_org_id: int | None = None
    reason: str | None = None

    @property
    def span(self) -> Span:
        return Span(self.start, self.end)


class OpeningRow(NamedTuple):
    weekday: int
    open: time
    close: time


@dataclass(frozen=True, slots=True)
class ResourceRules:
    """What an availability answer reads of a resource: its booking rules and
    opening hours, as plain columns of one statement (the ORM object with its
    hours, a wide row, cost twice the CPU and the time)."""

    id: int
    status: ResourceStatus
    capacity: int
    granularity_minutes: int
    min_minutes: int
    max_minutes: int
    lead_minutes: int
    horizon_days: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    closed_on_holidays: bool
    opening_hours: tuple[OpeningRow, ...]


_RULE_COLUMNS = (
    Resource.id,
    Resource.status,
    Resource.capacity,
    Resource.granularity_minutes,
    Resource.min_minutes,
    Resource.max_minutes,
    Resource.lead_minutes,
    Resource.horizon_days,
    Resource.buffer_before_minutes,
    Resource.buffer_after_minutes,
    Resource.closed_on_holidays,
)
# Its opening hours in the same round trip, one row each (the calendar needs them).
_RESOURCE_RULES = (
    select(*_RULE_COLUMNS, OpeningHours.weekday, OpeningHours.open, OpeningHours.close)
    .outerjoin(OpeningHours, OpeningHours.resource_id == Resource.id)
    .where(Resource.id == bindparam("resource_id"))
)


def resource_rules(session: Session, resource_id: int) -> ResourceRules | None:
    rows = _connection_flushed(session).execute(_RESOURCE_RULES, {"resource_id": resource_id})
    rows = rows.all()
    if not rows:
        return None
    n = len(_RULE_COLUMNS)
    hours = tuple(OpeningRow(*row[n:]) for row in rows if row[n] is not None)
    return ResourceRules(*rows[0][:n], opening_hours=hours)


def timing_rules(resource: Resource | ResourceRules) -> TimingRules:
    return TimingRules(
        granularity_minutes=resource.granularity_minutes,
        min_minutes=resource.min_minutes,
        max_minutes=resource.max_minutes,
        lead_minutes=resource.lead_minutes,
        horizon_days=resource.horizon_days,
        buffer_before_minutes=resource.buffer_before_minutes,
        buffer_after_minutes=resource.buffer_after_minutes,
    )


_CALENDAR_DAYS = select(CalendarDay.day, CalendarDay.kind, CalendarDay.name).where(
    CalendarDay.day >= bindparam("first"), CalendarDay.day <= bindparam("last")
)


def holiday_overrides(session: Session, first: date, last: date) -> dict:
    rows = _connection_flushed(session).execute(_CALENDAR_DAYS, {"first": first, "last": last})
    return {day: (kind, name) for day, kind, name in rows}


def opening_calendar(
    session: Session, resource: Resource | ResourceRules, window: Span
) -> OpeningCalendar:
    """The resource's opening calendar, with the platform's calendar entries
    for the days of ``window``."""
    tz = clock.platform_tz()
    overrides = {}
    if resource.closed_on_holidays:
        first = window.start.astimezone(tz).date() - timedelta(days=1)
        last = window.end.astimezone(tz).date() + timedelta(days=1)
        overrides = holiday_overrides(session, first, last)
    hours = WeeklyHours.from_rows((h.weekday, h.open, h.close) for h in resource.opening_hours)
    return OpeningCalendar(
        hours=hours,
        tz=tz,
        closed_on_holidays=resource.closed_on_holidays,
        holidays=HolidayCalendar(overrides),
    )


def _occupants_statement() -> CompoundSelect:
    """Everything holding time on a resource over a window, with bound
    parameters (built once: a booking runs it every time)."""
    start, end = bindparam("start"), bindparam("end")
    bookings = select(
        literal("booking", String(12)).label("kind"),
        Reservation.id,
        Reservation.busy_start.label("start"),
        Reservation.busy_end.label("end"),
        Reservation.units,
        Reservation.customer_org_id,
        null().label("reason"),
    ).where(
        Reservation.resource_id == bindparam("resource_id"),
        Reservation.status.in_(LIVE_STATUSES),
        Reservation.busy_start < end,
        Reservation.busy_end > start,
        Reservation.id != bindparam("exclude_reservation_id"),
    )
    blackouts = select(
        literal("blackout", String(12)),
        Blackout.id,
        Blackout.start_at,
        Blackout.end_at,
        bindparam("capacity", type_=Integer),
        null(),
        Blackout.reason,
    ).where(
        Blackout.resource_id == bindparam("resource_id"),
        Blackout.start_at < end,
        Blackout.end_at > start,
    )
    holds = select(
        literal("hold", String(12)),
        WaitlistEntry.id,
        WaitlistEntry.start_at,
        WaitlistEntry.end_at,
        WaitlistEntry.units,
        WaitlistEntry.customer_org_id,
        null(),
    ).where(
        WaitlistEntry.resource_id == bindparam("resource_id"),
        WaitlistEntry.status == WaitlistStatus.OFFERED,
        WaitlistEntry.offer_expires_at > bindparam("now"),
        WaitlistEntry.start_at < bindparam("hold_end"),
        WaitlistEntry.end_at > bindparam("hold_start"),
        WaitlistEntry.id != bindparam("exclude_hold_id"),
    )
    return union_all(bookings, blackouts, holds)


_OCCUPANTS = _occupants_statement()


def _connection_flushed(session: Session):
    """The session's connection, after the flush ``session.execute`` would
    have made: statements run on it skip the ORM's execution path, which
    costs more than the statement for rows of plain columns."""
    if session.autoflush:
        session.flush()
    return session.connection()


def occupants(
    session: Session,
    resource: Resource,
    window: Span,
    *,
    now: datetime,
    exclude_reservation_id: int | None = None,
    exclude_hold_id: int | None = None,
) -> list[Occupant]:
    """Everything holding time on ``resource`` that touches ``window``."""
    before = timedelta(minutes=resource.buffer_before_minutes)
    after = timedelta(minutes=resource.buffer_after_minutes)
    rows = _connection_flushed(session).execute(
        _OCCUPANTS,
        {
            "resource_id": resource.id,
            "start": window.start,
            "end": window.end,
            "capacity": resource.capacity,
            "now": now,
            "hold_start": window.start - after,
            "hold_end": window.end + before,
            # ids start at 1: 0 excludes nothing
            "exclude_reservation_id": exclude_reservation_id or 0,
            "exclude_hold_id": exclude_hold_id or 0,
        },
    )
    found: list[Occupant] = []
    for kind, row_id, start, end, units, org_id, reason in rows.all():
        if kind == "hold":  # a hold keeps the buffered span its booking would
            start, end = start - before, end + after
        found.append(Occupant(kind, row_id, start, end, units, org_id, reason))
    return found


def find_conflicts(
    resource: Resource, busy: Span, units: int, found: Iterable[Occupant]
) -> list[Occupant]:
    """What a booking of ``units`` holding ``busy`` collides with."""
    touching = [o for o in found if o.start < busy.end and busy.start < o.end]
    blackouts = [o for o in touching if o.kind == "blackout"]
    taking = [o for o in touching if o.kind != "blackout"]
    if resource.capacity == 1:
        return blackouts + taking
    steps = usage_steps((o.start, o.end, o.units) for o in taking)
    crowded = [
        Span(max(s.start, busy.start), min(s.end, busy.end))
        for s in steps
        if s.start < busy.end and busy.start < s.end and s.units + units > resource.capacity
    ]
    if not crowded:
        return blackouts
    in_the_way = [o for o in taking if any(o.span.overlaps(c) for c in crowded)]
    return blackouts + in_the_way


def blocked_spans(resource: Resource, found: Sequence[Occupant], units: int) -> list[Span]:
    """Where a booking of ``units`` cannot have any part of its buffered span."""
    blocked = [o.span for o in found if o.kind == "blackout"]
    taking = [o for o in found if o.kind != "blackout"]
    if resource.capacity == 1:
        blocked.extend(o.span for o in taking)
    else:
        limit = resource.capacity - units
        steps = usage_steps((o.start, o.end, o.units) for o in taking)
        blocked.extend(Span(s.start, s.end) for s in steps if s.units > limit)
    return merge(blocked)


def bookable_window(resource: Resource | ResourceRules, window: Span, now: datetime) -> Span | None:
    """``window`` cut to where bookings may lie: not before the lead time, not
    after the horizon."""
    rules = timing_rules(resource)
    start = max(window.start, rules.earliest_start(now))
    end = min(window.end, rules.latest_end(now))
    return Span(start, end) if start < end else None


def suggestions(
    session: Session,
    resource: Resource,
    span: Span,
    units: int,
    *,
    now: datetime,
    exclude_reservation_id: int | None = None,
    exclude_hold_id: int | None = None,
) -> list[Span]:
    """The nearest bookable spans of the same length before and after ``span``
    (at most one each), looked for in widening windows."""
    rules = timing_rules(resource)
    tz = clock.platform_tz()
    search = SlotSearch(
        length=span.duration,
        granularity=rules.granularity,
        earliest=rules.earliest_start(now),
        latest=rules.latest_end(now),
        tz=tz,
    )
    before_slot: Span | None = None
    after_slot: Span | None = None
    for days in SUGGESTION_WINDOWS_DAYS:
        reach = timedelta(days=days)
        lo = max(span.start - reach, search.earliest)
        hi = min(span.end + reach, search.latest)
        if lo >= hi:
            break
        window = Span(lo, hi)
        found = occupants(
            session,
            resource,
            window.widened(rules.buffer_before, rules.buffer_after),
            now=now,
            exclude_reservation_id=exclude_reservation_id,
            exclude_hold_id=exclude_hold_id,
        )
        calendar = opening_calendar(session, resource, window)
        pieces = placeable_spans(
            calendar.open_spans(window),
            blocked_spans(resource, found, units),
            window,
            rules.buffer_before,
            rules.buffer_after,
        )
        if before_slot is None:
            before_slot = last_slot_before(pieces, span.start, search)
        if after_slot is None:
            after_slot = first_slot_after(pieces, span.start, search)
        if (before_slot and after_slot) or (lo == search.earliest and hi == search.latest):
            break
    return [s for s in (before_slot, after_slot) if s is not None and s != span]


# --- the availability answer -------------------------------------------------


_HOURS_MINUTES = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]

#: How many texts one offset's table keeps before it starts again.
TEXTS_KEPT = 1 << 15


class LocalTexts(dict):
    """ISO 8601 texts, in a zone, of instants given as whole seconds since
    the epoch, the zone asked instant by instant (where its offset changes
    within the window: summer time). Most instants are written twice (a busy
    interval ends where a free one starts): each is made once, and
    ``texts[seconds]`` finds it again at the cost of a dictionary lookup."""

    def __init__(self, tz) -> None:
        self.tz = tz

    def __missing__(self, seconds: int) -> str:
        text = self[seconds] = datetime.fromtimestamp(seconds, self.tz).isoformat()
        return text

    def __call__(self, seconds: int) -> str:
        return self[seconds]


class OffsetTexts(LocalTexts):
    """The same texts at one fixed UTC offset: the local day's prefix, the
    clock time and the offset from tables. A text depends on nothing but the
    instant and the offset, so one table per offset serves every answer
    (they mostly repeat the instants of the booking grid); it starts again
    past ``TEXTS_KEPT`` texts (some 5 MB)."""

    def __init__(self, offset: timedelta) -> None:
        super().__init__(timezone(offset))
        self.offset = int(offset.total_seconds())
        suffix = datetime(2000, 1, 1, tzinfo=self.tz).isoformat()[19:]
        self.seconds = [f":{s:02d}{suffix}" for s in range(60)]
        self.days: dict[int, str] = {}

    def __missing__(self, seconds: int) -> str:
        if len(self) >= TEXTS_KEPT:
            self.clear()
            self.days.clear()
        local = seconds + self.offset
        day = local // 86400
        prefix = self.days.get(day)
        if prefix is None:
            prefix = self.days[day] = (
                datetime.fromtimestamp(day * 86400, UTC).date().isoformat() + "T"
            )
        rest = local - day * 86400
        text = self[seconds] = prefix + _HOURS_MINUTES[rest // 60] + self.seconds[rest % 60]
        return text


@functools.cache
def _offset_texts(offset: timedelta) -> OffsetTexts:
    return OffsetTexts(offset)


def local_texts(tz, window: Span) -> LocalTexts:
    """The texts of instants in ``window`` in the zone ``tz``: from the table
    of its offset where the zone keeps one over the whole window (checked
    day by day), else asking the zone."""
    offsets = set()
    day = window.start
    while day <= window.end + timedelta(days=1):
        offsets.add(day.astimezone(tz).utcoffset())
        day += timedelta(days=1)
    if len(offsets) == 1:
        return _offset_texts(offsets.pop())
    return LocalTexts(tz)


def check_window(start: datetime | None, end: datetime | None) -> Span:
    if start is None or end is None:
        raise ValidationFailed(
            {
                name: N_("Missing data for required field.")
                for name, v in (("from", start), ("to", end))
                if v is None
            }
        )
    if end <= start:
        raise ValidationFailed({"to": N_("The end must be after the start.")})
    if end - start > timedelta(days=MAX_WINDOW_DAYS):
        raise ValidationFailed({"to": N_("Ask for at most 93 days at once.")})
    return Span(start, end)


# The answer covers thousands of intervals (a busy HPC partition), so from
# here on instants are whole seconds since the epoch, read as such from the
# database: ints sort and compare many times faster than aware datetimes.

Piece = tuple[int, int, int]  # [start, end) with units


def _epoch(instant: datetime) -> int:
    return int(instant.timestamp())


@functools.cache
def _occupant_seconds_statement(dialect: str) -> CompoundSelect:
    """Built once per dialect, with bound parameters: an answer reads
    thousands of rows, and building the statement, or running it through the
    ORM's execution path, cost more than the database's work."""

    def sec(column):
        if dialect == "postgresql":
            # date_part's double, not extract's numeric (twice the database's
            # time for 2,000 rows): floored exactly for the platform's years
            # (2000 to 2100), a microsecond being far above a double's step.
            return cast(func.floor(func.date_part("epoch", column)), BigInteger)
        return cast(func.strftime("%s", column), Integer)  # SQLite keeps UTC text

    low, high = bindparam("low"), bindparam("high")
    bookings = select(
        literal(0, Integer).label("kind"),
        sec(Reservation.busy_start),
        sec(Reservation.busy_end),
        Reservation.units,
    ).where(
        Reservation.resource_id == bindparam("resource_id"),
        Reservation.status.in_(LIVE_STATUSES),
        Reservation.busy_start < high,
        Reservation.busy_end > low,
    )
    holds = select(
        literal(1, Integer),
        sec(WaitlistEntry.start_at),
        sec(WaitlistEntry.end_at),
        WaitlistEntry.units,
    ).where(
        WaitlistEntry.resource_id == bindparam("resource_id"),
        WaitlistEntry.status == WaitlistStatus.OFFERED,
        WaitlistEntry.offer_expires_at > bindparam("now"),
        WaitlistEntry.start_at < bindparam("hold_high"),
        WaitlistEntry.end_at > bindparam("hold_low"),
    )
    blackouts = select(
        literal(2, Integer),
        sec(Blackout.start_at),
        sec(Blackout.end_at),
        literal(0, Integer),
    ).where(
        Blackout.resource_id == bindparam("resource_id"),
        Blackout.start_at < high,
        Blackout.end_at > low,
    )
    return union_all(bookings, holds, blackouts)


def occupant_seconds(
    session: Session, resource: Resource | ResourceRules, lo: int, hi: int, now: datetime
) -> tuple[list[Piece], list[tuple[int, int]]]:
    """What takes units (bookings' buffered spans, open waiting-list offers
    with buffers) and the blackouts touching ``[lo, hi)``, in seconds."""
    before = resource.buffer_before_minutes * 60
    after = resource.buffer_after_minutes * 60
    low = datetime.fromtimestamp(lo, UTC)
    high = datetime.fromtimestamp(hi, UTC)
    connection = _connection_flushed(session)
    rows = connection.execute(
        _occupant_seconds_statement(connection.dialect.name),
        {
            "resource_id": resource.id,
            "low": low,
            "high": high,
            "now": now,
            "hold_low": low - timedelta(seconds=after),
            "hold_high": high + timedelta(seconds=before),
        },
    )
    taking: list[Piece] = []
    closed: list[tuple[int, int]] = []
    for kind, start, end, units in rows.all():
        if kind == 0:
            taking.append((start, end, units))
        elif kind == 1:
            taking.append((start - before, end + after, units))
        else:
            closed.append((start, end))
    return taking, _merged(closed)


def _merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1][1] = end
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


def _sweep(items: Iterable[Piece]) -> list[Piece]:
    """Units in use over time: maximal steps of constant, non-zero use."""
    deltas: dict[int, int] = {}
    get = deltas.get
    for start, end, units in items:
        if start < end and units:
            deltas[start] = get(start, 0) + units
            deltas[end] = get(end, 0) - units
    steps: list[Piece] = []
    level = 0
    previous = 0
    for instant in sorted(deltas):
        delta = deltas[instant]
        if delta:  # else the step goes on: neighbours never share a level
            if level:
                steps.append((previous, instant, level))
            level += delta
            previous = instant
    return steps


def _free(used: list[Piece], closed: list[tuple[int, int]], lo: int, hi: int, capacity: int):
    """Free units over ``[lo, hi)``: capacity less use, none in blackouts."""
    if not closed:
        return _free_open(used, lo, hi, capacity)
    levels: list[Piece] = []
    cursor = lo
    for start, end, units in used:
        if end <= lo:
            continue
        if start >= hi:
            break
        if start > cursor:
            levels.append((cursor, start, 0))
        levels.append((max(start, lo), min(end, hi), units))
        cursor = min(end, hi)
    if cursor < hi:
        levels.append((cursor, hi, 0))
    out: list[list[int]] = []

    def add(start: int, end: int, units: int) -> None:
        if out and out[-1][1] == start and out[-1][2] == units:
            out[-1][1] = end
        else:
            out.append([start, end, units])

    b = 0
    for start, end, level in levels:
        units = capacity - level
        if units <= 0:
            continue
        while b < len(closed) and closed[b][1] <= start:
            b += 1
        k = b
        while start < end:
            if k < len(closed) and closed[k][0] < end:
                if closed[k][0] > start:
                    add(start, closed[k][0], units)
                start = max(start, closed[k][1])
                k += 1
            else:
                add(start, end, units)
                break
    return out  # lists [start, end, units], read as triples


def _free_open(used: list[Piece], lo: int, hi: int, capacity: int) -> list[Piece]:
    """``_free`` without blackouts, in one pass (the common case, and a large
    answer's hottest loop): the same steps. Nothing to merge: the steps of
    ``_sweep`` are in use (the gaps between them all free) and neighbours
    differ in use, so in what is free too."""
    out: list[Piece] = []
    cursor = lo
    for start, end, units in used:
        if end <= lo:
            continue
        if start >= hi:
            break
        if start > cursor:  # nothing in use between: all of it free
            out.append((cursor, start, capacity))
        elif start < lo:
            start = lo
        if end > hi:
            end = hi
        if units < capacity:
            out.append((start, end, capacity - units))
        cursor = end
    if cursor < hi:
        out.append((cursor, hi, capacity))
    return out


def _eroded(steps: list[Piece], before: int, after: int) -> list[Piece]:
    """Free units for a booking's own span once its buffers need room too:
    at each level, the region with at least that many free units, shrunk by
    the buffers."""
    if not before and not after:
        return steps
    pieces: list[Piece] = []
    previous = 0
    for level in sorted({u for _s, _e, u in steps}):
        region = _merged((s, e) for s, e, u in steps if u >= level)
        for start, end in region:
            if start + before < end - after:
                pieces.append((start + before, end - after, level - previous))
        previous = level
    return _sweep(pieces)


def _clipped(steps: list[Piece], spans: list[tuple[int, int]], units: int = 1) -> list[Piece]:
    """The parts of ``steps`` with at least ``units`` inside ``spans`` (both
    sorted)."""
    if len(spans) == 1 and steps and spans[0][0] <= steps[0][0] and steps[-1][1] <= spans[0][1]:
        # One span holding them all (open around the clock: the large answers)
        return steps if units <= 1 else [step for step in steps if step[2] >= units]
    out: list[Piece] = []
    j = 0
    n = len(spans)
    for step in steps:
        start, end, level = step
        if level < units:
            continue
        while j < n and spans[j][1] <= start:
            j += 1
        if j == n:
            break
        if spans[j][0] <= start and end <= spans[j][1]:  # whole, the common case
            out.append(step)
            continue
        k = j
        while k < n and spans[k][0] < end:
            left = start if start > spans[k][0] else spans[k][0]
            right = end if end < spans[k][1] else spans[k][1]
            if left < right:
                out.append((left, right, level))
            k += 1
    return out


@dataclass
class Availability:
    """Free and busy intervals, in seconds since the epoch until written out."""

    resource_id: int
    capacity: int
    lo: int
    hi: int
    free: list[Piece]
    busy: list[tuple[int, int, int, str]]
    text: LocalTexts

    def as_dict(self) -> dict:
        t = self.text
        return {
            "resource_id": self.resource_id,
            "from": t(self.lo),
            "to": t(self.hi),
            "capacity": self.capacity,
            "free": [{"start": t(a), "end": t(b), "units": u} for a, b, u in self.free],
            "busy": [
                {"start": t(a), "end": t(b), "units": u, "kind": k} for a, b, u, k in self.busy
            ],
        }

    def to_json(self) -> str:
        """The same as ``json.dumps(self.as_dict())``, written directly: the
        texts are ISO times, numbers and fixed words, nothing to escape."""
        t = self.text
        # Lists, not generators, for join: it makes one anyway.
        free = ",".join(
            [f'{{"start":"{t[a]}","end":"{t[b]}","units":{u}}}' for a, b, u in self.free]
        )
        busy = ",".join(
            [
                f'{{"start":"{t[a]}","end":"{t[b]}","units":{u},"kind":"{k}"}}'
                for a, b, u, k in self.busy
            ]
        )
        return (
            f'{{"resource_id":{self.resource_id},"from":"{t(self.lo)}","to":"{t(self.hi)}",'
            f'"capacity":{self.capacity},"free":[{free}],"busy":[{busy}]}}'
        )


def availability_of(
    session: Session, resource_id: int, start: datetime | None, end: datetime | None, units: int = 1
) -> Availability:
    """Free and busy intervals of a resource over ``[start, end)``."""
    window = check_window(start, end)
    resource = resource_rules(session, resource_id)
    if resource is None or resource.status == ResourceStatus.RETIRED:
        raise NotFound()
    if not 1 <= units <= resource.capacity:
        raise ValidationFailed({"units": N_("More units than the resource has.")})
    now = clock.now()
    lo, hi = _epoch(window.start), _epoch(window.end)
    before = resource.buffer_before_minutes * 60
    after = resource.buffer_after_minutes * 60
    taking, closed = occupant_seconds(session, resource, lo - before, hi + after, now)
    used = _sweep(taking)
    free: list[Piece] = []
    bookable = bookable_window(resource, window, now)
    if bookable is not None and resource.status == ResourceStatus.AVAILABLE:
        b_lo, b_hi = _epoch(bookable.start), _epoch(bookable.end)
        calendar = opening_calendar(session, resource, bookable)
        opening = [(_epoch(s.start), _epoch(s.end)) for s in calendar.open_spans(bookable)]
        steps = _free(used, closed, b_lo - before, b_hi + after, resource.capacity)
        steps = _eroded(steps, before, after)
        free = _clipped(steps, opening, units)
    return Availability(
        resource_id=resource.id,
        capacity=resource.capacity,
        lo=lo,
        hi=hi,
        free=free,
        busy=_busy(resource, used, closed, lo, hi),
        text=local_texts(clock.platform_tz(), window),
    )


def availability(
    session: Session, resource_id: int, start: datetime | None, end: datetime | None, units: int = 1
) -> dict:
    """API.md's availability answer as a dict (see ``availability_of``)."""
    return availability_of(session, resource_id, start, end, units).as_dict()


def _busy(
    resource: Resource | ResourceRules, used: list, closed: list[tuple[int, int]], lo: int, hi: int
) -> list[tuple[int, int, int, str]]:
    items: list[tuple[int, int, int, str]] = [
        (max(s, lo), min(e, hi), resource.capacity, "blackout")
        for s, e in closed
        if s < hi and lo < e
    ]
    if resource.capacity == 1:  # one busy interval across touching steps
        pieces: list = []
        for start, end, _units in used:
            if pieces and start <= pieces[-1][1]:
                if end > pieces[-1][1]:
                    pieces[-1][1] = end
            else:
                pieces.append([start, end, 1])
    else:
        pieces = used
    for start, end, units in pieces:
        if end <= lo:
            continue
        if start >= hi:
            break
        items.append((start if start > lo else lo, end if end < hi else hi, units, "booking"))
    if closed:  # else already in order
        items.sort()
    return items
