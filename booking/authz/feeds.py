"""Who may make, see, revoke and read calendar feeds.

A feed URL works without signing in (calendar programs cannot sign in), so
reading a feed is decided for the token's *owner*, as they are now: a
personal feed (``me``) while they are a member of the organisation, a lab
feed while they are an admin of the lab. A token stops working the moment
its owner loses that membership.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from booking.authz import Actor, can, registered_actions, rule


@dataclass(frozen=True)
class FeedTarget:
    """What a feed would show: ``scope`` (``me`` or ``lab``) of an organisation."""

    scope: str
    organization_id: int


def _may_have(actor: Actor, scope: str, organization_id: int) -> bool:
    if scope == "me":
        return actor.member_of(organization_id)
    if scope == "lab":
        return actor.lab_admin_of(organization_id)
    return False


@rule("feed.create")
def create_feed(actor: Actor, target: FeedTarget) -> bool:
    return actor.authenticated and _may_have(actor, target.scope, target.organization_id)


@rule("feed.view")
def view_feed(actor: Actor, feed: Any) -> bool:
    return actor.authenticated and (actor.platform_admin or feed.user_id == actor.user_id)


@rule("feed.revoke", sees="feed.view")
def revoke_feed(actor: Actor, feed: Any) -> bool:
    return actor.authenticated and (actor.platform_admin or feed.user_id == actor.user_id)


@rule("feed.read")
def read_feed(owner: Actor, feed: Any) -> bool:
    """``owner`` is the token's owner as they are now; ``feed`` has ``scope``,
    ``organization_id`` and ``revoked_at``."""
    if feed.revoked_at is not None or not owner.authenticated:
        return False
    scope = getattr(feed.scope, "value", feed.scope)
    return _may_have(owner, scope, feed.organization_id)


@rule("feed.resource")
def read_resource_feed(_actor: Actor, resource: Any) -> bool:
    """A resource's busy times are public while it is listed in the catalog."""
    return getattr(resource.status, "value", resource.status) != "retired"


@rule("feed.download", sees="feed.download")
def download_reservation(actor: Actor, reservation: Any) -> bool:
    """One booking as an .ics file: whoever may see the booking. Asks the
    reservations area's ``reservation.view`` rule when it is registered; the
    fallback below is the platform's visibility rule (DESIGN.md: a customer
    sees their own, the enterprise's admin all of the enterprise's, a lab
    admin their lab's)."""
    if "reservation.view" in registered_actions():
        return can(actor, "reservation.view", reservation)
    if not actor.authenticated:
        return False
    if actor.platform_admin or actor.lab_admin_of(reservation.resource.provider_id):
        return True
    if actor.admin_of(reservation.customer_org_id):
        return True
    return actor.member_of(reservation.customer_org_id) and reservation.user_id == actor.user_id


def reservation_view(actor: Actor, reservation: Any) -> str:
    """Which view of a booking ``actor`` gets: a lab admin sees the lab's view
    (with the customer), everyone else the customer's."""
    if actor.lab_admin_of(reservation.resource.provider_id):
        return "lab"
    return "customer"
