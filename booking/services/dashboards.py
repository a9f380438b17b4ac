"""What the role pages show at a glance, read by SQL: a customer's upcoming
and past bookings, a lab's day and month (today's bookings, requests waiting,
this month's hours and income), a bureau's work (claims to audit and to pay,
vouchers issued this year), a voucher's open holds, and the platform
admin's queue (organisations waiting, mails not sent).

Only reads; every change goes through the area's own service. Sums are made
by the database; on SQLite, whose NUMERIC is floating point, money is summed
in whole fen and hours in whole seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Integer, and_, cast, func, or_, select
from sqlalchemy.orm import Session, joinedload

from booking import authz
from booking.authz import Actor
from booking.domain import clock
from booking.domain.money import ZERO
from booking.domain.reservations import LIVE_STATUSES
from booking.domain.vouchers import bureau_prefix
from booking.models.accounts import Organization, OrgStatus, User
from booking.models.catalog import Resource
from booking.models.claims import Claim, ClaimStatus
from booking.models.notifications import MailStatus, OutboxMail
from booking.models.reservations import Rating, Reservation, ReservationStatus
from booking.models.vouchers import Voucher, VoucherStatus
from booking.services import reservations

S = ReservationStatus
#: States of a booking that used the resource and is charged.
USED = (S.COMPLETED, S.SETTLED)


# --- portable sums ------------------------------------------------------------------------


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _money_sum(session: Session, column):
    if _postgres(session):
        return func.coalesce(func.sum(column), 0)
    return func.coalesce(func.sum(func.round(column * 100)), 0)


def _money(session: Session, value) -> Decimal:
    if value is None:
        return ZERO
    if _postgres(session):
        return Decimal(value).quantize(Decimal("0.01"))
    return (Decimal(round(float(value))) / 100).quantize(Decimal("0.01"))


def _seconds_between(session: Session, later, earlier):
    if _postgres(session):
        return cast(func.extract("epoch", later - earlier), BigInteger)
    return cast(func.strftime("%s", later), Integer) - cast(func.strftime("%s", earlier), Integer)


def local_today(now: datetime | None = None) -> date:
    return (now or clock.now()).astimezone(clock.platform_tz()).date()


def month_bounds(day: date) -> tuple[datetime, datetime]:
    """The local month of ``day`` as UTC instants."""
    tz = clock.platform_tz()
    first = day.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    start, _ = clock.local_day_bounds(first, tz)
    end, _ = clock.local_day_bounds(following, tz)
    return start, end


# --- the customer's bookings --------------------------------------------------------------


def customer_bookings(
    session: Session,
    actor: Actor,
    when: str,
    *,
    page: int = 1,
    per_page: int = 20,
    now: datetime | None = None,
) -> tuple[list[Reservation], int]:
    """The bookings of the actor's organisations as a customer: ``upcoming``
    (live and not over yet, soonest first) or ``past`` (the rest, latest first)."""
    now = now or clock.now()
    query = reservations.visible_query(actor, scope="customer")
    upcoming = and_(Reservation.status.in_(LIVE_STATUSES), Reservation.end_at > now)
    if when == "upcoming":
        query = query.where(upcoming).order_by(Reservation.start_at, Reservation.id)
    else:
        query = query.where(~upcoming).order_by(Reservation.start_at.desc(), Reservation.id.desc())
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.scalars(
        query.options(joinedload(Reservation.resource))
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return list(rows), int(total or 0)


def rated_ids(session: Session, reservation_ids: list[int]) -> set[int]:
    if not reservation_ids:
        return set()
    return set(
        session.scalars(
            select(Rating.reservation_id).where(Rating.reservation_id.in_(reservation_ids))
        )
    )


def rating_of(session: Session, reservation_id: int) -> Rating | None:
    return session.scalar(select(Rating).where(Rating.reservation_id == reservation_id))


# --- the lab -----------------------------------------------------------------------------


@dataclass
class LabDashboard:
    provider: Organization
    day: date
    today: list[Reservation]
    pending_approvals: int
    in_use: int
    month_start: date
    month_bookings: int
    month_hours: Decimal
    month_income: Decimal
    month_voucher: Decimal
    draft_claims: int


def lab_dashboard(
    session: Session, actor: Actor, provider_id: int, now: datetime | None = None
) -> LabDashboard:
    """A lab's day and month, for its admins (and the platform admin)."""
    authz.require(actor, "resource.schedule", provider_id)
    provider = session.get(Organization, provider_id)
    now = now or clock.now()
    day = local_today(now)
    day_start, day_end = clock.local_day_bounds(day, clock.platform_tz())
    lab_resources = select(Resource.id).where(Resource.provider_id == provider_id)
    mine = Reservation.resource_id.in_(lab_resources)
    today = session.scalars(
        select(Reservation)
        .where(
            mine,
            Reservation.start_at < day_end,
            Reservation.end_at > day_start,
            Reservation.status.in_((*LIVE_STATUSES, *USED, S.NO_SHOW)),
        )
        .options(
            joinedload(Reservation.resource),
            joinedload(Reservation.customer_org),
            joinedload(Reservation.user),
        )
        .order_by(Reservation.start_at, Reservation.id)
    ).all()
    counts = session.execute(
        select(
            func.count().filter(Reservation.status == S.REQUESTED),
            func.count().filter(Reservation.status == S.IN_USE),
        ).where(mine, Reservation.status.in_((S.REQUESTED, S.IN_USE)))
    ).one()
    month_start, month_end = month_bounds(day)
    finished = func.coalesce(Reservation.actual_end, Reservation.end_at)
    month = session.execute(
        select(
            func.count(),
            func.coalesce(
                func.sum(
                    _seconds_between(
                        session,
                        Reservation.actual_end,
                        func.coalesce(Reservation.actual_start, Reservation.start_at),
                    )
                ),
                0,
            ),
            _money_sum(session, Reservation.final_cost),
            _money_sum(session, func.coalesce(Reservation.voucher_amount, 0)),
        ).where(
            mine,
            Reservation.status.in_(USED),
            finished >= month_start,
            finished < month_end,
        )
    ).one()
    drafts = session.scalar(
        select(func.count(Claim.id)).where(
            Claim.claimant_org_id == provider_id, Claim.status == ClaimStatus.DRAFT
        )
    )
    seconds = Decimal(int(month[1] or 0))
    return LabDashboard(
        provider=provider,
        day=day,
        today=list(today),
        pending_approvals=int(counts[0] or 0),
        in_use=int(counts[1] or 0),
        month_start=day.replace(day=1),
        month_bookings=int(month[0] or 0),
        month_hours=(seconds / 3600).quantize(Decimal("0.1")),
        month_income=_money(session, month[2]),
        month_voucher=_money(session, month[3]),
        draft_claims=int(drafts or 0),
    )


