"""Benchmark: a new postcode lookup version into a warehouse with history, re-location included.

    .venv/bin/python benchmarks/relocation.py                          # 100k users, 270k rows
    .venv/bin/python benchmarks/relocation.py --users 1000000 --postcodes 2700000 --snapshots 12
    .venv/bin/python benchmarks/relocation.py --database-url postgresql://.../bench

It generates sample sources (``--snapshots`` monthly users snapshots and a lookup), loads every
snapshot with the lookup as version 1, then writes version 2: the same zip with every 50th
postcode given another authority and every 200th removed (a new build the first lookup lacked
is the same case seen from the other side). It then times, each in one transaction:

* ``empty``: loading version 2 into a freshly migrated, empty warehouse (the postcode load);
* ``history``: loading version 2 into the warehouse with history, re-location of every address
  period included (``remember_locations``, the postcode load, then ``add_lookup_version``);
* ``following``: then version 3 (version 2 changed the same way again), whose re-location
  starts from version 2's rows: the steady state of a warehouse that loads every release.

The goal (issue 14) is ``history`` and ``following`` <= 2 x ``empty``; then ``report`` runs as
a new process on each boundary basis (lookup, recorded, current: <= 1 s each). One JSON object
is printed on stdout.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import secrets
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any


def _second_version(source: Path, target: Path) -> int:
    """Write ``source`` again as version 2: some authorities changed, some postcodes gone."""
    with zipfile.ZipFile(source) as archive:
        member = next(n for n in archive.namelist() if n.lower().endswith(".csv") and "/" not in n)
        text = archive.read(member).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    laua = [h.strip().lower() for h in header].index("laua")
    codes = sorted({row[laua] for row in body if row[laua]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    written = 0
    for number, row in enumerate(body):
        if number % 200 == 199:
            continue
        if number % 50 == 0 and row[laua] in codes:
            row[laua] = codes[(codes.index(row[laua]) + 1) % len(codes)]
        writer.writerow(row)
        written += 1
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, out.getvalue())
    return written


def _timed_lookup_load(database_url: str, lookup: Path, *, relocate: bool) -> dict[str, Any]:
    from sqlalchemy import text

    from evergreen_etl.datadir.files import file_sha256
    from evergreen_etl.sources.nspl import PostcodeLookupReader
    from evergreen_etl.warehouse.engine import make_engine, write_transaction
    from evergreen_etl.warehouse.lookup import load_postcodes
    from evergreen_etl.warehouse.relocate import add_lookup_version, remember_locations

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            periods = conn.execute(text("SELECT COUNT(*) FROM user_address")).scalar_one()
        started = time.perf_counter()
        reader = PostcodeLookupReader(lookup)
        result: dict[str, Any] = {"address_periods": periods}
        with write_transaction(engine) as conn:
            previous = remember_locations(conn) if relocate else None
            result["rows"] = load_postcodes(conn, reader, progress=False)
            result["postcodes_seconds"] = time.perf_counter() - started
            if relocate:
                version, relocation = add_lookup_version(
                    conn,
                    reader,
                    sha256=file_sha256(lookup),
                    postcodes=result["rows"],
                    run_id=1,
                    previous=previous,
                )
                result["relocation"] = relocation.model_dump()
                result["version"] = version.version_id
        result["seconds"] = time.perf_counter() - started
        return result
    finally:
        engine.dispose()


def _report_seconds(database_url: str, basis: str, runs: int = 3) -> float:
    """``report --boundaries basis`` as a new process: the fastest of ``runs``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [
                *(sys.executable, "-m", "evergreen_etl", "report", "--format", "csv"),
                *("--boundaries", basis, "--database-url", database_url),
            ],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    """Build the history, then time version 2 into an empty warehouse and into the history."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--postcodes", type=int, default=270_000)
    parser.add_argument("--snapshots", type=int, default=12)
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="postgres: both warehouses on a throwaway PostgreSQL server (as make bench)",
    )
    parser.add_argument("--database-url", help="history warehouse (default: SQLite in a tmp dir)")
    parser.add_argument("--empty-url", help="empty warehouse (default: SQLite in a tmp dir)")
    args = parser.parse_args(argv)
    if args.backend == "postgres" and not args.database_url:
        from run import postgres_server

        with postgres_server(None) as server:
            args.database_url = str(server.create_database("relocation_history"))
            args.empty_url = str(server.create_database("relocation_empty"))
            _measure(args)
        return
    _measure(args)


def _measure(args: argparse.Namespace) -> None:
    """Build the history and time the lookup versions as ``main`` describes."""

    from evergreen_etl.anonymise import anonymise
    from evergreen_etl.load import load
    from evergreen_etl.sample import generate_sample
    from evergreen_etl.settings import Settings
    from evergreen_etl.warehouse.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="relocation-bench-") as tmp:
        work = Path(tmp)
        history_url = args.database_url or f"sqlite:///{work / 'history.db'}"
        empty_url = args.empty_url or f"sqlite:///{work / 'empty.db'}"
        started = time.perf_counter()
        sample = generate_sample(
            work / "sources", users=args.users, postcodes=args.postcodes, snapshots=args.snapshots
        )
        version_2 = work / "postcodes-v2.zip"
        v2_rows = _second_version(sample.postcodes_path, version_2)
        settings = Settings(
            data_dir=work / "data",
            database_url=history_url,
            pseudonym_key=secrets.token_hex(32),
            max_reject_rate=1.0,
        )
        upgrade(history_url)
        for month, users in enumerate(sample.users_paths):
            anonymise(settings, users_path=users, progress=False)
            load(
                settings,
                as_of=datetime(2024, 1, 1) + timedelta(days=30 * month),
                postcodes_path=sample.postcodes_path,
                progress=False,
            )
        built = time.perf_counter() - started
        upgrade(empty_url)
        # The faster of two: the first pays for warming the file cache with the zip.
        empty = min(
            (_timed_lookup_load(empty_url, version_2, relocate=False) for _ in range(2)),
            key=lambda run: float(run["seconds"]),
        )
        history = _timed_lookup_load(history_url, version_2, relocate=True)
        # Version 3 (version 2 changed the same way again) starts from version 2's rows.
        version_3 = work / "postcodes-v3.zip"
        _second_version(version_2, version_3)
        following = _timed_lookup_load(history_url, version_3, relocate=True)
        # Issue 14: the report keeps its goal (<= 1 s as a new process) on every basis.
        reports = {
            basis: _report_seconds(history_url, basis)
            for basis in ("lookup", "recorded", "current")
        }
    result = {
        "backend": "postgres" if history_url.startswith("postgresql") else "sqlite",
        "users": args.users,
        "postcodes": v2_rows,
        "snapshots": args.snapshots,
        "history_built_seconds": round(built, 1),
        "empty": empty,
        "history": history,
        "ratio": history["seconds"] / empty["seconds"],
        "following": following,
        "following_ratio": following["seconds"] / empty["seconds"],
        "goal": "history <= 2 x empty, for version 2 and for version 3",
        "passed": max(history["seconds"], following["seconds"]) <= 2 * empty["seconds"],
        "report_seconds": reports,
        "report_goal": "report <= 1 s as a new process on every basis",
        "report_passed": max(reports.values()) <= 1.0,
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
