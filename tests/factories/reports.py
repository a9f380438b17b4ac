"""Factories of the reports area: completed bookings with their recorded
usage, ratings and trainings; vouchers, ledger entries and claims written as
rows (no rule checks), so a test can state every figure of a report by hand.

Times are given in platform local time (Asia/Shanghai) with ``local()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from booking.domain import clock
from booking.models.catalog import TrainingRecord
from booking.models.claims import Claim, ClaimLine
from booking.models.reservations import Rating
from booking.models.vouchers import Voucher, VoucherLedgerEntry, VoucherPolicy
from tests.factories.accounts import create_org, create_user
from tests.factories.catalog import create_category, create_resource
from tests.factories.reservations import create_reservation

D = Decimal


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second=0) -> datetime:
    """An aware instant given in platform local time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=clock.platform_tz())


def money(value) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def usage_booking(
    session,
    resource,
    customer_org,
    user,
    start: datetime,
    end: datetime,
    *,
    status: str = "completed",
    final_cost="0.00",
    voucher_amount=None,
    prep=None,
    run=None,
    post=None,
    rating: int | None = None,
    voucher=None,
    **fields,
):
    """A booking that was used from ``start`` to ``end`` (its actual times)."""
    final = money(final_cost)
    share = money(voucher_amount) if voucher_amount is not None else Decimal("0.00")
    booking = create_reservation(
        session,
        resource,
        customer_org,
        user,
        start,
        end,
        status=status,
        actual_start=start,
        actual_end=end,
        final_cost=final,
        voucher_amount=share,
        customer_amount=final - share if final is not None else None,
        prep_minutes=prep,
        run_minutes=run,
        post_minutes=post,
        voucher_id=voucher.id if voucher is not None else None,
        **fields,
    )
    if rating is not None:
        session.add(
            Rating(reservation_id=booking.id, user_id=user.id, score=rating, created_at=end)
        )
        session.flush()
    return booking


def training(session, user, resource, granted_at: datetime) -> TrainingRecord:
    record = TrainingRecord(user_id=user.id, resource_id=resource.id, granted_at=granted_at)
    session.add(record)
    session.flush()
    return record


def report_voucher(session, bureau, holder, face_value="10000.00", *, year=2024) -> Voucher:
    """A voucher row with its ``issue`` entry (and the policy row it needs)."""
    policy = session.query(VoucherPolicy).filter_by(bureau_id=bureau.id).first()
    if policy is None:
        policy = VoucherPolicy(bureau_id=bureau.id, effective_from=date(2020, 1, 1))
        session.add(policy)
        session.flush()
    issued_at = local(year, 1, 2, 9)
    voucher = Voucher(
        bureau_id=bureau.id,
        issuing_region=bureau.region,
        holder_org_id=holder.id,
        holder_region=holder.region,
        policy_id=policy.id,
        face_value=money(face_value),
        valid_from=issued_at,
        valid_until=local(year, 12, 31, 23, 59, 59),
        coverage_ratio=Decimal("0.50"),
        service_categories=["instrument_sharing", "testing"],
        issued_at=issued_at,
    )
    session.add(voucher)
    session.flush()
    ledger(session, voucher, "issue", face_value, at=issued_at)
    return voucher


def ledger(session, voucher, kind: str, amount, *, booking=None, at: datetime, claim=None):
    """One ledger entry; ``amount`` as the effect on what is available
    (negative for hold, redeem, expire)."""
    entry = VoucherLedgerEntry(
        voucher_id=voucher.id,
        kind=kind,
        amount=money(amount),
        reservation_id=booking.id if booking is not None else None,
        claim_id=claim.id if claim is not None else None,
        reason="test" if kind == "adjust" else None,
        at=at,
    )
    session.add(entry)
    session.flush()
    return entry


