"""Reports: the voucher settlement report for the bureaus and the
open-sharing assessment report (开放共享评价考核) for labs and bureaus.

Everything is summed by the database (one grouped query per figure set; no
booking is ever loaded into Python), then shaped by the pure functions of
``booking.domain.reports``. Both reports only read; on a deployment with a
read replica the web layer passes a session on it (``REPORTS_DATABASE_URL``,
see ``ReportSessions``).

Portable SQL: the same statements run on PostgreSQL and SQLite. Instants are
compared as stored (UTC); "seconds between" and least/greatest are the only
dialect-specific pieces (``_Sql``). Months are told apart by a ``CASE`` over
the months' UTC boundaries, computed in Python from the platform's zone, so
no time zone arithmetic happens in the database. Money sums are exact on both
(NUMERIC on PostgreSQL; whole fen on SQLite).

**Open sharing** (POLICY.md rules 25–29; see ``booking.domain.reports`` for
the definitions): completed and settled bookings only (cancelled, rejected,
expired and no-show bookings are never usage); a booking's usage span is
``[actual_start, actual_end)`` (the booked span where nothing was recorded).

**Voucher settlement**, for a period of local dates and a region:

- booking figures (bookings, total fees, voucher share, customer share) are
  those of the voucher bookings **redeemed in the period** (the ledger's
  ``redeem`` entry dated in it, kept on the booking as ``redeemed_at`` by the
  entry's insert), read from the bookings themselves;
- ledger figures are the ledger entries dated in the period: ``held`` (put
  on hold when bookings were approved), ``redeemed``, ``expired``;
- claim figures are those of the period's redeemed bookings, as they stand:
  ``claimed`` (in a filed claim, not rejected), ``approved`` (lines
  approved), ``paid`` (approved lines of paid claims);
- a line is one group (provider, enterprise, service category, issuing
  region or month) and one flow seen from the region: local, outbound (our
  vouchers paid providers elsewhere) or inbound (other regions' vouchers paid
  providers here). Expired amounts belong to no provider or category: with
  those groupings they form a line of their own;
- the footer compares, to the fen, the bookings' voucher shares with the
  ledger's redeem entries, and the local and outbound lines (the money of
  the region's own vouchers) with the ledger of those vouchers summed
  straight, without the report's joins.

Speed: the ledger's figures are summed from the period's entries alone (each
booking entry names the booking's resource), the bookings' and claims' from
the bookings redeemed in the period (an index on ``redeemed_at``): no
statement joins the period's ledger to the bookings (``_settlement_sums``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Float,
    Numeric,
    and_,
    case,
    cast,
    create_engine,
    func,
    literal,
    literal_column,
    or_,
    outerjoin,
    select,
    text,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from booking import authz
from booking.authz import Actor
from booking.domain import clock
from booking.domain import reports as rules
from booking.domain.calendar import HolidayCalendar
from booking.domain.errors import N_, ValidationFailed
from booking.domain.money import ZERO
from booking.domain.organizations import region_name
from booking.models.accounts import Organization
from booking.models.base import UTCDateTime
from booking.models.catalog import (
    CalendarDay,
    Category,
    PriceRule,
    Resource,
    TrainingRecord,
)
from booking.models.claims import Claim, ClaimLine
from booking.models.reports import AssessmentProgramme
from booking.models.reservations import Rating, Reservation
from booking.models.vouchers import VoucherLedgerEntry

#: Bookings whose usage counts: completed, and completed then settled.
USAGE_STATUSES = ("completed", "settled")
#: Claims filed with the bureau (drafts and withdrawn ones are not claims yet).
FILED_CLAIM_STATUSES = ("submitted", "audited", "paid")

UNIT_WORDS = {
    "hour": "小时",
    "sample": "样",
    "core_hour": "核时",
    "node_hour": "节点时",
    "gpu_hour": "卡时",
    "day": "天",
    "shift": "班",
    "batch": "批",
}
FEE_CLASSES = ("enterprise", "academic", "internal")
#: Memory for sorts and hashes of one report query (PostgreSQL ``work_mem``).
REPORT_WORK_MEM = "64MB"
FEN = Decimal("0.01")


# --- replica -------------------------------------------------------------------------


class ReportSessions:
    """Sessions on a read replica for the reports, one engine per URL, made
    on first use. The web layer asks for one when ``REPORTS_DATABASE_URL``
    is set and uses the main session otherwise."""

    def __init__(self) -> None:
        self._makers: dict[str, sessionmaker] = {}

    def session(self, url: str) -> Session:
        maker = self._makers.get(url)
        if maker is None:
            from booking.database import engine_options, normalise_url

            url_n = normalise_url(url)
            engine = create_engine(url_n, **engine_options(url_n, 30_000))
            maker = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)
            self._makers[url] = maker
        return maker()

    def dispose(self) -> None:
        for maker in self._makers.values():
            maker.kw["bind"].dispose()
        self._makers.clear()


# --- portable SQL ------------------------------------------------------------------------


class _Sql:
    """The few expressions PostgreSQL and SQLite spell differently."""

    def __init__(self, session: Session) -> None:
        self.pg = session.get_bind().dialect.name == "postgresql"

    def instant(self, value: datetime) -> ColumnElement:
        return literal(value, UTCDateTime())

    def seconds(self, later, earlier) -> ColumnElement:
        # date_part gives double precision: much cheaper than EXTRACT's numeric
        if self.pg:
            return func.date_part("epoch", later - earlier, type_=Float())
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0

    def float(self, expr) -> ColumnElement:
        return cast(expr, Float())

    def money_column(self, expr) -> ColumnElement:
        """A money sum as one type for every branch of a UNION."""
        return cast(expr, Numeric(18, 2)) if self.pg else cast(expr, Float())

    def tune_for_reports(self, session: Session) -> None:
        """Let this transaction's sorts and hashes stay in memory (a report
        groups hundreds of thousands of rows; the default 4 MB spills), keep
        the JIT compiler out of it, group by hashing and let the planner use
        parallel workers readily."""
        if self.pg:
            session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
            # Compiling a report's expressions costs more than it saves (half a
            # second at a million bookings); the plans are scans and hashes.
            session.execute(text("SET LOCAL jit = off"))
            # Group by hashing: the planner overestimates the groups of the
            # settlement's first step and would sort half a million rows by
            # text keys (collation-aware comparisons) instead.
            session.execute(text("SET LOCAL enable_sort = off"))
            # Parallel workers for the scans and hashes of half a million rows:
            # at the default tuple cost the planner keeps the settlement
            # serial. The setup cost stays at its default, so that a month of
            # one city (a few thousand rows) does not start workers whose
            # start-up and own hash builds cost more than they save.
            session.execute(text("SET LOCAL parallel_tuple_cost = 0.001"))
            # psycopg prepares a statement on its fifth run, and PostgreSQL
            # may then plan it once for any parameters: a year's report was
            # planned without its dates, serial, and took 8 s instead of 2.5.
            # A report's plan depends on its period and scope: plan each run.
            session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))

    def least(self, a, b) -> ColumnElement:
        return func.least(a, b) if self.pg else func.min(a, b)

    def greatest(self, a, b) -> ColumnElement:
        return func.greatest(a, b) if self.pg else func.max(a, b)

    def money_sum(self, expr) -> ColumnElement:
        # SQLite keeps NUMERIC as floating point: sum whole fen instead.
        if self.pg:
            return func.coalesce(func.sum(expr), 0)
        return func.coalesce(func.sum(func.round(expr * 100)), 0)

    def plain_money(self, expr) -> ColumnElement:
        """A money sum read back as a plain number (``money`` converts it):
        no per-value type processing on thousands of rows."""
        return type_coerce(expr, Numeric(18, 2) if self.pg else Float())

    def money(self, value: Any) -> Decimal:
        if value is None:
            return ZERO
        if self.pg:
            # Money columns are NUMERIC(14,2) or cast to NUMERIC(18,2), and a
            # sum keeps its operands' scale: a Decimal comes back with its two
            # places already (checking its exponent cost a tenth of the
            # enterprise grouping's 20,000 lines).
            if type(value) is Decimal:
                return value
            return Decimal(value).quantize(FEN)
        return (Decimal(round(float(value))) / 100).quantize(FEN)

    def month_key(self, column, months: list[tuple[str, datetime, datetime]]) -> ColumnElement:
        """``'YYYY-MM'`` of an instant already known to lie within ``months``."""
        whens = [(column < self.instant(end), literal(label)) for label, _s, end in months]
        return case(*whens, else_=literal(months[-1][0]))

    def decimal(self, value: Any) -> Decimal:
        return Decimal(str(value)) if value is not None else ZERO


def _starts_with(column, prefix: str | None) -> ColumnElement:
    if prefix is None:
        return true()
    return column.startswith(prefix, autoescape=True)


# --- programmes ----------------------------------------------------------------------------


def default_programmes() -> dict[str, rules.Programme]:
    import json
    from importlib import resources

    text = resources.files("booking").joinpath("data/assessment_programmes.json").read_text("utf-8")
    return {item["code"]: rules.Programme.from_mapping(item) for item in json.loads(text)}


def programme_for(session: Session, code: str, year: int) -> rules.Programme:
    """The programme's settings in force on 1 Jan of ``year``: the latest row
    of the table, else the shipped defaults."""
    row = session.scalar(
        select(AssessmentProgramme)
        .where(
            AssessmentProgramme.code == code,
            AssessmentProgramme.effective_from <= date(year, 1, 1),
        )
        .order_by(AssessmentProgramme.effective_from.desc())
        .limit(1)
    )
    if row is not None:
        return rules.Programme(
            code=row.code,
            name_zh=row.name_zh,
            name_en=row.name_en,
            threshold=row.threshold,
            quota_hours=Decimal(row.quota_hours),
            special_quota_hours=Decimal(row.special_quota_hours),
            report_within_working_days=row.report_within_working_days,
            resource_kinds=tuple(row.resource_kinds),
            funding_sources=tuple(row.funding_sources),
            effective_from=row.effective_from,
        )
    defaults = default_programmes()
    if code not in defaults and not session.scalar(
        select(AssessmentProgramme.id).where(AssessmentProgramme.code == code).limit(1)
    ):
        raise ValidationFailed({"programme": N_("Unknown assessment programme.")})
    if code not in defaults:
        raise ValidationFailed(
            {"programme": N_("The programme has no settings in force for this year.")}
        )
    return defaults[code]


def programme_codes(session: Session) -> list[str]:
    codes = set(default_programmes()) | set(
        session.scalars(select(AssessmentProgramme.code).distinct())
    )
    return sorted(codes)


def save_programme(session: Session, actor: Actor, data: dict) -> AssessmentProgramme:
    """Add a version of a programme's settings (platform admin)."""
    from booking.services import audit

    authz.require(actor, "report.programme.change")
    row = session.scalar(
        select(AssessmentProgramme).where(
            AssessmentProgramme.code == data["code"],
            AssessmentProgramme.effective_from == data["effective_from"],
        )
    )
    before = audit.snapshot(row) if row is not None else None
    if row is None:
        row = AssessmentProgramme(code=data["code"], effective_from=data["effective_from"])
        session.add(row)
    for name in (
        "name_zh",
        "name_en",
        "threshold",
        "quota_hours",
        "special_quota_hours",
        "report_within_working_days",
        "resource_kinds",
        "funding_sources",
    ):
        if name in data:
            setattr(row, name, data[name])
    row.created_by_id = actor.user_id
    session.flush()
    audit.record(
        session,
        actor,
        "assessment_programme.saved",
        row,
        before=before,
        after=audit.snapshot(row),
    )
    return row


