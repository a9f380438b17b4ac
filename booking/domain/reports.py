"""The arithmetic of the two reports, pure: no Flask, no SQLAlchemy.

**Open-sharing assessment (开放共享评价考核, POLICY.md rules 25–29).**

- ``Programme``: an assessment programme's settings as plain values
  (threshold, benchmark hours, reporting limit, which resources count); the
  values themselves are data (``booking/data/assessment_programmes.json`` and
  the ``assessment_programmes`` table), never constants here.
- A year runs from 1 Jan 00:00 to the next 1 Jan 00:00 in the platform's
  zone (Asia/Shanghai); ``year_bounds`` gives those instants in UTC.
- Effective hours (有效机时) of one completed booking are its recorded
  preparation + run + post-processing minutes when any of the three is
  recorded, else its actual usage span (``actual_end − actual_start``; the
  booked span when no actual times were recorded). A booking whose usage
  span crosses a year boundary is split in proportion to the part of its
  span inside each year (``effective_minutes_within``). The database does
  the same sum (``booking.services.reports``); this function is the
  reference the tests hold it to.
- External hours (对外服务机时): the part for customers whose unified social
  credit code differs from the owner's; 共享率 = external ÷ effective (0 when
  nothing was used); utilisation = effective ÷ benchmark (1,400 h, 800 h for
  special-purpose instruments, by default).
- Money and counts belong to the year in which a booking's usage ended
  (service income, ratings); hours are split; a booking counts towards the
  users and organisations served of every year its usage touches.
- NRII words: ratings 5 非常满意, 4 基本满意, 3 一般, 2 不满意, 1 极差; an
  average takes the word of its value rounded half-up (4.5 → 非常满意).
- 运行状态 (7 values) from the resource status: available → 正常,
  maintenance → 偶有故障 (maintenance is a passing state; a lab whose
  instrument waited for repair most of the year sets 待修 by hand in the
  national platform), retired → 待报废.
- 共享模式 (3 values) from the year's use: external hours → 外部共享, only
  internal use → 内部共享, no use → 不共享.
- Reporting limit (rule 29): an in-scope instrument must be on the national
  network (NRII) within N working days after its acceptance, counted on the
  Chinese working-day calendar: Monday to Friday, less public holidays, plus
  the adjusted working days (调休上班) — ``booking.domain.calendar``'s
  ``HolidayCalendar``, with the platform admin's overrides.

**Voucher settlement.** ``flow_of`` says whether a voucher booking is local,
outbound (our voucher paid a provider elsewhere) or inbound (another region's
voucher paid a provider here) for a bureau's region; ``reconcile`` compares a
report's totals with the ledger to the fen.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter
from zoneinfo import ZoneInfo

from booking.domain.calendar import DayKind, HolidayCalendar
from booking.domain.money import ZERO, round_fen
from booking.domain.organizations import governed_prefix, region_within

HOURS_QUANTUM = Decimal("0.01")
RATE_QUANTUM = Decimal("0.0001")
RATING_QUANTUM = Decimal("0.01")
TEN_THOUSAND = Decimal("10000")


# --- programmes -------------------------------------------------------------------


@dataclass(frozen=True)
class Programme:
    """An assessment programme's settings (rule 25, 26, 29)."""

    code: str
    name_zh: str
    name_en: str
    threshold: Decimal
    quota_hours: Decimal
    special_quota_hours: Decimal
    report_within_working_days: int = 30
    resource_kinds: tuple[str, ...] = ("instrument",)
    funding_sources: tuple[str, ...] = ("government",)
    effective_from: date = date(2000, 1, 1)

    @classmethod
    def from_mapping(cls, data: dict) -> Programme:
        return cls(
            code=data["code"],
            name_zh=data["name_zh"],
            name_en=data["name_en"],
            threshold=Decimal(str(data["threshold"])),
            quota_hours=Decimal(str(data["quota_hours"])),
            special_quota_hours=Decimal(str(data["special_quota_hours"])),
            report_within_working_days=int(data.get("report_within_working_days", 30)),
            resource_kinds=tuple(data.get("resource_kinds", ("instrument",))),
            funding_sources=tuple(data.get("funding_sources", ("government",))),
            effective_from=date.fromisoformat(str(data.get("effective_from", "2000-01-01"))),
        )

    def quota_for(self, special_purpose: bool) -> Decimal:
        return self.special_quota_hours if special_purpose else self.quota_hours

    def in_scope(self, original_value: Decimal, funding_source: str, kind: str) -> bool:
        """Rule 25: government-funded and worth at least the threshold."""
        return (
            original_value >= self.threshold
            and funding_source in self.funding_sources
            and kind in self.resource_kinds
        )


