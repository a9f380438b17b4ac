"""Authorization rules of the reservations area.

- A booking is seen by the members of its customer organisation, by the
  admins of the lab that owns the resource (and the resource's named
  approvers), and by platform admins. Nobody else learns it exists (404).
- Customers book for an enterprise, or for a lab (provider) they belong to.
- Deciding (approve, reject): the lab's admins and the resource's named
  approvers. Being named is not enough: a named approver decides only while
  they are still a member of the lab (an actor's memberships are the current
  ones), so someone who left the lab, or whose lab admin membership ended,
  has no say even if the resource still names them.
- Operating (check-in, check-out, complete, no-show, the lab's schedule):
  the lab's admins.
- Cancelling and moving: the booking's user, an admin of the customer
  organisation, or the lab's admins (the service applies the customer's
  cancellation window to the former).
- Rating: the booking's user or an admin of the customer organisation.
- Waiting-list entries: their user and the customer organisation's admins.
- "The booking's user" (and a waiting-list entry's) counts only while they
  are still a member of the customer organisation: someone who left it
  neither sees nor changes the organisation's bookings.
"""

from __future__ import annotations

from booking.authz import Actor, rule

CUSTOMER_KINDS = ("enterprise", "provider")


def _provider_id(reservation) -> int | None:
    resource = reservation.resource
    return resource.provider_id if resource is not None else None


def _named_approver(actor: Actor, resource) -> bool:
    if resource is None or actor.user_id is None:
        return False
    if not actor.member_of(resource.provider_id):
        return False
    return any(a.user_id == actor.user_id for a in resource.approvers)


def _is_owner(actor: Actor, reservation) -> bool:
    return actor.authenticated and (
        (reservation.user_id == actor.user_id and actor.member_of(reservation.customer_org_id))
        or actor.admin_of(reservation.customer_org_id)
    )


def _own_entry(actor: Actor, entry) -> bool:
    return entry.user_id == actor.user_id and actor.member_of(entry.customer_org_id)


@rule("reservation.create")
def create(actor: Actor, customer_org) -> bool:
    if not actor.authenticated or customer_org is None:
        return False
    return any(
        m.org_id == customer_org.id and m.org_kind in CUSTOMER_KINDS for m in actor.memberships
    )


@rule("reservation.view")
def view(actor: Actor, reservation) -> bool:
    if not actor.authenticated:
        return False
    if actor.platform_admin or actor.member_of(reservation.customer_org_id):
        return True
    if actor.lab_admin_of(_provider_id(reservation)):
        return True
    return _named_approver(actor, reservation.resource)


@rule("reservation.decide", sees="reservation.view")
def decide(actor: Actor, reservation) -> bool:
    return actor.lab_admin_of(_provider_id(reservation)) or _named_approver(
        actor, reservation.resource
    )


@rule("reservation.operate", sees="reservation.view")
def operate(actor: Actor, reservation) -> bool:
    return actor.lab_admin_of(_provider_id(reservation))


@rule("reservation.cancel", sees="reservation.view")
def cancel(actor: Actor, reservation) -> bool:
    return _is_owner(actor, reservation) or actor.lab_admin_of(_provider_id(reservation))


@rule("reservation.reschedule", sees="reservation.view")
def reschedule(actor: Actor, reservation) -> bool:
    return _is_owner(actor, reservation) or actor.lab_admin_of(_provider_id(reservation))


@rule("reservation.rate", sees="reservation.view")
def rate(actor: Actor, reservation) -> bool:
    return _is_owner(actor, reservation)


@rule("resource.schedule")
def view_schedule(actor: Actor, provider_id) -> bool:
    return actor.platform_admin or actor.lab_admin_of(provider_id)


@rule("waitlist.view")
def view_waitlist_entry(actor: Actor, entry) -> bool:
    return actor.authenticated and (
        _own_entry(actor, entry) or actor.admin_of(entry.customer_org_id) or actor.platform_admin
    )


@rule("waitlist.respond", sees="waitlist.view")
def respond_to_offer(actor: Actor, entry) -> bool:
    return actor.authenticated and (
        _own_entry(actor, entry) or actor.admin_of(entry.customer_org_id)
    )
