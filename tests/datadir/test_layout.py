"""The data directory's layout: every path under DATA_DIR comes from one DataDir."""

from __future__ import annotations

from pathlib import Path

from evergreen_etl.datadir import DataDir
from evergreen_etl.settings import Settings

PATHS = (
    "raw_users",
    "raw_postcodes",
    "manifest",
    "extract_lock",
    "sample",
    "staged_users",
    "rejects",
    "summary",
    "warehouse_db",
    "key_file",
)


def test_every_path_is_a_distinct_path_under_the_root(tmp_path: Path) -> None:
    """Each named path lies under the data directory and no two of them coincide."""
    data = DataDir(tmp_path / "data")

    paths = [getattr(data, name) for name in PATHS]

    assert all(path.is_relative_to(data.root) for path in paths)
    assert len(set(paths)) == len(paths)


def test_raw_files_are_in_raw_and_staged_files_in_staged(tmp_path: Path) -> None:
    """Extract's files are under raw/, anonymise's under staged/."""
    data = DataDir(tmp_path)

    assert {data.raw_users.parent, data.raw_postcodes.parent, data.manifest.parent} == {data.raw}
    assert {data.staged_users.parent, data.rejects.parent, data.summary.parent} == {data.staged}
    assert data.raw_file("users") == data.raw_users
    assert data.raw_file("postcodes") == data.raw_postcodes


def test_settings_paths_delegate_to_the_data_directory(tmp_path: Path) -> None:
    """Settings' raw, staged, database and key paths are the DataDir's."""
    settings = Settings(data_dir=tmp_path / "data")

    assert settings.data == DataDir(tmp_path / "data")
    assert settings.raw_dir == settings.data.raw
    assert settings.staged_dir == settings.data.staged
    assert settings.effective_key_file == settings.data.key_file
    assert settings.effective_database_url.endswith(str(settings.data.warehouse_db.resolve()))
