"""What the pictures show: a bar chart of a report's top rows and a binned map of users.

Both are built from published figures only: a suppressed count is never drawn, and the map
draws grid cells (never a postcode) holding at least the disclosure rule's map minimum.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine

from evergreen_etl.report.boundaries import basis_short
from evergreen_etl.report.catalog import REPORTS, run_sql
from evergreen_etl.report.disclosure import (
    MAP_MIN_USERS,
    DisclosureRule,
    map_min_users,
    publish_cell,
)
from evergreen_etl.report.results import Analysis, MapCell, UserMap
from evergreen_etl.warehouse.schema import UNKNOWN_AUTHORITY

CHART_BARS = 20
MAP_CELL_DEGREES = 0.1


class Bar(BaseModel):
    """One bar: its label, its published value, and whether it stands for the unknown."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    value: int
    unknown: bool = False


class Chart(BaseModel):
    """A horizontal bar chart of the largest published values of one report column."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    value_label: str
    bars: list[Bar]
    hidden: int = 0  # rows not drawn because their count is suppressed
    note: str | None = None


def chart(result: Analysis[Any], limit: int = CHART_BARS) -> Chart:
    """The top ``limit`` rows of ``result`` by its chart column; suppressed rows left out."""
    spec = REPORTS[result.name]
    if spec.chart is None:
        raise ValueError(f"report '{result.name}' has no chart")
    label_column, value_column, noun = spec.chart
    drawable: list[Bar] = []
    hidden = 0
    for row in result.rows:
        value = getattr(row, value_column)
        if value is None:
            hidden += 1
            continue
        if value <= 0:
            continue
        code = next((getattr(row, c) for c in result.columns if c.endswith("_code")), None)
        drawable.append(
            Bar(
                label=str(getattr(row, label_column)),
                value=value,
                unknown=code == UNKNOWN_AUTHORITY,
            )
        )
    drawable.sort(key=lambda bar: (-bar.value, bar.label))
    top = drawable[:limit]
    what = value_column.replace("_", " ")
    shown = f"Top {len(top)} {noun}" if len(drawable) > limit else noun.capitalize()
    # The boundary basis and lookup version go in the title: a PNG travels without its page.
    on = f" ({basis_short(result.basis)})" if result.basis is not None else ""
    return Chart(
        title=f"{shown} by {what}{on}",
        value_label=what,
        bars=top,
        hidden=hidden,
        note=result.note,
    )


def _cell(value: float, size: float) -> int:
    # A hair of tolerance so that 54.3 / 0.1 = 542.99999... lands in cell 543.
    return math.floor(value / size + 1e-9)


def user_map(
    engine: Engine, as_of: datetime, rule: DisclosureRule, cell_degrees: float = MAP_CELL_DEGREES
) -> UserMap:
    """Users at ``as_of`` binned on a ``cell_degrees`` grid from their postcode's centroid.

    Only full postcodes found in the lookup have a centroid. A cell is kept when it holds at
    least MAP_MIN_USERS users and ``rule`` publishes its count; it shows the published count.
    """
    totals: Counter[tuple[int, int]] = Counter()
    for row in run_sql(engine, "map_user_centroids", {"as_of": as_of}):
        key = (_cell(row["latitude"], cell_degrees), _cell(row["longitude"], cell_degrees))
        totals[key] += int(row["users"])
    cells = []
    for (lat_i, lon_i), users in sorted(totals.items()):
        shown = publish_cell(rule, users, at_least=MAP_MIN_USERS)
        if shown is None:
            continue
        cells.append(
            MapCell(
                latitude=round(lat_i * cell_degrees, 6),
                longitude=round(lon_i * cell_degrees, 6),
                users=shown,
            )
        )
    districts = [
        (round(float(r["latitude"]), 3), round(float(r["longitude"]), 3))
        for r in run_sql(engine, "map_postcode_districts", {})
    ]
    return UserMap(
        as_of=as_of,
        cell_degrees=cell_degrees,
        min_users=map_min_users(rule),
        cells=cells,
        districts=districts,
    )
