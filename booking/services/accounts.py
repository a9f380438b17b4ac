"""Accounts: organisations, users, passwords, sign-in throttling and API tokens."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.orm import Session, selectinload
from zxcvbn import zxcvbn

from booking import authz
from booking.authz import Actor, MembershipView
from booking.domain import clock
from booking.domain.errors import N_, InvalidTransition, NotFound, ValidationFailed
from booking.domain.organizations import clean_region, clean_uscc
from booking.models.accounts import (
    ApiToken,
    LoginAttempt,
    Membership,
    Organization,
    OrgKind,
    OrgStatus,
    Role,
    SizeClass,
    User,
)
from booking.services import audit

log = logging.getLogger(__name__)
_hasher = PasswordHasher()
# Verified against when the email is unknown, so both cases cost the same.
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-same-cost")

MIN_PASSWORD_LENGTH = 10


# --- passwords -------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problems(password: str, user_inputs: tuple[str, ...] = ()) -> list[str]:
    """What is wrong with a new password: too short, or easy to guess (zxcvbn
    checks it against lists of common passwords, names, keyboard patterns,
    dates and the user's own email and name)."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(N_("Use at least 10 characters."))
    if len(password) > 256:
        return [N_("Use at most 256 characters.")]
    # zxcvbn fails on an empty password (IndexError): that one is too short anyway.
    if password and zxcvbn(password, user_inputs=[u for u in user_inputs if u])["score"] < 3:
        problems.append(N_("This password is too easy to guess."))
    return problems


# --- organisations ---------------------------------------------------------


def create_organization(session: Session, actor: Actor, data: dict) -> Organization:
    authz.require(actor, "organization.create")
    errors: dict[str, list[str]] = {}
    try:
        uscc = clean_uscc(data["uscc"])
    except ValueError as exc:
        errors["uscc"] = [str(exc)]
        uscc = None
    try:
        region = clean_region(data["region"])
    except ValueError as exc:
        errors["region"] = [str(exc)]
        region = None
    if uscc and session.scalar(select(Organization.id).where(Organization.uscc == uscc)):
        errors["uscc"] = [N_("An organisation with this credit code exists already.")]
    if data.get("voucher_provider") and data["kind"] != OrgKind.PROVIDER:
        errors["voucher_provider"] = [N_("Only a provider can be a voucher service institution.")]
    if errors:
        raise ValidationFailed(errors)
    org = Organization(
        kind=OrgKind(data["kind"]),
        name=data["name"].strip(),
        name_en=(data.get("name_en") or "").strip() or None,
        uscc=uscc,
        region=region,
        status=OrgStatus.ACTIVE,
        size_class=SizeClass(data["size_class"]) if data.get("size_class") else None,
        size_checked_year=data.get("size_checked_year")
        or (clock.now().year if data.get("size_class") else None),
        tech_sme_number=data.get("tech_sme_number"),
        tech_sme_year=data.get("tech_sme_year"),
        controller_group=data.get("controller_group"),
        voucher_provider=bool(data.get("voucher_provider")),
    )
    session.add(org)
    session.flush()
    audit.record(session, actor, "organization.create", org)
    if org.voucher_provider:
        # API.md: voucher_provider from a platform admin admits the provider
        # as a voucher service institution at once, with its admission record.
        from booking.services import admissions

        admissions.admit_at_once(session, actor, org, note="registered by the platform")
    return org


def get_organization(session: Session, actor: Actor, org_id: int) -> Organization:
    org = session.get(Organization, org_id)
    authz.require_visible(actor, "organization.view", org)
    return org


# --- users -----------------------------------------------------------------


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def create_user(session: Session, actor: Actor, data: dict) -> User:
    authz.require(actor, "user.create")
    errors: dict[str, list[str]] = {}
    email = normalise_email(data["email"])
    if find_user_by_email(session, email):
        errors["email"] = [N_("A user with this email exists already.")]
    problems = password_problems(data["password"], (email, email.split("@")[0], data["name"]))
    if problems:
        errors["password"] = problems
    memberships = data.get("memberships") or []
    for index, item in enumerate(memberships):
        if session.get(Organization, item["organization_id"]) is None:
            errors[f"memberships.{index}.organization_id"] = [N_("Unknown organisation.")]
    if errors:
        raise ValidationFailed(errors)
    user = User(
        email=email,
        name=data["name"].strip(),
        phone=data.get("phone"),
        locale=data.get("locale") or "zh_CN",
        password_hash=hash_password(data["password"]),
        platform_admin=bool(data.get("platform_admin")),
    )
    for item in memberships:
        user.memberships.append(
            Membership(organization_id=item["organization_id"], role=Role(item["role"]))
        )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", user)
    return user


def set_password(session: Session, actor: Actor, user: User, password: str) -> None:
    problems = password_problems(password, (user.email, user.name))
    if problems:
        raise ValidationFailed({"password": problems})
    user.password_hash = hash_password(password)
    user.session_version += 1
    audit.record(session, actor, "user.password_change", user, after={"user_id": user.id})


def _membership_views(memberships) -> tuple[MembershipView, ...]:
    """What an actor holds of ``(organization_id, kind, role, region,
    status)`` memberships: those of active organisations only."""
    return tuple(
        MembershipView(org_id=org_id, org_kind=kind.value, role=role.value, region=region)
        for org_id, kind, role, region, status in memberships
        if org_id is not None and status == OrgStatus.ACTIVE
    )


def actor_for(user: User, ip: str | None = None) -> Actor:
    views = _membership_views(
        (
            m.organization_id,
            m.organization.kind,
            m.role,
            m.organization.region,
            m.organization.status,
        )
        for m in user.memberships
    )
    return Actor(
        user_id=user.id,
        platform_admin=user.platform_admin,
        memberships=views,
        ip=ip,
        locale=user.locale,
        email=user.email,
    )


def load_user(session: Session, user_id: int) -> User | None:
    return session.scalar(
        select(User)
        .where(User.id == user_id, User.active.is_(True))
        .options(selectinload(User.memberships).selectinload(Membership.organization))
    )


# --- sign-in throttling -----------------------------------------------------


@dataclass(frozen=True)
class ThrottlePolicy:
    window_minutes: int = 15
    slow_after: int = 3
    lock_after: int = 8
    lock_after_per_address: int = 30
    lock_minutes: int = 15
    slow_seconds: float = 1.0


@dataclass(frozen=True)
class SignInResult:
    user: User | None
    locked_until: datetime | None = None
    delay_seconds: float = 0.0


def _recent_failures(session: Session, column, value: str, since: datetime) -> list[datetime]:
    last_success = session.scalar(
        select(func.max(LoginAttempt.at)).where(column == value, LoginAttempt.success.is_(True))
    )
    if last_success and last_success > since:
        since = last_success
    return list(
        session.scalars(
            select(LoginAttempt.at)
            .where(column == value, LoginAttempt.success.is_(False), LoginAttempt.at > since)
            .order_by(LoginAttempt.at)
        )
    )


def sign_in(
    session: Session, email: str, password: str, ip: str, policy: ThrottlePolicy
) -> SignInResult:
    """Check a password, slowing and then locking repeated failures per account
    and per address. Records the attempt; the caller commits and answers. A
    wrong password and an unknown email give the same result."""
    email = normalise_email(email)
    now = clock.now()
    since = now - timedelta(minutes=max(policy.window_minutes, policy.lock_minutes))
    by_email = _recent_failures(session, LoginAttempt.email, email, since)
    by_ip = _recent_failures(session, LoginAttempt.ip, ip, since)
    for failures, limit in ((by_email, policy.lock_after), (by_ip, policy.lock_after_per_address)):
        if len(failures) >= limit:
            until = failures[-1] + timedelta(minutes=policy.lock_minutes)
            if until > now:
                log.warning("sign-in locked for %s from %s until %s", email, ip, until)
                return SignInResult(None, locked_until=until)

    user = find_user_by_email(session, email)
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password)
    ok = ok and user is not None and user.active
    session.add(LoginAttempt(email=email, ip=ip, at=now, success=ok))
    if ok:
        return SignInResult(user)
    failures = len(by_email) + 1
    delay = 0.0
    if failures > policy.slow_after:
        delay = min(policy.slow_seconds * (failures - policy.slow_after), 5.0)
    if failures >= policy.lock_after:
        log.warning("sign-in for %s from %s locked after %d failures", email, ip, failures)
        audit.record(
            session, None, "auth.locked", ("login", None), after={"email": email, "ip": ip}
        )
        return SignInResult(None, locked_until=now + timedelta(minutes=policy.lock_minutes))
    log.info("failed sign-in for %s from %s (%d)", email, ip, failures)
    return SignInResult(None, delay_seconds=delay)