def redeemed_voucher_booking(
    session,
    resource,
    customer_org,
    user,
    voucher,
    start: datetime,
    *,
    final_cost,
    voucher_amount,
    held=None,
    held_at: datetime | None = None,
    redeemed_at: datetime | None = None,
    hours: int = 2,
):
    """A completed voucher booking with its hold, redeem and release entries."""
    booking = usage_booking(
        session,
        resource,
        customer_org,
        user,
        start,
        start + timedelta(hours=hours),
        final_cost=final_cost,
        voucher_amount=voucher_amount,
        voucher=voucher,
    )
    held = money(held if held is not None else voucher_amount)
    held_at = held_at or start - timedelta(days=3)
    redeemed_at = redeemed_at or start + timedelta(hours=hours + 1)
    ledger(session, voucher, "hold", -held, booking=booking, at=held_at)
    ledger(session, voucher, "redeem", -money(voucher_amount), booking=booking, at=redeemed_at)
    ledger(session, voucher, "release", held, booking=booking, at=redeemed_at)
    return booking


def claim_for(
    session,
    bureau,
    claimant,
    bookings,
    *,
    status: str = "submitted",
    line_status: str = "pending",
    period=(date(2024, 1, 1), date(2024, 12, 31)),
) -> Claim:
    """A claim with one line per booking, all lines in ``line_status``."""
    claim = Claim(
        bureau_id=bureau.id,
        bureau_region=bureau.region,
        claimant_org_id=claimant.id,
        claimant_kind="provider",
        period_from=period[0],
        period_to=period[1],
        status=status,
        claimed_amount=sum((b.voucher_amount for b in bookings), Decimal("0.00")),
    )
    session.add(claim)
    session.flush()
    for booking in bookings:
        session.add(
            ClaimLine(
                claim_id=claim.id,
                reservation_id=booking.id,
                voucher_id=booking.voucher_id,
                provider_id=claimant.id,
                provider_region=claimant.region,
                customer_org_id=booking.customer_org_id,
                status=line_status,
                reason="not eligible" if line_status == "rejected" else None,
                completed_at=booking.actual_end,
                actual_start=booking.actual_start,
                actual_end=booking.actual_end,
                final_cost=booking.final_cost,
                voucher_amount=booking.voucher_amount,
                customer_amount=booking.customer_amount,
            )
        )
    session.flush()
    return claim


# --- worlds: the hand-computed data sets of the report tests --------------------


@dataclass
class OpenSharingWorld:
    lab: object
    other_lab: object
    lab_admin: object
    other_admin: object
    officer: object
    far_officer: object
    customer_user: object
    a: object
    b: object
    f: object


