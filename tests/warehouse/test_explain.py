"""PostgreSQL plans: the report and the current-row lookups use the indexes meant for them.

The history is synthetic (20,000 users with six periods each, written with generate_series)
and analysed, so the planner chooses as it would on a real warehouse, not on a toy one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from evergreen_etl.anonymise import anonymise
from evergreen_etl.load import load
from evergreen_etl.report import read_sql
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.migrate import upgrade
from support.keys import TEST_KEY
from support.postgres import PostgresServer, unique_database_name
from support.sources import user, write_lookup_zip, write_users

USERS = 20_000
PERIODS = 6  # a yearly move since 2015: five closed rows and a current one per user
# Synthetic history: period k of user u runs from 2015-01-01 + k years + (u mod 300) days.
_HISTORY = f"""
INSERT INTO dim_user (pseudonym, sex, birth_year, first_run_id)
SELECT 'synthetic-' || g, 'U', NULL, 1 FROM generate_series(1, {USERS}) AS g;
INSERT INTO user_address (user_id, postcode, postcode_kind, local_authority_code,
                          location_status, valid_from, valid_to, is_current, opened_run_id)
SELECT u.user_id, NULL, 'missing', la.codes[1 + (u.user_id * 7 + k) % cardinality(la.codes)],
       'missing',
       timestamp '2015-01-01' + (k * 365 + u.user_id % 300) * interval '1 day',
       CASE WHEN k < {PERIODS - 1}
            THEN timestamp '2015-01-01' + ((k + 1) * 365 + u.user_id % 300) * interval '1 day'
       END,
       k = {PERIODS - 1}, 1
FROM dim_user AS u
CROSS JOIN generate_series(0, {PERIODS - 1}) AS k
CROSS JOIN (SELECT array_agg(code ORDER BY code) AS codes FROM dim_local_authority) AS la
WHERE u.pseudonym LIKE 'synthetic-%';
ANALYZE;
"""
# Values for the report query's parameters; any other parameter is bound to NULL.
_REPORT_PARAMETERS: dict[str, Any] = {"boundaries": "supplied"}


@pytest.fixture(scope="module")
def analysed(
    pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A PostgreSQL warehouse with a long synthetic history, analysed."""
    name = unique_database_name("explain")
    url = pg_server.create_database(name)
    tmp = tmp_path_factory.mktemp("explain")
    upgrade(url)
    engine = make_engine(url)
    try:
        settings = Settings(data_dir=tmp / "data", pseudonym_key=TEST_KEY, max_reject_rate=1.0)
        users = write_users(tmp / "users.json", [user("first@example.com", "AB1 1AA")])
        anonymise(settings, users_path=users, progress=False)
        load(
            settings,
            as_of=datetime(2014, 1, 1),
            postcodes_path=write_lookup_zip(tmp / "postcodes.zip"),
            engine=engine,
            progress=False,
        )
        with engine.begin() as conn:
            for statement in _HISTORY.split(";"):
                if statement.strip():
                    conn.execute(text(statement))
        yield engine
    finally:
        engine.dispose()
        pg_server.drop_database(name)


def _plan(engine: Engine, sql: str, **params: Any) -> str:
    with engine.connect() as conn:
        return _plan_on(conn, sql, **params)


def _plan_on(conn: Connection, sql: str, **params: Any) -> str:
    return "\n".join(conn.execute(text(f"EXPLAIN {sql}"), params).scalars())


def _report_plan(engine: Engine, as_of: datetime) -> str:
    with engine.connect() as conn:
        return _report_plan_on(conn, as_of)


def _report_plan_on(conn: Connection, as_of: datetime) -> str:
    sql = "\n".join(
        line
        for line in read_sql("users_by_local_authority").splitlines()
        if not line.lstrip().startswith("--")
    )
    names = text(sql).compile().params
    params = {name: _REPORT_PARAMETERS.get(name) for name in names} | {"as_of": as_of}
    return _plan_on(conn, sql, **params)


def test_history_is_big_enough_to_matter(analysed: Engine) -> None:
    """The synthetic history has every user's periods, so the plans below are not toy plans."""
    with analysed.connect() as conn:
        rows = conn.execute(text("SELECT COUNT(*) FROM user_address")).scalar_one()
    assert rows == USERS * PERIODS + 1


def test_current_row_of_a_user_uses_the_partial_unique_index(analysed: Engine) -> None:
    """`WHERE user_id = :id AND is_current` is an index scan on ux_user_address_current."""
    plan = _plan(
        analysed,
        "SELECT * FROM user_address WHERE user_id = :user_id AND is_current",
        user_id=1234,
    )
    assert "Index Scan using ux_user_address_current on user_address" in plan, plan


def test_current_location_view_reads_current_rows_through_the_partial_index(
    analysed: Engine,
) -> None:
    """The analysts' users-by-authority view reads current rows via ux_user_address_current."""
    plan = _plan(analysed, "SELECT * FROM v_users_by_local_authority")
    assert "ux_user_address_current" in plan, plan
    assert "Seq Scan on user_address" not in plan, plan


def test_report_as_of_an_early_date_uses_the_validity_index(analysed: Engine) -> None:
    """Before most of the history, the as-of report reads ix_user_address_valid, not the table."""
    plan = _report_plan(analysed, datetime(2015, 2, 1))
    assert "ix_user_address_valid" in plan, plan
    assert "Seq Scan on user_address" not in plan, plan


def test_report_as_of_a_recent_date_can_skip_the_closed_history(analysed: Engine) -> None:
    """ix_user_address_valid_to serves a report as of a recent date (open and late rows only).

    With a sixth of the rows current, the planner may rightly prefer a scan here; with scans
    priced out, it must find the index that skips periods closed before the as-of time.
    """
    with analysed.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = _report_plan_on(conn, datetime(2030, 1, 1))
    assert "ix_user_address_valid_to" in plan, plan
