"""The voucher service: policies, issue (one and CSV batch), revoke, adjust,
the four booking hooks, expiry, and the ledger's guarantees."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from booking.domain import clock
from booking.domain.errors import Forbidden, InvalidTransition, NotFound, RuleViolation
from booking.models.audit import AuditEvent
from booking.models.claims import OrderConfirmation
from booking.models.vouchers import LedgerKind, Voucher, VoucherLedgerEntry, VoucherStatus
from booking.services import admissions
from booking.services import vouchers as service
from tests.factories.accounts import actor_of, create_org, create_user
from tests.factories.catalog import create_resource
from tests.factories.claims import approved_voucher_booking, complete_booking
from tests.factories.reservations import create_reservation
from tests.factories.vouchers import (
    create_bureau,
    create_enterprise,
    create_policy,
    create_voucher,
    local,
    officer_of,
)

D = Decimal
NOW = local(2026, 3, 2, 10)


@pytest.fixture(autouse=True)
def _march(time_machine):
    time_machine.move_to(NOW, tick=False)


def counts(session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count(Voucher.id))),
        session.scalar(select(func.count(VoucherLedgerEntry.id))),
        session.scalar(select(func.count(AuditEvent.id))),
    )


def refused(rule: str, call, *args, **kwargs) -> RuleViolation:
    with pytest.raises(RuleViolation) as caught:
        call(*args, **kwargs)
    assert caught.value.details["rule"] == rule, caught.value.details
    return caught.value


def kinds(session, voucher) -> list[tuple[str, Decimal]]:
    rows = session.scalars(
        select(VoucherLedgerEntry)
        .where(VoucherLedgerEntry.voucher_id == voucher.id)
        .order_by(VoucherLedgerEntry.id)
    )
    return [(str(e.kind), e.amount) for e in rows]


# --- issue --------------------------------------------------------------------------


def test_issue_writes_the_voucher_its_issue_entry_and_audit_events(session):
    bureau = create_bureau(session, "140100")
    create_policy(session, bureau, order_cap=D("20000.00"))
    holder = create_enterprise(session, "140105")
    voucher = create_voucher(session, bureau, holder, "50000.00")
    assert voucher.number == f"140100-2026-{voucher.id:06d}"
    assert voucher.coverage_ratio == D("0.5")
    assert voucher.order_cap == D("20000.00")
    assert voucher.valid_from == local(2026, 3, 2)
    assert voucher.valid_until == local(2026, 12, 31, 23, 59).replace(second=59)
    assert voucher.service_categories == [
        "instrument_sharing",
        "testing",
        "computing",
        "pilot_scale",
        "rd_design",
        "tech_consulting",
    ]
    assert kinds(session, voucher) == [("issue", D("50000.00"))]
    totals = service.totals_of(session, voucher.id)
    assert (totals.balance, totals.held, totals.available) == (D("50000.00"), 0, D("50000.00"))
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.target_type == "vouchers")
    ).all()
    assert actions == ["voucher.create", "voucher.issue"]


def test_issue_refusals_write_nothing(session):
    bureau = create_bureau(session, "140100")
    create_policy(session, bureau)
    officer = officer_of(session, bureau)
    actor = actor_of(session, officer)
    holder = create_enterprise(session, "140105")
    lvliang_firm = create_enterprise(session, "141102")
    large = create_enterprise(session, "140105", size_class="large")
    stale = create_enterprise(session, "140105", tech_sme_year=2025)
    good = {"holder_org_id": holder.id, "face_value": D("1000.00")}
    cases = [
        ("holder_region", {**good, "holder_org_id": lvliang_firm.id}),
        ("holder_sme", {**good, "holder_org_id": large.id}),
        ("holder_tech_sme", {**good, "holder_org_id": stale.id}),
        ("annual_cap", {**good, "face_value": D("200000.01")}),
        ("face_value", {**good, "face_value": D("0.00")}),
        ("coverage_ratio", {**good, "coverage_ratio": D("0")}),
        ("coverage_ratio", {**good, "coverage_ratio": D("1.5")}),
        ("coverage_ratio", {**good, "coverage_ratio": D("0.6")}),  # above the policy's 0.50
        (
            "validity_order",
            {**good, "valid_from": date(2026, 6, 1), "valid_until": date(2026, 5, 1)},
        ),
        ("validity_too_long", {**good, "valid_until": date(2027, 3, 3)}),
        ("service_categories", {**good, "service_categories": ["astrology"]}),
        ("order_cap", {**good, "order_cap": D("0.00")}),
        ("provider_regions", {**good, "provider_regions": ["x1"]}),
    ]
    session.commit()
    before = counts(session)
    for rule, data in cases:
        refused(rule, service.issue_voucher, session, actor, data)
        assert counts(session) == before, rule


def test_only_a_bureau_officer_issues_and_a_policy_must_exist(session):
    bureau = create_bureau(session, "140100")
    holder = create_enterprise(session)
    data = {"holder_org_id": holder.id, "face_value": D("1000.00")}
    refused("voucher_policy_missing", create_voucher, session, bureau, holder, "1000.00")
    create_policy(session, bureau, effective_from=date(2026, 3, 3))  # tomorrow
    refused("voucher_policy_missing", create_voucher, session, bureau, holder, "1000.00")
    create_policy(session, bureau)
    member = create_user(session, holder, "admin")
    with pytest.raises(Forbidden):
        service.issue_voucher(session, actor_of(session, member), data)
    other_bureau = create_bureau(session, "141100")
    officer = officer_of(session, other_bureau)
    with pytest.raises(Forbidden):
        service.issue_voucher(session, actor_of(session, officer), {**data, "bureau_id": bureau.id})


def test_annual_cap_counts_the_year_the_controller_group_and_not_revoked(session):
    bureau = create_bureau(session, "140000")  # the province
    create_policy(session, bureau, cap_scope="actual_controller")
    first = create_enterprise(session, "140105", controller_group="group-a")
    sister = create_enterprise(session, "140404", controller_group="group-a")
    stranger = create_enterprise(session, "140105")
    officer = officer_of(session, bureau)
    create_voucher(session, bureau, first, "150000.00", officer=officer)
    refused("annual_cap", create_voucher, session, bureau, sister, "50000.01", officer=officer)
    create_voucher(session, bureau, stranger, "200000.00", officer=officer)
    last = create_voucher(session, bureau, sister, "50000.00", officer=officer)
    service.revoke_voucher(session, actor_of(session, officer), last.id, "issued in error")
    create_voucher(session, bureau, sister, "50000.00", officer=officer)


def test_annual_cap_is_per_calendar_year_in_shanghai(session, time_machine):
    bureau = create_bureau(session, "140100")
    create_policy(session, bureau, require_tech_sme=False)
    holder = create_enterprise(session)
    officer = officer_of(session, bureau)
    time_machine.move_to(local(2026, 12, 31, 23, 30), tick=False)
    create_voucher(session, bureau, holder, "200000.00", officer=officer)
    refused("annual_cap", create_voucher, session, bureau, holder, "0.01", officer=officer)
    time_machine.move_to(local(2027, 1, 1, 0, 30), tick=False)  # still 2026 in UTC
    voucher = create_voucher(session, bureau, holder, "200000.00", officer=officer)
    assert voucher.valid_until.astimezone(local(2027, 1, 1).tzinfo).date() == date(2027, 12, 31)


# --- batch --------------------------------------------------------------------------


def test_batch_is_all_or_nothing_with_problems_by_row(session):
    bureau = create_bureau(session, "140100")
    create_policy(session, bureau)
    officer = officer_of(session, bureau)
    firms = [create_enterprise(session) for _ in range(3)]
    outsider = create_enterprise(session, "140404")
    session.commit()
    rows = [
        "holder_uscc,face_value,coverage_ratio,valid_until,service_categories",
        f"{firms[0].uscc},150000.00,0.5,2026-12-31,testing;computing",
        f"{firms[0].uscc},60000.00,0.5,2026-12-31,testing",  # row 3: cap with row 2
        f"{outsider.uscc},1000.00,0.5,,",  # row 4: region
        f"{firms[1].uscc},abc,0.5,,",  # row 5: money
        f"{firms[2].uscc},1000.00,0.4,2026-13-01,",  # row 6: date
        "91140105MA0ZZZZZ9X,1000.00,,,",  # row 7: unknown holder
    ]
    before = counts(session)
    problem = refused(
        "batch_rows",
        service.issue_batch,
        session,
        actor_of(session, officer),
        "\ufeff" + "\n".join(rows),
    )
    by_row = {p["row"]: p for p in problem.details["rows"]}
    assert sorted(by_row) == [3, 4, 5, 6, 7]
    assert by_row[3]["rule"] == "annual_cap" and by_row[3]["field"] == "face_value"
    assert by_row[4]["rule"] == "holder_region"
    assert by_row[5] == {**by_row[5], "rule": "csv_format", "field": "face_value"}
    assert by_row[6]["field"] == "valid_until"
    assert by_row[7]["field"] == "holder_uscc"
    session.rollback()  # what the request does on an error
    assert counts(session) == before


def test_a_good_batch_issues_every_row_under_one_batch_id(session):
    bureau = create_bureau(session, "140100")
    create_policy(session, bureau)
    officer = officer_of(session, bureau)
    firms = [create_enterprise(session) for _ in range(3)]
    content = "holder_org_id,face_value,coverage_ratio,order_cap,service_categories\n" + "\n".join(
        f"{f.id},{10000 * (i + 1)}.00,50%,5000,testing|instrument_sharing"
        for i, f in enumerate(firms)
    )
    issued = service.issue_batch(session, actor_of(session, officer), content.encode("utf-8"))
    assert [v.face_value for v in issued] == [D("10000.00"), D("20000.00"), D("30000.00")]
    assert len({v.batch_id for v in issued}) == 1
    assert all(v.coverage_ratio == D("0.5") for v in issued)
    assert issued[0].service_categories == ["instrument_sharing", "testing"]


def test_batch_header_must_be_known(session):
    bureau = create_bureau(session, "140100")
    create_policy(session, bureau)
    actor = actor_of(session, officer_of(session, bureau))
    refused("csv_header", service.issue_batch, session, actor, "who,how_much\nx,1\n")
    refused("csv_empty", service.issue_batch, session, actor, "holder_org_id,face_value\n")


# --- policies ---------------------------------------------------------------------------


def test_policy_versions_and_their_rules(session):
    bureau = create_bureau(session, "140100")
    officer = officer_of(session, bureau)
    actor = actor_of(session, officer)
    refused(
        "tiered_rates_missing",
        service.create_policy,
        session,
        actor,
        bureau.id,
        {"formula": "tiered", "tier1_rate": D("0.5")},
    )
    refused(
        "policy_effective_past",
        service.create_policy,
        session,
        actor,
        bureau.id,
        {"effective_from": date(2026, 3, 1)},
    )
    today = service.create_policy(session, actor, bureau.id, {"coverage_ratio": D("0.40")})
    later = service.create_policy(
        session,
        actor,
        bureau.id,
        {
            "effective_from": date(2026, 7, 1),
            "formula": "tiered",
            "tier1_rate": D("0.5"),
            "tier2_rate": D("0.3"),
        },
    )
    assert service.policy_in_effect(session, bureau.id, date(2026, 6, 30)).id == today.id
    assert service.policy_in_effect(session, bureau.id, date(2026, 7, 1)).id == later.id
    holder = create_enterprise(session)
    create_voucher(session, bureau, holder, "100.00", officer=officer)
    with pytest.raises(InvalidTransition):
        service.update_policy(session, actor, today.id, {"coverage_ratio": D("0.30")})
    updated = service.update_policy(session, actor, later.id, {"notice_days": 5})
    assert updated.notice_days == 5 and str(updated.formula) == "tiered"
    someone = actor_of(session, create_user(session, holder, "admin"))
    with pytest.raises(Forbidden):
        service.create_policy(session, someone, bureau.id, {})


# --- revoke and adjust ------------------------------------------------------------------


def test_revoke_only_unused(session, voucher_world):
    world = voucher_world()
    officer = actor_of(session, world.officer)
    approved_voucher_booking(session, world, local(2026, 3, 3, 9))
    with pytest.raises(InvalidTransition):
        service.revoke_voucher(session, officer, world.voucher.id, "no")
    spare = create_voucher(session, world.bureau, world.enterprise, "500.00", officer=world.officer)
    revoked = service.revoke_voucher(session, officer, spare.id, "issued twice")
    assert revoked.status == VoucherStatus.REVOKED
    assert kinds(session, spare) == [("issue", D("500.00")), ("revoke", D("-500.00"))]
    assert service.totals_of(session, spare.id).balance == 0
    customer = actor_of(session, world.customer)
    with pytest.raises(NotFound):  # a stranger may not even see it
        service.revoke_voucher(session, actor_of(session, create_user(session)), spare.id, "x")
    with pytest.raises(Forbidden):
        service.revoke_voucher(session, customer, world.voucher.id, "x")


def test_adjust_needs_a_reason_and_never_goes_below_zero(session, voucher_world):
    world = voucher_world(face_value="1000.00")
    officer = actor_of(session, world.officer)
    approved_voucher_booking(session, world, local(2026, 3, 3, 9), estimated="400.00")  # holds 200
    refused(
        "voucher_balance",
        service.adjust_voucher,
        session,
        officer,
        world.voucher.id,
        D("-800.01"),
        "x",
    )
    entry = service.adjust_voucher(session, officer, world.voucher.id, D("-800.00"), "overpaid")
    assert entry.kind == LedgerKind.ADJUST and entry.reason == "overpaid"
    totals = service.totals_of(session, world.voucher.id)
    assert (totals.balance, totals.held, totals.available) == (D("200.00"), D("200.00"), 0)
    service.adjust_voucher(session, officer, world.voucher.id, D("50.00"), "correction")
    assert service.totals_of(session, world.voucher.id).available == D("50.00")


# --- the booking hooks --------------------------------------------------------------------


_days = itertools.count()


def booking_of(session, world, start=None, **fields):
    """A booking row; each on its own day (exclusive resources)."""
    start = start or local(2026, 3, 3, 9) + timedelta(days=next(_days) % 250)
    return create_reservation(
        session,
        fields.pop("resource", world.resource),
        fields.pop("customer", world.enterprise),
        world.customer,
        start,
        start + timedelta(hours=2),
        status=fields.pop("status", "requested"),
        estimated_cost=D(fields.pop("estimated", "400.00")),
        **fields,
    )


def test_quote_shows_both_shares_and_writes_nothing(session, voucher_world):
    world = voucher_world(voucher={"coverage_ratio": "0.4"})
    booking = booking_of(session, world, estimated="333.33")
    before = counts(session)
    quote = service.quote_for_booking(
        session, actor_of(session, world.customer), world.voucher.id, booking
    )
    assert (quote.voucher_share, quote.customer_share) == (D("133.33"), D("200.00"))
    assert counts(session) == before


def test_someone_elses_unknown_expired_or_wrong_category_voucher(session, voucher_world):
    world = voucher_world(voucher={"service_categories": ["testing"]})
    actor = actor_of(session, world.customer)
    other_firm = create_enterprise(session)
    theirs = create_voucher(session, world.bureau, other_firm, "100.00", officer=world.officer)
    booking = booking_of(session, world)
    refused("voucher_holder", service.quote_for_booking, session, actor, theirs.id, booking)
    with pytest.raises(NotFound) as unknown:
        service.quote_for_booking(session, actor, 999999, booking)
    assert unknown.value.details == {"field": "voucher_id"}
    refused(
        "voucher_category", service.quote_for_booking, session, actor, world.voucher.id, booking
    )
    mine = create_voucher(session, world.bureau, world.enterprise, "100.00", officer=world.officer)
    late = booking_of(session, world, start=local(2027, 1, 4, 9))
    refused("voucher_validity", service.quote_for_booking, session, actor, mine.id, late)
    subsidised = booking_of(session, world, other_public_subsidy=True)
    refused("other_public_subsidy", service.quote_for_booking, session, actor, mine.id, subsidised)
    service.revoke_voucher(session, actor_of(session, world.officer), mine.id, "x")
    refused("voucher_expired", service.quote_for_booking, session, actor, mine.id, booking)


def test_expired_voucher_refused_after_its_last_day(session, voucher_world, time_machine):
    world = voucher_world()
    booking = booking_of(session, world, start=local(2026, 12, 31, 9))
    actor = actor_of(session, world.customer)
    time_machine.move_to(local(2026, 12, 31, 23, 59), tick=False)
    service.quote_for_booking(session, actor, world.voucher.id, booking)
    time_machine.move_to(local(2027, 1, 1, 0, 0), tick=False)
    refused("voucher_expired", service.quote_for_booking, session, actor, world.voucher.id, booking)


def test_provider_must_be_admitted_and_not_suspended(session, voucher_world):
    world = voucher_world()
    actor = actor_of(session, world.customer)
    outsider = create_org(session, "provider", region="140105")
    resource = create_resource(session, outsider)
    booking = booking_of(session, world, resource=resource)
    refused(
        "provider_not_admitted",
        service.quote_for_booking,
        session,
        actor,
        world.voucher.id,
        booking,
    )
    admission = admissions.current_admission(session, world.provider.id)
    platform = create_user(session, create_org(session, "platform"), "admin", platform_admin=True)
    admissions.suspend_provider(session, actor_of(session, platform), admission.id, "audit")
    ours = booking_of(session, world, voucher_id=world.voucher.id)
    refused("provider_suspended", service.quote_for_booking, session, actor, world.voucher.id, ours)
    refused("provider_suspended", service.hold_for_booking, session, actor, ours)
    admissions.reinstate_provider(session, actor_of(session, platform), admission.id)
    service.quote_for_booking(session, actor, world.voucher.id, ours)


def test_provider_regions_cross_region_by_default_limited_when_set(session, voucher_world):
    world = voucher_world(provider_region="440305")  # Shenzhen, outside Shanxi
    actor = actor_of(session, world.customer)
    booking = booking_of(session, world)
    assert service.quote_for_booking(session, actor, world.voucher.id, booking).voucher_share
    in_province = create_voucher(
        session,
        world.bureau,
        world.enterprise,
        "100.00",
        officer=world.officer,
        provider_regions=["14"],
    )
    refused("provider_region", service.quote_for_booking, session, actor, in_province.id, booking)


@pytest.mark.parametrize("how", ["same_controller_group", "declared_relation"])
def test_related_parties_are_refused(session, voucher_world, how):
    # (Same credit code: two organisations never share one in the database;
    # the domain rule is tested in tests/domain.)
    world = voucher_world()
    actor = actor_of(session, world.customer)
    if how == "same_controller_group":
        world.enterprise.controller_group = world.provider.controller_group = "shangdang"
        session.flush()
    else:
        admissions.declare_related_party(
            session,
            actor_of(session, world.lab_admin),
            world.provider.id,
            {"related_org_id": world.enterprise.id, "relation": "shareholding"},
        )
    booking = booking_of(session, world)
    problem = refused(
        "related_party", service.quote_for_booking, session, actor, world.voucher.id, booking
    )
    assert problem.details["reason"] == how


def test_cma_of_testing_providers(session, voucher_world):
    world = voucher_world(kind="testing_service")
    world.resource.category.code = "0401"
    actor = actor_of(session, world.customer)
    lab = actor_of(session, world.lab_admin)
    booking = booking_of(session, world)
    refused("cma_missing", service.quote_for_booking, session, actor, world.voucher.id, booking)
    admissions.record_cma(
        session,
        lab,
        world.provider.id,
        {"number": "2301", "scope": "煤炭", "expires_on": date(2026, 3, 2), "category_codes": []},
    )
    refused("cma_expired", service.quote_for_booking, session, actor, world.voucher.id, booking)
    admissions.record_cma(
        session,
        lab,
        world.provider.id,
        {
            "number": "2302",
            "scope": "金属",
            "expires_on": date(2028, 6, 30),
            "category_codes": ["05"],
        },
    )
    refused("cma_scope", service.quote_for_booking, session, actor, world.voucher.id, booking)
    admissions.record_cma(
        session,
        lab,
        world.provider.id,
        {
            "number": "2303",
            "scope": "煤炭",
            "expires_on": date(2028, 6, 30),
            "category_codes": ["04"],
        },
    )
    service.quote_for_booking(session, actor, world.voucher.id, booking)


def test_hold_release_and_rehold(session, voucher_world):
    world = voucher_world(face_value="1000.00")
    lab = actor_of(session, world.lab_admin)
    booking = booking_of(session, world, voucher_id=world.voucher.id, estimated="400.00")
    assert service.hold_for_booking(session, lab, booking) == D("200.00")
    assert booking.voucher_hold == D("200.00")
    assert service.hold_for_booking(session, lab, booking) == D("200.00")  # no new entry
    booking.estimated_cost = D("500.00")
    assert service.hold_for_booking(session, lab, booking) == D("250.00")
    assert kinds(session, world.voucher)[1:] == [
        ("hold", D("-200.00")),
        ("release", D("200.00")),
        ("hold", D("-250.00")),
    ]
    assert service.release_for_booking(session, lab, booking, "cancelled") == D("250.00")
    assert service.release_for_booking(session, lab, booking, "cancelled") == D("0.00")
    assert booking.voucher_hold == 0
    totals = service.totals_of(session, world.voucher.id)
    assert (totals.balance, totals.held) == (D("1000.00"), 0)


def test_hold_takes_what_is_left_and_refuses_when_nothing_is(session, voucher_world):
    world = voucher_world(face_value="300.00")
    lab = actor_of(session, world.lab_admin)
    first = booking_of(session, world, voucher_id=world.voucher.id, estimated="400.00")
    second = booking_of(session, world, voucher_id=world.voucher.id, estimated="400.00")
    third = booking_of(session, world, voucher_id=world.voucher.id, estimated="400.00")
    assert service.hold_for_booking(session, lab, first) == D("200.00")
    assert service.hold_for_booking(session, lab, second) == D("100.00")
    before = counts(session)
    refused("voucher_balance", service.hold_for_booking, session, lab, third)
    assert counts(session) == before


def test_redeem_at_completion_from_the_final_cost(session, voucher_world):
    world = voucher_world(face_value="1000.00", voucher={"order_cap": "300.00"})
    booking = approved_voucher_booking(session, world, local(2026, 3, 3, 9), estimated="400.00")
    assert complete_booking(session, world, booking, "900.00") == D("300.00")  # the order cap
    assert (booking.voucher_amount, booking.customer_amount) == (D("300.00"), D("600.00"))
    assert kinds(session, world.voucher)[1:] == [
        ("hold", D("-200.00")),
        ("release", D("200.00")),
        ("redeem", D("-300.00")),
    ]
    totals = service.totals_of(session, world.voucher.id)
    assert (totals.balance, totals.held, totals.redeemed) == (D("700.00"), 0, D("300.00"))
    # Again: nothing new, the same figures.
    assert service.redeem_for_booking(session, actor_of(session, world.lab_admin), booking) == D(
        "300.00"
    )
    assert len(kinds(session, world.voucher)) == 4
    confirmation = session.scalar(
        select(OrderConfirmation).where(OrderConfirmation.reservation_id == booking.id)
    )
    assert confirmation.content["voucher_amount"] == "300.00"
    assert confirmation.content["customer_amount"] == "600.00"


def test_redeem_the_one_fen_booking(session, voucher_world):
    world = voucher_world(face_value="1000.00")
    booking = approved_voucher_booking(session, world, local(2026, 3, 3, 9), estimated="0.02")
    assert booking.voucher_hold == D("0.01")
    assert complete_booking(session, world, booking, "0.01") == D("0.00")
    assert (booking.voucher_amount, booking.customer_amount) == (D("0.00"), D("0.01"))
    assert service.totals_of(session, world.voucher.id).balance == D("1000.00")


def test_redeem_more_than_held_from_what_is_available_and_never_more(session, voucher_world):
    world = voucher_world(face_value="500.00")
    first = approved_voucher_booking(session, world, local(2026, 3, 3, 9), estimated="100.00")
    second = approved_voucher_booking(session, world, local(2026, 3, 4, 9), estimated="100.00")
    assert complete_booking(session, world, first, "800.00") == D("400.00")  # 50 held + 350
    assert complete_booking(session, world, second, "800.00") == D("100.00")  # 50 held + 50
    totals = service.totals_of(session, world.voucher.id)
    assert (totals.balance, totals.held, totals.redeemed) == (0, 0, D("500.00"))


def test_no_voucher_means_the_customer_pays_everything(session, voucher_world):
    world = voucher_world()
    booking = booking_of(session, world, status="completed")
    booking.final_cost = D("123.45")
    assert service.redeem_for_booking(session, actor_of(session, world.lab_admin), booking) == 0
    assert booking.customer_amount == D("123.45")


# --- expiry -------------------------------------------------------------------------------


def test_expiry_releases_holds_expires_the_rest_once(session, voucher_world, time_machine):
    world = voucher_world(face_value="1000.00")
    done = approved_voucher_booking(session, world, local(2026, 12, 30, 9), estimated="200.00")
    open_one = approved_voucher_booking(session, world, local(2026, 12, 31, 9), estimated="400.00")
    complete_booking(session, world, done, "200.00")  # redeems 100
    session.commit()
    time_machine.move_to(local(2026, 12, 31, 23, 59), tick=False)
    assert service.expire_due_vouchers(session, clock.now()) == 0
    time_machine.move_to(local(2027, 1, 1, 0, 0), tick=False)
    assert service.expire_due_vouchers(session, clock.now()) == 1
    session.commit()
    assert kinds(session, world.voucher)[-2:] == [
        ("release", D("200.00")),
        ("expire", D("-900.00")),
    ]
    assert open_one.voucher_hold == 0
    totals = service.totals_of(session, world.voucher.id)
    assert (totals.balance, totals.held, totals.expired, totals.redeemed) == (
        0,
        0,
        D("900.00"),
        D("100.00"),
    )
    entries = len(kinds(session, world.voucher))
    assert service.expire_due_vouchers(session, clock.now()) == 0
    assert len(kinds(session, world.voucher)) == entries
    # Completed after the voucher's last day: nothing is redeemed.
    assert complete_booking(session, world, open_one, "400.00") == 0
    assert open_one.customer_amount == D("400.00")
    assert len(kinds(session, world.voucher)) == entries


# --- the ledger's guarantees -------------------------------------------------------------


def test_ledger_entries_cannot_be_changed(session, voucher_world):
    world = voucher_world()
    session.commit()
    entry = session.scalar(
        select(VoucherLedgerEntry).where(VoucherLedgerEntry.voucher_id == world.voucher.id)
    )
    entry.amount = D("1.00")
    with pytest.raises(RuntimeError):
        session.flush()
    session.rollback()
    with pytest.raises(DBAPIError):
        session.execute(
            text("UPDATE voucher_ledger_entries SET amount = 1 WHERE id = :id"), {"id": entry.id}
        )
    session.rollback()


def test_delete_refused_by_the_database_on_postgres(session, voucher_world, requires_postgres):
    world = voucher_world()
    session.commit()
    with pytest.raises(DBAPIError):
        session.execute(
            text("DELETE FROM voucher_ledger_entries WHERE voucher_id = :id"),
            {"id": world.voucher.id},
        )
    session.rollback()


@pytest.mark.parametrize(
    ("kind", "amount"), [("issue", "-1.00"), ("hold", "1.00"), ("adjust", "0")]
)
def test_database_refuses_a_wrong_sign(session, voucher_world, kind, amount):
    world = voucher_world()
    session.commit()
    with pytest.raises(IntegrityError):
        session.execute(
            text(
                "INSERT INTO voucher_ledger_entries (voucher_id, issuing_region,"
                " holder_org_id, kind, amount, reservation_id, reason, at)"
                " VALUES (:v, :region, :holder, :k, :a, NULL, 'x', :at)"
            ),
            {
                "v": world.voucher.id,
                "region": world.voucher.issuing_region,
                "holder": world.voucher.holder_org_id,
                "k": kind,
                "a": amount,
                "at": "2026-03-02 02:00:00",
            },
        )
    session.rollback()


# --- visibility ----------------------------------------------------------------------------


def test_a_bureau_sees_its_regions_vouchers_and_the_flows_that_touch_it(session, voucher_world):
    world = voucher_world()  # a Taiyuan voucher; the lab is in Taiyuan too
    lvliang = create_bureau(session, "141100")
    create_policy(session, lvliang)
    firm = create_enterprise(session, "141102")
    remote = create_voucher(session, lvliang, firm, "800.00")
    taiyuan_officer = actor_of(session, world.officer)
    province = actor_of(session, officer_of(session, create_bureau(session, "140000")))
    changzhi = actor_of(session, officer_of(session, create_bureau(session, "140400")))
    holder = actor_of(session, create_user(session, firm, "member"))

    def visible(actor) -> set[int]:
        return {v.id for v in service.list_vouchers(session, actor)[0]}

    assert visible(taiyuan_officer) == {world.voucher.id}
    assert visible(province) == {world.voucher.id, remote.id}
    assert visible(holder) == {remote.id}
    assert visible(changzhi) == set()
    with pytest.raises(NotFound):
        service.get_voucher(session, taiyuan_officer, remote.id)
    # The Lüliang voucher pays the Taiyuan lab: Taiyuan's bureau now sees that flow.
    create_reservation(
        session,
        world.resource,
        firm,
        world.customer,
        local(2026, 3, 3, 9),
        voucher_id=remote.id,
    )
    assert visible(taiyuan_officer) == {world.voucher.id, remote.id}
    assert service.get_voucher(session, taiyuan_officer, remote.id).id == remote.id
    with pytest.raises(Forbidden):  # seen, but only the issuer manages it
        service.adjust_voucher(session, taiyuan_officer, remote.id, D("-1.00"), "x")
    assert visible(changzhi) == set()


# --- expiry under a second scheduler -----------------------------------------------------------


def test_expiry_skips_a_voucher_another_transaction_holds(
    session, db, voucher_world, requires_postgres, time_machine
):
    world = voucher_world()
    other = create_voucher(session, world.bureau, world.enterprise, "100.00", officer=world.officer)
    session.commit()
    time_machine.move_to(local(2027, 1, 1, 0, 5), tick=False)
    with db.engine.connect() as holder:
        holder.execute(
            text("SELECT id FROM vouchers WHERE id = :id FOR UPDATE"), {"id": world.voucher.id}
        )
        assert service.expire_due_vouchers(session, clock.now()) == 1  # only the other one
        session.commit()
        holder.rollback()
    assert service.expire_due_vouchers(session, clock.now()) == 1  # now the first
    session.commit()
    assert service.expire_due_vouchers(session, clock.now()) == 0
    for voucher in (world.voucher, other):
        assert [k for k, _ in kinds(session, voucher)].count("expire") == 1


# --- every change leaves an audit event ---------------------------------------------------------


def test_admissions_cma_related_parties_and_policies_are_audited(session, voucher_world):
    world = voucher_world()
    platform = actor_of(
        session, create_user(session, create_org(session, "platform"), "admin", platform_admin=True)
    )
    provider = create_org(session, "provider", region="140105")
    lab = actor_of(session, create_user(session, provider, "admin"))
    admission = admissions.apply_for_admission(
        session, lab, provider.id, {"documents": [{"name": "licence", "reference": "a.pdf"}]}
    )
    admissions.approve_admission(
        session, platform, admission.id, {"credit_check_passed": True, "notice_days": 0}
    )
    assert admissions.provider_standing(session, provider, clock.now()) == "admitted"
    admissions.suspend_provider(session, platform, admission.id, "complaint")
    assert provider.voucher_provider is False
    admissions.reinstate_provider(session, platform, admission.id)
    cma = admissions.record_cma(
        session, lab, provider.id, {"number": "1", "scope": "s", "expires_on": date(2027, 1, 1)}
    )
    admissions.withdraw_cma(session, lab, cma.id)
    declaration = admissions.declare_related_party(
        session, lab, provider.id, {"related_org_id": world.enterprise.id, "relation": "other"}
    )
    admissions.withdraw_related_party(session, lab, declaration.id)
    officer = actor_of(session, world.officer)
    policy = service.create_policy(
        session, officer, world.bureau.id, {"effective_from": date(2026, 5, 1)}
    )
    service.update_policy(session, officer, policy.id, {"notice_days": 3})
    service.delete_policy(session, officer, policy.id)
    actions = set(session.scalars(select(AuditEvent.action)).all())
    assert {
        "admission.apply",
        "admission.approve",
        "admission.suspend",
        "admission.reinstate",
        "cma.record",
        "cma.withdraw",
        "related_party.declare",
        "related_party.withdraw",
        "voucher_policy.create",
        "voucher_policy.update",
        "voucher_policy.delete",
    } <= actions


def test_admission_in_public_notice_is_admitted_when_the_notice_ends(
    session, voucher_world, time_machine
):
    world = voucher_world()
    platform = actor_of(
        session, create_user(session, create_org(session, "platform"), "admin", platform_admin=True)
    )
    provider = create_org(session, "provider", region="140105")
    admission = admissions.apply_for_admission(
        session, platform, provider.id, {"documents": [{"name": "licence", "reference": "a"}]}
    )
    # No notice given: the governing bureau's policy says 7 days.
    admissions.approve_admission(session, platform, admission.id, {"credit_check_passed": True})
    assert admission.notice_days == world.policy.admission_notice_days == 7
    assert admissions.provider_standing(session, provider, clock.now()) == "in_notice"
    time_machine.move_to(local(2026, 3, 10, 0, 0), tick=False)
    assert admissions.provider_standing(session, provider, clock.now()) == "admitted"
