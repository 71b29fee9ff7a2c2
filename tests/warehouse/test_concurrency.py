"""Loads started at the same time are serialised; readers never see a half-merged load."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from evergreen_etl.load import load
from evergreen_etl.report import report
from evergreen_etl.settings import Settings
from support.sources import SCENARIO_POSTCODES
from warehouse.faults import (
    CHANGED_LOOKUP,
    DATES,
    SNAPSHOTS,
    LoadProcess,
    history_problems,
    invoke_load,
    run_problems,
    wait_until_waiting_for_lock,
    warehouse_rows,
)


@pytest.fixture
def first_loaded(settings: Settings, engine: Engine, stage_snapshot: Callable[..., Path]) -> None:
    """Snapshot 1 loaded and snapshot 2 staged in the settings' data dir (same lookup)."""
    stage_snapshot(SNAPSHOTS[0])
    load(settings, as_of=datetime.fromisoformat(DATES[0]), engine=engine, progress=False)
    stage_snapshot(SNAPSHOTS[1])


def _statuses(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT as_of, status FROM etl_run ORDER BY run_id")).all()
    return [(str(as_of)[:10], status) for as_of, status in rows]


def test_two_loads_started_together_both_end_and_history_stays_valid(
    first_loaded: None, start_load: Callable[..., LoadProcess], engine: Engine
) -> None:
    """Two loads of one snapshot started at once: one merges, the other finds it loaded."""
    loads = [start_load(DATES[1]), start_load(DATES[1])]
    assert [each.finish() for each in loads] == [0, 0], [each.stderr for each in loads]
    assert sorted(each.result()["skipped"] for each in loads) == [False, True]
    assert history_problems(engine) == []
    assert run_problems(engine) == []
    assert _statuses(engine) == [(DATES[0], "succeeded"), (DATES[1], "succeeded")]


def test_second_load_of_same_snapshot_waits_then_is_a_no_op(
    first_loaded: None, start_load: Callable[..., LoadProcess], engine: Engine
) -> None:
    """A load that finds the lock held waits for it, then skips the snapshot the first loaded."""
    first = start_load(DATES[1], failpoint="load.merged")
    first.wait_until_held()
    second = start_load(DATES[1])
    wait_until_waiting_for_lock(engine, second)
    first.release()
    assert (first.finish(), second.finish()) == (0, 0), second.stderr
    assert (first.result()["skipped"], second.result()["skipped"]) == (False, True)
    assert history_problems(engine) == []
    assert run_problems(engine) == []


def test_later_snapshot_waiting_for_the_lock_loads_after(
    first_loaded: None,
    start_load: Callable[..., LoadProcess],
    stage_snapshot: Callable[..., Path],
    engine: Engine,
    tmp_path: Path,
) -> None:
    """A later snapshot queued behind a running load is merged after it, in order."""
    later_dir = stage_snapshot(SNAPSHOTS[2], data_dir=tmp_path / "data-3")
    first = start_load(DATES[1], failpoint="load.merged")
    first.wait_until_held()
    second = start_load(DATES[2], data_dir=later_dir)
    wait_until_waiting_for_lock(engine, second)
    first.release()
    assert (first.finish(), second.finish()) == (0, 0), second.stderr
    assert _statuses(engine) == [(d, "succeeded") for d in DATES]
    assert history_problems(engine) == []
    assert run_problems(engine) == []


def test_older_snapshot_waiting_for_the_lock_is_refused(
    first_loaded: None,
    start_load: Callable[..., LoadProcess],
    stage_snapshot: Callable[..., Path],
    engine: Engine,
    tmp_path: Path,
) -> None:
    """An older snapshot queued behind a newer one is refused (exit 5, one line) once it runs."""
    later_dir = stage_snapshot(SNAPSHOTS[2], data_dir=tmp_path / "data-3")
    first = start_load(DATES[2], data_dir=later_dir, failpoint="load.merged")
    first.wait_until_held()
    second = start_load(DATES[1])
    wait_until_waiting_for_lock(engine, second)
    first.release()
    assert (first.finish(), second.finish()) == (0, 5)
    assert second.stderr.splitlines()[0].startswith("error: a snapshot as of 2024-03-01")
    assert "Traceback" not in second.stderr
    assert _statuses(engine) == [(DATES[0], "succeeded"), (DATES[2], "succeeded")]
    assert history_problems(engine) == []


def test_load_that_cannot_get_the_lock_fails_clearly(
    settings: Settings,
    first_loaded: None,
    start_load: Callable[..., LoadProcess],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A load that waits longer than the lock timeout exits 5 naming the other load."""
    monkeypatch.setattr("evergreen_etl.warehouse.dialect.LOCK_WAIT_SECONDS", 1)
    monkeypatch.setattr("evergreen_etl.warehouse.engine.SQLITE_BUSY_TIMEOUT_MS", 1000)
    holder = start_load(DATES[1], failpoint="load.merged")
    holder.wait_until_held()
    before = warehouse_rows(engine)
    result = invoke_load(settings, "--as-of", DATES[1])
    assert result.exit_code == 5, result.stderr
    assert result.stderr.startswith("error: another load is")
    holder.kill()
    assert warehouse_rows(engine) == before


def test_reader_during_a_load_sees_the_state_before_it(
    settings: Settings,
    first_loaded: None,
    start_load: Callable[..., LoadProcess],
    engine: Engine,
) -> None:
    """While a load sits between its merge and its commit, other connections see the old state."""
    as_of = datetime.fromisoformat(DATES[1])
    before = (warehouse_rows(engine), report(settings, as_of=as_of, engine=engine))
    loader = start_load(DATES[1], failpoint="load.merged")
    loader.wait_until_held()
    during = (warehouse_rows(engine), report(settings, as_of=as_of, engine=engine))
    loader.release()
    assert loader.finish() == 0, loader.stderr
    after = (warehouse_rows(engine), report(settings, as_of=as_of, engine=engine))
    assert during == before
    assert after != before  # the held load did change things, so the test could fail


def test_report_is_not_blocked_while_a_load_replaces_the_lookup(
    settings: Settings,
    engine: Engine,
    stage_snapshot: Callable[..., Path],
    start_load: Callable[..., LoadProcess],
) -> None:
    """The headline report answers (old state) while a load replaces the postcode lookup.

    On PostgreSQL the reload's TRUNCATE locks dim_postcode itself until the commit, so a query
    on that table waits (documented in the README); on SQLite it reads the old rows.
    """
    stage_snapshot(SNAPSHOTS[0])
    load(settings, as_of=datetime.fromisoformat(DATES[0]), engine=engine, progress=False)
    before = report(settings, as_of=datetime.fromisoformat(DATES[1]), engine=engine)
    stage_snapshot(SNAPSHOTS[1], lookup_rows=CHANGED_LOOKUP)
    loader = start_load(DATES[1], failpoint="load.merged")
    loader.wait_until_held()
    try:
        assert report(settings, as_of=datetime.fromisoformat(DATES[1]), engine=engine) == before
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SET lock_timeout = '1s'"))
                with pytest.raises(OperationalError):
                    conn.execute(text("SELECT COUNT(*) FROM dim_postcode"))
            else:
                count = conn.execute(text("SELECT COUNT(*) FROM dim_postcode")).scalar_one()
                assert count == len(SCENARIO_POSTCODES)
    finally:
        loader.release()
    assert loader.finish() == 0, loader.stderr
