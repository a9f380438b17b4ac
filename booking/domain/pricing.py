"""What a booking costs, from the price snapshot it was made under.

A price snapshot is the published price rule of the resource for the
customer's class, copied into the booking when it is made (POLICY rule 20,
national management measures art. 14), so later price changes never touch
it. ``PriceTerms`` is its typed form; ``to_snapshot``/``from_snapshot`` turn
it into the JSON kept on the booking (money as strings).

The quantity billed depends on the price unit (POLICY rules 21, 23, 24):

- ``hour``: the duration in hours, after block rounding;
- ``core_hour``, ``node_hour``, ``gpu_hour``: units × hours, after block
  rounding (no rounding configured: to the second, rule 23);
- ``sample``: the number of samples;
- ``day``, ``shift``: started days (24 h) or shifts (``shift_minutes``,
  default 8 h); a partial one counts whole (rule 24);
- ``batch``: one batch per booking.

Block rounding: time is billed in blocks of ``rounding_minutes``; a last,
partial block shorter than ``rounding_threshold_minutes`` is not billed
(0: every started block is billed). E.g. 30-minute blocks with a 15-minute
threshold bill 70 minutes as 60 and 80 minutes as 90 (the Genee LIMS
"单位临界值" rule).

Then: at least ``min_quantity``; amount = unit price × quantity, rounded to
the fen; plus the set-up fee (开机费); plus the operator fee per billed hour
where a technician runs the instrument for the customer, rounded to the fen;
the total held between the order minimum and maximum. Each line is rounded
once with ``round_fen`` so the lines add up to the total.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from booking.domain.money import ZERO, round_fen

TIME_UNITS = frozenset({"hour", "core_hour", "node_hour", "gpu_hour"})
POOLED_TIME_UNITS = frozenset({"core_hour", "node_hour", "gpu_hour"})
DEFAULT_SHIFT_MINUTES = 480
_SECONDS_PER_HOUR = Decimal(3600)


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass(frozen=True)
class PriceTerms:
    customer_class: str
    unit: str
    unit_price: Decimal
    setup_fee: Decimal = ZERO
    min_quantity: Decimal = ZERO
    rounding_minutes: int = 0
    rounding_threshold_minutes: int = 0
    order_min: Decimal | None = None
    order_max: Decimal | None = None
    no_show_fee: Decimal = ZERO
    operator_fee_per_hour: Decimal = ZERO
    shift_minutes: int = DEFAULT_SHIFT_MINUTES
    price_rule_id: int | None = None

    @classmethod
    def free(cls, customer_class: str, unit: str = "hour") -> PriceTerms:
        """No published price (an internal booking may go ahead without one)."""
        return cls(customer_class=customer_class, unit=unit, unit_price=ZERO)

    def to_snapshot(self) -> dict[str, Any]:
        def text(value: Decimal | None) -> str | None:
            return None if value is None else f"{value:.2f}"

        return {
            "price_rule_id": self.price_rule_id,
            "customer_class": self.customer_class,
            "unit": self.unit,
            "unit_price": text(self.unit_price),
            "setup_fee": text(self.setup_fee),
            "min_quantity": str(self.min_quantity),
            "rounding_minutes": self.rounding_minutes,
            "rounding_threshold_minutes": self.rounding_threshold_minutes,
            "order_min": text(self.order_min),
            "order_max": text(self.order_max),
            "no_show_fee": text(self.no_show_fee),
            "operator_fee_per_hour": text(self.operator_fee_per_hour),
            "shift_minutes": self.shift_minutes,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> PriceTerms:
        return cls(
            customer_class=data.get("customer_class", "enterprise"),
            unit=data.get("unit", "hour"),
            unit_price=_money(data.get("unit_price")) or ZERO,
            setup_fee=_money(data.get("setup_fee")) or ZERO,
            min_quantity=_money(data.get("min_quantity")) or ZERO,
            rounding_minutes=int(data.get("rounding_minutes") or 0),
            rounding_threshold_minutes=int(data.get("rounding_threshold_minutes") or 0),
            order_min=_money(data.get("order_min")),
            order_max=_money(data.get("order_max")),
            no_show_fee=_money(data.get("no_show_fee")) or ZERO,
            operator_fee_per_hour=_money(data.get("operator_fee_per_hour")) or ZERO,
            shift_minutes=int(data.get("shift_minutes") or DEFAULT_SHIFT_MINUTES),
            price_rule_id=data.get("price_rule_id"),
        )

    def with_changes(self, **changes: Any) -> PriceTerms:
        return replace(self, **changes)


@dataclass(frozen=True)
class Usage:
    """What is billed: a duration, units of capacity, samples, and whether
    the lab's technician operated the instrument."""

    duration: timedelta
    units: int = 1
    samples: int | None = None
    with_operator: bool = False


