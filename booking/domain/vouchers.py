"""Voucher arithmetic and rules (科技创新券), pure: no Flask, no SQLAlchemy.

What lives here (POLICY.md rules in brackets):

- ``PolicyTerms``: a bureau's voucher policy as plain values, with the
  defaults of POLICY.md, and its own consistency check (a tiered formula
  cannot be enabled before both rates are entered [10]);
- ``ShareTerms`` and ``voucher_share``: what a voucher pays of a cost —
  ``min(round_half_up(cost × ratio), order cap, held + available,
  cost − 0.01 where the customer must co-pay)`` [8, 9], or the tiered
  formula [10];
- the annual cap per enterprise [3], validity defaults and limits [4],
  provider regions as prefixes [6], related parties [7], eligibility of the
  holder [1, 2];
- the ledger's sign rules: which kinds move the balance and which only the
  held part, and the sign each amount must have [12].

Every refusal is a ``RuleViolation`` whose ``details`` carry ``rule`` (a
stable name) and ``policy_rule`` (the number in POLICY.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from booking.domain.errors import N_, RuleViolation
from booking.domain.money import FEN, ZERO, round_fen
from booking.domain.organizations import governed_prefix, region_within

#: What a voucher may pay for (API.md ``service_category``).
SERVICE_CATEGORIES: tuple[str, ...] = (
    "instrument_sharing",
    "testing",
    "computing",
    "pilot_scale",
    "rd_design",
    "tech_consulting",
)
SME_SIZES = frozenset({"micro", "small", "medium"})
ONE = Decimal("1")

FLAT = "flat"
TIERED = "tiered"


def violation(rule: str, message: str, policy_rule: int, field: str | None = None, **params):
    """A ``RuleViolation`` naming the rule and its number in POLICY.md."""
    return RuleViolation(rule, message, field=field, details={"policy_rule": policy_rule}, **params)


# --- the ledger's signs --------------------------------------------------------

#: Kinds that change the balance (face value less redeemed, expired, revoked,
#: plus adjustments). ``hold`` and ``release`` move only the held part.
BALANCE_KINDS = ("issue", "redeem", "expire", "revoke", "adjust")
HOLD_KINDS = ("hold", "release")
POSITIVE_KINDS = frozenset({"issue", "release"})
NEGATIVE_KINDS = frozenset({"hold", "redeem", "expire", "revoke"})
LEDGER_KINDS = (*BALANCE_KINDS, *HOLD_KINDS)


def amount_sign_ok(kind: str, amount: Decimal) -> bool:
    """Amounts are signed by their effect on what is available to spend:
    ``issue`` and ``release`` add, ``hold``, ``redeem``, ``expire`` and
    ``revoke`` take away, ``adjust`` may do either but is never zero. So the
    sum of all entries is the available amount, the sum of the balance kinds
    is the balance, and minus the sum of holds and releases is the held part."""
    if kind in POSITIVE_KINDS:
        return amount > 0
    if kind in NEGATIVE_KINDS:
        return amount < 0
    if kind == "adjust":
        return amount != 0
    return False


@dataclass(frozen=True)
class Totals:
    """A voucher's figures, all derived from its ledger."""

    face_value: Decimal = ZERO
    balance: Decimal = ZERO
    held: Decimal = ZERO
    redeemed: Decimal = ZERO
    expired: Decimal = ZERO
    revoked: Decimal = ZERO
    adjusted: Decimal = ZERO

    @property
    def available(self) -> Decimal:
        return self.balance - self.held


def totals_of(entries: Iterable[tuple[str, Decimal]]) -> Totals:
    """Fold ``(kind, amount)`` pairs into totals (the SQL sums do the same)."""
    sums = dict.fromkeys(LEDGER_KINDS, ZERO)
    for kind, amount in entries:
        sums[kind] += amount
    balance = sum((sums[k] for k in BALANCE_KINDS), ZERO)
    return Totals(
        face_value=sums["issue"],
        balance=balance,
        held=-(sums["hold"] + sums["release"]),
        redeemed=-sums["redeem"],
        expired=-sums["expire"],
        revoked=-sums["revoke"],
        adjusted=sums["adjust"],
    )