def build_open_sharing_world(session) -> OpenSharingWorld:
    bureau = create_org(session, "bureau", region="140100")
    far_bureau = create_org(session, "bureau", region="141100")
    lab = create_org(session, "provider", region="140105", name="测试中心")
    other_lab = create_org(session, "provider", region="140105", name="另一实验室")
    x = create_org(session, "enterprise", region="140105", name="企业X")
    y = create_org(session, "enterprise", region="140107", name="企业Y")
    lab_admin = create_user(session, lab, "admin")
    lab_user = create_user(session, lab, "member")
    other_admin = create_user(session, other_lab, "admin")
    x1 = create_user(session, x)
    x2 = create_user(session, x)
    y1 = create_user(session, y)
    category = create_category(session, nrii_code="010101")
    a = create_resource(
        session,
        lab,
        category=category,
        name_zh="场发射扫描电镜",
        name_en="FE-SEM",
        inner_id="L-001",
        original_value=D("600000.00"),
        funding_source="government",
        accepted_on=date(2023, 3, 1),
        nrii_reported_on=date(2023, 3, 20),
        country="JPN",
        manufacturer="日立",
        model="SU8010",
    )
    b = create_resource(
        session,
        lab,
        category=category,
        name_zh="激光共聚焦显微镜",
        inner_id="L-002",
        original_value=D("300000.00"),
        funding_source="government",
        special_purpose=True,
        accepted_on=date(2024, 9, 2),
        status="maintenance",
    )
    # Out of scope: self-funded; not an instrument.
    create_resource(
        session, lab, original_value=D("800000.00"), funding_source="self", inner_id="L-003"
    )
    create_resource(
        session, lab, "hpc", original_value=D("9000000.00"), funding_source="government"
    )
    f = create_resource(
        session,
        other_lab,
        category=category,
        inner_id="M-001",
        original_value=D("700000.00"),
        funding_source="government",
        accepted_on=date(2022, 5, 5),
        nrii_reported_on=date(2022, 5, 20),
    )

    # A, 2024: every kind of booking.
    usage_booking(  # external, no recorded minutes: 180 min
        session, a, x, x1, local(2024, 3, 4, 9), local(2024, 3, 4, 12),
        final_cost="600.00", rating=5,
    )  # fmt: skip
    usage_booking(  # internal (the lab itself), recorded 10 + 40 + 5 = 55 min
        session, a, lab, lab_user, local(2024, 3, 5, 10), local(2024, 3, 5, 11),
        final_cost="100.00", prep=10, run=40, post=5, status="settled", rating=4,
    )  # fmt: skip
    usage_booking(  # across New Year 2025: 200 recorded min over 4 h, half in 2024
        session, a, x, x1, local(2024, 12, 31, 22), local(2025, 1, 1, 2),
        final_cost="800.00", run=200, rating=3,
    )  # fmt: skip
    usage_booking(  # across New Year 2024: 120 min, half in 2024
        session, a, y, y1, local(2023, 12, 31, 23), local(2024, 1, 1, 1),
        final_cost="200.00", rating=2,
    )  # fmt: skip
    usage_booking(  # a second user of X: 120 min
        session, a, x, x2, local(2024, 6, 10, 14), local(2024, 6, 10, 16), final_cost="400.00",
    )  # fmt: skip
    usage_booking(  # cancelled and no-show bookings never count
        session, a, x, x1, local(2024, 5, 1, 9), local(2024, 5, 1, 17),
        status="cancelled", final_cost="999.00", rating=1,
    )  # fmt: skip
    usage_booking(
        session, a, y, y1, local(2024, 5, 2, 9), local(2024, 5, 2, 17),
        status="no_show", final_cost="999.00",
    )  # fmt: skip
    # B, 2024: internal use only, 2 h.
    usage_booking(
        session, b, lab, lab_user, local(2024, 10, 10, 9), local(2024, 10, 10, 11),
        final_cost="50.00",
    )  # fmt: skip
    # F (the other lab): external 1 h.
    usage_booking(
        session, f, y, y1, local(2024, 7, 1, 9), local(2024, 7, 1, 10), final_cost="300.00"
    )
    training(session, x1, a, local(2024, 2, 1, 9))
    training(session, x2, a, local(2023, 12, 15, 9))  # the year before
    training(session, y1, b, local(2024, 9, 10, 9))
    session.flush()
    far_officer = create_user(session, far_bureau)
    officer = create_user(session, bureau)
    return OpenSharingWorld(
        lab, other_lab, lab_admin, other_admin, officer, far_officer, x1, a, b, f
    )


@dataclass
class SettlementWorld:
    taiyuan: object
    luliang: object
    officer: object
    far_officer: object
    province_officer: object
    lab: object
    far_lab: object
    x: object
    z: object
    v1: object
    v2: object
    lab_admin: object
    bookings: dict