# --- scopes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenSharingScope:
    """A lab (``provider_id``) or a region prefix (``region``; None = all)."""

    provider_id: int | None = None
    provider_region: str | None = None
    provider_name: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class SettlementScope:
    region: str | None = None  # a prefix; None = every region (platform admin)


def _single(values: set, field_name: str, message: str):
    if len(values) == 1:
        return next(iter(values))
    raise ValidationFailed({field_name: message})


def open_sharing_scope(
    session: Session, actor: Actor, provider_id: int | None, region: str | None
) -> OpenSharingScope:
    """The scope asked for, or the caller's own: their lab, or their bureau's region."""
    authz.require(actor, "report.open_sharing.pull")
    if provider_id is None and region is None and not actor.platform_admin:
        labs = actor.org_ids("provider", "admin")
        if labs and not actor.bureau_ids():
            provider_id = _single(
                labs, "provider_id", N_("You administer several labs: choose one.")
            )
        else:
            region = _single(
                actor.bureau_regions(), "region", N_("Choose the region of the report.")
            )
    if provider_id is not None:
        provider = session.get(Organization, provider_id)
        if provider is None or provider.kind.value != "provider":
            from booking.domain.errors import NotFound

            raise NotFound()
        scope = OpenSharingScope(
            provider_id=provider.id, provider_region=provider.region, provider_name=provider.name
        )
    else:
        scope = OpenSharingScope(region=rules.region_prefix(region) if region else None)
    authz.require(actor, "report.open_sharing.view", scope)
    return scope


