"""Corrections in valid time: a late snapshot merged into its place, a snapshot taken out.

The valid-time history and the list of loaded snapshot times determine where every user
was at every snapshot time: the row that holds that time. A late snapshot at ``t`` between
loaded times ``p`` and ``n`` changes the state at ``t`` only, so only the users whose state
at ``t`` differs from their state at ``p`` are touched, and only their rows around ``t``:
the row holding ``t`` ends at ``t`` (its part from ``n`` on, if it reached so far, is kept
as a row of its own), and the new state holds from ``t`` to ``n``, or joins the row that
starts at ``n`` when that row has the same address. Taking a snapshot out at ``t`` is the
reverse: the row ending at ``t`` reaches to ``n`` (joining the row from ``n`` when the
address is the same) and the row starting at ``t`` keeps only its part from ``n`` on.
Every row touched is retired (recorded time, see ``warehouse.history``) and the corrected
rows recorded: set-based statements over the affected users, nothing per row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, CursorResult, DateTime, bindparam, text

from evergreen_etl.errors import SnapshotOrderError
from evergreen_etl.failpoints import failpoint
from evergreen_etl.postcodes import LocationPrecision
from evergreen_etl.warehouse.dialect import (
    analyze_temp_table,
    backend_for,
    bulk_work,
    create_temp_table,
)
from evergreen_etl.warehouse.history import (
    UNDONE,
    LoadedSnapshot,
    keep_attributes,
    ledger_attributes,
    loaded_snapshots,
    neighbours,
    new_address_ids,
    record_ledger,
    retire_rows,
)
from evergreen_etl.warehouse.relocate import locate_new_rows
from evergreen_etl.warehouse.scd2 import (
    AbsentPolicy,
    MergeCounts,
    classify_snapshot,
    merge_counts,
    merge_snapshot,
)

_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")
_STATE = (
    "postcode, postcode_district, postcode_token, postcode_kind, local_authority_code, "
    "location_status"
)
_ROW_COLUMNS = (
    f"{_STATE}, user_id, valid_from, valid_to, is_current, opened_run_id, closed_run_id, "
    "recorded_run_id"
)
_NEW_ROWS_COLUMNS = (
    "user_id {id_type} NOT NULL, postcode VARCHAR(8), postcode_district VARCHAR(4), "
    "postcode_token VARCHAR(32), postcode_kind VARCHAR(8) NOT NULL, "
    "local_authority_code VARCHAR(16) NOT NULL, location_status VARCHAR(20) NOT NULL, "
    "valid_from TIMESTAMP NOT NULL, valid_to TIMESTAMP, is_current BOOLEAN NOT NULL, "
    "opened_run_id INTEGER NOT NULL, closed_run_id INTEGER, recorded_run_id INTEGER"
)


def _same_address(token: str, postcode: str, row: str) -> str:
    """An address is the one of ``row``: compared as the merge compares a user with a row."""
    return (
        f"CASE WHEN {row}.postcode_token IS NOT NULL "
        f"THEN {token} IS NOT DISTINCT FROM {row}.postcode_token "
        f"ELSE {postcode} IS NOT DISTINCT FROM {row}.postcode END"
    )


def _execute(conn: Connection, sql: str, values: dict[str, object]) -> CursorResult[Any]:
    """Run ``sql`` with the values it names; times typed, so SQLite compares them as stored."""
    names = set(_PARAMETER.findall(sql))
    statement = text(sql).bindparams(
        *(bindparam(name, type_=DateTime()) for name in ("t", "later") if name in names)
    )
    return conn.execute(statement, {k: v for k, v in values.items() if k in names})


def _a(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in _STATE.split(","))


# ---- a late snapshot -----------------------------------------------------------------------

_LATE_USERS = "user_id {key}, a_id {id_type}, in_snapshot SMALLINT NOT NULL, b_id {id_type}"
# Users of the snapshot whose address at t is not the one they had at the previous snapshot
# time; b_id is the row starting at the next time when it holds the snapshot's address.
_AFFECTED_IN_SNAPSHOT = f"""
    INSERT INTO stg_late (user_id, a_id, in_snapshot, b_id)
    SELECT s.user_id, s.current_address_id, 1,
           CASE WHEN b.address_id IS NOT NULL
                 AND {_same_address("s.postcode_token", "s.stored_postcode", "b")}
             THEN b.address_id END
    FROM stg_snapshot s
    LEFT JOIN user_address b ON b.user_id = s.user_id AND b.valid_from = :later
    WHERE s.change <> 'unchanged'
