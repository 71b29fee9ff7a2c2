"""History you can trust and repair: every load listed, a load undone, revisions explained.

The library side of ``evergreen-etl history list``, ``history undo`` and ``report
revisions`` (README "Correcting history"). Late snapshots and ``--replace`` go through
``load``; ``--as-known-at`` through every report.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import DateTime, Engine, bindparam, text

from evergreen_etl.errors import ConfigurationError
from evergreen_etl.report import report
from evergreen_etl.report.render import ReportFormat, format_value, text_table
from evergreen_etl.settings import Settings
from evergreen_etl.times import to_utc_naive, utc_now
from evergreen_etl.warehouse.engine import open_warehouse, write_transaction
from evergreen_etl.warehouse.history import (
    FINISHED,
    LOOKUP,
    SUCCEEDED,
    UNDO,
    UNDONE,
    LoadedSnapshot,
    resolve_known_at,
)
from evergreen_etl.warehouse.replay import mark_undone, take_out_snapshot
from evergreen_etl.warehouse.snapshot_facts import refresh_snapshot_facts

log = logging.getLogger("evergreen_etl.history")

__all__ = [
    "HistoryEntry",
    "Revision",
    "Revisions",
    "UndoResult",
    "list_history",
    "render_history",
    "render_revisions",
    "revisions",
    "undo",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HistoryEntry(_Frozen):
    """One run of the warehouse: a load (held, undone or replaced), an undo, or a lookup
    reload (a load that found its snapshot loaded but a new postcode lookup)."""

    run_id: int
    kind: str  # load, undo or lookup
    as_of: datetime
    recorded_at: datetime | None
    status: str
    users_in_snapshot: int
    new: int
    returned: int
    moved: int
    left: int
    unchanged: int
    undone_by: int | None
    undoes: int | None


class UndoResult(_Frozen):
    """What ``undo`` did."""

    run_id: int
    as_of: datetime
    undo_run_id: int | None  # None: the run was already undone (nothing changed)
    users: int  # users whose history was re-derived
    rows_retired: int
    rows_recorded: int


class Revision(_Frozen):
    """One authority's count at a time, as known then and as known now."""

    local_authority_code: str
    local_authority_name: str
    known_then: int
    known_now: int
    difference: int


class Revisions(_Frozen):
    """Counts at ``as_of`` as known right after run ``since`` and now, by authority."""

    as_of: datetime
    since_run_id: int
    rows: list[Revision]


_LIST = """
    SELECT run_id, status, as_of, finished_at, users_in_snapshot, new_users, returned_users,
           moved_users, left_users, unchanged_users, undone_run_id, details
    FROM etl_run WHERE status IN :finished ORDER BY run_id
"""


def list_history(settings: Settings, *, engine: Engine | None = None) -> list[HistoryEntry]:
    """Every finished run, oldest first."""
    with open_warehouse(settings, engine) as eng, eng.connect() as conn:
        rows = conn.execute(
            text(_LIST)
            .bindparams(bindparam("finished", expanding=True))
            .columns(as_of=DateTime(), finished_at=DateTime()),
            {"finished": FINISHED},
        ).all()
    entries = []
    for row in rows:
        details = row.details if isinstance(row.details, dict) else json.loads(row.details or "{}")
        undoes = details.get("undoes")
        entries.append(
            HistoryEntry(
                run_id=row.run_id,
                kind={UNDO: "undo", LOOKUP: "lookup"}.get(row.status, "load"),
                as_of=row.as_of,
                recorded_at=row.finished_at,
                status=row.status,
                users_in_snapshot=row.users_in_snapshot,
                new=row.new_users,
                returned=row.returned_users,
                moved=row.moved_users,
                left=row.left_users,
                unchanged=row.unchanged_users,
                undone_by=row.undone_run_id,
                undoes=int(undoes) if undoes is not None else None,
            )
        )
    return entries