def settlement_scope(actor: Actor, region: str | None) -> SettlementScope:
    authz.require(actor, "report.settlement.pull")
    if region is None and not actor.platform_admin:
        region = _single(actor.bureau_regions(), "region", N_("Choose the region of the report."))
    scope = SettlementScope(region=rules.region_prefix(region) if region else None)
    authz.require(actor, "report.settlement.view", scope)
    return scope


# --- open sharing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabSummary:
    provider_id: int
    provider_name: str
    totals: rules.SharingTotals


@dataclass(frozen=True)
class MonthHours:
    month: int
    effective_hours: Decimal
    external_hours: Decimal


@dataclass(frozen=True)
class OpenSharingReport:
    year: int
    programme: rules.Programme
    scope: OpenSharingScope
    lines: list[rules.InstrumentLine]
    totals: rules.SharingTotals
    labs: list[LabSummary]
    months: list[MonthHours]
    generated_at: datetime


def _in_scope_resources(programme: rules.Programme, scope: OpenSharingScope) -> list:
    conditions = [
        Resource.original_value >= programme.threshold,
        Resource.funding_source.in_(programme.funding_sources),
        Resource.kind.in_(programme.resource_kinds),
    ]
    if scope.provider_id is not None:
        conditions.append(Resource.provider_id == scope.provider_id)
    elif scope.region is not None:
        conditions.append(_starts_with(Resource.region, scope.region))
    return conditions