"""
# Users with an address at t who are missing from the snapshot: they left at t.
_AFFECTED_ABSENT = """
    INSERT INTO stg_late (user_id, a_id, in_snapshot, b_id)
    SELECT a.user_id, a.address_id, 0, NULL
    FROM user_address a
    WHERE a.valid_from <= :t AND (a.valid_to IS NULL OR a.valid_to > :t)
      AND NOT EXISTS (SELECT 1 FROM stg_snapshot s WHERE s.user_id = a.user_id)
"""
_LATE_ROWS = f"""
    INSERT INTO stg_rows ({_ROW_COLUMNS})
    -- the row that held t now ends at t
    SELECT {_a("a")}, a.user_id, a.valid_from, :t, false, a.opened_run_id, :run_id, :run_id
    FROM stg_late l JOIN user_address a ON a.address_id = l.a_id
    UNION ALL
    -- ... and its part from the next snapshot on, if it reached so far, is kept
    SELECT {_a("a")}, a.user_id, :later, a.valid_to, a.is_current, :later_run_id,
           a.closed_run_id, :run_id
    FROM stg_late l JOIN user_address a ON a.address_id = l.a_id
    WHERE a.valid_to IS NULL OR a.valid_to > :later
    UNION ALL
    -- the snapshot's address holds from t to the next time, or through the next time's row
    SELECT s.stored_postcode, s.postcode_district, s.postcode_token, s.postcode_kind,
           s.local_authority_code, s.location_status, s.user_id, :t,
           CASE WHEN b.address_id IS NULL THEN :later ELSE b.valid_to END,
           CASE WHEN b.address_id IS NULL THEN false ELSE b.is_current END,
           :run_id,
           CASE WHEN b.address_id IS NULL THEN :later_run_id ELSE b.closed_run_id END,
           NULL
    FROM stg_late l JOIN stg_snapshot s ON s.user_id = l.user_id
    LEFT JOIN user_address b ON b.address_id = l.b_id
"""
_LATE_RETIRED = """
    INSERT INTO stg_retire (address_id)
    SELECT a_id FROM stg_late WHERE a_id IS NOT NULL
    UNION SELECT b_id FROM stg_late WHERE b_id IS NOT NULL
"""
_LATE_COUNTS = """
    SELECT COUNT(*),
           COALESCE(SUM(CASE WHEN l.b_id IS NOT NULL OR a.valid_to IS NULL OR a.valid_to > :later
                        THEN 1 ELSE 0 END), 0)
    FROM stg_late l LEFT JOIN user_address a ON a.address_id = l.a_id
"""
_INSERT_ROWS = f"""
    INSERT INTO user_address ({{address_id}}{_ROW_COLUMNS})
    SELECT {{new_address_id}}{_ROW_COLUMNS} FROM stg_rows ORDER BY user_id, valid_from
"""


@dataclass(frozen=True)
class Replayed:
    """What a correction did to the history."""

    users: int  # users whose rows were re-derived
    later_history: int  # ... of whom, users whose history after the corrected time changed
    rows_retired: int
    rows_recorded: int


def _work_tables(conn: Connection, key: str | None = None) -> None:
    id_type = backend_for(conn).id_type
    create_temp_table(conn, "stg_rows", _NEW_ROWS_COLUMNS.format(id_type=id_type))
    create_temp_table(conn, "stg_retire", f"address_id {id_type} PRIMARY KEY")
    if key is not None:
        create_temp_table(
            conn, key, _LATE_USERS.format(key=f"{id_type} PRIMARY KEY", id_type=id_type)
        )


def _record(conn: Connection, run_id: int) -> tuple[int, int]:
    """Retire the rows of stg_retire and record those of stg_rows, each located with the
    newest lookup version as its re-location would have."""
    retired = retire_rows(conn, run_id)
    failpoint("replay.retired")
    ids = new_address_ids(conn, "user_id, valid_from")
    insert = text(ids.sql(_INSERT_ROWS))
    recorded = int(conn.execute(insert, {"largest_address_id": ids.largest}).rowcount)
    locate_new_rows(conn, above=ids.largest)
    return retired, recorded


def merge_late(
    conn: Connection,
    *,
    as_of: datetime,
    run_id: int,
    later: LoadedSnapshot,
    absent: AbsentPolicy,
) -> tuple[int, Replayed]:
    """Merge the classified ``stg_snapshot`` (see ``scd2.classify_snapshot``) at ``as_of``,
    older than the loaded snapshot ``later`` (the next one in time). Returns the users who
    left at ``as_of`` and what was re-derived.
    """
    _work_tables(conn, "stg_late")
    at = {"t": as_of, "later": later.as_of, "run_id": run_id, "later_run_id": later.run_id}
    _execute(conn, _AFFECTED_IN_SNAPSHOT, at)
    left = int(_execute(conn, _AFFECTED_ABSENT, at).rowcount) if absent == "close" else 0
    analyze_temp_table(conn, "stg_late")
    _execute(conn, _LATE_ROWS, at)
    conn.execute(text(_LATE_RETIRED))
    users, later_history = tuple(_execute(conn, _LATE_COUNTS, at).one())
    retired, recorded = _record(conn, run_id)
    return left, Replayed(int(users), int(later_history), retired, recorded)


# ---- a snapshot taken out ------------------------------------------------------------------

_OUT_USERS = (
    "user_id {key}, a_id {id_type}, x_id {id_type}, x_reaches_later SMALLINT NOT NULL, "
    "b_id {id_type}"
)
# Users with a row ending or starting at t: the only ones whose history the snapshot at t
# shaped. a: the row ending at t; x: the row starting at t; b: the row starting at the next
# time, when it holds a's address (a and b then become one row).
_AFFECTED_OUT = f"""
    INSERT INTO stg_out (user_id, a_id, x_id, x_reaches_later, b_id)
    SELECT g.user_id, g.a_id, g.x_id,
           CASE WHEN x.address_id IS NOT NULL AND {{x_reaches}} THEN 1 ELSE 0 END,
           CASE WHEN a.address_id IS NOT NULL AND b.address_id IS NOT NULL
                 AND {_same_address("a.postcode_token", "a.postcode", "b")}
             THEN b.address_id END
    FROM (SELECT user_id,
                 MAX(CASE WHEN valid_to = :t THEN address_id END) AS a_id,
                 MAX(CASE WHEN valid_from = :t THEN address_id END) AS x_id
          FROM user_address WHERE valid_to = :t OR valid_from = :t
          GROUP BY user_id) g
    LEFT JOIN user_address a ON a.address_id = g.a_id
    LEFT JOIN user_address x ON x.address_id = g.x_id
    LEFT JOIN user_address b ON {{b_join}}
