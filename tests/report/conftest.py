"""Fixtures for the analyses: the scenario warehouse, loaded once per module and backend.

The reports only read, so one loaded warehouse serves every test of a module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from evergreen_etl.pipeline import demo
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.engine import make_engine
from report.scenario import DATES, SNAPSHOTS, Warehouse, load_snapshots
from support.keys import TEST_KEY
from support.postgres import PostgresServer, unique_database_name
from support.sources import nspl_row, user, write_lookup_zip


@contextmanager
def database(backend: str, request: pytest.FixtureRequest, directory: Path) -> Iterator[str]:
    """The URL of an empty database on ``backend``, dropped afterwards (PostgreSQL)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'warehouse.db'}"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = unique_database_name(f"report-{directory.name}")
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def scenario(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    """The scenario (tests/report/scenario.py) loaded on each backend."""
    directory = tmp_path_factory.mktemp("scenario")
    with database(request.param, request, directory) as url:
        warehouse = load_snapshots(url, directory, SNAPSHOTS, DATES)
        try:
            yield warehouse
        finally:
            warehouse.engine.dispose()


@pytest.fixture(scope="module")
def sqlite_scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """The scenario on SQLite only: for the command line and the pictures."""
    directory = tmp_path_factory.mktemp("scenario")
    warehouse = load_snapshots(
        f"sqlite:///{directory / 'warehouse.db'}", directory, SNAPSHOTS, DATES
    )
    try:
        yield warehouse
    finally:
        warehouse.engine.dispose()


# Buckinghamshire's four districts were merged into one unitary authority in 2020: an older
# lookup still carries E07000004-7, which --boundaries current maps to E06000060.
BUCKS_POSTCODES = (
    ("HP1 1AA", "E07000004"),  # Aylesbury Vale, abolished
    ("HP1 1AB", "E07000005"),  # Chiltern, abolished
    ("HP2 1AA", "E06000060"),  # Buckinghamshire, today
    ("AB1 1AA", "E06000001"),  # Hartlepool, unchanged
)
BUCKS_DATES = ["2024-01-01", "2024-02-01"]
BUCKS_SNAPSHOTS = [
    [
        user("uma@example.com", "HP1 1AA"),
        user("vic@example.com", "HP1 1AA"),
        user("wes@example.com", "HP2 1AA"),
        user("xan@example.com", "AB1 1AA"),
    ],
    [
        user("uma@example.com", "HP1 1AB"),  # moves from Aylesbury Vale to Chiltern
        user("vic@example.com", "HP1 1AA"),
        user("wes@example.com", "HP2 1AA"),
        user("xan@example.com", "AB1 1AA"),
    ],
]


@pytest.fixture(scope="module", params=BACKENDS)
def bucks(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    """A warehouse loaded from a lookup that still has the abolished Buckinghamshire districts."""
    directory = tmp_path_factory.mktemp("bucks")
    lookup = write_lookup_zip(
        directory / "postcodes.zip", [nspl_row(pcds, laua) for pcds, laua in BUCKS_POSTCODES]
    )
    with database(request.param, request, directory) as url:
        warehouse = load_snapshots(url, directory, BUCKS_SNAPSHOTS, BUCKS_DATES, lookup)
        try:
            yield warehouse
        finally:
            warehouse.engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def small_demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    """The demo's generated data, small: 150 people over three snapshots."""
    directory = tmp_path_factory.mktemp("demo")
    with database(request.param, request, directory) as url:
        settings = Settings(data_dir=directory / "data", database_url=url, pseudonym_key=TEST_KEY)
        demo(settings, users=150, postcodes=2000, snapshots=3, seed=7, progress=False)
        engine = make_engine(url)
        try:
            yield Warehouse(settings, engine)
        finally:
            engine.dispose()
