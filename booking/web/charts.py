"""Small charts drawn on the server as inline SVG: no script, no chart CDN,
nothing the Content-Security-Policy has to allow, and they print.

Two shapes cover the report pages:

- ``column_chart``: vertical columns per category (months), one column per
  series side by side (effective and external hours by month);
- ``bar_chart``: horizontal bars per labelled row, one bar per series
  (top instruments by hours; voucher money by provider, category, region).

Every chart carries a ``<title>`` and ``<desc>`` for screen readers and a
``<title>`` per bar (the value on hover). Colours are SVG presentation
attributes, not styles, so no inline ``style`` is needed. Values are
``Decimal`` or numbers; labels are escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from itertools import count

from markupsafe import Markup, escape

PALETTE = ("#a3161a", "#0969da", "#1a7f37", "#9a6700", "#8250df", "#57606a")
INK = "#1b1f24"
MUTED = "#57606a"
GRID = "#d0d7de"
_ids = count(1)


def nice_step(maximum: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 × 10^k) giving at most ``ticks`` steps up to ``maximum``."""
    if maximum <= 0:
        return 1.0
    raw = maximum / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def format_number(value: float | Decimal, decimals: int = 2) -> str:
    text = f"{float(value):,.{decimals}f}"
    if decimals and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _legend(series_names: Sequence[str], x: float, y: float) -> list[str]:
    parts = []
    offset = 0.0
    for index, name in enumerate(series_names):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<rect x="{x + offset:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + offset + 14:.1f}" y="{y:.1f}" font-size="13" fill="{INK}">'
            f"{escape(name)}</text>"
        )
        offset += 30 + 13 * len(name)
    return parts


def _frame(width: int, height: int, title: str, description: str, body: list[str]) -> Markup:
    uid = next(_ids)
    return Markup(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="chart-t{uid} chart-d{uid}" '
        f'font-family="sans-serif">'
        f'<title id="chart-t{uid}">{escape(title)}</title>'
        f'<desc id="chart-d{uid}">{escape(description)}</desc>' + "".join(body) + "</svg>"
    )


def _describe(labels: Sequence[str], series: Sequence[tuple[str, Sequence]], unit: str) -> str:
    parts = []
    for name, values in series:
        items = ", ".join(
            f"{label} {format_number(v)}{unit}" for label, v in zip(labels, values, strict=True)
        )
        parts.append(f"{name}: {items}")
    return "; ".join(parts)


def column_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[Decimal | float]]],
    *,
    title: str,
    unit: str = "",
    width: int = 600,
    height: int = 260,
) -> Markup:
    """Columns per label, the series side by side, with a value axis."""
    left, right, top, bottom = 56, 12, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    maximum = max((float(v) for _n, values in series for v in values), default=0.0)
    step = nice_step(maximum)
    top_value = step * max(1, math.ceil(maximum / step)) if maximum > 0 else step * 5
    body = [*_legend([name for name, _v in series], left, 16)]
    for i in range(round(top_value / step) + 1):
        value = i * step
        y = top + plot_h - plot_h * value / top_value
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="12" text-anchor="end" '
            f'fill="{MUTED}">{escape(format_number(value))}</text>'
        )
    slot = plot_w / max(len(labels), 1)
    n = max(len(series), 1)
    bar_w = slot * 0.8 / n
    for index, label in enumerate(labels):
        x0 = left + slot * index + slot * 0.1
        for s, (name, values) in enumerate(series):
            value = float(values[index])
            h = plot_h * value / top_value if top_value else 0
            x = x0 + s * bar_w
            y = top + plot_h - h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(label)} {escape(name)}: '
                f"{escape(format_number(value))}{escape(unit)}</title></rect>"
            )
        body.append(
            f'<text x="{left + slot * index + slot / 2:.1f}" y="{height - bottom + 16}" '
            f'font-size="13" text-anchor="middle" fill="{INK}">{escape(label)}</text>'
        )
    body.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        f'stroke="{INK}" stroke-width="1"/>'
    )
    return _frame(width, height, title, _describe(labels, series, unit), body)


def bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[Decimal | float]]],
    *,
    title: str,
    unit: str = "",
    width: int = 600,
    label_chars: int = 14,
) -> Markup:
    """Horizontal bars per label (a row each), the series stacked below each
    other inside the row, the value written after each bar."""
    n = max(len(series), 1)
    bar_h = 15
    row_h = n * bar_h + 10
    left, right, top = 12 + 13 * min(label_chars, 20), 72, 30
    height = top + row_h * max(len(labels), 1) + 8
    plot_w = width - left - right
    maximum = max((float(v) for _n, values in series for v in values), default=0.0)
    body = [*_legend([name for name, _v in series], 12, 16)]
    if not labels:
        body.append(f'<text x="12" y="{top + 16}" font-size="12" fill="{MUTED}">–</text>')
    for index, label in enumerate(labels):
        y0 = top + index * row_h
        body.append(
            f'<text x="{left - 8}" y="{y0 + row_h / 2 + 4:.1f}" font-size="13" '
            f'text-anchor="end" fill="{INK}"><title>{escape(label)}</title>'
            f"{escape(_truncate(label, label_chars))}</text>"
        )
        for s, (name, values) in enumerate(series):
            value = float(values[index])
            w = plot_w * value / maximum if maximum > 0 else 0
            y = y0 + 4 + s * bar_h
            body.append(
                f'<rect x="{left}" y="{y:.1f}" width="{w:.1f}" height="{bar_h - 2}" '
                f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(label)} {escape(name)}: '
                f"{escape(format_number(value))}{escape(unit)}</title></rect>"
                f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 4:.1f}" font-size="12" '
                f'fill="{MUTED}">{escape(format_number(value))}</text>'
            )
    return _frame(width, height, title, _describe(labels, series, unit), body)
