"""The backend object: each SQLite/PostgreSQL difference gives the same result on both."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Connection, text

from evergreen_etl.errors import ConfigurationError
from evergreen_etl.warehouse.dialect import (
    PostgresBackend,
    SQLiteBackend,
    backend_for,
    bulk_insert,
    create_temp_table,
)
from evergreen_etl.warehouse.engine import make_engine


@pytest.fixture
def conn(database_url: str) -> Iterator[Connection]:
    """A connection in an open transaction on an empty database of each backend."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection, connection.begin():
            yield connection
    finally:
        engine.dispose()


def test_backend_for_names_the_connections_backend(conn: Connection) -> None:
    """backend_for gives the SQLite backend on SQLite and the PostgreSQL one on PostgreSQL."""
    backend = backend_for(conn)
    expected = SQLiteBackend if conn.dialect.name == "sqlite" else PostgresBackend
    assert isinstance(backend, expected)
    assert backend.name == conn.dialect.name


def test_another_database_is_refused_clearly() -> None:
    """A database that is neither SQLite nor PostgreSQL is a configuration error naming it."""
    other: Any = SimpleNamespace(dialect=SimpleNamespace(name="mysql"))
    with pytest.raises(ConfigurationError, match="SQLite or PostgreSQL, not mysql"):
        backend_for(other)


def test_latest_per_key_keeps_the_last_row_of_each_key(conn: Connection) -> None:
    """One row per key: the one with the highest order, with its own other columns."""
    create_temp_table(conn, "t_rows", "k VARCHAR(8) NOT NULL, pos INTEGER NOT NULL, v VARCHAR(8)")
    rows = [("b", 1, "b1"), ("a", 2, "a2"), ("b", 3, "b3"), ("a", 1, "a1"), ("c", 5, None)]
    bulk_insert(conn, "t_rows", ("k", "pos", "v"), rows)

    query = backend_for(conn).latest_per_key("t_rows", "k", "pos", ("v",))
    found = sorted(tuple(row) for row in conn.execute(text(query)))

    assert found == [("a", 2, "a2"), ("b", 3, "b3"), ("c", 5, None)]


def test_numbered_key_continues_after_the_largest_existing_id(conn: Connection) -> None:
    """New rows are numbered after the table's largest id, one apart, on both backends."""
    backend = backend_for(conn)
    conn.execute(text(f"CREATE TABLE t_ids (id {backend.numbered_key}, v VARCHAR(8))"))
    conn.execute(text("INSERT INTO t_ids (id, v) VALUES (41, 'old')"))
    if backend.name == "postgresql":  # an id given explicitly does not move the sequence
        conn.execute(text("CREATE SEQUENCE t_ids_id_seq OWNED BY t_ids.id"))
        conn.execute(text("SELECT setval('t_ids_id_seq', 41)"))
        conn.execute(text("ALTER TABLE t_ids ALTER COLUMN id SET DEFAULT nextval('t_ids_id_seq')"))
    create_temp_table(conn, "t_new", f"id {backend.numbered_key}, v VARCHAR(8)")
    backend.start_numbering(conn, "t_new", "t_ids", "id")

    next_id = backend.next_number("t_ids", "id")
    conn.execute(text(f"INSERT INTO t_new (id, v) SELECT {next_id}, 'x'"))
    conn.execute(text(f"INSERT INTO t_new (id, v) SELECT {next_id}, 'y'"))

    assert conn.execute(text("SELECT id, v FROM t_new ORDER BY id")).all() == [
        (42, "x"),
        (43, "y"),
    ]


def test_empty_table_deletes_every_row(conn: Connection) -> None:
    """empty_table leaves the table in place with no row."""
    conn.execute(text("CREATE TABLE t_full (x INTEGER)"))
    bulk_insert(conn, "t_full", ("x",), [(n,) for n in range(5)])

    backend_for(conn).empty_table(conn, "t_full")

    assert conn.execute(text("SELECT COUNT(*) FROM t_full")).scalar_one() == 0
