"""Two deciders racing over the same batch through the HTTP API: every
request is decided exactly once, the other decider is told ``invalid_state``
for it, and no request is both approved and rejected.

The server is werkzeug's threaded server on 127.0.0.1 serving the test app
(SQLite, or PostgreSQL with TEST_DATABASE_URL); a barrier releases the two
batches together.
"""

from __future__ import annotations

import http.client
import json
import threading
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from booking.models.audit import AuditEvent
from booking.models.reservations import Reservation
from booking.services import approvals
from booking.services import reservations as booking
from tests.factories.accounts import actor_of, create_org, create_user, token_headers
from tests.factories.catalog import create_resource

SH = ZoneInfo("Asia/Shanghai")
REQUESTS = 12


def post_together(port: int, calls: list[tuple[dict, dict]]) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index: int) -> None:
        body, headers = calls[index]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        barrier.wait()
        try:
            connection.request(
                "POST",
                "/api/v1/approvals/decide",
                body=json.dumps(body),
                headers={**headers, "Content-Type": "application/json"},
            )
            answer = connection.getresponse()
            results[index] = (answer.status, json.loads(answer.read() or b"{}"))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_two_deciders_never_decide_one_request_twice(live_server, session):
    provider = create_org(session, "provider")
    admin = create_user(session, provider, "admin")
    technician = create_user(session, provider, "member")
    resource = create_resource(session, provider, hours=[], closed_on_holidays=False)
    approvals.name_approver(session, actor_of(session, admin), resource.id, user_id=technician.id)
    customer_org = create_org(session, "enterprise")
    customer = actor_of(session, create_user(session, customer_org))
    day = datetime.now(SH).date() + timedelta(days=3)
    ids = []
    for hour in range(REQUESTS):
        start = datetime.combine(day, time(hour), tzinfo=SH)
        made = booking.create_reservation(
            session,
            customer,
            {
                "resource_id": resource.id,
                "start": start,
                "end": start + timedelta(hours=1),
                "purpose": "race",
            },
        )
        ids.append(made.id)
    session.commit()
    admin_headers = token_headers(session, admin)
    technician_headers = token_headers(session, technician)

    results = post_together(
        live_server,
        [
            ({"approve": ids}, admin_headers),
            ({"reject": [{"id": i, "reason": "时段冲突"} for i in ids]}, technician_headers),
        ],
    )

    assert [status for status, _ in results] == [200, 200], results
    approved = {r["id"] for r in results[0][1]["results"] if r["outcome"] == "approved"}
    rejected = {r["id"] for r in results[1][1]["results"] if r["outcome"] == "rejected"}
    refused = [r for _, body in results for r in body["results"] if r["outcome"] == "refused"]
    assert approved | rejected == set(ids)
    assert not approved & rejected
    assert len(refused) == REQUESTS
    assert {r["error"]["code"] for r in refused} == {"invalid_state"}

    session.expire_all()
    rows = session.query(Reservation).filter(Reservation.id.in_(ids)).all()
    assert {r.id for r in rows if r.status == "approved"} == approved
    assert {r.id for r in rows if r.status == "rejected"} == rejected
    decisions = (
        session.query(AuditEvent)
        .filter(AuditEvent.action.in_(["reservation.approve", "reservation.reject"]))
        .count()
    )
    assert decisions == REQUESTS
