"""The one place where the backends differ: bulk loading, temporary tables and the load lock.

SQLite gets batched DBAPI ``executemany`` inside the transaction; PostgreSQL gets ``COPY``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, islice
from operator import methodcaller
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from evergreen_etl.errors import ConcurrentLoadError
from evergreen_etl.gc_pause import collector_paused

BATCH_ROWS = 10_000
# SQLite's page cache during a bulk load or merge (the default is 2 MiB). Big enough to keep
# the B-tree pages an ordered insert or join is working on; small next to the 200 MB budget.
SQLITE_BULK_CACHE_KIB = 16 * 1024
POSTGRES_BULK_WORK_MEM = "64MB"
_CSV_BLOCK_CHARS = 1 << 20
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises loads.
_ADVISORY_LOCK_KEY = 0x45564552475245  # "EVERGRE"
LOCK_WAIT_SECONDS = 30


def is_postgres(conn: Connection) -> bool:
    """True on PostgreSQL, False on SQLite."""
    return conn.dialect.name == "postgresql"


@contextmanager
def bulk_work(conn: Connection) -> Iterator[None]:
    """Tune the connection for a bulk load or merge inside the current transaction.

    On SQLite the page caches of the database and of its temporary tables each grow to
    ``SQLITE_BULK_CACHE_KIB`` and sorts may use a helper thread for the length of the block;
    all are put back afterwards (the connection may go back to a pool). PostgreSQL gets a
    ``work_mem`` of ``POSTGRES_BULK_WORK_MEM`` for the rest of the transaction. On both,
    Python's cyclic garbage collector pauses (see ``evergreen_etl.gc_pause``): the rows
    streamed through hold no cycles.
    """
    if is_postgres(conn):
        # Sorts and hashes of a million staged rows in memory rather than in temporary files,
        # for this transaction only (the server's default is 4 MB).
        conn.execute(text(f"SET LOCAL work_mem = '{POSTGRES_BULK_WORK_MEM}'"))
        with collector_paused():
            yield
        return
    # The temporary tables (a snapshot's million staged rows) have a cache of their own.
    caches = {
        schema: conn.exec_driver_sql(f"PRAGMA {schema}.cache_size").scalar_one()
        for schema in ("main", "temp")
    }
    threads = conn.exec_driver_sql("PRAGMA threads").scalar_one()
    for schema in caches:
        conn.exec_driver_sql(f"PRAGMA {schema}.cache_size = -{SQLITE_BULK_CACHE_KIB}")
    # A helper thread for the big sorts (GROUP BY, ORDER BY) when there is a second core.
    conn.exec_driver_sql(f"PRAGMA threads = {min(2, os.cpu_count() or 1) - 1}")
    try:
        with collector_paused():
            yield
    finally:
        for schema, cache in caches.items():
            conn.exec_driver_sql(f"PRAGMA {schema}.cache_size = {int(cache)}")
        conn.exec_driver_sql(f"PRAGMA threads = {int(threads)}")


def bulk_insert(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Insert ``rows`` into ``table`` with the driver's bulk path; return the row count.

    Rows are consumed as a stream, ``BATCH_ROWS`` at a time; ``on_batch`` hears how many
    rows each batch held (for progress).
    """
    iterator = iter(rows)
    batches = iter(lambda: list(islice(iterator, BATCH_ROWS)), [])
    return bulk_insert_batches(conn, table, columns, batches, on_batch=on_batch)


