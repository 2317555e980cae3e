"""Charts as server-made SVG (pure): no chart library, no script, no inline style.

Colours are presentation attributes and classes (the CSP forbids ``style=``); every chart
carries a ``<title>`` and a text fallback for people who cannot see it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Series", "line_chart", "weight_bar"]

COLOURS = {
    "green": "#1a7f37",
    "blue": "#0b5cad",
    "orange": "#bc4c00",
    "purple": "#8250df",
    "threshold": "#b42318",
    "other": "#6e7781",
}


@dataclass(frozen=True)
class Series:
    """One line: its name (shown in the legend), colour key and (x, y) points; a None y
    leaves a gap (a second without data)."""

    name: str
    colour: str
    points: Sequence[tuple[float, float | None]]


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above ``value`` (an axis top)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:g} %"
    if unit == "s":
        return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"
    return f"{value:g}"


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    unit: str = "",
    threshold: float | None = None,
    width: int = 560,
    height: int = 160,
    y_max: float | None = None,
) -> Markup:
    """A line chart of ``series`` over a shared x axis (epoch seconds), with an optional
    horizontal ``threshold`` line. Empty series give a chart saying "no data yet"."""
    pad_l, pad_r, pad_t, pad_b = 56, 8, 18, 20
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    xs = [x for s in series for x, y in s.points if y is not None]
    ys = [y for s in series for _, y in s.points if y is not None]
    head = (
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f'<text x="{pad_l}" y="12" class="chart-title">{escape(title)}</text>'
    )
    if not xs:
        return Markup(
            head + f'<text x="{pad_l + 8}" y="{pad_t + plot_h / 2:.0f}" class="chart-empty">'
            "no data yet</text></svg>"
        )
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x1 = x0 + 1
    top = y_max if y_max is not None else _nice_max(max([*ys, threshold or 0.0]))

    def px(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return pad_t + plot_h - min(max(y, 0.0), top) / top * plot_h

    parts = [
        head,
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{pad_l + plot_w}" y2="{pad_t + plot_h}" '
        'stroke="#999" />',
        f'<text x="{pad_l - 4}" y="{pad_t + 4}" text-anchor="end" class="axis">'
        f"{escape(_fmt(top, unit))}</text>",
        f'<text x="{pad_l - 4}" y="{pad_t + plot_h}" text-anchor="end" class="axis">0</text>',
        f'<text x="{pad_l + plot_w}" y="{height - 4}" text-anchor="end" class="axis">'
        f"{escape(f'{x1 - x0:.0f} s')}</text>",
    ]
    if threshold is not None:
        y = py(threshold)
        parts.append(
            f'<line x1="{pad_l}" y1="{y:.1f}" x2="{pad_l + plot_w}" y2="{y:.1f}" '
            f'stroke="{COLOURS["threshold"]}" stroke-dasharray="4 3" class="threshold" />'
            f'<text x="{pad_l + plot_w}" y="{y - 3:.1f}" text-anchor="end" class="axis">'
            f"threshold {escape(_fmt(threshold, unit))}</text>"
        )
    for i, s in enumerate(series):
        colour = COLOURS.get(s.colour, COLOURS["other"])
        for run in _runs(s.points):
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            if len(run) == 1:
                x, y = run[0]
                parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2" fill="{colour}" />')
            else:
                parts.append(
                    f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                    f'stroke-width="1.5" data-series="{escape(s.name)}" />'
                )
        parts.append(
            f'<text x="{pad_l + 8 + i * 110}" y="{height - 4}" fill="{colour}" class="legend">'
            f"{escape(s.name)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _runs(
    points: Sequence[tuple[float, float | None]],
) -> list[list[tuple[float, float]]]:
    """The points split at gaps (None values), each run in x order."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in sorted(points, key=lambda p: p[0]):
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [r for r in runs if r]


def weight_bar(set_weight: int, actual: float | None, *, width: int = 160) -> Markup:
    """Green's share as set (the filled bar) and as the router measured it (the tick),
    with both numbers as text for screen readers and people who cannot see the bar."""
    set_weight = min(100, max(0, set_weight))
    filled = width * set_weight / 100
    label = f"set {set_weight} %" + (
        f", measured {actual:.0f} %" if actual is not None else ", measured -"
    )
    parts = [
        f'<svg class="weight" role="img" viewBox="0 0 {width} 12" width="{width}" height="12" '
        f'xmlns="http://www.w3.org/2000/svg" data-set="{set_weight}"'
        + (f' data-actual="{actual:.1f}"' if actual is not None else "")
        + f"><title>{escape(label)}</title>",
        f'<rect x="0" y="0" width="{width}" height="12" fill="{COLOURS["blue"]}" '
        'fill-opacity="0.25" />',
        f'<rect x="0" y="0" width="{filled:.1f}" height="12" fill="{COLOURS["green"]}" />',
    ]
    if actual is not None:
        x = width * min(100.0, max(0.0, actual)) / 100
        parts.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="12" stroke="#111" stroke-width="2" />'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
