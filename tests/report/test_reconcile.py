"""The analyses reconcile: their rows add up to the headline total at the same time."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import text

from evergreen_etl.report import Boundaries, analysis, report
from report.scenario import DATES, Warehouse

TIMES = ["2023-12-31", *DATES, "2024-02-15", "2024-04-15"]
BY_PLACE = ["local-authority", "region", "country", "sex-age", "postcode-status"]


def users_in(scenario: Warehouse, name: str, **options: Any) -> int:
    """The sum of the ``users`` column of report ``name``."""
    result = analysis(scenario.settings, name, engine=scenario.engine, **options)
    return sum(row.users for row in result.rows)


@pytest.mark.parametrize("as_of", TIMES)
@pytest.mark.parametrize("boundaries", ["supplied", "current"])
def test_reports_by_place_add_up_to_the_headline_total(
    scenario: Warehouse, as_of: str, boundaries: Boundaries
) -> None:
    """Region, country, sex-age and postcode-status rows sum to report().total."""
    moment = datetime.fromisoformat(as_of)
    total = report(
        scenario.settings, as_of=moment, boundaries=boundaries, engine=scenario.engine
    ).total
    for name in BY_PLACE:
        options: dict[str, Any] = {"as_of": moment}
        if name != "postcode-status":
            options["boundaries"] = boundaries
        assert users_in(scenario, name, **options) == total, name


@pytest.mark.parametrize("as_of", ["2024-01-15", "2024-02-15"])
def test_current_boundaries_keep_the_total(bucks: Warehouse, as_of: str) -> None:
    """Mapping abolished codes to today's moves users between rows, never in or out."""
    moment = datetime.fromisoformat(as_of)
    for name in ["local-authority", "region", "country", "sex-age"]:
        supplied = users_in(bucks, name, as_of=moment, boundaries="supplied")
        assert users_in(bucks, name, as_of=moment, boundaries="current") == supplied == 4


def test_snapshot_users_follow_joiners_and_leavers(scenario: Warehouse) -> None:
    """Each snapshot's users are the headline total at its time and the last plus in minus out."""
    result = analysis(scenario.settings, "joiners-leavers", engine=scenario.engine)
    previous = 0
    for row in result.rows:
        at_run = report(scenario.settings, as_of=row.as_of, engine=scenario.engine).total
        assert row.users == at_run
        assert row.users == previous + row.new_users + row.returned_users - row.left_users
        previous = row.users


def test_snapshot_changes_match_the_audit_table(scenario: Warehouse) -> None:
    """The changes read from the history equal the counts each load recorded in etl_run."""
    result = analysis(scenario.settings, "joiners-leavers", engine=scenario.engine)
    with scenario.engine.connect() as conn:
        audit = conn.execute(
            text(
                "SELECT new_users, returned_users, moved_users, left_users FROM etl_run"
                " ORDER BY as_of"
            )
        ).all()
    assert [(r.new_users, r.returned_users, r.moved_users, r.left_users) for r in result.rows] == [
        tuple(row) for row in audit
    ]


def test_data_quality_locations_add_up_to_the_snapshot(scenario: Warehouse) -> None:
    """Every user of a snapshot is located in exactly one way."""
    result = analysis(scenario.settings, "data-quality", engine=scenario.engine)
    statuses = [
        "full_matched",
        "partial_resolved",
        "partial_unresolved",
        "unmatched",
        "no_authority",
        "invalid",
        "missing",
    ]
    for row in result.rows:
        assert sum(getattr(row, s) for s in statuses) == row.users_in_snapshot


PERIODS = [*pairwise(sorted(TIMES)), (TIMES[0], TIMES[-1])]


@pytest.mark.parametrize(("start", "end"), PERIODS)
def test_movers_balance(scenario: Warehouse, start: str, end: str) -> None:
    """Every move leaves one authority and enters another: inflows equal outflows, nets sum to 0."""
    result = analysis(
        scenario.settings,
        "movers",
        from_time=datetime.fromisoformat(start),
        to_time=datetime.fromisoformat(end),
        engine=scenario.engine,
    )
    assert sum(r.inflow for r in result.rows) == sum(r.outflow for r in result.rows)
    assert sum(r.net for r in result.rows) == 0
