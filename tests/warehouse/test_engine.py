"""open_warehouse and write_transaction: an engine's lifecycle, the schema check, one writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from evergreen_etl.errors import SchemaOutOfDateError
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.engine import open_warehouse, write_transaction
from evergreen_etl.warehouse.migrate import current_revision, head_revision, upgrade
from support.keys import TEST_KEY


@pytest.fixture
def empty(tmp_path: Path) -> Settings:
    """Settings whose SQLite warehouse has no table yet."""
    return Settings(data_dir=tmp_path / "data", pseudonym_key=TEST_KEY)


def test_an_empty_warehouse_is_refused_by_default(empty: Settings) -> None:
    """Without a schema policy, a database with no schema is refused naming `db upgrade`."""
    with pytest.raises(SchemaOutOfDateError) as raised, open_warehouse(empty):
        pass
    assert "db upgrade" in (raised.value.hint or "")


def test_create_makes_the_schema_of_an_empty_warehouse(empty: Settings) -> None:
    """schema="create" (the first load) migrates an empty database to the newest schema."""
    with open_warehouse(empty, schema="create") as engine:
        assert current_revision(engine) == head_revision()


def test_create_refuses_an_older_schema(empty: Settings) -> None:
    """schema="create" does not migrate a database that already holds an older schema."""
    upgrade(empty.effective_database_url, "0001")
    with pytest.raises(SchemaOutOfDateError), open_warehouse(empty, schema="create"):
        pass


def test_any_opens_a_warehouse_without_checking_it(empty: Settings) -> None:
    """schema="any" (for `db current`) opens the database as it is, creating nothing."""
    with open_warehouse(empty, schema="any") as engine:
        assert current_revision(engine) is None
        assert inspect(engine).get_table_names() == []


def test_a_given_engine_is_checked_and_left_open(settings: Settings, engine: Engine) -> None:
    """A caller's engine is used as it is and still works after the block."""
    with open_warehouse(settings, engine) as opened:
        assert opened is engine
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM etl_run")).scalar_one() == 0


def test_write_transaction_commits_at_the_end_of_the_block(engine: Engine) -> None:
    """What the block writes is there afterwards."""
    with write_transaction(engine) as conn:
        conn.execute(text("DELETE FROM dim_local_authority"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM dim_local_authority")).scalar_one() == 0


def _delete_authorities_then_fail(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        conn.execute(text("DELETE FROM dim_local_authority"))
        raise RuntimeError("stop")


def test_write_transaction_rolls_back_on_an_error(engine: Engine) -> None:
    """An exception in the block leaves the warehouse as it was."""
    with engine.connect() as conn:
        before = conn.execute(text("SELECT COUNT(*) FROM dim_local_authority")).scalar_one()
    assert before > 0  # the unknown authority's row

    with pytest.raises(RuntimeError):
        _delete_authorities_then_fail(engine)

    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM dim_local_authority")).scalar_one() == before
