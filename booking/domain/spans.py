"""Half-open time spans ``[start, end)`` and the arithmetic bookings need.

Two spans overlap when ``a.start < b.end and b.start < a.end`` (touching
spans do not overlap: a booking may end at 10:00 and the next begin at
10:00). Everything here is pure and works on aware datetimes (or anything
ordered); lists of spans are returned sorted and merged where it says so.

- ``merge``: union of spans, as sorted disjoint spans.
- ``subtract``: what is left of some spans after cutting others out.
- ``intersect``: the common part of two span lists.
- ``usage_steps``: the units in use over time (a sweep over weighted spans),
  for pooled capacity; ``peak_usage`` its maximum over a window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, order=True, slots=True)
class Span:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError("a span must start before it ends")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: Span) -> bool:
        return self.start <= other.start and other.end <= self.end

    def widened(self, before: timedelta, after: timedelta) -> Span:
        return Span(self.start - before, self.end + after)


def overlaps(a_start: Any, a_end: Any, b_start: Any, b_end: Any) -> bool:
    """Half-open overlap test (Indico's ``(start < other_end) & (other_start < end)``)."""
    return a_start < b_end and b_start < a_end


def merge(spans: Iterable[Span]) -> list[Span]:
    """The union as sorted, disjoint spans; touching spans are joined."""
    result: list[Span] = []
    for span in sorted(spans):
        if result and span.start <= result[-1].end:
            if span.end > result[-1].end:
                result[-1] = Span(result[-1].start, span.end)
        else:
            result.append(span)
    return result


def subtract(base: Iterable[Span], cuts: Iterable[Span]) -> list[Span]:
    """What remains of ``base`` once every span of ``cuts`` is taken out."""
    cut_list = merge(cuts)
    result: list[Span] = []
    for piece in merge(base):
        start = piece.start
        for cut in cut_list:
            if cut.end <= start:
                continue
            if cut.start >= piece.end:
                break
            if cut.start > start:
                result.append(Span(start, cut.start))
            start = max(start, cut.end)
            if start >= piece.end:
                break
        if start < piece.end:
            result.append(Span(start, piece.end))
    return result


def intersect(a: Iterable[Span], b: Iterable[Span]) -> list[Span]:
    """The parts covered by both lists."""
    left, right = merge(a), merge(b)
    result: list[Span] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i].start, right[j].start)
        end = min(left[i].end, right[j].end)
        if start < end:
            result.append(Span(start, end))
        if left[i].end < right[j].end:
            i += 1
        else:
            j += 1
    return result


def covers(spans: Iterable[Span], target: Span) -> bool:
    """True when the union of ``spans`` covers ``target`` without a gap."""
    return any(piece.contains(target) for piece in merge(spans))


def clip(spans: Iterable[Span], window: Span) -> list[Span]:
    return intersect(spans, [window])


@dataclass(frozen=True, slots=True)
class Step:
    """``units`` in use throughout ``[start, end)``."""

    start: datetime
    end: datetime
    units: int


def usage_steps(items: Iterable[tuple[datetime, datetime, int]]) -> list[Step]:
    """The units in use over time: a sweep over ``(start, end, units)`` items.

    Returns maximal steps of constant, non-zero use, sorted by time.
    """
    deltas: dict[datetime, int] = {}
    for start, end, units in items:
        if start >= end or units == 0:
            continue
        deltas[start] = deltas.get(start, 0) + units
        deltas[end] = deltas.get(end, 0) - units
    steps: list[Step] = []
    level = 0
    previous: datetime | None = None
    for instant in sorted(deltas):
        if previous is not None and level and previous < instant:
            if steps and steps[-1].end == previous and steps[-1].units == level:
                steps[-1] = Step(steps[-1].start, instant, level)
            else:
                steps.append(Step(previous, instant, level))
        level += deltas[instant]
        previous = instant
    return steps


def peak_usage(steps: Sequence[Step], window: Span) -> int:
    """The most units in use at any instant of ``window``."""
    return max((s.units for s in steps if s.start < window.end and window.start < s.end), default=0)


def spans_above(steps: Sequence[Step], limit: int) -> list[Span]:
    """Where more than ``limit`` units are in use."""
    return merge(Span(s.start, s.end) for s in steps if s.units > limit)