def _usage_rows(sql: _Sql, programme, scope, year: int, tz):
    """One row per completed booking of an in-scope instrument touching the
    year: its effective minutes inside the year, whether its customer is
    external, whether it ended in the year, its cost, rating and the month
    its in-year usage starts. A materialised CTE: the aggregates below read
    it several times but the bookings are scanned once."""
    year_start, year_end = rules.year_bounds(year, tz)
    provider = aliased(Organization)
    customer = aliased(Organization)
    ys, ye = sql.instant(year_start), sql.instant(year_end)
    span_start = func.coalesce(Reservation.actual_start, Reservation.start_at)
    span_end = func.coalesce(Reservation.actual_end, Reservation.end_at)
    span_seconds = sql.seconds(span_end, span_start)
    inside = sql.seconds(sql.least(span_end, ye), sql.greatest(span_start, ys))
    any_recorded = or_(
        Reservation.prep_minutes.is_not(None),
        Reservation.run_minutes.is_not(None),
        Reservation.post_minutes.is_not(None),
    )
    recorded = (
        func.coalesce(Reservation.prep_minutes, 0)
        + func.coalesce(Reservation.run_minutes, 0)
        + func.coalesce(Reservation.post_minutes, 0)
    )
    minutes = case((any_recorded, sql.float(recorded)), else_=span_seconds / 60.0)
    effective = case(
        (span_seconds > 0, minutes * inside / span_seconds),
        (span_start >= ys, minutes),
        else_=0.0,
    )
    ends_in_year = and_(span_end > ys, span_end <= ye)
    usage_start = sql.greatest(span_start, ys)
    months = rules.month_bounds(year, tz)
    month = case(
        *[(usage_start < sql.instant(end), i + 1) for i, (_s, end) in enumerate(months)],
        else_=12,
    )
    return (
        select(
            Resource.id.label("resource_id"),
            Resource.provider_id.label("provider_id"),
            Reservation.user_id.label("user_id"),
            Reservation.customer_org_id.label("customer_org_id"),
            case((provider.uscc != customer.uscc, 1), else_=0).label("external"),
            effective.label("effective"),
            case((ends_in_year, 1), else_=0).label("ends"),
            Reservation.final_cost.label("final_cost"),
            Rating.score.label("score"),
            month.label("month"),
        )
        .select_from(Reservation)
        .join(Resource, Resource.id == Reservation.resource_id)
        .join(provider, provider.id == Resource.provider_id)
        .join(customer, customer.id == Reservation.customer_org_id)
        .outerjoin(Rating, Rating.reservation_id == Reservation.id)
        .where(
            Reservation.status.in_(USAGE_STATUSES),
            span_start < ye,
            span_end > ys,
            *_in_scope_resources(programme, scope),
        )
        .cte("usage")
        .prefix_with("MATERIALIZED")
    )


@dataclass
class UsageFigures:
    """What ``_usage_figures`` read from the database."""

    instruments: dict[int, dict] = field(default_factory=dict)
    providers: dict[int, rules.Distinct] = field(default_factory=dict)
    overall: rules.Distinct = field(default_factory=rules.Distinct)
    months: dict[int, tuple[float, float]] = field(default_factory=dict)


def _usage_figures(session, sql: _Sql, usage, by_provider: bool) -> UsageFigures:
    """Every figure of the open-sharing report in one statement: a UNION
    ALL of aggregates over the usage rows, each branch tagged.

    Columns: tag, key, five numbers, two money sums. Distinct users and
    organisations are counted as groups of a grouped subquery (a hash
    aggregate), not with ``count(DISTINCT)`` (a sort per group)."""
    u = usage.c
    ext = u.external == 1
    ends = u.ends == 1
    zero_money = literal(0)

    def branch(tag, key, a, b=None, c=None, d=None, e=None, m1=None, m2=None):
        numbers = [sql.float(x if x is not None else literal(0)) for x in (a, b, c, d, e)]
        money = [sql.money_column(x if x is not None else zero_money) for x in (m1, m2)]
        return select(literal(tag).label("tag"), key.label("key"), *numbers, *money)

    def pairs(column):
        """Each (instrument, ``column`` value) once, external if any of its
        bookings was: what every distinct count below is counted from,
        instead of the usage rows (tens of thousands of pairs, not hundreds
        of thousands of bookings)."""
        return (
            select(
                u.resource_id,
                u.provider_id,
                column.label("who"),
                func.max(u.external).label("ext"),
            )
            .group_by(u.resource_id, u.provider_id, column)
            .cte(f"pairs_{column.name}")
            .prefix_with("MATERIALIZED")
        )

    def served(tag, seen, by):
        """Per ``by`` (or overall): how many distinct ``who`` of the pairs
        ``seen``, and how many of them external."""
        p = seen.c
        if by == "resource_id":  # the pairs are already distinct per instrument
            stmt = branch(tag, p.resource_id, func.count(), func.coalesce(func.sum(p.ext), 0))
            return stmt.select_from(seen).group_by(p.resource_id)
        keys = [p[by]] if by is not None else []
        inner = select(*keys, p.who, func.max(p.ext).label("ext")).group_by(*keys, p.who)
        inner = inner.subquery()
        key = inner.c[by] if by is not None else literal(0)
        stmt = branch(tag, key, func.count(), func.coalesce(func.sum(inner.c.ext), 0))
        stmt = stmt.select_from(inner)
        return stmt.group_by(key) if by is not None else stmt

    branches = [
        branch(
            "i",
            u.resource_id,
            func.sum(u.effective),
            func.sum(case((ext, u.effective), else_=0.0)),
            func.count(),
            func.sum(case((ends, u.score))),
            func.count(case((ends, u.score))),
            sql.money_sum(case((ends, u.final_cost), else_=0)),
            sql.money_sum(case((and_(ends, ext), u.final_cost), else_=0)),
        ).group_by(u.resource_id),
        branch(
            "m", u.month, func.sum(u.effective), func.sum(case((ext, u.effective), else_=0.0))
        ).group_by(u.month),
    ]
    users, orgs = pairs(u.user_id), pairs(u.customer_org_id)
    wanted = [("iu", users, "resource_id"), ("io", orgs, "resource_id")]
    wanted += [("tu", users, None), ("to", orgs, None)]
    if by_provider:
        wanted += [("pu", users, "provider_id"), ("po", orgs, "provider_id")]
    branches += [served(tag, seen, by) for tag, seen, by in wanted]
    figures = UsageFigures()
    users: dict[tuple[str, int], tuple[int, int]] = {}
    for row in session.execute(union_all(*branches)):
        tag, key = row[0], row[1]
        if tag == "i":
            figures.instruments[key] = {
                "effective_minutes": sql.decimal(row[2]),
                "external_minutes": sql.decimal(row[3]),
                "bookings": int(row[4]),
                "rating_sum": int(row[5] or 0),
                "ratings": int(row[6]),
                "income": sql.money(row[7]),
                "external_income": sql.money(row[8]),
            }
        elif tag == "m":
            figures.months[int(key)] = (row[2] or 0.0, row[3] or 0.0)
        else:
            users[(tag, int(key))] = (int(row[2]), int(row[3]))
    for rid, numbers in figures.instruments.items():
        numbers["users"], numbers["external_users"] = users.get(("iu", rid), (0, 0))
        numbers["organizations"], numbers["external_organizations"] = users.get(("io", rid), (0, 0))
    figures.overall = rules.Distinct(*users.get(("tu", 0), (0, 0)), *users.get(("to", 0), (0, 0)))
    for (tag, key), (n, n_ext) in users.items():
        if tag == "pu":
            orgs = users.get(("po", key), (0, 0))
            figures.providers[key] = rules.Distinct(n, n_ext, *orgs)
    return figures


