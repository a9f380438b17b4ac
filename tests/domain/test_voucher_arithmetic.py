"""Voucher arithmetic and rules at every edge (POLICY.md rules 1–10), pure."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from booking.domain.errors import RuleViolation
from booking.domain.vouchers import (
    PartyView,
    PolicyTerms,
    Relations,
    ShareTerms,
    amount_sign_ok,
    check_annual_cap,
    check_categories,
    check_coverage_ratio,
    check_holder,
    check_not_related,
    check_order_cap,
    check_provider_regions,
    claim_deadline,
    gross_share,
    provider_region_allowed,
    split_cost,
    tiered_subsidy,
    totals_of,
    validity,
    voucher_share,
)

SH = ZoneInfo("Asia/Shanghai")
D = Decimal
PLENTY = D("1000000.00")


def share(cost, ratio="0.50", cap=None, spendable=PLENTY, **terms):
    return voucher_share(
        D(cost),
        ShareTerms(coverage_ratio=D(ratio), order_cap=D(cap) if cap else None, **terms),
        D(spendable),
    )


# --- rule 8: round half-up to the fen ---------------------------------------------------


@pytest.mark.parametrize(
    ("cost", "ratio", "expected"),
    [
        ("100.00", "0.50", "50.00"),
        ("100.01", "0.50", "50.01"),  # 50.005 rounds half-up
        ("100.03", "0.50", "50.02"),  # 50.015 rounds half-up
        ("0.03", "0.50", "0.02"),  # 0.015 → 0.02, customer pays 0.01
        ("333.33", "0.25", "83.33"),  # 83.3325
        ("333.34", "0.25", "83.34"),  # 83.335 half-up
        ("1.00", "0.3333", "0.33"),
        ("99.99", "0.40", "40.00"),  # 39.996
    ],
)
def test_share_is_rounded_half_up_once(cost, ratio, expected):
    assert share(cost, ratio) == D(expected)


# --- rule 9: the customer always pays at least 0.01 below a full ratio --------------------


def test_final_cost_of_one_fen_leaves_the_voucher_nothing():
    # 0.01 × 0.50 rounds half-up to 0.01: the co-pay cap takes it back to 0.
    assert share("0.01", "0.50") == D("0.00")
    assert split_cost(D("0.01"), ShareTerms(), PLENTY) == (D("0.00"), D("0.01"))


def test_two_fen_at_ninety_nine_percent_keeps_one_fen_for_the_customer():
    assert share("0.02", "0.99") == D("0.01")
    assert share("100.00", "0.9999") == D("99.99")


def test_full_ratio_may_pay_the_whole_order():
    assert share("0.01", "1") == D("0.01")
    assert share("250.00", "1.00") == D("250.00")


def test_zero_cost_pays_nothing():
    assert share("0.00", "0.50") == D("0.00")
    assert share("0.00", "1") == D("0.00")


# --- rule 8: caps ------------------------------------------------------------------------


def test_order_cap_binds_when_below_the_share():
    assert share("100000.00", "0.50", cap="20000.00") == D("20000.00")
    assert share("1000.00", "0.50", cap="20000.00") == D("500.00")
    assert share("40000.00", "0.50", cap="20000.00") == D("20000.00")  # equal: either


def test_held_plus_available_binds():
    assert share("1000.00", "0.50", spendable="123.45") == D("123.45")
    assert share("1000.00", "0.50", spendable="0.00") == D("0.00")
    assert share("1000.00", "0.50", spendable="-5.00") == D("0.00")


def test_every_cap_together_takes_the_smallest():
    assert share("10.00", "0.90", cap="8.00", spendable="9.50") == D("8.00")
    assert share("10.00", "0.90", cap="9.99", spendable="9.50") == D("9.00")
    assert share("10.00", "1", cap="20.00", spendable="9.99") == D("9.99")


def test_split_adds_up_to_the_cost():
    voucher, customer = split_cost(D("1234.57"), ShareTerms(coverage_ratio=D("0.4")), PLENTY)
    assert voucher == D("493.83") and customer == D("740.74")
    assert voucher + customer == D("1234.57")


# --- rule 10: tiered formula -------------------------------------------------------------


def test_tiered_formula_splits_at_the_limit():
    assert tiered_subsidy(D("50000.00"), D("50000.00"), D("0.5"), D("0.3")) == D("25000.00")
    assert tiered_subsidy(D("80000.00"), D("50000.00"), D("0.5"), D("0.3")) == D("34000.00")
    assert tiered_subsidy(D("10000.00"), D("50000.00"), D("0.5"), D("0.3")) == D("5000.00")
    # rounding once, after both tiers: 50000.01 → 25000 + 0.003 = 25000.003 → 25000.00
    assert tiered_subsidy(D("50000.01"), D("50000.00"), D("0.5"), D("0.3")) == D("25000.00")
    assert tiered_subsidy(D("50000.02"), D("50000.00"), D("0.5"), D("0.25")) == D("25000.01")


def test_tiered_share_still_caps_and_copays():
    terms = {
        "formula": "tiered",
        "tier1_limit": D("100.00"),
        "tier1_rate": D("1"),
        "tier2_rate": D("0.5"),
    }
    assert share("100.00", **terms) == D("99.99")  # rate 1 on tier 1, but tier 2 < 1
    assert share("300.00", cap="150.00", **terms) == D("150.00")
    full = dict(terms, tier2_rate=D("1"))
    assert share("300.00", **full) == D("300.00")


def test_tiered_without_rates_refuses():
    with pytest.raises(RuleViolation) as refused:
        gross_share(D("10.00"), ShareTerms(formula="tiered", tier1_rate=D("0.5")))
    assert refused.value.details["rule"] == "tiered_rates_missing"
    problems = PolicyTerms(formula="tiered", tier1_rate=D("0.5")).problems()
    assert "formula" in problems
    assert (
        "formula"
        not in PolicyTerms(formula="tiered", tier1_rate=D("0.5"), tier2_rate=D("0.3")).problems()
    )


# --- property: the share never breaks a rule -------------------------------------------

money = st.decimals(min_value=D("0.00"), max_value=D("10000000.00"), places=2)
ratios = st.decimals(min_value=D("0.0001"), max_value=D("1"), places=4)


@given(cost=money, ratio=ratios, cap=st.none() | money, spendable=money)
def test_share_never_breaks_a_rule(cost, ratio, cap, spendable):
    terms = ShareTerms(coverage_ratio=ratio, order_cap=cap)
    voucher, customer = split_cost(cost, terms, spendable)
    assert voucher + customer == cost
    assert D("0") <= voucher <= cost
    assert voucher <= spendable or voucher == 0
    assert cap is None or voucher <= cap
    assert voucher <= (cost * ratio).quantize(D("0.01"), rounding="ROUND_HALF_UP")
    if ratio < 1 and cost > 0:
        assert customer >= D("0.01")
    assert voucher == voucher.quantize(D("0.01"))


# --- rule 12: ledger signs and totals ---------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("issue", "1.00", "-1.00"),
        ("release", "1.00", "-1.00"),
        ("hold", "-1.00", "1.00"),
        ("redeem", "-1.00", "1.00"),
        ("expire", "-1.00", "1.00"),
        ("revoke", "-1.00", "1.00"),
        ("adjust", "-1.00", "0.00"),
    ],
)
def test_amount_sign_by_kind(kind, good, bad):
    assert amount_sign_ok(kind, D(good))
    assert not amount_sign_ok(kind, D(bad))
    assert not amount_sign_ok(kind, D("0"))


def test_totals_from_entries():
    totals = totals_of(
        [
            ("issue", D("1000.00")),
            ("hold", D("-300.00")),
            ("release", D("300.00")),
            ("redeem", D("-250.00")),
            ("hold", D("-100.00")),
            ("adjust", D("10.00")),
        ]
    )
    assert totals.face_value == D("1000.00")
    assert totals.balance == D("760.00")
    assert totals.held == D("100.00")
    assert totals.available == D("660.00")
    assert totals.redeemed == D("250.00")


# --- rules 1–4: issue -------------------------------------------------------------------


def enterprise(**kw):
    values = {
        "org_id": 1,
        "kind": "enterprise",
        "region": "140105",
        "uscc": "91140105MA0000001X",
        "size_class": "small",
        "tech_sme_number": "2026140105A0001234",
        "tech_sme_year": 2026,
    }
    values.update(kw)
    return PartyView(**values)


def rule_of(call, *args, **kwargs) -> str:
    with pytest.raises(RuleViolation) as refused:
        call(*args, **kwargs)
    return refused.value.details["rule"]


def test_holder_rules():
    terms = PolicyTerms()
    check_holder(enterprise(), "140100", terms, 2026)
    check_holder(enterprise(), "140000", terms, 2026)  # the province governs Taiyuan
    assert rule_of(check_holder, enterprise(region="141102"), "140100", terms, 2026) == (
        "holder_region"
    )
    assert rule_of(check_holder, enterprise(kind="provider"), "140100", terms, 2026) == (
        "holder_kind"
    )
    assert rule_of(check_holder, enterprise(size_class="large"), "140100", terms, 2026) == (
        "holder_sme"
    )
    assert rule_of(check_holder, enterprise(tech_sme_year=2025), "140100", terms, 2026) == (
        "holder_tech_sme"
    )
    assert rule_of(check_holder, enterprise(tech_sme_number=None), "140100", terms, 2026) == (
        "holder_tech_sme"
    )
    relaxed = PolicyTerms(require_tech_sme=False)
    check_holder(enterprise(tech_sme_number=None), "140100", relaxed, 2026)
    with_large = PolicyTerms(require_tech_sme=False, require_sme=False)
    check_holder(enterprise(size_class="large"), "140100", with_large, 2026)


def test_annual_cap_edges():
    check_annual_cap(D("150000.00"), D("50000.00"), D("200000.00"))
    assert rule_of(check_annual_cap, D("150000.00"), D("50000.01"), D("200000.00")) == (
        "annual_cap"
    )


def test_ratio_cap_and_categories():
    check_coverage_ratio(D("1"), D("1"))
    for bad in ("0", "-0.1", "1.01"):
        assert rule_of(check_coverage_ratio, D(bad), D("1")) == "coverage_ratio"
    assert rule_of(check_coverage_ratio, D("0.6"), D("0.5")) == "coverage_ratio"
    assert rule_of(check_order_cap, D("0"), None) == "order_cap"
    assert rule_of(check_order_cap, D("30000"), D("20000")) == "order_cap"
    check_order_cap(D("20000"), D("20000"))
    assert check_categories(["testing", "computing"], ["computing", "testing", "rd_design"]) == (
        "testing",
        "computing",
    )
    assert rule_of(check_categories, ["astrology"], ["testing"]) == "service_categories"
    assert rule_of(check_categories, [], ["testing"]) == "service_categories"
    assert rule_of(check_categories, ["computing"], ["testing"]) == "service_categories"


def test_validity_defaults_to_the_end_of_the_issue_year_in_shanghai():
    issued = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    span = validity(issued, None, None, 366, SH)
    assert span.valid_from == datetime(2026, 3, 2, 0, 0, tzinfo=SH)
    assert span.valid_until == datetime(2026, 12, 31, 23, 59, 59, tzinfo=SH)
    # Issued on 31 Dec at 20:00 UTC, already 1 Jan in Shanghai: next year.
    late = validity(datetime(2026, 12, 31, 20, 0, tzinfo=UTC), None, None, 366, SH)
    assert late.valid_until == datetime(2027, 12, 31, 23, 59, 59, tzinfo=SH)
    # Starting next year: the end of that year.
    ahead = validity(issued, date(2027, 1, 1), None, 366, SH)
    assert ahead.valid_until == datetime(2027, 12, 31, 23, 59, 59, tzinfo=SH)


def test_validity_limits():
    issued = datetime(2028, 1, 1, 1, 0, tzinfo=SH)
    # A leap year from 1 Jan to 31 Dec is 366 days: allowed by the default.
    validity(issued, date(2028, 1, 1), date(2028, 12, 31), 366, SH)
    assert (
        rule_of(validity, issued, date(2028, 1, 1), date(2029, 1, 1), 366, SH)
        == "validity_too_long"
    )
    assert (
        rule_of(validity, issued, date(2028, 3, 1), date(2028, 2, 1), 366, SH) == "validity_order"
    )
    assert rule_of(validity, issued, date(2027, 3, 1), date(2027, 12, 1), 366, SH) == (
        "validity_past"
    )


def test_provider_regions_are_prefixes():
    assert provider_region_allowed("440300", ())  # 通用通兑: any region, outside Shanxi too
    assert provider_region_allowed("141102", ("14",))
    assert provider_region_allowed("140105", ("140100",))  # a full code governs its prefix
    assert not provider_region_allowed("141102", ("1401",))
    assert check_provider_regions(["1401"], ["14"]) == ("1401",)
    assert check_provider_regions([], ["14"]) == ("14",)
    assert rule_of(check_provider_regions, ["15"], ["14"]) == "provider_regions"
    assert rule_of(check_provider_regions, ["1x"], []) == "provider_regions"


def test_claim_deadline_is_the_earlier_of_completion_and_validity_plus_window():
    done = datetime(2026, 12, 20, tzinfo=UTC)
    until = datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)
    assert claim_deadline(done, until, 90) == datetime(2027, 3, 20, tzinfo=UTC)
    late = datetime(2027, 1, 5, tzinfo=UTC)
    assert claim_deadline(late, until, 90) == datetime(2027, 3, 31, 15, 59, 59, tzinfo=UTC)


# --- rule 7: related parties -------------------------------------------------------------


def test_related_parties():
    firm = enterprise(org_id=1, controller_group="g1")
    lab = PartyView(org_id=2, kind="provider", region="140105", uscc="121401050000000001")
    check_not_related(firm, lab, Relations())
    same_code = PartyView(org_id=2, kind="provider", region="140105", uscc=firm.uscc)
    same_group = PartyView(2, "provider", "140105", "121401050000000001", "g1")
    declared = Relations(frozenset({frozenset({2, 1})}))
    for provider, relations, reason in [
        (same_code, Relations(), "same_credit_code"),
        (same_group, Relations(), "same_controller_group"),
        (lab, declared, "declared_relation"),
    ]:
        with pytest.raises(RuleViolation) as refused:
            check_not_related(firm, provider, relations)
        assert refused.value.details == {
            "rule": "related_party",
            "field": "voucher_id",
            "policy_rule": 7,
            "reason": reason,
        }
