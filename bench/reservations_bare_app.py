"""The yardstick of the booking benchmark: a bare Flask endpoint that does
nothing but one INSERT into ``reservations`` under the same exclusion
constraint (``ex_reservations_no_overlap``), with psycopg and one connection
per worker. No authentication, no rules, no ORM, no audit: what a booking
costs at the least on this machine (one commit).

``gunicorn -w 4 -k sync bench.reservations_bare_app:app`` with
``DATABASE_URL``, ``BARE_CUSTOMER_ORG_ID`` and ``BARE_USER_ID`` set.
"""

from __future__ import annotations

import os

import psycopg
from flask import Flask, jsonify, request

app = Flask(__name__)
_URL = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
_ORG = int(os.environ.get("BARE_CUSTOMER_ORG_ID", "1"))
_USER = int(os.environ.get("BARE_USER_ID", "1"))
_connection: psycopg.Connection | None = None

INSERT = """
INSERT INTO reservations (
    resource_id, customer_org_id, user_id, start_at, end_at, busy_start, busy_end,
    exclusive, units, status, purpose, with_operator, other_public_subsidy,
    customer_class, price_snapshot, estimated_cost, voucher_hold, sequence,
    created_at, updated_at
) VALUES (
    %(resource_id)s, %(org)s, %(user)s, %(start)s::timestamptz, %(end)s::timestamptz,
    %(start)s::timestamptz, %(end)s::timestamptz, true, 1, 'requested', %(purpose)s,
    false, false, 'enterprise', '{}', 0, 0, 0, now(), now()
) RETURNING id
"""


def connection() -> psycopg.Connection:
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(_URL)
    return _connection


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/bare")
def bare_insert():
    data = request.get_json()
    conn = connection()
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                INSERT,
                {
                    "resource_id": data["resource_id"],
                    "org": _ORG,
                    "user": _USER,
                    "start": data["start"],
                    "end": data["end"],
                    "purpose": data.get("purpose", ""),
                },
            )
            new_id = cursor.fetchone()[0]
        conn.commit()
    except psycopg.errors.ExclusionViolation:
        conn.rollback()
        return jsonify(error={"code": "conflict"}), 409
    return jsonify(id=new_id), 201