"""
_OUT_ROWS = f"""
    INSERT INTO stg_rows ({_ROW_COLUMNS})
    -- the row ending at t reaches on: through the next time's row, to the next time, or on
    SELECT {_a("a")}, a.user_id, a.valid_from,
           CASE WHEN b.address_id IS NOT NULL THEN b.valid_to ELSE {{later}} END,
           CASE WHEN b.address_id IS NOT NULL THEN b.is_current ELSE {{open}} END,
           a.opened_run_id,
           CASE WHEN b.address_id IS NOT NULL THEN b.closed_run_id ELSE {{later_run}} END,
           :run_id
    FROM stg_out o JOIN user_address a ON a.address_id = o.a_id
    LEFT JOIN user_address b ON b.address_id = o.b_id
    UNION ALL
    -- the row starting at t keeps its part from the next time on
    SELECT {_a("x")}, x.user_id, {{later}}, x.valid_to, x.is_current, {{later_run}},
           x.closed_run_id, :run_id
    FROM stg_out o JOIN user_address x ON x.address_id = o.x_id
    WHERE o.x_reaches_later = 1
"""
_OUT_RETIRED = """
    INSERT INTO stg_retire (address_id)
    SELECT a_id FROM stg_out WHERE a_id IS NOT NULL
    UNION SELECT x_id FROM stg_out WHERE x_id IS NOT NULL
    UNION SELECT b_id FROM stg_out WHERE b_id IS NOT NULL
