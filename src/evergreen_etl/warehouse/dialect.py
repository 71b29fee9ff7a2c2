"""The one place where the backends differ: every SQLite/PostgreSQL difference is a member
of the ``Backend`` that ``backend_for`` returns for a connection (or engine).

SQLite gets batched DBAPI ``executemany`` inside the transaction; PostgreSQL gets ``COPY``.
The module-level functions (``bulk_work``, ``bulk_insert``, ``copy_csv``, ...) are shorthands
for the backend's method of the same job.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from evergreen_etl.errors import ConcurrentLoadError, ConfigurationError
from evergreen_etl.gc_pause import collector_paused
from evergreen_etl.warehouse.dbapi import (
    BATCH_ROWS,
    Batches,
    OnBatch,
    _column_types,
    _create_temp_table,
    _csv_batches,
    _driver,
    _dropped,
    _executemany,
    _is_empty,
)

# SQLite's page cache during a bulk load or merge (the default is 2 MiB). Big enough to keep
# the B-tree pages an ordered insert or join is working on; small next to the 200 MB budget.
SQLITE_BULK_CACHE_KIB = 16 * 1024
# Per sort or hash of a load's transaction: the merge sorts a snapshot's million staged rows
# (about 130 MB) to keep each user's last record; in memory that takes a second, spilled to
# temporary files five. Index builds after a first load sort as much.
POSTGRES_BULK_WORK_MEM = "256MB"
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises loads.
_ADVISORY_LOCK_KEY = 0x45564552475245  # "EVERGRE"
LOCK_WAIT_SECONDS = 30


class Backend(Protocol):
    """What the warehouse does differently on each backend (``backend_for`` gives the one)."""

    @property
    def name(self) -> str:
        """SQLAlchemy's name of the dialect: ``sqlite`` or ``postgresql``."""
        ...

    @property
    def write_options(self) -> Mapping[str, Any]:
        """Execution options of a connection whose transaction writes (see write_transaction)."""
        ...

    @property
    def batch_migrations(self) -> bool:
        """Whether Alembic must rebuild a table to alter it (``render_as_batch``)."""
        ...

    @property
    def id_type(self) -> str:
        """The SQL type of a surrogate key (user_id, address_id) in a temporary table."""
        ...

    @property
    def compares_lookups(self) -> bool:
        """Whether a new lookup version locates again only the periods of the postcodes it
        changed, from a comparison with the previous lookup (see ``relocate.py``), rather
        than every period of the history."""
        ...

    @property
    def reuses_keys(self) -> bool:
        """Whether a new row may get the key of a deleted one (SQLite's rowid is the largest
        in the table plus one; PostgreSQL's sequences never go back)."""
        ...

    @property
    def numbered_key(self) -> str:
        """The column definition of a temporary table's key numbered by ``next_number``."""
        ...

    def acquire_load_lock(self, conn: Connection) -> None:
        """Serialise loads: wait up to LOCK_WAIT_SECONDS for another load, then fail clearly."""
        ...

    def main_table(self, conn: Connection, table: str) -> str:
        """``table`` named past any temporary view of the same name."""
        ...

    def scanned_table(self, conn: Connection, table: str) -> str:
        """``main_table``, to be read whole (a view of the warehouse as it was reads most of
        its rows)."""
        ...

    def bulk_work(self, conn: Connection) -> AbstractContextManager[None]:
        """Tune the connection for a bulk load or merge inside the current transaction."""
        ...

    def insert_batches(
        self,
        conn: Connection,
        table: str,
        columns: Sequence[str],
        batches: Batches,
        *,
        on_batch: OnBatch = None,
        binary: bool = False,
        freeze: bool = False,
    ) -> int:
        """Insert each batch of rows into ``table`` with the driver's bulk path; count them.

        ``freeze`` is for a table emptied (``empty_table``) or created in this transaction.
        """
        ...

    def copy_csv(self, conn: Connection, table: str, columns: Sequence[str], path: Path) -> int:
        """Load a CSV file with a header row into ``table``: empty fields become NULL."""
        ...

    def create_temp_table(
        self, conn: Connection, name: str, columns_sql: str, *, without_rowid: bool = False
    ) -> None:
        """A temporary table that disappears with the transaction (PostgreSQL) or connection."""
        ...

    def analyze(self, conn: Connection, table: str) -> None:
        """Fresh planner statistics on ``table`` where the planner needs them."""
        ...

    def deferred_indexes(self, conn: Connection, table: str) -> AbstractContextManager[None]:
        """Fill an empty ``table`` in the block and build its secondary indexes afterwards.

        A bulk insert into a table with indexes updates every index row by row, at random
        places; building an index after the insert sorts its keys once. The indexes (and on
        PostgreSQL the unique and foreign-key constraints, whose checks run a trigger per row)
        are dropped for the block and made again from the catalogue's own definitions, inside
        the transaction: a failure rolls the drops back too, and a rule the rows break fails
        the rebuild. A table that already holds rows keeps its indexes.
        """
        ...

    def empty_table(self, conn: Connection, table: str) -> None:
        """Delete every row of ``table`` (inside the transaction)."""
        ...

    def latest_per_key(self, table: str, key: str, order: str, columns: Sequence[str]) -> str:
        """A query for the row of ``table`` with the highest ``order`` for each ``key``.

        It gives ``key``, ``order`` and ``columns``, one row per key, read in ``key`` order.
        """
        ...

    def start_numbering(self, conn: Connection, temp_table: str, table: str, column: str) -> None:
        """Make ``temp_table``'s numbered key continue after the largest ``table.column``."""
        ...

    def next_number(self, table: str, column: str) -> str:
        """The SQL expression of the next new ``table.column`` (with ``numbered_key``)."""
        ...

    def database_files(self, engine: Engine) -> tuple[Path, ...]:
        """The local files that hold the database (the main one first); none for a server."""
        ...


