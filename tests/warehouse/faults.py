"""Helpers for warehouse fault tests: scenario snapshots, all rows, load subprocesses."""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner, Result

from evergreen_etl.cli import app
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.schema import metadata
from support.sources import SCENARIO_POSTCODES, nspl_row, user

# Three scenario snapshots: joins, a move, a move back, a leaver, a returner, a duplicate.
SNAPSHOTS: tuple[list[dict[str, Any]], ...] = (
    [
        user("alice@example.com", "AB1 1AA"),
        user("bob@example.com", "AB2 1AA"),
        user("carol@example.com", "CV4 9RE"),
        user("dave@example.com", "NOT A POSTCODE"),
        user("erin@example.com", "AB1 1AB"),
        user("erin@example.com", "AB3 1AB"),
    ],
    [
        user("alice@example.com", "AB2 1AB"),
        user("bob@example.com", "AB2 1AA"),
        user("dave@example.com", "AB1"),
        user("erin@example.com", "AB3 1AB"),
        user("frank@example.com", "CV4 9RE"),
        user("grace@example.com", "GY1 1AA"),
    ],
    [
        user("alice@example.com", "AB1 1AA"),
        user("bob@example.com", "AB2 1AA"),
        user("carol@example.com", "CV4 9RE"),
        user("dave@example.com", "AB1 1AB"),
        user("grace@example.com"),
    ],
)
DATES = ("2024-01-01", "2024-02-01", "2024-03-01")
# A lookup with one postcode more: a load with it also replaces the postcode dimension.
CHANGED_LOOKUP = [nspl_row(*spec) for spec in (*SCENARIO_POSTCODES, ("AB5 1AA", "E06000006", ""))]
PROCESS_TIMEOUT = 60.0

WarehouseRows = dict[str, list[tuple[Any, ...]]]


def warehouse_rows(engine: Engine) -> WarehouseRows:
    """Every row of every warehouse table (and the migration stamp), in primary-key order."""
    rows: WarehouseRows = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            query = select(table).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in conn.execute(query)]
        rows["alembic_version"] = [
            tuple(row) for row in conn.execute(text("SELECT version_num FROM alembic_version"))
        ]
    return rows


def invoke_load(settings: Settings, *options: str, database_url: str | None = None) -> Result:
    """`evergreen-etl load --quiet` of the snapshot staged under ``settings``, in-process."""
    return CliRunner().invoke(
        app,
        [
            "load",
            "--data-dir",
            str(settings.data_dir),
            "--database-url",
            database_url or settings.effective_database_url,
            "--quiet",
            *options,
        ],
    )


def history_problems(engine: Engine) -> list[str]:
    """Broken SCD2 rules in ``user_address``: several current rows, overlaps, empty intervals."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT user_id, valid_from, valid_to, is_current FROM user_address"
                " ORDER BY user_id, valid_from, address_id"
            )
        ).all()
    problems: list[str] = []
    by_user: dict[int, list[Any]] = {}
    for row in rows:
        by_user.setdefault(row.user_id, []).append(row)
    for user_id, periods in by_user.items():
        if sum(bool(p.is_current) for p in periods) > 1:
            problems.append(f"user {user_id} has several current rows")
        for period in periods:
            if bool(period.is_current) != (period.valid_to is None):
                problems.append(f"user {user_id}: is_current disagrees with valid_to")
            if period.valid_to is not None and period.valid_to <= period.valid_from:
                problems.append(f"user {user_id}: empty or negative interval")
        for earlier, later in itertools.pairwise(periods):
            if earlier.valid_to is None or earlier.valid_to > later.valid_from:
                problems.append(f"user {user_id}: intervals overlap")
    return problems


@dataclass
class LoadProcess:
    """A ``load`` command running in a subprocess, perhaps held at a failpoint."""

    process: subprocess.Popen[bytes]
    ready_file: Path
    stdout_path: Path
    stderr_path: Path
    returncode: int | None = field(default=None)

    def wait_until_held(self, timeout: float = PROCESS_TIMEOUT) -> None:
        """Block until the process has reached its failpoint (fail if it ends first)."""
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                pytest.fail(f"the load ended (exit {self.process.returncode}) before its failpoint")
            if time.monotonic() > deadline:
                pytest.fail("the load did not reach its failpoint in time")
            time.sleep(0.02)

    def release(self) -> None:
        """Let a held process carry on from its failpoint."""
        self.ready_file.unlink()

    def kill(self) -> None:
        """SIGKILL the process (no cleanup code of its own runs) and reap it."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=PROCESS_TIMEOUT)

    def finish(self, timeout: float = PROCESS_TIMEOUT) -> int:
        """Wait for the process to end; its exit status."""
        self.returncode = self.process.wait(timeout=timeout)
        return self.returncode

    @property
    def stdout(self) -> str:
        """What the process wrote on stdout."""
        return self.stdout_path.read_text(encoding="utf-8")

    @property
    def stderr(self) -> str:
        """What the process wrote on stderr."""
        return self.stderr_path.read_text(encoding="utf-8")

    def result(self) -> dict[str, Any]:
        """The LoadResult JSON the command printed."""
        loaded: dict[str, Any] = json.loads(self.stdout)
        return loaded


def run_problems(engine: Engine) -> list[str]:
    """Audit rows that disagree with the history: unfinished runs, counts that do not add up."""
    with engine.connect() as conn:
        runs = conn.execute(
            text(
                "SELECT run_id, status, finished_at, new_users, users_in_snapshot"
                " FROM etl_run ORDER BY as_of, run_id"
            )
        ).all()
        users = conn.execute(text("SELECT COUNT(*) FROM dim_user")).scalar_one()
        current = conn.execute(
            text("SELECT COUNT(*) FROM user_address WHERE is_current")
        ).scalar_one()
    problems = [f"run {r.run_id} is {r.status}" for r in runs if r.status != "succeeded"]
    problems += [f"run {r.run_id} never finished" for r in runs if r.finished_at is None]
    if sum(r.new_users for r in runs) != users:
        problems.append("the runs' new users do not add up to dim_user")
    if runs and runs[-1].users_in_snapshot != current:
        problems.append("the last run's users are not the current rows")
    return problems


def wait_until_waiting_for_lock(engine: Engine, load: LoadProcess, timeout: float = 30) -> None:
    """Block until ``load`` is queued behind the load lock (PostgreSQL: a waiting advisory lock).

    SQLite shows no waiter from outside: wait until the process has the database file open
    (it then goes straight to BEGIN IMMEDIATE), plus a moment.
    """
    deadline = time.monotonic() + timeout
    database = engine.url.database or ""
    while time.monotonic() < deadline:
        if load.process.poll() is not None:
            pytest.fail(
                f"the second load ended (exit {load.process.returncode}) instead of waiting"
            )
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                waiting = conn.execute(
                    text(
                        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                        " AND database = (SELECT oid FROM pg_database"
                        "                 WHERE datname = current_database())"
                    )
                ).scalar_one()
            if waiting:
                return
        elif _has_open(load.process.pid, database):
            time.sleep(0.5)
            return
        time.sleep(0.05)
    pytest.fail("the second load never queued behind the first")


def _has_open(pid: int, path: str) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    if not fds.parent.parent.joinpath("self").exists():
        time.sleep(2)  # no /proc: give the process time to start instead
        return True
    try:
        links = list(fds.iterdir())
    except OSError:
        return False
    for fd in links:
        with contextlib.suppress(OSError):
            if str(fd.readlink()) == path:
                return True
    return False
