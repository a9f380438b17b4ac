"""The ceiling of the load benchmark: a bare Flask app on the same database,
served by the same gunicorn settings, with the two cheapest things a web
request against this schema can do:

- ``GET /read/<id>``: one primary-key read of ``resources``;
- ``POST /write``: one INSERT into ``reservations`` under the exclusion
  constraint ``ex_reservations_no_overlap`` (409 when it refuses), one commit.

No authentication, no rules, no ORM, no audit: psycopg and one connection per
worker. ``bench/load.py`` drives it with the same clients and the same
proportions of reads and writes as the platform, and prints every figure of
the platform also as a ratio to these.

    DATABASE_URL=postgresql://... BARE_ORG_ID=.. BARE_USER_ID=.. \\
        gunicorn -w 4 -k sync bench.bare_app:app
"""

from __future__ import annotations

import os

import psycopg
from flask import Flask, jsonify, request

app = Flask(__name__)
_URL = os.environ.get("DATABASE_URL", "").replace("postgresql+psycopg://", "postgresql://")
_ORG = int(os.environ.get("BARE_ORG_ID", "1"))
_USER = int(os.environ.get("BARE_USER_ID", "1"))
#: Rows this app writes carry this purpose, so the benchmark can remove them.
PURPOSE = "bare-bench"
_connection: psycopg.Connection | None = None

READ = "SELECT id, kind, name_zh, name_en, capacity, status FROM resources WHERE id = %s"
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


@app.get("/read/<int:resource_id>")
def read(resource_id: int):
    conn = connection()
    with conn.cursor() as cursor:
        row = cursor.execute(READ, (resource_id,)).fetchone()
    conn.rollback()
    if row is None:
        return jsonify(error={"code": "not_found"}), 404
    keys = ("id", "kind", "name_zh", "name_en", "capacity", "status")
    return jsonify(dict(zip(keys, row, strict=True)))


@app.post("/write")
def write():
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
                    "purpose": PURPOSE,
                },
            )
            new_id = cursor.fetchone()[0]
        conn.commit()
    except psycopg.errors.ExclusionViolation:
        conn.rollback()
        return jsonify(error={"code": "conflict"}), 409
    return jsonify(id=new_id), 201