def _hours_by_month(sql, figures: UsageFigures) -> list[MonthHours]:
    """Effective and external hours per local month, each booking's in-year
    hours in the month its in-year usage starts."""
    months = []
    for month in range(1, 13):
        effective, external = figures.months.get(month, (0.0, 0.0))
        months.append(
            MonthHours(
                month=month,
                effective_hours=rules.round_hours(sql.decimal(effective)),
                external_hours=rules.round_hours(sql.decimal(external)),
            )
        )
    return months


def _trainings(session, sql, resource_ids_stmt, year_start, year_end) -> dict[int, int]:
    stmt = (
        select(TrainingRecord.resource_id, func.count())
        .where(
            TrainingRecord.resource_id.in_(resource_ids_stmt),
            TrainingRecord.granted_at >= sql.instant(year_start),
            TrainingRecord.granted_at < sql.instant(year_end),
        )
        .group_by(TrainingRecord.resource_id)
    )
    return dict(session.execute(stmt).all())


def _fees(session, resource_ids_stmt) -> dict[int, str]:
    """参考收费标准: each instrument's current published price for outside
    customers (enterprise, else academic, else internal)."""
    rows = session.execute(
        select(
            PriceRule.resource_id,
            PriceRule.customer_class,
            PriceRule.unit,
            PriceRule.unit_price,
            PriceRule.effective_from,
        )
        .where(
            PriceRule.resource_id.in_(resource_ids_stmt),
            PriceRule.published.is_(True),
            PriceRule.effective_until.is_(None),
        )
        .order_by(PriceRule.resource_id, PriceRule.effective_from)
    )
    best: dict[int, tuple[int, str]] = {}
    for resource_id, customer_class, unit, unit_price, _from in rows:
        rank = FEE_CLASSES.index(customer_class.value)
        text = f"{unit_price:.2f}元/{UNIT_WORDS.get(unit.value, unit.value)}"
        if resource_id not in best or rank <= best[resource_id][0]:
            best[resource_id] = (rank, text)
    return {rid: text for rid, (_rank, text) in best.items()}


def _holiday_calendar(session) -> HolidayCalendar:
    rows = session.execute(select(CalendarDay.day, CalendarDay.kind, CalendarDay.name))
    return HolidayCalendar({day: (kind.value, name) for day, kind, name in rows})


def _instrument_facts(
    session, programme, scope, service_url: str, fees: dict[int, str]
) -> list[rules.InstrumentFacts]:
    parent = aliased(Category)
    provider = aliased(Organization)
    stmt = (
        select(
            Resource.id,
            Resource.provider_id,
            provider.name,
            Resource.inner_id,
            Resource.name_zh,
            Resource.name_en,
            func.coalesce(Category.nrii_code, parent.nrii_code),
            Resource.original_value,
            Resource.country,
            Resource.manufacturer,
            Resource.model,
            Resource.accepted_on,
            Resource.special_purpose,
            Resource.status,
            Resource.nrii_reported_on,
        )
        .join(provider, provider.id == Resource.provider_id)
        .join(Category, Category.id == Resource.category_id)
        .outerjoin(parent, parent.id == Category.parent_id)
        .where(*_in_scope_resources(programme, scope))
    )
    facts = []
    for row in session.execute(stmt):
        facts.append(
            rules.InstrumentFacts(
                resource_id=row[0],
                provider_id=row[1],
                provider_name=row[2],
                inner_id=row[3],
                name_zh=row[4],
                name_en=row[5],
                category_code=row[6],
                original_value=row[7],
                country=row[8],
                manufacturer=row[9] or "",
                model=row[10] or "",
                accepted_on=row[11],
                special_purpose=bool(row[12]),
                status=row[13].value,
                nrii_reported_on=row[14],
                service_url=service_url.format(id=row[0]) if service_url else "",
                fee=fees.get(row[0], ""),
            )
        )
    return facts


