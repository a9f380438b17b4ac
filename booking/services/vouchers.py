"""Innovation vouchers (科技创新券): policies, issue, check, hold, release,
redeem, expire, revoke, adjust.

The reservation service calls the four booking hooks below at the matching
moments of a booking's life, inside its own transaction; each hook locks the
voucher row, writes its ledger entry and audit event, and raises a
``RuleViolation`` (naming the POLICY.md rule) when the voucher may not pay.

Money moves only through ``_append`` with the voucher row locked (``SELECT
... FOR UPDATE`` on PostgreSQL; SQLite transactions begin IMMEDIATE, so they
are serialised already), after reading the voucher's totals in the same
transaction: an entry that would take the balance or the available amount
below zero is never written, also when requests race.
"""

from __future__ import annotations

import csv
import functools
import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import and_, bindparam, case, func, or_, select, type_coerce
from sqlalchemy.orm import Session, aliased, selectinload

from booking import authz
from booking.authz import Actor
from booking.domain import clock
from booking.domain import vouchers as rules
from booking.domain.errors import (
    N_,
    Conflict,
    DomainError,
    Forbidden,
    InvalidTransition,
    NotFound,
    RuleViolation,
    Unauthorized,
    ValidationFailed,
)
from booking.domain.money import ZERO, parse_money
from booking.domain.vouchers import PolicyTerms, ShareTerms, Totals, violation
from booking.models.accounts import Organization, OrgKind
from booking.models.base import Money
from booking.models.catalog import Resource
from booking.models.reservations import Reservation
from booking.models.vouchers import (
    LIVE_ADMISSION_STATUSES,
    AdmissionStatus,
    CapScope,
    CmaCertificate,
    LedgerKind,
    ProviderAdmission,
    Voucher,
    VoucherLedgerEntry,
    VoucherPolicy,
    VoucherStatus,
)
from booking.services import audit, events

MAX_BATCH_ROWS = 5000


@dataclass(frozen=True)
class VoucherQuote:
    """What a voucher would pay of an estimated cost, and what the customer pays."""

    voucher_id: int
    voucher_share: Decimal
    customer_share: Decimal


# --- policies --------------------------------------------------------------------

POLICY_FIELDS = tuple(PolicyTerms.__dataclass_fields__)


def policy_terms(policy: VoucherPolicy) -> PolicyTerms:
    values = {name: getattr(policy, name) for name in POLICY_FIELDS}
    for name in ("cap_scope", "formula", "claimant", "payment_cadence"):
        values[name] = str(values[name])
    for name in ("service_categories", "provider_regions", "audit_levels"):
        values[name] = tuple(values[name] or ())
    return PolicyTerms(**values)


def policy_in_effect(session: Session, bureau_id: int, on: date) -> VoucherPolicy | None:
    """The bureau's policy version in effect on the local date ``on``."""
    return session.scalar(
        select(VoucherPolicy)
        .where(VoucherPolicy.bureau_id == bureau_id, VoucherPolicy.effective_from <= on)
        .order_by(VoucherPolicy.effective_from.desc())
        .limit(1)
    )


def require_policy(session: Session, bureau: Organization, on: date) -> VoucherPolicy:
    policy = policy_in_effect(session, bureau.id, on)
    if policy is None:
        raise violation(
            "voucher_policy_missing",
            N_("The bureau has no voucher policy in effect on %(day)s; enter one first."),
            4,
            day=on.isoformat(),
        )
    return policy


def _bureau(session: Session, bureau_id: int) -> Organization:
    bureau = session.get(Organization, bureau_id)
    if bureau is None or bureau.kind != OrgKind.BUREAU:
        raise NotFound(details={"field": "bureau_id"})
    return bureau


def _checked_terms(data: dict, base: PolicyTerms | None = None) -> PolicyTerms:
    base = base or PolicyTerms()
    values = {name: data[name] for name in POLICY_FIELDS if name in data}
    for name in ("service_categories", "provider_regions", "audit_levels"):
        if name in values:
            values[name] = tuple(values[name] or ())
    terms = PolicyTerms(**{**base.__dict__, **values})
    problems = terms.problems()
    if "formula" in problems:
        raise violation("tiered_rates_missing", problems["formula"], 10, field="formula")
    if problems:
        raise ValidationFailed(problems)
    return terms


def _apply_terms(policy: VoucherPolicy, terms: PolicyTerms) -> None:
    for name in POLICY_FIELDS:
        value = getattr(terms, name)
        if isinstance(value, tuple):
            value = list(value)
        setattr(policy, name, value)


def create_policy(session: Session, actor: Actor, bureau_id: int, data: dict) -> VoucherPolicy:
    """A new version of a bureau's voucher policy, in effect from a local date
    (today or later)."""
    bureau = _bureau(session, bureau_id)
    authz.require(actor, "voucher_policy.manage", bureau)
    today = clock.now().astimezone(clock.platform_tz()).date()
    effective_from = data.get("effective_from") or today
    if effective_from < today:
        raise RuleViolation(
            "policy_effective_past",
            N_("A policy takes effect today or later, never in the past."),
            field="effective_from",
        )
    if session.scalar(
        select(VoucherPolicy.id).where(
            VoucherPolicy.bureau_id == bureau.id, VoucherPolicy.effective_from == effective_from
        )
    ):
        raise Conflict(
            N_("The bureau has a policy from this day already; change that one instead."),
            details={"field": "effective_from"},
        )
    terms = _checked_terms(data)
    policy = VoucherPolicy(
        bureau_id=bureau.id,
        effective_from=effective_from,
        created_by_id=actor.user_id,
        created_at=clock.now(),
    )
    _apply_terms(policy, terms)
    session.add(policy)
    session.flush()
    audit.record(session, actor, "voucher_policy.create", policy)
    return policy


def _policy_for_change(session: Session, actor: Actor, policy_id: int) -> VoucherPolicy:
    policy = session.get(VoucherPolicy, policy_id)
    if policy is None:
        raise NotFound()
    authz.require(actor, "voucher_policy.manage", policy.bureau)
    if session.scalar(select(Voucher.id).where(Voucher.policy_id == policy.id).limit(1)):
        raise InvalidTransition(
            N_("Vouchers were issued under this policy; enter a new version instead.")
        )
    return policy


def update_policy(session: Session, actor: Actor, policy_id: int, data: dict) -> VoucherPolicy:
    """Change a policy no voucher was issued under yet."""
    policy = _policy_for_change(session, actor, policy_id)
    before = audit.snapshot(policy)
    _apply_terms(policy, _checked_terms(data, policy_terms(policy)))
    session.flush()
    audit.record(session, actor, "voucher_policy.update", policy, before=before)
    return policy


