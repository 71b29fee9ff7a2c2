"""The backend object: each SQLite/PostgreSQL difference gives the same result on both."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import IntegrityError

from evergreen_etl.errors import ConfigurationError
from evergreen_etl.warehouse.dialect import (
    PostgresBackend,
    SQLiteBackend,
    backend_for,
    bulk_insert,
    bulk_insert_batches,
    create_temp_table,
    deferred_indexes,
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


def _indexed_table(conn: Connection) -> None:
    """A parent and a child table with a unique index, a plain index and a foreign key."""
    conn.execute(text("CREATE TABLE t_parent (id INTEGER PRIMARY KEY)"))
    conn.execute(
        text(
            "CREATE TABLE t_child (id INTEGER PRIMARY KEY, "
            "parent_id INTEGER NOT NULL REFERENCES t_parent (id), code VARCHAR(8) NOT NULL)"
        )
    )
    conn.execute(text("CREATE UNIQUE INDEX ux_t_child_code ON t_child (code)"))
    conn.execute(text("CREATE INDEX ix_t_child_parent ON t_child (parent_id, code)"))
    bulk_insert(conn, "t_parent", ("id",), [(1,), (2,)])


def _index_names(conn: Connection, table: str) -> set[str]:
    return {
        str(index["name"])
        for index in inspect(conn).get_indexes(table)
        if not str(index["name"]).startswith("sqlite_autoindex")
    }


def test_deferred_indexes_fill_an_empty_table_and_build_its_indexes_again(
    conn: Connection,
) -> None:
    """The indexes and foreign keys of an empty table are there after the block, rows in."""
    _indexed_table(conn)
    before = (_index_names(conn, "t_child"), inspect(conn).get_foreign_keys("t_child"))

    with deferred_indexes(conn, "t_child"):
        bulk_insert(conn, "t_child", ("id", "parent_id", "code"), [(1, 1, "a"), (2, 2, "b")])

    assert (_index_names(conn, "t_child"), inspect(conn).get_foreign_keys("t_child")) == before
    assert before[0] == {"ux_t_child_code", "ix_t_child_parent"}
    assert conn.execute(text("SELECT COUNT(*) FROM t_child")).scalar_one() == 2


def test_deferred_indexes_leave_a_table_with_rows_alone(conn: Connection) -> None:
    """A table that holds rows keeps its indexes while the block runs."""
    _indexed_table(conn)
    bulk_insert(conn, "t_child", ("id", "parent_id", "code"), [(1, 1, "a")])

    with deferred_indexes(conn, "t_child"):
        during = _index_names(conn, "t_child")

    assert during == {"ux_t_child_code", "ix_t_child_parent"}


def test_deferred_unique_index_still_refuses_duplicates(conn: Connection) -> None:
    """Rows that break a unique index inserted in the block fail when it is built again."""
    _indexed_table(conn)

    # SQLite refuses the row at its insert (the driver's error), PostgreSQL at the rebuild.
    rows = [(1, 1, "a"), (2, 2, "a")]
    refused = (IntegrityError, sqlite3.IntegrityError)
    with pytest.raises(refused), deferred_indexes(conn, "t_child"):
        bulk_insert(conn, "t_child", ("id", "parent_id", "code"), rows)


@pytest.mark.postgres
def test_postgres_deferred_foreign_key_still_refuses_a_missing_parent(pg_url: str) -> None:
    """On PostgreSQL the foreign key is dropped too, and made again: an orphan fails then."""
    engine = make_engine(pg_url)
    try:
        with engine.connect() as connection, connection.begin():
            _indexed_table(connection)
            with pytest.raises(IntegrityError), deferred_indexes(connection, "t_child"):
                bulk_insert(connection, "t_child", ("id", "parent_id", "code"), [(1, 9, "a")])
    finally:
        engine.dispose()


def test_frozen_copy_into_a_table_emptied_in_the_transaction(database_url: str) -> None:
    """freeze=True loads a table emptied in the same transaction (COPY FREEZE on PostgreSQL)."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t_frozen (k VARCHAR(8) PRIMARY KEY)"))
            bulk_insert(connection, "t_frozen", ("k",), [("old",)])
        with engine.begin() as connection:
            backend_for(connection).empty_table(connection, "t_frozen")
            rows = [[("a",), ("b",)]]
            count = bulk_insert_batches(connection, "t_frozen", ("k",), rows, freeze=True)
        with engine.connect() as connection:
            found = connection.execute(text("SELECT k FROM t_frozen ORDER BY k")).scalars().all()
    finally:
        engine.dispose()
    assert count == 2
    assert found == ["a", "b"]


@pytest.mark.postgres
def test_postgres_role_that_does_not_own_the_table_keeps_its_indexes(pg_url: str) -> None:
    """A loading role that may insert but not own the table fills it with its indexes on."""
    engine = make_engine(pg_url)
    try:
        with engine.connect() as connection:
            connection.begin()
            _indexed_table(connection)
            connection.execute(text("CREATE ROLE t_inserter"))
            connection.execute(text("GRANT SELECT, INSERT ON t_child, t_parent TO t_inserter"))
            connection.execute(text("SET LOCAL ROLE t_inserter"))
            with deferred_indexes(connection, "t_child"):
                during = _index_names(connection, "t_child")
                bulk_insert(connection, "t_child", ("id", "parent_id", "code"), [(1, 1, "a")])
            connection.rollback()  # the role and tables go with the transaction
    finally:
        engine.dispose()
    assert during == {"ux_t_child_code", "ix_t_child_parent"}
