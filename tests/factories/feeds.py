"""Factories of the feeds area: feed tokens, and a world of two enterprises
and one lab with bookings to put in feeds."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from booking.domain import clock
from booking.models.feeds import FeedScope, FeedToken
from booking.services import feeds


def create_feed_token(session, user, org, scope="me", **fields) -> tuple[str, FeedToken]:
    """A feed token inserted directly (no rule checks); answers the secret and the row."""
    token = secrets.token_urlsafe(32)
    row = FeedToken(
        token_hash=feeds.hash_token(token),
        scope=FeedScope(scope),
        user_id=user.id,
        organization_id=org.id,
        created_at=fields.pop("created_at", clock.now()),
        **fields,
    )
    session.add(row)
    session.flush()
    return token, row


def feed_path(token: str) -> str:
    return f"/ical/{token}.ics"


@pytest.fixture
def make_feed(session):
    return lambda user, org, scope="me", **kw: create_feed_token(session, user, org, scope, **kw)


@dataclass
class FeedWorld:
    lab: object
    lab_admin: object
    resource: object
    enterprise_a: object
    alice: object  # member of A
    anna: object  # admin of A
    enterprise_b: object
    bob: object  # member of B


@pytest.fixture
def feed_world(make_org, make_user, make_resource) -> FeedWorld:
    lab = make_org("provider", name="山西省分析测试中心", name_en="Shanxi Analysis Centre")
    lab_admin = make_user(lab, "admin", name="王主任")
    resource = make_resource(
        lab,
        name_zh="场发射扫描电镜",
        name_en="Field-emission SEM",
        location="测试楼 201",
        buffer_after_minutes=30,
    )
    enterprise_a = make_org(
        "enterprise", name="太原甲新材料有限公司", name_en="Taiyuan A Materials"
    )
    alice = make_user(enterprise_a, name="李爱丽", email="alice@a.example.cn")
    anna = make_user(enterprise_a, "admin", name="张安娜", email="anna@a.example.cn", locale="en")
    enterprise_b = make_org("enterprise", name="吕梁乙化工有限公司")
    bob = make_user(enterprise_b, name="赵博", email="bob@b.example.cn")
    return FeedWorld(lab, lab_admin, resource, enterprise_a, alice, anna, enterprise_b, bob)
