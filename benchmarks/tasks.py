"""In-process benchmark tasks, each run by ``run.py`` as a child process of its own.

``python benchmarks/tasks.py TASK ...`` runs one task and prints one JSON object on stdout:
what it did and how long its timed part took. ``run.py`` measures the process around it
(wall time, CPU, peak RSS). The tasks are:

* ``generate``: the sample sources (``evergreen_etl.sample.generate_sample``);
* ``postcodes``: the package's postcode load (``warehouse.lookup.load_postcodes``) into a
  freshly migrated warehouse, in one transaction, as ``load`` does it;
* ``floor-sqlite``: the stdlib floor: ``csv`` + ``sqlite3.executemany`` of the 8 columns a
  loader needs, streamed from the zip into a fresh SQLite table;
* ``floor-postgres``: the PostgreSQL floor: the same rows through psycopg's ``COPY``.

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
        connection = sqlite3.connect(database)
        try:
            connection.execute(_FLOOR_TABLE)
            connection.executemany(
                f"INSERT INTO floor_postcode VALUES ({', '.join('?' * 8)})", rows
            )
            connection.commit()
            count = connection.execute("SELECT COUNT(*) FROM floor_postcode").fetchone()[0]
        finally:
            connection.close()
    return {"seconds": time.perf_counter() - started, "rows": count}


def floor_postgres(zip_path: Path, database_url: str) -> dict[str, Any]:
    """The same rows through psycopg's COPY into a fresh table, one transaction."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    conninfo = psycopg.conninfo.make_conninfo(
        host=url.host or "",
        port=url.port or "",
        user=url.username or "",
        password=url.password or "",
        dbname=url.database or "",
    )
    started = time.perf_counter()
    archive, rows = _floor_rows(zip_path)
    with archive, psycopg.connect(conninfo) as connection:
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
    merge = tasks.add_parser("merge")
    merge.add_argument("data_dir", type=Path)
    merge.add_argument("database_url")
    merge.add_argument("as_of")
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
    elif args.task == "floor-sqlite":
        result = floor_sqlite(args.zip, args.database)
    else:
        result = floor_postgres(args.zip, args.database_url)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
