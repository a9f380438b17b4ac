"""The catalog's rules, pure: booking rules against kind and capacity,
opening spans, price lists, calendar entries, search text."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal

import pytest

from booking.domain import catalog as rules
from booking.domain.errors import ValidationFailed


def instrument_rules(**changes):
    return {**rules.default_rules("instrument"), **changes}


# --- booking rules -------------------------------------------------------------------


def test_defaults_of_every_kind_are_valid():
    for kind in rules.KINDS:
        capacity = 1 if kind in ("instrument", "pilot_line") else 64
        assert rules.rule_problems(kind, capacity, rules.default_rules(kind)) == {}


@pytest.mark.parametrize("capacity", [0, -1, True, "1", None])
def test_capacity_below_one_or_not_a_number_is_refused(capacity):
    assert "capacity" in rules.rule_problems("hpc", capacity, rules.default_rules("hpc"))


def test_an_instrument_is_exclusive():
    problems = rules.rule_problems("instrument", 2, instrument_rules())
    assert problems["capacity"] == ["An instrument is booked exclusively: its capacity is 1."]
    assert rules.rule_problems("hpc", 8192, rules.default_rules("hpc")) == {}


def test_capacity_has_an_upper_bound():
    assert rules.rule_problems("hpc", 10**7, rules.default_rules("hpc"))["capacity"]


def test_unknown_kind():
    assert rules.rule_problems("spaceship", 1, instrument_rules())["kind"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"granularity_minutes": 7}, "rules.granularity_minutes"),
        ({"granularity_minutes": 0}, "rules.granularity_minutes"),
        (
            {"granularity_minutes": 50, "min_minutes": 50, "max_minutes": 450},
            "rules.granularity_minutes",
        ),
        ({"min_minutes": 15}, "rules.min_minutes"),
        ({"min_minutes": 45}, "rules.min_minutes"),
        ({"min_minutes": 120, "max_minutes": 60}, "rules.max_minutes"),
        ({"max_minutes": 485}, "rules.max_minutes"),
        ({"lead_minutes": -1}, "rules.lead_minutes"),
        ({"lead_minutes": 90 * 1440, "horizon_days": 90}, "rules.lead_minutes"),
        ({"horizon_days": 0}, "rules.horizon_days"),
        ({"horizon_days": 731}, "rules.horizon_days"),
        ({"buffer_before_minutes": -5}, "rules.buffer_before_minutes"),
        ({"buffer_after_minutes": 10081}, "rules.buffer_after_minutes"),
        ({"cancel_minutes": -1}, "rules.cancel_minutes"),
        ({"no_show_grace_minutes": 1441}, "rules.no_show_grace_minutes"),
        ({"approval_deadline_minutes": "soon"}, "rules.approval_deadline_minutes"),
    ],
)
def test_each_booking_rule_is_checked_and_named(changes, field):
    problems = rules.rule_problems("instrument", 1, instrument_rules(**changes))
    assert field in problems, problems


def test_rules_at_their_bounds_pass():
    edge = instrument_rules(
        granularity_minutes=5,
        min_minutes=5,
        max_minutes=366 * 1440,
        lead_minutes=0,
        horizon_days=730,
        buffer_before_minutes=10080,
        buffer_after_minutes=0,
        cancel_minutes=0,
        no_show_grace_minutes=1440,
    )
    assert rules.rule_problems("instrument", 1, edge) == {}


@pytest.mark.parametrize(
    ("granularity", "ok"),
    [(480, True), (720, True), (1440, True), (2880, True), (60, False), (600, False)],
)
def test_pilot_lines_book_whole_shifts_or_days(granularity, ok):
    line_rules = {
        **rules.default_rules("pilot_line"),
        "granularity_minutes": granularity,
        "min_minutes": granularity,
        "max_minutes": granularity * 10,
    }
    problems = rules.rule_problems("pilot_line", 1, line_rules)
    assert ("rules.granularity_minutes" not in problems) is ok


# --- opening hours --------------------------------------------------------------------


def test_opening_spans_are_parsed_and_sorted():
    spans, problems = rules.opening_hours_problems(
        [
            {"weekday": 0, "open": "14:00", "close": "17:30"},
            {"weekday": 0, "open": "8:30", "close": "12:00"},
        ]
    )
    assert problems == {}
    assert [(s.open, s.close) for s in spans] == [
        (time(8, 30), time(12)),
        (time(14), time(17, 30)),
    ]


def test_closing_before_opening_is_refused_on_the_close_field():
    _, problems = rules.opening_hours_problems([{"weekday": 2, "open": "17:00", "close": "08:00"}])
    assert problems == {
        "opening_hours.0.close": ["The closing time must be after the opening time."]
    }
    _, problems = rules.opening_hours_problems([{"weekday": 2, "open": "08:00", "close": "08:00"}])
    assert "opening_hours.0.close" in problems


def test_overlapping_spans_of_a_day_are_refused_touching_ones_are_fine():
    _, problems = rules.opening_hours_problems(
        [
            {"weekday": 1, "open": "08:00", "close": "12:00"},
            {"weekday": 1, "open": "11:30", "close": "13:00"},
            {"weekday": 2, "open": "11:30", "close": "13:00"},
        ]
    )
    assert problems == {
        "opening_hours.1.open": ["This span overlaps another span of the same day."]
    }
    _, problems = rules.opening_hours_problems(
        [
            {"weekday": 1, "open": "08:00", "close": "12:00"},
            {"weekday": 1, "open": "12:00", "close": "13:00"},
        ]
    )
    assert problems == {}


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"weekday": 7, "open": "08:00", "close": "09:00"}, "opening_hours.0.weekday"),
        ({"weekday": -1, "open": "08:00", "close": "09:00"}, "opening_hours.0.weekday"),
        ({"weekday": 1, "open": "8h", "close": "09:00"}, "opening_hours.0.open"),
        ({"weekday": 1, "open": "08:00", "close": "25:00"}, "opening_hours.0.close"),
        ({"weekday": 1, "open": "24:00", "close": "24:00"}, "opening_hours.0.open"),
    ],
)
def test_malformed_spans_name_their_field(item, field):
    _, problems = rules.opening_hours_problems([item])
    assert field in problems


def test_midnight_is_written_24_00_and_kept_as_23_59():
    spans, problems = rules.opening_hours_problems(
        [{"weekday": 4, "open": "16:00", "close": "24:00"}]
    )
    assert problems == {}
    assert spans[0].close == rules.MIDNIGHT_CLOSE
    assert spans[0].as_dict() == {"weekday": 4, "open": "16:00", "close": "24:00"}


def test_a_resource_booked_by_days_opens_whole_days():
    whole, _ = rules.opening_hours_problems([{"weekday": 0, "open": "00:00", "close": "24:00"}])
    office, _ = rules.opening_hours_problems([{"weekday": 0, "open": "08:00", "close": "17:00"}])
    assert rules.day_granularity_hours_problems(1440, []) == {}
    assert rules.day_granularity_hours_problems(1440, whole) == {}
    assert "opening_hours" in rules.day_granularity_hours_problems(1440, office)
    assert rules.day_granularity_hours_problems(60, office) == {}


def test_compact_week_hours_of_the_import():
    items = rules.parse_week_hours("1-5 08:30-12:00,14:00-17:30; 6 09:00-12:00")
    assert len(items) == 11
    assert items[0] == {"weekday": 0, "open": "08:30", "close": "12:00"}
    assert items[-1] == {"weekday": 5, "open": "09:00", "close": "12:00"}
    assert rules.parse_week_hours("") == []
    with pytest.raises(ValueError):
        rules.parse_week_hours("Mon 08:00-12:00")
    with pytest.raises(ValueError):
        rules.parse_week_hours("5-1 08:00-12:00")
    assert rules.parse_day_spans("08:30-12:00，14:00至17:30") == [
        ("08:30", "12:00"),
        ("14:00", "17:30"),
    ]


# --- prices ---------------------------------------------------------------------------


def price(**changes):
    return {
        "customer_class": "enterprise",
        "unit": "hour",
        "unit_price": Decimal("500.00"),
        **changes,
    }


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("instrument", "hour", "sample"),
        ("testing_service", "sample", "hour"),
        ("hpc", "gpu_hour", "day"),
        ("pilot_line", "shift", "core_hour"),
    ],
)
def test_units_must_fit_the_kind(kind, good, bad):
    assert rules.price_problems(kind, [price(unit=good)]) == {}
    problems = rules.price_problems(kind, [price(unit=bad)])
    assert problems == {"prices.0.unit": [rules.UNIT_MESSAGES[kind]]}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"customer_class": "vip"}, "prices.0.customer_class"),
        ({"unit": "fortnight"}, "prices.0.unit"),
        ({"unit_price": Decimal("-0.01")}, "prices.0.unit_price"),
        ({"unit_price": None}, "prices.0.unit_price"),
        ({"setup_fee": Decimal("-1")}, "prices.0.setup_fee"),
        ({"unit_price": Decimal("NaN")}, "prices.0.unit_price"),
        ({"unit_price": 12.5}, "prices.0.unit_price"),
        ({"order_min": Decimal("100"), "order_max": Decimal("99")}, "prices.0.order_max"),
        (
            {"rounding_minutes": 30, "rounding_threshold_minutes": 30},
            "prices.0.rounding_threshold_minutes",
        ),
        ({"rounding_minutes": 1441}, "prices.0.rounding_minutes"),
        ({"rounding_minutes": -1}, "prices.0.rounding_minutes"),
    ],
)
def test_each_price_term_is_checked_and_named(changes, field):
    problems = rules.price_problems("instrument", [price(**changes)])
    assert field in problems, problems


def test_samples_and_batches_are_not_rounded():
    problems = rules.price_problems("testing_service", [price(unit="sample", rounding_minutes=30)])
    assert "prices.0.rounding_minutes" in problems


def test_one_rule_per_class_and_unit_zero_is_a_price():
    problems = rules.price_problems("instrument", [price(), price(unit_price=Decimal("400"))])
    assert problems == {"prices.1.unit": ["There is already a price for this class and unit."]}
    assert rules.price_problems("instrument", [price(unit_price=Decimal("0.00"))]) == {}


# --- calendar -------------------------------------------------------------------------


def test_calendar_entries_of_a_year():
    days = [
        {"date": date(2027, 1, 1), "kind": "holiday", "name": "元旦"},
        {"date": date(2027, 2, 6), "kind": "workday", "name": "春节调休"},  # a Saturday
    ]
    assert rules.calendar_day_problems(2027, days) == {}


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"date": date(2027, 2, 9), "kind": "workday"}, "days.0.kind"),  # a Tuesday
        ({"date": date(2026, 12, 31), "kind": "holiday"}, "days.0.date"),
        ({"date": "2027-01-01", "kind": "holiday"}, "days.0.date"),
        ({"date": date(2027, 1, 1), "kind": "party"}, "days.0.kind"),
        ({"date": date(2027, 1, 1), "kind": "holiday", "name": "x" * 81}, "days.0.name"),
    ],
)
def test_calendar_entries_are_checked(item, field):
    assert field in rules.calendar_day_problems(2027, [item])


def test_a_date_listed_twice():
    day = {"date": date(2027, 1, 1), "kind": "holiday"}
    assert rules.calendar_day_problems(2027, [day, day]) == {
        "days.1.date": ["This date is listed twice."]
    }


# --- search text ----------------------------------------------------------------------


def test_search_text_folds_width_and_case():
    assert rules.normalise_text("ZEISS", "Ｓｉｇｍａ　３００", None, "场发射扫描电子显微镜") == (
        "zeiss sigma 300 场发射扫描电子显微镜"
    )


def test_search_terms_split_on_spaces_and_dedupe():
    assert rules.search_terms("  SEM  电镜 sem ") == ["sem", "电镜"]
    assert rules.search_terms("") == []
    assert len(rules.search_terms(" ".join(f"t{i}" for i in range(20)))) == rules.MAX_TERMS


def test_like_wildcards_are_taken_literally():
    assert rules.like_pattern("100%_a\\b") == "%100\\%\\_a\\\\b%"


def test_raise_if_gives_one_error_with_every_field():
    with pytest.raises(ValidationFailed) as caught:
        rules.raise_if({"a": ["x"], "b": ["y"]})
    assert caught.value.fields == {"a": ["x"], "b": ["y"]}


def test_chinese_grams_for_the_index_trigrams_cannot_serve():
    grams = rules.text_grams("场发射扫描电子显微镜 sigma 300 电镜")
    assert {"电镜", "电子", "镜", "场"} <= set(grams)
    assert not any(g.isascii() for g in grams)
    assert rules.term_grams("电镜") == ["电镜"]
    assert rules.term_grams("煤") == ["煤"]
    assert rules.term_grams("扫描电镜") == ["扫描", "描电", "电镜"]
    assert rules.term_grams("sem") == []
    # Whatever contains a term holds every gram of it.
    text = rules.normalise_text("600 MHz超导核磁共振波谱仪 Bruker")
    for term in ("核磁", "共振波谱", "谱"):
        assert set(rules.term_grams(term)) <= set(rules.text_grams(text))
