"""The feeds service: subscriptions and their rules, and the kept event
texts that stay fresh whoever changes a booking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from booking.domain.errors import Forbidden, NotFound, RuleViolation, ValidationFailed
from booking.models.audit import AuditEvent
from booking.models.feeds import FeedEvent, FeedStamp, FeedToken
from booking.models.reservations import Reservation
from booking.services import feeds
from tests.factories.reservations import create_reservation

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def kept(session, reservation_id):
    return {
        (row.view, row.locale): row
        for row in session.scalars(
            select(FeedEvent).where(FeedEvent.reservation_id == reservation_id)
        )
    }


def render(session, token, *, at=None):
    with _at(at or START - timedelta(days=1)):
        return feeds.render_feed(session, feeds.open_token_feed(session, token)).decode()


def test_a_booking_costs_no_calendar_work_and_the_feed_keeps_what_it_builds(
    session, feed_world, make_feed
):
    w = feed_world
    booking = create_reservation(session, w.resource, w.enterprise_a, w.alice, START)
    mine, _ = make_feed(w.alice, w.enterprise_a)  # 中文
    theirs, _ = make_feed(w.anna, w.enterprise_a)  # English, the enterprise's admin
    labs, _ = make_feed(w.lab_admin, w.lab, scope="lab")
    session.commit()
    assert kept(session, booking.id) == {}  # nothing built in the booking's transaction

    assert "场发射扫描电镜" in render(session, mine)
    assert "Field-emission SEM" in render(session, theirs)
    assert "太原甲新材料有限公司" in render(session, labs).replace("\r\n ", "")
    texts = kept(session, booking.id)
    assert set(texts) == {("customer", "zh_CN"), ("customer", "en"), ("lab", "zh_CN")}
    assert texts["customer", "en"].sequence == booking.sequence


def stamps(session) -> dict:
    return {(s.kind, s.ref_id): s.revision for s in session.scalars(select(FeedStamp))}


def test_a_change_bumps_the_stamps_as_it_commits_and_the_feed_rebuilds_its_text(
    session, feed_world, make_feed
):
    w = feed_world
    booking = create_reservation(session, w.resource, w.enterprise_a, w.alice, START)
    token, _ = make_feed(w.alice, w.enterprise_a)
    session.commit()
    assert "STATUS:CONFIRMED" in render(session, token)
    session.commit()
    assert stamps(session) == {
        ("customer", w.enterprise_a.id): 1,
        ("booker", w.alice.id): 1,
        ("lab", w.lab.id): 1,
        ("resource", w.resource.id): 1,
    }
    etag = feeds.open_token_feed(session, token).version.etag
    booking.status = "cancelled"
    booking.sequence += 1
    booking.cancelled_at = START - timedelta(days=1)
    session.flush()
    booking.reason = "计划有变"
    session.commit()
    # Two flushes, one transaction: each stamp rises once.
    assert set(stamps(session).values()) == {2}
    assert feeds.open_token_feed(session, token).version.etag != etag
    body = render(session, token)
    assert "STATUS:CANCELLED" in body and "SEQUENCE:1" in body
    assert kept(session, booking.id)["customer", "zh_CN"].sequence == 1


def test_a_rolled_back_change_keeps_nothing(session, feed_world, make_feed):
    w = feed_world
    booking = create_reservation(session, w.resource, w.enterprise_a, w.alice, START)
    token, _ = make_feed(w.alice, w.enterprise_a)
    session.commit()
    booking.status = "cancelled"
    booking.sequence += 1
    session.flush()
    session.rollback()
    assert set(stamps(session).values()) == {1}
    assert "STATUS:CONFIRMED" in render(session, token)
    # Nothing noted for the next transaction either.
    session.commit()
    assert set(stamps(session).values()) == {1}


def test_a_booking_of_another_lab_and_enterprise_leaves_these_stamps(
    session, feed_world, make_resource, make_org
):
    w = feed_world
    create_reservation(session, w.resource, w.enterprise_a, w.alice, START)
    session.commit()
    before = stamps(session)
    other = make_resource(make_org("provider"))
    create_reservation(session, other, w.enterprise_b, w.bob, START)
    session.commit()
    after = stamps(session)
    for key, revision in before.items():
        assert after[key] == revision


def test_a_bulk_update_revalidates_every_feed(session, feed_world):
    w = feed_world
    create_reservation(session, w.resource, w.enterprise_a, w.alice, START)
    session.commit()
    session.execute(update(Reservation).values(purpose="批量修改"))
    session.commit()
    assert stamps(session)[("everything", 0)] == 1


def test_a_renamed_resource_forgets_its_texts_and_the_feed_builds_them_again(
    session, feed_world, make_feed
):
    w = feed_world
    booking = create_reservation(session, w.resource, w.enterprise_a, w.alice, START)
    token, _ = make_feed(w.alice, w.enterprise_a)
    session.commit()
    etag = feeds.open_token_feed(session, token).version.etag
    w.resource.name_zh = "新名字电镜"
    session.commit()
    assert kept(session, booking.id) == {}
    assert feeds.open_token_feed(session, token).version.etag != etag
    with _at(START - timedelta(days=5)):
        body = feeds.render_feed(session, feeds.open_token_feed(session, token)).decode()
    assert "新名字电镜" in body
    assert ("customer", "zh_CN") in kept(session, booking.id)


def test_a_stale_text_is_never_served(session, feed_world, make_feed):
    """A change behind the ORM's back (raw SQL) that moves the booking's
    stamp: the kept text no longer matches, so the feed builds a fresh one."""
    w = feed_world
    booking = create_reservation(session, w.resource, w.enterprise_a, w.alice, START)
    token, _ = make_feed(w.alice, w.enterprise_a)
    session.commit()
    session.execute(
        update(Reservation.__table__)
        .where(Reservation.__table__.c.id == booking.id)
        .values(status="rejected", sequence=7, updated_at=START - timedelta(days=2))
    )
    with _at(START - timedelta(days=1)):
        body = feeds.render_feed(session, feeds.open_token_feed(session, token)).decode()
    assert "STATUS:CANCELLED" in body and "SEQUENCE:7" in body


def test_rebuild_all_is_the_backfill(session, feed_world):
    w = feed_world
    ids = [
        create_reservation(
            session, w.resource, w.enterprise_a, w.alice, START + timedelta(days=i)
        ).id
        for i in range(3)
    ]
    session.commit()
    session.execute(text("DELETE FROM feed_events"))
    assert feeds.rebuild_all(session) == 3
    for rid in ids:
        assert len(kept(session, rid)) == 6


# --- subscriptions ----------------------------------------------------------------


def test_a_member_makes_a_personal_feed_stored_hashed_and_audited(session, feed_world, actor):
    w = feed_world
    token, row = feeds.create_feed(session, actor(w.alice), "me", label="手机")
    assert len(token) >= 43
    assert row.organization_id == w.enterprise_a.id
    stored = session.scalar(select(FeedToken.token_hash).where(FeedToken.id == row.id))
    assert stored == feeds.hash_token(token) and token not in stored
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "feed.create"))
    assert event.actor_user_id == w.alice.id
    assert token not in str(event.after)
    assert feeds.feed_url(token).endswith(f"/ical/{token}.ics")


def test_only_a_labs_admins_make_its_feed(session, feed_world, actor):
    w = feed_world
    with pytest.raises(Forbidden):
        feeds.create_feed(session, actor(w.alice), "lab")
    with pytest.raises(Forbidden):
        feeds.create_feed(session, actor(w.alice), "lab", w.lab.id)
    _, row = feeds.create_feed(session, actor(w.lab_admin), "lab")
    assert row.organization_id == w.lab.id


def test_a_feed_of_someone_elses_organisation_is_refused(session, feed_world, actor):
    w = feed_world
    with pytest.raises(Forbidden):
        feeds.create_feed(session, actor(w.bob), "me", w.enterprise_a.id)


def test_several_organisations_need_a_choice(session, feed_world, actor, make_org):
    from booking.models.accounts import Membership

    w = feed_world
    other = make_org("enterprise")
    session.add(Membership(user_id=w.alice.id, organization_id=other.id))
    session.flush()
    with pytest.raises(ValidationFailed) as refused:
        feeds.create_feed(session, actor(w.alice), "me")
    assert "organization_id" in refused.value.fields
    _, row = feeds.create_feed(session, actor(w.alice), "me", other.id)
    assert row.organization_id == other.id


def test_no_organisation_no_feed(session, make_user, actor):
    loner = make_user()
    with pytest.raises(RuleViolation):
        feeds.create_feed(session, actor(loner), "me")


def test_revoke_is_for_the_owner_and_repeatable(session, feed_world, actor):
    w = feed_world
    _, row = feeds.create_feed(session, actor(w.alice), "me")
    with pytest.raises(NotFound):
        feeds.revoke_feed(session, actor(w.bob), row.id)
    feeds.revoke_feed(session, actor(w.alice), row.id)
    first = row.revoked_at
    feeds.revoke_feed(session, actor(w.alice), row.id)
    assert row.revoked_at == first
    assert [r.id for r in feeds.list_feeds(session, actor(w.alice), include_revoked=False)] == []


def test_too_many_feeds_are_refused(session, feed_world, actor):
    w = feed_world
    for _ in range(feeds.MAX_ACTIVE_FEEDS):
        feeds.create_feed(session, actor(w.alice), "me")
    with pytest.raises(RuleViolation):
        feeds.create_feed(session, actor(w.alice), "me")


def _at(instant):
    import time_machine

    return time_machine.travel(instant, tick=False)


def test_the_rebuild_command(app, session, feed_world):
    w = feed_world
    booking = create_reservation(session, w.resource, w.enterprise_a, w.alice, START)
    session.commit()
    session.execute(text("DELETE FROM feed_events"))
    session.commit()
    result = app.test_cli_runner().invoke(args=["feeds", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "1 bookings" in result.output
    session.expire_all()
    assert len(kept(session, booking.id)) == 6
    assert stamps(session)[("everything", 0)] == 1


def test_invitations_share_the_feeds_uid_and_sequence(session, feed_world, make_feed):
    import icalendar

    w = feed_world
    booking = create_reservation(session, w.resource, w.enterprise_a, w.alice, START, sequence=3)
    session.commit()
    invite = icalendar.Calendar.from_ical(
        feeds.invitation_for(session, booking.id, "zh_CN", "REQUEST")
    )
    event = invite.walk("VEVENT")[0]
    assert invite["METHOD"] == "REQUEST"
    assert event["UID"] == f"reservation-{booking.id}@testserver"
    assert event["SEQUENCE"] == 3
    assert str(event["ATTENDEE"]) == "mailto:alice@a.example.cn"
    token, _ = make_feed(w.alice, w.enterprise_a)
    session.commit()
    assert f"UID:reservation-{booking.id}@testserver" in render(session, token)
    with pytest.raises(NotFound):
        feeds.invitation_for(session, 999999, "zh_CN", "CANCEL")
