"""Training and qualification (培训/上机资格): who may operate which resource.

A lab records that a user is trained on one of its resources, or on a whole
category (by whom, when, until when); it can revoke the record, and it reads
its register. ``has_training`` is what the reservation engine asks before
it lets a user book a resource that requires training.

- A grant names the lab that made it (``TrainingRecord.provider_id``). A
  category grant qualifies on that lab's resources of the category (or of its
  sub-categories) only: lab A cannot qualify anyone on lab B's instruments.
  Older records without a lab count everywhere, as they always did.
- A lab admin grants on a category only where the lab owns resources of it
  (directly, or of a sub-category).
- Granting what the user already holds, current and unrevoked, renews that
  record (new end, new grantor) instead of adding a second one; revoked and
  expired records stay in the register as history.
- Every grant, renewal and revocation writes an audit event.

Services flush, never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from booking import authz
from booking.authz import Actor
from booking.domain import clock
from booking.domain.errors import (
    N_,
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    RuleViolation,
    Unauthorized,
    ValidationFailed,
)
from booking.models.accounts import User
from booking.models.catalog import Category, Resource, ResourceStatus, TrainingRecord
from booking.services import audit, events

#: The fields an audit event of a training record shows before and after.
AUDITED = [
    "user_id",
    "resource_id",
    "category_id",
    "provider_id",
    "granted_by_id",
    "granted_at",
    "valid_until",
    "revoked_at",
    "live_scope",
]


def has_training(session: Session, user_id: int, resource: Resource) -> bool:
    """True if the user holds a valid training on the resource or its category
    (or the category's parent), granted by the resource's lab (or by no lab
    in particular: records from before grants named their lab)."""
    now = clock.now()
    categories = [resource.category_id]
    if resource.category is not None and resource.category.parent_id:
        categories.append(resource.category.parent_id)
    found = session.scalar(
        select(TrainingRecord.id)
        .where(
            TrainingRecord.user_id == user_id,
            TrainingRecord.revoked_at.is_(None),
            or_(TrainingRecord.valid_until.is_(None), TrainingRecord.valid_until > now),
            or_(
                TrainingRecord.resource_id == resource.id,
                and_(
                    TrainingRecord.category_id.in_(categories),
                    or_(
                        TrainingRecord.provider_id.is_(None),
                        TrainingRecord.provider_id == resource.provider_id,
                    ),
                ),
            ),
        )
        .limit(1)
    )
    return found is not None


# --- states ------------------------------------------------------------------------


CURRENT = "current"
EXPIRED = "expired"
REVOKED = "revoked"
STATES = (CURRENT, EXPIRED, REVOKED)


def state_of(record: TrainingRecord, now: datetime | None = None) -> str:
    now = now or clock.now()
    if record.revoked_at is not None:
        return REVOKED
    if record.valid_until is not None and record.valid_until <= now:
        return EXPIRED
    return CURRENT


def _state_clause(state: str, now: datetime):
    if state == REVOKED:
        return TrainingRecord.revoked_at.is_not(None)
    if state == EXPIRED:
        return and_(
            TrainingRecord.revoked_at.is_(None),
            TrainingRecord.valid_until.is_not(None),
            TrainingRecord.valid_until <= now,
        )
    return and_(
        TrainingRecord.revoked_at.is_(None),
        or_(TrainingRecord.valid_until.is_(None), TrainingRecord.valid_until > now),
    )


@dataclass(frozen=True)
class TrainingScope:
    """Whose training and which lab's: what the authorization rules look at."""

    user_id: int
    provider_id: int | None


def _scope(session: Session, record: TrainingRecord) -> TrainingScope:
    provider_id = record.provider_id
    if provider_id is None and record.resource_id is not None:
        provider_id = session.scalar(
            select(Resource.provider_id).where(Resource.id == record.resource_id)
        )
    return TrainingScope(user_id=record.user_id, provider_id=provider_id)


# --- granting -----------------------------------------------------------------------


@dataclass
class GrantInput:
    """A grant as the edge read it: the trainee by id or email, and exactly
    one of a resource or a category (with the granting lab where the actor
    administers several)."""

    user_id: int | None = None
    email: str | None = None
    resource_id: int | None = None
    category_id: int | None = None
    provider_id: int | None = None
    valid_until: datetime | None = None

    @classmethod
    def from_dict(cls, data: dict) -> GrantInput:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def _trainee(session: Session, request: GrantInput) -> User:
    from booking.services.accounts import find_user_by_email

    if request.user_id is not None:
        user = session.get(User, request.user_id)
        field = "user_id"
    elif request.email:
        user = find_user_by_email(session, request.email)
        field = "email"
    else:
        raise ValidationFailed({"user_id": N_("Name the trained user (id or email).")})
    if user is None or not user.active:
        raise ValidationFailed({field: N_("No active user with this id or email.")})
    return user


def actor_lab(actor: Actor, provider_id: int | None) -> int:
    """The lab the actor acts for: the one named, or the only lab they
    administer (401 signed out, 403 administering none, 422 several)."""
    if provider_id is not None:
        return provider_id
    labs = sorted(actor.org_ids("provider", "admin"))
    if len(labs) == 1:
        return labs[0]
    if not actor.authenticated:
        raise Unauthorized()
    if not labs:
        raise Forbidden(N_("Only a lab's administrators keep its training register."))
    raise ValidationFailed({"provider_id": N_("You administer several labs: choose one.")})


def lab_categories(session: Session, provider_id: int) -> set[int]:
    """The categories a lab may grant training on: those of its resources in
    service, and their parents."""
    rows = session.execute(
        select(Category.id, Category.parent_id)
        .join(Resource, Resource.category_id == Category.id)
        .where(Resource.provider_id == provider_id, Resource.status != ResourceStatus.RETIRED)
        .distinct()
    ).all()
    return {r.id for r in rows} | {r.parent_id for r in rows if r.parent_id}


def _check_scope(
    session: Session, actor: Actor, request: GrantInput
) -> tuple[Resource | None, Category | None, int]:
    """The resource or category granted on, and the granting lab."""
    if (request.resource_id is None) == (request.category_id is None):
        message = N_("Name either a resource or a category.")
        raise ValidationFailed({"resource_id": message, "category_id": message})
    if request.resource_id is not None:
        resource = session.get(Resource, request.resource_id)
        if resource is None:
            raise NotFound(N_("Unknown resource."), details={"field": "resource_id"})
        authz.require(actor, "training.grant", resource)
        if request.provider_id is not None and request.provider_id != resource.provider_id:
            raise ValidationFailed(
                {"provider_id": N_("The resource belongs to another lab than the one named.")}
            )
        return resource, None, resource.provider_id
    provider_id = actor_lab(actor, request.provider_id)
    authz.require(actor, "training.grant_category", provider_id)
    category = session.get(Category, request.category_id)
    if category is None:
        raise NotFound(N_("Unknown category."), details={"field": "category_id"})
    if category.id not in lab_categories(session, provider_id):
        raise RuleViolation(
            "category_not_offered",
            N_("Your lab has no resources in the category %(category)s."),
            field="category_id",
            category=category.name_zh,
        )
    return None, category, provider_id


def _current_record(
    session: Session,
    user_id: int,
    resource: Resource | None,
    category: Category | None,
    provider_id: int,
    now: datetime,
) -> TrainingRecord | None:
    query = select(TrainingRecord).where(
        TrainingRecord.user_id == user_id,
        _state_clause(CURRENT, now),
    )
    if resource is not None:
        query = query.where(TrainingRecord.resource_id == resource.id)
    else:
        query = query.where(
            TrainingRecord.category_id == category.id,
            TrainingRecord.resource_id.is_(None),
            TrainingRecord.provider_id == provider_id,
        )
    return session.scalars(query.order_by(TrainingRecord.id).with_for_update().limit(1)).first()


def grant_training(
    session: Session, actor: Actor, data: dict | GrantInput, *, _raced: bool = False
) -> TrainingRecord:
    """Record that a user is trained on a resource or a category of the
    actor's lab, valid until ``valid_until`` (open-ended without one).

    Two grants of the same scope at once leave one record: the database's
    unique ``live_scope`` refuses the second insert, and the second grant
    then renews the record the first one made."""
    request = data if isinstance(data, GrantInput) else GrantInput.from_dict(data)
    resource, category, provider_id = _check_scope(session, actor, request)
    user = _trainee(session, request)
    now = clock.now()
    if request.valid_until is not None and request.valid_until <= now:
        raise ValidationFailed({"valid_until": N_("The end of validity must be in the future.")})
    record = _current_record(session, user.id, resource, category, provider_id, now)
    if record is not None:
        before = audit.snapshot(record, AUDITED)
        record.granted_by_id = actor.user_id
        record.granted_at = now
        record.valid_until = request.valid_until
        record.provider_id = provider_id
        session.flush()
        audit.record(
            session,
            actor,
            "training.renew",
            record,
            before=before,
            after=audit.snapshot(record, AUDITED),
        )
    else:
        record = _insert_record(session, actor, request, user, resource, category, provider_id)
        if record is None:
            # A racing grant of the same scope committed first: granting again
            # renews what it recorded, exactly as if the two had come in turn.
            if _raced:
                raise Conflict(
                    N_("This training is being recorded by someone else; try again."),
                    details={"user_id": user.id},
                )
            return grant_training(session, actor, request, _raced=True)
        audit.record(
            session, actor, "training.grant", record, after=audit.snapshot(record, AUDITED)
        )
    events.publish(session, "training.granted", record, actor=actor)
    return record


def _insert_record(
    session: Session,
    actor: Actor,
    request: GrantInput,
    user: User,
    resource: Resource | None,
    category: Category | None,
    provider_id: int,
) -> TrainingRecord | None:
    """Insert the user's live record of the scope, or None where a racing
    grant holds it already (found current here, or the unique ``live_scope``
    refused the insert).

    A record still holding the scope but no longer current (expired) becomes
    history first: it gives up ``live_scope``, in the same transaction."""
    key = TrainingRecord.scope_key(
        resource.id if resource else None, category.id if category else None, provider_id
    )
    now = clock.now()
    stale = session.scalars(
        select(TrainingRecord)
        .where(TrainingRecord.user_id == user.id, TrainingRecord.live_scope == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for old in stale:
        if old.revoked_at is None and (old.valid_until is None or old.valid_until > now):
            return None  # a racing grant has just made it: renew that one
        before = audit.snapshot(old, AUDITED)
        old.live_scope = None
        session.flush()
        audit.record(
            session,
            actor,
            "training.supersede",
            old,
            before=before,
            after=audit.snapshot(old, AUDITED),
        )
    record = TrainingRecord(
        user_id=user.id,
        resource_id=resource.id if resource else None,
        category_id=category.id if category else None,
        provider_id=provider_id,
        granted_by_id=actor.user_id,
        granted_at=now,
        valid_until=request.valid_until,
        live_scope=key,
    )
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError as error:
        if not _is_live_scope_clash(error):
            raise
        return None
    return record


def _is_live_scope_clash(error: IntegrityError) -> bool:
    text = str(error.orig).lower()
    return "uq_training_live_scope" in text or (
        "unique" in text and "training_records.live_scope" in text
    )


# --- revoking -----------------------------------------------------------------------


def get_record(session: Session, actor: Actor, record_id: int) -> TrainingRecord:
    record = session.get(TrainingRecord, record_id)
    if record is None or not authz.can(actor, "training.view", _scope(session, record)):
        raise NotFound()
    return record


def revoke_training(
    session: Session, actor: Actor, record_id: int, reason: str | None = None
) -> TrainingRecord:
    """End a training record now (the lab's admins); it stays in the register."""
    record = session.scalar(
        select(TrainingRecord)
        .where(TrainingRecord.id == record_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if record is None:
        raise NotFound()
    authz.require(actor, "training.revoke", _scope(session, record))
    if record.revoked_at is not None:
        raise InvalidTransition(
            N_("This training was already revoked."),
            details={"state": REVOKED},
        )
    text = (reason or "").strip()
    if len(text) > 2000:
        raise ValidationFailed({"reason": N_("At most 2000 characters.")})
    before = audit.snapshot(record, AUDITED)
    record.revoked_at = clock.now()
    record.live_scope = None  # history now: a new grant of the scope may be made
    session.flush()
    audit.record(
        session,
        actor,
        "training.revoke",
        record,
        before=before,
        after={**audit.snapshot(record, AUDITED), "reason": text or None},
    )
    events.publish(session, "training.revoked", record, actor=actor, reason=text or None)
    return record


# --- the register ------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterFilters:
    provider_id: int | None = None
    user_id: int | None = None
    resource_id: int | None = None
    category_id: int | None = None
    q: str | None = None  # the trainee's name or email
    state: str | None = None  # current, expired, revoked; None: all
    page: int = 1
    per_page: int = 50


@dataclass
class RegisterEntry:
    """One line of the register, with the names a reader needs."""

    record: TrainingRecord
    user: User
    resource: Resource | None
    category: Category | None
    granted_by: User | None
    state: str


def lab_clause(provider_id: int):
    """Records of a lab's register: granted by the lab, or (older records) on
    one of its resources."""
    return or_(
        TrainingRecord.provider_id == provider_id,
        and_(
            TrainingRecord.provider_id.is_(None),
            TrainingRecord.resource_id.in_(
                select(Resource.id).where(Resource.provider_id == provider_id)
            ),
        ),
    )


def _entries(session: Session, records: list[TrainingRecord], now: datetime) -> list:
    user_ids = {r.user_id for r in records} | {r.granted_by_id for r in records if r.granted_by_id}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))}
    resource_ids = {r.resource_id for r in records if r.resource_id}
    resources = {
        r.id: r for r in session.scalars(select(Resource).where(Resource.id.in_(resource_ids)))
    }
    category_ids = {r.category_id for r in records if r.category_id}
    categories = {
        c.id: c for c in session.scalars(select(Category).where(Category.id.in_(category_ids)))
    }
    return [
        RegisterEntry(
            record=r,
            user=users[r.user_id],
            resource=resources.get(r.resource_id),
            category=categories.get(r.category_id),
            granted_by=users.get(r.granted_by_id),
            state=state_of(r, now),
        )
        for r in records
    ]


def list_register(
    session: Session, actor: Actor, filters: RegisterFilters
) -> tuple[list[RegisterEntry], int]:
    """A lab's training register (its admins), newest grant first."""
    provider_id = actor_lab(actor, filters.provider_id)
    authz.require(actor, "training.register", provider_id)
    now = clock.now()
    query = select(TrainingRecord).where(lab_clause(provider_id))
    if filters.user_id is not None:
        query = query.where(TrainingRecord.user_id == filters.user_id)
    if filters.resource_id is not None:
        query = query.where(TrainingRecord.resource_id == filters.resource_id)
    if filters.category_id is not None:
        query = query.where(TrainingRecord.category_id == filters.category_id)
    if filters.q:
        needle = f"%{filters.q.strip().lower()}%"
        query = query.where(
            TrainingRecord.user_id.in_(
                select(User.id).where(
                    or_(func.lower(User.email).like(needle), func.lower(User.name).like(needle))
                )
            )
        )
    if filters.state:
        query = query.where(_state_clause(filters.state, now))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    records = session.scalars(
        query.order_by(TrainingRecord.granted_at.desc(), TrainingRecord.id.desc())
        .offset((filters.page - 1) * filters.per_page)
        .limit(filters.per_page)
    ).all()
    return _entries(session, list(records), now), int(total or 0)


def my_trainings(session: Session, actor: Actor) -> list[RegisterEntry]:
    """The caller's own training records, every lab's, newest first."""
    if not actor.authenticated:
        raise Unauthorized()
    records = session.scalars(
        select(TrainingRecord)
        .where(TrainingRecord.user_id == actor.user_id)
        .order_by(TrainingRecord.granted_at.desc(), TrainingRecord.id.desc())
        .limit(500)
    ).all()
    return _entries(session, list(records), clock.now())


def entry_for(session: Session, record: TrainingRecord) -> RegisterEntry:
    return _entries(session, [record], clock.now())[0]
