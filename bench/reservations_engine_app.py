"""The platform's WSGI app with the other areas' booking side effects
switched off: no domain-event subscribers (notifications: inbox rows, mails
with .ics invitations) and no calendar-feed refresh at commit. Used by
``reservations_create.py --engine-only`` to show what the reservation
engine itself costs (authentication, rules, lock, conflict check, savepoint,
insert, audit), beside the full request. Never for serving users.
"""

from __future__ import annotations

from booking import create_app
from booking.extensions import db
from booking.services import events

app = create_app()
events._subscribers.clear()

try:  # the feeds area keeps VEVENT texts fresh at commit; skip it here
    from booking.services.feeds import SKIP_KEY
except ImportError:  # pragma: no cover - feeds not present
    SKIP_KEY = None


@app.before_request
def _skip_feed_refresh() -> None:
    if SKIP_KEY:
        db.session.info[SKIP_KEY] = True
