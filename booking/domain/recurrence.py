"""Recurring bookings: the one function that turns a rule into occurrences.

A rule is ``{"freq": "daily"|"weekly", "interval"?, "count"?, "until"?,
"byweekday"?}`` (API.md), a small subset of RFC 5545's RRULE:

- ``interval``: every n-th day or week (default 1);
- exactly one of ``count`` (number of occurrences, the first included) or
  ``until`` (a local date, inclusive, or an instant: no occurrence starts
  after it);
- ``byweekday``: weekdays (0 = Monday … 6, or ``"MO"`` … ``"SU"``). Weekly: the
  days of each n-th week (weeks start on Monday); default the first
  occurrence's weekday. Daily: only those weekdays of every n-th day.

Occurrences keep the wall-clock time of the first one in the platform's zone
and the same length. Days that do not match the rule are skipped, including
the first day itself (a weekly rule on Mondays starting on a Sunday begins on
the Monday after). At most ``MAX_OCCURRENCES`` occurrences; a rule asking for
more is refused rather than cut short.

Pure: the reservation service checks and books each occurrence; feeds and
conflicts use the same function, so they never disagree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from booking.domain.errors import N_, ValidationFailed
from booking.domain.spans import Span

MAX_OCCURRENCES = 200
WEEKDAY_CODES = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
FREQUENCIES = ("daily", "weekly")


@dataclass(frozen=True)
class RecurrenceRule:
    freq: str
    interval: int = 1
    count: int | None = None
    until: date | datetime | None = None
    byweekday: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        until: str | None = None
        if self.until is not None:
            until = self.until.isoformat()
        return {
            "freq": self.freq,
            "interval": self.interval,
            "count": self.count,
            "until": until,
            "byweekday": list(self.byweekday),
        }


def _weekday(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int) and 0 <= value <= 6:
        return value
    if isinstance(value, str) and value.strip().upper() in WEEKDAY_CODES:
        return WEEKDAY_CODES[value.strip().upper()]
    raise ValueError


def parse_rule(data: Mapping[str, Any]) -> RecurrenceRule:
    """Check a rule as a client writes it; ``ValidationFailed`` names the field
    (``recurrence.<name>``). ``until`` may already be a date or datetime."""
    errors: dict[str, str] = {}
    freq = data.get("freq")
    if freq not in FREQUENCIES:
        errors["recurrence.freq"] = N_("Choose daily or weekly.")
    interval = data.get("interval")
    if interval is None:
        interval = 1
    if isinstance(interval, bool) or not isinstance(interval, int) or not 1 <= interval <= 52:
        errors["recurrence.interval"] = N_("The interval is a whole number from 1 to 52.")
    count = data.get("count")
    until = data.get("until")
    if (count is None) == (until is None):
        errors["recurrence.count"] = N_("Give either a number of occurrences or an end date.")
    if count is not None and (
        isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_OCCURRENCES
    ):
        errors["recurrence.count"] = N_("The number of occurrences is from 1 to 200.")
    if until is not None and not isinstance(until, date):
        errors["recurrence.until"] = N_("Not a valid date.")
    weekdays: list[int] = []
    try:
        weekdays = sorted({_weekday(v) for v in data.get("byweekday") or ()})
    except (ValueError, TypeError):
        errors["recurrence.byweekday"] = N_("Weekdays are 0 (Monday) to 6 (Sunday).")
    if errors:
        raise ValidationFailed(errors)
    return RecurrenceRule(
        freq=freq, interval=interval, count=count, until=until, byweekday=tuple(weekdays)
    )


def _candidate_days(first: date, rule: RecurrenceRule) -> Iterator[date]:
    if rule.freq == "daily":
        day = first
        while True:
            if not rule.byweekday or day.weekday() in rule.byweekday:
                yield day
            day += timedelta(days=rule.interval)
    else:
        weekdays = rule.byweekday or (first.weekday(),)
        monday = first - timedelta(days=first.weekday())
        while True:
            for weekday in weekdays:
                day = monday + timedelta(days=weekday)
                if day >= first:
                    yield day
            monday += timedelta(weeks=rule.interval)


def _past_until(start: datetime, day: date, rule: RecurrenceRule) -> bool:
    if rule.until is None:
        return False
    if isinstance(rule.until, datetime):
        return start > rule.until
    return day > rule.until


def occurrences(start: datetime, end: datetime, rule: RecurrenceRule, tz: ZoneInfo) -> list[Span]:
    """The spans of the series that begins with ``[start, end)``, as UTC spans.

    Raises ``ValidationFailed`` when the rule yields nothing or more than
    ``MAX_OCCURRENCES`` occurrences.
    """
    first_local = start.astimezone(tz)
    wall_clock = first_local.timetz().replace(tzinfo=None)
    length = end - start
    found: list[Span] = []
    for day in _candidate_days(first_local.date(), rule):
        local_start = datetime.combine(day, wall_clock, tzinfo=tz)
        instant = local_start.astimezone(UTC)
        if _past_until(instant, day, rule):
            break
        found.append(Span(instant, (local_start + length).astimezone(UTC)))
        if rule.count is not None and len(found) == rule.count:
            break
        if len(found) > MAX_OCCURRENCES:
            raise ValidationFailed(
                {"recurrence.until": N_("A series has at most 200 occurrences.")}
            )
    if not found:
        raise ValidationFailed({"recurrence": N_("The rule yields no occurrence.")})
    return found