def bulk_insert_batches(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    batches: Iterable[Sequence[Sequence[Any]]],
    *,
    on_batch: Callable[[int], None] | None = None,
    binary: bool = False,
) -> int:
    """Insert each batch of rows into ``table`` (``COPY`` or ``executemany``); count them.

    ``binary`` makes PostgreSQL's ``COPY`` binary: floats and NULLs go over as they are, not
    as text for the server to parse again. Every value must then be of its column's Python
    type (a float for a float column, not its text).
    """
    names = ", ".join(columns)
    driver = conn.connection.driver_connection
    assert driver is not None
    count = 0
    if is_postgres(conn):
        options = " (FORMAT BINARY)" if binary else ""
        # Asked before the COPY starts: the connection takes no other query during one.
        types = _column_types(conn, table, columns) if binary else None
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN{options}") as copy,
        ):
            if types is not None:
                copy.set_types(types)
            write_row = copy.write_row
            for batch in batches:
                for row in batch:
                    write_row(row)
                count += len(batch)
                if on_batch is not None:
                    on_batch(len(batch))
        return count
    marks = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"
    cursor = driver.cursor()
    try:
        for batch in batches:
            cursor.executemany(sql, batch)
            count += len(batch)
            if on_batch is not None:
                on_batch(len(batch))
    finally:
        cursor.close()
    return count


def _column_types(conn: Connection, table: str, columns: Sequence[str]) -> list[int]:
    """The type OIDs of ``columns`` of ``table`` (a temporary table too), for binary COPY."""
    rows = conn.execute(
        text(
            "SELECT attname, atttypid FROM pg_attribute "
            "WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 AND NOT attisdropped"
        ),
        {"table": table},
    ).all()
    oids = {str(name): int(oid) for name, oid in rows}
    return [oids[column] for column in columns]


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
    names = ", ".join(columns)
    # Empty fields become NULL in SQL, not in a Python loop over every field.
    values = ", ".join(f"NULLIF(?{i}, '')" for i in range(1, len(columns) + 1))
    sql = f"INSERT INTO {table} ({names}) VALUES ({values})"
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    count = 0
    try:
        with path.open(newline="") as handle:
            for batch in _csv_batches(handle):
                cursor.executemany(sql, batch)
                count += len(batch)
    finally:
        cursor.close()
    return count


def _csv_batches(handle: TextIO) -> Iterator[list[list[str]]]:
    """The records after the header, a block of lines at a time.

    A block without a quote character or a bare carriage return is split on line breaks and
    commas: exactly what ``csv.reader`` gives for it, in a third of the time. From the first
    block holding either, ``csv.reader`` reads the rest (a quoted field may hold a comma or
    span lines). Blank lines are dropped.
    """
    handle.readline()  # the header
    split = methodcaller("split", ",")
    pending = ""
    while True:
        chunk = handle.read(_CSV_BLOCK_CHARS)
        block = pending + chunk
        cut = block.rfind("\n") + 1 if chunk else len(block)
        if not block:
            return
        if not cut:  # one line longer than a block: read on
            pending = block
            continue
        block, pending = block[:cut], block[cut:]
        if "\r" in block:
            block = block.replace("\r\n", "\n")
        if '"' in block or "\r" in block:
            reader = csv.reader(chain(io.StringIO(block + pending, newline=""), handle))
            while batch := list(islice(reader, BATCH_ROWS)):
                yield [row for row in batch if row]
            return
        yield list(map(split, filter(None, block.split("\n"))))


def create_temp_table(
    conn: Connection, name: str, columns_sql: str, *, without_rowid: bool = False
) -> None:
    """A temporary table that disappears with the transaction (PostgreSQL) or connection.

    ``without_rowid`` stores a SQLite table in its primary key's B-tree (one look-up per probe
    instead of two); PostgreSQL has no such option and ignores it.
    """
    conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    suffix = ""
    if is_postgres(conn):
        suffix = " ON COMMIT DROP"
    elif without_rowid:
        suffix = " WITHOUT ROWID"
    conn.execute(text(f"CREATE TEMPORARY TABLE {name} ({columns_sql}){suffix}"))


def analyze_temp_table(conn: Connection, name: str) -> None:
    """Give PostgreSQL's planner statistics on a temporary table, which autovacuum never reads.

    Without them it guesses a few hundred rows and may nest loops over a million. SQLite's
    planner works from the indexes alone here.
    """
    if is_postgres(conn):
        conn.execute(text(f"ANALYZE {name}"))


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
