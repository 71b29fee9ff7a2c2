"""Every analysis gives exact rows on the scenario (tests/report/scenario.py), on both backends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from evergreen_etl.errors import ConfigurationError
from evergreen_etl.report import Analysis, analysis, list_reports, report
from report.scenario import DATES, Warehouse

AFTER_LAST = datetime(2024, 4, 15)
UNKNOWN = ("UNKNOWN", "Unknown (no, invalid or unmatched postcode)")


def run(scenario: Warehouse, name: str, **options: Any) -> Analysis[Any]:
    """The analysis ``name`` on the scenario warehouse."""
    return analysis(scenario.settings, name, engine=scenario.engine, **options)


def table(result: Analysis[Any]) -> list[tuple[Any, ...]]:
    """The result's rows as tuples of its columns."""
    return [tuple(getattr(row, c) for c in result.columns) for row in result.rows]


def test_every_report_is_listed() -> None:
    """`report --list` names the headline and the seven analyses."""
    assert list(list_reports()) == [
        "local-authority",
        "region",
        "country",
        "sex-age",
        "movers",
        "joiners-leavers",
        "postcode-status",
        "data-quality",
    ]


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (
            "2024-01-01",
            [
                ("E06000001", "Hartlepool", 2),
                (*UNKNOWN, 2),
                ("E06000002", "Middlesbrough", 1),
                ("E06000004", "Stockton-on-Tees", 1),
                ("E06000005", "Darlington", 1),
                ("E08000026", "Coventry", 1),
            ],
        ),
        (
            "2024-02-15",
            [
                (*UNKNOWN, 2),
                ("E06000001", "Hartlepool", 1),
                ("E06000002", "Middlesbrough", 1),
                ("E06000003", "Redcar and Cleveland", 1),
                ("E06000004", "Stockton-on-Tees", 1),
                ("E06000005", "Darlington", 1),
                ("E08000026", "Coventry", 1),
            ],
        ),
        (
            "2024-04-15",
            [
                ("E06000001", "Hartlepool", 3),
                ("E06000002", "Middlesbrough", 1),
                ("E06000004", "Stockton-on-Tees", 1),
                ("E06000005", "Darlington", 1),
                ("E08000026", "Coventry", 1),
                (*UNKNOWN, 1),
            ],
        ),
    ],
    ids=["first-day", "mid-february", "after-last"],
)
def test_local_authority_rows(
    scenario: Warehouse, as_of: str, expected: list[tuple[Any, ...]]
) -> None:
    """The headline: users by authority, most first, then by code; the unknown row included."""
    result = run(scenario, "local-authority", as_of=datetime.fromisoformat(as_of))
    assert table(result) == expected
    assert result.totals == {"users": 8}


def test_region_rows(scenario: Warehouse) -> None:
    """Users by region: the North East, the West Midlands and the unknown."""
    result = run(scenario, "region", as_of=AFTER_LAST)
    assert table(result) == [
        ("E12000001", "North East", 6),
        ("E12000005", "West Midlands", 1),
        ("UNKNOWN", "Unknown", 1),
    ]


def test_country_rows(scenario: Warehouse) -> None:
    """Users by country."""
    result = run(scenario, "country", as_of=AFTER_LAST)
    assert table(result) == [("E92000001", "England", 7), ("UNKNOWN", "Unknown", 1)]


def test_sex_age_band_rows(scenario: Warehouse) -> None:
    """Age is the as-of year minus the birth year, banded; no birth year is 'unknown'."""
    result = run(scenario, "sex-age", as_of=AFTER_LAST)
    assert table(result) == [
        ("E06000001", "Hartlepool", "F", "30-44", 1),  # alice, 40
        ("E06000001", "Hartlepool", "M", "65+", 2),  # dave 74, ivan 69
        ("E06000002", "Middlesbrough", "M", "0-17", 1),  # bob, 14
        ("E06000004", "Stockton-on-Tees", "F", "18-29", 1),  # grace, 18 this year
        ("E06000005", "Darlington", "F", "18-29", 1),  # erin, 24
        ("E08000026", "Coventry", "U", "unknown", 1),  # carol: no sex, no birth date
        (*UNKNOWN, "F", "45-64", 1),  # heidi, 64
    ]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (
            "2024-01-01",
            "2024-04-15",
            [("E06000001", "Hartlepool", 1, 0, 1), (*UNKNOWN, 0, 1, -1)],
        ),
        (
            "2024-01-01",
            "2024-02-15",
            [
                ("E06000003", "Redcar and Cleveland", 1, 0, 1),
                ("E06000001", "Hartlepool", 0, 1, -1),
            ],
        ),
        (
            "2024-02-15",
            "2024-04-15",
            [
                ("E06000001", "Hartlepool", 2, 0, 2),
                ("E06000003", "Redcar and Cleveland", 0, 1, -1),
                (*UNKNOWN, 0, 1, -1),
            ],
        ),
        ("2024-03-01", "2024-04-15", []),
    ],
    ids=["whole-period", "alice-moves-out", "alice-back-dave-located", "quiet"],
)
def test_movers_rows(
    scenario: Warehouse, start: str, end: str, expected: list[tuple[Any, ...]]
) -> None:
    """Movers compare each user's authority at --from and --to: a move out and back is none."""
    result = run(
        scenario,
        "movers",
        from_time=datetime.fromisoformat(start),
        to_time=datetime.fromisoformat(end),
    )
    assert table(result) == expected
    moves = sum(row[2] for row in expected)
    assert result.totals == {"inflow": moves, "outflow": moves}