# --- API tokens --------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session, user: User, days: int, label: str | None = None
) -> tuple[str, ApiToken]:
    token = secrets.token_urlsafe(32)
    now = clock.now()
    row = ApiToken(
        user_id=user.id,
        token_hash=hash_token(token),
        label=label,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor_for(user),
        "token.create",
        row,
        after={"id": row.id, "expires_at": row.expires_at.isoformat()},
    )
    return token, row


@dataclass(frozen=True)
class TokenUse:
    """The API token a request came with: which, and when it was last used."""

    token_id: int
    last_used_at: datetime | None


def _token_actor_statement():
    t, u, m, o = ApiToken, User, Membership, Organization
    return (
        select(
            t.id,
            t.expires_at,
            t.revoked_at,
            t.last_used_at,
            u.id.label("user_id"),
            u.platform_admin,
            u.locale,
            u.email,
            m.organization_id,
            m.role,
            o.kind,
            o.region,
            o.status,
        )
        .join(u, and_(u.id == t.user_id, u.active.is_(True)))
        .outerjoin(m, m.user_id == u.id)
        .outerjoin(o, o.id == m.organization_id)
        .where(t.token_hash == bindparam("token_hash"))
        .order_by(m.id)
    )


# Built once: every API request runs it first.
_TOKEN_ACTOR = _token_actor_statement()