def build_settlement_world(session) -> SettlementWorld:
    """Taiyuan's bureau (1401) and Lüliang's (1411). Lab L is in Taiyuan, lab P in
    Lüliang; enterprise X in Taiyuan holds V1 (Taiyuan), Z in Lüliang holds V2.

    | booking | voucher → lab | fee  | voucher | held (when)  | redeemed    | claim
    | b1      | V1 → L local  | 600  | 300     | 300 (1 Mar)  | 300 (4 Mar) | paid, approved
    | b2      | V1 → P out    | 1000 | 500     | 500 (1 Apr)  | 500 (10 Apr)| submitted, pending
    | b3      | V2 → L in     | 400  | 200     | 200 (1 May)  | 200 (2 May) | audited, approved
    | b4      | V1 → L        | –    | –       | 250 (20 Dec) | –           | –
    | b5      | V1 → L cancel | –    | –       | 100 (1 Jun), released 2 Jun
    | b6      | V1 → L        | 90   | 45      | 45 (2023)    | 45 (2023)   | outside the period
    | b7      | V2 → P        | 300  | 150     | 150          | 150 (Jul)   | Lüliang only
    | expiry  | V1: 1,000 expired at 31 Dec 23:59:59 local time
    """
    taiyuan = create_org(session, "bureau", region="140100", name="太原市科技局")
    luliang = create_org(session, "bureau", region="141100", name="吕梁市科技局")
    province = create_org(session, "bureau", region="140000", name="山西省科技厅")
    lab = create_org(session, "provider", region="140105", name="太原实验室")
    far_lab = create_org(session, "provider", region="141102", name="吕梁中试基地")
    x = create_org(session, "enterprise", region="140105", name="企业X")
    z = create_org(session, "enterprise", region="141102", name="企业Z")
    xu = create_user(session, x)
    zu = create_user(session, z)
    res_l = create_resource(session, lab)
    res_p = create_resource(session, far_lab, "testing_service")
    v1 = report_voucher(session, taiyuan, x, "10000.00")
    v2 = report_voucher(session, luliang, z, "5000.00")
    b = {}
    b[1] = redeemed_voucher_booking(
        session, res_l, x, xu, v1, local(2024, 3, 4, 9), final_cost="600.00",
        voucher_amount="300.00", held_at=local(2024, 3, 1, 10),
    )  # fmt: skip
    b[2] = redeemed_voucher_booking(
        session, res_p, x, xu, v1, local(2024, 4, 10, 9), final_cost="1000.00",
        voucher_amount="500.00", held_at=local(2024, 4, 1, 10),
    )  # fmt: skip
    b[3] = redeemed_voucher_booking(
        session, res_l, z, zu, v2, local(2024, 5, 2, 9), final_cost="400.00",
        voucher_amount="200.00", held_at=local(2024, 5, 1, 10),
    )  # fmt: skip
    b[4] = usage_booking(
        session, res_l, x, xu, local(2025, 1, 5, 9), local(2025, 1, 5, 11),
        status="approved", final_cost=None, voucher=v1,
    )  # fmt: skip
    ledger(session, v1, "hold", "-250.00", booking=b[4], at=local(2024, 12, 20, 10))
    b[5] = usage_booking(
        session, res_l, x, xu, local(2024, 6, 5, 9), local(2024, 6, 5, 11),
        status="cancelled", final_cost=None, voucher=v1,
    )  # fmt: skip
    ledger(session, v1, "hold", "-100.00", booking=b[5], at=local(2024, 6, 1, 10))
    ledger(session, v1, "release", "100.00", booking=b[5], at=local(2024, 6, 2, 10))
    b[6] = redeemed_voucher_booking(
        session, res_l, x, xu, v1, local(2023, 11, 30, 9), final_cost="90.00",
        voucher_amount="45.00",
    )  # fmt: skip
    b[7] = redeemed_voucher_booking(
        session, res_p, z, zu, v2, local(2024, 7, 1, 9), final_cost="300.00",
        voucher_amount="150.00",
    )  # fmt: skip
    ledger(session, v1, "expire", "-1000.00", at=local(2024, 12, 31, 23, 59, 59))
    claim_for(session, taiyuan, lab, [b[1]], status="paid", line_status="approved")
    claim_for(session, taiyuan, far_lab, [b[2]], status="submitted", line_status="pending")
    claim_for(session, luliang, lab, [b[3]], status="audited", line_status="approved")
    session.flush()
    return SettlementWorld(
        taiyuan=taiyuan,
        luliang=luliang,
        officer=create_user(session, taiyuan),
        far_officer=create_user(session, luliang),
        province_officer=create_user(session, province),
        lab=lab,
        far_lab=far_lab,
        x=x,
        z=z,
        v1=v1,
        v2=v2,
        lab_admin=create_user(session, lab, "admin"),
        bookings=b,
    )


@pytest.fixture
def make_usage_booking(session):
    return lambda *args, **kw: usage_booking(session, *args, **kw)
