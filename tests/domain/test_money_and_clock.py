"""Money parsing and rounding; instants and the platform's zone."""

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from booking.domain import clock
from booking.domain.money import format_money, parse_money, round_fen

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.005", "0.01"), ("0.004", "0.00"), ("2.675", "2.68"), ("-0.005", "-0.01"), ("10", "10.00")],
)
def test_round_half_up_to_the_fen(value, expected):
    assert round_fen(Decimal(value)) == Decimal(expected)


def test_floats_are_refused():
    with pytest.raises(TypeError):
        round_fen(0.1)


@pytest.mark.parametrize(
    ("text", "expected"), [("1234.5", "1234.50"), (" 12 ", "12.00"), (3, "3.00")]
)
def test_parse_money(text, expected):
    assert parse_money(text) == Decimal(expected)
    assert format_money(parse_money(text)) == expected


@pytest.mark.parametrize("text", ["1.234", "abc", "NaN", "Infinity", "1e13", ""])
def test_parse_money_refuses(text):
    with pytest.raises(ValueError):
        parse_money(text)


def test_offsets_and_naive_times_mean_the_same_instant():
    a = clock.parse_instant("2026-12-01T09:00:00+08:00", SHANGHAI)
    b = clock.parse_instant("2026-12-01T01:00:00Z", SHANGHAI)
    c = clock.parse_instant("2026-12-01T09:00:00", SHANGHAI)
    assert a == b == c == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["1999-12-31T10:00:00", "9999-01-01T00:00:00", "tomorrow", "2026-13-01"]
)
def test_times_out_of_range_or_malformed(text):
    with pytest.raises(ValueError):
        clock.parse_instant(text, SHANGHAI)


def test_local_day_bounds_and_end_of_day():
    start, end = clock.local_day_bounds(datetime(2026, 12, 31).date(), SHANGHAI)
    assert start == datetime(2026, 12, 30, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert clock.local_end_of_day(datetime(2026, 12, 31).date(), SHANGHAI) == datetime(
        2026, 12, 31, 15, 59, 59, tzinfo=UTC
    )