def open_sharing_report(
    session: Session,
    actor: Actor,
    *,
    year: int,
    provider_id: int | None = None,
    region: str | None = None,
    programme: str = "national",
    service_url: str = "",
) -> OpenSharingReport:
    """The open-sharing assessment report of ``year`` for a lab or a region.

    ``service_url``: the booking page of an instrument, with ``{id}`` in it
    (NRII ``serviceUrl``)."""
    scope = open_sharing_scope(session, actor, provider_id, region)
    settings = programme_for(session, programme, year)
    tz = clock.platform_tz()
    year_start, year_end = rules.year_bounds(year, tz)
    sql = _Sql(session)
    sql.tune_for_reports(session)
    by_provider = scope.provider_id is None
    usage = _usage_rows(sql, settings, scope, year, tz)
    resource_ids = select(Resource.id).where(*_in_scope_resources(settings, scope))

    fees = _fees(session, resource_ids)
    facts = _instrument_facts(session, settings, scope, service_url, fees)
    figures = _usage_figures(session, sql, usage, by_provider)
    trainings = _trainings(session, sql, resource_ids, year_start, year_end)
    today = clock.now().astimezone(tz).date()
    accepted = [f.accepted_on for f in facts if f.accepted_on is not None]
    working_days = rules.WorkingDays(
        _holiday_calendar(session),
        min(accepted, default=today),
        max([*accepted, today]) + timedelta(days=120),
    )

    lines = []
    for fact in facts:
        numbers = figures.instruments.get(fact.resource_id, {})
        usage_numbers = rules.InstrumentUsage(
            **numbers, trainings=trainings.get(fact.resource_id, 0)
        )
        lines.append(rules.instrument_line(fact, usage_numbers, settings, working_days, today))
    lines.sort(key=rules.instrument_order)

    year_last_day = date(year, 12, 31)
    rating_sums = {
        li.resource_id: figures.instruments.get(li.resource_id, {}).get("rating_sum", 0)
        for li in lines
    }
    totals = rules.sharing_totals(lines, figures.overall, sum(rating_sums.values()), year_last_day)
    labs: list[LabSummary] = []
    if by_provider:
        grouped: dict[int, list[rules.InstrumentLine]] = {}
        for line in lines:
            grouped.setdefault(line.provider_id, []).append(line)
        for provider_id_, own in grouped.items():
            labs.append(
                LabSummary(
                    provider_id=provider_id_,
                    provider_name=own[0].provider_name,
                    totals=rules.sharing_totals(
                        own,
                        figures.providers.get(provider_id_, rules.Distinct()),
                        sum(rating_sums[li.resource_id] for li in own),
                        year_last_day,
                    ),
                )
            )
    months = _hours_by_month(sql, figures)
    return OpenSharingReport(
        year=year,
        programme=settings,
        scope=scope,
        lines=lines,
        totals=totals,
        labs=labs,
        months=months,
        generated_at=clock.now(),
    )


# --- voucher settlement --------------------------------------------------------------------------


@dataclass(frozen=True)
class SettlementReport:
    period_from: date
    period_to: date
    group_by: str
    scope: SettlementScope
    lines: list[rules.SettlementLine]
    totals: rules.SettlementLine
    totals_by_flow: dict[str, rules.SettlementLine]
    reconciliation: rules.ReconciliationResult
    generated_at: datetime
    labels: dict[str, str] = field(default_factory=dict)


def _flow_of(issuing_region, provider_region, region: str | None) -> ColumnElement:
    """Local, outbound or inbound, seen from ``region``, of money from a
    voucher issued in ``issuing_region`` to a provider in ``provider_region``
    (None: an entry of no provider, an expiry, counts as local)."""
    if region is None:
        return literal_column(f"'{rules.Flow.LOCAL.value}'")
    ours = _starts_with(issuing_region, region)
    here = _starts_with(provider_region, region)
    return case(
        (and_(ours, or_(provider_region.is_(None), here)), rules.Flow.LOCAL.value),
        (ours, rules.Flow.OUTBOUND.value),
        else_=rules.Flow.INBOUND.value,
    )


