"""The one helper that records an audit event (who, what, which record, when,
from where, before and after). Every service that changes state calls it."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, inspect
from sqlalchemy.orm import Session

from booking.authz import Actor
from booking.domain import clock
from booking.models.audit import AuditEvent

SECRET_FIELDS = {"password_hash", "token_hash"}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def snapshot(obj: Any, fields: list[str] | None = None) -> dict[str, Any]:
    """The column values of a model instance, JSON-ready, secrets left out."""
    mapper = inspect(obj).mapper
    names = fields or [c.key for c in mapper.column_attrs]
    return {n: _plain(getattr(obj, n)) for n in names if n not in SECRET_FIELDS}


_INSERT = insert(AuditEvent.__table__)


def record(
    session: Session,
    actor: Actor | None,
    action: str,
    target: Any,
    *,
    before: dict | None = None,
    after: dict | None = None,
) -> None:
    """Write an audit event for ``action`` on ``target`` (a model instance,
    or a ``(type, id)`` pair) in the session's transaction. ``after``
    defaults to the target's current state. The row is inserted at once by
    a statement built once (every change writes one; the ORM's unit of work
    cost twice the insert)."""
    if isinstance(target, tuple):
        target_type, target_id = target
    else:
        if inspect(target).transient or inspect(target).pending:
            session.flush()
        target_type, target_id = target.__tablename__, target.id
        if after is None:
            after = snapshot(target)
    session.connection().execute(
        _INSERT,
        {
            "at": clock.now(),
            "actor_user_id": actor.user_id if actor else None,
            "actor_ip": actor.ip if actor else None,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "before": _plain(before) if before is not None else None,
            "after": _plain(after) if after is not None else None,
        },
    )
