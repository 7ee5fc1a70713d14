"""Small charts as inline SVG, drawn on the server: no script, no image files, crisp at any size.

Each function returns markup ready to place in a page. Text comes from data (reason
codes, usernames) and is escaped; colours are attributes, so the page's content security
policy (no inline styles) holds. Every chart carries a ``<title>`` for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from markupsafe import Markup, escape

PALETTE = ("#1f6feb", "#e3a008", "#d73a49", "#2da44e", "#8250df", "#6e7781", "#bf3989", "#0a7f86")
ACTION_COLOURS: Mapping[str, str] = {
    "approve": "#2da44e",
    "review": "#e3a008",
    "decline": "#d73a49",
}
VERDICT_COLOURS: Mapping[str, str] = {
    "fraud": "#d73a49",
    "legitimate": "#2da44e",
    "escalate": "#8250df",
}
RAISES_RISK = "#d73a49"
LOWERS_RISK = "#1f6feb"
LABEL_PX = 12
"""The font size of a chart's labels, as ``ui.css`` sets ``.chart .label``."""
TICK_PX = 10
"""The font size of an axis's ticks, as ``ui.css`` sets ``.chart .tick``."""


def colours_for(keys: Sequence[str], known: Mapping[str, str] | None = None) -> dict[str, str]:
    """A colour per key: the known one where there is one, the palette in turn otherwise."""
    known = known or {}
    spare = iter(c for c in PALETTE if c not in known.values())
    return {key: known.get(key) or next(spare, "#57606a") for key in keys}


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ at or above ``value`` (an axis's top); 1 for nothing."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return float(step * power)
    return float(10 * power)


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' role="img" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        *body,
        "</svg>",
    ]
    return Markup("".join(parts))


def _text(x: float, y: float, text: str, *, anchor: str = "start", cls: str = "label") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{cls}">{escape(text)}</text>'
    )


def text_width(text: str, font_px: float) -> float:
    """A generous estimate of how wide ``text`` is drawn at ``font_px`` in the UI's sans-serif
    font (about 0.6 em a character), so labels are given room rather than cut."""
    return len(text) * font_px * 0.6


def reason_bars(
    reasons: Sequence[tuple[str, float]], *, width: int = 460, min_plot_width: int = 140
) -> Markup:
    """Reason codes as bars either side of zero: red raises the risk, blue lowers it.

    The label column is as wide as the longest code, so no name is cut; the bars take the
    rest of ``width`` (at least ``min_plot_width``, widening the chart for very long
    codes). The chart scales down to its panel (CSS), keeping its proportions."""
    value_w = 56
    if not reasons:
        return _svg(width, 28, "No reason codes", [_text(4, 18, "no reason codes recorded")])
    row = 22
    label_w = math.ceil(max(text_width(code, LABEL_PX) for code, _ in reasons)) + 12
    plot_width = max(min_plot_width, width - label_w - value_w)
    width = label_w + plot_width + value_w
    height = row * len(reasons) + 8
    top = max(abs(value) for _, value in reasons) or 1.0
    both_signs = any(v < 0 for _, v in reasons) and any(v > 0 for _, v in reasons)
    zero = label_w + (plot_width / 2 if both_signs else 0)
    scale = (plot_width / 2 if both_signs else plot_width) / top
    body = [
        f'<line x1="{zero:.1f}" y1="2" x2="{zero:.1f}" y2="{height - 4}" class="axis"/>',
    ]
    for i, (code, value) in enumerate(reasons):
        y = 4 + i * row
        length = abs(value) * scale
        x = zero if value >= 0 else zero - length
        colour = RAISES_RISK if value >= 0 else LOWERS_RISK
        body.append(_text(label_w - 8, y + 14, code, anchor="end"))
        body.append(
            f'<rect x="{x:.1f}" y="{y + 3}" width="{max(length, 1):.1f}" height="{row - 8}"'
            f' fill="{colour}"><title>{escape(code)}: {value:+.4f}</title></rect>'
        )
        body.append(_text(width - 4, y + 14, f"{value:+.3f}", anchor="end", cls="value"))
    return _svg(width, height, "Reason codes and how much each moved the score", body)


