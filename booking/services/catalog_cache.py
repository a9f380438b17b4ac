"""The catalog's resources as lists and the API show them, kept in this
process between requests.

Reading the catalog is most of the platform's traffic (searches, a
resource's page and JSON) and the catalog changes a few times a day, so each
process keeps the resources it has read (``ListedResource``) and their JSON,
and uses them while both of these hold:

- the catalog's revision is the one they were read at: the database gives
  it a new random number in every transaction that changes a resource, its
  category, opening hours, price rules or photos, or a lab's name (triggers:
  ``booking.models.catalog_revision``), so no writer can forget it;
- no price rule has begun or ended since: the prices in effect are part of
  what is kept, so it is valid only between the price boundaries around the
  time it was read.

Each use reads the revision (one primary-key read); a new revision or a
crossed boundary empties the cache. A search still finds its resources in
the database every time (what matches, in which order, how many): only
reading the page's resources and building their JSON is saved.

Reading the revision before the resources keeps this exact: a resource read
after the revision is at least as new as the revision says (a change is
committed with its revision), and a change committed in between shows as a
new revision on the next use.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, union_all
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.models.catalog import PriceRule
from booking.models.catalog_revision import CatalogRevision

_REVISION = select(CatalogRevision.revision).where(CatalogRevision.id == 1)


def _boundaries_statement():
    """The last time a price rule began or ended at or before ``:now``, and
    the next time one will after it."""
    at = bindparam("now", type_=PriceRule.__table__.c.effective_from.type)
    rules = PriceRule.__table__.c
    before = union_all(
        select(func.max(rules.effective_from).label("t")).where(rules.effective_from <= at),
        select(func.max(rules.effective_until).label("t")).where(rules.effective_until <= at),
    ).subquery()
    after = union_all(
        select(func.min(rules.effective_from).label("t")).where(rules.effective_from > at),
        select(func.min(rules.effective_until).label("t")).where(rules.effective_until > at),
    ).subquery()
    return select(
        select(func.max(before.c.t)).scalar_subquery(),
        select(func.min(after.c.t)).scalar_subquery(),
    )


_BOUNDARIES = _boundaries_statement()


class CatalogCache:
    """Resources by id and their JSON by (id, key), at most ``size`` of
    each, the least recently used dropped first; safe across threads."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[int, Any] = OrderedDict()
        self._json: OrderedDict[tuple, dict] = OrderedDict()
        self._revision: int | None = None
        self._since: datetime | None = None
        self._until: datetime | None = None
        self.hits = self.misses = 0  # resources found kept, and loaded (for diagnosis)

    def _current(self, session: Session) -> bool:
        """Empty the cache if the catalog has changed or a price rule has
        begun or ended since it was filled; False if nothing may be kept (no
        revision row: a table emptied by hand)."""
        connection = session.connection()
        revision = connection.execute(_REVISION).scalar()
        now = clock.now()
        with self._lock:
            if (
                revision is not None
                and revision == self._revision
                and (self._since is None or self._since <= now)
                and (self._until is None or now < self._until)
            ):
                return True
        since, until = (None, None)
        if revision is not None:
            since, until = connection.execute(_BOUNDARIES, {"now": now}).one()
        with self._lock:
            self._items.clear()
            self._json.clear()
            self._revision, self._since, self._until = revision, since, until
        return revision is not None

    def resources(
        self, session: Session, ids: list[int], load: Callable[[Session, list[int]], list]
    ) -> list:
        """The resources ``ids`` in that order (unknown ones left out): kept
        ones, the rest by ``load(session, missing_ids)`` and kept."""
        if not ids:
            return []
        if not self._current(session):
            return load(session, ids)
        found: dict[int, Any] = {}
        with self._lock:
            for resource_id in ids:
                item = self._items.get(resource_id)
                if item is not None:
                    self._items.move_to_end(resource_id)
                    found[resource_id] = item
            revision = self._revision
        self.hits += len(found)
        missing = [i for i in ids if i not in found]
        if missing:
            self.misses += len(missing)
            loaded = load(session, missing)
            with self._lock:
                for item in loaded:
                    found[item.id] = item
                    if self._revision == revision:
                        self._items[item.id] = item
                self._trim(self._items)
        return [found[i] for i in ids if i in found]

    def json(self, item, key: Any, build: Callable[[Any], dict]) -> dict:
        """``build(item)``, kept by the item's id and ``key`` (what else
        shapes it) as long as the item itself is kept. Read only."""
        with self._lock:
            kept = self._items.get(item.id) is item
            found = self._json.get((item.id, key)) if kept else None
            if found is not None:
                self._json.move_to_end((item.id, key))
                return found
        made = build(item)
        if kept:
            with self._lock:
                if self._items.get(item.id) is item:
                    self._json[(item.id, key)] = made
                    self._trim(self._json)
        return made

    def _trim(self, entries: OrderedDict) -> None:
        while len(entries) > self.size:
            entries.popitem(last=False)


#: This process's cache.
CACHE = CatalogCache()