def backend_for(bind: Connection | Engine) -> Backend:
    """The backend of ``bind``'s database."""
    try:
        return _BACKENDS[bind.dialect.name]
    except KeyError:
        raise ConfigurationError(
            f"the warehouse must be SQLite or PostgreSQL, not {bind.dialect.name}"
        ) from None


class SQLiteBackend:
    """SQLite: BEGIN IMMEDIATE holds the write lock, ``executemany`` loads, pragmas tune."""

    name = "sqlite"
    # The transaction takes the database's write lock at its start (waiting up to the busy
    # timeout): the load lock, and no deadlock between two writers that both began reading.
    write_options: Mapping[str, Any] = {"sqlite_begin": "IMMEDIATE"}
    batch_migrations = True
    reuses_keys = True
    # Locating every period probes the lookup once a period, in address order, all over a
    # file bigger than the page cache (1M users, 12 snapshots: 15 s); comparing the two
    # lookups reads both in postcode order (re-location 5 s).
    compares_lookups = True
    # INTEGER, not BIGINT: only an INTEGER PRIMARY KEY is the rowid.
    id_type = "INTEGER"
    # AUTOINCREMENT numbers from the table's entry in temp.sqlite_sequence (start_numbering).
    numbered_key = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def acquire_load_lock(self, conn: Connection) -> None:
        """Nothing to take: the transaction was begun with BEGIN IMMEDIATE (write_options)."""

    def main_table(self, conn: Connection, table: str) -> str:
        """In the main database (temporary objects live in ``temp``)."""
        return f"main.{table}"

    def scanned_table(self, conn: Connection, table: str) -> str:
        """Read in rowid order: a scan is several times quicker than an index search
        followed by a look-up per row."""
        return f"{self.main_table(conn, table)} NOT INDEXED"

    def database_files(self, engine: Engine) -> tuple[Path, ...]:
        """The database file with its write-ahead log and shared-memory index."""
        database, uri = engine.url.database, engine.url.query.get("uri")
        if not database or database == ":memory:" or str(uri).lower() == "true":
            return ()
        return tuple(Path(f"{database}{suffix}") for suffix in ("", "-wal", "-shm"))

    @contextmanager
    def bulk_work(self, conn: Connection) -> Iterator[None]:
        """The page caches of the database and of its temporary tables each grow to
        ``SQLITE_BULK_CACHE_KIB`` and sorts may use a helper thread for the length of the block;
        all are put back afterwards (the connection may go back to a pool). Python's cyclic
        garbage collector pauses (see ``evergreen_etl.gc_pause``): the rows streamed through
        hold no cycles.
        """
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

    def insert_batches(
        self,
        conn: Connection,
        table: str,
        columns: Sequence[str],
        batches: Batches,
        *,
        on_batch: OnBatch = None,
        binary: bool = False,
        freeze: bool = False,
    ) -> int:
        """``executemany`` of each batch (``binary`` and ``freeze`` are PostgreSQL's)."""
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        return _executemany(conn, sql, batches, on_batch)

    def copy_csv(self, conn: Connection, table: str, columns: Sequence[str], path: Path) -> int:
        """Batched ``executemany`` of the file's records (see ``_csv_batches``)."""
        names = ", ".join(columns)
        # Empty fields become NULL in SQL, not in a Python loop over every field.
        values = ", ".join(f"NULLIF(?{i}, '')" for i in range(1, len(columns) + 1))
        sql = f"INSERT INTO {table} ({names}) VALUES ({values})"
        with path.open(newline="") as handle:
            return _executemany(conn, sql, _csv_batches(handle), None)

    def create_temp_table(
        self, conn: Connection, name: str, columns_sql: str, *, without_rowid: bool = False
    ) -> None:
        """``without_rowid`` stores the table in its primary key's B-tree (one look-up per
        probe instead of two).
        """
        suffix = " WITHOUT ROWID" if without_rowid else ""
        _create_temp_table(conn, name, columns_sql, suffix)

    def analyze(self, conn: Connection, table: str) -> None:
        """Nothing: SQLite's planner works from the indexes alone here."""

    @contextmanager
    def deferred_indexes(self, conn: Connection, table: str) -> Iterator[None]:
        """Nothing: the merge inserts in ``user_id`` order, the order of most of the indexes,
        so SQLite's B-trees grow at their right-hand edge; dropping and building them again
        measured slower (a first load of a million users: 4.4 s with them, 6 s without and
        rebuilt)."""
        yield

    def empty_table(self, conn: Connection, table: str) -> None:
        """``DELETE FROM`` (SQLite has no ``TRUNCATE``)."""
        conn.execute(text(f"DELETE FROM {table}"))

    def latest_per_key(self, table: str, key: str, order: str, columns: Sequence[str]) -> str:
        """``GROUP BY``: with a single ``MAX()``, SQLite takes the other columns from the row
        holding the max.
        """
        return (
            f"SELECT {key}, MAX({order}) AS {order}, {', '.join(columns)} "
            f"FROM {table} GROUP BY {key}"
        )

    def start_numbering(self, conn: Connection, temp_table: str, table: str, column: str) -> None:
        """Set ``temp_table``'s AUTOINCREMENT sequence to the largest ``table.column``."""
        conn.execute(
            text("DELETE FROM temp.sqlite_sequence WHERE name = :name"), {"name": temp_table}
        )
        conn.execute(
            text(
                "INSERT INTO temp.sqlite_sequence (name, seq) "
                f"SELECT :name, COALESCE(MAX({column}), 0) FROM {table}"
            ),
            {"name": temp_table},
        )

    def next_number(self, table: str, column: str) -> str:
        """NULL: the temporary table's AUTOINCREMENT key numbers the row."""
        return "NULL"


