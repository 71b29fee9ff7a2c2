"""The one place where the backends differ: bulk loading, temporary tables and the load lock.

SQLite gets batched DBAPI ``executemany`` inside the transaction; PostgreSQL gets ``COPY``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from evergreen_etl.errors import ConcurrentLoadError

BATCH_ROWS = 50_000
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises loads.
_ADVISORY_LOCK_KEY = 0x45564552475245  # "EVERGRE"
LOCK_WAIT_SECONDS = 30


def is_postgres(conn: Connection) -> bool:
    """True on PostgreSQL, False on SQLite."""
    return conn.dialect.name == "postgresql"


def bulk_insert(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert ``rows`` into ``table`` with the driver's bulk path; return the row count."""
    names = ", ".join(columns)
    driver = conn.connection.driver_connection
    assert driver is not None
    count = 0
    if is_postgres(conn):
        with driver.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    marks = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"
    cursor = driver.cursor()
    iterator = iter(rows)
    try:
        while batch := list(islice(iterator, BATCH_ROWS)):
            cursor.executemany(sql, batch)
            count += len(batch)
    finally:
        cursor.close()
    return count


def copy_csv(conn: Connection, table: str, columns: Sequence[str], path: Path) -> int:
    """Load a CSV file with a header row into ``table``: empty fields become NULL."""
    if is_postgres(conn):
        driver = conn.connection.driver_connection
        assert driver is not None
        names = ", ".join(columns)
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv, HEADER true)") as cp,
            path.open("rb") as handle,
        ):
            while chunk := handle.read(1 << 20):
                cp.write(chunk)
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        return bulk_insert(
            conn, table, columns, ([value or None for value in row] for row in reader)
        )


def create_temp_table(conn: Connection, name: str, columns_sql: str) -> None:
    """A temporary table that disappears with the transaction (PostgreSQL) or connection."""
    conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    suffix = " ON COMMIT DROP" if is_postgres(conn) else ""
    conn.execute(text(f"CREATE TEMPORARY TABLE {name} ({columns_sql}){suffix}"))


def create_temp_table_as(conn: Connection, name: str, select_sql: str, **params: Any) -> None:
    """A temporary table filled from a query, dropped as ``create_temp_table`` says."""
    conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    suffix = " ON COMMIT DROP" if is_postgres(conn) else ""
    conn.execute(text(f"CREATE TEMPORARY TABLE {name}{suffix} AS {select_sql}"), params)


def acquire_load_lock(conn: Connection) -> None:
    """Serialise loads: wait up to LOCK_WAIT_SECONDS for another load, then fail clearly.

    On SQLite the transaction was begun with BEGIN IMMEDIATE, which already holds the
    database's write lock (waiting up to the busy timeout); PostgreSQL takes an advisory lock.
    """
    if not is_postgres(conn):
        return
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
    try:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    except OperationalError as exc:
        raise ConcurrentLoadError(
            f"another load is running on this warehouse (waited {LOCK_WAIT_SECONDS}s)"
        ) from exc
    conn.execute(text("SET LOCAL lock_timeout = 0"))
