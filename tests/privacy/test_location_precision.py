"""Location precision: what the warehouse keeps of a postcode; history and counts do not change."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import Engine, text

from evergreen_etl.postcodes import LocationPrecision
from evergreen_etl.report import report
from evergreen_etl.settings import Settings
from support.sources import LoadSnapshot, user

S1 = [
    user("ann@example.com", "AB1 1AA"),
    user("ben@example.com", "CV4 9RE"),
    user("cat@example.com", "AB3"),  # partial: a district already
    user("dan@example.com", "AB2 1AA"),
]
S2 = [
    user("ann@example.com", "AB1 1AB"),  # moves within the sector: only the token shows it
    user("ben@example.com", "cv49re"),  # unchanged
    user("cat@example.com", "AB3 1AB"),  # partial to full
    user("dan@example.com", "AB2 1AB"),  # moves to another authority in the same sector
]
S3 = [
    user("ann@example.com", "AB1 1AA"),  # moves back
    user("ben@example.com", "CV4 9RE"),
    user("dan@example.com", "AB2 1AB"),
    # cat leaves
]
FULL_POSTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}")
SECTOR = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]? [0-9]")


def _user_rows(engine: Engine) -> str:
    """Everything the warehouse holds about users, as text."""
    with engine.connect() as conn:
        parts = [
            repr(tuple(row))
            for table in ("user_address", "dim_user", "etl_run")
            for row in conn.execute(text(f"SELECT * FROM {table}"))
        ]
    return "\n".join(parts)


def _history(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT u.pseudonym, a.local_authority_code, a.location_status, a.valid_from,"
                    " a.valid_to, a.is_current FROM user_address a"
                    " JOIN dim_user u ON u.user_id = a.user_id ORDER BY u.pseudonym, a.valid_from"
                )
            )
        ]


def _load_all(load_snapshot: LoadSnapshot, precision: LocationPrecision) -> None:
    for records, as_of in ((S1, "2024-01-01"), (S2, "2024-02-01"), (S3, "2024-03-01")):
        load_snapshot(records, as_of, precision=precision)


@pytest.mark.parametrize("precision", list(LocationPrecision), ids=str)
def test_warehouse_holds_only_the_chosen_precision(
    precision: LocationPrecision, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """At each precision, no finer postcode than asked for is stored anywhere about users."""
    _load_all(load_snapshot, precision)
    held = _user_rows(engine)
    if precision == LocationPrecision.POSTCODE:
        assert "AB1 1AA" in held
    else:
        assert FULL_POSTCODE.search(held) is None
    if precision == LocationPrecision.SECTOR:
        assert "'AB1 1'" in held
    if precision in (LocationPrecision.DISTRICT, LocationPrecision.AUTHORITY):
        assert SECTOR.search(held) is None
    if precision == LocationPrecision.DISTRICT:
        assert "'AB1'" in held
    if precision == LocationPrecision.AUTHORITY:
        assert "'AB1'" not in held
        assert "'CV4'" not in held


def test_history_and_counts_equal_across_precisions(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """The same snapshots give the same SCD2 rows and authority counts at every precision."""
    results = []
    for precision in LocationPrecision:
        with engine.begin() as conn:
            for table in ("user_address", "dim_user", "etl_run"):
                conn.execute(text(f"DELETE FROM {table}"))
        _load_all(load_snapshot, precision)
        counts = [
            report(settings, as_of=datetime(2024, m, 15), engine=engine).rows for m in (1, 2, 3)
        ]
        results.append((_history(engine), counts))
    assert all(result == results[0] for result in results[1:])
    history = results[0][0]
    assert len(history) == 8  # ann 3 (a move within her sector too), ben 1, cat 2, dan 2
