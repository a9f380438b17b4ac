"""Rules of the catalog, in pure Python: what a resource's booking rules,
opening hours (营业时间), price list and calendar entries may be, and how
search text is normalised.

Each check returns field errors as ``{"dotted.field": [message id, ...]}``
(empty when all is well) so a caller can report every problem of an input at
once; ``raise_if`` turns them into one ``ValidationFailed``. Evaluating
opening hours and holidays for a booking, and computing a cost, belong to the
reservations area (``domain/calendar.py``, ``domain/pricing.py``), not here.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal

from booking.domain.errors import N_, ValidationFailed

Errors = dict[str, list[str]]

KINDS = ("instrument", "testing_service", "hpc", "pilot_line")
CUSTOMER_CLASSES = ("internal", "academic", "enterprise")
UNITS = ("hour", "sample", "core_hour", "node_hour", "gpu_hour", "day", "shift", "batch")
SERVICE_CATEGORIES = (
    "instrument_sharing",
    "testing",
    "computing",
    "pilot_scale",
    "rd_design",
    "tech_consulting",
)
BLACKOUT_KINDS = ("maintenance", "calibration", "breakdown", "closure")
CALENDAR_DAY_KINDS = ("holiday", "workday")

#: Which price units fit which kind of resource.
UNITS_BY_KIND: dict[str, tuple[str, ...]] = {
    "instrument": ("hour",),
    "testing_service": ("sample",),
    "hpc": ("core_hour", "node_hour", "gpu_hour"),
    "pilot_line": ("day", "shift", "batch"),
}
#: What a unit that does not fit the kind is told.
UNIT_MESSAGES = {
    "instrument": N_("An instrument is priced per hour."),
    "testing_service": N_("A testing service is priced per sample."),
    "hpc": N_("Supercomputing is priced per core-hour, node-hour or GPU-hour."),
    "pilot_line": N_("A pilot line is priced per day, shift or batch."),
}
#: Units billed by time; the others (sample, batch) are counted, not rounded.
TIME_UNITS = frozenset({"hour", "core_hour", "node_hour", "gpu_hour", "day", "shift"})

DAY = 24 * 60
WEEK = 7 * DAY
MAX_CAPACITY = 1_000_000
#: Pilot lines book in whole shifts (8 or 12 hours) or whole days.
PILOT_SHIFT_MINUTES = (480, 720)


def raise_if(errors: Errors) -> None:
    if errors:
        raise ValidationFailed(errors)


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


# --- booking rules ----------------------------------------------------------

#: The booking rules of a resource with their bounds (inclusive).
RULE_BOUNDS: dict[str, tuple[int, int]] = {
    "granularity_minutes": (5, WEEK),
    "min_minutes": (5, 366 * DAY),
    "max_minutes": (5, 366 * DAY),
    "lead_minutes": (0, 365 * DAY),
    "horizon_days": (1, 730),
    "buffer_before_minutes": (0, WEEK),
    "buffer_after_minutes": (0, WEEK),
    "cancel_minutes": (0, 60 * DAY),
    "approval_deadline_minutes": (0, 60 * DAY),
    "no_show_grace_minutes": (0, DAY),
}
RULE_FLAGS = ("requires_approval", "requires_training", "operator_allowed")
#: What a value out of bounds is told (one message per bound, so it translates).
RULE_BOUND_MESSAGES = {
    "granularity_minutes": N_("The slot length is 5 minutes to 7 days."),
    "min_minutes": N_("A duration is 5 minutes to 366 days."),
    "max_minutes": N_("A duration is 5 minutes to 366 days."),
    "lead_minutes": N_("The lead time is 0 to 365 days."),
    "horizon_days": N_("The booking horizon is 1 to 730 days."),
    "buffer_before_minutes": N_("A buffer is 0 to 7 days (0 to 10080 minutes)."),
    "buffer_after_minutes": N_("A buffer is 0 to 7 days (0 to 10080 minutes)."),
    "cancel_minutes": N_("This is 0 to 60 days (0 to 86400 minutes)."),
    "approval_deadline_minutes": N_("This is 0 to 60 days (0 to 86400 minutes)."),
    "no_show_grace_minutes": N_("The grace period is 0 to 1440 minutes."),
}

#: Defaults of a new resource's rules, per kind.
RULE_DEFAULTS: dict[str, dict[str, int | bool]] = {
    "instrument": {
        "granularity_minutes": 30,
        "min_minutes": 30,
        "max_minutes": 480,
        "lead_minutes": 0,
        "horizon_days": 90,
    },
    "testing_service": {
        "granularity_minutes": 30,
        "min_minutes": 30,
        "max_minutes": 240,
        "lead_minutes": 1440,
        "horizon_days": 60,
    },
    "hpc": {
        "granularity_minutes": 60,
        "min_minutes": 60,
        "max_minutes": WEEK,
        "lead_minutes": 60,
        "horizon_days": 30,
    },
    "pilot_line": {
        "granularity_minutes": DAY,
        "min_minutes": DAY,
        "max_minutes": 30 * DAY,
        "lead_minutes": WEEK,
        "horizon_days": 180,
        "buffer_before_minutes": DAY,
        "buffer_after_minutes": DAY,
    },
}
COMMON_RULE_DEFAULTS: dict[str, int | bool] = {
    "buffer_before_minutes": 0,
    "buffer_after_minutes": 0,
    "requires_approval": True,
    "requires_training": False,
    "operator_allowed": False,
    "cancel_minutes": 1440,
    "approval_deadline_minutes": 2880,
    "no_show_grace_minutes": 30,
}
CAPACITY_UNIT_DEFAULTS = {
    "instrument": "instrument",
    "testing_service": "sample_slot",
    "hpc": "core",
    "pilot_line": "line",
}


def default_rules(kind: str) -> dict[str, int | bool]:
    return {**COMMON_RULE_DEFAULTS, **RULE_DEFAULTS.get(kind, RULE_DEFAULTS["instrument"])}


def rule_problems(kind: str, capacity: int, rules: Mapping[str, int | bool]) -> Errors:
    """Check a resource's capacity and booking rules against each other and
    its kind. ``rules`` holds every key of ``RULE_BOUNDS`` (merged with the
    current or default values by the caller)."""
    errors: Errors = {}
    if kind not in KINDS:
        _add(errors, "kind", N_("Unknown kind of resource."))
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        _add(errors, "capacity", N_("The capacity must be at least 1."))
    elif capacity > MAX_CAPACITY:
        _add(errors, "capacity", N_("The capacity is too large."))
    elif kind == "instrument" and capacity != 1:
        _add(errors, "capacity", N_("An instrument is booked exclusively: its capacity is 1."))

    for name, (low, high) in RULE_BOUNDS.items():
        value = rules.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            _add(errors, f"rules.{name}", N_("Not a valid integer."))
        elif not low <= value <= high:
            _add(errors, f"rules.{name}", RULE_BOUND_MESSAGES[name])
    if errors.keys() & {
        f"rules.{n}" for n in ("granularity_minutes", "min_minutes", "max_minutes")
    }:
        return errors

    step = int(rules["granularity_minutes"])
    if kind == "pilot_line":
        if step not in PILOT_SHIFT_MINUTES and step % DAY:
            _add(
                errors,
                "rules.granularity_minutes",
                N_("A pilot line books whole shifts (480 or 720 minutes) or whole days (1440)."),
            )
    elif DAY % step and step % DAY:
        _add(
            errors,
            "rules.granularity_minutes",
            N_("The slot length must divide a day (e.g. 15, 30, 60) or be whole days."),
        )
    low, high = int(rules["min_minutes"]), int(rules["max_minutes"])
    if low < step:
        _add(errors, "rules.min_minutes", N_("The minimum duration is at least one slot."))
    elif low % step:
        _add(errors, "rules.min_minutes", N_("The minimum duration is a whole number of slots."))
    if high < low:
        _add(
            errors,
            "rules.max_minutes",
            N_("The maximum duration must not be below the minimum duration."),
        )
    elif high % step:
        _add(errors, "rules.max_minutes", N_("The maximum duration is a whole number of slots."))
    lead, horizon = rules.get("lead_minutes"), rules.get("horizon_days")
    if (
        isinstance(lead, int)
        and isinstance(horizon, int)
        and "rules.lead_minutes" not in errors
        and "rules.horizon_days" not in errors
        and lead >= horizon * DAY
    ):
        _add(
            errors,
            "rules.lead_minutes",
            N_("The lead time must be shorter than the booking horizon."),
        )
    return errors


# --- opening hours ----------------------------------------------------------

_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
#: A ``time`` cannot say 24:00: a span closing at midnight is stored as 23:59,
#: and the calendar (``domain/calendar.py``) reads a close at 23:59 as midnight.
MIDNIGHT_CLOSE = time(23, 59)


@dataclass(frozen=True, order=True)
class OpeningSpan:
    """One opening span of a weekday (0 = Monday), local wall-clock time,
    half-open ``[open, close)``."""

    weekday: int
    open: time
    close: time

    def as_dict(self) -> dict:
        return {
            "weekday": self.weekday,
            "open": format_clock(self.open),
            "close": format_close(self.close),
        }


def parse_clock(value: str | time, *, closing: bool = False) -> time:
    """``"08:30"`` → ``time(8, 30)``; a closing time may be ``"24:00"``
    (midnight, stored as 23:59). ``ValueError`` (a message id) otherwise."""
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0, tzinfo=None)
    text = str(value or "").strip().replace("：", ":")
    if closing and text == "24:00":
        return MIDNIGHT_CLOSE
    match = _CLOCK.match(text)
    if not match:
        raise ValueError(N_("Not a valid time of day (HH:MM)."))
    return time(int(match.group(1)), int(match.group(2)))


def format_clock(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def format_close(value: time) -> str:
    """A closing time as people write it: midnight is 24:00."""
    return "24:00" if value >= MIDNIGHT_CLOSE else format_clock(value)


def opening_hours_problems(
    items: Iterable[Mapping], field: str = "opening_hours"
) -> tuple[list[OpeningSpan], Errors]:
    """Parse ``[{"weekday", "open", "close"}, ...]``: weekdays 0..6, open
    before close, no two spans of a day overlapping (touching is fine). An
    empty list means open around the clock (全天候)."""
    errors: Errors = {}
    spans: list[tuple[int, OpeningSpan]] = []
    for index, item in enumerate(items):
        where = f"{field}.{index}"
        weekday = item.get("weekday")
        if not isinstance(weekday, int) or isinstance(weekday, bool) or not 0 <= weekday <= 6:
            _add(errors, f"{where}.weekday", N_("A weekday is 0 (Monday) to 6 (Sunday)."))
            continue
        try:
            opens = parse_clock(item.get("open"))
        except ValueError as exc:
            _add(errors, f"{where}.open", str(exc))
            continue
        try:
            closes = parse_clock(item.get("close"), closing=True)
        except ValueError as exc:
            _add(errors, f"{where}.close", str(exc))
            continue
        if closes <= opens:
            _add(errors, f"{where}.close", N_("The closing time must be after the opening time."))
            continue
        spans.append((index, OpeningSpan(weekday, opens, closes)))
    by_day: dict[int, list[tuple[int, OpeningSpan]]] = {}
    for index, span in spans:
        by_day.setdefault(span.weekday, []).append((index, span))
    for day_spans in by_day.values():
        day_spans.sort(key=lambda pair: pair[1])
        for (_, before), (index, after) in itertools.pairwise(day_spans):
            if after.open < before.close:
                _add(
                    errors,
                    f"{field}.{index}.open",
                    N_("This span overlaps another span of the same day."),
                )
    return sorted(span for _, span in spans), errors


def parse_day_spans(text: str) -> list[tuple[str, str]]:
    """``"08:30-12:00, 14:00-17:30"`` → ``[("08:30", "12:00"), ...]`` (a
    form's or a spreadsheet's way of writing one day's hours)."""
    pairs = []
    for chunk in re.split(r"[,，;；\s]+", (text or "").strip()):
        if not chunk:
            continue
        parts = re.split(r"\s*[-–—~～至]\s*", chunk)
        if len(parts) != 2:
            raise ValueError(N_("Write spans as 08:30-12:00, separated by commas."))
        pairs.append((parts[0], parts[1]))
    return pairs


_WEEKDAY_RANGE = re.compile(r"^([1-7])(?:-([1-7]))?$")


def parse_week_hours(text: str) -> list[dict]:
    """The compact form of a week's hours used by the bulk import:
    ``"1-5 08:30-12:00,14:00-17:30; 6 09:00-12:00"`` with ISO weekdays
    (1 = Monday .. 7 = Sunday). Empty text means around the clock."""
    items: list[dict] = []
    for part in re.split(r"[;；]", text or ""):
        part = part.strip()
        if not part:
            continue
        days, _, spans = part.partition(" ")
        match = _WEEKDAY_RANGE.match(days.strip())
        if not match:
            raise ValueError(N_("Start each part with weekdays 1-7 (Monday is 1), e.g. 1-5."))
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if last < first:
            raise ValueError(N_("Start each part with weekdays 1-7 (Monday is 1), e.g. 1-5."))
        pairs = parse_day_spans(spans)
        if not pairs:
            raise ValueError(N_("Write spans as 08:30-12:00, separated by commas."))
        for iso_day in range(first, last + 1):
            for opens, closes in pairs:
                items.append({"weekday": iso_day - 1, "open": opens, "close": closes})
    return items


def day_granularity_hours_problems(granularity_minutes: int, spans: list[OpeningSpan]) -> Errors:
    """A resource booked by whole days opens whole days (00:00-24:00) or
    around the clock: shorter hours would leave no whole day to book."""
    if granularity_minutes % DAY:
        return {}
    if any(s.open != time(0, 0) or s.close < MIDNIGHT_CLOSE for s in spans):
        return {
            "opening_hours": [
                N_("A resource booked by whole days opens whole days (00:00-24:00) or always.")
            ]
        }
    return {}


# --- price lists ------------------------------------------------------------

MONEY_FIELDS = (
    "unit_price",
    "setup_fee",
    "min_quantity",
    "order_min",
    "order_max",
    "no_show_fee",
    "operator_fee_per_hour",
)


def units_for_kind(kind: str) -> tuple[str, ...]:
    return UNITS_BY_KIND.get(kind, ())


def price_problems(kind: str, prices: Iterable[Mapping], field: str = "prices") -> Errors:
    """Check a price list: known class, a unit that fits the kind, amounts
    not negative, rounding that makes sense for the unit, order minimum not
    above the maximum, one rule per class and unit."""
    errors: Errors = {}
    seen: set[tuple[str, str]] = set()
    allowed = units_for_kind(kind)
    for index, item in enumerate(prices):
        where = f"{field}.{index}"
        customer_class = item.get("customer_class")
        unit = item.get("unit")
        if customer_class not in CUSTOMER_CLASSES:
            _add(errors, f"{where}.customer_class", N_("Unknown customer class."))
        if unit not in UNITS:
            _add(errors, f"{where}.unit", N_("Unknown unit."))
        elif allowed and unit not in allowed:
            _add(errors, f"{where}.unit", UNIT_MESSAGES[kind])
        if item.get("unit_price") is None:
            _add(errors, f"{where}.unit_price", N_("Missing data for required field."))
        for name in MONEY_FIELDS:
            value = item.get(name)
            if value is None:
                continue
            if not isinstance(value, Decimal) or not value.is_finite():
                _add(errors, f"{where}.{name}", N_("Not a valid amount of money."))
            elif value < 0:
                _add(errors, f"{where}.{name}", N_("Must not be negative."))
        order_min, order_max = item.get("order_min"), item.get("order_max")
        if (
            isinstance(order_min, Decimal)
            and isinstance(order_max, Decimal)
            and order_max < order_min
        ):
            _add(
                errors,
                f"{where}.order_max",
                N_("The order maximum must not be below the order minimum."),
            )
        rounding = item.get("rounding_minutes") or 0
        threshold = item.get("rounding_threshold_minutes") or 0
        if not isinstance(rounding, int) or not 0 <= rounding <= DAY:
            _add(errors, f"{where}.rounding_minutes", N_("Must be between 0 and 1440 minutes."))
        elif rounding and unit in UNITS and unit not in TIME_UNITS:
            _add(
                errors,
                f"{where}.rounding_minutes",
                N_("Only time is rounded: leave this at 0 for samples and batches."),
            )
        elif not isinstance(threshold, int) or threshold < 0:
            _add(errors, f"{where}.rounding_threshold_minutes", N_("Must not be negative."))
        elif threshold and threshold >= rounding:
            _add(
                errors,
                f"{where}.rounding_threshold_minutes",
                N_("The threshold must be shorter than the rounding block."),
            )
        key = (str(customer_class), str(unit))
        if key in seen:
            _add(errors, f"{where}.unit", N_("There is already a price for this class and unit."))
        seen.add(key)
    return errors


# --- calendar (holidays and adjusted working days) ---------------------------


def calendar_day_problems(year: int, days: Iterable[Mapping], field: str = "days") -> Errors:
    """Entries a platform admin adds for one year: each date inside the year,
    once only; a holiday (法定节假日) any day, an adjusted working day
    (调休上班) only a Saturday or Sunday (it is a weekend day made a workday)."""
    errors: Errors = {}
    seen: set[date] = set()
    for index, item in enumerate(days):
        where = f"{field}.{index}"
        day = item.get("date")
        kind = item.get("kind")
        if not isinstance(day, date):
            _add(errors, f"{where}.date", N_("Not a valid date."))
            continue
        if day.year != year:
            _add(errors, f"{where}.date", N_("This date is not in the year being edited."))
        if day in seen:
            _add(errors, f"{where}.date", N_("This date is listed twice."))
        seen.add(day)
        if kind not in CALENDAR_DAY_KINDS:
            _add(errors, f"{where}.kind", N_("Use holiday or workday."))
        elif kind == "workday" and day.weekday() < 5:
            _add(
                errors,
                f"{where}.kind",
                N_("An adjusted working day (调休) is a Saturday or Sunday."),
            )
        if len(item.get("name") or "") > 80:
            _add(errors, f"{where}.name", N_("At most 80 characters."))
    return errors


# --- search text ------------------------------------------------------------

MAX_TERMS = 8
MAX_TERM_LENGTH = 60


def normalise_text(*parts: str | None) -> str:
    """Full-width forms folded (NFKC: ＳＥＭ → sem), lower case, single spaces."""
    text = " ".join(p for p in parts if p)
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(text.split())


def search_terms(query: str | None) -> list[str]:
    """The terms of a search box's text: normalised, split on whitespace,
    each found as a part of a word (Chinese has no spaces). At most
    ``MAX_TERMS`` distinct terms, each cut at ``MAX_TERM_LENGTH``."""
    terms: list[str] = []
    for term in normalise_text(query).split(" "):
        term = term[:MAX_TERM_LENGTH]
        if term and term not in terms:
            terms.append(term)
    return terms[:MAX_TERMS]


#: Chinese characters (CJK unified ideographs, extension A, compatibility).
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def text_grams(text: str) -> list[str]:
    """The single characters and character pairs of the Chinese runs of a
    (normalised) text, sorted, each once. Trigram indexes cannot serve a
    two-character word such as 电镜, so PostgreSQL indexes these too
    (``Resource.search_grams``) and a search first asks for the grams of its
    terms, then confirms the whole term with LIKE."""
    grams: set[str] = set()
    for run in _CJK_RUN.findall(text or ""):
        grams.update(run)
        grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return sorted(grams)


def term_grams(term: str) -> list[str]:
    """The grams a text must hold to contain ``term``: the character pairs of
    each Chinese run (the character itself for a run of one)."""
    grams: set[str] = set()
    for run in _CJK_RUN.findall(term):
        if len(run) == 1:
            grams.add(run)
        else:
            grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return sorted(grams)


def like_pattern(term: str, escape: str = "\\") -> str:
    """``%term%`` with LIKE's wildcards in the term taken literally."""
    for char in (escape, "%", "_"):
        term = term.replace(char, escape + char)
    return f"%{term}%"