def actor_for_token(
    session: Session, token: str, ip: str | None = None
) -> tuple[Actor, TokenUse] | None:
    """The actor a live API token speaks for, with its memberships of active
    organisations, in one statement (every API request starts here, so it
    loads columns, not objects). None for an unknown, revoked or expired
    token or an inactive user."""
    rows = session.connection().execute(_TOKEN_ACTOR, {"token_hash": hash_token(token)}).all()
    if not rows:
        return None
    first = rows[0]
    if first.revoked_at is not None or first.expires_at <= clock.now():
        return None
    views = _membership_views((r.organization_id, r.kind, r.role, r.region, r.status) for r in rows)
    actor = Actor(
        user_id=first.user_id,
        platform_admin=first.platform_admin,
        memberships=views,
        ip=ip,
        locale=first.locale,
        email=first.email,
    )
    return actor, TokenUse(token_id=first.id, last_used_at=first.last_used_at)


_TOKEN_USED = (
    update(ApiToken)
    .where(ApiToken.id == bindparam("token_id"))
    .values(last_used_at=bindparam("now"))
)


def note_token_use(session: Session, use: TokenUse, now: datetime, *, read_only: bool) -> None:
    """Record a token's use at most once a minute: a token polled by scripts
    must not turn every read into a write. Where the request only reads
    (``read_only``), that timestamp is its transaction's one write, and on
    PostgreSQL its commit does not wait for the disk: a crash may lose the
    last moment's "last used" times, nothing else (a request that changes
    anything commits durably as always)."""
    if use.last_used_at is not None and (now - use.last_used_at).total_seconds() <= 60:
        return
    connection = session.connection()
    if read_only and connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
    connection.execute(_TOKEN_USED, {"token_id": use.token_id, "now": now})


def token_in_use(session: Session, use: TokenUse) -> ApiToken:
    row = session.get(ApiToken, use.token_id)
    if row is None:
        raise NotFound()
    return row


def revoke_token(session: Session, actor: Actor, row: ApiToken) -> None:
    if row.user_id != actor.user_id and not actor.platform_admin:
        raise NotFound()
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        audit.record(session, actor, "token.revoke", row, after={"id": row.id})


def purge_expired_tokens(session: Session, older_than_days: int = 30) -> int:
    cutoff = clock.now() - timedelta(days=older_than_days)
    rows = session.scalars(select(ApiToken).where(ApiToken.expires_at < cutoff)).all()
    for row in rows:
        session.delete(row)
    return len(rows)


# --- enterprise sign-up and confirmation --------------------------------------


