"""The throwaway PostgreSQL server helper works: start, per-test databases, stop and clean up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from support.postgres import (
    SKIP_REASON,
    PostgresServer,
    TemporaryPostgres,
    find_pg_bin,
    postgres_url_for_tests,
    unique_database_name,
)

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with postgres_url_for_tests() as found:
        if found is None:
            pytest.skip(SKIP_REASON)
        yield found


def _scalar(url: str, query: str) -> object:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(query)).scalar_one()
    finally:
        engine.dispose()


def test_two_fresh_databases_on_postgres_15_or_newer(server: PostgresServer) -> None:
    names = [unique_database_name("first"), unique_database_name("second")]
    urls = [server.create_database(name) for name in names]
    engine = create_engine(urls[0])
    try:
        for name, url in zip(names, urls, strict=True):
            assert url.startswith("postgresql+psycopg://")
            assert url.endswith(f"/{name}")
            version = _scalar(url, "SELECT version()")
            assert isinstance(version, str)
            assert version.startswith("PostgreSQL ")
            version_num = _scalar(url, "SELECT current_setting('server_version_num')::int")
            assert isinstance(version_num, int)
            assert version_num >= 150000, version
            assert _scalar(url, "SELECT current_database()") == name
            assert _scalar(url, "SHOW server_encoding") == "UTF8"

        # The databases are separate: a table made in one is not in the other.
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE only_here (id int)"))
        query = "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'"
        assert _scalar(urls[0], query) == 1
        assert _scalar(urls[1], query) == 0

        # Left open on purpose while dropping: drop_database must cope with open connections.
        with engine.connect():
            for name in names:
                server.drop_database(name)
    finally:
        engine.dispose()
        for name in names:
            server.drop_database(name)  # IF EXISTS: a second drop is harmless

    query = "SELECT count(*) FROM pg_database WHERE datname = ANY(:names)"
    engine = create_engine(server.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text(query), {"names": names}).scalar_one() == 0
    finally:
        engine.dispose()


def test_unique_database_names_are_safe_identifiers() -> None:
    name = unique_database_name("test_thing[param-1/Ünïcode " + "x" * 80 + "]")
    assert name.startswith("test_thing_param_1_")
    assert len(name.encode()) <= 53
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789_")
    assert unique_database_name() != unique_database_name()


def test_temporary_server_removes_its_directory() -> None:
    if find_pg_bin() is None:
        pytest.skip(SKIP_REASON)
    with TemporaryPostgres() as pg:
        base_dir = pg.base_dir
        assert base_dir is not None
        assert base_dir.is_dir()
        assert pg.url == f"postgresql+psycopg://evergreen@127.0.0.1:{pg.port}/evergreen"
        assert _scalar(pg.url, "SELECT current_user") == "evergreen"
    assert not base_dir.exists()
    pg.stop()  # stopping twice is harmless
