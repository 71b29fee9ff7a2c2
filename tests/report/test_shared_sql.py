"""The shared SQL is one rule: the migrations' views, the report SQL and the risk SQL agree."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from evergreen_etl.privacy.risk import measure_risk
from evergreen_etl.report import analysis
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.sqlfiles import fragments, read_sql
from report.scenario import Warehouse
from support.sources import LoadSnapshot, user

# Loaded as of mid-2009: Ann is born in 2010, after the as-of year; Bea's birth date is
# missing; both are 'unknown' in every age band. Cal and Dee are alone in their bands.
PAST_SNAPSHOT = [
    user("ann@example.com", "AB1 1AA", sex="F", dateOfBirth="2010-01-01"),
    user("bea@example.com", "AB1 1AB", sex="F", dateOfBirth=None),
    user("cal@example.com", "AB1 1AA", sex="M", dateOfBirth="1984-03-02"),
    user("dee@example.com", "AB1 1AB", sex="M", dateOfBirth="1975-05-05"),
]
IN_2009 = datetime(2009, 7, 1)


def rows(engine: Engine, sql: str) -> set[tuple[Any, ...]]:
    """The rows of ``sql`` as a set of tuples."""
    with engine.connect() as conn:
        return {tuple(row) for row in conn.execute(text(sql))}


def test_authority_views_of_0001_match_the_headline_sql(scenario: Warehouse) -> None:
    """v_users_by_local_authority and v_user_current_location count as the headline SQL now."""
    headline = analysis(scenario.settings, engine=scenario.engine)
    expected = {(r.local_authority_code, r.local_authority_name, r.users) for r in headline.rows}
    by_view = rows(
        scenario.engine,
        "SELECT local_authority_code, local_authority_name, users FROM v_users_by_local_authority",
    )
    by_location = rows(
        scenario.engine,
        "SELECT local_authority_code, local_authority_name, COUNT(*)"
        " FROM v_user_current_location GROUP BY local_authority_code, local_authority_name",
    )
    assert by_view == by_location == expected
    assert sum(users for *_, users in expected) == headline.total


def test_sex_age_view_matches_the_report_sql_with_missing_birth_years(
    load_snapshot: LoadSnapshot, settings: Settings, engine: Engine
) -> None:
    """v_users_by_sex_age_band (this year) equals the sex-age report now, unknown band included."""
    load_snapshot(PAST_SNAPSHOT, "2009-06-01")
    report = analysis(settings, "sex-age", engine=engine)
    view = rows(
        engine,
        "SELECT local_authority_code, local_authority_name, sex, age_band, users"
        " FROM v_users_by_sex_age_band",
    )
    assert view == {tuple(getattr(r, c) for c in report.columns) for r in report.rows}
    assert ("E06000001", "F", "unknown", 1) in {(r[0], r[2], r[3], r[4]) for r in view}


def test_risk_classes_are_the_sex_age_report_rows(
    load_snapshot: LoadSnapshot, settings: Settings, engine: Engine
) -> None:
    """A birth year after the as-of year is 'unknown' in the risk SQL as in the report SQL."""
    load_snapshot(PAST_SNAPSHOT, "2009-06-01")
    report = analysis(settings, "sex-age", as_of=IN_2009, engine=engine)
    assert [(r.sex, r.age_band, r.users) for r in report.rows] == [
        ("F", "unknown", 2),
        ("M", "18-29", 1),
        ("M", "30-44", 1),
    ]
    with engine.connect() as conn:
        risk = measure_risk(conn, as_of=IN_2009)
    authority = next(r for r in risk.rows if r.quasi_identifiers.startswith("local authority"))
    counts = [r.users for r in report.rows if r.users is not None]
    assert (authority.classes, authority.smallest_k) == (len(counts), min(counts))
    assert authority.unique_users == counts.count(1)


def test_every_query_names_only_known_fragments() -> None:
    """Each shared fragment is filled in: no placeholder is left in any query of the package."""
    names = ["users_by_local_authority", "users_by_region", "users_by_country", "movers"]
    for name in [*names, "users_by_sex_age_band"]:
        assert "{{" not in read_sql("report", name)
        assert fragments()["authority"] in read_sql("report", name).replace("\n    ", "\n")
    assert "{{" not in read_sql("privacy", "risk_authority_age_sex")
