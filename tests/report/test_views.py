"""The analysts' views (migration 0002) give the reports' answers for today, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import inspect, text

from evergreen_etl.report import analysis
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.migrate import downgrade, upgrade
from report.scenario import Warehouse

VIEWS = {
    "v_users_by_region",
    "v_users_by_country",
    "v_users_by_current_local_authority",
    "v_users_by_sex_age_band",
    "v_user_moves",
    "v_users_by_postcode_status",
    "v_snapshot_changes",
    "v_run_quality",
}


def view(scenario: Warehouse, name: str, columns: str) -> set[tuple[Any, ...]]:
    """The view's rows as a set of tuples of ``columns``."""
    with scenario.engine.connect() as conn:
        return {tuple(row) for row in conn.execute(text(f"SELECT {columns} FROM {name}"))}


def today(scenario: Warehouse, name: str, **options: Any) -> set[tuple[Any, ...]]:
    """Report ``name`` now, as a set of tuples of its columns."""
    result = analysis(scenario.settings, name, engine=scenario.engine, **options)
    return {tuple(getattr(row, c) for c in result.columns) for row in result.rows}


@pytest.mark.parametrize(
    ("name", "report_name", "columns"),
    [
        ("v_users_by_region", "region", "region_code, region_name, users"),
        ("v_users_by_country", "country", "country_code, country_name, users"),
        (
            "v_users_by_sex_age_band",
            "sex-age",
            "local_authority_code, local_authority_name, sex, age_band, users",
        ),
    ],
)
def test_views_by_place_match_the_reports_today(
    scenario: Warehouse, name: str, report_name: str, columns: str
) -> None:
    """Region, country and sex-age views equal the reports at the current time."""
    assert view(scenario, name, columns) == today(scenario, report_name)


def test_current_authority_view_matches_current_boundaries(bucks: Warehouse) -> None:
    """v_users_by_current_local_authority is the headline in today's boundaries."""
    assert (
        view(
            bucks,
            "v_users_by_current_local_authority",
            "local_authority_code, local_authority_name, users",
        )
        == today(bucks, "local-authority", boundaries="current")
        == {
            ("E06000060", "Buckinghamshire", 3),
            ("E06000001", "Hartlepool", 1),
        }
    )


def test_postcode_status_view(scenario: Warehouse) -> None:
    """v_users_by_postcode_status counts current users by status and terminated postcode."""
    rows = view(scenario, "v_users_by_postcode_status", "location_status, terminated, users")
    expected = {(s, int(t), u) for s, t, _, u in today(scenario, "postcode-status")}
    assert {(s, int(t), u) for s, t, u in rows} == expected


def test_snapshot_changes_view(scenario: Warehouse) -> None:
    """v_snapshot_changes gives the joiners and leavers of every snapshot."""
    columns = "new_users, returned_users, moved_users, left_users, users"
    expected = {row[2:] for row in today(scenario, "joiners-leavers")}
    assert view(scenario, "v_snapshot_changes", columns) == expected


def test_run_quality_view(scenario: Warehouse) -> None:
    """v_run_quality unpacks the audit table's JSON details into columns."""
    columns = (
        "run_id, records_read, rejected, duplicates, users_in_snapshot, full_matched,"
        " partial_resolved, partial_unresolved, unmatched, no_authority, invalid, missing,"
        " postcodes_loaded"
    )
    expected = {(row[0], *row[3:]) for row in today(scenario, "data-quality")}
    assert view(scenario, "v_run_quality", columns) == expected


def test_user_moves_view_lists_every_move(scenario: Warehouse) -> None:
    """Each closed-and-reopened address is a move; a return after an absence is not."""
    with scenario.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT moved_at, from_local_authority_code, to_local_authority_code,"
                " between_authorities FROM v_user_moves"
                " ORDER BY moved_at, from_local_authority_code, to_local_authority_code"
            )
        ).all()
    assert [(str(m)[:10], f, t, int(b)) for m, f, t, b in rows] == [
        ("2024-02-01", "E06000001", "E06000003", 1),  # alice
        ("2024-03-01", "E06000003", "E06000001", 1),  # alice, back
        ("2024-03-01", "UNKNOWN", "E06000001", 1),  # dave, located
    ]


def test_downgrade_drops_the_views(database_url: str) -> None:
    """Downgrading to 0001 drops the analysis views and keeps 0001's; upgrading restores them."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_view_names()) >= VIEWS
        downgrade(database_url, "0001")
        names = set(inspect(engine).get_view_names())
        assert not VIEWS & names
        assert {"v_user_current_location", "v_users_by_local_authority"} <= names
        upgrade(database_url)
        assert set(inspect(engine).get_view_names()) >= VIEWS
    finally:
        engine.dispose()
