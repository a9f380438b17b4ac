"""Approvals (预约审核): the lab's approval queue, decisions on many requests
at once, and the delegation of decisions to a resource's named approvers.

The queue
    Requested bookings the reader may decide: those of the resources of the
    labs they administer, and those of resources that name them as approver.
    Oldest request first (``created_at``, then id), with the customer's
    organisation, the requesting user, purpose, estimated cost, the voucher
    (its id and the share it would pay, quoted now by the voucher service,
    or the share quoted when the booking was made if it can no longer be
    quoted, with the reason), the "with operator" flag and the time by which
    the request must be decided. Filters: resource, the booking's time
    (``start``/``end``, overlap), lab; paged.

Deciding many at once (``decide``)
    Every approval and rejection goes through the reservation service
    (``reservations.approve`` / ``reservations.reject``), one by one in
    ascending id order (so two batches lock rows in the same order), each in
    its own SAVEPOINT of the caller's one transaction. The answer lists, per
    id, what happened: ``approved``, ``rejected``, or ``refused`` with the
    reason (``not_found`` also for other labs' bookings, ``forbidden``,
    ``invalid_state`` for what is no longer requested, ``rule_violated`` e.g.
    when the voucher can no longer pay).

    The choice: by default the batch **decides what can be decided and
    reports the rest** — a lab admin ticking twenty requests should not have
    to start again because one was cancelled by its customer meanwhile; the
    refused ones are named with their reason, and the others stand. With
    ``atomic=True`` the batch is all or nothing: if any one is refused,
    nothing is decided (the whole batch's SAVEPOINT is rolled back) and
    ``BatchRefused`` (409) carries the per-id results.

    What is wrong with the batch itself is refused before anything is
    touched (422): nothing asked, more than ``MAX_BATCH`` ids, an id listed
    twice (or both approved and rejected), a rejection without a reason.

Delegation
    A resource may name approvers (``ResourceApprover``): members of the lab
    who decide that resource's requests besides the lab's admins. Only the
    lab's admins name and remove them; a person named must belong to the
    lab. Every change writes an audit event.

Services flush, never commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, or_, select, union
from sqlalchemy.orm import Session

from booking import authz
from booking.authz import Actor
from booking.domain.errors import (
    N_,
    Conflict,
    DomainError,
    NotFound,
    RuleViolation,
    ValidationFailed,
)
from booking.models.accounts import Membership, Organization, User
from booking.models.catalog import (
    Resource,
    ResourceApprover,
    ResourceKind,
    ResourceStatus,
    ServiceCategory,
)
from booking.models.reservations import Reservation, ReservationStatus
from booking.services import audit, reservations, vouchers

#: At most this many ids in one batch of decisions.
MAX_BATCH = 200
MAX_REASON = 2000

APPROVE = "approve"
REJECT = "reject"


# --- the queue ---------------------------------------------------------------------


def _named_resources(actor: Actor):
    """The resources naming the actor approver, of labs they still belong to
    (a person who left the lab keeps no say, even while still named)."""
    return (
        select(ResourceApprover.resource_id)
        .join(Resource, Resource.id == ResourceApprover.resource_id)
        .where(
            ResourceApprover.user_id == actor.user_id,
            Resource.provider_id.in_(actor.org_ids("provider")),
        )
    )


def decidable_clause(actor: Actor):
    """Reservations whose resource the actor may decide: of the labs they
    administer, or naming them as approver."""
    decidable = _named_resources(actor)
    labs = actor.org_ids("provider", "admin")
    if labs:
        # One IN over a UNION, not an OR of two INs: PostgreSQL can only
        # apply an OR of sub-selects as a filter after reading every
        # requested booking of the province; the UNION lets it walk the
        # lab's resources by index (84 ms -> 11 ms at 1M bookings, see
        # BENCHMARKS.md).
        decidable = union(decidable, select(Resource.id).where(Resource.provider_id.in_(labs)))
    return Reservation.resource_id.in_(decidable)


def decidable_resources(session: Session, actor: Actor) -> list[Resource]:
    """The resources whose requests the actor decides (for a filter list)."""
    if not actor.authenticated:
        return []
    clauses = [Resource.id.in_(_named_resources(actor))]
    labs = actor.org_ids("provider", "admin")
    if labs:
        clauses.append(Resource.provider_id.in_(labs))
    return list(
        session.scalars(
            select(Resource)
            .where(or_(*clauses), Resource.status != ResourceStatus.RETIRED)
            .order_by(Resource.name_zh, Resource.id)
        )
    )


def is_named_approver(session: Session, user_id: int | None) -> bool:
    """True if the user is named approver of any resource of a lab they
    still belong to."""
    if user_id is None:
        return False
    found = session.scalar(
        select(ResourceApprover.id)
        .join(Resource, Resource.id == ResourceApprover.resource_id)
        .join(
            Membership,
            (Membership.user_id == ResourceApprover.user_id)
            & (Membership.organization_id == Resource.provider_id),
        )
        .where(ResourceApprover.user_id == user_id)
        .limit(1)
    )
    return found is not None


@dataclass(frozen=True)
class QueueFilters:
    resource_id: int | None = None
    provider_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    page: int = 1
    per_page: int = 50


@dataclass
class VoucherView:
    """The voucher a request would be paid with, and its share."""

    id: int
    share: Decimal | None
    customer_share: Decimal | None = None
    #: Why the voucher cannot pay as things stand (code, rule, message id,
    #: params), or None when it can.
    problem: dict | None = None


@dataclass(frozen=True)
class QueueRequest:
    """A requested booking as the queue shows it: read as columns, not as a
    ``Reservation`` with its resource, organisation and user (a page reads
    twenty, and loading them as objects cost more than the database's work).
    Quoted as the booking it is (``vouchers.quotes_for_bookings``)."""

    id: int
    status: ReservationStatus
    resource_id: int
    customer_org_id: int
    user_id: int
    start_at: datetime
    end_at: datetime
    units: int
    samples: int | None
    purpose: str
    with_operator: bool
    other_public_subsidy: bool
    customer_class: str
    estimated_cost: Decimal
    voucher_id: int | None
    voucher_estimate: Decimal | None
    created_at: datetime
    resource: QueueResource


@dataclass(frozen=True)
class QueueResource:
    """The resource as the queue shows it, with what the voucher rules read
    of it (so that quoting the page reads no resource again)."""

    id: int
    name_zh: str
    name_en: str
    approval_deadline_minutes: int
    provider_id: int
    kind: ResourceKind
    service_category: ServiceCategory
    voucher_eligible: bool
    category_id: int | None


@dataclass(frozen=True)
class QueueOrganization:
    id: int
    name: str


@dataclass(frozen=True)
class QueueUser:
    id: int
    name: str
    email: str


@dataclass
class QueueItem:
    reservation: QueueRequest
    resource: QueueResource
    customer_org: QueueOrganization
    user: QueueUser
    voucher: VoucherView | None
    decide_by: datetime


def _problem(error: DomainError) -> dict:
    return {
        "code": error.code,
        "rule": error.details.get("rule"),
        "message": error.message,
        "params": dict(error.params),
    }


def voucher_views(
    session: Session, actor: Actor, requests: list[QueueRequest]
) -> dict[int, VoucherView]:
    """The voucher of each request that names one, by id: its share as the
    voucher service quotes it now, or the share quoted at booking with the
    reason when it cannot be quoted. Quoted together (a page of the queue
    costs about what one quote does)."""
    quotes = vouchers.quotes_for_bookings(session, actor, requests)
    views = {}
    for r in requests:
        if r.voucher_id is None:
            continue
        quoted = quotes[r.id]
        if isinstance(quoted, DomainError):
            views[r.id] = VoucherView(
                id=r.voucher_id, share=r.voucher_estimate, problem=_problem(quoted)
            )
        else:
            views[r.id] = VoucherView(
                id=r.voucher_id,
                share=quoted.voucher_share,
                customer_share=quoted.customer_share,
            )
    return views


_REQUEST_COLUMNS = tuple(
    getattr(Reservation, name) for name in QueueRequest.__dataclass_fields__ if name != "resource"
)
_RESOURCE_COLUMNS = tuple(getattr(Resource, name) for name in QueueResource.__dataclass_fields__)
_ORGANIZATION_COLUMNS = (Organization.id, Organization.name)
_USER_COLUMNS = (User.id, User.name, User.email)
_RESOURCE_AT = len(_REQUEST_COLUMNS)
_ORGANIZATION_AT = _RESOURCE_AT + len(_RESOURCE_COLUMNS)
_USER_AT = _ORGANIZATION_AT + len(_ORGANIZATION_COLUMNS)


def _queue_ids(actor: Actor, filters: QueueFilters):
    """The ids of the filtered queue (no order, no page)."""
    query = select(Reservation.id).where(
        Reservation.status == ReservationStatus.REQUESTED, decidable_clause(actor)
    )
    if filters.resource_id is not None:
        query = query.where(Reservation.resource_id == filters.resource_id)
    if filters.provider_id is not None:
        query = query.where(
            Reservation.resource_id.in_(
                select(Resource.id).where(Resource.provider_id == filters.provider_id)
            )
        )
    if filters.start is not None:
        query = query.where(Reservation.end_at > filters.start)
    if filters.end is not None:
        query = query.where(Reservation.start_at < filters.end)
    return query


def approval_queue(
    session: Session, actor: Actor, filters: QueueFilters
) -> tuple[list[QueueItem], int]:
    """The requests the actor may decide, oldest request first."""
    authz.require(actor, "approval.queue")
    queue = _queue_ids(actor, filters)
    total = session.scalar(select(func.count()).select_from(queue.subquery()))
    # The page is chosen on the queue's ids alone (read from the partial
    # index of requested bookings), and only its rows are read with their
    # resource, organisation and user: joining every request of the queue
    # before keeping a page made the page cost grow with the queue.
    page = (
        queue.add_columns(Reservation.created_at)
        .order_by(Reservation.created_at, Reservation.id)
        .offset((filters.page - 1) * filters.per_page)
        .limit(filters.per_page)
        .subquery()
    )
    rows = (
        session.connection()
        .execute(
            select(*_REQUEST_COLUMNS, *_RESOURCE_COLUMNS, *_ORGANIZATION_COLUMNS, *_USER_COLUMNS)
            .join(page, page.c.id == Reservation.id)
            .join(Resource, Resource.id == Reservation.resource_id)
            .join(Organization, Organization.id == Reservation.customer_org_id)
            .join(User, User.id == Reservation.user_id)
            .order_by(Reservation.created_at, Reservation.id)
        )
        .all()
    )
    requests = [
        QueueRequest(
            *row[:_RESOURCE_AT], resource=QueueResource(*row[_RESOURCE_AT:_ORGANIZATION_AT])
        )
        for row in rows
    ]
    views = voucher_views(session, actor, requests)
    items = []
    for request, row in zip(requests, rows, strict=True):
        resource = request.resource
        items.append(
            QueueItem(
                reservation=request,
                resource=resource,
                customer_org=QueueOrganization(*row[_ORGANIZATION_AT:_USER_AT]),
                user=QueueUser(*row[_USER_AT:]),
                voucher=views.get(request.id),
                decide_by=reservations.approval_deadline(request, resource),
            )
        )
    return items, int(total or 0)


# --- deciding many at once -----------------------------------------------------------


@dataclass
class Outcome:
    """What became of one id of a batch."""

    id: int
    action: str  # approve | reject
    outcome: str  # approved | rejected | refused
    status: str | None = None  # the booking's status now, where the actor sees it
    error: DomainError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict:
        """Plain data; ``error.message`` is a message id with ``params``,
        translated at the edge."""
        return {
            "id": self.id,
            "action": self.action,
            "outcome": self.outcome,
            "status": self.status,
            "error": None
            if self.error is None
            else {
                "code": self.error.code,
                "message": self.error.message,
                "params": dict(self.error.params),
                "details": dict(self.error.details),
            },
        }


class BatchRefused(Conflict):
    """An all-or-nothing batch with a refused id: nothing was decided."""

    default_message = N_("Nothing was decided: some of the requests cannot be decided.")

    def __init__(self, outcomes: list[Outcome]) -> None:
        super().__init__(details={"results": [o.as_dict() for o in outcomes]})
        self.outcomes = outcomes


@dataclass
class Batch:
    approve: list[int] = field(default_factory=list)
    reject: list[tuple[int, str]] = field(default_factory=list)  # (id, reason)


def _check_batch(batch: Batch) -> list[tuple[int, str, str | None]]:
    """The decisions in the order they are made, or 422 for a batch that is
    wrong in itself (nothing has been touched yet)."""
    if not batch.approve and not batch.reject:
        raise ValidationFailed({"approve": N_("Choose at least one request.")})
    ids = list(batch.approve) + [i for i, _ in batch.reject]
    if len(ids) > MAX_BATCH:
        raise ValidationFailed({"approve": N_("At most 200 requests at once.")})
    seen: set[int] = set()
    twice = sorted({i for i in ids if i in seen or seen.add(i)})
    if twice:
        error = ValidationFailed({"approve": N_("A request is listed twice.")})
        error.details["listed_twice"] = twice
        raise error
    for _, reason in batch.reject:
        text = (reason or "").strip()
        if not text:
            raise ValidationFailed({"reason": N_("Give a reason for every rejection.")})
        if len(text) > MAX_REASON:
            raise ValidationFailed({"reason": N_("At most 2000 characters.")})
    decisions = [(i, APPROVE, None) for i in batch.approve] + [
        (i, REJECT, reason.strip()) for i, reason in batch.reject
    ]
    return sorted(decisions, key=lambda d: d[0])


def _status_seen(session: Session, actor: Actor, reservation_id: int) -> str | None:
    reservation = session.get(Reservation, reservation_id)
    if reservation is None or not authz.can(actor, "reservation.view", reservation):
        return None
    return reservation.status.value


def _decide_one(
    session: Session, actor: Actor, reservation_id: int, action: str, reason: str | None
) -> Outcome:
    try:
        with session.begin_nested():
            if action == APPROVE:
                decided = reservations.approve(session, actor, reservation_id)
            else:
                decided = reservations.reject(session, actor, reservation_id, reason)
    except DomainError as error:
        return Outcome(
            id=reservation_id,
            action=action,
            outcome="refused",
            status=_status_seen(session, actor, reservation_id),
            error=error,
        )
    return Outcome(
        id=reservation_id,
        action=action,
        outcome="approved" if action == APPROVE else "rejected",
        status=decided.status.value,
    )


def decide(session: Session, actor: Actor, batch: Batch, *, atomic: bool = False) -> list[Outcome]:
    """Approve and reject many requests in the caller's transaction; see
    the module docstring for what happens to the ones that cannot be."""
    decisions = _check_batch(batch)
    authz.require(actor, "approval.queue")
    whole = session.begin_nested()
    outcomes = [_decide_one(session, actor, i, action, reason) for i, action, reason in decisions]
    if atomic and not all(o.ok for o in outcomes):
        whole.rollback()
        raise BatchRefused(outcomes)
    whole.commit()
    return outcomes


# --- delegation: a resource's named approvers ------------------------------------------


@dataclass(frozen=True)
class ApproverView:
    resource_id: int
    user_id: int
    name: str
    email: str
    role: str  # the person's role in the lab


def _resource(session: Session, resource_id: int) -> Resource:
    resource = session.get(Resource, resource_id)
    if resource is None:
        raise NotFound()
    return resource


def _lab_role(session: Session, user_id: int, provider_id: int) -> str | None:
    role = session.scalar(
        select(Membership.role).where(
            Membership.user_id == user_id, Membership.organization_id == provider_id
        )
    )
    return role.value if role is not None else None


def _views(session: Session, resource: Resource, rows: Iterable[ResourceApprover]) -> list:
    ids = [r.user_id for r in rows]
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}
    roles = dict(
        session.execute(
            select(Membership.user_id, Membership.role).where(
                Membership.user_id.in_(ids), Membership.organization_id == resource.provider_id
            )
        ).all()
    )
    return [
        ApproverView(
            resource_id=resource.id,
            user_id=i,
            name=users[i].name,
            email=users[i].email,
            role=roles[i].value if i in roles else "",
        )
        for i in ids
    ]


def list_approvers(session: Session, actor: Actor, resource_id: int) -> list[ApproverView]:
    """Who besides the lab's admins decides this resource's requests."""
    resource = _resource(session, resource_id)
    authz.require(actor, "resource.approvers.view", resource)
    rows = session.scalars(
        select(ResourceApprover)
        .where(ResourceApprover.resource_id == resource.id)
        .order_by(ResourceApprover.id)
    ).all()
    return _views(session, resource, rows)


def _person(session: Session, user_id: int | None, email: str | None) -> User:
    from booking.services.accounts import find_user_by_email

    if user_id is not None:
        user, field_name = session.get(User, user_id), "user_id"
    elif email:
        user, field_name = find_user_by_email(session, email), "email"
    else:
        raise ValidationFailed({"user_id": N_("Name the approver (id or email).")})
    if user is None or not user.active:
        raise ValidationFailed({field_name: N_("No active user with this id or email.")})
    return user


def name_approver(
    session: Session,
    actor: Actor,
    resource_id: int,
    *,
    user_id: int | None = None,
    email: str | None = None,
) -> ApproverView:
    """Name a member of the lab approver of one of its resources (the lab's
    admins). 422 for someone outside the lab, 409 if already named."""
    resource = _resource(session, resource_id)
    authz.require(actor, "resource.approvers.manage", resource)
    user = _person(session, user_id, email)
    if _lab_role(session, user.id, resource.provider_id) is None:
        raise RuleViolation(
            "approver_not_member",
            N_("An approver must be a member of the lab that owns the resource."),
            field="email" if user_id is None else "user_id",
        )
    existing = session.scalar(
        select(ResourceApprover).where(
            ResourceApprover.resource_id == resource.id, ResourceApprover.user_id == user.id
        )
    )
    if existing is not None:
        raise Conflict(
            N_("%(name)s is already an approver of this resource."),
            details={"user_id": user.id},
            name=user.name,
        )
    row = ResourceApprover(resource_id=resource.id, user_id=user.id)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "resource.approver_add",
        row,
        after={"resource_id": resource.id, "user_id": user.id},
    )
    session.expire(resource, ["approvers"])
    return _views(session, resource, [row])[0]


def remove_approver(session: Session, actor: Actor, resource_id: int, user_id: int) -> None:
    """Stop a person deciding this resource's requests (the lab's admins)."""
    resource = _resource(session, resource_id)
    authz.require(actor, "resource.approvers.manage", resource)
    row = session.scalar(
        select(ResourceApprover).where(
            ResourceApprover.resource_id == resource.id, ResourceApprover.user_id == user_id
        )
    )
    if row is None:
        raise NotFound(N_("This person is not an approver of this resource."))
    audit.record(
        session,
        actor,
        "resource.approver_remove",
        ("resource_approvers", row.id),
        before={"resource_id": resource.id, "user_id": user_id},
        after={},
    )
    session.delete(row)
    session.flush()
    session.expire(resource, ["approvers"])
