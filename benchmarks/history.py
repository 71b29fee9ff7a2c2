"""Benchmark of correcting history (README "Correcting history"): the goals of issue 13.

    .venv/bin/python benchmarks/history.py                  # 1M users, 12 monthly snapshots
    .venv/bin/python benchmarks/history.py --users 100000   # a tenth
    .venv/bin/python benchmarks/history.py --out history.json

On SQLite it generates 13 monthly users snapshots with the sample generator, loads months 1-6
and 8-13 in order (12 snapshots), then month 7 late, into the middle. It measures, in this
process (the library's own time, without interpreter start-up):

- each in-order merge, and the last one again from a copy of the warehouse with the ledger
  switched off: recorded time may cost at most 10%;
- the late merge: at most 3x the median in-order merge;
- `report` and `report --as-known-at`, each as a new process: at most 1 s at 1M users;
- the warehouse size after the 12 snapshots against the same file without the ledger, the
  retired rows and the recorded-run column (the history as it was kept before): at most 1.5x.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

MONTHS = [datetime(2024, month, 1) for month in range(1, 13)] + [datetime(2025, 1, 1)]
LATE = 6  # index of the snapshot loaded last: July, between June and August


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--postcodes", type=int, default=270_000)
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    from evergreen_etl.anonymise import anonymise
    from evergreen_etl.load import load
    from evergreen_etl.sample import write_postcode_lookup, write_users_snapshots
    from evergreen_etl.settings import Settings

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="evergreen-history-bench-"))
    sources = work / "sources"
    lookup = write_postcode_lookup(sources / "postcodes.zip", postcodes=args.postcodes, seed=7)
    paths = write_users_snapshots(sources, lookup, users=args.users, snapshots=len(MONTHS), seed=7)
    database = work / "warehouse.db"
    settings = Settings(
        data_dir=work / "data",
        database_url=f"sqlite:///{database}",
        pseudonym_key=secrets.token_hex(32),
        max_reject_rate=1.0,
    )

    def timed_load(index: int, **options: Any) -> float:
        anonymise(settings, users_path=paths[index], progress=False)
        started = time.perf_counter()
        load(
            settings,
            as_of=MONTHS[index],
            postcodes_path=sources / "postcodes.zip",
            progress=False,
            **options,
        )
        return time.perf_counter() - started

    in_order = [i for i in range(len(MONTHS)) if i != LATE]
    merges: list[float] = []
    for index in in_order[:-1]:
        merges.append(timed_load(index))
    # The last in-order merge four times from the same state, with and without the ledger in
    # turn; the fastest of each (a busy machine only ever slows a run down).
    copy = work / "before-last.db"
    shutil.copyfile(database, copy)
    import evergreen_etl.warehouse.replay as replay

    kept = replay.record_ledger
    timings: dict[bool, list[float]] = {True: [], False: []}
    for ledger in (False, True, False, True):
        shutil.copyfile(copy, database)
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        replay.record_ledger = kept if ledger else (lambda conn, run_id: 0)  # type: ignore[assignment]
        timings[ledger].append(timed_load(in_order[-1]))
    replay.record_ledger = kept
    with_ledger, without_ledger = min(timings[True]), min(timings[False])
    merges.append(with_ledger)
    in_order_median = statistics.median(merges[1:])  # the first load also loads the lookup
    late = timed_load(LATE)

    def report_seconds(*extra: str) -> float:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "evergreen_etl",
                "report",
                "--format",
                "csv",
                "--database-url",
                settings.effective_database_url,
                *extra,
            ],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started

    def query_seconds(**options: Any) -> float:
        from evergreen_etl.report import report

        started = time.perf_counter()
        report(settings, **options)
        return time.perf_counter() - started

    # The report's own time in this process (no interpreter start-up), beside the process's.
    query_now = min(query_seconds() for _ in range(3))
    query_known = min(query_seconds(as_known_at=len(in_order)) for _ in range(3))
    report_now = min(report_seconds() for _ in range(3))  # the fastest of three
    report_known = min(report_seconds("--as-known-at", str(len(in_order))) for _ in range(3))
    full, before = _sizes(database, work)
    results = {
        "users": args.users,
        "in_order_merges_s": merges,
        "in_order_median_s": in_order_median,
        "last_merge_with_ledger_s": with_ledger,
        "last_merge_without_ledger_s": without_ledger,
        "late_merge_s": late,
        "report_s": report_now,
        "report_as_known_at_s": report_known,
        "report_in_process_s": query_now,
        "report_as_known_at_in_process_s": query_known,
        "warehouse_bytes": full,
        "warehouse_bytes_without_recorded_time": before,
    }
    goals = [
        ("recorded time costs the in-order merge", with_ledger / without_ledger, 1.10),
        ("late merge / in-order merge", late / in_order_median, 3.0),
        ("report (new process, s)", report_now, 1.0),
        ("report --as-known-at (new process, s)", report_known, 1.0),
        ("warehouse size / size without recorded time", full / before, 1.5),
    ]
    for name, value, limit in goals:
        print(f"{'PASS' if value <= limit else 'FAIL'}  {name}: {value:.2f} (goal <= {limit})")
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"results": results, "goals": goals}, indent=2))
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _sizes(database: Path, work: Path) -> tuple[int, int]:
    """The warehouse's size, and the same history without the ledger, the retired rows and
    the recorded-run column (what it took before recorded time), each vacuumed."""
    full, before = work / "full.db", work / "before.db"
    for path in (full, before):
        path.unlink(missing_ok=True)
    with sqlite3.connect(database) as conn:
        conn.execute(f"VACUUM INTO '{full}'")
        conn.execute(f"VACUUM INTO '{before}'")
    with sqlite3.connect(before) as conn:
        conn.execute("DROP TABLE snapshot_ledger")
        conn.execute("DROP TABLE user_address_retired")
        conn.execute("ALTER TABLE user_address DROP COLUMN recorded_run_id")
    with sqlite3.connect(before) as conn:
        conn.execute("VACUUM")
    return full.stat().st_size, before.stat().st_size


if __name__ == "__main__":
    raise SystemExit(main())