# --- time -------------------------------------------------------------------------


def year_bounds(year: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """1 Jan 00:00 of ``year`` and of the next year, local, as UTC instants."""
    start = datetime.combine(date(year, 1, 1), time.min, tzinfo=tz)
    end = datetime.combine(date(year + 1, 1, 1), time.min, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def month_bounds(year: int, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The twelve local months of ``year`` as UTC ``[start, end)`` pairs."""
    return [period_month(year, month, tz) for month in range(1, 13)]


def period_month(year: int, month: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(date(year, month, 1), time.min, tzinfo=tz)
    nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    end = datetime.combine(nxt, time.min, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def months_between(first: date, last: date) -> list[tuple[int, int]]:
    """(year, month) of every month from ``first``'s to ``last``'s, inclusive."""
    months = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        months.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def period_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Local dates ``first`` to ``last`` inclusive as UTC ``[start, end)``."""
    start = datetime.combine(first, time.min, tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def overlap_seconds(start: datetime, end: datetime, lo: datetime, hi: datetime) -> Decimal:
    seconds = (min(end, hi) - max(start, lo)).total_seconds()
    return Decimal(str(max(seconds, 0.0)))


# --- effective hours ----------------------------------------------------------------


def recorded_minutes(prep: int | None, run: int | None, post: int | None) -> int | None:
    """Preparation + run + post-processing, when any of them was recorded."""
    if prep is None and run is None and post is None:
        return None
    return (prep or 0) + (run or 0) + (post or 0)


def effective_minutes_within(
    start: datetime,
    end: datetime,
    lo: datetime,
    hi: datetime,
    prep: int | None = None,
    run: int | None = None,
    post: int | None = None,
) -> Decimal:
    """The effective minutes of one usage ``[start, end)`` that fall in ``[lo, hi)``.

    With recorded prep/run/post minutes those are the usage, spread evenly
    over the span; otherwise the span itself. An empty span counts wholly in
    the window holding its start.
    """
    span_seconds = Decimal(str((end - start).total_seconds()))
    recorded = recorded_minutes(prep, run, post)
    minutes = Decimal(recorded) if recorded is not None else span_seconds / 60
    if span_seconds <= 0:
        return minutes if lo <= start < hi else ZERO
    return minutes * overlap_seconds(start, end, lo, hi) / span_seconds


def round_hours(minutes: Decimal | float | int | None) -> Decimal:
    """Minutes to hours, half-up to 0.01 h."""
    if minutes is None:
        return Decimal("0.00")
    return (Decimal(str(minutes)) / 60).quantize(HOURS_QUANTUM, rounding=ROUND_HALF_UP)


def ratio(part: Decimal | int, whole: Decimal | int) -> Decimal:
    """``part ÷ whole`` to four decimals (half-up); 0 when ``whole`` is 0."""
    if not whole:
        return Decimal("0.0000")
    return (Decimal(part) / Decimal(whole)).quantize(RATE_QUANTUM, rounding=ROUND_HALF_UP)


def share_rate(external_hours: Decimal, effective_hours: Decimal) -> Decimal:
    """共享率 = 对外服务机时 ÷ 有效工作机时 (rule 26)."""
    return ratio(external_hours, effective_hours)


def utilisation(effective_hours: Decimal, quota_hours: Decimal) -> Decimal:
    return ratio(effective_hours, quota_hours)


# --- NRII words and enums -------------------------------------------------------------

RATING_WORDS = {5: "非常满意", 4: "基本满意", 3: "一般", 2: "不满意", 1: "极差"}

#: NRII 运行状态, its seven values.
NRII_STATUSES = ("正常", "待机", "远程服务中", "偶有故障", "故障频繁", "待修", "待报废")
STATUS_TO_NRII = {"available": "正常", "maintenance": "偶有故障", "retired": "待报废"}

#: NRII 共享模式, its three values.
SHARE_INTERNAL = "内部共享"
SHARE_EXTERNAL = "外部共享"
SHARE_NONE = "不共享"
NRII_SHARE_MODES = (SHARE_INTERNAL, SHARE_EXTERNAL, SHARE_NONE)

#: NRII 服务方式 of the reservation's ``service_way``.
SERVICE_WAY_TO_NRII = {
    "self_operated": "占用共享",
    "guided": "技术共享",
    "entrusted": "委托共享",
    "remote": "远程共享",
    "other": "其他",
}


def average_rating(score_sum: int | Decimal | None, count: int) -> Decimal | None:
    if not count or score_sum is None:
        return None
    return (Decimal(score_sum) / count).quantize(RATING_QUANTUM, rounding=ROUND_HALF_UP)


def rating_word(average: Decimal | int | None) -> str | None:
    """The NRII word of a score or an average score (rounded half-up)."""
    if average is None:
        return None
    score = int(Decimal(average).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    return RATING_WORDS[min(max(score, 1), 5)]


def nrii_status(resource_status: str) -> str:
    return STATUS_TO_NRII[resource_status]


def share_mode(effective_hours: Decimal, external_hours: Decimal) -> str:
    if external_hours > 0:
        return SHARE_EXTERNAL
    if effective_hours > 0:
        return SHARE_INTERNAL
    return SHARE_NONE


def wan_yuan(amount: Decimal | None) -> Decimal:
    """CNY to 万元 with two decimals (NRII ``worth`` and income)."""
    return round_fen((amount or ZERO) / TEN_THOUSAND)


# --- the reporting limit (rule 29) ----------------------------------------------------


def is_working_day(day: date, calendar: HolidayCalendar) -> bool:
    kind, _name = calendar.day_kind(day)
    if kind == DayKind.WORKDAY:
        return True
    if kind == DayKind.HOLIDAY:
        return False
    return day.weekday() < 5


def add_working_days(day: date, count: int, calendar: HolidayCalendar) -> date:
    """The ``count``-th working day after ``day`` (``day`` itself not counted)."""
    current = day
    left = count
    while left > 0:
        current += timedelta(days=1)
        if is_working_day(current, calendar):
            left -= 1
    return current


class WorkingDays:
    """The working days from ``first`` to ``last``, for many deadline
    look-ups at once (a report asks for thousands); beyond the range it
    counts day by day like ``add_working_days``."""

    def __init__(self, calendar: HolidayCalendar, first: date, last: date) -> None:
        self.calendar = calendar
        self.days: list[date] = []
        day = first
        while day <= last:
            if is_working_day(day, calendar):
                self.days.append(day)
            day += timedelta(days=1)

    def add(self, day: date, count: int) -> date:
        index = bisect_right(self.days, day) + count - 1
        if self.days and day >= self.days[0] and 0 <= index < len(self.days):
            return self.days[index]
        return add_working_days(day, count, self.calendar)


class ReportingState(enum.StrEnum):
    REPORTED = "reported"  # on the network within the limit
    LATE = "late"  # on the network, but after the limit
    OVERDUE = "overdue"  # not on the network and the limit has passed: the flag
    PENDING = "pending"  # not yet, still within the limit
    UNKNOWN = "unknown"  # no acceptance date recorded


def reporting_state(
    accepted_on: date | None, reported_on: date | None, deadline: date | None, today: date
) -> ReportingState:
    if reported_on is not None:
        if deadline is not None and reported_on > deadline:
            return ReportingState.LATE
        return ReportingState.REPORTED
    if accepted_on is None or deadline is None:
        return ReportingState.UNKNOWN
    return ReportingState.OVERDUE if today > deadline else ReportingState.PENDING


# --- the open-sharing report --------------------------------------------------------


@dataclass(frozen=True)
class InstrumentUsage:
    """What the database summed for one instrument and year."""

    effective_minutes: Decimal = ZERO
    external_minutes: Decimal = ZERO
    bookings: int = 0
    users: int = 0
    external_users: int = 0
    organizations: int = 0
    external_organizations: int = 0
    income: Decimal = ZERO
    external_income: Decimal = ZERO
    rating_sum: int = 0
    ratings: int = 0
    trainings: int = 0


@dataclass(frozen=True)
class InstrumentFacts:
    """The catalog's facts of one in-scope instrument."""

    resource_id: int
    provider_id: int
    provider_name: str
    inner_id: str | None
    name_zh: str
    name_en: str
    category_code: str | None
    original_value: Decimal
    country: str | None
    manufacturer: str
    model: str
    accepted_on: date | None
    special_purpose: bool
    status: str
    nrii_reported_on: date | None
    fee: str = ""
    service_url: str = ""


@dataclass(frozen=True, kw_only=True)
class InstrumentLine(InstrumentFacts):
    """One in-scope instrument of the open-sharing report: its catalog facts
    and the year's figures."""

    reporting_deadline: date | None
    reporting: ReportingState
    quota_hours: Decimal
    effective_hours: Decimal
    external_hours: Decimal
    share_rate: Decimal
    utilisation: Decimal
    bookings: int
    users: int
    external_users: int
    organizations: int
    external_organizations: int
    income: Decimal
    external_income: Decimal
    trainings: int
    ratings: int
    average_rating: Decimal | None
    rating_word: str | None
    nrii_status: str
    share_mode: str

    @property
    def overdue(self) -> bool:
        return self.reporting == ReportingState.OVERDUE


#: The facts' field names, once (``dataclasses.fields`` per line costs more
#: than the rest of a line).
_FACT_NAMES = tuple(f.name for f in fields(InstrumentFacts))


def instrument_line(
    facts: InstrumentFacts,
    usage: InstrumentUsage,
    programme: Programme,
    working_days: WorkingDays | HolidayCalendar,
    today: date,
) -> InstrumentLine:
    effective = round_hours(usage.effective_minutes)
    external = round_hours(usage.external_minutes)
    quota = programme.quota_for(facts.special_purpose)
    limit = programme.report_within_working_days
    deadline = None
    if facts.accepted_on is not None:
        if isinstance(working_days, WorkingDays):
            deadline = working_days.add(facts.accepted_on, limit)
        else:
            deadline = add_working_days(facts.accepted_on, limit, working_days)
    average = average_rating(usage.rating_sum, usage.ratings)
    return InstrumentLine(
        **{name: getattr(facts, name) for name in _FACT_NAMES},
        reporting_deadline=deadline,
        reporting=reporting_state(facts.accepted_on, facts.nrii_reported_on, deadline, today),
        quota_hours=quota,
        effective_hours=effective,
        external_hours=external,
        share_rate=share_rate(external, effective),
        utilisation=utilisation(effective, quota),
        bookings=usage.bookings,
        users=usage.users,
        external_users=usage.external_users,
        organizations=usage.organizations,
        external_organizations=usage.external_organizations,
        income=usage.income,
        external_income=usage.external_income,
        trainings=usage.trainings,
        ratings=usage.ratings,
        average_rating=average,
        rating_word=rating_word(average),
        nrii_status=nrii_status(facts.status),
        share_mode=share_mode(effective, external),
    )


@dataclass(frozen=True)
class Distinct:
    """Distinct users and organisations served across a set of instruments
    (a sum over instruments would count a user twice)."""

    users: int = 0
    external_users: int = 0
    organizations: int = 0
    external_organizations: int = 0


@dataclass(frozen=True)
class SharingTotals:
    """A lab's (or a region's) totals, rule 28's 成效 figures included."""

    instruments: int
    reported: int
    running: int
    shared: int
    shared_externally: int
    overdue: int
    network_ratio: Decimal  # 入网比例
    running_ratio: Decimal  # 正常运行比例
    shared_ratio: Decimal  # 参与共享比例
    external_ratio: Decimal  # 外部共享比例
    original_value: Decimal
    effective_hours: Decimal
    external_hours: Decimal
    share_rate: Decimal
    average_effective_hours: Decimal
    quota_hours: Decimal
    utilisation: Decimal
    bookings: int
    users: int
    external_users: int
    organizations: int
    external_organizations: int
    income: Decimal
    external_income: Decimal
    trainings: int
    ratings: int
    average_rating: Decimal | None
    rating_word: str | None


def sharing_totals(
    lines: Iterable[InstrumentLine], distinct: Distinct, rating_sum: int, year_end: date
) -> SharingTotals:
    """Totals of ``lines``: sums of the lines as shown (hours rounded per line),
    the four ratios of rule 28, and the distinct users and organisations.

    An instrument counts as on the network (入网) when it was reported on or
    before the last day of the year.
    """
    lines = list(lines)
    n = len(lines)
    reported = sum(
        1 for li in lines if li.nrii_reported_on is not None and li.nrii_reported_on <= year_end
    )
    running = sum(1 for li in lines if li.status == "available")
    shared = sum(1 for li in lines if li.share_mode != SHARE_NONE)
    external_n = sum(1 for li in lines if li.share_mode == SHARE_EXTERNAL)
    effective = sum((li.effective_hours for li in lines), Decimal("0.00"))
    external = sum((li.external_hours for li in lines), Decimal("0.00"))
    quota = sum((li.quota_hours for li in lines), Decimal("0"))
    ratings = sum(li.ratings for li in lines)
    average = average_rating(rating_sum, ratings)
    return SharingTotals(
        instruments=n,
        reported=reported,
        running=running,
        shared=shared,
        shared_externally=external_n,
        overdue=sum(1 for li in lines if li.overdue),
        network_ratio=ratio(reported, n),
        running_ratio=ratio(running, n),
        shared_ratio=ratio(shared, n),
        external_ratio=ratio(external_n, n),
        original_value=sum((li.original_value for li in lines), ZERO),
        effective_hours=effective,
        external_hours=external,
        share_rate=share_rate(external, effective),
        average_effective_hours=(effective / n).quantize(HOURS_QUANTUM, rounding=ROUND_HALF_UP)
        if n
        else Decimal("0.00"),
        quota_hours=quota,
        utilisation=utilisation(effective, quota),
        bookings=sum(li.bookings for li in lines),
        users=distinct.users,
        external_users=distinct.external_users,
        organizations=distinct.organizations,
        external_organizations=distinct.external_organizations,
        income=sum((li.income for li in lines), ZERO),
        external_income=sum((li.external_income for li in lines), ZERO),
        trainings=sum(li.trainings for li in lines),
        ratings=ratings,
        average_rating=average,
        rating_word=rating_word(average),
    )


def instrument_order(line: InstrumentLine) -> tuple:
    """Stable order of the report and the NRII export: by lab, then the
    lab's inner number (instruments without one last), then the id."""
    return (line.provider_id, line.inner_id is None, line.inner_id or "", line.resource_id)


# --- the NRII export ------------------------------------------------------------------

#: The per-instrument fields of the NRII annual report, in their order:
#: the instrument record (type 4) followed by the year's figures.
NRII_FIELDS: tuple[str, ...] = (
    "innerId",
    "cname",
    "ename",
    "instrCategory",
    "worth",
    "nation",
    "manufacturer",
    "beginDate",
    "type",
    "instrVersion",
    "status",
    "shareMode",
    "fee",
    "serviceUrl",
    "effectiveHours",
    "externalHours",
    "serviceIncome",
    "serviceUsers",
    "serviceUnits",
    "trainings",
    "rating",
)


def nrii_record(line: InstrumentLine) -> dict:
    """One instrument in the NRII field layout: text and numbers only, money in 万元."""
    return {
        "innerId": line.inner_id or "",
        "cname": line.name_zh,
        "ename": line.name_en,
        "instrCategory": line.category_code or "",
        "worth": wan_yuan(line.original_value),
        "nation": line.country or "",
        "manufacturer": line.manufacturer,
        "beginDate": line.accepted_on.isoformat() if line.accepted_on else "",
        "type": "专用" if line.special_purpose else "通用",
        "instrVersion": line.model,
        "status": line.nrii_status,
        "shareMode": line.share_mode,
        "fee": line.fee,
        "serviceUrl": line.service_url,
        "effectiveHours": line.effective_hours,
        "externalHours": line.external_hours,
        "serviceIncome": wan_yuan(line.income),
        "serviceUsers": line.users,
        "serviceUnits": line.organizations,
        "trainings": line.trainings,
        "rating": line.rating_word or "",
    }


# --- voucher settlement ---------------------------------------------------------------


class Flow(enum.StrEnum):
    """A voucher booking seen from a bureau's region."""

    LOCAL = "local"  # our voucher, a provider here
    OUTBOUND = "outbound"  # our voucher paid a provider elsewhere
    INBOUND = "inbound"  # another region's voucher paid a provider here


def flow_of(issuing_region: str, provider_region: str | None, region: str) -> Flow | None:
    """How a voucher booking touches ``region`` (a prefix or a 6-digit code);
    None when it does not touch it. A voucher movement with no booking
    (issue, expiry) is local to the issuing region."""
    ours = region_within(issuing_region, region)
    if provider_region is None:
        return Flow.LOCAL if ours else None
    here = region_within(provider_region, region)
    if ours and here:
        return Flow.LOCAL
    if ours:
        return Flow.OUTBOUND
    if here:
        return Flow.INBOUND
    return None


GROUPINGS = ("provider", "enterprise", "category", "region", "month")

#: The money columns of the settlement report, in order.
SETTLEMENT_AMOUNTS = (
    "total_fees",
    "voucher_share",
    "customer_share",
    "held",
    "redeemed",
    "claimed",
    "approved",
    "paid",
    "expired",
)


@dataclass(frozen=True)
class SettlementLine:
    key: str
    label: str
    flow: Flow
    bookings: int = 0
    total_fees: Decimal = ZERO
    voucher_share: Decimal = ZERO
    customer_share: Decimal = ZERO
    held: Decimal = ZERO
    redeemed: Decimal = ZERO
    claimed: Decimal = ZERO
    approved: Decimal = ZERO
    paid: Decimal = ZERO
    expired: Decimal = ZERO
    region: str | None = None


def settlement_total(lines: Iterable[SettlementLine], label: str = "") -> SettlementLine:
    sums = [ZERO] * len(SETTLEMENT_AMOUNTS)
    bookings = 0
    amounts_of = attrgetter(*SETTLEMENT_AMOUNTS)
    for li in lines:
        bookings += li.bookings
        sums = [a + b for a, b in zip(sums, amounts_of(li), strict=True)]
    return SettlementLine(
        key="total",
        label=label,
        flow=Flow.LOCAL,
        bookings=bookings,
        **dict(zip(SETTLEMENT_AMOUNTS, sums, strict=True)),
    )


@dataclass(frozen=True)
class Reconciliation:
    """One figure of the report against the same figure summed straight
    from the ledger (or from the bookings)."""

    name: str
    report: Decimal
    ledger: Decimal

    @property
    def difference(self) -> Decimal:
        return self.report - self.ledger

    @property
    def ok(self) -> bool:
        return self.difference == 0


@dataclass(frozen=True)
class ReconciliationResult:
    checks: tuple[Reconciliation, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def reconcile(pairs: Iterable[tuple[str, Decimal, Decimal]]) -> ReconciliationResult:
    return ReconciliationResult(tuple(Reconciliation(n, r, ledger) for n, r, ledger in pairs))


def region_prefix(region: str) -> str:
    """A region code or prefix as the prefix it governs (``140100`` → ``1401``)."""
    return governed_prefix(region)