def test_joiners_and_leavers_rows(scenario: Warehouse) -> None:
    """Per snapshot: new, returned, moved (postcode changed) and left users, and users after."""
    result = run(scenario, "joiners-leavers")
    assert [row[2:] for row in table(result)] == [
        (8, 0, 0, 0, 8),
        (1, 0, 1, 1, 8),  # frank new; alice moved; carol left
        (0, 1, 2, 1, 8),  # carol back; alice and dave moved; frank left
        (0, 0, 0, 0, 8),
    ]
    assert [row[1] for row in table(result)] == [datetime.fromisoformat(d) for d in DATES]
    assert result.totals == {
        "new_users": 9,
        "returned_users": 1,
        "moved_users": 3,
        "left_users": 2,
    }


def test_joiners_and_leavers_stop_at_as_of(scenario: Warehouse) -> None:
    """--as-of keeps the snapshots loaded up to that time."""
    result = run(scenario, "joiners-leavers", as_of=datetime(2024, 2, 1))
    assert [row[2:] for row in table(result)] == [(8, 0, 0, 0, 8), (1, 0, 1, 1, 8)]


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (
            "2024-01-01",
            [
                ("full_matched", False, "full postcode found in the lookup", 4),
                ("full_matched", True, "full postcode found in the lookup, terminated", 1),
                ("invalid", False, "not a UK postcode", 1),
                ("partial_resolved", False, "outward code alone, within one authority", 1),
                ("unmatched", False, "full postcode not in the lookup", 1),
            ],
        ),
        (
            "2024-04-15",
            [
                ("full_matched", False, "full postcode found in the lookup", 5),
                ("full_matched", True, "full postcode found in the lookup, terminated", 1),
                ("partial_resolved", False, "outward code alone, within one authority", 1),
                ("unmatched", False, "full postcode not in the lookup", 1),
            ],
        ),
    ],
    ids=["dave-invalid", "dave-located"],
)
def test_postcode_status_rows(
    scenario: Warehouse, as_of: str, expected: list[tuple[Any, ...]]
) -> None:
    """Users by location status, terminated postcodes apart (grace's AB3 1AA)."""
    result = run(scenario, "postcode-status", as_of=datetime.fromisoformat(as_of))
    assert table(result) == expected


def test_data_quality_rows(scenario: Warehouse) -> None:
    """Per load: records read, rejects, duplicates, users and how each was located."""
    result = run(scenario, "data-quality")
    # run_id, as_of, status are checked apart; then the counts in column order.
    assert [row[3:] for row in table(result)] == [
        (9, 0, 1, 8, 5, 1, 0, 1, 0, 1, 0, 9),
        (8, 0, 0, 8, 5, 1, 0, 1, 0, 1, 0, None),
        (8, 0, 0, 8, 6, 1, 0, 1, 0, 0, 0, None),
        (8, 0, 0, 8, 6, 1, 0, 1, 0, 0, 0, None),
    ]
    assert result.columns[3:] == (
        "records_read",
        "rejected",
        "duplicates",
        "users_in_snapshot",
        "full_matched",
        "partial_resolved",
        "partial_unresolved",
        "unmatched",
        "no_authority",
        "invalid",
        "missing",
        "postcodes_loaded",
    )
    assert {row.status for row in result.rows} == {"succeeded"}


def test_headline_report_keeps_its_contract(scenario: Warehouse) -> None:
    """report() still returns Report rows with the true total, as the headline always did."""
    result = report(scenario.settings, as_of=AFTER_LAST, engine=scenario.engine)
    assert [(r.local_authority_code, r.users) for r in result.rows][:2] == [
        ("E06000001", 3),
        ("E06000002", 1),
    ]
    assert result.total == 8


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("movers", {}, "needs --from"),
        ("region", {"from_time": datetime(2024, 1, 1)}, "apply to movers"),
        ("data-quality", {"boundaries": "current"}, "does not apply"),
        ("nonsense", {}, "no report called 'nonsense'"),
        (
            "movers",
            {"from_time": datetime(2024, 3, 1), "to_time": datetime(2024, 2, 1)},
            "before --to",
        ),
    ],
    ids=["movers-without-from", "from-elsewhere", "boundaries-by-run", "unknown", "backwards"],
)
def test_bad_options_are_refused(
    scenario: Warehouse, name: str, options: dict[str, Any], message: str
) -> None:
    """An option that does not fit the report is a configuration error, named."""
    with pytest.raises(ConfigurationError, match=message):
        run(scenario, name, **options)