def sign_up_enterprise(session: Session, data: dict, ip: str | None = None) -> User:
    """An SME registers itself: the organisation waits (``pending``) for a
    platform admin's confirmation; its first user is its admin. Until then
    the user can sign in but acts for no organisation."""
    errors: dict[str, list[str]] = {}
    try:
        uscc = clean_uscc(data["uscc"])
    except ValueError as exc:
        errors["uscc"] = [str(exc)]
        uscc = None
    try:
        region = clean_region(data["region"])
    except ValueError as exc:
        errors["region"] = [str(exc)]
        region = None
    if uscc and session.scalar(select(Organization.id).where(Organization.uscc == uscc)):
        errors["uscc"] = [N_("An organisation with this credit code exists already.")]
    email = normalise_email(data["email"])
    if find_user_by_email(session, email):
        errors["email"] = [N_("A user with this email exists already.")]
    problems = password_problems(data["password"], (email, email.split("@")[0], data["name"]))
    if problems:
        errors["password"] = problems
    if errors:
        raise ValidationFailed(errors)
    org = Organization(
        kind=OrgKind.ENTERPRISE,
        name=data["org_name"].strip(),
        uscc=uscc,
        region=region,
        status=OrgStatus.PENDING,
        size_class=SizeClass(data["size_class"]) if data.get("size_class") else None,
        size_checked_year=clock.now().year if data.get("size_class") else None,
        tech_sme_number=(data.get("tech_sme_number") or "").strip() or None,
        tech_sme_year=data.get("tech_sme_year") or None,
    )
    user = User(
        email=email,
        name=data["name"].strip(),
        phone=(data.get("phone") or "").strip() or None,
        locale=data.get("locale") or "zh_CN",
        password_hash=hash_password(data["password"]),
    )
    user.memberships.append(Membership(organization=org, role=Role.ADMIN))
    session.add_all([org, user])
    session.flush()
    newcomer = Actor(user_id=user.id, ip=ip)
    audit.record(session, newcomer, "organization.sign_up", org)
    audit.record(session, newcomer, "user.create", user)
    return user


def confirm_organization(session: Session, actor: Actor, org: Organization) -> Organization:
    authz.require(actor, "organization.confirm", org)
    if org.status != OrgStatus.PENDING:
        raise InvalidTransition(N_("Only a pending organisation can be confirmed."))
    before = audit.snapshot(org, ["status"])
    org.status = OrgStatus.ACTIVE
    audit.record(session, actor, "organization.confirm", org, before=before)
    return org


def set_organization_status(
    session: Session, actor: Actor, org: Organization, status: OrgStatus, reason: str = ""
) -> Organization:
    authz.require(actor, "organization.confirm", org)
    before = audit.snapshot(org, ["status"])
    org.status = status
    audit.record(
        session,
        actor,
        f"organization.{status.value}",
        org,
        before=before,
        after={"status": status.value, "reason": reason},
    )
    return org


def list_organizations(
    session: Session,
    actor: Actor,
    *,
    kind: str | None = None,
    status: str | None = None,
    q: str | None = None,
):
    """Organisations the actor may list: all for a platform admin, the
    region's enterprises and the public parties for a bureau officer."""
    stmt = select(Organization).order_by(Organization.created_at.desc(), Organization.id.desc())
    if not actor.platform_admin:
        regions = actor.bureau_regions()
        if not regions:
            raise NotFound()
        from sqlalchemy import or_

        from booking.domain.organizations import governed_prefix

        stmt = stmt.where(
            or_(
                Organization.kind.in_([OrgKind.PROVIDER, OrgKind.BUREAU]),
                *[Organization.region.startswith(governed_prefix(r)) for r in regions],
            )
        )
    if kind:
        stmt = stmt.where(Organization.kind == OrgKind(kind))
    if status:
        stmt = stmt.where(Organization.status == OrgStatus(status))
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(Organization.name.ilike(like) | Organization.uscc.ilike(like))
    return stmt


def update_profile(session: Session, actor: Actor, user: User, data: dict) -> User:
    if actor.user_id != user.id:
        raise NotFound()
    before = audit.snapshot(user, ["name", "phone", "locale"])
    for key in ("name", "phone", "locale"):
        if key in data and data[key] is not None:
            setattr(user, key, data[key].strip() if isinstance(data[key], str) else data[key])
    audit.record(
        session,
        actor,
        "user.update",
        user,
        before=before,
        after=audit.snapshot(user, ["name", "phone", "locale"]),
    )
    return user


def change_password(session: Session, actor: Actor, user: User, current: str, new: str) -> None:
    if actor.user_id != user.id:
        raise NotFound()
    if not verify_password(user.password_hash, current):
        raise ValidationFailed({"current_password": [N_("The current password is wrong.")]})
    set_password(session, actor, user, new)