@dataclass(frozen=True)
class Cost:
    quantity: Decimal
    unit: str
    unit_price: Decimal
    usage_amount: Decimal
    setup_fee: Decimal
    operator_fee: Decimal
    total: Decimal

    def as_dict(self) -> dict[str, str]:
        return {
            "quantity": _plain_decimal(self.quantity),
            "unit": self.unit,
            "unit_price": f"{self.unit_price:.2f}",
            "usage_amount": f"{self.usage_amount:.2f}",
            "setup_fee": f"{self.setup_fee:.2f}",
            "operator_fee": f"{self.operator_fee:.2f}",
            "total": f"{self.total:.2f}",
        }


def _plain_decimal(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('0.0001')).normalize():f}"
    return text


def billable_seconds(duration: timedelta, rounding_minutes: int, threshold_minutes: int) -> int:
    """The duration billed, in seconds, after block rounding."""
    seconds = max(int(duration.total_seconds()), 0)
    if rounding_minutes <= 0:
        return seconds
    block = rounding_minutes * 60
    full, remainder = divmod(seconds, block)
    if remainder and remainder >= threshold_minutes * 60:
        full += 1
    return full * block


def billable_hours(terms: PriceTerms, duration: timedelta) -> Decimal:
    seconds = billable_seconds(duration, terms.rounding_minutes, terms.rounding_threshold_minutes)
    return Decimal(seconds) / _SECONDS_PER_HOUR


def quantity(terms: PriceTerms, usage: Usage) -> Decimal:
    """The quantity billed in the price's unit, before the minimum."""
    unit = terms.unit
    if unit == "hour":
        return billable_hours(terms, usage.duration)
    if unit in POOLED_TIME_UNITS:
        return billable_hours(terms, usage.duration) * usage.units
    if unit == "sample":
        return Decimal(usage.samples or 0)
    if unit in ("day", "shift"):
        length = 60 * (1440 if unit == "day" else max(terms.shift_minutes, 1))
        seconds = max(int(usage.duration.total_seconds()), 0)
        return Decimal(-(-seconds // length))
    if unit == "batch":
        return Decimal(1)
    raise ValueError(f"unknown price unit {unit!r}")


def cost(terms: PriceTerms, usage: Usage) -> Cost:
    """The cost of ``usage`` under ``terms``."""
    billed = quantity(terms, usage)
    if terms.min_quantity and billed < terms.min_quantity:
        billed = terms.min_quantity
    usage_amount = round_fen(terms.unit_price * billed)
    operator_fee = ZERO
    if usage.with_operator and terms.operator_fee_per_hour:
        operator_fee = round_fen(
            terms.operator_fee_per_hour * billable_hours(terms, usage.duration)
        )
    total = usage_amount + terms.setup_fee + operator_fee
    if terms.order_min is not None and total < terms.order_min:
        total = terms.order_min
    if terms.order_max is not None and total > terms.order_max:
        total = terms.order_max
    return Cost(
        quantity=billed,
        unit=terms.unit,
        unit_price=terms.unit_price,
        usage_amount=usage_amount,
        setup_fee=terms.setup_fee,
        operator_fee=operator_fee,
        total=round_fen(total),
    )
