"""A dry run computes the whole merge, prints its counts and leaves the warehouse unchanged."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from evergreen_etl.cli import app
from evergreen_etl.load import load
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.migrate import current_revision, downgrade, head_revision
from support.keys import TEST_KEY
from support.sources import user, write_lookup_zip, write_users
from warehouse.faults import DATES, SNAPSHOTS, invoke_load, warehouse_rows

# Snapshot 2 after snapshot 1: frank and grace join, alice and dave move, carol leaves.
EXPECTED = {
    "new": 2,
    "returned": 0,
    "moved": 2,
    "left": 1,
    "unchanged": 2,
    "relocated": 0,
    "replayed": 0,
}


def _sqlite_digest(path: Path, *, checkpoint: bool) -> str:
    """The database file's SHA-256, after folding any -wal content into it if asked."""
    if checkpoint:
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _state(settings: Settings, engine: Engine) -> object:
    """SQLite: the file's digest (checkpointed); PostgreSQL: every row of every table."""
    if engine.dialect.name == "sqlite":
        engine.dispose()
        database = make_url(settings.effective_database_url).database
        assert database is not None
        return _sqlite_digest(Path(database), checkpoint=True)
    return warehouse_rows(engine)


def _assert_unchanged(settings: Settings, engine: Engine, before: object) -> None:
    if engine.dialect.name == "sqlite":
        engine.dispose()
        database = make_url(settings.effective_database_url).database
        assert database is not None
        # The file as the dry run left it, then with anything it wrote to the WAL folded in.
        assert _sqlite_digest(Path(database), checkpoint=False) == before
    assert _state(settings, engine) == before


def _load(settings: Settings, *options: str) -> Result:
    """`evergreen-etl load --dry-run` of the staged snapshot 2, in-process."""
    return invoke_load(settings, "--as-of", DATES[1], "--dry-run", *options)


@pytest.fixture
def first_loaded(settings: Settings, engine: Engine, stage_snapshot: Callable[..., Path]) -> None:
    """Snapshot 1 loaded and snapshot 2 staged."""
    stage_snapshot(SNAPSHOTS[0])
    load(settings, as_of=datetime.fromisoformat(DATES[0]), engine=engine, progress=False)
    stage_snapshot(SNAPSHOTS[1])


def test_dry_run_prints_the_counts_and_changes_nothing(
    first_loaded: None, settings: Settings, engine: Engine
) -> None:
    """`load --dry-run` prints every count, and the warehouse is as it was (file or rows)."""
    before = _state(settings, engine)
    result = _load(settings, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert {row["change"]: row["users"] for row in json.loads(result.stdout)} == EXPECTED
    _assert_unchanged(settings, engine, before)


def test_dry_run_counts_equal_the_real_load(
    first_loaded: None, settings: Settings, engine: Engine
) -> None:
    """The library's dry run returns what the real load then does, flagged and without a run."""
    as_of = datetime.fromisoformat(DATES[1])
    dry = load(settings, as_of=as_of, engine=engine, progress=False, dry_run=True)
    real = load(settings, as_of=as_of, engine=engine, progress=False)
    assert (dry.dry_run, real.dry_run) == (True, False)
    assert dry.run_id is None
    assert real.run_id is not None
    same = {"dry_run", "run_id"}
    assert dry.model_dump(exclude=same) == real.model_dump(exclude=same)


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_dry_run_counts_in_each_format(
    first_loaded: None, settings: Settings, engine: Engine, fmt: str
) -> None:
    """The counts come as a table for people or as CSV, like every report."""
    result = _load(settings, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert rows[0] == ["change", "users"]
        assert {change: int(users) for change, users in rows[1:]} == EXPECTED
    else:
        assert result.stdout.startswith("Dry run: the snapshot as of 2024-02-01 00:00:00 UTC")
        assert "Nothing was changed" in result.stdout
        assert [line.split()[0] for line in result.stdout.splitlines()[4:11]] == list(EXPECTED)


def test_dry_run_on_an_empty_warehouse_leaves_no_schema(
    settings: Settings, stage_snapshot: Callable[..., Path]
) -> None:
    """A dry run into an empty warehouse migrates inside its transaction: nothing stays."""
    stage_snapshot(SNAPSHOTS[0])
    result = _load(settings, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert {row["change"]: row["users"] for row in json.loads(result.stdout)}["new"] == 5
    url = settings.effective_database_url
    database = make_url(url).database
    if url.startswith("sqlite"):
        assert database is not None
        assert not Path(database).exists()
        return
    engine = make_engine(url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_dry_run_shows_what_the_volume_guard_would_refuse(
    settings: Settings, engine: Engine, stage_snapshot: Callable[..., Path]
) -> None:
    """A dry run of a snapshot the guard would refuse prints its counts and warns."""
    ten = [user(f"user{i}@example.com", "AB1 1AA") for i in range(10)]
    stage_snapshot(ten)
    load(settings, as_of=datetime(2024, 1, 1), engine=engine, progress=False)
    stage_snapshot(ten[:4])
    result = _load(settings, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert {row["change"]: row["users"] for row in json.loads(result.stdout)}["left"] == 6
    assert "a load would be refused" in result.stderr
    assert "60.0% of the current users" in result.stderr


def test_run_dry_run_prints_counts_and_changes_nothing(tmp_path: Path) -> None:
    """`run --dry-run` extracts and anonymises, then prints the load's counts, not a report."""
    lookup = write_lookup_zip(tmp_path / "postcodes.zip")
    data = tmp_path / "data"
    runner = CliRunner()

    def run(users: list[dict[str, object]], as_of: str, *options: str) -> Result:
        path = write_users(tmp_path / f"users-{as_of}.json", users)
        return runner.invoke(
            app,
            [
                "run",
                "--data-dir",
                str(data),
                "--users-url",
                str(path),
                "--postcodes-url",
                str(lookup),
                "--as-of",
                as_of,
                "-q",
                *options,
            ],
            env={"EVERGREEN_PSEUDONYM_KEY": TEST_KEY},
        )

    assert run(list(SNAPSHOTS[0]), DATES[0]).exit_code == 0
    before = _sqlite_digest(data / "warehouse.db", checkpoint=True)
    result = run(list(SNAPSHOTS[1]), DATES[1], "--dry-run", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "change,users"
    assert "moved,2" in result.stdout.splitlines()
    assert _sqlite_digest(data / "warehouse.db", checkpoint=False) == before
    assert _sqlite_digest(data / "warehouse.db", checkpoint=True) == before


def test_dry_run_on_an_older_schema_is_refused_even_with_auto_upgrade(
    first_loaded: None, settings: Settings, engine: Engine
) -> None:
    """A dry run keeps no migration: an older schema is refused (exit 5) and stays as it is."""
    engine.dispose()
    downgrade(settings.effective_database_url, "-1")
    behind = current_revision(engine)
    result = _load(settings, "--auto-upgrade")
    assert result.exit_code == 5, result.stderr
    assert "evergreen-etl db upgrade" in result.stderr
    assert current_revision(engine) == behind != head_revision()
