"""Providers and parties of voucher business: admission of a provider as a
voucher service institution (创新券服务机构, POLICY rule 19) with its
documents, credit check, decision, public notice and suspension; the CMA
certificates of testing providers (rule 22); declared related parties
(rule 7).

A provider takes new voucher bookings only while admitted and not
suspended. Its current admission record decides; a provider with no record
counts as admitted when a platform admin registered it with
``voucher_provider: true`` (API.md admits it "at once") — ``admit_at_once``
writes the record for that case. The organisation's ``voucher_provider``
flag follows the record (admitted → true, suspended → false).
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from booking import authz
from booking.authz import Actor
from booking.domain import clock
from booking.domain.errors import (
    N_,
    Conflict,
    InvalidTransition,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from booking.domain.vouchers import PartyView, Relations, end_of_local_day, violation
from booking.domain.vouchers import check_not_related as _not_related
from booking.models.accounts import Organization, OrgKind
from booking.models.catalog import Category
from booking.models.vouchers import (
    LIVE_ADMISSION_STATUSES,
    AdmissionStatus,
    CmaCertificate,
    ProviderAdmission,
    RelatedPartyDeclaration,
    RelationKind,
)
from booking.services import audit

DEFAULT_ADMISSION_NOTICE_DAYS = 7


# --- admission -----------------------------------------------------------------------


def current_admission(session: Session, provider_id: int) -> ProviderAdmission | None:
    return session.scalar(_current_admission_statement(), {"provider_id": provider_id})


@functools.cache
def _current_admission_statement():
    """Built once: every voucher quote and hold reads it."""
    return select(ProviderAdmission).where(
        ProviderAdmission.provider_id == bindparam("provider_id"),
        ProviderAdmission.status.in_(LIVE_ADMISSION_STATUSES),
    )


def provider_standing(session: Session, provider: Organization, now: datetime) -> str:
    """``admitted``, ``suspended``, ``in_notice``, ``applied`` or ``not_admitted``."""
    return standing_of(provider, current_admission(session, provider.id), now)


def standing_of(provider, admission, now: datetime) -> str:
    """``provider_standing`` with the provider's current admission record
    (or None) read already (its ``status`` and ``notice_until``)."""
    if admission is None:
        return "admitted" if provider.voucher_provider else "not_admitted"
    if admission.status == AdmissionStatus.IN_NOTICE:
        return "admitted" if now >= admission.notice_until else "in_notice"
    return str(admission.status)


def check_provider_takes_vouchers(
    session: Session, provider: Organization, now: datetime, standing: str | None = None
):
    """Rules 5 and 19: admitted, and not suspended (``standing``: the
    provider's, when the caller has read it already)."""
    if standing is None:
        standing = provider_standing(session, provider, now)
    if standing == "suspended":
        raise violation(
            "provider_suspended",
            N_("The provider is suspended as a voucher service institution."),
            19,
            field="voucher_id",
        )
    if standing != "admitted":
        raise violation(
            "provider_not_admitted",
            N_("The provider is not an admitted voucher service institution."),
            19,
            field="voucher_id",
        )


def _provider(session: Session, provider_id: int) -> Organization:
    provider = session.get(Organization, provider_id)
    if provider is None or provider.kind != OrgKind.PROVIDER:
        raise NotFound(details={"field": "provider_id"})
    return provider


def _notice_days_for(session: Session, provider: Organization) -> int:
    """The admission notice of the bureau governing the provider (the nearest
    one with a policy), else the default of 7 days (Shanghai pattern)."""
    from booking.domain.organizations import region_within
    from booking.services.vouchers import policy_in_effect

    today = clock.now().astimezone(clock.platform_tz()).date()
    bureaus = session.scalars(select(Organization).where(Organization.kind == OrgKind.BUREAU)).all()
    governing = sorted(
        (b for b in bureaus if region_within(provider.region, b.region)),
        key=lambda b: -len(b.region.rstrip("0")),
    )
    for bureau in governing:
        policy = policy_in_effect(session, bureau.id, today)
        if policy is not None:
            return policy.admission_notice_days
    return DEFAULT_ADMISSION_NOTICE_DAYS


def apply_for_admission(
    session: Session, actor: Actor, provider_id: int, data: dict
) -> ProviderAdmission:
    """A provider's application, with its documents."""
    provider = _provider(session, provider_id)
    authz.require(actor, "admission.apply", provider)
    if current_admission(session, provider.id) is not None:
        raise Conflict(N_("The provider has an admission record in progress or in force."))
    documents = data.get("documents") or []
    if not documents:
        raise ValidationFailed(
            {"documents": N_("List the documents (licence, qualifications, fees).")}
        )
    admission = ProviderAdmission(
        provider_id=provider.id,
        provider=provider,
        status=AdmissionStatus.APPLIED,
        documents=documents,
        service_summary=data.get("service_summary") or "",
        applied_by_id=actor.user_id,
    )
    session.add(admission)
    session.flush()
    audit.record(session, actor, "admission.apply", admission)
    return admission


def _admission(session: Session, actor: Actor, admission_id: int, action: str):
    admission = session.get(ProviderAdmission, admission_id)
    if admission is None:
        raise NotFound()
    authz.require(actor, action, admission)
    return admission


def approve_admission(
    session: Session, actor: Actor, admission_id: int, data: dict
) -> ProviderAdmission:
    """Approve after a passed credit check; with notice days, the provider is
    admitted when the public notice (公示) ends."""
    admission = _admission(session, actor, admission_id, "admission.decide")
    if admission.status != AdmissionStatus.APPLIED:
        raise InvalidTransition(N_("Only an application can be approved."))
    if not data.get("credit_check_passed"):
        raise RuleViolation(
            "credit_check",
            N_("A provider is admitted only after a passed credit check."),
            field="credit_check_passed",
            details={"policy_rule": 19},
        )
    before = audit.snapshot(admission)
    now = clock.now()
    notice_days = data.get("notice_days")
    if notice_days is None:
        notice_days = _notice_days_for(session, admission.provider)
    admission.credit_check_passed = True
    admission.credit_check_note = data.get("credit_check_note")
    admission.notice_days = notice_days
    admission.decided_by_id = actor.user_id
    admission.decided_at = now
    admission.decision_reason = data.get("reason")
    if notice_days > 0:
        last_day = now.astimezone(clock.platform_tz()).date() + timedelta(days=notice_days)
        admission.status = AdmissionStatus.IN_NOTICE
        admission.notice_until = end_of_local_day(last_day, clock.platform_tz())
    else:
        admission.status = AdmissionStatus.ADMITTED
    admission.provider.voucher_provider = True
    session.flush()
    audit.record(session, actor, "admission.approve", admission, before=before)
    return admission


def reject_admission(
    session: Session, actor: Actor, admission_id: int, reason: str
) -> ProviderAdmission:
    admission = _admission(session, actor, admission_id, "admission.decide")
    if admission.status not in (AdmissionStatus.APPLIED, AdmissionStatus.IN_NOTICE):
        raise InvalidTransition(N_("Only an application or a provider in notice can be refused."))
    _require_reason(reason)
    before = audit.snapshot(admission)
    admission.status = AdmissionStatus.REJECTED
    admission.decided_by_id = actor.user_id
    admission.decided_at = clock.now()
    admission.decision_reason = reason.strip()
    admission.provider.voucher_provider = False
    session.flush()
    audit.record(session, actor, "admission.reject", admission, before=before)
    return admission


def suspend_provider(
    session: Session, actor: Actor, admission_id: int, reason: str
) -> ProviderAdmission:
    """No new voucher attachments from now; finished work can still be claimed."""
    admission = _admission(session, actor, admission_id, "admission.decide")
    if admission.status not in (AdmissionStatus.ADMITTED, AdmissionStatus.IN_NOTICE):
        raise InvalidTransition(N_("Only an admitted provider can be suspended."))
    _require_reason(reason)
    before = audit.snapshot(admission)
    admission.status = AdmissionStatus.SUSPENDED
    admission.suspended_at = clock.now()
    admission.suspended_by_id = actor.user_id
    admission.suspension_reason = reason.strip()
    admission.provider.voucher_provider = False
    session.flush()
    audit.record(session, actor, "admission.suspend", admission, before=before)
    return admission


def reinstate_provider(session: Session, actor: Actor, admission_id: int) -> ProviderAdmission:
    admission = _admission(session, actor, admission_id, "admission.decide")
    if admission.status != AdmissionStatus.SUSPENDED:
        raise InvalidTransition(N_("Only a suspended provider can be reinstated."))
    before = audit.snapshot(admission)
    admission.status = AdmissionStatus.ADMITTED
    admission.suspended_at = None
    admission.suspension_reason = None
    admission.provider.voucher_provider = True
    session.flush()
    audit.record(session, actor, "admission.reinstate", admission, before=before)
    return admission


def admit_at_once(
    session: Session, actor: Actor, provider: Organization, note: str = ""
) -> ProviderAdmission:
    """A platform admin admits a provider without notice (API.md's
    ``voucher_provider: true``); idempotent."""
    authz.require(actor, "platform.admin")
    existing = current_admission(session, provider.id)
    if existing is not None:
        return existing
    now = clock.now()
    admission = ProviderAdmission(
        provider_id=provider.id,
        provider=provider,
        status=AdmissionStatus.ADMITTED,
        documents=[{"name": "platform registration", "reference": note or "-"}],
        credit_check_passed=True,
        credit_check_note=note or None,
        notice_days=0,
        applied_by_id=actor.user_id,
        decided_by_id=actor.user_id,
        decided_at=now,
        decision_reason=note or None,
    )
    provider.voucher_provider = True
    session.add(admission)
    session.flush()
    audit.record(session, actor, "admission.admit", admission)
    return admission


def get_admission(session: Session, actor: Actor, admission_id: int) -> ProviderAdmission:
    admission = session.get(ProviderAdmission, admission_id)
    authz.require_visible(actor, "admission.view", admission)
    return admission


def list_admissions(
    session: Session, actor: Actor, provider_id: int | None = None, status: str | None = None
) -> list[ProviderAdmission]:
    query = select(ProviderAdmission).order_by(ProviderAdmission.id.desc())
    if provider_id is not None:
        query = query.where(ProviderAdmission.provider_id == provider_id)
    if status:
        query = query.where(ProviderAdmission.status == AdmissionStatus(status))
    return [a for a in session.scalars(query) if authz.can(actor, "admission.view", a)]


def _require_reason(reason: str | None) -> None:
    if not (reason or "").strip():
        raise ValidationFailed({"reason": N_("Give a reason.")})


# --- CMA certificates ----------------------------------------------------------------------


def record_cma(session: Session, actor: Actor, provider_id: int, data: dict) -> CmaCertificate:
    provider = _provider(session, provider_id)
    authz.require(actor, "cma.manage", provider)
    number = (data.get("number") or "").strip()
    if not number:
        raise ValidationFailed({"number": N_("Enter the certificate number.")})
    if data.get("issued_on") and data["issued_on"] > data["expires_on"]:
        raise ValidationFailed({"expires_on": N_("The certificate expires before it was issued.")})
    if session.scalar(
        select(CmaCertificate.id).where(
            CmaCertificate.provider_id == provider.id, CmaCertificate.number == number
        )
    ):
        raise Conflict(N_("This certificate is on file already."))
    certificate = CmaCertificate(
        provider_id=provider.id,
        number=number,
        scope=(data.get("scope") or "").strip(),
        category_codes=list(data.get("category_codes") or []),
        issued_on=data.get("issued_on"),
        expires_on=data["expires_on"],
        recorded_by_id=actor.user_id,
        created_at=clock.now(),
    )
    session.add(certificate)
    session.flush()
    audit.record(session, actor, "cma.record", certificate)
    return certificate


def withdraw_cma(session: Session, actor: Actor, certificate_id: int) -> CmaCertificate:
    certificate = session.get(CmaCertificate, certificate_id)
    if certificate is None:
        raise NotFound()
    authz.require(actor, "cma.manage", session.get(Organization, certificate.provider_id))
    if certificate.withdrawn_at is None:
        certificate.withdrawn_at = clock.now()
        session.flush()
        audit.record(session, actor, "cma.withdraw", certificate)
    return certificate


def list_cma(session: Session, actor: Actor, provider_id: int) -> list[CmaCertificate]:
    authz.require(actor, "cma.view")
    _provider(session, provider_id)
    return list(
        session.scalars(
            select(CmaCertificate)
            .where(CmaCertificate.provider_id == provider_id)
            .order_by(CmaCertificate.expires_on.desc())
        )
    )


def check_cma(session: Session, provider: Organization, resource, on: date) -> None:
    """Rule 22: a testing service is voucher-bookable only with a CMA
    certificate on file, valid on ``on`` (the booking's last local day), whose
    scope covers the resource's category where the scope lists categories."""
    certificates = session.scalars(
        select(CmaCertificate).where(
            CmaCertificate.provider_id == provider.id, CmaCertificate.withdrawn_at.is_(None)
        )
    ).all()
    if not certificates:
        raise violation(
            "cma_missing",
            N_("The testing provider has no CMA certificate on file."),
            22,
            field="voucher_id",
        )
    valid = [c for c in certificates if c.expires_on >= on]
    if not valid:
        raise violation(
            "cma_expired",
            N_("The testing provider's CMA certificate expired on %(day)s."),
            22,
            field="voucher_id",
            day=max(c.expires_on for c in certificates).isoformat(),
        )
    category = getattr(resource, "category", None) or session.get(Category, resource.category_id)
    code = category.code if category else ""
    if not any(
        not c.category_codes or any(code.startswith(p) for p in c.category_codes) for c in valid
    ):
        raise violation(
            "cma_scope",
            N_("This testing service lies outside the provider's certified scope."),
            22,
            field="voucher_id",
        )


# --- related parties ----------------------------------------------------------------------


def relations_between(session: Session, a: int, b: int) -> Relations:
    rows = session.execute(
        select(RelatedPartyDeclaration.org_id, RelatedPartyDeclaration.related_org_id).where(
            RelatedPartyDeclaration.withdrawn_at.is_(None),
            or_(
                and_(
                    RelatedPartyDeclaration.org_id == a,
                    RelatedPartyDeclaration.related_org_id == b,
                ),
                and_(
                    RelatedPartyDeclaration.org_id == b,
                    RelatedPartyDeclaration.related_org_id == a,
                ),
            ),
        )
    ).all()
    return Relations(frozenset(frozenset(row) for row in rows))


def relations_among(reader: Session | Connection, org_ids: set[int]) -> Relations:
    """The declared relations between any two of ``org_ids``, in one
    statement (for many checks at once), read by a session or a connection."""
    rows = reader.execute(_relations_among_statement(), {"ids": sorted(org_ids)}).all()
    return Relations(frozenset(frozenset(row) for row in rows))


@functools.cache
def _relations_among_statement():
    ids = bindparam("ids", expanding=True)
    return select(RelatedPartyDeclaration.org_id, RelatedPartyDeclaration.related_org_id).where(
        RelatedPartyDeclaration.withdrawn_at.is_(None),
        RelatedPartyDeclaration.org_id.in_(ids),
        RelatedPartyDeclaration.related_org_id.in_(ids),
    )


def party_view(org: Organization) -> PartyView:
    return PartyView(
        org_id=org.id,
        kind=str(org.kind),
        region=org.region,
        uscc=org.uscc,
        controller_group=org.controller_group,
    )


def check_not_related(
    session: Session,
    enterprise: Organization,
    provider: Organization,
    relations: Relations | None = None,
):
    """Rule 7, with the declarations on file (``relations``: those between
    the two, when the caller has read them already)."""
    if relations is None:
        relations = relations_between(session, enterprise.id, provider.id)
    _not_related(party_view(enterprise), party_view(provider), relations)


def declare_related_party(
    session: Session, actor: Actor, org_id: int, data: dict
) -> RelatedPartyDeclaration:
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound(details={"field": "org_id"})
    authz.require(actor, "related_party.declare", org)
    related = session.get(Organization, data.get("related_org_id") or 0)
    if related is None:
        raise NotFound(details={"field": "related_org_id"})
    if related.id == org.id:
        raise ValidationFailed({"related_org_id": N_("An organisation is not its own relation.")})
    declaration = RelatedPartyDeclaration(
        org_id=org.id,
        related_org_id=related.id,
        relation=RelationKind(data.get("relation") or "other"),
        note=(data.get("note") or "").strip(),
        declared_by_id=actor.user_id,
        declared_at=clock.now(),
    )
    session.add(declaration)
    session.flush()
    audit.record(session, actor, "related_party.declare", declaration)
    return declaration


def withdraw_related_party(
    session: Session, actor: Actor, declaration_id: int
) -> RelatedPartyDeclaration:
    declaration = session.get(RelatedPartyDeclaration, declaration_id)
    if declaration is None or not authz.can(actor, "related_party.view", declaration.org):
        raise NotFound()
    authz.require(actor, "related_party.declare", declaration.org)
    if declaration.withdrawn_at is None:
        declaration.withdrawn_at = clock.now()
        declaration.withdrawn_by_id = actor.user_id
        session.flush()
        audit.record(session, actor, "related_party.withdraw", declaration)
    return declaration


def list_related_parties(
    session: Session, actor: Actor, org_id: int
) -> list[RelatedPartyDeclaration]:
    org = session.get(Organization, org_id)
    authz.require_visible(actor, "related_party.view", org)
    return list(
        session.scalars(
            select(RelatedPartyDeclaration)
            .where(
                or_(
                    RelatedPartyDeclaration.org_id == org.id,
                    RelatedPartyDeclaration.related_org_id == org.id,
                )
            )
            .order_by(RelatedPartyDeclaration.id)
        )
    )
