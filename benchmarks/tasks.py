"""In-process benchmark tasks, each run by ``run.py`` as a child process of its own.

``python benchmarks/tasks.py TASK ...`` runs one task and prints one JSON object on stdout:
what it did and how long its timed part took. ``run.py`` measures the process around it
(wall time, CPU, peak RSS). The tasks are:

* ``generate``: the sample sources (``evergreen_etl.sample.generate_sample``);
* ``postcodes``: the package's postcode load (``warehouse.lookup.load_postcodes``) into a
  freshly migrated warehouse, in one transaction, as ``load`` does it;
* ``floor-sqlite``: the stdlib floor: ``csv`` + ``sqlite3.executemany`` of the 8 columns a
  loader needs, streamed from the zip into a fresh SQLite table;
* ``floor-postgres``: the PostgreSQL floor: the same rows through psycopg's ``COPY``;
* ``floor-staged``: the floor of a first load of users: the staged ``users.csv`` as it is into
  an unindexed table (psycopg ``COPY`` of the file's bytes on PostgreSQL, ``csv`` +
  ``executemany`` on SQLite);
* ``users-load``: the package's first load of the staged users (``stage_snapshot`` and
  ``merge_snapshot`` in one transaction, as ``load`` calls them) into a warehouse whose
  postcode lookup is loaded and whose user tables are empty;
* ``merge``: the library's ``load`` of a staged snapshot, timed in its process;
* ``size``: the bytes a warehouse takes on disk (not timed).

The floors are deliberately plain: what a careful engineer writes in twenty lines with the
standard library and the driver, keyed on the postcode like ``dim_postcode`` is.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sqlite3
import sys
import time
import zipfile
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

# The columns a loader needs, in the real NSPL's names.
FLOOR_COLUMNS = ("pcds", "laua", "ctry", "rgn", "lat", "long", "dointr", "doterm")
_FLOOR_TABLE = (
    "CREATE TABLE floor_postcode (pcds VARCHAR(8) PRIMARY KEY, laua VARCHAR(16), "
    "ctry VARCHAR(16), rgn VARCHAR(16), lat VARCHAR(16), long VARCHAR(16), "
    "dointr VARCHAR(6), doterm VARCHAR(6))"
)


def generate(directory: Path, *, postcodes: int, users: int, seed: int) -> dict[str, Any]:
    """Two snapshots of ``users`` people and a lookup of ``postcodes`` rows."""
    from evergreen_etl.sample import generate_sample

    started = time.perf_counter()
    result = generate_sample(directory, users=users, postcodes=postcodes, snapshots=2, seed=seed)
    return {
        "seconds": time.perf_counter() - started,
        "rows": result.postcodes,
        "postcodes_path": str(result.postcodes_path),
        "users_paths": [str(path) for path in result.users_paths],
        "bytes": {
            path.name: path.stat().st_size for path in [result.postcodes_path, *result.users_paths]
        },
    }


def load_postcodes_only(zip_path: Path, database_url: str) -> dict[str, Any]:
    """Migrate an empty warehouse, then time ``load_postcodes`` in one committed transaction."""
    from sqlalchemy.engine import make_url

    from evergreen_etl.sources.nspl import PostcodeLookupReader
    from evergreen_etl.warehouse.engine import make_engine, write_transaction
    from evergreen_etl.warehouse.lookup import load_postcodes
    from evergreen_etl.warehouse.migrate import upgrade

    database = make_url(database_url).database
    if make_url(database_url).get_backend_name() == "sqlite" and database:
        for suffix in ("", "-wal", "-shm"):  # a repeated run starts from an empty file too
            Path(database + suffix).unlink(missing_ok=True)
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        started = time.perf_counter()
        reader = PostcodeLookupReader(zip_path)
        with write_transaction(engine) as conn:
            rows = load_postcodes(conn, reader, progress=False)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    return {"seconds": seconds, "rows": rows}


def merge_snapshot(data_dir: Path, database_url: str, as_of: str) -> dict[str, Any]:
    """Time ``load`` of the staged snapshot in ``data_dir`` (the SCD2 merge), in this process.

    As for the postcode load, the figure is the work's own time: the interpreter's start-up
    and imports (about half a second) are in the process's wall time beside it.
    """
    from evergreen_etl.load import load
    from evergreen_etl.settings import load_settings

    settings = load_settings(data_dir=data_dir, database_url=database_url)
    started = time.perf_counter()
    result = load(settings, as_of=datetime.fromisoformat(as_of), progress=False)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": result.users_in_snapshot,
        **result.model_dump(include={"users_in_snapshot", "new", "moved", "left", "unchanged"}),
    }


def users_load(data_dir: Path, database_url: str, as_of: str) -> dict[str, Any]:
    """Time the first load of the staged users into a warehouse holding only the lookup."""
    from sqlalchemy import text

    from evergreen_etl.datadir.layout import DataDir
    from evergreen_etl.warehouse.engine import make_engine, write_transaction
    from evergreen_etl.warehouse.scd2 import merge_snapshot, stage_snapshot

    staged_users = DataDir(data_dir).staged_users
    engine = make_engine(database_url)
    try:
        started = time.perf_counter()
        with write_transaction(engine) as conn:
            run_id = conn.execute(
                text(
                    "INSERT INTO etl_run (started_at, as_of, status, key_id) "
                    "VALUES (:t, :t, 'succeeded', 'bench') RETURNING run_id"
                ),
                {"t": datetime.fromisoformat(as_of)},
            ).scalar_one()
            staged = stage_snapshot(conn, staged_users)
            merged = merge_snapshot(
                conn, staged=staged, as_of=datetime.fromisoformat(as_of), run_id=run_id
            )
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    return {"seconds": seconds, "rows": merged.users_in_snapshot, "staged": staged}


def floor_staged(staged_users: Path, database_url: str) -> dict[str, Any]:
    """The staged users file as it is into an unindexed table of text columns."""
    with staged_users.open(newline="") as handle:
        header = next(csv.reader(handle))
    table = f"CREATE TABLE floor_user ({', '.join(f'{name} VARCHAR(64)' for name in header)})"
    if database_url.startswith("sqlite"):
        database = Path(database_url.split(":///", 1)[1])
        database.unlink(missing_ok=True)
        started = time.perf_counter()
        with staged_users.open(newline="") as handle:
            rows = csv.reader(handle)
            next(rows)
            count = _sqlite_insert(database, table, "floor_user", len(header), rows)
        return {"seconds": time.perf_counter() - started, "rows": count}
    started = time.perf_counter()
    with _postgres(database_url) as connection:
        connection.execute("DROP TABLE IF EXISTS floor_user")
        connection.execute(table)
        with (
            connection.cursor() as cursor,
            cursor.copy("COPY floor_user FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            staged_users.open("rb") as handle,
        ):
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        connection.commit()
        found = connection.execute("SELECT COUNT(*) FROM floor_user").fetchone()
    return {"seconds": time.perf_counter() - started, "rows": found[0] if found else 0}


def warehouse_size(database_url: str) -> dict[str, Any]:
    """Bytes on disk: the SQLite file (its log checkpointed first), or the database's size."""
    if database_url.startswith("sqlite"):
        database = Path(database_url.split(":///", 1)[1])
        connection = sqlite3.connect(database)
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()
        return {"seconds": 0.0, "bytes": database.stat().st_size}
    with _postgres(database_url) as connection:
        connection.execute("CHECKPOINT")
        found = connection.execute("SELECT pg_database_size(current_database())").fetchone()
    return {"seconds": 0.0, "bytes": int(found[0]) if found else 0}


