"""One self-contained HTML page: the report's table, a bar chart and a map of users.

Everything is inline (CSS, a few lines of JavaScript to sort the table, SVG pictures) and a
Content-Security-Policy forbids the page from loading anything, so it opens offline and
cannot leak its figures to a third party when opened.
"""

from __future__ import annotations

import math
from datetime import datetime
from html import escape
from typing import Any

from evergreen_etl.report.boundaries import basis_note
from evergreen_etl.report.chart_data import Chart
from evergreen_etl.report.disclosure import SUPPRESSED
from evergreen_etl.report.render import column_label, format_value
from evergreen_etl.report.results import Analysis, UserMap

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
# The map's frame: the UK from the Scilly Isles and the Channel Islands to Shetland.
_LON_WEST, _LON_EAST, _LAT_SOUTH, _LAT_NORTH = -8.7, 2.0, 49.1, 61.0
_MAP_SCALE = 62.0  # pixels per degree of latitude
_LON_FACTOR = math.cos(math.radians(55.0))  # shrink longitude at the UK's middle latitude

_STYLE = """
:root { --ink: #1d2a33; --muted: #5d6b75; --line: #d8dee3; --bar: #2f7d5b; --unknown: #9aa5ad; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0; padding: 24px 32px 48px; background: #fbfcfc; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 8px; }
p.meta, p.note, figcaption { color: var(--muted); margin: 4px 0; }
table { border-collapse: collapse; margin-top: 8px; background: #fff; min-width: 480px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 10px; text-align: left; }
th { cursor: pointer; user-select: none; background: #f0f3f5; position: sticky; top: 0; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.suppressed { color: var(--muted); font-style: italic; }
tfoot td { font-weight: 600; border-top: 2px solid var(--ink); }
.scroll { max-height: 640px; overflow: auto; display: inline-block; }
.pictures { display: flex; flex-wrap: wrap; gap: 32px; align-items: flex-start; }
figure { margin: 0; }
#chart-figure { flex: 0 1 660px; }
#map-figure { flex: 0 0 auto; max-width: 420px; }
svg text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: var(--ink); }
svg .bar { fill: var(--bar); }
svg .bar.unknown { fill: var(--unknown); }
svg .district { fill: #c9d1d6; }
svg .cell { stroke: #fff; stroke-width: 0.3; }
"""

_SCRIPT = """
(function () {
  var table = document.getElementById("report-table");
  if (!table || !table.tHead) { return; }
  var body = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  headers.forEach(function (th, index) {
    th.addEventListener("click", function () {
      var descending = th.getAttribute("aria-sort") !== "descending";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[index].getAttribute("data-value");
        var y = b.cells[index].getAttribute("data-value");
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (!isNaN(nx) && !isNaN(ny)) ? (nx > ny) - (nx < ny) : x.localeCompare(y);
        return descending ? -order : order;
      });
      headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  table.setAttribute("data-sortable", "ready");
})();
"""


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _table(result: Analysis[Any]) -> str:
    counts = set(result.counts)
    head = "".join(
        f'<th scope="col"{" class=num" if name in counts else ""}>{escape(column_label(name))}</th>'
        for name in result.columns
    )
    body = []
    for row in result.rows:
        cells = []
        for name in result.columns:
            value = getattr(row, name)
            if name in row.suppressed:
                cells.append(f'<td class="num suppressed" data-value="-Infinity">{SUPPRESSED}</td>')
            elif name in counts:
                shown = "" if value is None else f"{value:,}"
                sort = "" if value is None else str(value)
                cells.append(f'<td class="num" data-value="{sort}">{shown}</td>')
            else:
                text = format_value(value)
                cells.append(f'<td data-value="{escape(text)}">{escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    foot = ""
    if result.totals:
        cells = []
        for i, name in enumerate(result.columns):
            if name in result.totals:
                total = result.totals[name]
                shown = SUPPRESSED if total is None else f"{total:,}"
                cells.append(f'<td class="num">{shown}</td>')
            else:
                cells.append("<td>Total</td>" if i == 0 else "<td></td>")
        foot = "<tfoot><tr>" + "".join(cells) + "</tr></tfoot>"
    return (
        f'<table id="report-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody>{foot}</table>"
    )


def bar_chart_svg(chart: Chart) -> str:
    """The bar chart as an inline ``<svg>`` element (styled by the page's CSS classes)."""
    return _bar_chart(chart)


def _bar_chart(chart: Chart) -> str:
    label_width, bar_width, row_height, top = 250, 330, 22, 8
    height = top + row_height * max(len(chart.bars), 1) + 24
    width = label_width + bar_width + 70
    most = max((bar.value for bar in chart.bars), default=0)
    parts = [
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(chart.title)}</title>",
    ]
    if not chart.bars:
        parts.append(f'<text x="0" y="{top + 14}">Nothing to draw.</text>')
    for i, bar in enumerate(chart.bars):
        y = top + i * row_height
        length = bar.value / most * bar_width if most else 0
        label = bar.label if len(bar.label) <= 32 else bar.label[:31] + "…"
        css = "bar unknown" if bar.unknown else "bar"
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="{css}" x="{label_width}" y="{y + 3}" width="{length:.1f}" '
            f'height="{row_height - 6}"><title>{escape(bar.label)}: {bar.value:,}</title></rect>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + 15}">{bar.value:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _project(latitude: float, longitude: float) -> tuple[float, float]:
    x = (longitude - _LON_WEST) * _LON_FACTOR * _MAP_SCALE
    y = (_LAT_NORTH - latitude) * _MAP_SCALE
    return x, y


