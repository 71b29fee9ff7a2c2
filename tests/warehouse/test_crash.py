"""A load killed with SIGKILL mid-transaction leaves the warehouse as it was, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from evergreen_etl.load import load
from evergreen_etl.settings import Settings
from warehouse.faults import (
    CHANGED_LOOKUP,
    DATES,
    SNAPSHOTS,
    LoadProcess,
    WarehouseRows,
    warehouse_rows,
)

FAILPOINTS = ["load.postcodes_loaded", "load.merged"]


@pytest.fixture
def before_second_load(
    settings: Settings, engine: Engine, stage_snapshot: Callable[..., Path]
) -> WarehouseRows:
    """Snapshot 1 loaded, snapshot 2 staged (with a changed lookup); the rows at that point."""
    stage_snapshot(SNAPSHOTS[0])
    load(settings, as_of=datetime.fromisoformat(DATES[0]), engine=engine, progress=False)
    stage_snapshot(SNAPSHOTS[1], lookup_rows=CHANGED_LOOKUP)
    return warehouse_rows(engine)


def _kill_second_load_at(point: str, start_load: Callable[..., LoadProcess]) -> None:
    loader = start_load(DATES[1], failpoint=point)
    loader.wait_until_held()
    loader.kill()


@pytest.mark.parametrize("point", FAILPOINTS)
def test_killed_load_leaves_every_row_as_before(
    point: str,
    before_second_load: WarehouseRows,
    start_load: Callable[..., LoadProcess],
    engine: Engine,
) -> None:
    """SIGKILL inside the load transaction leaves every row of every table as before the load."""
    _kill_second_load_at(point, start_load)
    assert warehouse_rows(engine) == before_second_load


def test_killed_load_leaves_no_running_run(
    before_second_load: WarehouseRows, start_load: Callable[..., LoadProcess], engine: Engine
) -> None:
    """No etl_run row of a killed load survives, neither 'running' nor any other."""
    _kill_second_load_at("load.merged", start_load)
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT as_of, status FROM etl_run ORDER BY run_id")).all()
    assert [(str(as_of)[:10], status) for as_of, status in runs] == [(DATES[0], "succeeded")]


def test_load_after_a_killed_load_succeeds(
    settings: Settings,
    before_second_load: WarehouseRows,
    start_load: Callable[..., LoadProcess],
    engine: Engine,
) -> None:
    """The same snapshot loads in full after a load of it was killed: nothing is half-applied."""
    _kill_second_load_at("load.merged", start_load)
    result = load(settings, as_of=datetime.fromisoformat(DATES[1]), engine=engine, progress=False)
    assert not result.skipped
    assert (result.new, result.moved, result.left, result.unchanged) == (2, 2, 1, 2)
    assert result.postcodes_loaded == len(CHANGED_LOOKUP)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_killed_load_leaves_sqlite_file_intact(
    before_second_load: WarehouseRows, start_load: Callable[..., LoadProcess], engine: Engine
) -> None:
    """After SIGKILL mid-load the SQLite file passes PRAGMA integrity_check."""
    _kill_second_load_at("load.merged", start_load)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalars().all() == ["ok"]


@pytest.fixture
def before_late_load(
    settings: Settings, engine: Engine, stage_snapshot: Callable[..., Path]
) -> WarehouseRows:
    """Snapshots 1 and 3 loaded, snapshot 2 staged (late: it goes between them)."""
    for index in (0, 2):
        stage_snapshot(SNAPSHOTS[index])
        load(settings, as_of=datetime.fromisoformat(DATES[index]), engine=engine, progress=False)
    stage_snapshot(SNAPSHOTS[1])
    return warehouse_rows(engine)


@pytest.mark.parametrize("point", ["replay.retired", "load.merged"])
def test_killed_replay_leaves_every_row_as_before(
    point: str,
    before_late_load: WarehouseRows,
    start_load: Callable[..., LoadProcess],
    engine: Engine,
) -> None:
    """SIGKILL while a late snapshot re-derives the later history leaves every row as before."""
    loader = start_load(DATES[1], failpoint=point)
    loader.wait_until_held()
    loader.kill()
    assert warehouse_rows(engine) == before_late_load
