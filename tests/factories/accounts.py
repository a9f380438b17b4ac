"""Organisations, users, actors and API tokens."""

from __future__ import annotations

import itertools

import pytest

from booking.domain.organizations import make_uscc
from booking.models.accounts import Membership, Organization, OrgKind, Role, User
from booking.services import accounts

PASSWORD = "correct horse battery"
_serials = itertools.count(1000)
_password_hash: list[str] = []


def password_hash() -> str:
    # argon2 is slow by design: hash the shared test password once.
    if not _password_hash:
        _password_hash.append(accounts.hash_password(PASSWORD))
    return _password_hash[0]


def create_org(session, kind="enterprise", region="140105", **fields) -> Organization:
    serial = next(_serials)
    org = Organization(
        kind=OrgKind(kind),
        name=fields.pop("name", f"{kind}-{serial}"),
        uscc=fields.pop("uscc", make_uscc(region, serial)),
        region=region,
        **fields,
    )
    if kind == "enterprise":
        org.size_class = org.size_class or "small"
    session.add(org)
    session.flush()
    return org


def create_user(session, org=None, role="member", email=None, **fields) -> User:
    serial = next(_serials)
    user = User(
        email=email or f"user{serial}@example.cn",
        name=fields.pop("name", f"用户{serial}"),
        password_hash=password_hash(),
        locale=fields.pop("locale", "zh_CN"),
        **fields,
    )
    if org is not None:
        user.memberships.append(Membership(organization=org, role=Role(role)))
    session.add(user)
    session.flush()
    return user


def actor_of(session, user: User):
    session.refresh(user)
    return accounts.actor_for(user, "127.0.0.1")


def token_headers(session, user: User, locale: str = "zh-CN") -> dict:
    token, _ = accounts.issue_token(session, user, days=1)
    session.commit()
    return {"Authorization": f"Bearer {token}", "Accept-Language": locale}


@pytest.fixture
def make_org(session):
    return lambda kind="enterprise", **kw: create_org(session, kind, **kw)


@pytest.fixture
def make_user(session):
    return lambda org=None, role="member", **kw: create_user(session, org, role, **kw)


@pytest.fixture
def actor(session):
    return lambda user: actor_of(session, user)


@pytest.fixture
def auth_headers(session):
    return lambda user, locale="zh-CN": token_headers(session, user, locale)


@pytest.fixture
def platform_admin(session):
    platform = create_org(session, "platform", region="140100")
    return create_user(session, platform, "admin", platform_admin=True)
