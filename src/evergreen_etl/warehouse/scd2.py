"""The SCD type 2 merge of a full users snapshot: a staging table and a few set-based statements.

For a snapshot taken at time ``t``: a new user opens a row at ``t``; a changed postcode
closes the current row at ``t`` and opens one at ``t``; an unchanged user is left alone; a
user absent from the snapshot has the current row closed at ``t`` (unless told to keep it).
Duplicates inside the snapshot resolve to the last record.

At national scale (a million users) the cost is in the index look-ups, so each statement
reads its driving table in the order of the index it probes: the snapshot's distinct
postcodes are looked up in postcode order, its users matched to ``dim_user`` in pseudonym
order and merged into ``user_address`` in ``user_id`` order. Each probe then lands next to
the previous one, in pages already in the cache, instead of at a random place in a file
larger than the cache. Every user is compared with the current row once, in ``stg_snapshot``;
the counts, the rows to close and the rows to open all come from that one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, DateTime, bindparam, text

from evergreen_etl.anonymise import STAGED_COLUMNS
from evergreen_etl.models import LocationCounts
from evergreen_etl.postcodes import LocationPrecision
from evergreen_etl.warehouse.dialect import (
    analyze_temp_table,
    bulk_work,
    copy_csv,
    create_temp_table,
    create_temp_table_as,
    is_postgres,
)
from evergreen_etl.warehouse.schema import UNKNOWN_AUTHORITY

AbsentPolicy = Literal["close", "keep"]


@dataclass(frozen=True)
class MergeCounts:
    """What the merge did, user by user."""

    users_in_snapshot: int
    duplicates: int
    new: int
    returned: int
    moved: int
    left: int
    unchanged: int
    location: LocationCounts


def stage_snapshot(conn: Connection, staged_users: Path) -> int:
    """Bulk-load the staged users CSV into the temporary table ``stg_user``."""
    create_temp_table(
        conn,
        "stg_user",
        "position INTEGER NOT NULL, pseudonym VARCHAR(64) NOT NULL, sex VARCHAR(1) NOT NULL, "
        "birth_year INTEGER, postcode VARCHAR(8), postcode_kind VARCHAR(8) NOT NULL, "
        "postcode_token VARCHAR(32)",
    )
    with bulk_work(conn):
        return copy_csv(conn, "stg_user", STAGED_COLUMNS, staged_users)


# The last record of each pseudonym wins (its position in the file is the highest). On SQLite
# the result is stored in pseudonym order, the order of dim_user's index, which the later
# statements probe as they scan it.
_LATEST_SQLITE = """
    -- With a single MAX(), SQLite takes the other columns from the row holding the max.
    SELECT pseudonym, MAX(position) AS position, sex, birth_year, postcode, postcode_kind,
           postcode_token
    FROM stg_user GROUP BY pseudonym
"""
_LATEST_POSTGRES = """
    SELECT DISTINCT ON (pseudonym) pseudonym, position, sex, birth_year, postcode, postcode_kind,
           postcode_token
    FROM stg_user ORDER BY pseudonym, position DESC
"""

# The lookup rows of the snapshot's distinct full postcodes, read in postcode order. Users
# are then matched against this small table instead of probing the 2.7-million-row lookup
# once per user at random.
_POSTCODE_COLUMNS = "postcode VARCHAR(8) PRIMARY KEY, local_authority_code VARCHAR(16)"
_FILL_POSTCODES = """
    INSERT INTO stg_postcode (postcode, local_authority_code)
    SELECT p.postcode, p.local_authority_code
    FROM (SELECT postcode FROM stg_latest WHERE postcode_kind = 'full' GROUP BY postcode) s
    JOIN dim_postcode p ON p.postcode = s.postcode
"""

# New users get a row; sex and birth year are type 1 attributes: the latest snapshot's stand.
# SQLite does both in one upsert; PostgreSQL would draw a sequence value for every row of an
# upsert, so it inserts and updates apart.
_UPSERT_USERS_SQLITE = """
    -- WHERE true: SQLite's grammar needs it between a SELECT and ON CONFLICT
    INSERT INTO dim_user (pseudonym, sex, birth_year, first_run_id)
    SELECT pseudonym, sex, birth_year, :run_id FROM stg_latest WHERE true
    ON CONFLICT (pseudonym) DO UPDATE SET sex = excluded.sex, birth_year = excluded.birth_year
    WHERE dim_user.sex <> excluded.sex OR dim_user.birth_year IS NOT excluded.birth_year
"""
_INSERT_USERS_POSTGRES = """
    INSERT INTO dim_user (pseudonym, sex, birth_year, first_run_id)
    SELECT s.pseudonym, s.sex, s.birth_year, :run_id FROM stg_latest s
    WHERE NOT EXISTS (SELECT 1 FROM dim_user u WHERE u.pseudonym = s.pseudonym)
