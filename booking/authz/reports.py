"""Who may pull which report.

- The voucher settlement report belongs to the science bureaus: a bureau
  officer sees their own region (prefix match: a province bureau sees its
  cities) and, inside it, the cross-region flows that touch it; another
  region's figures are not visible (404). Anyone who is not a bureau officer
  (or platform admin) is refused the report outright (403).
- The open-sharing report: a lab admin sees their own lab's; a bureau sees
  every lab and instrument of its region; the platform admin sees all.
  Another lab's report, or a region outside the bureau's, is not visible
  (404); a signed-in user with no reporting role is refused (403).

The objects are the report's scope: ``obj.provider_id`` and
``obj.provider_region`` (a lab's report) or ``obj.region`` (a region prefix;
``None`` means the whole platform).
"""

from __future__ import annotations

from booking.authz import Actor, rule
from booking.domain.organizations import region_within


def _governs(actor: Actor, region: str | None) -> bool:
    if region is None:
        return False
    return any(region_within(region, own) for own in actor.bureau_regions())


@rule("report.settlement.pull")
def pull_settlement(actor: Actor, _obj=None) -> bool:
    return actor.platform_admin or bool(actor.bureau_ids())


@rule("report.settlement.view", sees="report.settlement.view")
def view_settlement(actor: Actor, scope) -> bool:
    if actor.platform_admin:
        return True
    return _governs(actor, scope.region)


@rule("report.open_sharing.pull")
def pull_open_sharing(actor: Actor, _obj=None) -> bool:
    return (
        actor.platform_admin or bool(actor.bureau_ids()) or bool(actor.org_ids("provider", "admin"))
    )


@rule("report.open_sharing.see")
def see_open_sharing(actor: Actor, scope) -> bool:
    if actor.platform_admin:
        return True
    if scope.provider_id is not None:
        return actor.member_of(scope.provider_id) or _governs(actor, scope.provider_region)
    return _governs(actor, scope.region)


@rule("report.open_sharing.view", sees="report.open_sharing.see")
def view_open_sharing(actor: Actor, scope) -> bool:
    if actor.platform_admin:
        return True
    if scope.provider_id is not None:
        return actor.lab_admin_of(scope.provider_id) or _governs(actor, scope.provider_region)
    return _governs(actor, scope.region)


@rule("report.programme.change")
def change_programme(actor: Actor, _obj=None) -> bool:
    return actor.platform_admin