# --- a voucher's holds --------------------------------------------------------------------


def voucher_holds(session: Session, voucher: Voucher) -> list[Reservation]:
    """The bookings a voucher holds money for now (approved, not completed).
    The caller has checked that the actor may see the voucher."""
    return list(
        session.scalars(
            select(Reservation)
            .where(
                Reservation.voucher_id == voucher.id,
                Reservation.status.in_((S.APPROVED, S.IN_USE)),
                Reservation.voucher_hold > 0,
            )
            .options(joinedload(Reservation.resource))
            .order_by(Reservation.start_at)
        )
    )


# --- the bureau ---------------------------------------------------------------------------


@dataclass
class BureauOverview:
    bureaus: list[Organization]
    claims_to_audit: int
    claims_to_pay: int
    vouchers_this_year: int
    face_value_this_year: Decimal
    active_vouchers: int


def bureau_overview(session: Session, actor: Actor, now: datetime | None = None) -> BureauOverview:
    """The officer's bureaus: claims waiting for audit and for payment,
    vouchers issued this (local) year."""
    ids = sorted(actor.bureau_ids())
    bureaus = list(session.scalars(select(Organization).where(Organization.id.in_(ids or [0]))))
    now = now or clock.now()
    year_start, _ = clock.local_day_bounds(date(local_today(now).year, 1, 1), clock.platform_tz())
    claims = session.execute(
        select(
            func.count().filter(Claim.status == ClaimStatus.SUBMITTED),
            func.count().filter(Claim.status == ClaimStatus.AUDITED),
        ).where(
            Claim.bureau_id.in_(ids or [0]),
            Claim.status.in_((ClaimStatus.SUBMITTED, ClaimStatus.AUDITED)),
        )
    ).one()
    issued = session.execute(
        select(func.count(Voucher.id), _money_sum(session, Voucher.face_value)).where(
            Voucher.bureau_id.in_(ids or [0]), Voucher.issued_at >= year_start
        )
    ).one()
    active = session.scalar(
        select(func.count(Voucher.id)).where(
            Voucher.bureau_id.in_(ids or [0]), Voucher.status == VoucherStatus.ACTIVE
        )
    )
    return BureauOverview(
        bureaus=bureaus,
        claims_to_audit=int(claims[0] or 0),
        claims_to_pay=int(claims[1] or 0),
        vouchers_this_year=int(issued[0] or 0),
        face_value_this_year=_money(session, issued[1]),
        active_vouchers=int(active or 0),
    )


def holder_choices(session: Session, actor: Actor) -> list[Organization]:
    """Active enterprises inside the regions of the officer's bureaus: the
    holders a voucher may be issued to (the voucher service checks again)."""
    prefixes = [bureau_prefix(region) for region in actor.bureau_regions()]
    if not prefixes:
        return []
    from booking.models.accounts import OrgKind

    return list(
        session.scalars(
            select(Organization)
            .where(
                Organization.kind == OrgKind.ENTERPRISE,
                Organization.status == OrgStatus.ACTIVE,
                or_(*[Organization.region.startswith(p, autoescape=True) for p in prefixes]),
            )
            .order_by(Organization.name)
            .limit(2000)
        )
    )


# --- the platform admin -------------------------------------------------------------------


@dataclass
class PlatformOverview:
    pending_organizations: int
    users: int
    mails_waiting: int
    mails_failed: int


def platform_overview(session: Session, actor: Actor) -> PlatformOverview:
    authz.require(actor, "user.list")
    pending = session.scalar(
        select(func.count(Organization.id)).where(Organization.status == OrgStatus.PENDING)
    )
    users = session.scalar(select(func.count(User.id)))
    mails = session.execute(
        select(
            func.count().filter(OutboxMail.status == MailStatus.PENDING),
            func.count().filter(OutboxMail.status == MailStatus.FAILED),
        ).where(OutboxMail.status.in_((MailStatus.PENDING, MailStatus.FAILED)))
    ).one()
    return PlatformOverview(
        pending_organizations=int(pending or 0),
        users=int(users or 0),
        mails_waiting=int(mails[0] or 0),
        mails_failed=int(mails[1] or 0),
    )


__all__ = [
    "BureauOverview",
    "LabDashboard",
    "PlatformOverview",
    "bureau_overview",
    "customer_bookings",
    "holder_choices",
    "lab_dashboard",
    "month_bounds",
    "platform_overview",
    "rated_ids",
    "rating_of",
    "voucher_holds",
]
