"""The warehouse's connections: engines set up for safe bulk work, ``open_warehouse`` (an
engine's lifecycle and the schema check) and ``write_transaction`` (one transaction under the
load lock).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from evergreen_etl.datadir.modes import create_private_file, private_dir
from evergreen_etl.errors import ConfigurationError
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.dialect import backend_for
from evergreen_etl.warehouse.migrate import require_current_schema

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_PAGE_BYTES = 16_384
SQLITE_TEMP_PAGE_BYTES = 65_536
POSTGRES_TEMP_BUFFERS = "256MB"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and explicit transactions."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            "the database URL is not valid (expected e.g. sqlite:///path/warehouse.db or "
            "postgresql+psycopg://user@host/db)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        uri = str(parsed.query.get("uri", "")).lower() == "true"
        database = None
        if parsed.database and parsed.database != ":memory:" and not uri:
            database = Path(parsed.database)
            private_dir(database.parent, tighten=False)
        engine = create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, hide_parameters=True
        )
        _configure_sqlite(engine, database)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        engine = create_engine(parsed, pool_pre_ping=True, hide_parameters=True)
        _configure_postgres(engine)
        return engine
    except NoSuchModuleError:
        raise ConfigurationError(
            f"no database driver for '{parsed.drivername}' (for PostgreSQL install "
            "evergreen-etl[postgres] and use postgresql+psycopg://)"
        ) from None
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"the database driver is not installed ({exc.name}); for PostgreSQL install "
            "evergreen-etl[postgres]"
        ) from None


def _configure_sqlite(engine: Engine, database: Path | None) -> None:
    if database is not None:
        # Created 0600 just before SQLite opens it (not before: a dry run must be able to tell
        # a new file from an old one); its WAL and SHM files then take the same mode.
        @event.listens_for(engine, "do_connect")
        def _private_file(*_args: Any) -> None:
            create_private_file(database)

    # pysqlite's own transaction handling defers BEGIN and commits around DDL; take control,
    # so that a load is one real transaction and holds the write lock from its start.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # A new warehouse gets 16 KiB pages (SQLite's default is 4 KiB): a merge rewrites most
        # of user_address's pages, and bigger pages take a quarter of the system calls to read,
        # log and checkpoint them. Set before WAL mode, which fixes the size; an existing
        # database keeps the size it was created with.
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_BYTES}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # Temporary tables (a snapshot's million staged rows) spill to a temporary file in
        # pages: 64 KiB ones take a sixteenth of the system calls of the default 4 KiB.
        cursor.execute(f"PRAGMA temp.page_size={SQLITE_TEMP_PAGE_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _configure_postgres(engine: Engine) -> None:
    # A load stages a snapshot in temporary tables (some 150 MB per million users), which live
    # in the session's own buffers: 8 MB by default, and settable only before the session's
    # first temporary table. The buffers are allocated as they are used.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET temp_buffers = '{POSTGRES_TEMP_BUFFERS}'")
        dbapi_connection.commit()


SchemaPolicy = Literal["current", "create", "upgrade", "any"]
"""What ``open_warehouse`` does with a database that is not at the newest migration: refuse
it (``current``); create the schema in an empty database but refuse an older one
(``create``, the first load); migrate it (``upgrade``); or nothing (``any``)."""


@contextmanager
def open_warehouse(
    settings: Settings, engine: Engine | None = None, *, schema: SchemaPolicy = "current"
) -> Iterator[Engine]:
    """The warehouse's engine, its schema checked by ``schema``; disposed of afterwards.

    A given ``engine`` is used (and checked) instead of one made from ``settings``, and is
    left open for its owner.
    """
    own = engine is None
    engine = engine or make_engine(settings.effective_database_url)
    try:
        if schema != "any":
            upgrade = schema == "upgrade" or (schema == "create" and _is_empty(engine))
            require_current_schema(engine, auto_upgrade=upgrade)
        yield engine
    finally:
        if own:
            engine.dispose()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction that holds the load lock; committed when the block ends.

    Anything that writes to the warehouse goes through here, so writers run one at a time: on
    SQLite the transaction begins IMMEDIATE (the database's write lock, waiting up to the busy
    timeout); PostgreSQL takes an advisory lock. An exception rolls everything back.
    """
    backend = backend_for(engine)
    with engine.connect().execution_options(**backend.write_options) as conn, conn.begin():
        backend.acquire_load_lock(conn)
        yield conn


def _is_empty(engine: Engine) -> bool:
    return not inspect(engine).get_table_names()