# --- shares ----------------------------------------------------------------------


@dataclass(frozen=True)
class ShareTerms:
    """The terms of one voucher that decide its share of a cost."""

    coverage_ratio: Decimal = Decimal("0.50")
    order_cap: Decimal | None = None
    formula: str = FLAT
    tier1_limit: Decimal = Decimal("50000.00")
    tier1_rate: Decimal | None = None
    tier2_rate: Decimal | None = None

    @property
    def customer_must_copay(self) -> bool:
        """Rule 9: a voucher never pays a whole order unless its terms cover
        the whole of every fee (ratio 1, or both tier rates 1)."""
        if self.formula == TIERED:
            return not (self.tier1_rate == ONE and self.tier2_rate == ONE)
        return self.coverage_ratio < ONE


def tiered_subsidy(cost: Decimal, limit: Decimal, rate1: Decimal, rate2: Decimal) -> Decimal:
    """Rule 10: the first ``limit`` of the cost at ``rate1``, the rest at
    ``rate2``, rounded half-up to the fen once."""
    first = min(cost, limit)
    rest = max(cost - limit, ZERO)
    return round_fen(first * rate1 + rest * rate2)


def gross_share(cost: Decimal, terms: ShareTerms) -> Decimal:
    """The share before caps: ``round_half_up(cost × ratio)`` or the tiers."""
    if terms.formula == TIERED:
        if terms.tier1_rate is None or terms.tier2_rate is None:
            raise violation(
                "tiered_rates_missing",
                N_("The tiered formula needs both rates before it can be used."),
                10,
            )
        return tiered_subsidy(cost, terms.tier1_limit, terms.tier1_rate, terms.tier2_rate)
    return round_fen(cost * terms.coverage_ratio)


def voucher_share(cost: Decimal, terms: ShareTerms, spendable: Decimal) -> Decimal:
    """Rules 8 and 9: what the voucher pays of ``cost``.

    ``spendable`` is what the voucher can give this booking: its hold for the
    booking plus the voucher's available amount. Never negative, never more
    than the cost, and never the whole cost where the customer must co-pay.
    """
    if cost <= ZERO:
        return ZERO
    share = gross_share(cost, terms)
    if terms.order_cap is not None:
        share = min(share, terms.order_cap)
    share = min(share, spendable, cost)
    if terms.customer_must_copay:
        share = min(share, cost - FEN)
    return max(share, ZERO)


def split_cost(cost: Decimal, terms: ShareTerms, spendable: Decimal) -> tuple[Decimal, Decimal]:
    """``(voucher_share, customer_share)``; they add up to the cost."""
    share = voucher_share(cost, terms, spendable)
    return share, cost - share


