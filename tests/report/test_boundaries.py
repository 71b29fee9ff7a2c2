"""--boundaries current reports abolished authorities under the one that holds their area today."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from evergreen_etl.report import analysis, report
from report.scenario import Warehouse

JAN, FEB = datetime(2024, 1, 15), datetime(2024, 2, 15)


def rows(bucks: Warehouse, name: str, **options: Any) -> list[tuple[Any, ...]]:
    """The rows of ``name`` on the Buckinghamshire warehouse, as tuples of its columns."""
    result = analysis(bucks.settings, name, engine=bucks.engine, **options)
    return [tuple(getattr(row, c) for c in result.columns) for row in result.rows]


def test_supplied_boundaries_keep_the_lookups_codes(bucks: Warehouse) -> None:
    """By default the abolished districts are reported as the lookup supplies them."""
    assert rows(bucks, "local-authority", as_of=JAN) == [
        ("E07000004", "Aylesbury Vale", 2),
        ("E06000001", "Hartlepool", 1),
        ("E06000060", "Buckinghamshire", 1),
    ]


@pytest.mark.parametrize("as_of", [JAN, FEB], ids=["january", "february"])
def test_current_boundaries_map_abolished_codes(bucks: Warehouse, as_of: datetime) -> None:
    """E07000004 and E07000005 count under E06000060 Buckinghamshire."""
    assert rows(bucks, "local-authority", as_of=as_of, boundaries="current") == [
        ("E06000060", "Buckinghamshire", 3),
        ("E06000001", "Hartlepool", 1),
    ]


def test_headline_report_function_takes_boundaries(bucks: Warehouse) -> None:
    """report(boundaries='current') gives the same mapping through the library's headline API."""
    result = report(bucks.settings, as_of=JAN, boundaries="current", engine=bucks.engine)
    assert [(r.local_authority_code, r.users) for r in result.rows] == [
        ("E06000060", 3),
        ("E06000001", 1),
    ]
    assert result.total == 4


def test_current_boundaries_in_region_and_sex_age(bucks: Warehouse) -> None:
    """The region and sex-age reports follow the same mapping."""
    assert rows(bucks, "region", as_of=JAN, boundaries="current") == [
        ("E12000008", "South East", 3),
        ("E12000001", "North East", 1),
    ]
    assert rows(bucks, "sex-age", as_of=JAN, boundaries="current") == [
        ("E06000001", "Hartlepool", "F", "30-44", 1),
        ("E06000060", "Buckinghamshire", "F", "30-44", 3),
    ]


def test_a_move_within_todays_authority_is_no_move(bucks: Warehouse) -> None:
    """Aylesbury Vale to Chiltern is a move in the lookup's boundaries, none in today's."""
    period = {"from_time": JAN, "to_time": FEB}
    assert rows(bucks, "movers", **period) == [
        ("E07000005", "Chiltern", 1, 0, 1),
        ("E07000004", "Aylesbury Vale", 0, 1, -1),
    ]
    assert rows(bucks, "movers", boundaries="current", **period) == []