"""


def take_out_snapshot(conn: Connection, *, run: LoadedSnapshot, by_run_id: int) -> Replayed:
    """Re-derive the history without the snapshot of ``run`` (no longer in the loaded list),
    on behalf of run ``by_run_id``; restore sex and birth year its users had before it.
    """
    _, later = neighbours(loaded_snapshots(conn), run.as_of)
    id_type = backend_for(conn).id_type
    _work_tables(conn)
    create_temp_table(
        conn, "stg_out", _OUT_USERS.format(key=f"{id_type} PRIMARY KEY", id_type=id_type)
    )
    at: dict[str, object] = {"t": run.as_of, "run_id": by_run_id}
    if later is None:
        sql_values = {
            "x_reaches": "false",
            "b_join": "false",
            "later": "NULL",
            "open": "true",
            "later_run": "NULL",
        }
    else:
        sql_values = {
            "x_reaches": "(x.valid_to IS NULL OR x.valid_to > :later)",
            "b_join": "b.user_id = g.user_id AND b.valid_from = :later",
            "later": ":later",
            "open": "false",
            "later_run": ":later_run_id",
        }
        at.update(later=later.as_of, later_run_id=later.run_id)
    affected = _execute(conn, _AFFECTED_OUT.format(**sql_values), at).rowcount
    analyze_temp_table(conn, "stg_out")
    _execute(conn, _OUT_ROWS.format(**sql_values), at)
    conn.execute(text(_OUT_RETIRED))
    later_history = conn.execute(
        text("SELECT COUNT(*) FROM stg_out WHERE x_reaches_later = 1 OR b_id IS NOT NULL")
    ).scalar_one()
    retired, recorded = _record(conn, by_run_id)
    _restore_attributes(conn, run, later, by_run_id)
    return Replayed(int(affected), int(later_history), retired, recorded)


def _restore_attributes(
    conn: Connection, run: LoadedSnapshot, later: LoadedSnapshot | None, by_run_id: int
) -> None:
    """Users whose latest snapshot was ``run``'s take sex and birth year from their latest
    remaining snapshot (read from the ledger, newest first, until each is found); the values
    they replace are kept in recorded time, retired by ``by_run_id``."""
    ledger = ledger_attributes(conn, run.run_id)
    if not ledger:
        return
    if later is not None:
        seen_later = {
            int(user_id)
            for (user_id,) in _execute(
                conn,
                "SELECT DISTINCT user_id FROM user_address "
                "WHERE valid_to IS NULL OR valid_to > :later",
                {"later": later.as_of},
            )
        }
        pending = set(ledger) - seen_later
    else:
        pending = set(ledger)
    found: dict[int, tuple[str, int | None]] = {}
    for earlier in reversed([s for s in loaded_snapshots(conn) if s.as_of < run.as_of]):
        if not pending:
            break
        attributes = ledger_attributes(conn, earlier.run_id)
        for user_id in pending & attributes.keys():
            found[user_id] = attributes[user_id]
        pending -= attributes.keys()
    users = [user_id for user_id, values in found.items() if ledger[user_id] != values]
    changed = [
        {"user_id": user_id, "sex": found[user_id][0], "birth_year": found[user_id][1]}
        for user_id in users
    ]
    if changed:
        keep_attributes(conn, by_run_id, users)
        conn.execute(
            text(
                "UPDATE dim_user SET sex = :sex, birth_year = :birth_year WHERE user_id = :user_id"
            ),
            changed,
        )


# ---- a load, wherever its snapshot falls in time -------------------------------------------


@dataclass(frozen=True)
class LoadPlan:
    """Where a snapshot goes: nowhere (already loaded), in place of another, or in time."""

    skip: bool
    replaces: LoadedSnapshot | None = None


def plan_snapshot(
    conn: Connection, *, as_of: datetime, users_sha: str | None, replace: bool
) -> LoadPlan:
    """Decide what loading a snapshot at ``as_of`` does; refuse a different snapshot at a
    time already loaded unless ``replace`` (a correction)."""
    same_time = [s for s in loaded_snapshots(conn) if s.as_of == as_of]
    if not same_time:
        return LoadPlan(skip=False)
    loaded = same_time[-1]
    if users_sha is not None and users_sha == loaded.users_sha256:
        return LoadPlan(skip=True)
    if not replace:
        raise SnapshotOrderError(
            f"a different snapshot as of {as_of:%Y-%m-%d %H:%M:%S} is already loaded "
            f"(run {loaded.run_id}); refusing this one",
            hint="to correct that snapshot, load this one with --replace",
        )
    return LoadPlan(skip=False, replaces=loaded)


def merge_into_history(
    conn: Connection,
    *,
    plan: LoadPlan,
    staged: int,
    as_of: datetime,
    run_id: int,
    absent: AbsentPolicy,
    precision: LocationPrecision,
) -> tuple[MergeCounts, Replayed | None]:
    """Merge ``stg_user`` at ``as_of`` for run ``run_id``: in time order when it is the
    newest snapshot, else in its place (re-deriving the later history of the users it
    changes); a replaced snapshot is taken out first. The ledger keeps what the history
    does not."""
    replayed = None
    if plan.replaces is not None:
        mark_undone(conn, plan.replaces.run_id, by_run_id=run_id)
        replayed = take_out_snapshot(conn, run=plan.replaces, by_run_id=run_id)
    _, later = neighbours(loaded_snapshots(conn), as_of)
    if later is None:
        merged = merge_snapshot(
            conn, staged=staged, as_of=as_of, run_id=run_id, absent=absent, precision=precision
        )
    else:
        with bulk_work(conn):
            groups = classify_snapshot(
                conn, as_of=as_of, run_id=run_id, precision=precision, later=later.as_of
            )
            left, late = merge_late(conn, as_of=as_of, run_id=run_id, later=later, absent=absent)
        merged = merge_counts(groups, staged, left=left)
        replayed = late if replayed is None else _plus(replayed, late)
    with bulk_work(conn):
        record_ledger(conn, run_id)
    return merged, replayed


def mark_undone(conn: Connection, run_id: int, *, by_run_id: int) -> None:
    """The snapshot of ``run_id`` is no longer held: ``by_run_id`` undid or replaced it."""
    conn.execute(
        text("UPDATE etl_run SET status = :undone, undone_run_id = :by WHERE run_id = :r"),
        {"undone": UNDONE, "by": by_run_id, "r": run_id},
    )


def _plus(first: Replayed, second: Replayed) -> Replayed:
    return Replayed(
        *(getattr(first, f) + getattr(second, f) for f in Replayed.__dataclass_fields__)
    )
