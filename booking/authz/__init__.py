"""The one authorization module: "may this actor do this to this object?"

Every endpoint and service asks here; nothing checks roles ad hoc. Rules are
plain functions registered per action name (``"reservation.approve"``) in one
file per area (``booking/authz/<area>.py``), each taking the actor and the
object touched and answering True or False. ``require`` turns a no into the
right error: 404 where the actor may not even see the object (nothing about
other organisations leaks), 403 where they may see it but not do this.

The actor is a frozen snapshot of who is calling (user id, platform-admin
flag, memberships with their organisation's kind and region, address); it is
built once per request by the web layer, and by tests directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from booking.domain.errors import Forbidden, NotFound, Unauthorized


@dataclass(frozen=True)
class MembershipView:
    org_id: int
    org_kind: str
    role: str
    region: str


@dataclass(frozen=True)
class Actor:
    user_id: int | None = None
    platform_admin: bool = False
    memberships: tuple[MembershipView, ...] = ()
    ip: str | None = None
    locale: str = "zh_CN"
    email: str | None = field(default=None, compare=False)

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    def org_ids(self, kind: str | None = None, role: str | None = None) -> set[int]:
        return {
            m.org_id
            for m in self.memberships
            if (kind is None or m.org_kind == kind) and (role is None or m.role == role)
        }

    def member_of(self, org_id: int | None) -> bool:
        return org_id is not None and org_id in self.org_ids()

    def admin_of(self, org_id: int | None) -> bool:
        return org_id is not None and org_id in self.org_ids(role="admin")

    def lab_admin_of(self, provider_id: int | None) -> bool:
        return provider_id is not None and provider_id in self.org_ids("provider", "admin")

    def customer_orgs(self) -> set[int]:
        return self.org_ids("enterprise")

    def bureau_regions(self) -> set[str]:
        return {m.region for m in self.memberships if m.org_kind == "bureau"}

    def bureau_ids(self) -> set[int]:
        return self.org_ids("bureau")


ANONYMOUS = Actor()

Rule = Callable[[Actor, Any], bool]
_RULES: dict[str, Rule] = {}
_VISIBILITY: dict[str, Rule] = {}


def rule(action: str, *, sees: str | None = None) -> Callable[[Rule], Rule]:
    """Register ``fn(actor, obj) -> bool`` as the rule of ``action``.

    ``sees`` names the visibility rule of the object kind (e.g. ``"reservation.view"``):
    an actor refused ``action`` who may not even see the object gets 404.
    """

    def register(fn: Rule) -> Rule:
        if action in _RULES:
            raise RuntimeError(f"authorization rule {action!r} registered twice")
        _RULES[action] = fn
        if sees:
            _VISIBILITY[action] = lambda actor, obj: can(actor, sees, obj)
        return fn

    return register


def can(actor: Actor, action: str, obj: Any = None) -> bool:
    try:
        check = _RULES[action]
    except KeyError:
        raise LookupError(f"no authorization rule for {action!r}") from None
    return bool(check(actor, obj))


def require(actor: Actor, action: str, obj: Any = None) -> None:
    """Raise 401, 404 or 403 unless ``actor`` may do ``action`` to ``obj``."""
    if can(actor, action, obj):
        return
    if not actor.authenticated:
        raise Unauthorized()
    sees = _VISIBILITY.get(action)
    if sees is not None and not sees(actor, obj):
        raise NotFound()
    raise Forbidden()


def require_visible(actor: Actor, action: str, obj: Any) -> None:
    """Raise unless ``actor`` may see ``obj`` (``None``: it does not exist):
    401 when nobody is signed in, else 404, so a refusal never tells whether
    the object exists."""
    if obj is not None and can(actor, action, obj):
        return
    if not actor.authenticated:
        raise Unauthorized()
    raise NotFound()


def registered_actions() -> list[str]:
    return sorted(_RULES)


# Area rules register themselves on import.
from booking.authz import (  # noqa: E402, F401
    accounts,
    approvals,
    catalog,
    claims,
    feeds,
    notifications,
    reports,
    reservations,
    training,
    vouchers,
)