# --- policies --------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyTerms:
    """A bureau's voucher policy (POLICY.md rules 1–19), defaults from there."""

    require_sme: bool = True
    require_tech_sme: bool = True
    annual_cap_per_enterprise: Decimal = Decimal("200000.00")
    cap_scope: str = "enterprise"  # or "actual_controller"
    coverage_ratio: Decimal = Decimal("0.50")
    order_cap: Decimal | None = None
    formula: str = FLAT
    tier1_limit: Decimal = Decimal("50000.00")
    tier1_rate: Decimal | None = None
    tier2_rate: Decimal | None = None
    max_validity_days: int = 366
    service_categories: tuple[str, ...] = SERVICE_CATEGORIES
    provider_regions: tuple[str, ...] = ()
    claimant: str = "provider"  # or "enterprise"
    claim_window_days: int = 90
    audit_levels: tuple[str, ...] = ()
    notice_days: int = 0
    payment_cadence: str = "per_claim"  # or "monthly"
    admission_notice_days: int = 7

    def problems(self) -> dict[str, str]:
        """Field → message id for every inconsistent setting."""
        found: dict[str, str] = {}
        if not ZERO < self.coverage_ratio <= ONE:
            found["coverage_ratio"] = N_("The share must be above 0 and at most 1.")
        if self.annual_cap_per_enterprise <= ZERO:
            found["annual_cap_per_enterprise"] = N_("The annual cap must be above zero.")
        if self.order_cap is not None and self.order_cap <= ZERO:
            found["order_cap"] = N_("The cap per order must be above zero.")
        if self.formula == TIERED and (self.tier1_rate is None or self.tier2_rate is None):
            found["formula"] = N_("The tiered formula needs both rates before it can be used.")
        for name in ("tier1_rate", "tier2_rate"):
            rate = getattr(self, name)
            if rate is not None and not ZERO < rate <= ONE:
                found[name] = N_("The share must be above 0 and at most 1.")
        if self.tier1_limit <= ZERO:
            found["tier1_limit"] = N_("The first tier's limit must be above zero.")
        unknown = set(self.service_categories) - set(SERVICE_CATEGORIES)
        if unknown or not self.service_categories:
            found["service_categories"] = N_("Unknown or missing service categories.")
        if any(not _is_region_prefix(p) for p in self.provider_regions):
            found["provider_regions"] = N_(
                "A provider region is a prefix of a 6-digit division code (e.g. 14 or 1401)."
            )
        if self.max_validity_days < 1 or self.max_validity_days > 3660:
            found["max_validity_days"] = N_("The longest validity must be 1 to 3660 days.")
        if self.claim_window_days < 1:
            found["claim_window_days"] = N_("The claim window must be at least one day.")
        if self.notice_days < 0 or self.admission_notice_days < 0:
            found["notice_days"] = N_("Notice periods cannot be negative.")
        if len(self.audit_levels) > 2 or len(set(self.audit_levels)) != len(self.audit_levels):
            found["audit_levels"] = N_("At most two distinct audit levels.")
        return found


def _is_region_prefix(value: str) -> bool:
    return isinstance(value, str) and value.isdigit() and len(value) in (2, 4, 6)


# --- eligibility and issue ------------------------------------------------------------


@dataclass(frozen=True)
class PartyView:
    """What the rules need to know about an organisation."""

    org_id: int
    kind: str
    region: str
    uscc: str
    controller_group: str | None = None
    size_class: str | None = None
    tech_sme_number: str | None = None
    tech_sme_year: int | None = None


def check_holder(holder: PartyView, bureau_region: str, terms: PolicyTerms, issue_year: int):
    """Rules 1 and 2: an enterprise of the bureau's region, an SME, and where
    the policy says so a tech-SME registered for the issue year."""
    if holder.kind != "enterprise":
        raise violation(
            "holder_kind",
            N_("Vouchers are issued to enterprises only."),
            1,
            field="holder_org_id",
        )
    if not region_within(holder.region, bureau_region):
        raise violation(
            "holder_region",
            N_("The enterprise (region %(region)s) lies outside the region this bureau governs."),
            1,
            field="holder_org_id",
            region=holder.region,
        )
    if (terms.require_sme or terms.require_tech_sme) and holder.size_class not in SME_SIZES:
        raise violation(
            "holder_sme",
            N_("Only micro, small and medium enterprises may hold vouchers."),
            2,
            field="holder_org_id",
        )
    if terms.require_tech_sme and (
        not holder.tech_sme_number or holder.tech_sme_year != issue_year
    ):
        raise violation(
            "holder_tech_sme",
            N_(
                "The enterprise needs a tech-SME registration number (科技型中小企业入库登记编号) "
                "evaluated for %(year)s."
            ),
            2,
            field="holder_org_id",
            year=issue_year,
        )