def stacked_bars(
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    colours: Mapping[str, str],
    *,
    title: str,
    width: int = 640,
    height: int = 190,
    label_every: int = 1,
) -> Markup:
    """Counts over time, one bar per period with each series stacked, and a legend."""
    left, right, top, bottom = 44, 8, 26, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    ceiling = nice_ceiling(max(totals, default=0))
    body = _legend(list(series), colours, left)
    body += _y_axis(left, top, plot_w, plot_h, ceiling, lambda v: f"{v:,.0f}")
    slot = plot_w / max(len(labels), 1)
    bar_w = max(slot * 0.8, 1.0)
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar_w) / 2
        y = float(top + plot_h)
        for key, values in series.items():
            count = values[i]
            if count <= 0:
                continue
            h = count / ceiling * plot_h
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}"'
                f' fill="{colours[key]}"><title>{escape(label)} · {escape(key)}: {count:,}'
                "</title></rect>"
            )
    body += _ticks(labels, left + slot / 2, slot, label_every, height - 6, width)
    return _svg(width, height, title, body)


def rate_bars(
    labels: Sequence[str],
    rates: Sequence[float | None],
    *,
    title: str,
    colour: str = RAISES_RISK,
    width: int = 640,
    height: int = 150,
    label_every: int = 1,
) -> Markup:
    """A share per period (0…1) as bars; a period with nothing to divide draws no bar."""
    left, right, top, bottom = 44, 8, 10, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    ceiling = min(nice_ceiling(max((r for r in rates if r is not None), default=0.0)), 1.0)
    body = _y_axis(left, top, plot_w, plot_h, ceiling, lambda v: f"{v * 100:.3g} %")
    slot = plot_w / max(len(labels), 1)
    bar_w = max(slot * 0.8, 1.0)
    for i, (label, rate) in enumerate(zip(labels, rates, strict=True)):
        x = left + i * slot + (slot - bar_w) / 2
        if rate is not None and rate > 0:
            h = rate / ceiling * plot_h
            body.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}"'
                f' height="{h:.1f}" fill="{colour}"><title>{escape(label)}: '
                f"{rate * 100:.2f} %</title></rect>"
            )
    body += _ticks(labels, left + slot / 2, slot, label_every, height - 6, width)
    return _svg(width, height, title, body)


def hbars(
    items: Sequence[tuple[str, float]],
    colours: Mapping[str, str],
    *,
    title: str,
    width: int = 420,
    value_format: str = "{:,.0f}",
) -> Markup:
    """Labelled horizontal bars, one per item, scaled to the largest."""
    if not items:
        return _svg(width, 28, title, [_text(4, 18, "nothing to show yet")])
    row, label_w, value_w = 24, 120, 70
    height = row * len(items) + 6
    top = max(value for _, value in items) or 1.0
    scale = (width - label_w - value_w) / top
    body: list[str] = []
    for i, (label, value) in enumerate(items):
        y = 3 + i * row
        body.append(_text(label_w - 8, y + 15, label, anchor="end"))
        body.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{max(value * scale, 1):.1f}"'
            f' height="{row - 8}" fill="{colours.get(label, PALETTE[0])}"/>'
        )
        text = value_format.format(value)
        body.append(_text(label_w + value * scale + 6, y + 15, text, cls="value"))
    return _svg(width, height, title, body)


def _ticks(
    labels: Sequence[str], first: float, slot: float, every: int, y: float, width: float
) -> list[str]:
    """Every ``every``-th period's label, centred under its bar (the first at ``first``,
    then one ``slot`` apart), held inside the chart where centring would run it past an
    edge; a label that would then touch the one after it is left out (the newest stay)."""
    body: list[str] = []
    right_limit = width - 2
    for i in reversed(range(0, len(labels), every)):
        label = labels[i]
        half = text_width(label, TICK_PX) / 2
        centre = min(max(first + i * slot, 2 + half), right_limit - half)
        if centre + half > right_limit:
            continue  # wider than room is left
        body.append(_text(centre, y, label, anchor="middle", cls="tick"))
        right_limit = centre - half - 4
    return body


def _legend(keys: Sequence[str], colours: Mapping[str, str], left: float) -> list[str]:
    body, x = [], left
    for key in keys:
        body.append(f'<rect x="{x:.1f}" y="6" width="10" height="10" fill="{colours[key]}"/>')
        body.append(_text(x + 14, 15, key))
        x += 24 + 7 * len(key)
    return body


def _y_axis(
    left: float,
    top: float,
    plot_w: float,
    plot_h: float,
    ceiling: float,
    fmt: Callable[[float], str],
) -> list[str]:
    body = []
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - fraction)
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        body.append(_text(left - 4, y + 4, fmt(ceiling * fraction), anchor="end", cls="tick"))
    return body