def delete_policy(session: Session, actor: Actor, policy_id: int) -> None:
    policy = _policy_for_change(session, actor, policy_id)
    audit.record(
        session, actor, "voucher_policy.delete", policy, before=audit.snapshot(policy), after={}
    )
    session.delete(policy)
    session.flush()


def get_policy(session: Session, actor: Actor, policy_id: int) -> VoucherPolicy:
    policy = session.get(VoucherPolicy, policy_id)
    authz.require_visible(actor, "voucher_policy.view", policy)
    return policy


def list_policies(
    session: Session, actor: Actor, bureau_id: int | None = None
) -> list[VoucherPolicy]:
    authz.require(actor, "voucher_policy.view")
    query = select(VoucherPolicy).order_by(VoucherPolicy.bureau_id, VoucherPolicy.effective_from)
    if bureau_id is not None:
        query = query.where(VoucherPolicy.bureau_id == bureau_id)
    return list(session.scalars(query))


# --- totals from the ledger ----------------------------------------------------------


def _sum_of(condition):
    return type_coerce(
        func.coalesce(
            func.sum(case((condition, VoucherLedgerEntry.amount), else_=0)),
            0,
        ),
        Money(),
    )


@functools.cache
def _totals_statement():
    """Built once, with the vouchers' ids bound: building its seven sums
    cost more than the database's work (every quote and voucher answer
    reads it)."""
    kind = VoucherLedgerEntry.kind
    return (
        select(
            VoucherLedgerEntry.voucher_id,
            _sum_of(kind == LedgerKind.ISSUE),
            _sum_of(kind.in_(rules.BALANCE_KINDS)),
            _sum_of(kind.in_(rules.HOLD_KINDS)),
            _sum_of(kind == LedgerKind.REDEEM),
            _sum_of(kind == LedgerKind.EXPIRE),
            _sum_of(kind == LedgerKind.REVOKE),
            _sum_of(kind == LedgerKind.ADJUST),
        )
        .where(VoucherLedgerEntry.voucher_id.in_(bindparam("voucher_ids", expanding=True)))
        .group_by(VoucherLedgerEntry.voucher_id)
    )


def totals_for(session: Session, voucher_ids: list[int]) -> dict[int, Totals]:
    """Each voucher's figures, summed by the database from its ledger."""
    if not voucher_ids:
        return {}
    found = _totals_from(session.execute(_totals_statement(), {"voucher_ids": list(voucher_ids)}))
    return {vid: found.get(vid, Totals()) for vid in voucher_ids}


def _totals_from(rows) -> dict[int, Totals]:
    return {
        row[0]: Totals(
            face_value=row[1],
            balance=row[2],
            held=-row[3],
            redeemed=-row[4],
            expired=-row[5],
            revoked=-row[6],
            adjusted=row[7],
        )
        for row in rows
    }


def with_totals(session: Session, vouchers: list[Voucher]) -> list[Voucher]:
    """Set each voucher's ``totals`` (one query for all), for answers."""
    found = totals_for(session, [v.id for v in vouchers])
    for voucher in vouchers:
        voucher.totals = found[voucher.id]
    return vouchers


def totals_of(session: Session, voucher_id: int) -> Totals:
    return totals_for(session, [voucher_id])[voucher_id]


def held_for(session: Session, voucher_id: int, reservation_id: int) -> Decimal:
    """What the voucher holds for one booking now."""
    total = session.scalar(
        select(type_coerce(func.coalesce(func.sum(VoucherLedgerEntry.amount), 0), Money())).where(
            VoucherLedgerEntry.voucher_id == voucher_id,
            VoucherLedgerEntry.reservation_id == reservation_id,
            VoucherLedgerEntry.kind.in_(rules.HOLD_KINDS),
        )
    )
    return -(total or ZERO)


@functools.cache
def _holds_statement():
    return (
        select(
            VoucherLedgerEntry.voucher_id,
            VoucherLedgerEntry.reservation_id,
            type_coerce(func.coalesce(func.sum(VoucherLedgerEntry.amount), 0), Money()),
        )
        .where(
            VoucherLedgerEntry.reservation_id.in_(bindparam("ids", expanding=True)),
            VoucherLedgerEntry.kind.in_(rules.HOLD_KINDS),
        )
        .group_by(VoucherLedgerEntry.voucher_id, VoucherLedgerEntry.reservation_id)
    )


def redeemed_for(session: Session, reservation_id: int) -> Decimal:
    """Net voucher money a booking was paid: its redemptions less what closed
    claims gave back to the voucher (adjust entries naming the booking)."""
    total = session.scalar(
        select(type_coerce(func.coalesce(func.sum(VoucherLedgerEntry.amount), 0), Money())).where(
            VoucherLedgerEntry.reservation_id == reservation_id,
            VoucherLedgerEntry.kind.in_((LedgerKind.REDEEM, LedgerKind.ADJUST)),
        )
    )
    return -(total or ZERO)


# --- the one place money moves -------------------------------------------------------------


def lock_voucher(session: Session, voucher_id: int) -> Voucher | None:
    """The voucher row, locked for the rest of the transaction (read afresh)."""
    query = (
        select(Voucher)
        .where(Voucher.id == voucher_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalar(query)


def _append(
    session: Session,
    actor: Actor | None,
    voucher: Voucher,
    kind: LedgerKind,
    amount: Decimal,
    *,
    reservation_id: int | None = None,
    claim_id: int | None = None,
    reason: str | None = None,
    at: datetime | None = None,
) -> VoucherLedgerEntry:
    """Write one ledger entry and its audit event. The caller holds the
    voucher's lock; this refuses any entry that would take the balance or the
    available amount below zero."""
    if not rules.amount_sign_ok(kind.value, amount):
        raise ValueError(f"{kind} entry with amount {amount}")
    before = totals_of(session, voucher.id)
    balance_change = amount if kind.value in rules.BALANCE_KINDS else ZERO
    after = Totals(
        face_value=before.face_value + (amount if kind == LedgerKind.ISSUE else ZERO),
        balance=before.balance + balance_change,
        held=before.held - (amount if kind.value in rules.HOLD_KINDS else ZERO),
    )
    if after.balance < ZERO or after.available < ZERO or after.held < ZERO:
        raise violation(
            "voucher_balance",
            N_("The voucher has %(available)s available; this needs %(amount)s."),
            12,
            field="voucher_id",
            available=f"{before.available:.2f}",
            amount=f"{abs(amount):.2f}",
        )
    entry = VoucherLedgerEntry(
        voucher_id=voucher.id,
        kind=kind,
        amount=amount,
        reservation_id=reservation_id,
        claim_id=claim_id,
        reason=reason,
        actor_user_id=actor.user_id if actor else None,
        at=at or clock.now(),
    )
    session.add(entry)
    session.flush()
    audit.record(
        session,
        actor,
        f"voucher.{kind.value}",
        voucher,
        before={"balance": before.balance, "held": before.held},
        after={
            "entry_id": entry.id,
            "kind": kind.value,
            "amount": amount,
            "reservation_id": reservation_id,
            "claim_id": claim_id,
            "reason": reason,
            "balance": after.balance,
            "held": after.held,
        },
    )
    return entry


# --- issue ------------------------------------------------------------------------


def _party(org: Organization) -> rules.PartyView:
    return rules.PartyView(
        org_id=org.id,
        kind=str(org.kind),
        region=org.region,
        uscc=org.uscc,
        controller_group=org.controller_group,
        size_class=str(org.size_class) if org.size_class else None,
        tech_sme_number=org.tech_sme_number,
        tech_sme_year=org.tech_sme_year,
    )


def _issuing_bureau(session: Session, actor: Actor, bureau_id: int | None) -> Organization:
    if bureau_id is None:
        mine = actor.bureau_ids()
        if not actor.authenticated:
            raise Unauthorized()
        if not mine:
            raise Forbidden(N_("Only a bureau officer issues vouchers."))
        if len(mine) > 1:
            raise ValidationFailed({"bureau_id": N_("Name the issuing bureau.")})
        bureau_id = next(iter(mine))
    bureau = _bureau(session, bureau_id)
    authz.require(actor, "voucher.issue", bureau)
    return bureau


def issued_this_year(
    session: Session, bureau_id: int, holder: Organization, scope: str, year: int
) -> Decimal:
    """Face values issued by the bureau in a local calendar year to the
    holder, or to every enterprise of its controller group (rule 3). Revoked
    vouchers, never usable, do not count."""
    start, end = rules.year_bounds(year, clock.platform_tz())
    query = select(type_coerce(func.coalesce(func.sum(Voucher.face_value), 0), Money())).where(
        Voucher.bureau_id == bureau_id,
        Voucher.status != VoucherStatus.REVOKED,
        Voucher.issued_at >= start,
        Voucher.issued_at < end,
    )
    if scope == CapScope.ACTUAL_CONTROLLER and holder.controller_group:
        group = select(Organization.id).where(
            Organization.controller_group == holder.controller_group
        )
        query = query.where(Voucher.holder_org_id.in_(group))
    else:
        query = query.where(Voucher.holder_org_id == holder.id)
    return session.scalar(query) or ZERO


def _lock_cap_scope(session: Session, holder: Organization, scope: str) -> None:
    """Lock the organisation rows the annual cap sums over (in id order), so
    two officers issuing at once cannot both fit under the cap (rule 3)."""
    condition = Organization.id == holder.id
    if scope == CapScope.ACTUAL_CONTROLLER and holder.controller_group:
        condition = or_(condition, Organization.controller_group == holder.controller_group)
    session.scalars(
        select(Organization.id).where(condition).order_by(Organization.id).with_for_update()
    ).all()


def _voucher_terms(data: dict, terms: PolicyTerms, issued_at: datetime) -> dict:
    """Check a voucher's own terms against the policy; the values to store."""
    face_value = data.get("face_value")
    if face_value is None or face_value <= ZERO:
        raise violation(
            "face_value", N_("The face value must be above zero."), 4, field="face_value"
        )
    ratio = data.get("coverage_ratio")
    ratio = terms.coverage_ratio if ratio is None else ratio
    rules.check_coverage_ratio(ratio, terms.coverage_ratio)
    order_cap = data.get("order_cap")
    order_cap = terms.order_cap if order_cap is None else order_cap
    rules.check_order_cap(order_cap, terms.order_cap)
    categories = data.get("service_categories")
    categories = rules.check_categories(
        categories if categories else terms.service_categories, terms.service_categories
    )
    regions = rules.check_provider_regions(
        data.get("provider_regions") or (), terms.provider_regions
    )
    span = rules.validity(
        issued_at,
        data.get("valid_from"),
        data.get("valid_until"),
        terms.max_validity_days,
        clock.platform_tz(),
    )
    return {
        "face_value": face_value,
        "coverage_ratio": ratio,
        "order_cap": order_cap,
        "service_categories": list(categories),
        "provider_regions": list(regions),
        "valid_from": span.valid_from,
        "valid_until": span.valid_until,
        "formula": terms.formula,
        "tier1_limit": terms.tier1_limit,
        "tier1_rate": terms.tier1_rate,
        "tier2_rate": terms.tier2_rate,
    }


def issue_voucher(
    session: Session, actor: Actor, data: dict, *, batch_id: str | None = None
) -> Voucher:
    """Issue one voucher within the bureau's policy (rules 1–4). Every check
    runs before anything is written."""
    bureau = _issuing_bureau(session, actor, data.get("bureau_id"))
    now = clock.now()
    tz = clock.platform_tz()
    policy = require_policy(session, bureau, now.astimezone(tz).date())
    terms = policy_terms(policy)
    holder = session.get(Organization, data.get("holder_org_id") or 0)
    if holder is None:
        raise NotFound(details={"field": "holder_org_id"})
    year = rules.local_year(now, tz)
    rules.check_holder(_party(holder), bureau.region, terms, year)
    values = _voucher_terms(data, terms, now)
    _lock_cap_scope(session, holder, terms.cap_scope)
    already = issued_this_year(session, bureau.id, holder, terms.cap_scope, year)
    rules.check_annual_cap(already, values["face_value"], terms.annual_cap_per_enterprise)

    voucher = Voucher(
        bureau_id=bureau.id,
        issuing_region=bureau.region,
        holder_org_id=holder.id,
        holder_region=holder.region,
        policy_id=policy.id,
        batch_id=batch_id,
        status=VoucherStatus.ACTIVE,
        issued_at=now,
        issued_by_id=actor.user_id,
        **values,
    )
    session.add(voucher)
    session.flush()
    voucher.number = f"{bureau.region}-{year}-{voucher.id:06d}"
    audit.record(session, actor, "voucher.create", voucher)
    _append(session, actor, voucher, LedgerKind.ISSUE, voucher.face_value, at=now)
    events.publish(session, "voucher.issued", voucher, actor=actor)
    return voucher


# --- batch issue from CSV -------------------------------------------------------------------

CSV_COLUMNS = (
    "holder_uscc",
    "holder_org_id",
    "face_value",
    "valid_from",
    "valid_until",
    "coverage_ratio",
    "order_cap",
    "service_categories",
    "provider_regions",
)


@dataclass(frozen=True)
class RowProblem:
    row: int
    rule: str
    field: str | None
    message: str
    params: dict

    def as_dict(self) -> dict:
        return {
            "row": self.row,
            "rule": self.rule,
            "field": self.field,
            "message": self.message,
            "params": self.params,
        }


class _CellError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _split_list(text: str) -> list[str]:
    for separator in ("|", "、", ",", "，", " "):
        text = text.replace(separator, ";")
    return [part.strip() for part in text.split(";") if part.strip()]


def _parse_ratio(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().rstrip("%"))
    except ArithmeticError:
        raise ValueError(N_("Not a valid share.")) from None
    if not value.is_finite():
        raise ValueError(N_("Not a valid share."))
    return value / 100 if text.strip().endswith("%") else value


def _parse_row(session: Session, raw: dict[str, str]) -> dict:
    """One CSV row as the data ``issue_voucher`` takes; ``ValueError`` naming
    the field (``field: message id``) when a cell cannot be read."""
    cell = {k: (v or "").strip() for k, v in raw.items() if k}
    data: dict = {}
    if cell.get("holder_org_id"):
        if not cell["holder_org_id"].isdigit():
            raise _CellError("holder_org_id", N_("Not a valid id."))
        data["holder_org_id"] = int(cell["holder_org_id"])
    elif cell.get("holder_uscc"):
        org_id = session.scalar(
            select(Organization.id).where(Organization.uscc == cell["holder_uscc"].upper())
        )
        if org_id is None:
            raise _CellError("holder_uscc", N_("No organisation has this credit code."))
        data["holder_org_id"] = org_id
    else:
        raise _CellError("holder_uscc", N_("Name the holder by credit code or id."))
    for name in ("face_value", "order_cap"):
        if cell.get(name):
            try:
                data[name] = parse_money(cell[name])
            except ValueError as exc:
                raise _CellError(name, str(exc)) from None
    if cell.get("coverage_ratio"):
        try:
            data["coverage_ratio"] = _parse_ratio(cell["coverage_ratio"])
        except ValueError as exc:
            raise _CellError("coverage_ratio", str(exc)) from None
    for name in ("valid_from", "valid_until"):
        if cell.get(name):
            try:
                data[name] = date.fromisoformat(cell[name].replace("/", "-"))
            except ValueError:
                raise _CellError(name, N_("Not a valid date (YYYY-MM-DD).")) from None
    for name in ("service_categories", "provider_regions"):
        if cell.get(name):
            data[name] = _split_list(cell[name])
    return data


def read_batch_csv(content: bytes | str) -> list[dict[str, str]]:
    """Rows of a UTF-8 (BOM allowed) or GB18030 CSV with a header row."""
    if isinstance(content, bytes):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = content.decode("gb18030", errors="strict")
    else:
        text = content.lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    unknown = [h for h in header if h and h not in CSV_COLUMNS]
    if not header or unknown or "face_value" not in header:
        raise RuleViolation(
            "csv_header",
            N_("The first row must name the columns: %(columns)s."),
            field="file",
            details={"unknown": unknown},
            columns=", ".join(CSV_COLUMNS),
        )
    rows = list(reader)
    if not rows:
        raise RuleViolation("csv_empty", N_("The file has no rows."), field="file")
    if len(rows) > MAX_BATCH_ROWS:
        raise RuleViolation(
            "csv_too_long",
            N_("At most %(limit)s rows per file."),
            field="file",
            limit=MAX_BATCH_ROWS,
        )
    return rows


def issue_batch(
    session: Session, actor: Actor, content: bytes | str, bureau_id: int | None = None
) -> list[Voucher]:
    """Issue every row of a CSV, or nothing: all rows are checked (in order, so
    the annual cap counts the rows above), and any problem refuses the whole
    file with the problems listed by row (row 1 is the header)."""
    bureau = _issuing_bureau(session, actor, bureau_id)
    rows = read_batch_csv(content)
    batch_id = uuid.uuid4().hex
    issued: list[Voucher] = []
    problems: list[RowProblem] = []
    for number, raw in enumerate(rows, start=2):
        try:
            data = _parse_row(session, raw)
            data["bureau_id"] = bureau.id
            issued.append(issue_voucher(session, actor, data, batch_id=batch_id))
        except _CellError as exc:
            problems.append(RowProblem(number, "csv_format", exc.field, exc.message, {}))
        except DomainError as exc:
            problems.append(
                RowProblem(
                    number,
                    exc.details.get("rule", exc.code),
                    exc.details.get("field"),
                    exc.message,
                    {k: str(v) for k, v in exc.params.items()},
                )
            )
    if problems:
        raise RuleViolation(
            "batch_rows",
            N_("%(count)s rows of the file are not valid; no voucher was issued."),
            field="file",
            details={"rows": [p.as_dict() for p in problems]},
            count=len({p.row for p in problems}),
        )
    audit.record(
        session,
        actor,
        "voucher.batch_issue",
        ("voucher_batches", None),
        after={"batch_id": batch_id, "count": len(issued), "bureau_id": bureau.id},
    )
    return issued


# --- revoke and adjust ---------------------------------------------------------------------


def _voucher_for(session: Session, actor: Actor, voucher_id: int, action: str) -> Voucher:
    voucher = session.get(Voucher, voucher_id)
    if voucher is None:
        raise NotFound()
    _load_provider_regions(session, [voucher])
    authz.require(actor, action, voucher)
    return voucher


def revoke_voucher(session: Session, actor: Actor, voucher_id: int, reason: str) -> Voucher:
    """Take back a voucher that was never used (no hold, no redemption)."""
    voucher = _voucher_for(session, actor, voucher_id, "voucher.manage")
    voucher = lock_voucher(session, voucher.id)
    if voucher.status != VoucherStatus.ACTIVE:
        raise InvalidTransition(N_("Only an active voucher can be revoked."))
    used = session.scalar(
        select(VoucherLedgerEntry.id)
        .where(
            VoucherLedgerEntry.voucher_id == voucher.id,
            VoucherLedgerEntry.kind.in_((LedgerKind.HOLD, LedgerKind.REDEEM)),
        )
        .limit(1)
    )
    if used:
        raise InvalidTransition(
            N_("This voucher has been used; correct it with an adjustment instead.")
        )
    totals = totals_of(session, voucher.id)
    if totals.balance > ZERO:
        _append(session, actor, voucher, LedgerKind.REVOKE, -totals.balance, reason=reason)
    before = audit.snapshot(voucher, ["status"])
    voucher.status = VoucherStatus.REVOKED
    voucher.revoked_at = clock.now()
    voucher.revoke_reason = reason
    session.flush()
    audit.record(session, actor, "voucher.revoked", voucher, before=before)
    return voucher


def adjust_voucher(
    session: Session,
    actor: Actor,
    voucher_id: int,
    amount: Decimal,
    reason: str,
    *,
    reservation_id: int | None = None,
    claim_id: int | None = None,
) -> VoucherLedgerEntry:
    """A correction by the issuing bureau (rule 18), with its reason. Money is
    added only to an active voucher; nothing takes it below zero."""
    voucher = _voucher_for(session, actor, voucher_id, "voucher.manage")
    if not (reason or "").strip():
        raise ValidationFailed({"reason": N_("Give the reason for the adjustment.")})
    if amount == ZERO:
        raise ValidationFailed({"amount": N_("An adjustment is not zero.")})
    voucher = lock_voucher(session, voucher.id)
    if amount > ZERO and (
        voucher.status != VoucherStatus.ACTIVE or clock.now() > voucher.valid_until
    ):
        raise violation(
            "voucher_not_active",
            N_("Money can be added only to an active voucher."),
            18,
            field="amount",
        )
    if reservation_id is not None and session.get(Reservation, reservation_id) is None:
        raise NotFound(details={"field": "reservation_id"})
    return _append(
        session,
        actor,
        voucher,
        LedgerKind.ADJUST,
        amount,
        reservation_id=reservation_id,
        claim_id=claim_id,
        reason=reason.strip(),
    )


def restore_redemption(
    session: Session,
    actor: Actor,
    voucher_id: int,
    reservation_id: int,
    claim_id: int,
    amount: Decimal,
    reason: str,
) -> list[VoucherLedgerEntry]:
    """Give a redemption the bureau refused to pay back to the voucher (an
    ``adjust`` naming the booking and the claim). On a voucher that has
    expired or was revoked since, the amount lapses at once with an
    ``expire`` (or ``revoke``) entry of the same size, so it is traceable
    and never spendable."""
    voucher = lock_voucher(session, voucher_id)
    entries = [
        _append(
            session,
            actor,
            voucher,
            LedgerKind.ADJUST,
            amount,
            reservation_id=reservation_id,
            claim_id=claim_id,
            reason=reason,
        )
    ]
    lapsed = voucher.status != VoucherStatus.ACTIVE or clock.now() > voucher.valid_until
    if lapsed:
        kind = LedgerKind.REVOKE if voucher.status == VoucherStatus.REVOKED else LedgerKind.EXPIRE
        entries.append(
            _append(
                session,
                actor,
                voucher,
                kind,
                -amount,
                reservation_id=reservation_id,
                claim_id=claim_id,
                reason=reason,
            )
        )
    return entries


# --- reading ------------------------------------------------------------------------------


def _load_provider_regions(session: Session, vouchers: list[Voucher]) -> None:
    """Set ``provider_regions_used`` (for the cross-region visibility rule)."""
    if not vouchers:
        return
    rows = session.execute(
        select(Reservation.voucher_id, Resource.region)
        .join(Resource, Resource.id == Reservation.resource_id)
        .where(Reservation.voucher_id.in_([v.id for v in vouchers]))
        .distinct()
    ).all()
    used: dict[int, set[str]] = {}
    for voucher_id, region in rows:
        used.setdefault(voucher_id, set()).add(region)
    for voucher in vouchers:
        voucher.provider_regions_used = tuple(sorted(used.get(voucher.id, ())))


def get_voucher(session: Session, actor: Actor, voucher_id: int) -> Voucher:
    voucher = session.get(Voucher, voucher_id)
    if voucher is None:
        raise NotFound()
    _load_provider_regions(session, [voucher])
    if not authz.can(actor, "voucher.view", voucher):
        if not actor.authenticated:
            authz.require(actor, "voucher.view", voucher)
        raise NotFound()
    return voucher


def _visible_vouchers(actor: Actor):
    """SQL condition: the vouchers ``actor`` may see (mirrors ``voucher.view``)."""
    if actor.platform_admin:
        return None
    conditions = [Voucher.holder_org_id.in_(actor.org_ids() or {0})]
    bureau_ids = actor.bureau_ids()
    if bureau_ids:
        conditions.append(Voucher.bureau_id.in_(bureau_ids))
    for region in actor.bureau_regions():
        prefix = rules.bureau_prefix(region) + "%"
        conditions.append(Voucher.issuing_region.like(prefix))
        conditions.append(Voucher.holder_region.like(prefix))
        flows = (
            select(Reservation.voucher_id)
            .join(Resource, Resource.id == Reservation.resource_id)
            .where(Reservation.voucher_id.is_not(None), Resource.region.like(prefix))
        )
        conditions.append(Voucher.id.in_(flows))
    return or_(*conditions)


def list_vouchers(
    session: Session,
    actor: Actor,
    *,
    holder_org_id: int | None = None,
    bureau_id: int | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Voucher], int]:
    authz.require(actor, "voucher.list")
    conditions = []
    visible = _visible_vouchers(actor)
    if visible is not None:
        conditions.append(visible)
    if holder_org_id is not None:
        conditions.append(Voucher.holder_org_id == holder_org_id)
    if bureau_id is not None:
        conditions.append(Voucher.bureau_id == bureau_id)
    if status:
        conditions.append(Voucher.status == VoucherStatus(status))
    where = and_(True, *conditions)
    total = session.scalar(select(func.count(Voucher.id)).where(where)) or 0
    items = list(
        session.scalars(
            select(Voucher)
            .where(where)
            .options(selectinload(Voucher.holder))
            .order_by(Voucher.issued_at.desc(), Voucher.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    return items, total


def ledger_of(
    session: Session, actor: Actor, voucher_id: int, page: int = 1, per_page: int = 50
) -> tuple[list[VoucherLedgerEntry], int]:
    voucher = get_voucher(session, actor, voucher_id)
    where = VoucherLedgerEntry.voucher_id == voucher.id
    total = session.scalar(select(func.count(VoucherLedgerEntry.id)).where(where)) or 0
    items = list(
        session.scalars(
            select(VoucherLedgerEntry)
            .where(where)
            .order_by(VoucherLedgerEntry.id)
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    return items, total


# --- may this voucher pay for this booking? ---------------------------------------------------


def share_terms(voucher: Voucher) -> ShareTerms:
    return ShareTerms(
        coverage_ratio=voucher.coverage_ratio,
        order_cap=voucher.order_cap,
        formula=str(voucher.formula),
        tier1_limit=voucher.tier1_limit,
        tier1_rate=voucher.tier1_rate,
        tier2_rate=voucher.tier2_rate,
    )


def _resource_of(session: Session, reservation) -> Resource:
    resource = getattr(reservation, "resource", None)
    if resource is None:
        resource = session.get(Resource, reservation.resource_id)
    if resource is None:
        raise NotFound(details={"field": "resource_id"})
    return resource


class PayReads:
    """What the voucher rules read besides the voucher and the booking, read
    at once for many checks (``quotes_for_bookings``): the organisations
    concerned (as columns: ``id``, ``kind``, ``region``, ``uscc``,
    ``controller_group``, ``voucher_provider``), each provider's standing,
    and the relations declared among them."""

    def __init__(
        self, organizations: dict, standings: dict[int, str], relations: rules.Relations
    ) -> None:
        self.organizations, self.standings, self.relations = organizations, standings, relations


def check_voucher_pays(
    session: Session, voucher: Voucher, reservation, now: datetime, reads: PayReads | None = None
) -> None:
    """Rules 5, 6, 7, 11, 19, 22: may ``voucher`` pay for ``reservation``
    (checked when chosen and again at approval)? Raises ``RuleViolation``.
    ``reads``: what a batch of checks has read already."""
    from booking.services import admissions

    if voucher.holder_org_id != reservation.customer_org_id:
        raise violation(
            "voucher_holder",
            N_("This voucher belongs to another enterprise."),
            5,
            field="voucher_id",
        )
    if voucher.status != VoucherStatus.ACTIVE or now > voucher.valid_until:
        raise violation(
            "voucher_expired",
            N_("This voucher has expired or was revoked."),
            5,
            field="voucher_id",
        )
    if now < voucher.valid_from:
        raise violation(
            "voucher_not_yet_valid",
            N_("This voucher is valid from %(day)s."),
            5,
            field="voucher_id",
            day=voucher.valid_from.astimezone(clock.platform_tz()).date().isoformat(),
        )
    if reservation.start_at < voucher.valid_from or reservation.end_at > voucher.valid_until:
        raise violation(
            "voucher_validity",
            N_("The booking must lie within the voucher's validity (until %(day)s)."),
            5,
            field="voucher_id",
            day=voucher.valid_until.astimezone(clock.platform_tz()).date().isoformat(),
        )
    if getattr(reservation, "other_public_subsidy", False):
        raise violation(
            "other_public_subsidy",
            N_("A booking with another public subsidy cannot also use a voucher."),
            11,
            field="voucher_id",
        )
    resource = _resource_of(session, reservation)
    if not resource.voucher_eligible:
        raise violation(
            "resource_not_voucher_eligible",
            N_("This resource does not accept vouchers."),
            5,
            field="voucher_id",
        )
    category = str(resource.service_category)
    if category not in voucher.service_categories:
        raise violation(
            "voucher_category",
            N_("This voucher does not pay for the service category %(category)s."),
            5,
            field="voucher_id",
            category=category,
        )
    if reads is None:
        provider = session.get(Organization, resource.provider_id)
        customer = session.get(Organization, reservation.customer_org_id)
    else:
        provider = reads.organizations[resource.provider_id]
        customer = reads.organizations[reservation.customer_org_id]
    admissions.check_provider_takes_vouchers(
        session, provider, now, reads.standings[provider.id] if reads else None
    )
    if not rules.provider_region_allowed(provider.region, voucher.provider_regions or ()):
        raise violation(
            "provider_region",
            N_("This voucher cannot pay providers in region %(region)s."),
            6,
            field="voucher_id",
            region=provider.region,
        )
    admissions.check_not_related(session, customer, provider, reads.relations if reads else None)
    if str(resource.kind) == "testing_service" or category == "testing":
        last_day = reservation.end_at.astimezone(clock.platform_tz()).date()
        admissions.check_cma(session, provider, resource, last_day)


# --- the booking hooks ------------------------------------------------------------------


def quote_for_booking(session: Session, actor: Actor, voucher_id: int, reservation) -> VoucherQuote:
    """Check that ``voucher_id`` may pay for the (not yet approved) reservation
    (holder, validity covering the booking, category, provider admitted and
    not suspended, region, related parties, other public subsidy, CMA of a
    testing provider) and quote its share of ``reservation.estimated_cost``.
    Raises NotFound (``details.field = "voucher_id"``) for an unknown voucher
    and RuleViolation (``details.rule``, e.g. ``voucher_holder`` for someone
    else's voucher) when it may not pay. Writes nothing."""
    voucher = session.get(Voucher, voucher_id) if voucher_id else None
    if voucher is None:
        raise NotFound(N_("Unknown voucher."), details={"field": "voucher_id"})
    check_voucher_pays(session, voucher, reservation, clock.now())
    available = totals_of(session, voucher.id).available
    if getattr(reservation, "id", None):
        available += held_for(session, voucher.id, reservation.id)
    return _split(voucher, reservation, available)


def _split(voucher: Voucher, reservation, available: Decimal) -> VoucherQuote:
    """The voucher's and the customer's shares of the booking's estimate,
    with ``available`` left on the voucher for it."""
    cost = reservation.estimated_cost or ZERO
    if available <= ZERO and cost > ZERO:
        raise violation(
            "voucher_balance",
            N_("Nothing is left on this voucher."),
            12,
            field="voucher_id",
        )
    share, customer = rules.split_cost(cost, share_terms(voucher), available)
    return VoucherQuote(voucher_id=voucher.id, voucher_share=share, customer_share=customer)


#: What the rules read of a voucher, an organisation and an admission, for
#: ``quotes_for_bookings`` (which reads them as columns, not objects).
_VOUCHER_COLUMNS = (
    "id",
    "holder_org_id",
    "status",
    "valid_from",
    "valid_until",
    "service_categories",
    "provider_regions",
    *ShareTerms.__dataclass_fields__,
)
_PARTY_COLUMNS = ("id", "kind", "region", "uscc", "controller_group", "voucher_provider")


@functools.cache
def _batch_statements():
    """Built once: the vouchers, and the organisations with their current
    admission, of a batch of quotes."""
    ids = bindparam("ids", expanding=True)
    admission = aliased(ProviderAdmission)
    vouchers = select(*(getattr(Voucher, name) for name in _VOUCHER_COLUMNS)).where(
        Voucher.id.in_(ids)
    )
    parties = (
        select(
            *(getattr(Organization, name) for name in _PARTY_COLUMNS),
            admission.status.label("admission_status"),
            admission.notice_until,
        )
        .outerjoin(
            admission,
            and_(
                admission.provider_id == Organization.id,
                admission.status.in_(LIVE_ADMISSION_STATUSES),
            ),
        )
        .where(Organization.id.in_(ids))
    )
    return vouchers, parties


@dataclass(frozen=True)
class _Admission:
    status: AdmissionStatus
    notice_until: datetime | None


def quotes_for_bookings(
    session: Session, actor: Actor, bookings: list
) -> dict[int, VoucherQuote | DomainError]:
    """``quote_for_booking`` of many saved bookings at once (a page of the
    approval queue), by booking id: the quote, or the error that refuses
    it, by the same rules (``check_voucher_pays``, ``_split``). A booking is
    a ``Reservation`` or anything with its names (``id``, ``voucher_id``,
    ``resource_id``, ``customer_org_id``, ``start_at``, ``end_at``,
    ``other_public_subsidy``, ``estimated_cost``, and ``resource`` if the
    rules may read it there). The vouchers, their totals, their holds for
    these bookings, the organisations with their admission, and the
    relations among them are read as columns in one statement each, so a
    page costs about what one quote does. Bookings without a voucher are
    left out. Writes nothing."""
    from booking.services import admissions

    chosen = [b for b in bookings if b.voucher_id]
    if not chosen:
        return {}
    now = clock.now()
    session.flush()  # what a query would flush first: the reads below go to the connection
    connection = session.connection()
    vouchers_statement, parties_statement = _batch_statements()
    voucher_ids = sorted({b.voucher_id for b in chosen})
    found = {row.id: row for row in connection.execute(vouchers_statement, {"ids": voucher_ids})}
    totals = _totals_from(connection.execute(_totals_statement(), {"voucher_ids": voucher_ids}))
    held = {
        (voucher_id, reservation_id): -total
        for voucher_id, reservation_id, total in connection.execute(
            _holds_statement(), {"ids": sorted({b.id for b in chosen})}
        )
    }
    parties = {b.customer_org_id for b in chosen}
    parties |= {_resource_of(session, b).provider_id for b in chosen}
    organizations, standings = {}, {}
    for row in connection.execute(parties_statement, {"ids": sorted(parties)}):
        organizations[row.id] = row
        admission = row.admission_status and _Admission(row.admission_status, row.notice_until)
        standings[row.id] = admissions.standing_of(row, admission, now)
    relations = admissions.relations_among(connection, parties)
    reads = PayReads(organizations, standings, relations)
    quotes: dict[int, VoucherQuote | DomainError] = {}
    for booking in chosen:
        voucher = found.get(booking.voucher_id)
        try:
            if voucher is None:
                raise NotFound(N_("Unknown voucher."), details={"field": "voucher_id"})
            check_voucher_pays(session, voucher, booking, now, reads)
            available = totals.get(voucher.id, Totals()).available
            available += held.get((voucher.id, booking.id), ZERO)
            quotes[booking.id] = _split(voucher, booking, available)
        except DomainError as error:
            quotes[booking.id] = error
    return quotes


@dataclass
class PlannedBooking:
    """A booking not made yet, as the hooks read one (for quotes)."""

    resource_id: int
    customer_org_id: int
    start_at: datetime
    end_at: datetime
    estimated_cost: Decimal
    other_public_subsidy: bool = False
    id: int | None = None
    resource: Resource | None = None


def quote(session: Session, actor: Actor, voucher_id: int, data: dict) -> VoucherQuote:
    """What the voucher would pay of a planned booking (the estimate's split
    between voucher and customer), for the booking form."""
    customer_org_id = data.get("customer_org_id")
    if customer_org_id is None:
        mine = actor.customer_orgs()
        if not actor.authenticated:
            raise Unauthorized()
        if len(mine) != 1:
            raise ValidationFailed({"customer_org_id": N_("Name the enterprise that books.")})
        customer_org_id = next(iter(mine))
    customer = session.get(Organization, customer_org_id)
    if customer is None:
        raise NotFound(details={"field": "customer_org_id"})
    authz.require(actor, "voucher.quote", customer)
    if data["end"] <= data["start"]:
        raise RuleViolation("span_order", N_("The end must be after the start."), field="end")
    planned = PlannedBooking(
        resource_id=data["resource_id"],
        customer_org_id=customer.id,
        start_at=data["start"],
        end_at=data["end"],
        estimated_cost=data["estimated_cost"],
        other_public_subsidy=data.get("other_public_subsidy", False),
    )
    return quote_for_booking(session, actor, voucher_id, planned)


def hold_for_booking(session: Session, actor: Actor, reservation) -> Decimal:
    """At approval: re-check the voucher and hold the estimated share
    (ledger ``hold``); sets and returns ``reservation.voucher_hold``.
    Approving again (e.g. after a reschedule) replaces the booking's hold."""
    if reservation.voucher_id is None:
        return ZERO
    voucher = lock_voucher(session, reservation.voucher_id)
    if voucher is None:
        raise NotFound(N_("Unknown voucher."), details={"field": "voucher_id"})
    check_voucher_pays(session, voucher, reservation, clock.now())
    existing = held_for(session, voucher.id, reservation.id)
    spendable = totals_of(session, voucher.id).available + existing
    cost = reservation.estimated_cost or ZERO
    if spendable <= ZERO and cost > ZERO:
        raise violation(
            "voucher_balance", N_("Nothing is left on this voucher."), 12, field="voucher_id"
        )
    share = rules.voucher_share(cost, share_terms(voucher), spendable)
    if share != existing:
        if existing > ZERO:
            _append(
                session,
                actor,
                voucher,
                LedgerKind.RELEASE,
                existing,
                reservation_id=reservation.id,
                reason="rehold",
            )
        if share > ZERO:
            _append(session, actor, voucher, LedgerKind.HOLD, -share, reservation_id=reservation.id)
    reservation.voucher_hold = share
    session.flush()
    return share


def release_for_booking(session: Session, actor: Actor, reservation, reason: str) -> Decimal:
    """At cancel, reject, expiry or no-show: release what is held (ledger
    ``release``); idempotent; returns the amount released."""
    if reservation.voucher_id is None:
        return ZERO
    voucher = lock_voucher(session, reservation.voucher_id)
    held = held_for(session, voucher.id, reservation.id)
    if held > ZERO:
        _append(
            session,
            actor,
            voucher,
            LedgerKind.RELEASE,
            held,
            reservation_id=reservation.id,
            reason=reason,
        )
    reservation.voucher_hold = ZERO
    session.flush()
    return held


def _already_redeemed(session: Session, voucher_id: int, reservation_id: int) -> Decimal | None:
    amounts = session.scalars(
        select(VoucherLedgerEntry.amount).where(
            VoucherLedgerEntry.voucher_id == voucher_id,
            VoucherLedgerEntry.reservation_id == reservation_id,
            VoucherLedgerEntry.kind == LedgerKind.REDEEM,
        )
    ).all()
    return -sum(amounts, ZERO) if amounts else None


def redeem_for_booking(session: Session, actor: Actor, reservation) -> Decimal:
    """At completion, from ``reservation.final_cost``: redeem
    min(round_half_up(cost × ratio), order cap, held + available, cost − 0.01)
    (ledger ``redeem``, releasing the rest of the hold); sets
    ``reservation.voucher_amount`` and ``reservation.customer_amount``.

    A completion after the voucher's ``valid_until`` (or of a service that
    ended after it, or with a revoked voucher) redeems nothing: the hold is
    released and the customer pays the whole cost (rule 13). Calling it again
    for the same booking writes nothing and returns the first redemption.
    Makes the booking's order confirmation (服务确认单) when the voucher pays."""
    cost = reservation.final_cost
    if cost is None:
        raise InvalidTransition(N_("The final cost is not known yet."))
    if reservation.voucher_id is None:
        reservation.voucher_amount = ZERO
        reservation.customer_amount = cost
        return ZERO
    voucher = lock_voucher(session, reservation.voucher_id)
    done = _already_redeemed(session, voucher.id, reservation.id)
    if done is not None:
        reservation.voucher_amount = done
        reservation.customer_amount = cost - done
        return done
    now = clock.now()
    held = held_for(session, voucher.id, reservation.id)
    served_until = reservation.actual_end or reservation.end_at
    usable = (
        voucher.status == VoucherStatus.ACTIVE
        and now <= voucher.valid_until
        and served_until <= voucher.valid_until
    )
    if held > ZERO:
        _append(
            session,
            actor,
            voucher,
            LedgerKind.RELEASE,
            held,
            reservation_id=reservation.id,
            reason="completed",
        )
    share = ZERO
    if usable:
        spendable = totals_of(session, voucher.id).available
        share = rules.voucher_share(cost, share_terms(voucher), spendable)
        if share > ZERO:
            _append(
                session, actor, voucher, LedgerKind.REDEEM, -share, reservation_id=reservation.id
            )
    else:
        audit.record(
            session,
            actor,
            "voucher.redeem_refused",
            voucher,
            after={"reservation_id": reservation.id, "reason": "voucher_expired"},
        )
    reservation.voucher_hold = ZERO
    reservation.voucher_amount = share
    reservation.customer_amount = cost - share
    session.flush()
    if share > ZERO:
        from booking.services.claims import make_order_confirmation

        make_order_confirmation(session, actor, reservation, voucher)
    return share


# --- expiry (the scheduler's job) ---------------------------------------------------------------


def expire_due_vouchers(session: Session, now: datetime) -> int:
    """At the end of each voucher's last valid day (Asia/Shanghai): release
    the holds of bookings not completed by then, then write one ``expire``
    entry for what is left (rule 13). Idempotent: an expired voucher is not
    looked at again, so a second run writes nothing. Rows another scheduler
    holds are skipped (``FOR UPDATE SKIP LOCKED`` on PostgreSQL). Returns the
    number of vouchers expired."""
    due = session.scalars(
        select(Voucher)
        .where(Voucher.status == VoucherStatus.ACTIVE, Voucher.valid_until < now)
        .order_by(Voucher.id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    for voucher in due:
        _expire_one(session, voucher, now)
    return len(due)


def _expire_one(session: Session, voucher: Voucher, now: datetime) -> None:
    holds = session.execute(
        select(
            VoucherLedgerEntry.reservation_id,
            type_coerce(func.sum(VoucherLedgerEntry.amount), Money()),
        )
        .where(
            VoucherLedgerEntry.voucher_id == voucher.id,
            VoucherLedgerEntry.kind.in_(rules.HOLD_KINDS),
        )
        .group_by(VoucherLedgerEntry.reservation_id)
        .order_by(VoucherLedgerEntry.reservation_id)
    ).all()
    for reservation_id, net in holds:
        if net < ZERO:
            _append(
                session,
                None,
                voucher,
                LedgerKind.RELEASE,
                -net,
                reservation_id=reservation_id,
                reason="voucher_expired",
                at=now,
            )
            reservation = session.get(Reservation, reservation_id)
            if reservation is not None:
                reservation.voucher_hold = ZERO
    remaining = totals_of(session, voucher.id).balance
    if remaining > ZERO:
        _append(session, None, voucher, LedgerKind.EXPIRE, -remaining, at=now)
    voucher.status = VoucherStatus.EXPIRED
    voucher.expired_at = now
    session.flush()
    audit.record(session, None, "voucher.expired", voucher, after={"expired": remaining})
    events.publish(session, "voucher.expired", voucher)


# --- demo data --------------------------------------------------------------------------------


def seed_demo_vouchers(session: Session, data: dict, orgs: dict, users: dict) -> list[str]:
    """The vouchers part of the demo (``booking/data/demo.json``): a policy
    per bureau (POLICY.md's defaults, from today), the admission of every
    provider marked ``voucher_provider``, the CMA certificates of testing
    providers, and the vouchers, issued by each bureau's own officer through
    the same checks as real input. Idempotent."""
    from booking.authz import MembershipView
    from booking.services import accounts, admissions

    platform = Actor(user_id=None, platform_admin=True, ip="seed-demo")
    tz = clock.platform_tz()
    today = clock.now().astimezone(tz).date()

    def officer(bureau: Organization) -> Actor:
        for user in users.values():
            if any(m.organization_id == bureau.id for m in user.memberships):
                return accounts.actor_for(user, "seed-demo")
        view = MembershipView(bureau.id, "bureau", "member", bureau.region)
        return Actor(user_id=None, memberships=(view,), ip="seed-demo")

    policies = 0
    for item in data.get("bureaus", []):
        bureau = orgs[item["key"]]
        if policy_in_effect(session, bureau.id, today) is None:
            create_policy(session, officer(bureau), bureau.id, {"effective_from": today})
            policies += 1

    admitted = certificates = 0
    for item in data.get("providers", []):
        provider = orgs[item["key"]]
        if (
            item.get("voucher_provider")
            and admissions.current_admission(session, provider.id) is None
        ):
            admissions.admit_at_once(session, platform, provider, "demo data")
            admitted += 1
        cma = item.get("cma")
        if cma and not session.scalar(
            select(CmaCertificate.id).where(
                CmaCertificate.provider_id == provider.id, CmaCertificate.number == cma["number"]
            )
        ):
            admissions.record_cma(
                session,
                platform,
                provider.id,
                {
                    "number": cma["number"],
                    "scope": cma["scope"],
                    "category_codes": cma.get("category_codes", []),
                    "expires_on": date.fromisoformat(cma["expires_on"]),
                },
            )
            certificates += 1

    issued, skipped = 0, []
    for item in data.get("vouchers", []):
        bureau, holder = orgs[item["bureau"]], orgs[item["holder"]]
        valid_from = date.fromisoformat(item["valid_from"])
        exists = session.scalar(
            select(Voucher.id).where(
                Voucher.bureau_id == bureau.id,
                Voucher.holder_org_id == holder.id,
                Voucher.face_value == parse_money(item["face_value"]),
                Voucher.valid_from == rules.start_of_local_day(valid_from, tz),
            )
        )
        if exists:
            continue
        request = {
            "holder_org_id": holder.id,
            "bureau_id": bureau.id,
            "face_value": parse_money(item["face_value"]),
            "coverage_ratio": Decimal(item["coverage_ratio"]),
            "order_cap": parse_money(item["order_cap"]) if item.get("order_cap") else None,
            "service_categories": item.get("service_categories"),
            "valid_from": valid_from,
            "valid_until": date.fromisoformat(item["valid_until"]),
        }
        try:
            issue_voucher(session, officer(bureau), request)
            issued += 1
        except DomainError as exc:  # e.g. the demo's dates lie in the past by now
            skipped.append(f"  voucher for {item['holder']} not issued: {exc}")
    return [
        f"voucher policies: {policies} new",
        f"voucher providers admitted: {admitted} new, CMA certificates: {certificates} new",
        f"vouchers: {issued} new",
        *skipped,
    ]
