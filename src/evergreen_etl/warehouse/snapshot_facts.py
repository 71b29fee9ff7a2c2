"""The periodic-snapshot fact table: users by local authority at each loaded snapshot time.

The address history changes only at loads (a merge opens and closes rows at its snapshot time
t), so the state at any time T is the state at the latest snapshot time at or before T. The
table ``fact_snapshot_authority`` holds, for each snapshot time, the users whose address row
was valid then, by the authority code as supplied: a few hundred rows per snapshot, whatever
the number of users or the length of the history.

``refresh_snapshot_facts`` recomputes the rows from a time on, in the caller's transaction:
the load calls it after the merge, and anything that rewrites history from a time on (a late
snapshot, an undo, a relocation) calls it with that time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, DateTime, bindparam, text

_SINCE = bindparam("since", type_=DateTime())
# The snapshot times: every load that succeeded, and the one running in this transaction.
_SNAPSHOT_TIMES = (
    "SELECT DISTINCT as_of FROM etl_run "
    "WHERE as_of >= :since AND status IN ('succeeded', 'running')"
)
_DELETE = "DELETE FROM fact_snapshot_authority WHERE snapshot_at >= :since"
# COUNT(*) counts users: a user's periods never overlap (README, "The warehouse").
_INSERT = f"""
    INSERT INTO fact_snapshot_authority (snapshot_at, local_authority_code, users)
    SELECT r.as_of, a.local_authority_code, COUNT(*)
    FROM ({_SNAPSHOT_TIMES}) AS r
    JOIN user_address AS a
      ON a.valid_from <= r.as_of AND (a.valid_to IS NULL OR a.valid_to > r.as_of)
    GROUP BY r.as_of, a.local_authority_code
"""


def refresh_snapshot_facts(conn: Connection, since: datetime) -> None:
    """Recompute the users by authority of every snapshot loaded at or after ``since``."""
    at = {"since": since}
    conn.execute(text(_DELETE).bindparams(_SINCE), at)
    conn.execute(text(_INSERT).bindparams(_SINCE), at)


_AT = bindparam("as_of", type_=DateTime())
# The state at any time is the state of the latest snapshot loaded at or before it.
_USERS_AT = """
    SELECT f.local_authority_code, f.users
    FROM fact_snapshot_authority AS f
    WHERE f.snapshot_at = (SELECT MAX(r.as_of) FROM etl_run AS r
                           WHERE r.status = 'succeeded' AND r.as_of <= :as_of)
"""


def users_by_authority_at(conn: Connection, as_of: datetime) -> dict[str, int]:
    """Users by supplied authority code at ``as_of``, from the facts (empty before the first
    snapshot)."""
    rows = conn.execute(text(_USERS_AT).bindparams(_AT), {"as_of": as_of}).all()
    return {str(code): int(users) for code, users in rows}
