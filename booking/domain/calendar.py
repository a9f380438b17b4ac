"""When a resource is open: weekly opening hours in local wall-clock time,
the national public holidays (法定节假日) and the adjusted working days
(调休上班) of the Chinese calendar.

- Weekly hours are a list of ``(weekday, open, close)`` (Monday is 0),
  several per day allowed. An empty list means open around the clock (全天候).
  A ``time`` cannot say 24:00, so a close at 23:59 or later means midnight.
- The national calendar comes from the maintained ``chinese_calendar``
  package. A platform admin's ``CalendarDay`` rows (passed in as
  ``overrides``) win over it, date by date, so a year's dates can be entered
  before the package knows them.
- A year the package does not know, and for which no override rows exist,
  is treated as having **no holidays and no adjusted working days**: every
  day follows its weekday's hours. (Nothing better can be known; the platform
  admin is expected to enter the year's dates once the State Council
  publishes them.)
- With ``closed_on_holidays`` a holiday is closed all day and an adjusted
  working day opens with Monday's hours (API.md). Without it, both days follow
  their weekday's hours.

Pure Python: no Flask, no SQLAlchemy. Instants come and go as UTC-aware
datetimes; days are local calendar dates of the given zone.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from booking.domain.spans import Span, merge

END_OF_DAY_CLOSE = time(23, 59)


class DayKind(enum.StrEnum):
    NORMAL = "normal"
    HOLIDAY = "holiday"  # 法定节假日: closed where the resource closes on holidays
    WORKDAY = "workday"  # 调休上班: open with Monday's hours


def _library_years() -> tuple[int, int]:
    known = list(chinese_calendar.holidays.keys())
    return min(known).year, max(known).year


_FIRST_YEAR, _LAST_YEAR = _library_years()


def library_knows(year: int) -> bool:
    """True when the holiday package has the State Council's dates for ``year``."""
    return _FIRST_YEAR <= year <= _LAST_YEAR


def national_day_kind(day: date) -> tuple[DayKind, str | None]:
    """What the national calendar says of ``day`` (and the holiday's name).

    A year the package does not know has neither holidays nor adjusted days.
    """
    if not library_knows(day.year):
        return DayKind.NORMAL, None
    if day in chinese_calendar.workdays:
        return DayKind.WORKDAY, chinese_calendar.workdays[day]
    if day in chinese_calendar.holidays:
        return DayKind.HOLIDAY, chinese_calendar.holidays[day]
    return DayKind.NORMAL, None


@dataclass(frozen=True)
class HolidayCalendar:
    """The national calendar with the platform admin's overrides on top.

    ``overrides`` maps a date to ``(DayKind or its value, name)``.
    """

    overrides: Mapping[date, tuple[DayKind | str, str]] = field(default_factory=dict)

    def day_kind(self, day: date) -> tuple[DayKind, str | None]:
        if day in self.overrides:
            kind, name = self.overrides[day]
            return DayKind(kind), name or None
        return national_day_kind(day)


@dataclass(frozen=True)
class WeeklyHours:
    """Opening spans per weekday, local wall-clock time."""

    spans: Mapping[int, tuple[tuple[time, time], ...]]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, time, time]]) -> WeeklyHours:
        table: dict[int, list[tuple[time, time]]] = {}
        for weekday, opens, closes in rows:
            table.setdefault(int(weekday), []).append((opens, closes))
        return cls({d: tuple(sorted(v)) for d, v in table.items()})

    @property
    def around_the_clock(self) -> bool:
        return not any(self.spans.values())

    def for_weekday(self, weekday: int) -> tuple[tuple[time, time], ...]:
        return self.spans.get(weekday, ())


@dataclass(frozen=True)
class Closure:
    """Why a span is not inside opening hours: ``rule`` is ``holiday`` or
    ``opening_hours``; ``day`` the first local date concerned."""

    rule: str
    day: date
    name: str | None = None


@dataclass(frozen=True)
class OpeningCalendar:
    hours: WeeklyHours
    tz: ZoneInfo
    closed_on_holidays: bool = True
    holidays: HolidayCalendar = field(default_factory=HolidayCalendar)

    def local_day(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    def is_closed_holiday(self, day: date) -> tuple[bool, str | None]:
        if not self.closed_on_holidays:
            return False, None
        kind, name = self.holidays.day_kind(day)
        return kind == DayKind.HOLIDAY, name

    def day_spans(self, day: date) -> list[Span]:
        """The opening spans of one local day, as UTC spans."""
        weekday = day.weekday()
        if self.closed_on_holidays:
            kind, _name = self.holidays.day_kind(day)
            if kind == DayKind.HOLIDAY:
                return []
            if kind == DayKind.WORKDAY:
                weekday = 0
        if self.hours.around_the_clock:
            return [self._span(day, time.min, None)]
        return [self._span(day, o, c) for o, c in self.hours.for_weekday(weekday)]

    def _span(self, day: date, opens: time, closes: time | None) -> Span:
        start = datetime.combine(day, opens, tzinfo=self.tz)
        if closes is None or closes >= END_OF_DAY_CLOSE:
            end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=self.tz)
        else:
            end = datetime.combine(day, closes, tzinfo=self.tz)
        return Span(start.astimezone(UTC), end.astimezone(UTC))

    def open_spans(self, window: Span) -> list[Span]:
        """Merged opening spans within ``window`` (clipped to it)."""
        first = self.local_day(window.start) - timedelta(days=1)
        last = self.local_day(window.end)
        pieces: list[Span] = []
        day = first
        while day <= last:
            for span in self.day_spans(day):
                start, end = max(span.start, window.start), min(span.end, window.end)
                if start < end:
                    pieces.append(Span(start, end))
            day += timedelta(days=1)
        return merge(pieces)

    def closure(self, span: Span) -> Closure | None:
        """None when ``span`` lies wholly inside opening hours; else why not.

        A closed holiday touched by the span is named first (a clearer
        message than "outside opening hours").
        """
        day = self.local_day(span.start)
        last = self.local_day(span.end - timedelta(microseconds=1))
        while day <= last:
            closed, name = self.is_closed_holiday(day)
            if closed:
                return Closure("holiday", day, name)
            day += timedelta(days=1)
        if any(piece.contains(span) for piece in self.open_spans(span)):
            return None
        return Closure("opening_hours", self.local_day(span.start))