def check_annual_cap(already: Decimal, face_value: Decimal, cap: Decimal) -> None:
    """Rule 3: face values issued to one enterprise (or controller group) by
    one bureau in one calendar year stay within the cap."""
    if already + face_value > cap:
        raise violation(
            "annual_cap",
            N_(
                "Above the annual cap of %(cap)s: %(already)s issued this year already, "
                "%(left)s left."
            ),
            3,
            field="face_value",
            cap=f"{cap:.2f}",
            already=f"{already:.2f}",
            left=f"{max(cap - already, ZERO):.2f}",
        )


def check_coverage_ratio(ratio: Decimal, policy_max: Decimal) -> None:
    """Rule 4: 0 < ratio ≤ 1, and no more than the bureau's policy allows."""
    if not ZERO < ratio <= ONE:
        raise violation(
            "coverage_ratio",
            N_("The share must be above 0 and at most 1."),
            4,
            field="coverage_ratio",
        )
    if ratio > policy_max:
        raise violation(
            "coverage_ratio",
            N_("The bureau's policy lets a voucher pay at most %(ratio)s of a fee."),
            8,
            field="coverage_ratio",
            ratio=f"{policy_max}",
        )


def check_order_cap(order_cap: Decimal | None, policy_cap: Decimal | None) -> None:
    """Rule 4: a voucher's cap per order is positive and within the policy's."""
    if order_cap is not None and order_cap <= ZERO:
        raise violation(
            "order_cap", N_("The cap per order must be above zero."), 4, field="order_cap"
        )
    if policy_cap is not None and (order_cap is None or order_cap > policy_cap):
        raise violation(
            "order_cap",
            N_("The bureau's policy caps a voucher's share of one order at %(cap)s."),
            8,
            field="order_cap",
            cap=f"{policy_cap:.2f}",
        )


def check_categories(categories: Iterable[str], allowed: Iterable[str]) -> tuple[str, ...]:
    """Rule 4/5: known categories the policy allows; returns them in the
    canonical order."""
    chosen = set(categories)
    unknown = chosen - set(SERVICE_CATEGORIES)
    if unknown or not chosen:
        raise violation(
            "service_categories",
            N_("Unknown service categories: %(names)s."),
            4,
            field="service_categories",
            names=", ".join(sorted(unknown)) or "-",
        )
    outside = chosen - set(allowed)
    if outside:
        raise violation(
            "service_categories",
            N_("The bureau's policy does not let vouchers pay for: %(names)s."),
            5,
            field="service_categories",
            names=", ".join(sorted(outside)),
        )
    return tuple(c for c in SERVICE_CATEGORIES if c in chosen)


def check_provider_regions(prefixes: Iterable[str], allowed: Iterable[str]) -> tuple[str, ...]:
    """Rule 6: the voucher's provider regions are prefixes inside the policy's
    (an empty policy list allows any region)."""
    chosen = tuple(prefixes)
    allowed = tuple(allowed)
    if any(not _is_region_prefix(p) for p in chosen):
        raise violation(
            "provider_regions",
            N_("A provider region is a prefix of a 6-digit division code (e.g. 14 or 1401)."),
            6,
            field="provider_regions",
        )
    if allowed:
        if not chosen:
            return allowed
        outside = [p for p in chosen if not any(p.startswith(governed_prefix(a)) for a in allowed)]
        if outside:
            raise violation(
                "provider_regions",
                N_("The bureau's policy does not allow providers in %(regions)s."),
                6,
                field="provider_regions",
                regions=", ".join(outside),
            )
    return chosen


def provider_region_allowed(provider_region: str, prefixes: Iterable[str]) -> bool:
    """Rule 6: an empty list means any region (通用通兑, also outside Shanxi)."""
    prefixes = tuple(prefixes)
    return not prefixes or any(region_within(provider_region, p) for p in prefixes)


# --- validity ---------------------------------------------------------------------