"""
_UPDATE_USERS_POSTGRES = """
    UPDATE dim_user SET sex = s.sex, birth_year = s.birth_year
    FROM stg_latest s
    WHERE s.pseudonym = dim_user.pseudonym
      AND (dim_user.sex <> s.sex OR dim_user.birth_year IS DISTINCT FROM s.birth_year)
"""

# The snapshot keyed by user_id, located, and next to each user's current row (if any): every
# later statement reads this one table instead of probing user_address again. On SQLite,
# INTEGER PRIMARY KEY makes user_id the rowid, so the table is scanned in user_id order, the
# order of the user_address indexes the merge probes.
_SNAPSHOT_COLUMNS = (
    "user_id {key} PRIMARY KEY, postcode VARCHAR(8), postcode_kind VARCHAR(8) NOT NULL, "
    "local_authority_code VARCHAR(16) NOT NULL, location_status VARCHAR(20) NOT NULL, "
    "current_address_id {key}, current_postcode VARCHAR(8), stored_postcode VARCHAR(8), "
    "postcode_district VARCHAR(4), postcode_token VARCHAR(32), current_token VARCHAR(32)"
)
# What the warehouse keeps of a postcode at each location precision (SPEC §3, issue 8): the
# staged postcode is full; it locates the user here and is then coarsened or dropped.
_KEPT_POSTCODE = {
    LocationPrecision.POSTCODE: "s.postcode",
    LocationPrecision.SECTOR: (
        "CASE WHEN s.postcode_kind = 'full' "
        "THEN substr(s.postcode, 1, length(s.postcode) - 2) ELSE s.postcode END"
    ),
    LocationPrecision.DISTRICT: (
        "CASE WHEN s.postcode_kind = 'full' "
        "THEN substr(s.postcode, 1, length(s.postcode) - 4) ELSE s.postcode END"
    ),
    LocationPrecision.AUTHORITY: "NULL",
}
_DISTRICT = (
    "CASE WHEN s.postcode_kind = 'full' THEN substr(s.postcode, 1, length(s.postcode) - 4) "
    "WHEN s.postcode_kind = 'partial' THEN s.postcode END"
)
_FILL_SNAPSHOT = f"""
    INSERT INTO stg_snapshot
        (user_id, postcode, postcode_kind, local_authority_code, location_status,
         current_address_id, current_postcode, stored_postcode, postcode_district,
         postcode_token, current_token)
    SELECT u.user_id, s.postcode, s.postcode_kind,
           CASE
             WHEN s.postcode_kind = 'full' AND p.local_authority_code IS NOT NULL
               THEN p.local_authority_code
             WHEN s.postcode_kind = 'partial' AND d.local_authority_code IS NOT NULL
               THEN d.local_authority_code
             ELSE '{UNKNOWN_AUTHORITY}'
           END,
           CASE
             WHEN s.postcode_kind = 'full' AND p.postcode IS NULL THEN 'unmatched'
             WHEN s.postcode_kind = 'full' AND p.local_authority_code IS NULL THEN 'no_authority'
             WHEN s.postcode_kind = 'full' THEN 'full_matched'
             WHEN s.postcode_kind = 'partial' AND d.local_authority_code IS NOT NULL
               THEN 'partial_resolved'
             WHEN s.postcode_kind = 'partial' THEN 'partial_unresolved'
             ELSE s.postcode_kind
           END,
           c.address_id, c.postcode, {{kept_postcode}}, {{district}},
           s.postcode_token, c.postcode_token
    FROM stg_latest s
    JOIN dim_user u ON u.pseudonym = s.pseudonym
    LEFT JOIN user_address c ON c.user_id = u.user_id AND c.is_current
    LEFT JOIN stg_postcode p ON s.postcode_kind = 'full' AND p.postcode = s.postcode
    LEFT JOIN dim_postcode_district d ON s.postcode_kind = 'partial' AND d.outward = s.postcode
"""
# A user whose current row has another postcode has moved. Rows keep a keyed token of the
# full postcode, so a move is seen whatever precision the postcode itself is kept at; rows
# loaded before tokens existed hold the full postcode and are compared by it.
_UNCHANGED = (
    "CASE WHEN s.current_token IS NOT NULL "
    "THEN s.postcode_token IS NOT DISTINCT FROM s.current_token "
    "ELSE s.postcode IS NOT DISTINCT FROM s.current_postcode END"
)
_MOVED = f"s.current_address_id IS NOT NULL AND NOT ({_UNCHANGED})"

# Per location status: new users (no row ever), returned (rows, none current), moved and
# unchanged. Only users without a current row look at their history.
_CLASSIFY = f"""
    SELECT s.location_status,
      COUNT(*),
      SUM(CASE WHEN s.current_address_id IS NULL AND NOT EXISTS
                 (SELECT 1 FROM user_address h WHERE h.user_id = s.user_id)
               THEN 1 ELSE 0 END),
      SUM(CASE WHEN s.current_address_id IS NULL AND EXISTS
                 (SELECT 1 FROM user_address h WHERE h.user_id = s.user_id)
               THEN 1 ELSE 0 END),
      SUM(CASE WHEN {_MOVED} THEN 1 ELSE 0 END),
      SUM(CASE WHEN s.current_address_id IS NOT NULL AND ({_UNCHANGED})
               THEN 1 ELSE 0 END)
    FROM stg_snapshot s
    GROUP BY s.location_status