def _colour(users: int, most: int) -> str:
    # Light to dark green on a log scale, so that a city does not wash out the rest.
    share = math.log1p(users) / math.log1p(most) if most > 1 else 1.0
    light, dark = (199, 233, 192), (0, 90, 50)
    r, g, b = (round(lo + (hi - lo) * share) for lo, hi in zip(light, dark, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def _map(user_map: UserMap) -> str:
    width, height = _project(_LAT_SOUTH, _LON_EAST)
    parts = [
        f'<svg id="map" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}">',
        "<title>Users by grid cell</title>",
        f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="#f4f7f8"/>',
    ]
    for latitude, longitude in user_map.districts:
        x, y = _project(latitude, longitude)
        parts.append(f'<circle class="district" cx="{x:.1f}" cy="{y:.1f}" r="1.2"/>')
    most = max((cell.users for cell in user_map.cells), default=0)
    size = user_map.cell_degrees
    for cell in user_map.cells:
        x, y = _project(cell.latitude + size, cell.longitude)
        w, h = size * _LON_FACTOR * _MAP_SCALE, size * _MAP_SCALE
        parts.append(
            f'<rect class="cell" x="{x:.2f}" y="{y:.2f}" width="{max(w, 3):.2f}" '
            f'height="{max(h, 3):.2f}" fill="{_colour(cell.users, most)}">'
            f"<title>{cell.users:,} users</title></rect>"
        )
    if user_map.cells:
        least = min(cell.users for cell in user_map.cells)
        parts.append(_legend(least, most, height))
    parts.append("</svg>")
    return "".join(parts)


def _legend(least: int, most: int, height: float) -> str:
    # Five swatches from the smallest drawn cell to the largest, evenly on a log scale.
    steps = [round(least * (most / least) ** (i / 4)) for i in range(5)]
    y = height - 30
    parts = [f'<text x="10" y="{y - 6:.0f}">Users per cell</text>']
    for i, users in enumerate(sorted(set(steps))):
        x = 10 + i * 44
        parts.append(
            f'<rect x="{x}" y="{y:.0f}" width="14" height="14" fill="{_colour(users, most)}"/>'
            f'<text x="{x + 18}" y="{y + 12:.0f}">{users:,}</text>'
        )
    return "".join(parts)


def render_html(result: Analysis[Any], chart: Chart, user_map: UserMap) -> str:
    """The page for ``result``: its table, ``chart`` and ``user_map``, as one HTML document."""
    note = f'<p class="note">{escape(result.note)}</p>' if result.note else ""
    if result.basis is not None:
        note = f'<p class="meta basis">{escape(basis_note(result.basis))}</p>\n{note}'.rstrip()
    hidden = (
        f" {chart.hidden} suppressed {'row is' if chart.hidden == 1 else 'rows are'} not drawn."
        if chart.hidden
        else ""
    )
    cells = len(user_map.cells)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(result.title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
<h1>{escape(result.title)}</h1>
<p class="meta">evergreen-etl report <code>{escape(result.name)}</code>.
Pseudonymised data: counts of distinct users, never a person.</p>
{note}
</header>
<main>
<section class="pictures">
<figure id="chart-figure">
<h2>{escape(chart.title)}</h2>
{_bar_chart(chart)}
<figcaption>Largest published values first.{escape(hidden)}</figcaption>
</figure>
<figure id="map-figure">
<h2>Where users live at {_when(user_map.as_of)}</h2>
{_map(user_map)}
<figcaption>{cells} grid {"cell" if cells == 1 else "cells"} of {user_map.cell_degrees:g}°
from the centroids of full postcodes found in the lookup; cells with fewer than
{user_map.min_users} users are not drawn. Grey dots: postcode districts in the lookup.
</figcaption>
</figure>
</section>
<section id="table-section">
<h2>Table</h2>
<div class="scroll">{_table(result)}</div>
</section>
</main>
<script>{_SCRIPT}</script>
</body>
</html>
"""
