"""Domain events inside one transaction.

A service that changes something others care about publishes an event
(``publish(session, "reservation.approved", reservation, actor=actor)``);
subscribers (notifications, feeds, ...) run at once, in the same session and
transaction, so what they write commits or rolls back with the change itself
and nothing is sent for a change that did not happen. Mail is not sent here:
subscribers write outbox rows, which the scheduler's mailer delivers after
commit.

Event names, by area (add yours here with what the payload is):

- ``reservation.requested | approved | rejected | cancelled | expired |
  no_show | checked_in | checked_out | completed | rescheduled`` — the
  Reservation; ``reservation.waitlist_offered`` — the WaitlistEntry.
- ``voucher.issued | expiring | expired`` — the Voucher;
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
