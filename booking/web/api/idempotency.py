"""``Idempotency-Key`` on creating POSTs (API.md): the same key and body within
24 hours answer the first answer again and create nothing more.

The kept answer is written in the same transaction as what the request
created, so either both exist or neither; two racing requests with one key
collide on the unique key at commit, and the loser answers the winner's
answer.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import timedelta

from flask import current_app, jsonify, request
from sqlalchemy import select

from booking.domain import clock
from booking.domain.errors import N_, RuleViolation
from booking.extensions import db
from booking.models.idempotency import IdempotencyRecord
from booking.web.auth import current_actor

HEADER = "Idempotency-Key"


def _find(user_id: int, key: str) -> IdempotencyRecord | None:
    since = clock.now() - timedelta(hours=current_app.config["IDEMPOTENCY_HOURS"])
    return db.session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at > since,
        )
    )


def _replay(record: IdempotencyRecord, endpoint: str, body_hash: str):
    if record.endpoint != endpoint or record.body_hash != body_hash:
        raise RuleViolation(
            "idempotency_key_reused",
            N_("This Idempotency-Key was used with another request."),
            field=HEADER,
        )
    response = jsonify(record.response)
    response.status_code = record.status_code
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(HEADER)
        actor = current_actor()
        if not key or not actor.authenticated:
            return view(*args, **kwargs)
        key = key.strip()[:200]
        endpoint = f"{request.method} {request.path}"
        body_hash = hashlib.sha256(request.get_data()).hexdigest()
        existing = _find(actor.user_id, key)
        if existing is not None:
            return _replay(existing, endpoint, body_hash)
        response = current_app.make_response(view(*args, **kwargs))
        if response.status_code < 300 and response.is_json:
            db.session.query(IdempotencyRecord).filter(
                IdempotencyRecord.user_id == actor.user_id,
                IdempotencyRecord.key == key,
            ).delete()  # an expired record of the same key
            db.session.add(
                IdempotencyRecord(
                    user_id=actor.user_id,
                    key=key,
                    endpoint=endpoint,
                    body_hash=body_hash,
                    status_code=response.status_code,
                    response=response.get_json(),
                    created_at=clock.now(),
                )
            )

            def replay_after_race():
                db.session.rollback()
                winner = _find(actor.user_id, key)
                return _replay(winner, endpoint, body_hash)

            response.idempotency_replay = replay_after_race
        return response

    return wrapper
