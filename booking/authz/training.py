"""Authorization rules of training and qualification (培训/上机资格).

- A lab's training register is the lab's own business: its admins read it,
  grant and revoke. Anyone outside the lab is answered 404 (the visibility
  rule is the lab's staff view), a member of the lab who is not its admin 403.
- Granting training on a resource: the admins of the lab that owns it. On
  another lab's resource the answer is 404, as for any change to it.
- Granting training on a category: the admins of the lab granting it (the
  service checks that the lab owns resources of the category); the grant
  qualifies on that lab's resources only.
- A training record is seen by the trained user, by the admins of the lab
  that granted it and by platform admins; revoking is for the lab's admins.

The objects: a resource, a provider id, or a ``TrainingScope`` (the record's
user and lab, resolved by the service).
"""

from __future__ import annotations

from booking.authz import Actor, rule


@rule("training.register", sees="provider.staff_view")
def read_register(actor: Actor, provider_id) -> bool:
    return actor.lab_admin_of(provider_id)


@rule("training.grant", sees="resource.staff_view")
def grant_on_resource(actor: Actor, resource) -> bool:
    return actor.lab_admin_of(resource.provider_id)


@rule("training.grant_category", sees="provider.staff_view")
def grant_on_category(actor: Actor, provider_id) -> bool:
    return actor.lab_admin_of(provider_id)


@rule("training.view")
def view_record(actor: Actor, scope) -> bool:
    if not actor.authenticated:
        return False
    return (
        actor.platform_admin
        or scope.user_id == actor.user_id
        or actor.lab_admin_of(scope.provider_id)
    )


@rule("training.revoke", sees="training.view")
def revoke_record(actor: Actor, scope) -> bool:
    return actor.lab_admin_of(scope.provider_id)
