"""Alembic migrations: up from empty, no drift from the metadata, down to base; on both backends."""

from __future__ import annotations

import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from evergreen_etl.errors import SchemaOutOfDateError
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.migrate import (
    HEAD_REVISION,
    SCRIPT_LOCATION,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    require_current_schema,
    upgrade,
)
from evergreen_etl.warehouse.schema import metadata

REPO = Path(__file__).resolve().parents[2]
TABLES = {
    "dim_local_authority",
    "dim_postcode",
    "dim_postcode_district",
    "dim_user",
    "user_address",
    "etl_run",
}


def test_upgrade_check_downgrade(database_url: str) -> None:
    """Upgrade creates every table and view, check finds no drift, downgrade removes them."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) >= TABLES
        assert {"v_user_current_location", "v_users_by_local_authority"} <= set(
            inspector.get_view_names()
        )
        command.check(alembic_config(database_url))
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
        assert current_revision(engine) == head_revision()
        downgrade(database_url, "base")
        inspector = inspect(engine)
        assert not TABLES & set(inspector.get_table_names())
        assert current_revision(engine) is None
    finally:
        engine.dispose()


def test_alembic_command_line_from_checkout(tmp_path: Path) -> None:
    """`alembic upgrade head` and `alembic check` work from the repository with alembic.ini."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    alembic = [sys.executable, "-m", "alembic", "-x", f"url={url}"]
    for args in (["upgrade", "head"], ["check"], ["downgrade", "base"]):
        done = subprocess.run([*alembic, *args], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_alembic_ini_names_the_scripts_inside_the_package() -> None:
    """alembic.ini runs the scripts `db upgrade` runs: the package's, by resource name."""
    ini = ConfigParser()
    ini.read(REPO / "alembic.ini", encoding="utf-8")
    assert ini.get("alembic", "script_location") == SCRIPT_LOCATION
    assert not (REPO / "migrations").exists()


def test_outdated_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    """Working on an empty or older database fails with a message naming `db upgrade`."""
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        with pytest.raises(SchemaOutOfDateError) as raised:
            require_current_schema(engine)
        assert "db upgrade" in (raised.value.hint or "")
        require_current_schema(engine, auto_upgrade=True)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_head_revision_constant_is_the_newest_migration() -> None:
    """HEAD_REVISION, which every command checks without importing Alembic, is Alembic's head."""
    assert head_revision() == HEAD_REVISION


def test_current_revision_reads_alembic_version_at_each_step(tmp_path: Path) -> None:
    """The one-query revision check agrees with Alembic from empty, through each step, to base."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = make_engine(url)
    try:
        assert current_revision(engine) is None
        for revision in ("0001", "0002", "0003", HEAD_REVISION):
            upgrade(url, revision)
            with engine.connect() as connection:
                alembic_says = MigrationContext.configure(connection).get_current_revision()
            assert current_revision(engine) == alembic_says == revision
        downgrade(url, "base")
        assert current_revision(engine) is None
    finally:
        engine.dispose()
