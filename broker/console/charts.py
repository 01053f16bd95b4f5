"""Bar charts as inline SVG, drawn on the server. Pure: values in, markup out.

Each chart is ``role="img"`` with a ``<title>`` and ``<desc>`` naming every value, and the pages
print the same figures in a table beside it, so nothing is only in the picture. Colours pass
WCAG 2.2 non-text contrast (3:1) against white, and series are told apart by pattern of position
and by the legend, not by colour alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

#: Dark blue, dark red, dark amber: each at least 4.5:1 on white.
COLOURS = ("#1d4f91", "#a4262c", "#8a5a00")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]


def stacked_bars(
    title: str, labels: Sequence[str], series: Sequence[Series], *, width: int = 640
) -> Markup:
    """A grouped bar chart: one group per label, one bar per series."""
    height, left, bottom, top = 220, 48, 40, 28
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max([1, *(v for s in series for v in s.values)])
    n = max(1, len(labels))
    group_w = plot_w / n
    bar_w = max(2.0, (group_w - 6) / max(1, len(series)))
    desc = "; ".join(
        f"{label}: " + ", ".join(f"{s.name} {s.values[i]}" for s in series)
        for i, label in enumerate(labels)
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img"'
        f' aria-labelledby="t-{id(series)} d-{id(series)}" class="chart">',
        f'<title id="t-{id(series)}">{escape(title)}</title>',
        f'<desc id="d-{id(series)}">{escape(desc)}</desc>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}"'
        ' stroke="#333" />',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    for i, label in enumerate(labels):
        x0 = left + i * group_w + 3
        for k, s in enumerate(series):
            v = s.values[i]
            h = plot_h * v / peak
            parts.append(
                f'<rect x="{x0 + k * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}"'
                f' height="{h:.1f}" fill="{COLOURS[k % len(COLOURS)]}" />'
            )
        parts.append(
            f'<text x="{x0 + group_w / 2 - 3:.1f}" y="{height - bottom + 16}" text-anchor="middle"'
            f' font-size="11">{escape(label)}</text>'
        )
    for k, s in enumerate(series):
        x = left + k * 130
        parts.append(
            f'<rect x="{x}" y="6" width="12" height="12" fill="{COLOURS[k % len(COLOURS)]}" />'
            f'<text x="{x + 16}" y="16" font-size="12">{escape(s.name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped
