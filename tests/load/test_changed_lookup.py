"""A changed postcode lookup is always loaded, even with a snapshot that is already loaded."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, text

from evergreen_etl.load import load
from evergreen_etl.settings import Settings
from support.sources import SCENARIO_POSTCODES, LoadSnapshot, nspl_row, user, write_lookup_zip

USERS = [user("ann@example.com", "AB1 1AA"), user("ben@example.com", "CV4 9RE")]
NEW_POSTCODE = ("AB5 1AA", "E06000006", "")


def _rows(engine: Engine, query: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(query))]


def test_changed_lookup_is_loaded_when_the_snapshot_is_already_loaded(
    load_snapshot: LoadSnapshot, settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    """The snapshot is not merged again, but the new lookup is loaded and recorded."""
    load_snapshot(USERS, "2024-01-01")
    history = _rows(engine, "SELECT * FROM user_address ORDER BY address_id")
    changed = write_lookup_zip(
        tmp_path / "changed.zip", [nspl_row(*spec) for spec in (*SCENARIO_POSTCODES, NEW_POSTCODE)]
    )
    result = load(
        settings,
        as_of=datetime(2024, 1, 1),
        postcodes_path=changed,
        engine=engine,
        progress=False,
    )
    assert result.skipped
    assert result.postcodes_loaded == len(SCENARIO_POSTCODES) + 1
    assert _rows(engine, "SELECT postcode FROM dim_postcode WHERE postcode = 'AB5 1AA'")
    assert _rows(engine, "SELECT * FROM user_address ORDER BY address_id") == history
    assert _rows(engine, "SELECT status FROM etl_run ORDER BY run_id") == [
        ("succeeded",),
        ("lookup",),
    ]


def test_same_lookup_again_is_not_reloaded(
    load_snapshot: LoadSnapshot, settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    """Once the changed lookup is loaded, loading the same files again is a no-op."""
    load_snapshot(USERS, "2024-01-01")
    changed = write_lookup_zip(
        tmp_path / "changed.zip", [nspl_row(*spec) for spec in (*SCENARIO_POSTCODES, NEW_POSTCODE)]
    )
    options = {"as_of": datetime(2024, 1, 1), "postcodes_path": changed, "engine": engine}
    load(settings, progress=False, **options)
    again = load(settings, progress=False, **options)
    assert again.skipped
    assert again.postcodes_loaded is None
    assert _rows(engine, "SELECT COUNT(*) FROM etl_run") == [(2,)]
