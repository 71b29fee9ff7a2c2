"""The bar chart as a PNG, drawn with matplotlib (optional extra ``evergreen-etl[charts]``),
and as a standalone SVG (the HTML page's chart, no extra needed).

The PNG shows what the HTML chart shows, the largest published values first (suppressed rows
are never drawn), in a real font, with a caption saying the report's time and boundaries.
"""

from __future__ import annotations

import io
from datetime import datetime
from importlib import import_module
from types import ModuleType
from typing import Any

from evergreen_etl.errors import ConfigurationError
from evergreen_etl.report.chart_data import Chart
from evergreen_etl.report.results import Analysis

BAR_COLOUR = "#2f7d5b"
UNKNOWN_COLOUR = "#9aa5ad"
INK, MUTED = "#1d2a33", "#5d6b75"
_SVG_STYLE = (
    "<style>text { font: 12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; "
    f"fill: {INK}; }} .bar {{ fill: {BAR_COLOUR}; }} .bar.unknown {{ fill: {UNKNOWN_COLOUR}; }}"
    "</style>"
)


def require_matplotlib() -> ModuleType:
    """matplotlib, or a configuration error (exit 2) saying what to install."""
    try:
        return import_module("matplotlib")
    except ImportError:
        raise ConfigurationError(
            "--png needs matplotlib: pip install 'evergreen-etl[charts]' "
            "(or use --svg, which needs nothing more)"
        ) from None


def caption(result: Analysis[Any]) -> str:
    """What the picture is of: the report's time, its boundaries and how counts were treated."""
    parts = [f"As of {_when(result.as_of)}"]
    if result.from_time is not None:
        parts = [f"From {_when(result.from_time)} to {_when(result.as_of)}"]
    if result.boundaries is not None:
        parts.append(f"boundaries: {result.boundaries}")
    text = "; ".join(parts) + "."
    return f"{text} {result.note}" if result.note else text


def render_png(chart: Chart, caption: str | None = None) -> bytes:
    """The chart's bars, labels and values as a PNG image (suppressed rows are not in it)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = max(len(chart.bars), 1)
    figure = Figure(figsize=(9.0, 1.6 + 0.32 * rows), dpi=100, facecolor="white")
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.3, 0.9 / (1.6 + 0.32 * rows), 0.6, 0.32 * rows / (1.6 + 0.32 * rows)))
    bars = list(reversed(chart.bars))  # the largest at the top
    if bars:
        positions = range(len(bars))
        axes.barh(
            positions,
            [bar.value for bar in bars],
            color=[UNKNOWN_COLOUR if bar.unknown else BAR_COLOUR for bar in bars],
            height=0.72,
            antialiased=False,
        )
        axes.set_yticks(list(positions), [_fit(bar.label) for bar in bars], color=INK)
        most = max(bar.value for bar in bars)
        for position, bar in zip(positions, bars, strict=True):
            axes.text(bar.value + most * 0.01, position, f"{bar.value:,}", va="center", color=INK)
        axes.set_xlim(0, most * 1.15)
        axes.set_ylim(-0.6, len(bars) - 0.4)
    else:
        axes.set_yticks([])
        axes.text(0.02, 0.5, "Nothing to draw.", transform=axes.transAxes, color=MUTED)
    axes.set_xticks([])
    for side in ("top", "right", "bottom"):
        axes.spines[side].set_visible(False)
    axes.spines["left"].set_color("#d8dee3")
    axes.tick_params(axis="y", length=0)
    figure.text(
        0.02,
        1 - 0.25 / (1.6 + 0.32 * rows),
        chart.title,
        fontsize=13,
        weight="bold",
        color=INK,
        va="top",
    )
    if caption:
        figure.text(0.02, 0.12 / (1.6 + 0.32 * rows), caption, fontsize=9, color=MUTED, wrap=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()


def render_svg(chart: Chart) -> str:
    """The HTML page's bar chart as a standalone SVG file (its style inside, no extra needed)."""
    from evergreen_etl.report.html import bar_chart_svg

    svg = bar_chart_svg(chart)
    head, _, rest = svg.partition(">")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{head}>{_SVG_STYLE}{rest}\n'


def _fit(label: str, width: int = 32) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"