def server_settings(database_url: str) -> dict[str, Any]:
    """The PostgreSQL settings the figures depend on, as the server reports them."""
    with _postgres(database_url) as connection:
        settings = {
            name: connection.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in SERVER_SETTINGS
        }
        version = connection.execute("SHOW server_version").fetchone()
    return {"seconds": 0.0, "settings": settings, "version": version[0] if version else None}


# The settings a bulk load's speed depends on (benchmarks/README.md, "Reading the figures").
SERVER_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "max_wal_size",
    "wal_level",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "max_parallel_maintenance_workers",
)


def _postgres(database_url: str) -> Any:
    """A psycopg connection to the database of ``database_url``."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    return psycopg.connect(
        psycopg.conninfo.make_conninfo(
            host=url.host or "",
            port=url.port or "",
            user=url.username or "",
            password=url.password or "",
            dbname=url.database or "",
        )
    )


def _floor_rows(zip_path: Path) -> tuple[zipfile.ZipFile, Any]:
    """The 8 columns of every data row, straight from the zip, by the ``csv`` module."""
    archive = zipfile.ZipFile(zip_path)
    member = next(
        name
        for name in archive.namelist()
        if name.lower().endswith(".csv") and "/" not in name and not name.startswith("._")
    )
    text = io.TextIOWrapper(archive.open(member), encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    header = [name.strip().lower() for name in next(reader)]
    return archive, map(itemgetter(*(header.index(name) for name in FLOOR_COLUMNS)), reader)


def floor_sqlite(zip_path: Path, database: Path) -> dict[str, Any]:
    """stdlib csv + sqlite3.executemany into a fresh table, one transaction."""
    database.unlink(missing_ok=True)
    started = time.perf_counter()
    archive, rows = _floor_rows(zip_path)
    with archive:
        count = _sqlite_insert(database, _FLOOR_TABLE, "floor_postcode", 8, rows)
    return {"seconds": time.perf_counter() - started, "rows": count}


def _sqlite_insert(database: Path, create: str, table: str, width: int, rows: Any) -> int:
    """``create`` the table in a new SQLite file, ``executemany`` the rows in; count them."""
    connection = sqlite3.connect(database)
    try:
        connection.execute(create)
        connection.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * width)})", rows)
        connection.commit()
        return int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        connection.close()


def floor_postgres(zip_path: Path, database_url: str) -> dict[str, Any]:
    """The same rows through psycopg's COPY into a fresh table, one transaction."""
    started = time.perf_counter()
    archive, rows = _floor_rows(zip_path)
    with archive, _postgres(database_url) as connection:
        connection.execute("DROP TABLE IF EXISTS floor_postcode")
        connection.execute(_FLOOR_TABLE)
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY floor_postcode ({', '.join(FLOOR_COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        connection.commit()
        count = connection.execute("SELECT COUNT(*) FROM floor_postcode").fetchone()
    return {"seconds": time.perf_counter() - started, "rows": count[0] if count else 0}


def main(argv: list[str] | None = None) -> None:
    """Run one task; print its JSON result on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tasks = parser.add_subparsers(dest="task", required=True)
    gen = tasks.add_parser("generate")
    gen.add_argument("directory", type=Path)
    gen.add_argument("--postcodes", type=int, required=True)
    gen.add_argument("--users", type=int, required=True)
    gen.add_argument("--seed", type=int, default=42)
    for name in ("postcodes", "floor-postgres"):
        task = tasks.add_parser(name)
        task.add_argument("zip", type=Path)
        task.add_argument("database_url")
    for name in ("merge", "users-load"):
        merge = tasks.add_parser(name)
        merge.add_argument("data_dir", type=Path)
        merge.add_argument("database_url")
        merge.add_argument("as_of")
    staged_floor = tasks.add_parser("floor-staged")
    staged_floor.add_argument("staged_users", type=Path)
    staged_floor.add_argument("database_url")
    for name in ("size", "settings"):
        tasks.add_parser(name).add_argument("database_url")
    sqlite_floor = tasks.add_parser("floor-sqlite")
    sqlite_floor.add_argument("zip", type=Path)
    sqlite_floor.add_argument("database", type=Path)
    args = parser.parse_args(argv)

    if args.task == "generate":
        result = generate(
            args.directory, postcodes=args.postcodes, users=args.users, seed=args.seed
        )
    elif args.task == "postcodes":
        result = load_postcodes_only(args.zip, args.database_url)
    elif args.task == "merge":
        result = merge_snapshot(args.data_dir, args.database_url, args.as_of)
    elif args.task == "users-load":
        result = users_load(args.data_dir, args.database_url, args.as_of)
    elif args.task == "floor-staged":
        result = floor_staged(args.staged_users, args.database_url)
    elif args.task == "size":
        result = warehouse_size(args.database_url)
    elif args.task == "settings":
        result = server_settings(args.database_url)
    elif args.task == "floor-sqlite":
        result = floor_sqlite(args.zip, args.database)
    else:
        result = floor_postgres(args.zip, args.database_url)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
