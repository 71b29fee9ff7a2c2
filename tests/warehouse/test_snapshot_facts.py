"""The periodic-snapshot facts agree with the address history at every time, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, DateTime, Engine, bindparam, select, text

from evergreen_etl.anonymise import anonymise
from evergreen_etl.history import undo
from evergreen_etl.load import load
from evergreen_etl.models import Boundaries
from evergreen_etl.report import report
from evergreen_etl.report.boundaries import basis_name, basis_parameters
from evergreen_etl.report.catalog import run_sql
from evergreen_etl.sample import generate_sample
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.history import known_at
from evergreen_etl.warehouse.migrate import downgrade, upgrade
from evergreen_etl.warehouse.schema import fact_snapshot_authority
from evergreen_etl.warehouse.snapshot_facts import (
    facts_known_since,
    refresh_snapshot_facts,
    users_by_authority_at,
)

SNAPSHOT_TIMES = [datetime(2024, 1, 1), datetime(2024, 4, 1), datetime(2024, 7, 1)]
# Before the first load, on each snapshot time, a second either side of one, between, after.
TIMES = [
    datetime(2023, 12, 31),
    *SNAPSHOT_TIMES,
    SNAPSHOT_TIMES[1] - timedelta(seconds=1),
    SNAPSHOT_TIMES[1] + timedelta(seconds=1),
    datetime(2024, 5, 15, 12, 30),
    datetime(2025, 1, 1),
]
_HISTORY_AT = text(
    "SELECT local_authority_code, COUNT(*) FROM user_address "
    "WHERE valid_from <= :as_of AND (valid_to IS NULL OR valid_to > :as_of) "
    "GROUP BY local_authority_code"
).bindparams(bindparam("as_of", type_=DateTime()))


def history_at(conn: Connection, as_of: datetime) -> dict[str, int]:
    """Users by authority at ``as_of`` counted from the SCD2 rows themselves."""
    return {str(code): int(n) for code, n in conn.execute(_HISTORY_AT, {"as_of": as_of})}


@contextmanager
def _loaded(
    settings: Settings, tmp_path: Path, times: list[datetime], *, seed: int
) -> Iterator[Engine]:
    """A sample of a few hundred messy users (moves, leavers, joiners) loaded at ``times``,
    in the order given."""
    sample = generate_sample(
        tmp_path / "sample", users=300, postcodes=3000, snapshots=len(times), seed=seed
    )
    upgrade(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    try:
        for users, as_of in zip(sample.users_paths, times, strict=True):
            anonymise(settings, users_path=users, progress=False)
            load(
                settings,
                as_of=as_of,
                postcodes_path=sample.postcodes_path,
                engine=engine,
                progress=False,
            )
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def loaded(settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    """Three snapshots loaded in order."""
    with _loaded(settings, tmp_path, SNAPSHOT_TIMES, seed=4) as engine:
        yield engine


def test_facts_equal_the_history_at_every_snapshot_and_in_between(loaded: Engine) -> None:
    """At every time the facts of the latest snapshot then equal the SCD2 rows valid then."""
    with loaded.connect() as conn:
        for moment in TIMES:
            assert users_by_authority_at(conn, moment) == history_at(conn, moment), moment
        assert users_by_authority_at(conn, TIMES[0]) == {}
        assert sum(users_by_authority_at(conn, SNAPSHOT_TIMES[-1]).values()) > 250


def test_each_load_writes_the_facts_of_its_snapshot(loaded: Engine) -> None:
    """Every loaded snapshot time has its rows, and only those times do."""
    with loaded.connect() as conn:
        times = conn.execute(select(fact_snapshot_authority.c.snapshot_at).distinct()).scalars()
        assert sorted(times) == SNAPSHOT_TIMES


def test_refresh_recomputes_from_the_given_time_on(loaded: Engine) -> None:
    """refresh_snapshot_facts(since) rebuilds the snapshots from ``since`` and no earlier one."""
    with loaded.begin() as conn:
        conn.execute(text("UPDATE fact_snapshot_authority SET users = 0"))
        refresh_snapshot_facts(conn, SNAPSHOT_TIMES[1], run_id=99)
        first = users_by_authority_at(conn, SNAPSHOT_TIMES[0])
        later = [users_by_authority_at(conn, t) for t in SNAPSHOT_TIMES[1:]]
        expected = [history_at(conn, t) for t in SNAPSHOT_TIMES[1:]]

    assert set(first.values()) == {0}
    assert later == expected


def test_migration_fills_the_facts_from_the_history_already_loaded(
    loaded: Engine, settings: Settings
) -> None:
    """A warehouse migrated to the facts gets them for every snapshot it had loaded."""
    url = settings.effective_database_url
    downgrade(url, "0004")
    upgrade(url)

    with loaded.connect() as conn:
        for moment in TIMES:
            assert users_by_authority_at(conn, moment) == history_at(conn, moment), moment


def _history_rows(engine: Engine, moment: datetime, boundaries: Boundaries) -> list[Any]:
    """The headline rows from the history's own SQL, on the basis ``boundaries`` names."""
    with engine.connect() as conn:
        basis, _ = basis_parameters(conn, basis_name(boundaries))
    parameters = {"as_of": moment, "as_of_year": moment.year, **basis}
    return run_sql(engine, "users_by_local_authority", parameters)


