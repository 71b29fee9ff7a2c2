"""Shared fixtures: isolated settings, a fixed test key, warehouses on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from evergreen_etl.anonymise import anonymise
from evergreen_etl.load import load
from evergreen_etl.models import LoadResult
from evergreen_etl.settings import Settings, get_settings
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.migrate import upgrade
from support.keys import TEST_KEY
from support.postgres import (
    SKIP_REASON,
    PostgresServer,
    postgres_url_for_tests,
    unique_database_name,
)
from support.sources import LoadSnapshot, write_lookup_zip, write_users


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No EVERGREEN_* or OPENLINEAGE_* variable leaks into a test; no cached settings."""
    import os

    for name in list(os.environ):
        if name.startswith("EVERGREEN_") and name != "EVERGREEN_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
        if name.startswith("OPENLINEAGE_"):  # lineage only where a test asks for it
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    # A command configures the package's logger (its own handler, no propagation); undo that,
    # so that a later test's caplog sees the package's records however the tests are ordered.
    package_logger = logging.getLogger("evergreen_etl")
    for handler in list(package_logger.handlers):
        package_logger.removeHandler(handler)
    package_logger.propagate = True
    package_logger.setLevel(logging.NOTSET)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session: EVERGREEN_TEST_DATABASE_URL's, or a throwaway one."""
    with postgres_url_for_tests() as server:
        if server is None:
            pytest.skip(SKIP_REASON)
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped after the test."""
    name = unique_database_name(request.node.name)
    url = pg_server.create_database(name)
    try:
        yield url
    finally:
        pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty warehouse database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects (pytest 8 would run it after)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag the tests that need PostgreSQL, so `-m "not postgres"` deselects them."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec is not None else None
        uses_pg = {"pg_url", "pg_server"} & set(getattr(item, "fixturenames", ()))
        # The database_url fixture asks for pg_url at run time, so its postgres case is
        # known by its parameter, not by the fixture names.
        if backend == "postgres" or (uses_pg and backend != "sqlite"):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings with a fixed key, a data dir under tmp_path and a warehouse on each backend."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        pseudonym_key=TEST_KEY,
        max_reject_rate=1.0,
        # Tiny snapshots close many users on purpose: the volume guard has its own tests.
        max_left_rate=1.0,
    )


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings with a fixed key and the default SQLite warehouse under the data dir."""
    return Settings(
        data_dir=tmp_path / "data", pseudonym_key=TEST_KEY, max_reject_rate=1.0, max_left_rate=1.0
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """A migrated warehouse engine for ``settings``."""
    upgrade(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def lookup_zip(tmp_path: Path) -> Path:
    """The scenario postcode lookup (support.sources.SCENARIO_POSTCODES)."""
    return write_lookup_zip(tmp_path / "postcodes.zip")


@pytest.fixture
def load_snapshot(
    settings: Settings, engine: Engine, lookup_zip: Path, tmp_path: Path
) -> LoadSnapshot:
    """Anonymise ``records`` and load them as the snapshot at ``as_of``, through the library API."""
    counter = iter(range(1, 1000))

    def _load(records: Sequence[Any], as_of: str, **options: Any) -> LoadResult:
        path = write_users(tmp_path / f"users-{next(counter)}.json", records)
        anonymise(settings, users_path=path, progress=False)
        return load(
            settings,
            as_of=datetime.fromisoformat(as_of),
            postcodes_path=lookup_zip,
            engine=engine,
            progress=False,
            **options,
        )

    return _load
