"""Factories of the vouchers area: bureaus with a policy, voucher-ready
enterprises, admitted providers, vouchers (through the voucher service, so
every voucher has its ``issue`` entry), and ``voucher_world``: one of each,
wired together, for tests of the booking hooks and claims."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import pytest

from booking.domain import clock
from booking.models.accounts import Organization, User
from booking.models.catalog import Resource
from booking.models.vouchers import Voucher, VoucherPolicy
from booking.services import admissions
from booking.services import vouchers as voucher_service
from tests.factories.accounts import actor_of, create_org, create_user
from tests.factories.catalog import create_resource

POLICY_START = date(2020, 1, 1)


def this_year() -> int:
    return clock.now().astimezone(clock.platform_tz()).year


def create_bureau(session, region: str = "140100", **fields) -> Organization:
    return create_org(session, "bureau", region=region, **fields)


def create_policy(session, bureau: Organization, **fields) -> VoucherPolicy:
    """A policy row with POLICY.md's defaults, in effect since 2020."""
    policy = VoucherPolicy(
        bureau_id=bureau.id, effective_from=fields.pop("effective_from", POLICY_START), **fields
    )
    session.add(policy)
    session.flush()
    return policy


def create_enterprise(session, region: str = "140105", **fields) -> Organization:
    """An enterprise that may hold vouchers this year: small, tech-SME."""
    fields.setdefault("size_class", "small")
    fields.setdefault("tech_sme_number", f"{this_year()}{region}A0000001")
    fields.setdefault("tech_sme_year", this_year())
    return create_org(session, "enterprise", region=region, **fields)


def create_admitted_provider(session, region: str = "140105", **fields) -> Organization:
    provider = create_org(session, "provider", region=region, **fields)
    platform = create_org(session, "platform", region="140100")
    admin = create_user(session, platform, "admin", platform_admin=True)
    admissions.admit_at_once(session, actor_of(session, admin), provider, "test")
    return provider


def officer_of(session, bureau: Organization) -> User:
    return create_user(session, bureau, "member")


def create_voucher(
    session,
    bureau: Organization,
    holder: Organization,
    face_value: str = "10000.00",
    *,
    officer: User | None = None,
    **fields,
) -> Voucher:
    """A voucher issued through the service (policy checks and all)."""
    officer = officer or officer_of(session, bureau)
    data = {"holder_org_id": holder.id, "face_value": Decimal(face_value), **fields}
    for name in ("coverage_ratio", "order_cap"):
        if isinstance(data.get(name), str):
            data[name] = Decimal(data[name])
    return voucher_service.issue_voucher(session, actor_of(session, officer), data)


@dataclass
class VoucherWorld:
    bureau: Organization
    officer: User
    policy: VoucherPolicy
    enterprise: Organization
    customer: User
    provider: Organization
    lab_admin: User
    resource: Resource
    voucher: Voucher

    def actor(self, session, user: User):
        return actor_of(session, user)


def build_voucher_world(
    session,
    *,
    face_value: str = "10000.00",
    policy: dict | None = None,
    voucher: dict | None = None,
    bureau_region: str = "140100",
    provider_region: str = "140105",
    kind: str = "instrument",
) -> VoucherWorld:
    bureau = create_bureau(session, bureau_region)
    officer = officer_of(session, bureau)
    policy_row = create_policy(session, bureau, **(policy or {}))
    enterprise = create_enterprise(session)
    customer = create_user(session, enterprise, "member")
    provider = create_admitted_provider(session, provider_region)
    lab_admin = create_user(session, provider, "admin")
    resource = create_resource(session, provider, kind)
    issued = create_voucher(
        session, bureau, enterprise, face_value, officer=officer, **(voucher or {})
    )
    return VoucherWorld(
        bureau, officer, policy_row, enterprise, customer, provider, lab_admin, resource, issued
    )


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware instant given in platform local time (Asia/Shanghai)."""
    return datetime(year, month, day, hour, minute, tzinfo=clock.platform_tz())


@pytest.fixture
def voucher_world(session):
    return lambda **kw: build_voucher_world(session, **kw)


@pytest.fixture
def make_bureau(session):
    return lambda region="140100", **kw: create_bureau(session, region, **kw)


@pytest.fixture
def make_policy(session):
    return lambda bureau, **kw: create_policy(session, bureau, **kw)


@pytest.fixture
def make_enterprise(session):
    return lambda region="140105", **kw: create_enterprise(session, region, **kw)


@pytest.fixture
def make_admitted_provider(session):
    return lambda region="140105", **kw: create_admitted_provider(session, region, **kw)


@pytest.fixture
def make_voucher(session):
    return lambda bureau, holder, face_value="10000.00", **kw: create_voucher(
        session, bureau, holder, face_value, **kw
    )
