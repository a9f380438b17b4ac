"""The demo data set (``booking/data/demo.json``): Shanxi providers, bureaus,
enterprises, users, resources and vouchers. Idempotent: what exists (by credit
code, email, resource key) is left as it is.

Each area adds its part through its own services, so the demo data pass the
same checks as real input.
"""

from __future__ import annotations

import json
from importlib import resources as package_files

from sqlalchemy.orm import Session

from booking.authz import Actor
from booking.models.accounts import Organization, OrgKind, Role
from booking.services import accounts, catalog, vouchers

SYSTEM = Actor(user_id=None, platform_admin=True, ip="seed-demo")


def load_demo() -> dict:
    text = package_files.files("booking").joinpath("data/demo.json").read_text("utf-8")
    return json.loads(text)


def seed(session: Session) -> list[str]:
    data = load_demo()
    orgs = seed_organizations(session, data)
    users = seed_users(session, data, orgs)
    lines = [f"organisations: {len(orgs)}", f"users: {len(users)}"]
    lines.extend(catalog.seed_demo_resources(session, data, orgs, users))
    lines.extend(vouchers.seed_demo_vouchers(session, data, orgs, users))
    for part in EXTRA_PARTS:
        lines.extend(part(session, data, orgs, users))
    lines.append("demo accounts:")
    for item in data["users"]:
        lines.append(f"  {item['email']:<32} {item['password']}")
    return lines


def seed_organizations(session: Session, data: dict) -> dict[str, Organization]:
    orgs: dict[str, Organization] = {}
    groups = [
        ("platform", [data["platform"]]),
        ("bureau", data["bureaus"]),
        ("provider", data["providers"]),
        ("enterprise", data["enterprises"]),
    ]
    for kind, items in groups:
        for item in items:
            existing = session.query(Organization).filter_by(uscc=item["uscc"]).one_or_none()
            if existing is None:
                if kind == "platform":
                    existing = Organization(
                        kind=OrgKind.PLATFORM,
                        name=item["name"],
                        name_en=item.get("name_en"),
                        uscc=item["uscc"],
                        region=item["region"],
                    )
                    session.add(existing)
                    session.flush()
                else:
                    existing = accounts.create_organization(session, SYSTEM, {**item, "kind": kind})
            orgs[item["key"]] = existing
    return orgs


def seed_users(session: Session, data: dict, orgs: dict[str, Organization]) -> dict:
    users = {}
    for item in data["users"]:
        user = accounts.find_user_by_email(session, item["email"])
        if user is None:
            memberships = [
                {"organization_id": orgs[m["org"]].id, "role": Role(m["role"])}
                for m in item["memberships"]
            ]
            user = accounts.create_user(
                session,
                SYSTEM,
                {
                    "email": item["email"],
                    "password": item["password"],
                    "name": item["name"],
                    "locale": item.get("locale", "zh_CN"),
                    "memberships": memberships,
                    "platform_admin": any(m["org"] == "platform" for m in item["memberships"]),
                },
            )
        users[item["email"]] = user
    return users


# Further parts (resources, vouchers, bookings) append a function
# ``part(session, data, orgs, users) -> list[str]`` here from their own area.
EXTRA_PARTS: list = []
