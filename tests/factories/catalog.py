"""Factories of the catalog area: categories, resources, prices, hours."""

from __future__ import annotations

import itertools
from datetime import time
from decimal import Decimal

import pytest

from booking.models.catalog import (
    Category,
    OpeningHours,
    PriceRule,
    Resource,
    ResourceKind,
    ServiceCategory,
)
from tests.factories.accounts import create_org

_serials = itertools.count(1)

KIND_DEFAULTS = {
    "instrument": {
        "capacity": 1,
        "capacity_unit": "instrument",
        "unit": "hour",
        "service_category": "instrument_sharing",
    },
    "testing_service": {
        "capacity": 20,
        "capacity_unit": "sample_slot",
        "unit": "sample",
        "service_category": "testing",
    },
    "hpc": {
        "capacity": 1024,
        "capacity_unit": "core",
        "unit": "core_hour",
        "service_category": "computing",
    },
    "pilot_line": {
        "capacity": 1,
        "capacity_unit": "line",
        "unit": "day",
        "service_category": "pilot_scale",
    },
}


def create_category(session, code=None, service_category="instrument_sharing", **fields):
    code = code or f"9{next(_serials):03d}"
    category = Category(
        code=code,
        name_zh=fields.pop("name_zh", f"类别{code}"),
        name_en=fields.pop("name_en", f"Category {code}"),
        service_category=ServiceCategory(service_category),
        **fields,
    )
    session.add(category)
    session.flush()
    return category


def create_resource(
    session,
    provider=None,
    kind="instrument",
    *,
    prices=None,
    hours=None,
    category=None,
    **fields,
) -> Resource:
    """A bookable resource. ``hours``: None = office hours Mon-Fri 08:00-18:00,
    [] = around the clock, or a list of (weekday, "HH:MM", "HH:MM").
    ``prices``: None = one published price per customer class."""
    defaults = dict(KIND_DEFAULTS[kind])
    unit = defaults.pop("unit")
    provider = provider or create_org(session, "provider", region="140105")
    category = category or create_category(session, service_category=defaults["service_category"])
    serial = next(_serials)
    resource = Resource(
        provider_id=provider.id,
        kind=ResourceKind(kind),
        category_id=category.id,
        name_zh=fields.pop("name_zh", f"测试资源{serial}"),
        name_en=fields.pop("name_en", f"Test resource {serial}"),
        region=fields.pop("region", provider.region),
        requires_approval=fields.pop("requires_approval", True),
        granularity_minutes=fields.pop("granularity_minutes", 30),
        min_minutes=fields.pop("min_minutes", 30),
        max_minutes=fields.pop("max_minutes", 8 * 60),
        lead_minutes=fields.pop("lead_minutes", 0),
        horizon_days=fields.pop("horizon_days", 365),
        **{**defaults, **fields},
    )
    resource.category = category
    resource.provider = provider
    if hours is None:
        hours = [(d, "08:00", "18:00") for d in range(5)]
    for weekday, opens, closes in hours:
        resource.opening_hours.append(
            OpeningHours(
                weekday=weekday, open=time.fromisoformat(opens), close=time.fromisoformat(closes)
            )
        )
    if prices is None:
        prices = {"internal": "100.00", "academic": "150.00", "enterprise": "200.00"}
    for customer_class, unit_price in prices.items():
        resource.prices.append(
            PriceRule(customer_class=customer_class, unit=unit, unit_price=Decimal(unit_price))
        )
    session.add(resource)
    session.flush()
    return resource


@pytest.fixture
def make_category(session):
    return lambda **kw: create_category(session, **kw)


@pytest.fixture
def make_resource(session):
    return lambda provider=None, kind="instrument", **kw: create_resource(
        session, provider, kind, **kw
    )


# --- the catalog's own tests -------------------------------------------------------


def load_categories(session):
    """The real taxonomy of booking/data/categories.json (with aliases)."""
    from booking.services import catalog

    catalog.load_categories(session)
    session.flush()


def create_lab(session, region="140105", **fields):
    """A provider with an admin and a plain member: ``(lab, admin, member)``."""
    from tests.factories.accounts import create_user

    lab = create_org(session, "provider", region=region, **fields)
    admin = create_user(session, lab, "admin")
    member = create_user(session, lab, "member")
    return lab, admin, member


SIGMA = {
    "kind": "instrument",
    "name_zh": "场发射扫描电子显微镜",
    "name_en": "Field-emission scanning electron microscope",
    "category": "0101",
    "manufacturer": "ZEISS",
    "model": "Sigma 300",
    "location": "理科楼B区105室",
    "description_zh": "热场发射电子枪，分辨率1.2 nm，配备能谱仪。",
    "description_en": "Thermal field-emission gun, resolution 1.2 nm, with an EDS system.",
    "original_value": "2680000.00",
    "funding_source": "government",
    "rules": {
        "granularity_minutes": 30,
        "min_minutes": 60,
        "max_minutes": 480,
        "lead_minutes": 1440,
        "horizon_days": 60,
        "buffer_after_minutes": 30,
        "requires_approval": True,
        "requires_training": True,
    },
    "opening_hours": [
        {"weekday": d, "open": o, "close": c}
        for d in range(5)
        for o, c in (("08:30", "12:00"), ("14:00", "17:30"))
    ],
    "prices": [
        {"customer_class": "internal", "unit": "hour", "unit_price": "200.00"},
        {"customer_class": "academic", "unit": "hour", "unit_price": "300.00"},
        {
            "customer_class": "enterprise",
            "unit": "hour",
            "unit_price": "500.00",
            "setup_fee": "50.00",
            "rounding_minutes": 30,
            "rounding_threshold_minutes": 15,
        },
    ],
}


def sigma_input(**changes):
    """The ZEISS Sigma 300 as the API's JSON, with ``changes`` on top."""
    import copy

    data = copy.deepcopy(SIGMA)
    data.update(changes)
    return data


def create_catalog_resource(session, lab, admin=None, data=None):
    """A resource made through the catalog service (every check applied)."""
    from booking.schemas.catalog import ResourceInSchema
    from booking.services import accounts, catalog

    actor = catalog.lab_admin_actor(lab) if admin is None else accounts.actor_for(admin)
    loaded = ResourceInSchema().load(data or sigma_input())
    loaded["provider_id"] = lab.id
    resource = catalog.create_resource(session, actor, loaded)
    session.flush()
    return resource


@pytest.fixture
def categories(session):
    load_categories(session)
    session.commit()


@pytest.fixture
def make_lab(session):
    return lambda region="140105", **kw: create_lab(session, region, **kw)


@pytest.fixture
def make_catalog_resource(session):
    return lambda lab, admin=None, data=None: create_catalog_resource(session, lab, admin, data)