class PostgresBackend:
    """PostgreSQL: an advisory lock, ``COPY`` loads, ``work_mem`` and ``ANALYZE`` tune."""

    name = "postgresql"
    write_options: Mapping[str, Any] = {}
    batch_migrations = False
    reuses_keys = False
    # One hash join of every period with the lookup (1M users, 12 snapshots: 2.6 s) is
    # quicker than keeping the previous lookup and comparing the two (4 s before locating).
    compares_lookups = False
    id_type = "BIGINT"
    numbered_key = "BIGINT PRIMARY KEY"

    def database_files(self, engine: Engine) -> tuple[Path, ...]:
        """None: the database lives on the server."""
        return ()

    def acquire_load_lock(self, conn: Connection) -> None:
        """A transaction-scoped advisory lock, waited for up to LOCK_WAIT_SECONDS."""
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
        try:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        except OperationalError as exc:
            raise ConcurrentLoadError(
                f"another load is running on this warehouse (waited {LOCK_WAIT_SECONDS}s)"
            ) from exc
        conn.execute(text("SET LOCAL lock_timeout = 0"))

    def main_table(self, conn: Connection, table: str) -> str:
        """In the first schema of the search path that exists (``pg_temp`` is searched
        first)."""
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        return f"{schema}.{table}"

    def scanned_table(self, conn: Connection, table: str) -> str:
        """The planner chooses how to read it."""
        return self.main_table(conn, table)

    @contextmanager
    def bulk_work(self, conn: Connection) -> Iterator[None]:
        """A ``work_mem`` of ``POSTGRES_BULK_WORK_MEM`` for the rest of the transaction, and
        Python's cyclic garbage collector paused for the block.
        """
        # Sorts and hashes of a million staged rows in memory rather than in temporary files,
        # for this transaction only (the server's default is 4 MB), index builds too; no JIT
        # compilation, which costs a second per statement run once over staged rows.
        conn.execute(text(f"SET LOCAL work_mem = '{POSTGRES_BULK_WORK_MEM}'"))
        conn.execute(text(f"SET LOCAL maintenance_work_mem = '{POSTGRES_BULK_WORK_MEM}'"))
        conn.execute(text("SET LOCAL jit = off"))
        with collector_paused():
            yield

    def insert_batches(
        self,
        conn: Connection,
        table: str,
        columns: Sequence[str],
        batches: Batches,
        *,
        on_batch: OnBatch = None,
        binary: bool = False,
        freeze: bool = False,
    ) -> int:
        """``COPY``; ``binary`` makes it binary: floats and NULLs go over as they are, not as
        text for the server to parse again. Every value must then be of its column's Python
        type (a float for a float column, not its text). ``freeze`` writes the rows frozen
        (``COPY ... FREEZE``, for a table truncated or created in this transaction): the first
        scan after the load then has no hint bit to set on every page, nor every page to
        write again.
        """
        names = ", ".join(columns)
        driver = _driver(conn)
        count = 0
        flags = [*(["FORMAT BINARY"] if binary else []), *(["FREEZE"] if freeze else [])]
        options = f" ({', '.join(flags)})" if flags else ""
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

    def copy_csv(self, conn: Connection, table: str, columns: Sequence[str], path: Path) -> int:
        """``COPY ... (FORMAT csv, HEADER true)`` of the file's bytes."""
        names = ", ".join(columns)
        with (
            _driver(conn).cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv, HEADER true)") as cp,
            path.open("rb") as handle,
        ):
            while chunk := handle.read(1 << 20):
                cp.write(chunk)
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())

    def create_temp_table(
        self, conn: Connection, name: str, columns_sql: str, *, without_rowid: bool = False
    ) -> None:
        """Dropped at commit; ``without_rowid`` is SQLite's and ignored here."""
        _create_temp_table(conn, name, columns_sql, " ON COMMIT DROP")

    def analyze(self, conn: Connection, table: str) -> None:
        """``ANALYZE``: autovacuum never reads a temporary table, nor a table just refilled in
        this transaction; without statistics the planner guesses a few hundred rows and may
        nest loops over a million.
        """
        conn.execute(text(f"ANALYZE {table}"))

    @contextmanager
    def deferred_indexes(self, conn: Connection, table: str) -> Iterator[None]:
        """The indexes other than the primary key, and the unique and foreign-key constraints
        (``ALTER TABLE ... ADD CONSTRAINT`` then checks a foreign key with one join). Only
        the table's owner may drop them: another role fills the table with its indexes."""
        owner = conn.execute(
            text(
                "SELECT pg_has_role(relowner, 'USAGE') FROM pg_class "
                "WHERE oid = CAST(:table AS regclass)"
            ),
            {"table": table},
        ).scalar()
        if not owner or not _is_empty(conn, table):
            yield
            return
        drops: list[tuple[str, str]] = []
        constraints = conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = CAST(:table AS regclass) AND contype IN ('u', 'f') "
                "ORDER BY contype DESC, conname"  # unique ones first, to be made again first
            ),
            {"table": table},
        ).all()
        for name, definition in constraints:
            drops.append(
                (
                    f"ALTER TABLE {table} DROP CONSTRAINT {name}",
                    f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}",
                )
            )
        # Plain indexes: not the primary key, nor one that backs a constraint.
        indexes = conn.execute(
            text(
                "SELECT c.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
                "JOIN pg_class c ON c.oid = x.indexrelid "
                "WHERE x.indrelid = CAST(:table AS regclass) AND NOT x.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid "
                "AND k.conrelid = x.indrelid) ORDER BY c.relname"
            ),
            {"table": table},
        ).all()
        drops += [(f"DROP INDEX {name}", str(definition)) for name, definition in indexes]
        with _dropped(conn, drops):
            yield
        # Statistics for the statements and the merges that follow: autovacuum has none yet.
        self.analyze(conn, table)

    def empty_table(self, conn: Connection, table: str) -> None:
        """``TRUNCATE``: no row-by-row delete."""
        conn.execute(text(f"TRUNCATE {table}"))

    def latest_per_key(self, table: str, key: str, order: str, columns: Sequence[str]) -> str:
        """``DISTINCT ON`` the key, highest ``order`` first. The sort compares the keys' bytes
        (``COLLATE "C"``): the database's collation (``strcoll``) makes sorting a million
        staged pseudonyms several times slower, and any one order finds the duplicates.
        """
        by_bytes = f'{key} COLLATE "C"'
        return (
            f"SELECT DISTINCT ON ({by_bytes}) {key}, {order}, {', '.join(columns)} "
            f"FROM {table} ORDER BY {by_bytes}, {order} DESC"
        )

    def start_numbering(self, conn: Connection, temp_table: str, table: str, column: str) -> None:
        """Nothing: ``next_number`` takes the table's own sequence."""

    def next_number(self, table: str, column: str) -> str:
        """The next value of ``table.column``'s own sequence (named once per statement: the
        sub-select is evaluated once, not the catalogue look-up once per row)."""
        sequence = f"(SELECT CAST(pg_get_serial_sequence('{table}', '{column}') AS regclass))"
        return f"nextval({sequence})"