"""
_CLOSE = "SET valid_to = :t, is_current = false, closed_run_id = :run_id"
_CLOSE_MOVED = f"""
    UPDATE user_address {_CLOSE}
    WHERE address_id IN (SELECT s.current_address_id FROM stg_snapshot s WHERE {_MOVED})
"""
_CLOSE_ABSENT = f"""
    UPDATE user_address {_CLOSE}
    WHERE is_current
      AND NOT EXISTS (SELECT 1 FROM stg_snapshot s WHERE s.user_id = user_address.user_id)
"""
# New, returned and moved users open a row; everyone else in the snapshot keeps theirs.
_OPEN_ROWS = f"""
    INSERT INTO user_address
        (user_id, postcode, postcode_district, postcode_token, postcode_kind,
         local_authority_code, location_status, valid_from, valid_to, is_current, opened_run_id)
    SELECT s.user_id, s.stored_postcode, s.postcode_district, s.postcode_token, s.postcode_kind,
           s.local_authority_code, s.location_status, :t, NULL, true, :run_id
    FROM stg_snapshot s
    WHERE s.current_address_id IS NULL OR ({_MOVED})
    ORDER BY s.user_id
"""


def merge_snapshot(
    conn: Connection,
    *,
    as_of: datetime,
    run_id: int,
    absent: AbsentPolicy = "close",
    precision: LocationPrecision = LocationPrecision.POSTCODE,
) -> MergeCounts:
    """Merge ``stg_user`` into ``dim_user`` and ``user_address`` at time ``as_of``.

    ``precision`` decides what is kept of each postcode (the authority is always kept).
    """
    postgres = is_postgres(conn)
    at = {"t": as_of, "run_id": run_id}
    with bulk_work(conn):
        staged = conn.execute(text("SELECT COUNT(*) FROM stg_user")).scalar_one()
        create_temp_table_as(conn, "stg_latest", _LATEST_POSTGRES if postgres else _LATEST_SQLITE)
        analyze_temp_table(conn, "stg_latest")
        create_temp_table(conn, "stg_postcode", _POSTCODE_COLUMNS, without_rowid=True)
        conn.execute(text(_FILL_POSTCODES))
        analyze_temp_table(conn, "stg_postcode")

        if postgres:
            conn.execute(text(_INSERT_USERS_POSTGRES), {"run_id": run_id})
            conn.execute(text(_UPDATE_USERS_POSTGRES))
        else:
            conn.execute(text(_UPSERT_USERS_SQLITE), {"run_id": run_id})
        create_temp_table(
            conn, "stg_snapshot", _SNAPSHOT_COLUMNS.format(key="BIGINT" if postgres else "INTEGER")
        )
        fill = _FILL_SNAPSHOT.format(
            kept_postcode=_KEPT_POSTCODE[LocationPrecision(precision)],
            district=_DISTRICT if precision != LocationPrecision.AUTHORITY else "NULL",
        )
        conn.execute(text(fill))
        analyze_temp_table(conn, "stg_snapshot")

        statuses = conn.execute(text(_CLASSIFY)).all()
        current_before = conn.execute(
            text("SELECT COUNT(*) FROM user_address WHERE is_current")
        ).scalar_one()

        when = bindparam("t", type_=DateTime())
        conn.execute(text(_CLOSE_MOVED).bindparams(when), at)
        if absent == "close":
            conn.execute(text(_CLOSE_ABSENT).bindparams(when), at)
        conn.execute(text(_OPEN_ROWS).bindparams(when), at)

    in_snapshot = sum(int(row[1]) for row in statuses)
    new, returned, moved, unchanged = (
        sum(int(row[k] or 0) for row in statuses) for k in range(2, 6)
    )
    return MergeCounts(
        users_in_snapshot=in_snapshot,
        duplicates=staged - in_snapshot,
        new=new,
        returned=returned,
        moved=moved,
        # Every current row belongs to a user in the snapshot (moved or unchanged) or to one
        # who left.
        left=int(current_before) - moved - unchanged if absent == "close" else 0,
        unchanged=unchanged,
        location=LocationCounts(**{row[0]: int(row[1]) for row in statuses}),
    )
