"""Authorization rules of the approvals area: the approval queue and the
delegation of decisions (a resource's named approvers).

- The queue is for lab people: a lab's admins decide its requests, and a
  member a resource names as approver decides that resource's. The queue
  lists only what its reader may decide (``reservation.decide``, in the
  reservations rules, is the gate of every decision). Customers who belong
  to no lab are refused it (403).
- A resource's approvers are seen by the lab's own people and named only by
  the lab's admins; anyone outside the lab gets 404, as for every change of
  another lab's resource. The service checks that the person named belongs
  to the lab.
"""

from __future__ import annotations

from booking.authz import Actor, rule


@rule("approval.queue")
def read_queue(actor: Actor, _obj=None) -> bool:
    return actor.authenticated and bool(actor.org_ids("provider"))


@rule("resource.approvers.view", sees="resource.staff_view")
def view_approvers(actor: Actor, resource) -> bool:
    return actor.member_of(resource.provider_id)


@rule("resource.approvers.manage", sees="resource.staff_view")
def manage_approvers(actor: Actor, resource) -> bool:
    return actor.lab_admin_of(resource.provider_id)
