"""Property-based: whatever sequence of create, cancel, reschedule and
complete customers and labs perform (refused ones included), no two live
bookings of an exclusive resource overlap, and a pooled resource never has
more units in use than its capacity."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from booking.domain.errors import DomainError
from booking.domain.spans import usage_steps
from booking.services import reservations as service
from tests.factories.accounts import actor_of, create_org, create_user
from tests.factories.catalog import create_resource

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 12, 1, 6, 0, tzinfo=SH)
BASE = datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # bookings lie in the 12 hours from here
CAPACITY = 5

customers = st.integers(0, 2)
slots = st.integers(0, 11)
lengths = st.integers(1, 4)
picks = st.integers(0, 30)

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("create"), st.integers(0, 1), customers, slots, lengths, st.integers(1, 4)
        ),
        st.tuples(st.just("cancel"), picks, st.booleans()),
        st.tuples(st.just("reschedule"), picks, slots, lengths),
        st.tuples(st.just("approve"), picks),
        st.tuples(st.just("complete"), picks),
        st.tuples(st.just("tick"), st.integers(1, 3)),
    ),
    min_size=1,
    max_size=25,
)


def live(session, resource_id):
    return [
        (_utc(a), _utc(b), u)
        for a, b, u in session.execute(
            text(
                "SELECT busy_start, busy_end, units FROM reservations WHERE resource_id = :r "
                "AND status IN ('requested', 'approved', 'in_use')"
            ),
            {"r": resource_id},
        )
    ]


def _utc(value):
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def assert_invariants(session, exclusive_id, pooled_id):
    rows = sorted(live(session, exclusive_id))
    for (_s1, e1, _u1), (s2, _e2, _u2) in itertools.pairwise(rows):
        assert e1 <= s2, rows
    steps = usage_steps(live(session, pooled_id))
    assert max((s.units for s in steps), default=0) <= CAPACITY


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_random_sequences_never_double_book(db, session, ops):
    provider = create_org(session, "provider")
    lab = actor_of(session, create_user(session, provider, "admin"))
    people = []
    for _ in range(3):
        org = create_org(session, "enterprise")
        people.append(actor_of(session, create_user(session, org)))
    resources = [
        create_resource(
            session, provider, hours=[], closed_on_holidays=False, buffer_after_minutes=30
        ),
        create_resource(
            session,
            provider,
            "hpc",
            capacity=CAPACITY,
            hours=[],
            closed_on_holidays=False,
            requires_approval=False,
        ),
    ]
    ids = [r.id for r in resources]
    session.commit()
    made: list[int] = []
    with time_machine.travel(START, tick=False) as clock:
        for op in ops:
            try:
                kind = op[0]
                if kind == "create":
                    _k, which, who, slot, length, units = op
                    start = BASE + timedelta(hours=slot)
                    data = {
                        "resource_id": ids[which],
                        "start": start,
                        "end": start + timedelta(hours=length),
                        "purpose": "p",
                        "units": units if which == 1 else None,
                    }
                    made.append(service.create_reservation(session, people[who], data).id)
                elif kind == "tick":
                    clock.shift(timedelta(hours=op[1]))
                elif made:
                    target = made[op[1] % len(made)]
                    if kind == "cancel":
                        service.cancel(
                            session, lab, target, "调整", "following" if op[2] else "this"
                        )
                    elif kind == "reschedule":
                        start = BASE + timedelta(hours=op[2])
                        service.reschedule(
                            session, lab, target, start, start + timedelta(hours=op[3])
                        )
                    elif kind == "approve":
                        service.approve(session, lab, target)
                    elif kind == "complete":
                        service.complete(session, lab, target, {})
                session.commit()
                event(f"{op[0]} done")
            except DomainError as refused:
                session.rollback()
                event(f"{op[0]} refused: {refused.code}")
            assert_invariants(session, *ids)
            session.rollback()