@pytest.mark.parametrize("boundaries", ["supplied", "lookup", "recorded", "current"])
def test_headline_report_from_the_facts_equals_the_history_query(
    loaded: Engine, settings: Settings, boundaries: Boundaries
) -> None:
    """The headline report (read from the facts) has the rows of the history's own SQL."""
    for moment in TIMES:
        published = report(settings, as_of=moment, engine=loaded, boundaries=boundaries)
        expected = _history_rows(loaded, moment, boundaries)
        found = [
            row.model_dump(include={"local_authority_code", "users"}) for row in published.rows
        ]
        assert found == [
            {"local_authority_code": row["local_authority_code"], "users": int(row["users"])}
            for row in expected
        ], moment


# A late snapshot between the first two, then an undo of the second load: every earlier
# knowledge is kept in the facts' recorded time.
CORRECTED_TIMES = [*SNAPSHOT_TIMES, datetime(2024, 2, 15)]


@pytest.fixture
def corrected(settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    """Three snapshots in order, a fourth merged late into the middle, the second undone."""
    with _loaded(settings, tmp_path, CORRECTED_TIMES, seed=5) as engine:
        undo(settings, 2, engine=engine)
        yield engine


def _runs(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT run_id FROM etl_run ORDER BY run_id")).scalars())


def test_facts_as_known_at_every_run_equal_the_history_as_known_then(
    corrected: Engine, settings: Settings
) -> None:
    """After every run, at every time, the facts known then equal the history known then."""
    runs = _runs(corrected)
    assert len(runs) == 5  # four loads and the undo
    moments = [*TIMES, CORRECTED_TIMES[-1], CORRECTED_TIMES[-1] - timedelta(seconds=1)]
    for run_id in runs:
        with known_at(corrected, run_id) as past, past.connect() as conn:
            for moment in moments:
                facts, history = users_by_authority_at(conn, moment), history_at(conn, moment)
                assert facts == history, (run_id, moment)


def test_a_correction_retires_facts_instead_of_deleting_them(corrected: Engine) -> None:
    """The late snapshot and the undo each retire the facts they computed again."""
    with corrected.connect() as conn:
        retired = dict(
            conn.execute(
                text(
                    "SELECT retired_run_id, COUNT(DISTINCT snapshot_at) "
                    "FROM fact_snapshot_authority WHERE retired_run_id IS NOT NULL "
                    "GROUP BY retired_run_id"
                )
            ).all()
        )
    # Run 4 (as of 2024-02-15) recomputed the two snapshots after it; the undo (run 5) of
    # run 2 (2024-04-01) recomputed 2024-07-01 (2024-04-01's own facts go with its run).
    assert retired == {4: 2, 5: 2}


@pytest.mark.parametrize("boundaries", ["lookup", "current"])
def test_report_as_known_at_from_the_facts_equals_the_history_query(
    corrected: Engine, settings: Settings, boundaries: Boundaries
) -> None:
    """``report --as-known-at`` (read from the facts) has the rows of the history's SQL then."""
    for run_id in _runs(corrected):
        for moment in (SNAPSHOT_TIMES[1], CORRECTED_TIMES[-1], datetime(2025, 1, 1)):
            published = report(
                settings, as_of=moment, engine=corrected, boundaries=boundaries, as_known_at=run_id
            )
            with known_at(corrected, run_id) as past:
                expected = _history_rows(past, moment, boundaries)
            found = [
                row.model_dump(include={"local_authority_code", "users"}) for row in published.rows
            ]
            assert found == [
                {"local_authority_code": r["local_authority_code"], "users": int(r["users"])}
                for r in expected
            ], (run_id, moment)


def test_a_warehouse_migrated_to_recorded_facts_reads_earlier_knowledge_from_the_history(
    corrected: Engine, settings: Settings
) -> None:
    """Facts made by the migration hold only the knowledge of its time: earlier runs' reads
    of the past go to the history, and still agree with it."""
    url = settings.effective_database_url
    downgrade(url, "0009")
    upgrade(url)
    with corrected.connect() as conn:
        assert facts_known_since(conn) == 5
    test_report_as_known_at_from_the_facts_equals_the_history_query(corrected, settings, "lookup")