def start_of_local_day(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def end_of_local_day(day: date, tz: ZoneInfo) -> datetime:
    """23:59:59 local: a voucher's validity ends here (rule 4)."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=tz)


@dataclass(frozen=True)
class Validity:
    valid_from: datetime
    valid_until: datetime


def validity(
    issued_at: datetime,
    valid_from: date | None,
    valid_until: date | None,
    max_days: int,
    tz: ZoneInfo,
) -> Validity:
    """Rule 4, in whole local days: ``valid_from`` at 00:00 (default: the day
    of issue), ``valid_until`` at 23:59:59 (default: 31 December of the issue
    year — of ``valid_from``'s year when it starts in a later year), covering
    at most ``max_days`` days and not ending before today."""
    issue_day = issued_at.astimezone(tz).date()
    first = valid_from or issue_day
    last = valid_until or date(max(issue_day.year, first.year), 12, 31)
    if last < first:
        raise violation(
            "validity_order",
            N_("The voucher's validity ends before it starts."),
            4,
            field="valid_until",
        )
    if last < issue_day:
        raise violation(
            "validity_past", N_("The validity ends in the past."), 4, field="valid_until"
        )
    covered = (last - first).days + 1
    if covered > max_days:
        raise violation(
            "validity_too_long",
            N_("A voucher is valid for at most %(days)s days; this one would be %(covered)s."),
            4,
            field="valid_until",
            days=max_days,
            covered=covered,
        )
    return Validity(start_of_local_day(first, tz), end_of_local_day(last, tz))


def local_year(instant: datetime, tz: ZoneInfo) -> int:
    return instant.astimezone(tz).year


def year_bounds(year: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[1 Jan 00:00, next 1 Jan 00:00) local, as aware datetimes."""
    return start_of_local_day(date(year, 1, 1), tz), start_of_local_day(date(year + 1, 1, 1), tz)


def claim_deadline(completed_at: datetime, valid_until: datetime, window_days: int) -> datetime:
    """Rule 16: within ``window_days`` after the service was completed, and
    not after ``valid_until + window_days``."""
    return min(completed_at, valid_until) + timedelta(days=window_days)


# --- related parties -----------------------------------------------------------------


@dataclass(frozen=True)
class Relations:
    """Declared relations, as unordered pairs of organisation ids."""

    pairs: frozenset[frozenset[int]] = field(default_factory=frozenset)

    def related(self, a: int, b: int) -> bool:
        return frozenset((a, b)) in self.pairs


def related_party_reason(enterprise: PartyView, provider: PartyView, relations: Relations):
    """Rule 7: why the voucher may not pay this provider, or None.

    Same unified social credit code, same actual-controller group, or a
    relation either side has declared (same legal representative,
    shareholding, ...)."""
    if enterprise.uscc and enterprise.uscc == provider.uscc:
        return "same_credit_code"
    if enterprise.controller_group and enterprise.controller_group == provider.controller_group:
        return "same_controller_group"
    if relations.related(enterprise.org_id, provider.org_id):
        return "declared_relation"
    return None


RELATED_PARTY_MESSAGES = {
    "same_credit_code": N_(
        "A voucher cannot pay its own holder: the provider has the same credit code."
    ),
    "same_controller_group": N_(
        "A voucher cannot pay a related party: the provider has the same actual controller."
    ),
    "declared_relation": N_(
        "A voucher cannot pay a related party: a relation between the two is declared."
    ),
}


def check_not_related(enterprise: PartyView, provider: PartyView, relations: Relations) -> None:
    reason = related_party_reason(enterprise, provider, relations)
    if reason:
        raise RuleViolation(
            "related_party",
            RELATED_PARTY_MESSAGES[reason],
            field="voucher_id",
            details={"policy_rule": 7, "reason": reason},
        )


def bureau_prefix(region: str) -> str:
    """The region prefix a bureau governs (``140100`` → ``1401``)."""
    return governed_prefix(region)
