"""Authorization rules of the catalog area.

- Everyone, signed in or not, sees resources, their prices, hours and
  blackouts: prices are public by policy. Retired resources stay readable by
  id (reports link to them) but are not listed.
- Only the admins of the owning provider (lab admins) create and change a
  resource and what hangs on it (hours, prices, blackouts, photos). To anyone
  outside the lab a change is answered 404, as if the resource did not exist
  for them: the visibility rule of a change is ``resource.staff_view`` (the
  lab's own people), not the public ``resource.view``. A member of the lab who
  is not its admin gets 403.
- The platform admin keeps the national calendar (holidays and adjusted
  working days a library does not know yet).
"""

from __future__ import annotations

from booking.authz import Actor, rule


def _provider_id(obj) -> int | None:
    if obj is None:
        return None
    if isinstance(obj, int):
        return obj
    return getattr(obj, "provider_id", None) or getattr(obj, "id", None)


@rule("resource.view")
def view_resource(actor: Actor, resource) -> bool:
    return True


@rule("resource.staff_view")
def staff_view_resource(actor: Actor, resource) -> bool:
    """The owning lab's own people see a resource's management side."""
    return actor.member_of(resource.provider_id)


@rule("resource.update", sees="resource.staff_view")
def update_resource(actor: Actor, resource) -> bool:
    return actor.lab_admin_of(resource.provider_id)


@rule("provider.staff_view")
def staff_view_provider(actor: Actor, provider) -> bool:
    return actor.member_of(_provider_id(provider))


@rule("resource.create", sees="provider.staff_view")
def create_resource(actor: Actor, provider) -> bool:
    """``provider``: the provider organisation (or its id) the resource is for."""
    return actor.lab_admin_of(_provider_id(provider))


@rule("calendar.manage")
def manage_calendar(actor: Actor, _obj=None) -> bool:
    return actor.platform_admin
