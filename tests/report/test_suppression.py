"""--min-count K hides every count below K in every report and picture, and marks it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from evergreen_etl.privacy.disclosure import NhsRule
from evergreen_etl.report import HEADLINE, REPORTS, analysis, pictures, report, rule_for
from evergreen_etl.report.html import render_html
from evergreen_etl.report.render import render, render_analysis
from report.scenario import Warehouse

AFTER_LAST = datetime(2024, 4, 15)
OPTIONS: dict[str, dict[str, Any]] = {
    "movers": {"from_time": datetime(2024, 2, 15), "to_time": AFTER_LAST},
}


def run(scenario: Warehouse, name: str, **options: Any) -> Any:
    """Report ``name`` on the scenario at AFTER_LAST (movers: from mid-February)."""
    options = {"as_of": AFTER_LAST, **OPTIONS.get(name, {}), **options}
    return analysis(scenario.settings, name, engine=scenario.engine, **options)


@pytest.mark.parametrize("k", [2, 3, 9])
@pytest.mark.parametrize("name", list(REPORTS))
def test_no_published_count_is_below_k(scenario: Warehouse, name: str, k: int) -> None:
    """Every count is either at least K or None and named in the row's `suppressed`."""
    result = run(scenario, name, disclosure=rule_for(k))
    differences = {d.name for d in REPORTS[name].differences}
    hidden = 0
    for row in result.rows:
        for column in result.counts:
            value = getattr(row, column)
            if column in row.suppressed:
                assert value is None
                hidden += 1
            elif column not in differences:
                assert value is None or value >= k, (column, value)
    assert hidden, "the scenario's small counts should be suppressed"
    assert result.min_count == k
    assert result.note == f"Counts below {k} are suppressed."


def test_headline_rows_under_min_count(scenario: Warehouse) -> None:
    """Suppressed rows follow the published ones, by code: their true order is not shown."""
    result = run(scenario, HEADLINE, disclosure=rule_for(2))
    assert [(r.local_authority_code, r.users, r.suppressed) for r in result.rows] == [
        ("E06000001", 3, ()),
        ("E06000002", None, ("users",)),
        ("E06000004", None, ("users",)),
        ("E06000005", None, ("users",)),
        ("E08000026", None, ("users",)),
        ("UNKNOWN", None, ("users",)),
    ]


def test_net_is_hidden_with_its_terms(scenario: Warehouse) -> None:
    """A net flow is published only when inflow and outflow are: else it would reveal them."""
    result = run(scenario, "movers", disclosure=rule_for(2))
    assert [(r.local_authority_code, r.inflow, r.outflow, r.net) for r in result.rows] == [
        ("E06000001", 2, None, None),
        ("E06000003", None, None, None),
        ("UNKNOWN", None, None, None),
    ]


@pytest.mark.parametrize("name", list(REPORTS))
def test_every_format_marks_suppressed_counts(scenario: Warehouse, name: str) -> None:
    """JSON gives null with "suppressed": true; CSV and the table say "suppressed"."""
    result = run(scenario, name, disclosure=rule_for(2))
    rows = json.loads(render_analysis(result, "json"))
    for item, row in zip(rows, result.rows, strict=True):
        assert item.get("suppressed", False) == bool(row.suppressed)
        assert all(item[c] is None for c in row.suppressed)
    csv_text = render_analysis(result, "csv")
    table_text = render_analysis(result, "table")
    assert "suppressed" in csv_text
    assert "suppressed" in table_text
    assert "Counts below 2 are suppressed." in table_text


@pytest.mark.parametrize("min_count", [None, 2])
@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_headline_renders_as_it_always_did(
    scenario: Warehouse, fmt: Any, min_count: int | None
) -> None:
    """The generic rendering of the headline is byte for byte the historical one."""
    legacy = render(
        report(
            scenario.settings,
            as_of=AFTER_LAST,
            disclosure=rule_for(min_count),
            engine=scenario.engine,
        ),
        fmt,
    )
    assert render_analysis(run(scenario, HEADLINE, disclosure=rule_for(min_count)), fmt) == legacy


@pytest.mark.parametrize(("k", "bars", "cells"), [(None, 6, [6]), (2, 1, [6]), (7, 0, [])])
def test_pictures_draw_only_published_counts(
    scenario: Warehouse, k: int | None, bars: int, cells: list[int]
) -> None:
    """The chart leaves suppressed rows out; the map draws cells of at least max(K, 5) users."""
    result = run(scenario, HEADLINE, disclosure=rule_for(k))
    chart, user_map = pictures(
        scenario.settings, result, disclosure=rule_for(k), engine=scenario.engine
    )
    assert len(chart.bars) == bars
    assert all(bar.value >= (k or 0) for bar in chart.bars)
    assert [cell.users for cell in user_map.cells] == cells
    assert user_map.min_users == max(k or 0, 5)
    page = render_html(result, chart, user_map)
    assert page.count('<rect class="bar') == bars
    assert page.count('<rect class="cell"') == len(cells)


@pytest.mark.parametrize("name", list(REPORTS))
def test_the_nhs_rule_reaches_every_count(scenario: Warehouse, name: str) -> None:
    """The privacy package's NHS rule, passed as `disclosure`, governs every cell, total and
    picture: nothing published lies between 1 and 7, everything else is a multiple of 5."""
    rule = NhsRule()
    result = run(scenario, name, disclosure=rule)
    published = [getattr(row, c) for row in result.rows for c in result.counts]
    published += list(result.totals.values())
    assert all(v is None or (v % 5 == 0 and not 1 <= abs(v) <= 7) for v in published), published
    assert result.note is not None
    assert "NHS" in result.note
    chart, user_map = pictures(scenario.settings, result, disclosure=rule, engine=scenario.engine)
    assert all(bar.value % 5 == 0 for bar in chart.bars)
    assert user_map.min_users == 8
    assert [cell.users for cell in user_map.cells] == []  # six users: suppressed by the rule
