"""The voucher settlement report against a hand-computed data set
(``build_settlement_world`` in tests/factories/reports.py, whose docstring
tabulates it) and its reconciliation with the ledger to the fen."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from booking.domain.errors import Forbidden, NotFound, ValidationFailed
from booking.domain.reports import Flow
from booking.models.vouchers import VoucherLedgerEntry
from booking.services import reports
from tests.factories.accounts import actor_of, create_org, create_user
from tests.factories.reports import build_settlement_world, ledger, local, usage_booking

D = Decimal
NOW = local(2025, 2, 1, 12)


@pytest.fixture
def world(session):
    return build_settlement_world(session)


def settle(session, user, **kw):
    kw.setdefault("period_from", date(2024, 1, 1))
    kw.setdefault("period_to", date(2024, 12, 31))
    with time_machine.travel(NOW, tick=False):
        return reports.settlement_report(session, actor_of(session, user), **kw)


def figures(line):
    return (
        line.bookings,
        line.total_fees,
        line.voucher_share,
        line.customer_share,
        line.held,
        line.redeemed,
        line.claimed,
        line.approved,
        line.paid,
        line.expired,
    )


def test_by_provider_for_taiyuan(session, world):
    result = settle(session, world.officer, group_by="provider")
    by = {(li.key, li.flow): li for li in result.lines}
    lab, far = str(world.lab.id), str(world.far_lab.id)
    assert set(by) == {
        (lab, Flow.LOCAL),
        ("", Flow.LOCAL),
        (far, Flow.OUTBOUND),
        (lab, Flow.INBOUND),
    }
    # b1; held also b4's 250 and the cancelled b5's 100
    assert figures(by[lab, Flow.LOCAL]) == (
        1, D("600"), D("300"), D("300"), D("650"), D("300"), D("300"), D("300"), D("300"), 0
    )  # fmt: skip
    assert by[lab, Flow.LOCAL].label == "太原实验室"
    # our voucher paid Lüliang's lab (b2): claimed, not yet approved
    assert figures(by[far, Flow.OUTBOUND]) == (
        1, D("1000"), D("500"), D("500"), D("500"), D("500"), D("500"), 0, 0, 0
    )  # fmt: skip
    # Lüliang's voucher paid our lab (b3): approved, not yet paid
    assert figures(by[lab, Flow.INBOUND]) == (
        1, D("400"), D("200"), D("200"), D("200"), D("200"), D("200"), D("200"), 0, 0
    )  # fmt: skip
    # the expiry belongs to no provider
    assert figures(by["", Flow.LOCAL]) == (0, 0, 0, 0, 0, 0, 0, 0, 0, D("1000"))
    assert figures(result.totals) == (
        3, D("2000"), D("1000"), D("1000"), D("1350"), D("1000"), D("1000"), D("500"),
        D("300"), D("1000"),
    )  # fmt: skip
    assert result.totals_by_flow["outbound"].voucher_share == D("500")
    assert result.totals_by_flow["inbound"].voucher_share == D("200")
    assert result.reconciliation.ok


def test_lines_add_up_to_the_ledger_to_the_fen(session, world):
    for group_by in ("provider", "enterprise", "category", "region", "month"):
        result = settle(session, world.officer, group_by=group_by)
        assert result.reconciliation.ok, group_by
        assert sum(li.redeemed for li in result.lines) == D("1000.00")
        assert sum(li.voucher_share for li in result.lines) == D("1000.00")
        assert sum(li.expired for li in result.lines) == D("1000.00")
        assert sum(li.held for li in result.lines) == D("1350.00")
    # Platform-wide the lines equal the whole ledger of the period.
    admin = create_user(session, create_org(session, "platform"), platform_admin=True)
    result = settle(session, admin, group_by="provider")
    entries = session.query(VoucherLedgerEntry).all()
    start, end = local(2024, 1, 1), local(2025, 1, 1)
    in_period = [e for e in entries if start <= e.at < end]
    assert result.totals.redeemed == -sum(e.amount for e in in_period if e.kind == "redeem")
    assert result.totals.redeemed == D("1150.00")  # b7 too
    assert result.totals.held == -sum(e.amount for e in in_period if e.kind == "hold")
    assert result.reconciliation.ok


def test_a_booking_that_disagrees_with_the_ledger_is_reported(session, world):
    world.bookings[1].voucher_amount = D("300.01")
    session.flush()
    result = settle(session, world.officer)
    assert not result.reconciliation.ok
    bad = {c.name: c for c in result.reconciliation.checks if not c.ok}
    assert bad["voucher_share"].difference == D("0.01")
    assert set(bad) == {"voucher_share", "total_fees"}


def test_by_month_region_enterprise_category(session, world):
    months = {
        (li.key, li.flow): li for li in settle(session, world.officer, group_by="month").lines
    }
    assert figures(months["2024-03", Flow.LOCAL])[:6] == (
        1, D("600"), D("300"), D("300"), D("300"), D("300")
    )  # fmt: skip
    assert months["2024-06", Flow.LOCAL].held == D("100")
    # b4's hold and the expiry at 23:59:59 local on 31 Dec (15:59:59 UTC)
    assert (months["2024-12", Flow.LOCAL].held, months["2024-12", Flow.LOCAL].expired) == (
        D("250"),
        D("1000"),
    )
    assert months["2024-04", Flow.OUTBOUND].redeemed == D("500")
    assert months["2024-05", Flow.INBOUND].redeemed == D("200")

    regions = {
        (li.key, li.flow): li for li in settle(session, world.officer, group_by="region").lines
    }
    assert regions["140100", Flow.LOCAL].label == "太原市"
    assert regions["141100", Flow.INBOUND].voucher_share == D("200")
    assert regions["140100", Flow.OUTBOUND].voucher_share == D("500")

    firms = {
        (li.key, li.flow): li for li in settle(session, world.officer, group_by="enterprise").lines
    }
    assert firms[str(world.x.id), Flow.LOCAL].expired == D("1000")
    assert firms[str(world.z.id), Flow.INBOUND].bookings == 1

    categories = {
        (li.key, li.flow): li for li in settle(session, world.officer, group_by="category").lines
    }
    assert categories["instrument_sharing", Flow.LOCAL].voucher_share == D("300")
    assert categories["testing", Flow.OUTBOUND].voucher_share == D("500")


def test_the_other_side_of_the_cross_region_flows(session, world):
    result = settle(session, world.far_officer, group_by="provider")
    by = {(li.key, li.flow): li for li in result.lines}
    lab, far = str(world.lab.id), str(world.far_lab.id)
    assert by[far, Flow.INBOUND].voucher_share == D("500")  # Taiyuan's voucher, b2
    assert by[lab, Flow.OUTBOUND].voucher_share == D("200")  # Lüliang's voucher, b3
    assert by[far, Flow.LOCAL].voucher_share == D("150")  # b7
    assert result.reconciliation.ok


def test_province_sees_both_cities_as_local(session, world):
    result = settle(session, world.province_officer, group_by="provider")
    assert {li.flow for li in result.lines} == {Flow.LOCAL}
    assert result.totals.voucher_share == D("1150.00")


def test_access(session, world):
    with pytest.raises(NotFound):
        settle(session, world.officer, region="141100")
    with pytest.raises(NotFound):
        settle(session, world.far_officer, region="14")
    with pytest.raises(Forbidden):
        settle(session, world.lab_admin)
    with pytest.raises(ValidationFailed):
        settle(session, world.officer, group_by="colour")
    with pytest.raises(ValidationFailed):
        settle(session, world.officer, period_from=date(2024, 2, 1), period_to=date(2024, 1, 1))
    assert settle(session, world.province_officer, region="141100").totals.voucher_share == D(
        "850.00"
    )


def test_a_no_show_holds_and_releases_but_never_counts_as_redeemed(session, world):
    """A no-show voucher booking (rule 12: its hold is released): its hold
    counts in ``held`` of the month it was made, and nothing else moves —
    not the bookings, the fees, the voucher share or the redeemed amount,
    even though the lab charged a no-show fee."""
    before = settle(session, world.officer, group_by="provider")
    no_show = usage_booking(
        session, world.bookings[1].resource, world.x, world.bookings[1].user, local(2024, 8, 6, 9),
        local(2024, 8, 6, 11), status="no_show", final_cost="100.00", voucher=world.v1,
    )  # fmt: skip
    ledger(session, world.v1, "hold", "-80.00", booking=no_show, at=local(2024, 8, 1, 10))
    ledger(session, world.v1, "release", "80.00", booking=no_show, at=local(2024, 8, 6, 12))
    after = settle(session, world.officer, group_by="provider")
    lab = {(li.key, li.flow): li for li in after.lines}[str(world.lab.id), Flow.LOCAL]
    assert figures(lab) == (
        1, D("600"), D("300"), D("300"), D("730"), D("300"), D("300"), D("300"), D("300"), 0
    )  # fmt: skip
    assert after.totals.held == before.totals.held + D("80.00") == D("1430.00")
    assert figures(after.totals)[:4] == figures(before.totals)[:4]
    assert after.totals.redeemed == before.totals.redeemed
    assert after.reconciliation.ok
    months = {
        (li.key, li.flow): li for li in settle(session, world.officer, group_by="month").lines
    }
    assert months["2024-08", Flow.LOCAL].held == D("80.00")
    assert months["2024-08", Flow.LOCAL].bookings == 0


def test_a_report_is_planned_for_its_own_period_on_every_run(session, world):
    """psycopg prepares a statement on its fifth run; PostgreSQL would then
    plan a report once for any period (8 s instead of 2.5 at 1M bookings in
    bench/reports.py). Report transactions ask for a plan per run."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("plan caching: PostgreSQL")
    from sqlalchemy import text

    runs = [settle(session, world.officer) for _ in range(7)]
    assert session.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
    assert {tuple(map(figures, r.lines)) for r in runs} == {tuple(map(figures, runs[0].lines))}
