"""Who may see, file, audit and pay claims, and see and confirm order
confirmations (服务确认单).

A claim is seen by its claimant, by the issuing bureau and bureaus above it,
and by the bureau of a provider region one of its lines touches (cross-region
通用通兑); it is audited and paid by the issuing bureau only.
"""

from __future__ import annotations

from booking.authz import Actor, rule
from booking.authz.vouchers import governs


@rule("claim.create")
def create_claim(actor: Actor, claimant) -> bool:
    """``claimant``: a provider (its lab admin files) or an enterprise (a
    member files, where the bureau's policy makes the enterprise claimant)."""
    if claimant.kind == "provider":
        return actor.lab_admin_of(claimant.id)
    if claimant.kind == "enterprise":
        return actor.member_of(claimant.id)
    return False


@rule("claim.list")
def list_claims(actor: Actor, _obj=None) -> bool:
    return actor.authenticated


@rule("claim.view")
def view_claim(actor: Actor, claim) -> bool:
    if actor.platform_admin or actor.member_of(claim.claimant_org_id):
        return True
    if claim.bureau_id in actor.bureau_ids() or governs(actor, claim.bureau_region):
        return True
    return any(governs(actor, line.provider_region) for line in claim.lines)


@rule("claim.edit", sees="claim.view")
def edit_claim(actor: Actor, claim) -> bool:
    """Evidence, submit, withdraw: the claimant."""
    if claim.claimant_kind == "provider":
        return actor.lab_admin_of(claim.claimant_org_id)
    return actor.member_of(claim.claimant_org_id)


@rule("claim.audit", sees="claim.view")
def audit_claim(actor: Actor, claim) -> bool:
    return claim.bureau_id in actor.bureau_ids()


@rule("claim.pay", sees="claim.view")
def pay_claim(actor: Actor, claim) -> bool:
    return claim.bureau_id in actor.bureau_ids()


@rule("confirmation.view")
def view_confirmation(actor: Actor, confirmation) -> bool:
    content = confirmation.content
    if actor.platform_admin:
        return True
    if actor.member_of(content["customer"]["id"]) or actor.member_of(content["provider"]["id"]):
        return True
    voucher = content.get("voucher") or {}
    return governs(actor, voucher.get("issuing_region")) or governs(
        actor, content["provider"].get("region")
    )


@rule("confirmation.confirm_customer", sees="confirmation.view")
def confirm_as_customer(actor: Actor, confirmation) -> bool:
    return actor.member_of(confirmation.content["customer"]["id"])


@rule("confirmation.confirm_provider", sees="confirmation.view")
def confirm_as_provider(actor: Actor, confirmation) -> bool:
    return actor.lab_admin_of(confirmation.content["provider"]["id"])