def undo(settings: Settings, run_id: int, *, engine: Engine | None = None) -> UndoResult:
    """Retire what load ``run_id`` recorded and re-derive the later history without its
    snapshot, in one transaction under the load lock. Undoing an undone load changes
    nothing; an unknown run (or one that is not a load) is a configuration error.
    """
    with open_warehouse(settings, engine) as eng, write_transaction(eng) as conn:
        row = conn.execute(
            text(
                "SELECT run_id, as_of, status, key_id, users_sha256 FROM etl_run WHERE run_id = :r"
            ).columns(as_of=DateTime()),
            {"r": run_id},
        ).first()
        if row is None or row.status not in (SUCCEEDED, UNDONE):
            what = "no such run" if row is None else f"run {run_id} is not a load"
            raise ConfigurationError(f"history undo: {what} (see `evergreen-etl history list`)")
        if row.status == UNDONE:
            log.info("run %d is already undone: nothing to do", run_id)
            return UndoResult(
                run_id=run_id,
                as_of=row.as_of,
                undo_run_id=None,
                users=0,
                rows_retired=0,
                rows_recorded=0,
            )
        undo_run_id = int(
            conn.execute(
                text(
                    "INSERT INTO etl_run (started_at, as_of, status, key_id, details)"
                    " VALUES (:started, :t, :status, :key_id, :details) RETURNING run_id"
                ).bindparams(
                    bindparam("started", type_=DateTime()), bindparam("t", type_=DateTime())
                ),
                {
                    "started": utc_now(),
                    "t": row.as_of,
                    "status": "running",
                    "key_id": row.key_id,
                    "details": json.dumps({"undoes": run_id}),
                },
            ).scalar_one()
        )
        mark_undone(conn, run_id, by_run_id=undo_run_id)
        done = take_out_snapshot(
            conn,
            run=LoadedSnapshot(run_id, row.as_of, row.users_sha256),
            by_run_id=undo_run_id,
        )
        conn.execute(
            text(
                "UPDATE etl_run SET status = :status, finished_at = :finished WHERE run_id = :r"
            ).bindparams(bindparam("finished", type_=DateTime())),
            {"status": UNDO, "finished": utc_now(), "r": undo_run_id},
        )
        # The users by authority of every snapshot from the undone one on are derived again.
        refresh_snapshot_facts(conn, row.as_of, undo_run_id)
    log.info(
        "undid run %d (snapshot as of %s): %d users re-derived",
        run_id,
        row.as_of.isoformat(),
        done.users,
    )
    return UndoResult(
        run_id=run_id,
        as_of=row.as_of,
        undo_run_id=undo_run_id,
        users=done.users,
        rows_retired=done.rows_retired,
        rows_recorded=done.rows_recorded,
    )


def revisions(
    settings: Settings,
    *,
    as_of: datetime,
    since: int | datetime,
    engine: Engine | None = None,
) -> Revisions:
    """For each authority, the users at ``as_of`` as known right after run ``since`` (or the
    last run finished by that time), as known now, and the difference: a revisions note."""
    moment = to_utc_naive(as_of)
    with open_warehouse(settings, engine) as eng:
        with eng.connect() as conn:
            since_run = resolve_known_at(conn, since)
        then = report(settings, as_of=moment, engine=eng, as_known_at=since_run)
        now = report(settings, as_of=moment, engine=eng)
    names = {r.local_authority_code: r.local_authority_name for r in (*now.rows, *then.rows)}
    before = {r.local_authority_code: r.users or 0 for r in then.rows}
    after = {r.local_authority_code: r.users or 0 for r in now.rows}
    rows = [
        Revision(
            local_authority_code=code,
            local_authority_name=names[code],
            known_then=before.get(code, 0),
            known_now=after.get(code, 0),
            difference=after.get(code, 0) - before.get(code, 0),
        )
        for code in sorted(names)
    ]
    rows.sort(key=lambda r: (-abs(r.difference), r.local_authority_code))
    return Revisions(as_of=moment, since_run_id=since_run, rows=rows)


# ---- rendering -----------------------------------------------------------------------------

_HISTORY_COLUMNS = (
    ("run_id", "Run", True),
    ("kind", "Kind", False),
    ("as_of", "As of (UTC)", False),
    ("recorded_at", "Recorded at (UTC)", False),
    ("status", "Status", False),
    ("users_in_snapshot", "Users", True),
    ("new", "New", True),
    ("returned", "Returned", True),
    ("moved", "Moved", True),
    ("left", "Left", True),
    ("unchanged", "Unchanged", True),
    ("undone_by", "Undone by", True),
    ("undoes", "Undoes", True),
)
_REVISION_COLUMNS = (
    ("local_authority_code", "Code", False),
    ("local_authority_name", "Local authority", False),
    ("known_then", "Known then", True),
    ("known_now", "Known now", True),
    ("difference", "Difference", True),
)


def _cell(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return format_value(value)


def _render(
    title: str,
    columns: Sequence[tuple[str, str, bool]],
    rows: Sequence[BaseModel],
    fmt: ReportFormat,
) -> str:
    records = [row.model_dump(mode="json") for row in rows]
    if fmt == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([name for name, _, _ in columns])
        for row in rows:
            writer.writerow(
                ["" if getattr(row, n) is None else getattr(row, n) for n, _, _ in columns]
            )
        return out.getvalue()
    return text_table(
        title,
        [(label, right) for _, label, right in columns],
        ([_cell(getattr(row, name)) for name, _, _ in columns] for row in rows),
    )


def render_history(entries: Sequence[HistoryEntry], fmt: ReportFormat) -> str:
    """The run list as a table, CSV or JSON."""
    return _render("Warehouse history (every load and undo)", _HISTORY_COLUMNS, entries, fmt)


def render_revisions(result: Revisions, fmt: ReportFormat) -> str:
    """The revisions note as a table, CSV or JSON."""
    title = (
        f"Revisions: users at {result.as_of:%Y-%m-%d %H:%M:%S} UTC as known after run "
        f"{result.since_run_id} and now"
    )
    return _render(title, _REVISION_COLUMNS, result.rows, fmt)
