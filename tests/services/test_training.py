"""Training and qualification: grant, renew, revoke, expiry, the register,
and the booking rule that asks for it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from booking.domain.errors import (
    Forbidden,
    InvalidTransition,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from booking.models.audit import AuditEvent
from booking.models.catalog import TrainingRecord
from booking.services import reservations as booking
from booking.services import training
from tests.factories.accounts import actor_of, create_user

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # a Tuesday


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=SH)


def book(world, user=None, day=2):
    return booking.create_reservation(
        world.session,
        world.actor(user),
        {
            "resource_id": world.resource.id,
            "start": at(day, 10),
            "end": at(day, 12),
            "purpose": "x",
        },
    )


def audit_actions(session) -> list[str]:
    return [e.action for e in session.query(AuditEvent).order_by(AuditEvent.id)]


def test_an_untrained_user_is_refused_and_accepted_after_a_grant(booking_world, session):
    world = booking_world(requires_training=True)
    with pytest.raises(RuleViolation) as refused:
        book(world)
    assert refused.value.rule == "training_required"
    record = training.grant_training(
        session,
        world.lab_actor,
        {"email": world.customer_user.email, "resource_id": world.resource.id},
    )
    assert (record.granted_by_id, record.provider_id) == (world.lab_admin.id, world.provider.id)
    assert record.granted_at == NOW
    assert book(world).status == "requested"
    assert "training.grant" in audit_actions(session)


def test_revoking_ends_the_qualification_and_is_audited(booking_world, session):
    world = booking_world(requires_training=True)
    record = training.grant_training(
        session,
        world.lab_actor,
        {"user_id": world.customer_user.id, "resource_id": world.resource.id},
    )
    training.revoke_training(session, world.lab_actor, record.id, "操作不规范")
    assert training.state_of(record) == "revoked"
    assert not training.has_training(session, world.customer_user.id, world.resource)
    with pytest.raises(RuleViolation):
        book(world)
    event = session.query(AuditEvent).filter_by(action="training.revoke").one()
    assert event.after["reason"] == "操作不规范"
    assert event.before["revoked_at"] is None
    with pytest.raises(InvalidTransition):
        training.revoke_training(session, world.lab_actor, record.id)


def test_a_training_expires_at_its_end(booking_world, session, frozen):
    world = booking_world(requires_training=True)
    record = training.grant_training(
        session,
        world.lab_actor,
        {
            "user_id": world.customer_user.id,
            "resource_id": world.resource.id,
            "valid_until": at(10, 0),
        },
    )
    assert training.has_training(session, world.customer_user.id, world.resource)
    frozen.move_to(at(10, 0) - timedelta(seconds=1))
    assert training.has_training(session, world.customer_user.id, world.resource)
    frozen.move_to(at(10, 0))
    assert not training.has_training(session, world.customer_user.id, world.resource)
    assert training.state_of(record) == "expired"
    with pytest.raises(RuleViolation) as refused:
        book(world, day=14)
    assert refused.value.rule == "training_required"
    entries, _ = training.list_register(
        session, world.lab_actor, training.RegisterFilters(state="expired")
    )
    assert [e.record.id for e in entries] == [record.id]
    current, _ = training.list_register(
        session, world.lab_actor, training.RegisterFilters(state="current")
    )
    assert current == []


def test_granting_again_renews_the_current_record(booking_world, session, frozen):
    world = booking_world()
    first = training.grant_training(
        session,
        world.lab_actor,
        {
            "user_id": world.customer_user.id,
            "resource_id": world.resource.id,
            "valid_until": at(10, 0),
        },
    )
    frozen.shift(timedelta(days=1))
    again = training.grant_training(
        session,
        world.lab_actor,
        {
            "user_id": world.customer_user.id,
            "resource_id": world.resource.id,
            "valid_until": at(31, 0),
        },
    )
    assert again.id == first.id
    assert again.valid_until == at(31, 0)
    assert session.query(TrainingRecord).count() == 1
    assert audit_actions(session)[-2:] == ["training.grant", "training.renew"]


def test_a_revoked_training_stays_as_history_when_granted_anew(booking_world, session):
    world = booking_world()
    data = {"user_id": world.customer_user.id, "resource_id": world.resource.id}
    old = training.grant_training(session, world.lab_actor, data)
    training.revoke_training(session, world.lab_actor, old.id)
    new = training.grant_training(session, world.lab_actor, data)
    assert new.id != old.id
    entries, total = training.list_register(session, world.lab_actor, training.RegisterFilters())
    assert total == 2
    assert {e.state for e in entries} == {"current", "revoked"}


def test_a_category_grant_qualifies_on_the_granting_labs_resources_only(
    booking_world, make_resource, session
):
    ours = booking_world(requires_training=True)
    category = ours.resource.category
    theirs = booking_world(requires_training=True, category=category)
    sibling = make_resource(ours.provider, category=category, requires_training=True)
    record = training.grant_training(
        session, ours.lab_actor, {"user_id": ours.customer_user.id, "category_id": category.id}
    )
    assert record.provider_id == ours.provider.id and record.resource_id is None
    user = ours.customer_user.id
    assert training.has_training(session, user, ours.resource)
    assert training.has_training(session, user, sibling)
    assert not training.has_training(session, user, theirs.resource)


def test_a_grant_of_no_lab_in_particular_still_counts_everywhere(
    booking_world, make_training, session
):
    """Records from before grants named their lab keep their old meaning."""
    world = booking_world(requires_training=True)
    make_training(world.customer_user, category=world.resource.category, provider=None)
    assert training.has_training(session, world.customer_user.id, world.resource)


def test_a_parent_category_grant_covers_its_children(booking_world, make_category, session):
    parent = make_category()
    child = make_category(parent_id=parent.id)
    world = booking_world(requires_training=True, category=child)
    training.grant_training(
        session, world.lab_actor, {"user_id": world.customer_user.id, "category_id": parent.id}
    )
    assert training.has_training(session, world.customer_user.id, world.resource)


def test_a_category_the_lab_has_no_resources_in_is_refused(booking_world, make_category, session):
    world = booking_world()
    elsewhere = make_category()
    with pytest.raises(RuleViolation) as refused:
        training.grant_training(
            session,
            world.lab_actor,
            {"user_id": world.customer_user.id, "category_id": elsewhere.id},
        )
    assert (refused.value.rule, refused.value.field) == ("category_not_offered", "category_id")
    assert session.query(TrainingRecord).count() == 0


def test_granting_on_another_labs_resource_is_not_found(booking_world, session):
    ours = booking_world()
    theirs = booking_world()
    with pytest.raises(NotFound):
        training.grant_training(
            session,
            ours.lab_actor,
            {"user_id": ours.customer_user.id, "resource_id": theirs.resource.id},
        )
    member = create_user(session, ours.provider, "member")
    with pytest.raises(Forbidden):
        training.grant_training(
            session,
            actor_of(session, member),
            {"user_id": ours.customer_user.id, "resource_id": ours.resource.id},
        )
    with pytest.raises(NotFound):  # a customer is outside the lab
        training.grant_training(
            session,
            ours.customer_actor,
            {"user_id": ours.customer_user.id, "resource_id": ours.resource.id},
        )
    # A category grant for another lab is refused the same way.
    with pytest.raises(NotFound):
        training.grant_training(
            session,
            ours.lab_actor,
            {
                "user_id": ours.customer_user.id,
                "category_id": theirs.resource.category_id,
                "provider_id": theirs.provider.id,
            },
        )
    assert session.query(TrainingRecord).count() == 0
    assert not [a for a in audit_actions(session) if a.startswith("training.")]


@pytest.mark.parametrize(
    "data,field",
    [
        ({"email": "nobody@example.cn"}, "email"),
        ({"valid_until": datetime(2026, 11, 30, tzinfo=SH)}, "valid_until"),
        ({"category_id": 1}, "resource_id"),
    ],
)
def test_bad_grants_say_which_field(booking_world, session, data, field):
    world = booking_world()
    grant = {"user_id": world.customer_user.id, "resource_id": world.resource.id}
    if "email" in data:
        grant.pop("user_id")
    grant.update(data)
    with pytest.raises(ValidationFailed) as refused:
        training.grant_training(session, world.lab_actor, grant)
    assert field in refused.value.fields
    assert session.query(TrainingRecord).count() == 0


def test_the_register_is_per_lab(booking_world, session):
    ours = booking_world()
    theirs = booking_world()
    mine = training.grant_training(
        session, ours.lab_actor, {"user_id": ours.customer_user.id, "resource_id": ours.resource.id}
    )
    training.grant_training(
        session,
        theirs.lab_actor,
        {"user_id": ours.customer_user.id, "resource_id": theirs.resource.id},
    )
    entries, total = training.list_register(session, ours.lab_actor, training.RegisterFilters())
    assert total == 1 and entries[0].record.id == mine.id
    assert entries[0].user.id == ours.customer_user.id
    assert entries[0].granted_by.id == ours.lab_admin.id
    assert entries[0].resource.id == ours.resource.id
    with pytest.raises(NotFound):
        training.list_register(
            session, theirs.lab_actor, training.RegisterFilters(provider_id=ours.provider.id)
        )
    with pytest.raises(NotFound):
        training.revoke_training(session, theirs.lab_actor, mine.id)
    # The trainee sees their own records, of every lab.
    own = training.my_trainings(session, ours.customer_actor)
    assert len(own) == 2
    assert training.get_record(session, ours.customer_actor, mine.id) is mine


def test_the_register_finds_a_trainee_by_name_or_email(booking_world, session):
    world = booking_world()
    _, other = world.another_customer()
    for user in (world.customer_user, other):
        training.grant_training(
            session, world.lab_actor, {"user_id": user.id, "resource_id": world.resource.id}
        )
    entries, _ = training.list_register(
        session, world.lab_actor, training.RegisterFilters(q=other.email.upper())
    )
    assert [e.user.id for e in entries] == [other.id]
