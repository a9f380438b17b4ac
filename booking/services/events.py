"""Domain events inside one transaction.

A service that changes something others care about publishes an event
(``publish(session, "reservation.approved", reservation, actor=actor)``);
subscribers (notifications, feeds, ...) run at once, in the same session and
transaction, so what they write commits or rolls back with the change itself
and nothing is sent for a change that did not happen. Mail is not sent here:
subscribers write outbox rows, which the scheduler's mailer delivers after
commit.

Event names, by area (add yours here with what the payload is). Every one
is published by the service that made the change, after its audit event:

- ``reservation.requested | approved | rejected | cancelled | expired |
  no_show | checked_in | checked_out | completed`` — the Reservation
  (``approved`` with ``automatic=True`` where no approval was needed);
  ``reservation.rescheduled`` — the Reservation, with ``previous_start``
  and ``previous_end``; ``reservation.waitlist_offered`` — the
  WaitlistEntry. Each tells the booking's user (notifications); ``no_show``
  whether the lab marked it or the scheduler did after the grace time.
- ``training.granted`` — the TrainingRecord, on a new grant and on the
  renewal of a current one (audited as ``training.grant`` or
  ``training.renew``); ``training.revoked`` — the TrainingRecord, with the
  lab's ``reason`` (or None) (audited as ``training.revoke``). Nobody
  subscribes yet: the trainee reads the register; the hook is there for a
  notice or a feed.
- ``resource.created`` — the Resource; ``resource.updated`` — the Resource,
  with ``changed`` (the sorted field names); ``resource.prices_changed`` —
  the Resource; ``resource.blackout_added`` — the Blackout, with
  ``reservations`` (the live bookings it overlaps);
  ``resource.blackout_removed`` — the Resource, with ``blackout_id``;
  ``calendar.changed`` — the year (int) whose holidays or working days
  changed.
- ``voucher.issued | expired`` — the Voucher; ``voucher.expiring`` — the
  Voucher, with ``days_left`` and ``balance``;
  ``claim.audited | paid`` — the Claim.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from booking.authz import Actor

Handler = Callable[..., None]
_subscribers: dict[str, list[Handler]] = defaultdict(list)


def subscribe(*names: str) -> Callable[[Handler], Handler]:
    """Register ``handler(session, name, subject, actor=None, **data)`` for events."""

    def register(handler: Handler) -> Handler:
        for name in names:
            if handler not in _subscribers[name]:
                _subscribers[name].append(handler)
        return handler

    return register


def publish(
    session: Session, name: str, subject: Any, *, actor: Actor | None = None, **data: Any
) -> None:
    for handler in list(_subscribers.get(name, ())) + list(_subscribers.get("*", ())):
        handler(session, name, subject, actor=actor, **data)
