"""The periodic-snapshot fact table: users by local authority at each loaded snapshot time.

The address history changes only at loads (a merge opens and closes rows at its snapshot time
t), so the state at any time T is the state at the latest snapshot time at or before T. The
table ``fact_snapshot_authority`` holds, for each snapshot time, the users whose address row
was valid then, by the authority code as supplied: a few hundred rows per snapshot, whatever
the number of users or the length of the history.

``refresh_snapshot_facts`` recomputes the rows from a time on, in the caller's transaction:
the load calls it after the merge, and anything that rewrites history from a time on (a late
snapshot, an undo) calls it with that time. The facts count by the code each period was
recorded with; ``fact_snapshot_relocation`` holds, per lookup version, what its re-location
changes in them (kept for the newest version by the same refresh, and written for a new
version when it is loaded), so a report on the lookup basis reads a few hundred rows too.

The facts are kept in recorded time like the history (README "Correcting history"): each row
names the run that computed it (``recorded_run_id``) and the run that computed its snapshot
again (``retired_run_id``), so the facts as known right after run R are the rows recorded at
or before R and not retired by then — what ``report --as-known-at`` reads
(``warehouse.history.known_at`` shadows the table with a view of them).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, DateTime, Integer, bindparam, text

from evergreen_etl.warehouse.lookup_versions import newest_version
from evergreen_etl.warehouse.sqlfiles import fragments

_SINCE = bindparam("since", type_=DateTime())
# The snapshot times: every load that succeeded, and the one running in this transaction.
_SNAPSHOT_TIMES = (
    "SELECT DISTINCT as_of FROM etl_run "
    "WHERE as_of >= :since AND status IN ('succeeded', 'running')"
)
_RUN = bindparam("run_id", type_=Integer())
# Rows this run computed already (a second refresh in one transaction) were never seen.
_DELETE = (
    "DELETE FROM fact_snapshot_authority WHERE snapshot_at >= :since AND recorded_run_id = :run_id"
)
_RETIRE = (
    "UPDATE fact_snapshot_authority SET retired_run_id = :run_id "
    "WHERE snapshot_at >= :since AND retired_run_id IS NULL"
)
# COUNT(*) counts users: a user's periods never overlap (README, "The warehouse").
_INSERT = f"""
    INSERT INTO fact_snapshot_authority
        (snapshot_at, local_authority_code, users, recorded_run_id)
    SELECT r.as_of, a.local_authority_code, COUNT(*), :run_id
    FROM ({_SNAPSHOT_TIMES}) AS r
    JOIN user_address AS a
      ON a.valid_from <= r.as_of AND (a.valid_to IS NULL OR a.valid_to > r.as_of)
    GROUP BY r.as_of, a.local_authority_code
"""


# The same for what a lookup version's re-location changes in those counts: per snapshot time
# and code, the users it moves in (+) and out (-) (the shared fragment relocated_periods).
_VERSION = bindparam("lookup_version", type_=Integer())
_DELETE_MOVES = (
    "DELETE FROM fact_snapshot_relocation WHERE snapshot_at >= :since "
    "AND version_id = :lookup_version AND recorded_run_id = :run_id"
)
_RETIRE_MOVES = (
    "UPDATE fact_snapshot_relocation SET retired_run_id = :run_id "
    "WHERE snapshot_at >= :since AND version_id = :lookup_version AND retired_run_id IS NULL"
)
# The re-located periods come summed per interval (relocated_periods): only a few thousand
# intervals are held against each snapshot time.
_INSERT_MOVES = """
    INSERT INTO fact_snapshot_relocation
        (snapshot_at, version_id, local_authority_code, users, recorded_run_id)
    SELECT r.as_of, :lookup_version, moved.code, SUM(moved.users), :run_id
    FROM ({times}) AS r
    JOIN (
        SELECT p.code, p.valid_from, p.valid_to, SUM(p.users) AS users
        FROM ({moved}) AS p
        GROUP BY p.code, p.valid_from, p.valid_to
    ) AS moved
      ON moved.valid_from <= r.as_of AND (moved.valid_to IS NULL OR moved.valid_to > r.as_of)
    GROUP BY r.as_of, moved.code
    HAVING SUM(moved.users) <> 0
"""
# Before every snapshot: a new lookup version's re-location facts cover every loaded time.
EVERY_SNAPSHOT = datetime(1, 1, 1)


def refresh_snapshot_facts(conn: Connection, since: datetime, run_id: int) -> None:
    """Compute again, on behalf of run ``run_id``, the users by authority of every snapshot
    loaded at or after ``since``, and what the newest lookup version's re-location changes in
    them; the rows they replace are retired, not deleted."""
    at = {"since": since, "run_id": run_id}
    conn.execute(text(_DELETE).bindparams(_SINCE, _RUN), at)
    conn.execute(text(_RETIRE).bindparams(_SINCE, _RUN), at)
    conn.execute(text(_INSERT).bindparams(_SINCE, _RUN), at)
    newest = newest_version(conn)
    if newest is not None:
        refresh_relocation_facts(conn, since, run_id, newest.version_id)


def refresh_relocation_facts(conn: Connection, since: datetime, run_id: int, version: int) -> None:
    """Compute again, on behalf of run ``run_id``, what lookup ``version``'s re-location
    changes in the users by authority of every snapshot loaded at or after ``since``."""
    at = {"since": since, "run_id": run_id, "lookup_version": version}
    insert = _INSERT_MOVES.format(times=_SNAPSHOT_TIMES, moved=fragments()["relocated_periods"])
    for statement in (_DELETE_MOVES, _RETIRE_MOVES, insert):
        conn.execute(text(statement).bindparams(_SINCE, _RUN, _VERSION), at)


def facts_known_since(conn: Connection) -> int:
    """The first run whose knowledge the facts hold: knowledge right after an earlier run
    (a warehouse migrated to recorded facts) must be read from the history. 0: every run."""
    first = conn.execute(text("SELECT MIN(recorded_run_id) FROM fact_snapshot_authority")).scalar()
    return 0 if first is None else int(first)


_AT = bindparam("as_of", type_=DateTime())
# The state at any time is the state of the latest snapshot loaded at or before it.
_USERS_AT = """
    SELECT f.local_authority_code, f.users
    FROM fact_snapshot_authority AS f
    WHERE f.retired_run_id IS NULL
      AND f.snapshot_at = (SELECT MAX(r.as_of) FROM etl_run AS r
                           WHERE r.status = 'succeeded' AND r.as_of <= :as_of)
"""


def users_by_authority_at(conn: Connection, as_of: datetime) -> dict[str, int]:
    """Users by supplied authority code at ``as_of``, from the facts (empty before the first
    snapshot)."""
    rows = conn.execute(text(_USERS_AT).bindparams(_AT), {"as_of": as_of}).all()
    return {str(code): int(users) for code, users in rows}
