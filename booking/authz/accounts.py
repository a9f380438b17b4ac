"""Who may see and change organisations and users."""

from __future__ import annotations

from booking.authz import Actor, rule


@rule("platform.admin")
def platform_admin(actor: Actor, _obj=None) -> bool:
    return actor.platform_admin


@rule("organization.view")
def view_organization(actor: Actor, org) -> bool:
    if actor.platform_admin or actor.member_of(org.id):
        return True
    # Providers and bureaus are public parties; enterprises are private to
    # their members, the platform and the bureau governing their region.
    if org.kind in ("provider", "bureau", "platform"):
        return True
    from booking.domain.organizations import region_within

    return any(region_within(org.region, r) for r in actor.bureau_regions())


@rule("organization.create")
def create_organization(actor: Actor, _obj=None) -> bool:
    return actor.platform_admin


@rule("organization.update", sees="organization.view")
def update_organization(actor: Actor, org) -> bool:
    return actor.platform_admin or actor.admin_of(org.id)


@rule("organization.confirm", sees="organization.view")
def confirm_organization(actor: Actor, org) -> bool:
    return actor.platform_admin


@rule("organization.list")
def list_organizations(actor: Actor, _obj=None) -> bool:
    return actor.platform_admin or bool(actor.bureau_regions())


@rule("user.list")
def list_users(actor: Actor, _obj=None) -> bool:
    return actor.platform_admin


@rule("user.create")
def create_user(actor: Actor, _obj=None) -> bool:
    return actor.platform_admin


@rule("user.view")
def view_user(actor: Actor, user) -> bool:
    if actor.platform_admin or actor.user_id == user.id:
        return True
    shared = {m.organization_id for m in user.memberships} & actor.org_ids(role="admin")
    return bool(shared)


@rule("outbox.view")
def view_outbox(actor: Actor, _obj=None) -> bool:
    return actor.platform_admin