_BACKENDS: dict[str, Backend] = {"sqlite": SQLiteBackend(), "postgresql": PostgresBackend()}


# Shorthands: the backend's method for the job, on ``conn``'s backend.


def bulk_work(conn: Connection) -> AbstractContextManager[None]:
    """Tune the connection for a bulk load or merge inside the current transaction."""
    return backend_for(conn).bulk_work(conn)


def bulk_insert(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    on_batch: OnBatch = None,
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
    batches: Batches,
    *,
    on_batch: OnBatch = None,
    binary: bool = False,
    freeze: bool = False,
) -> int:
    """Insert each batch of rows into ``table`` (``COPY`` or ``executemany``); count them.

    ``binary`` makes PostgreSQL's ``COPY`` binary, ``freeze`` writes frozen rows into a table
    emptied in this transaction (see ``PostgresBackend.insert_batches``).
    """
    return backend_for(conn).insert_batches(
        conn, table, columns, batches, on_batch=on_batch, binary=binary, freeze=freeze
    )


def copy_csv(conn: Connection, table: str, columns: Sequence[str], path: Path) -> int:
    """Load a CSV file with a header row into ``table``: empty fields become NULL."""
    return backend_for(conn).copy_csv(conn, table, columns, path)


def create_temp_table(
    conn: Connection, name: str, columns_sql: str, *, without_rowid: bool = False
) -> None:
    """A temporary table that disappears with the transaction (PostgreSQL) or connection."""
    backend_for(conn).create_temp_table(conn, name, columns_sql, without_rowid=without_rowid)


def analyze_temp_table(conn: Connection, name: str) -> None:
    """Give PostgreSQL's planner statistics on a temporary table, which autovacuum never reads."""
    backend_for(conn).analyze(conn, name)


def deferred_indexes(conn: Connection, table: str) -> AbstractContextManager[None]:
    """Fill an empty ``table`` in the block; its secondary indexes are built afterwards."""
    return backend_for(conn).deferred_indexes(conn, table)


def acquire_load_lock(conn: Connection) -> None:
    """Serialise loads: wait up to LOCK_WAIT_SECONDS for another load, then fail clearly."""
    backend_for(conn).acquire_load_lock(conn)