def settlement_report(
    session: Session,
    actor: Actor,
    *,
    period_from: date,
    period_to: date,
    region: str | None = None,
    group_by: str = "provider",
) -> SettlementReport:
    """The voucher settlement report of local dates ``period_from`` to
    ``period_to`` (inclusive) for a region, grouped by ``group_by``."""
    if group_by not in rules.GROUPINGS:
        raise ValidationFailed({"group_by": N_("Unknown grouping.")})
    if period_to < period_from:
        raise ValidationFailed({"to": N_("The end of the period lies before its start.")})
    scope = settlement_scope(actor, region)
    tz = clock.platform_tz()
    start, end = rules.period_bounds(period_from, period_to, tz)
    months = []
    for y, m in rules.months_between(period_from, period_to):
        m_start, m_end = rules.period_month(y, m, tz)
        months.append((f"{y:04d}-{m:02d}", m_start, m_end))
    sql = _Sql(session)
    sql.tune_for_reports(session)

    grouped = _settlement_sums(sql, scope, group_by, start, end, months).subquery("grouped")
    amounts = rules.SETTLEMENT_AMOUNTS
    g = grouped.c
    # Names of lab and enterprise groups joined in the database (a list of
    # thousands of ids as parameters costs more than the join).
    if group_by in ("provider", "enterprise"):
        named = aliased(Organization)
        stmt = select(g, named.name.label("name"), named.region.label("org_region")).outerjoin(
            named, named.id == g.key
        )
    else:
        stmt = select(g, literal(None).label("name"), literal(None).label("org_region"))
    lines = []
    labels: dict[str, str] = {}
    flows = {f.value: f for f in rules.Flow}
    money = sql.money
    first, last = 3, 3 + len(amounts)  # key, flow, bookings, the amounts, name, org_region
    for row in session.execute(stmt):
        key, name, org_region = row[0], row[last], row[last + 1]
        key_text = "" if key is None else str(getattr(key, "value", key))
        label, line_region = name or key_text, org_region
        if group_by == "region" and key_text:
            label, line_region = region_name(key_text), key_text
        labels[key_text] = label
        lines.append(
            rules.SettlementLine(
                key_text,
                label,
                flows[row[1]],
                int(row[2] or 0),
                region=line_region,
                **dict(zip(amounts, map(money, row[first:last]), strict=True)),
            )
        )
    flow_order = {rules.Flow.LOCAL: 0, rules.Flow.OUTBOUND: 1, rules.Flow.INBOUND: 2}
    if group_by == "month":
        lines.sort(key=lambda li: (li.key, flow_order[li.flow]))
    else:
        lines.sort(key=lambda li: (flow_order[li.flow], li.key == "", li.label, li.key))
    by_flow_lines = {f: [li for li in lines if li.flow == f] for f in rules.Flow}
    by_flow = {f.value: rules.settlement_total(own) for f, own in by_flow_lines.items()}
    totals = rules.settlement_total(by_flow.values())
    ours = rules.settlement_total([by_flow["local"], by_flow["outbound"]])
    ledger = _ledger_sums(session, sql, scope, start, end)
    reconciliation = rules.reconcile(
        [
            ("voucher_share", totals.voucher_share, totals.redeemed),
            ("redeemed", ours.redeemed, ledger["redeemed"]),
            ("held", ours.held, ledger["held"]),
            ("expired", ours.expired, ledger["expired"]),
            ("total_fees", totals.total_fees, totals.voucher_share + totals.customer_share),
        ]
    )
    return SettlementReport(
        period_from=period_from,
        period_to=period_to,
        group_by=group_by,
        scope=scope,
        lines=lines,
        totals=totals,
        totals_by_flow=by_flow,
        reconciliation=reconciliation,
        generated_at=clock.now(),
        labels=labels,
    )


