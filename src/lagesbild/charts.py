"""Small charts drawn on the server as SVG (no script, nothing for the Content-Security-Policy to allow).

Each chart is an image with a title for screen readers; the page gives the same numbers as a table next to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

INK = "#1b1f24"
GRID = "#d0d5da"
MUTED = "#4d5660"


@dataclass
class Series:
    name: str
    values: list[int]
    colour: str
    dashed: bool = False


def _nice_top(value: float) -> int:
    """A round number at or above `value` for the top of the axis."""
    if value <= 5:
        return 5
    for step in (1, 2, 2.5, 5):
        for magnitude in (1, 10, 100, 1000, 10000, 100000):
            if step * magnitude * 5 >= value:
                return int(step * magnitude * 5)
    return int(value)


def line_chart(title: str, labels: list[str], series: list[Series], width: int = 720, height: int = 260) -> str:
    """Lines over categories (months, say), with a y axis from zero and a legend."""
    left, right, top, bottom = 44, 12, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = _nice_top(max((max(s.values, default=0) for s in series), default=0))
    count = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / highest

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}" class="chart">']
    for k in range(6):
        value = highest * k / 5
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="{MUTED}">{value:g}</text>')
    step = max(1, count // 12)
    for i, label in enumerate(labels):
        if i % step == 0 or i == count - 1:
            parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11" '
                         f'fill="{MUTED}">{escape(label)}</text>')
    for s in series:
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(s.values))
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        parts.append(f'<polyline points="{points}" fill="none" stroke="{s.colour}" stroke-width="2.5"{dash}/>')
        for i, v in enumerate(s.values):
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{s.colour}">'
                         f'<title>{escape(labels[i])}: {v} ({escape(s.name)})</title></circle>')
    legend_x = left
    for s in series:
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        parts.append(f'<line x1="{legend_x}" x2="{legend_x + 22}" y1="12" y2="12" stroke="{s.colour}" '
                     f'stroke-width="2.5"{dash}/>')
        parts.append(f'<text x="{legend_x + 28}" y="16" font-size="12" fill="{INK}">{escape(s.name)}</text>')
        legend_x += 40 + 7 * len(s.name)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, rows: list[tuple[str, int, str]], width: int = 360, bar_height: int = 22) -> str:
    """Horizontal bars, one per row (label, value, colour), longest first as given."""
    label_w, value_w, gap = 190, 40, 6
    height = max(1, len(rows)) * (bar_height + gap)
    highest = max((v for _l, v, _c in rows), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}" class="chart">']
    for i, (label, value, colour) in enumerate(rows):
        y = i * (bar_height + gap)
        length = (width - label_w - value_w) * value / highest
        short = label if len(label) <= 26 else label[:25] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end" font-size="12" '
                     f'fill="{INK}">{escape(short)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_height}" fill="{colour}">'
                     f'<title>{escape(label)}: {value}</title></rect>')
        parts.append(f'<text x="{label_w + length + 4:.1f}" y="{y + bar_height * 0.7:.1f}" font-size="12" '
                     f'fill="{INK}">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def contrast_ink(background: str) -> str:
    """Dark ink or white, whichever has the higher contrast on `background` (#rrggbb)."""
    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    shade = luminance(background)
    on_dark = (1.05) / (shade + 0.05)
    on_light = (shade + 0.05) / (luminance(INK) + 0.05)
    return "#ffffff" if on_dark > on_light else INK
