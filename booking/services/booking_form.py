"""The booking form's preview (预估): what a planned booking would cost, which
of the enterprise's innovation vouchers could pay and how much, and what the
enterprise pays itself.

Every figure comes from the services that make the booking: the reservation
service checks the request (``check_request``: amounts, availability, timing,
opening hours, training, the published price) and the time (``check_free``,
whose 409 names the nearest free slots), and the voucher service quotes each
voucher (``quote_for_booking``: holder, validity, category, provider,
related parties, balance). Nothing is written: the booking itself is made by
``reservations.create_booking`` alone, which runs the same checks again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.orm import Session

from booking.authz import Actor
from booking.domain import clock, pricing
from booking.domain.errors import N_, DomainError, ValidationFailed
from booking.domain.money import ZERO
from booking.domain.vouchers import Totals
from booking.models.accounts import Organization
from booking.models.catalog import Resource, ResourceStatus
from booking.models.vouchers import Voucher, VoucherStatus
from booking.services import reservations, vouchers

#: At most this many of an enterprise's vouchers are quoted on one form.
MAX_VOUCHERS = 50


@dataclass
class VoucherOption:
    """One voucher of the enterprise, with what it would pay of the estimate
    or the rule that stops it."""

    voucher: Voucher
    totals: Totals
    share: Decimal | None = None
    customer_share: Decimal | None = None
    refusal: DomainError | None = None

    @property
    def usable(self) -> bool:
        return self.refusal is None and self.share is not None and self.share > ZERO


@dataclass
class Preview:
    """What the form shows beside the fields."""

    resource: Resource
    customer_org: Organization
    cost: pricing.Cost
    needs_approval: bool
    with_operator: bool
    options: list[VoucherOption] = field(default_factory=list)
    chosen: VoucherOption | None = None
    voucher_error: DomainError | None = None

    @property
    def best(self) -> VoucherOption | None:
        usable = [o for o in self.options if o.usable]
        return max(usable, key=lambda o: (o.share, -o.voucher.id)) if usable else None

    @property
    def voucher_share(self) -> Decimal:
        return self.chosen.share if self.chosen is not None and self.chosen.usable else ZERO

    @property
    def customer_share(self) -> Decimal:
        return self.cost.total - self.voucher_share


def _resource(session: Session, resource_id: int) -> Resource:
    resource = session.get(Resource, resource_id)
    if resource is None or resource.status == ResourceStatus.RETIRED:
        raise ValidationFailed({"resource_id": N_("Unknown resource.")})
    return resource


def voucher_options(
    session: Session,
    actor: Actor,
    customer_org: Organization,
    resource: Resource,
    planned: vouchers.PlannedBooking,
) -> list[VoucherOption]:
    """The enterprise's active vouchers, each quoted for ``planned`` (those
    that can pay first, the largest share first)."""
    found, _total = vouchers.list_vouchers(
        session,
        actor,
        holder_org_id=customer_org.id,
        status=VoucherStatus.ACTIVE.value,
        per_page=MAX_VOUCHERS,
    )
    totals = vouchers.totals_for(session, [v.id for v in found])
    options = []
    for voucher in found:
        option = VoucherOption(voucher=voucher, totals=totals[voucher.id])
        try:
            quote = vouchers.quote_for_booking(session, actor, voucher.id, planned)
        except DomainError as refusal:
            option.refusal = refusal
        else:
            option.share, option.customer_share = quote.voucher_share, quote.customer_share
        options.append(option)
    options.sort(key=lambda o: (not o.usable, -(o.share or ZERO), o.voucher.id))
    return options


def preview(session: Session, actor: Actor, data: dict) -> Preview:
    """Check a planned booking as ``create_booking`` would and price it.

    Raises what the booking would raise (``ValidationFailed``,
    ``RuleViolation``, the 409 ``Conflict`` with ``details.suggestions``); a
    chosen voucher that cannot pay does not raise but is reported in
    ``voucher_error`` (with every voucher's quote in ``options``)."""
    request = reservations.BookingInput.from_dict(data)
    customer_org = reservations.customer_org_for(session, actor, request.customer_org_id)
    resource = _resource(session, request.resource_id)
    now = clock.now()
    span = request.span
    checked = reservations.check_request(session, actor, resource, customer_org, request, span, now)
    reservations.check_free(session, actor, resource, span, checked.units, now=now)
    planned = vouchers.PlannedBooking(
        resource_id=resource.id,
        customer_org_id=customer_org.id,
        start_at=span.start,
        end_at=span.end,
        estimated_cost=checked.cost.total,
        resource=resource,
    )
    result = Preview(
        resource=resource,
        customer_org=customer_org,
        cost=checked.cost,
        needs_approval=checked.needs_approval,
        with_operator=checked.with_operator,
        options=voucher_options(session, actor, customer_org, resource, planned),
    )
    if request.voucher_id is not None:
        result.chosen = next(
            (o for o in result.options if o.voucher.id == request.voucher_id), None
        )
        if result.chosen is None:
            # Not one of the enterprise's active vouchers: the voucher service says why.
            try:
                vouchers.quote_for_booking(session, actor, request.voucher_id, planned)
            except DomainError as refusal:
                result.voucher_error = refusal
        elif result.chosen.refusal is not None:
            result.voucher_error = result.chosen.refusal
    return result


def customer_vouchers(session: Session, actor: Actor, customer_org_id: int) -> list[Voucher]:
    """The enterprise's active vouchers with their totals (for a form shown
    before any time is chosen)."""
    found, _total = vouchers.list_vouchers(
        session,
        actor,
        holder_org_id=customer_org_id,
        status=VoucherStatus.ACTIVE.value,
        per_page=MAX_VOUCHERS,
    )
    return vouchers.with_totals(session, found)