def _settlement_sums(sql: _Sql, scope: SettlementScope, group_by: str, start, end, months):
    """The report's figures per group and flow, summed by the database in
    two branches that join neither the ledger to the bookings nor either to
    the vouchers:

    - the ledger's: the period's hold, redeem and expire entries, each
      naming its booking's resource and its voucher's issuing region and
      holder (written with the entry): a scan of the index on ``at``;
    - the bookings': the bookings redeemed in the period (``redeemed_at`` and
      ``redeemed_region``, the first redeem entry's instant and voucher
      region, written with it; the voucher's holder is the booking's
      customer) with their live claim line: a scan of the partial index on
      ``redeemed_at``.

    Each row is joined to its instrument (6,000 of them: a hash probe that
    stays in the processor's cache) for the provider's region and what the
    grouping needs of it, so each branch first sums into a few thousand
    groups (key, issuing and provider region) and gives them their flow
    afterwards (the flow's ``LIKE``s run per group, not per row).

    A booking redeemed twice would count once on the bookings' side and twice
    in the ledger: the reconciliation's ``voucher_share`` check says so.
    Returns a select of ``key, flow, bookings`` and the amounts; on SQLite the
    amounts are whole fen."""
    amounts = rules.SETTLEMENT_AMOUNTS
    zero = sql.money_column(literal(0))
    instrument = (
        select(
            Resource.id,
            Resource.provider_id,
            Resource.service_category,
            Organization.region.label("provider_region"),
        )
        .join(Organization, Organization.id == Resource.provider_id)
        .subquery("instrument")
    )

    def branch(source, when, facts, where, keys: dict, sums: dict, then):
        """``facts``: the rows' resource, issuing region and voucher holder;
        ``keys`` and ``sums``: the first step's own group keys and per-row
        money; ``then(columns)``: the report's figures from the first step's
        columns (name -> expression)."""
        resource_id, issuing, holder = facts
        own = {"issuing": issuing, "preg": instrument.c.provider_region}
        own["key"] = {
            "month": lambda: sql.month_key(when, months),
            "provider": lambda: instrument.c.provider_id,
            "enterprise": lambda: holder,
            "category": lambda: instrument.c.service_category,
            "region": lambda: issuing,
        }[group_by]()
        own.update(keys)
        # Grouping by plain columns of a subquery: PostgreSQL cannot tell that
        # two parameterised expressions are the same one.
        rows = (
            select(
                *[expr.label(name) for name, expr in own.items()],
                *[expr.label(name) for name, expr in sums.items()],
            )
            .select_from(source)
            .outerjoin(instrument, instrument.c.id == resource_id)
            .where(*where)
            .subquery()
        )
        r = rows.c
        first = (
            select(
                *[r[name] for name in own],
                func.count().label("rows"),
                *[sql.money_sum(r[name]).label(name) for name in sums],
            )
            .group_by(*[r[name] for name in own])
            .subquery()
        )
        g = first.c
        figures = then(g)
        grouped = (
            select(
                g.key.label("key"),
                _flow_of(g.issuing, g.preg, scope.region).label("flow"),
                *[figures.get(name, literal(0)).label(name) for name in ("bookings", *amounts)],
            )
            .select_from(first)
            .where(
                or_(
                    _starts_with(g.issuing, scope.region),
                    _starts_with(g.preg, scope.region),
                )
            )
            .subquery()
        )
        c = grouped.c
        return select(
            c.key,
            c.flow,
            func.coalesce(func.sum(c.bookings), 0).label("bookings"),
            *[
                sql.money_column(func.coalesce(func.sum(c[name]), 0)).label(name)
                if name in figures
                else zero.label(name)
                for name in amounts
            ],
        ).group_by(c.key, c.flow)

    entry = VoucherLedgerEntry

    def ledger_figures(g):
        def of(kind):
            return case((g.kind == kind, -g.amount), else_=0)

        return {"held": of("hold"), "redeemed": of("redeem"), "expired": of("expire")}

    ledger = branch(
        entry,
        entry.at,
        (entry.resource_id, entry.issuing_region, entry.holder_org_id),
        [
            entry.at >= sql.instant(start),
            entry.at < sql.instant(end),
            entry.kind.in_(("hold", "redeem", "expire")),
        ],
        {"kind": entry.kind},
        {"amount": entry.amount},
        ledger_figures,
    )
    booking = Reservation
    line = aliased(ClaimLine)
    claim = aliased(Claim)
    live_line = (
        select(
            line.reservation_id,
            line.voucher_amount,
            line.status.label("line_status"),
            claim.status.label("claim_status"),
        )
        .join(claim, claim.id == line.claim_id)
        .where(line.status != "rejected", claim.status.in_(FILED_CLAIM_STATUSES))
        .subquery("live_line")
    )
    approved = live_line.c.line_status == "approved"
    claimed = func.coalesce(live_line.c.voucher_amount, 0)
    booking_sums = {
        "total_fees": func.coalesce(booking.final_cost, 0),
        "voucher_share": func.coalesce(booking.voucher_amount, 0),
        "customer_share": func.coalesce(booking.customer_amount, 0),
        "claimed": claimed,
        "approved": case((approved, claimed), else_=0),
        "paid": case((and_(approved, live_line.c.claim_status == "paid"), claimed), else_=0),
    }
    bookings = branch(
        outerjoin(booking, live_line, live_line.c.reservation_id == booking.id),
        booking.redeemed_at,
        (booking.resource_id, booking.redeemed_region, booking.customer_org_id),
        [booking.redeemed_at >= sql.instant(start), booking.redeemed_at < sql.instant(end)],
        {},
        booking_sums,
        lambda g: {"bookings": g.rows, **{name: g[name] for name in booking_sums}},
    )
    both = union_all(ledger, bookings).subquery("both")
    b = both.c
    return select(
        b.key,
        b.flow,
        func.sum(b.bookings).label("bookings"),
        *[sql.plain_money(func.sum(b[name])).label(name) for name in amounts],
    ).group_by(b.key, b.flow)


def _ledger_sums(session, sql, scope, start, end) -> dict[str, Decimal]:
    """The period's hold, redeem and expire amounts of the vouchers issued in
    the region (every voucher for the whole platform), summed straight from
    the ledger: what the report's local and outbound lines must come to."""
    entry = VoucherLedgerEntry
    stmt = select(entry.kind, sql.money_sum(-entry.amount)).where(
        entry.at >= sql.instant(start),
        entry.at < sql.instant(end),
        entry.kind.in_(("hold", "redeem", "expire")),
    )
    if scope.region is not None:
        stmt = stmt.where(_starts_with(entry.issuing_region, scope.region))
    sums = {"hold": ZERO, "redeem": ZERO, "expire": ZERO}
    for kind, total in session.execute(stmt.group_by(entry.kind)):
        sums[kind.value] = sql.money(total)
    return {"held": sums["hold"], "redeemed": sums["redeem"], "expired": sums["expire"]}
