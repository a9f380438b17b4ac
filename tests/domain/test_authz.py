"""The authorization module answers for actors without a request or database."""

from types import SimpleNamespace

import pytest

from booking import authz
from booking.authz import Actor, MembershipView
from booking.domain.errors import Forbidden, NotFound, Unauthorized

ENTERPRISE_A = MembershipView(org_id=1, org_kind="enterprise", role="member", region="140105")
ENTERPRISE_A_ADMIN = MembershipView(org_id=1, org_kind="enterprise", role="admin", region="140105")
BUREAU_TAIYUAN = MembershipView(org_id=9, org_kind="bureau", role="member", region="140100")
BUREAU_LULIANG = MembershipView(org_id=8, org_kind="bureau", role="member", region="141100")

ORG_A = SimpleNamespace(id=1, kind="enterprise", region="140105")
ORG_B = SimpleNamespace(id=2, kind="enterprise", region="141102")
PROVIDER = SimpleNamespace(id=3, kind="provider", region="140105")


def test_an_enterprise_is_private_to_its_members_and_its_bureau():
    member = Actor(user_id=10, memberships=(ENTERPRISE_A,))
    assert authz.can(member, "organization.view", ORG_A)
    assert not authz.can(member, "organization.view", ORG_B)
    assert authz.can(Actor(user_id=11, memberships=(BUREAU_TAIYUAN,)), "organization.view", ORG_A)
    assert not authz.can(
        Actor(user_id=12, memberships=(BUREAU_LULIANG,)), "organization.view", ORG_A
    )
    assert authz.can(member, "organization.view", PROVIDER)


def test_require_answers_404_for_what_the_actor_cannot_see_and_403_otherwise():
    member = Actor(user_id=10, memberships=(ENTERPRISE_A,))
    with pytest.raises(NotFound):
        authz.require(member, "organization.update", ORG_B)
    with pytest.raises(Forbidden):
        authz.require(member, "organization.update", ORG_A)
    admin = Actor(user_id=10, memberships=(ENTERPRISE_A_ADMIN,))
    authz.require(admin, "organization.update", ORG_A)


def test_anonymous_callers_are_asked_to_sign_in():
    with pytest.raises(Unauthorized):
        authz.require(authz.ANONYMOUS, "organization.create")


def test_only_platform_admins_create_organisations_and_users():
    assert authz.can(Actor(user_id=1, platform_admin=True), "organization.create")
    assert authz.can(Actor(user_id=1, platform_admin=True), "user.create")
    assert not authz.can(Actor(user_id=2, memberships=(ENTERPRISE_A_ADMIN,)), "user.create")


def test_an_unknown_action_is_a_programming_error():
    with pytest.raises(LookupError):
        authz.can(authz.ANONYMOUS, "no.such.action")
