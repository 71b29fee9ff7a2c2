"""A warehouse that cannot or must not take a load refuses it clearly and keeps its data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from typer.testing import Result

from evergreen_etl.load import load
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.migrate import current_revision, downgrade, head_revision
from warehouse.faults import DATES, SNAPSHOTS, WarehouseRows, invoke_load, warehouse_rows

OTHER_KEY = "9d1e7c3b5a0f2e4d6c8b0a1f3e5d7c9b2a4f6e8d0c1b3a5f7e9d2c4b6a8f0e1d"
UNKNOWN_REVISION = "ffffffffffff"


@pytest.fixture
def loaded(
    settings: Settings, engine: Engine, stage_snapshot: Callable[..., Path]
) -> WarehouseRows:
    """Snapshot 1 loaded and snapshot 2 staged; the warehouse rows at that point."""
    stage_snapshot(SNAPSHOTS[0])
    load(settings, as_of=datetime.fromisoformat(DATES[0]), engine=engine, progress=False)
    stage_snapshot(SNAPSHOTS[1])
    return warehouse_rows(engine)


def _load(settings: Settings, *options: str, database_url: str | None = None) -> Result:
    """`evergreen-etl load` for the staged snapshot 2, in-process."""
    return invoke_load(settings, "--as-of", DATES[1], *options, database_url=database_url)


def _one_line_error(result: Result) -> str:
    """The error line of a failed command; fails if it is a traceback or several lines."""
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert lines, "nothing on stderr"
    assert lines[0].startswith("error: "), result.stderr
    assert all(line.startswith("hint: ") for line in lines[1:]), lines
    return lines[0]


def _read_only(database_url: str, engine: Engine, tmp_path: Path) -> str:
    """A URL on which the warehouse can be read but not written, even by root.

    SQLite: the file opened with ``mode=ro`` (file permissions do not stop root).
    PostgreSQL: the database set to ``default_transaction_read_only``.
    """
    if engine.dialect.name == "sqlite":
        return f"sqlite:///file:{make_url(database_url).database}?mode=ro&uri=true"
    with engine.connect() as conn:
        name = conn.execute(text("SELECT current_database()")).scalar_one()
        conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        conn.commit()
    engine.dispose()
    return database_url


def test_load_into_a_read_only_warehouse_fails_in_one_line_and_keeps_the_data(
    settings: Settings,
    loaded: WarehouseRows,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read-only warehouse makes the load fail with a one-line error; no row changes."""
    monkeypatch.chdir(tmp_path)  # make_engine creates directories relative to a file: URI
    url = _read_only(settings.effective_database_url, engine, tmp_path)
    result = _load(settings, database_url=url)
    assert result.exit_code != 0
    _one_line_error(result)
    assert warehouse_rows(engine) == loaded


def test_load_into_a_read_only_warehouse_names_the_cause(
    settings: Settings,
    loaded: WarehouseRows,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read-only warehouse is refused with exit 5 and a message that says read-only."""
    monkeypatch.chdir(tmp_path)
    url = _read_only(settings.effective_database_url, engine, tmp_path)
    result = _load(settings, database_url=url)
    assert result.exit_code == 5, result.stderr
    assert "read-only" in _one_line_error(result)


@pytest.fixture
def behind(settings: Settings, loaded: WarehouseRows, engine: Engine) -> None:
    """The warehouse migrated down to base: older than the schema this version needs."""
    engine.dispose()
    downgrade(settings.effective_database_url, "base")


def test_load_on_an_older_schema_is_refused_with_the_fix(
    settings: Settings, behind: None, engine: Engine
) -> None:
    """A warehouse behind the newest migration is refused (exit 5) naming `db upgrade`."""
    result = _load(settings)
    assert result.exit_code == 5, result.stderr
    _one_line_error(result)
    assert "evergreen-etl db upgrade" in result.stderr
    assert current_revision(engine) is None


def test_auto_upgrade_migrates_an_older_schema_then_loads(
    settings: Settings, behind: None, engine: Engine
) -> None:
    """With --auto-upgrade the load migrates the warehouse to the newest schema and loads."""
    result = _load(settings, "--auto-upgrade")
    assert result.exit_code == 0, result.stderr
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM etl_run")).scalars().all() == ["succeeded"]


@pytest.fixture
def unknown_revision(loaded: WarehouseRows, engine: Engine) -> WarehouseRows:
    """The warehouse stamped with a migration this version does not know; its rows then."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": UNKNOWN_REVISION})
    engine.dispose()
    return warehouse_rows(engine)


def test_load_on_an_unknown_schema_revision_is_refused_and_changes_nothing(
    settings: Settings, unknown_revision: WarehouseRows, engine: Engine
) -> None:
    """A warehouse at a migration this version does not know is refused; no row changes."""
    result = _load(settings)
    assert result.exit_code == 5, result.stderr
    assert UNKNOWN_REVISION in _one_line_error(result)
    assert warehouse_rows(engine) == unknown_revision


def test_snapshot_made_with_another_key_is_refused_and_changes_nothing(
    settings: Settings,
    loaded: WarehouseRows,
    engine: Engine,
    stage_snapshot: Callable[..., Path],
) -> None:
    """A staged snapshot pseudonymised with another key is refused (exit 5); no row changes."""
    stage_snapshot(SNAPSHOTS[1], key=OTHER_KEY)
    result = _load(settings)
    assert result.exit_code == 5, result.stderr
    assert "pseudonymised with key" in _one_line_error(result)
    assert warehouse_rows(engine) == loaded


def test_auto_upgrade_refuses_an_unknown_schema_revision_clearly(
    settings: Settings, unknown_revision: WarehouseRows, engine: Engine
) -> None:
    """--auto-upgrade on a migration this version does not know is refused (exit 5), not a crash."""
    result = _load(settings, "--auto-upgrade")
    assert result.exit_code == 5, result.stderr
    assert UNKNOWN_REVISION in _one_line_error(result)
    assert warehouse_rows(engine) == unknown_revision
