"""iCalendar (RFC 5545) texts of bookings: the pure builder behind the feeds.

Building an event with the icalendar library costs a fraction of a
millisecond, so a feed is never built event by event on a poll: each
booking's VEVENT text is built here once, when the booking changes, kept by
the feeds service, and a feed is assembled from kept texts
(``calendar_head`` + texts + ``calendar_tail``). Everything here is plain
data in, bytes out: no Flask, no SQLAlchemy, and the current time only where
an iTIP message needs it.

Three views of one booking:

- ``customer``: the customer's own calendar (personal feed, the .ics
  download): the resource, the lab, purpose, number, units, samples, link.
- ``lab``: the lab's calendar: the same plus the customer organisation and
  the person who booked.
- ``busy``: a resource's public calendar: when it is taken, nothing about who
  took it or why.

Texts come in the feed owner's language (``zh_CN`` or ``en``). Calendar
texts are content in two fixed languages, not interface messages, so their
words live in ``WORDS`` below rather than in the gettext catalogues.

Times are written in the platform's zone (``DTSTART;TZID=Asia/Shanghai``)
with its VTIMEZONE in the calendar head, so every client places the same
instant whatever zone it runs in.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, vCalAddress, vDuration

from booking.domain import clock

PRODID = "-//Jinchuanggu Open Sharing Platform//Booking feeds 1.0//ZH"
VIEWS = ("customer", "lab", "busy")
LOCALES = ("zh_CN", "en")
#: How often calendar programs are asked to poll (REFRESH-INTERVAL, X-PUBLISHED-TTL).
DEFAULT_REFRESH = timedelta(minutes=15)

#: Status of a booking -> iCalendar STATUS.
ICAL_STATUS = {
    "requested": "TENTATIVE",
    "approved": "CONFIRMED",
    "in_use": "CONFIRMED",
    "completed": "CONFIRMED",
    "settled": "CONFIRMED",
    "cancelled": "CANCELLED",
    "rejected": "CANCELLED",
    "expired": "CANCELLED",
    "no_show": "CANCELLED",
}
#: Booking states whose events stay in a feed only for a while, marked
#: cancelled, so subscribed clients remove them.
ENDED_STATUSES = frozenset(s for s, v in ICAL_STATUS.items() if v == "CANCELLED")

WORDS = {
    "zh_CN": {
        "status.requested": "待审批",
        "status.approved": "已批准",
        "status.in_use": "使用中",
        "status.completed": "已完成",
        "status.settled": "已结算",
        "status.cancelled": "已取消",
        "status.rejected": "已拒绝",
        "status.expired": "已过期",
        "status.no_show": "未到场",
        "busy": "已占用",
        "busy.tentative": "已占用（待确认）",
        "number": "预约编号",
        "status": "状态",
        "resource": "资源",
        "lab": "服务机构",
        "customer": "预约单位",
        "booked_by": "预约人",
        "units": "数量",
        "samples": "样品数",
        "purpose": "用途",
        "link": "详情",
        "cal.me": "我的预约",
        "cal.lab": "{name} · 预约",
        "cal.resource": "{name} · 占用时间",
        "cal.one": "预约 {number}",
        "sep": "：",
        "decorated": "{label}：{text}",
        "tentative": "{text}（待审批）",
    },
    "en": {
        "status.requested": "Requested",
        "status.approved": "Approved",
        "status.in_use": "In use",
        "status.completed": "Completed",
        "status.settled": "Settled",
        "status.cancelled": "Cancelled",
        "status.rejected": "Rejected",
        "status.expired": "Expired",
        "status.no_show": "No-show",
        "busy": "Busy",
        "busy.tentative": "Busy (tentative)",
        "number": "Booking number",
        "status": "Status",
        "resource": "Resource",
        "lab": "Lab",
        "customer": "Customer",
        "booked_by": "Booked by",
        "units": "Units",
        "samples": "Samples",
        "purpose": "Purpose",
        "link": "Details",
        "cal.me": "My bookings",
        "cal.lab": "{name} · bookings",
        "cal.resource": "{name} · busy times",
        "cal.one": "Booking {number}",
        "sep": ": ",
        "decorated": "{label}: {text}",
        "tentative": "{text} (requested)",
    },
}

UNIT_WORDS = {
    "zh_CN": {
        "instrument": "台",
        "core": "核",
        "node": "节点",
        "gpu": "卡",
        "gpu_card": "卡",
        "line": "条",
        "sample_slot": "样品位",
    },
    "en": {"gpu_card": "GPU card", "sample_slot": "sample slot"},
}


def booking_number(reservation_id: int) -> str:
    """The number a booking is quoted by (on its page, in mails, in feeds)."""
    return f"R{reservation_id:06d}"


def words(locale: str) -> dict[str, str]:
    return WORDS["en" if locale.startswith("en") else "zh_CN"]


@dataclass(frozen=True)
class EventData:
    """What a calendar needs to know of one booking, as plain values.

    Instants are aware (UTC or any zone); ``modified`` is when the booking
    last changed (DTSTAMP and LAST-MODIFIED of a published feed).
    """

    reservation_id: int
    status: str
    start: datetime
    end: datetime
    sequence: int
    created: datetime
    modified: datetime
    resource_name_zh: str
    resource_name_en: str
    location: str = ""
    lab_name: str = ""
    lab_name_en: str | None = None
    customer_name: str = ""
    customer_name_en: str | None = None
    booked_by: str = ""
    booked_by_email: str | None = None
    purpose: str = ""
    units: int = 1
    capacity_unit: str = ""
    samples: int | None = None
    # The span with the resource's buffers: what the busy view shows.
    busy_start: datetime | None = None
    busy_end: datetime | None = None
    url: str = ""
    number: str = field(default="")

    def __post_init__(self):
        for name in ("start", "end", "created", "modified", "busy_start", "busy_end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be an aware datetime")
        if not self.number:
            object.__setattr__(self, "number", booking_number(self.reservation_id))

    @property
    def ended(self) -> bool:
        return self.status in ENDED_STATUSES


def _pick(locale: str, zh: str, en: str | None) -> str:
    return (en or zh) if locale.startswith("en") else (zh or en or "")


def _utc(value: datetime) -> datetime:
    # iCalendar DTSTAMP, CREATED and LAST-MODIFIED are UTC, whole seconds.
    return value.astimezone(UTC).replace(microsecond=0)


def _local(value: datetime, tz: ZoneInfo) -> datetime:
    return value.astimezone(tz).replace(microsecond=0)


def event_uid(data: EventData, view: str, host: str) -> str:
    # The busy view has its own UID: a public calendar never names the booking.
    prefix = "busy" if view == "busy" else "reservation"
    return f"{prefix}-{data.reservation_id}@{host}"


def summary(data: EventData, locale: str, view: str) -> str:
    w = words(locale)
    text = _pick(locale, data.resource_name_zh, data.resource_name_en)
    if view == "busy":
        return f"{w['busy.tentative'] if data.status == 'requested' else w['busy']} · {text}"
    if view == "lab":
        customer = _pick(locale, data.customer_name, data.customer_name_en)
        if customer:
            text = f"{text} · {customer}"
    if data.status == "requested":
        return w["tentative"].format(text=text)
    if data.ended:
        return w["decorated"].format(label=w[f"status.{data.status}"], text=text)
    return text


def location(data: EventData, locale: str) -> str:
    lab = _pick(locale, data.lab_name, data.lab_name_en)
    parts = [p for p in (lab, data.location) if p]
    return ", ".join(parts)


def units_text(data: EventData, locale: str) -> str:
    unit = UNIT_WORDS["en" if locale.startswith("en") else "zh_CN"].get(
        data.capacity_unit, data.capacity_unit.replace("_", " ")
    )
    if not unit:
        return str(data.units)
    if locale.startswith("en"):
        return f"{data.units} {unit}{'s' if data.units != 1 and unit[-1] != 's' else ''}"
    return f"{data.units} {unit}"


def description(data: EventData, locale: str, view: str) -> str:
    w = words(locale)
    sep = w["sep"]
    lines = [
        f"{w['number']}{sep}{data.number}",
        f"{w['status']}{sep}{w[f'status.{data.status}']}",
        f"{w['resource']}{sep}{_pick(locale, data.resource_name_zh, data.resource_name_en)}",
    ]
    lab = _pick(locale, data.lab_name, data.lab_name_en)
    if lab:
        lines.append(f"{w['lab']}{sep}{lab}")
    customer = _pick(locale, data.customer_name, data.customer_name_en)
    if view == "lab" and customer:
        lines.append(f"{w['customer']}{sep}{customer}")
    if data.booked_by:
        lines.append(f"{w['booked_by']}{sep}{data.booked_by}")
    lines.append(f"{w['units']}{sep}{units_text(data, locale)}")
    if data.samples:
        lines.append(f"{w['samples']}{sep}{data.samples}")
    if data.purpose:
        lines.append(f"{w['purpose']}{sep}{data.purpose}")
    if data.url:
        lines.append(f"{w['link']}{sep}{data.url}")
    return "\n".join(lines)


def build_event(
    data: EventData,
    locale: str,
    view: str,
    *,
    host: str,
    tz: ZoneInfo,
    stamp: datetime | None = None,
) -> Event:
    """The VEVENT of one booking as an icalendar object.

    ``stamp`` is DTSTAMP: for a published feed (no METHOD) it is when the
    booking last changed, so the same booking always gives the same text; an
    iTIP message passes the time the message is made.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}")
    busy = view == "busy"
    start = data.busy_start if busy and data.busy_start else data.start
    end = data.busy_end if busy and data.busy_end else data.end
    event = Event()
    event.add("uid", event_uid(data, view, host))
    event.add("dtstamp", _utc(stamp or data.modified))
    event.add("dtstart", _local(start, tz))
    event.add("dtend", _local(end, tz))
    event.add("summary", summary(data, locale, view))
    event.add("sequence", max(int(data.sequence), 0))
    event.add("status", ICAL_STATUS[data.status])
    event.add("transp", "TRANSPARENT" if data.ended else "OPAQUE")
    event.add("last-modified", _utc(data.modified))
    if busy:
        event.add("class", "PUBLIC")
        return event
    event.add("created", _utc(data.created))
    event.add("class", "PRIVATE")
    where = location(data, locale)
    if where:
        event.add("location", where)
    event.add("description", description(data, locale, view))
    if data.url:
        event.add("url", data.url)
    return event


