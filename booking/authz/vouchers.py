"""Who may see and change vouchers, voucher policies, provider admissions,
CMA certificates and related-party declarations.

A bureau sees the vouchers of its region (issued there, or held by an
enterprise there) and the cross-region flows that touch it (a voucher that
paid a provider of its region); a holder sees its own; everybody else gets
404. Only the issuing bureau changes a voucher.
"""

from __future__ import annotations

from booking.authz import Actor, rule
from booking.domain.organizations import region_within


def governs(actor: Actor, region: str | None) -> bool:
    """The actor is an officer of a bureau whose region contains ``region``."""
    return bool(region) and any(region_within(region, r) for r in actor.bureau_regions())


@rule("voucher.view")
def view_voucher(actor: Actor, voucher) -> bool:
    if actor.platform_admin or actor.member_of(voucher.holder_org_id):
        return True
    if voucher.bureau_id in actor.bureau_ids():
        return True
    if governs(actor, voucher.issuing_region) or governs(actor, voucher.holder_region):
        return True
    return any(governs(actor, region) for region in voucher.provider_regions_used)


@rule("voucher.issue")
def issue_voucher(actor: Actor, bureau) -> bool:
    """``bureau``: the issuing bureau's organisation."""
    return bureau.kind == "bureau" and bureau.id in actor.bureau_ids()


@rule("voucher.manage", sees="voucher.view")
def manage_voucher(actor: Actor, voucher) -> bool:
    """Revoke, adjust: the issuing bureau only."""
    return voucher.bureau_id in actor.bureau_ids()


@rule("voucher.quote")
def quote_voucher(actor: Actor, customer) -> bool:
    """``customer``: the enterprise that would book and pay with the voucher."""
    return actor.member_of(customer.id)


@rule("voucher.list")
def list_vouchers(actor: Actor, _obj=None) -> bool:
    return actor.authenticated


@rule("voucher_policy.view")
def view_policy(actor: Actor, _policy=None) -> bool:
    # A bureau's rules are public rules.
    return actor.authenticated or actor.platform_admin


@rule("voucher_policy.manage", sees="voucher_policy.view")
def manage_policy(actor: Actor, bureau) -> bool:
    """``bureau``: the organisation whose policy it is."""
    return bureau.kind == "bureau" and bureau.id in actor.bureau_ids()


# --- providers -------------------------------------------------------------------


@rule("admission.view")
def view_admission(actor: Actor, admission) -> bool:
    if actor.platform_admin or actor.member_of(admission.provider_id):
        return True
    return governs(actor, admission.provider.region)


@rule("admission.apply")
def apply_admission(actor: Actor, provider) -> bool:
    """``provider``: the organisation applying (its lab admin), or a platform
    admin or bureau of its region entering the application for it."""
    if provider.kind != "provider":
        return False
    return (
        actor.platform_admin or actor.lab_admin_of(provider.id) or governs(actor, provider.region)
    )


@rule("admission.decide", sees="admission.view")
def decide_admission(actor: Actor, admission) -> bool:
    """Approve, reject, suspend, reinstate: the platform or a bureau of the
    provider's region."""
    return actor.platform_admin or governs(actor, admission.provider.region)


@rule("cma.manage")
def manage_cma(actor: Actor, provider) -> bool:
    return (
        actor.platform_admin or actor.lab_admin_of(provider.id) or governs(actor, provider.region)
    )


@rule("cma.view")
def view_cma(actor: Actor, _provider=None) -> bool:
    # Qualifications of testing providers are public.
    return actor.authenticated or actor.platform_admin


@rule("related_party.declare")
def declare_related_party(actor: Actor, org) -> bool:
    """``org``: the declaring organisation."""
    return actor.platform_admin or actor.admin_of(org.id) or governs(actor, org.region)


@rule("related_party.view")
def view_related_party(actor: Actor, org) -> bool:
    return actor.platform_admin or actor.member_of(org.id) or governs(actor, org.region)
