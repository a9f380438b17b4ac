"""Instants and the platform's time zone.

Instants are aware datetimes in UTC inside the platform. A time a person or a
client writes without an offset means platform local time (Asia/Shanghai by
default). ``now()`` is the one place the code asks for the current time, so
tests can move it (time-machine patches it too).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MIN_YEAR = 2000
MAX_YEAR = 2100

_platform_tz = ZoneInfo("Asia/Shanghai")


def set_platform_tz(name: str) -> None:
    """Set once at start from the ``TIMEZONE`` setting."""
    global _platform_tz
    _platform_tz = ZoneInfo(name)


def platform_tz() -> ZoneInfo:
    """The platform's time zone: opening hours and local days are read in it."""
    return _platform_tz


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime, tz: ZoneInfo) -> datetime:
    """An aware UTC instant; a naive value is read as local time in ``tz``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def parse_instant(text: str, tz: ZoneInfo) -> datetime:
    """Parse ISO 8601; raise ``ValueError`` with a message id when it is not
    a time, or lies outside the years the platform can mean."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise ValueError("Not a valid date and time (ISO 8601).") from None
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError("The date is out of range.")
    return as_utc(value, tz)


def local(value: datetime, tz: ZoneInfo) -> datetime:
    return value.astimezone(tz)


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants at which a local calendar day starts and ends."""
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def local_end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The last instant of a local day (23:59:59), as UTC: voucher validity ends here."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=tz).astimezone(UTC)