def event_text(data: EventData, locale: str, view: str, *, host: str, tz: ZoneInfo) -> bytes:
    """The VEVENT of one booking as folded RFC 5545 text (CRLF line ends): the
    unit the feeds service keeps and assembles."""
    return build_event(data, locale, view, host=host, tz=tz).to_ical()


@functools.lru_cache(maxsize=8)
def timezone_text(tzid: str) -> bytes:
    """The VTIMEZONE of a zone, made once per process (it costs tens of ms)."""
    return Timezone.from_tzid(
        tzid, first_date=date(1970, 1, 1), last_date=date(2100, 1, 1)
    ).to_ical()


@functools.lru_cache(maxsize=1024)
def calendar_head(
    name: str,
    tz: ZoneInfo,
    *,
    method: str | None = "PUBLISH",
    refresh: timedelta | None = DEFAULT_REFRESH,
    description: str | None = None,
) -> bytes:
    """Everything of a VCALENDAR up to its first event: the calendar's
    properties (PRODID, VERSION, METHOD, X-WR-CALNAME, REFRESH-INTERVAL,
    X-PUBLISHED-TTL) and the VTIMEZONE the events' times refer to. The
    same arguments make the same bytes, so heads are kept (building one
    with icalendar costs more than the events of a mail)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method:
        calendar.add("method", method)
    calendar.add("name", name)
    calendar.add("x-wr-calname", name)
    if description:
        calendar.add("x-wr-caldesc", description)
    calendar.add("x-wr-timezone", tz.key)
    if refresh is not None:
        calendar.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
        calendar.add("x-published-ttl", vDuration(refresh))
    text = calendar.to_ical()
    tail = calendar_tail()
    if not text.endswith(tail):  # pragma: no cover - icalendar always ends so
        raise RuntimeError("unexpected calendar text")
    return text[: -len(tail)] + timezone_text(tz.key)


def calendar_tail() -> bytes:
    return b"END:VCALENDAR\r\n"


def assemble(head: bytes, event_texts: Iterable[bytes]) -> bytes:
    """A whole calendar from its head and kept event texts: plain joining, no
    parsing, so a feed of thousands of events costs milliseconds."""
    return b"".join((head, *event_texts, calendar_tail()))


def calendar_name(kind: str, locale: str, name: str = "") -> str:
    return words(locale)[f"cal.{kind}"].format(name=name, number=name)


def single_event_calendar(
    data: EventData, locale: str, view: str, *, host: str, tz: ZoneInfo
) -> bytes:
    """One booking as a calendar file to download (no METHOD: a calendar
    program imports it as a plain event)."""
    head = calendar_head(
        calendar_name("one", locale, data.number), tz, method="PUBLISH", refresh=None
    )
    return assemble(head, [event_text(data, locale, view, host=host, tz=tz)])


#: Where UIDs and invitations say they come from; set at start from the
#: settings (``BASE_URL``'s host, ``MAIL_FROM``) by the feeds service.
_defaults = {"host": "localhost", "organizer_email": "noreply@localhost"}


def set_defaults(*, host: str, organizer_email: str) -> None:
    _defaults.update(host=host, organizer_email=organizer_email)


def invitation(
    reservation_data: EventData | Mapping[str, Any],
    locale: str,
    method: str,
    *,
    host: str | None = None,
    tz: ZoneInfo | None = None,
    organizer_email: str | None = None,
    organizer_name: str = "",
    now: datetime | None = None,
) -> bytes:
    """An iTIP message (RFC 5546) to attach to a mail: ``REQUEST`` when a
    booking is made, approved or moved, ``CANCEL`` when it is cancelled,
    rejected or expires. ``reservation_data`` is an ``EventData`` or a
    mapping of its fields (``booking.services.feeds.event_data`` makes one
    from a booking). The UID and SEQUENCE are the feeds' own, so a calendar
    that holds the event from a feed or an earlier mail updates it instead
    of adding a second one."""
    method = method.upper()
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError("method must be REQUEST or CANCEL")
    tz = tz or clock.platform_tz()
    host = host or _defaults["host"]
    organizer_email = organizer_email or _defaults["organizer_email"]
    data = (
        reservation_data
        if isinstance(reservation_data, EventData)
        else EventData(**reservation_data)
    )
    event = build_event(data, locale, "customer", host=host, tz=tz, stamp=now or clock.now())
    if method == "CANCEL":
        event["status"] = "CANCELLED"
    organizer = vCalAddress(f"mailto:{organizer_email}")
    if organizer_name:
        organizer.params["CN"] = organizer_name
    event.add("organizer", organizer)
    if data.booked_by_email:
        attendee = vCalAddress(f"mailto:{data.booked_by_email}")
        attendee.params.update(
            {
                "CN": data.booked_by or data.booked_by_email,
                "ROLE": "REQ-PARTICIPANT",
                "PARTSTAT": "ACCEPTED",
                "RSVP": "FALSE",
            }
        )
        event.add("attendee", attendee)
    name = calendar_name("one", locale, data.number)
    head = calendar_head(name, tz, method=method, refresh=None)
    return assemble(head, [event.to_ical()])
