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
from typing import Any, Literal

from sqlalchemy import Connection, DateTime, bindparam, text

from evergreen_etl.datadir.staged import STAGED_COLUMNS, STAGED_TABLE_COLUMNS
from evergreen_etl.models import LocationCounts
from evergreen_etl.postcodes import LocationPrecision
from evergreen_etl.warehouse.dialect import (
    analyze_temp_table,
    backend_for,
    bulk_work,
    copy_csv,
    create_temp_table,
    deferred_indexes,
)
from evergreen_etl.warehouse.history import keep_changed_attributes, new_address_ids
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
    attributes_updated: int
    location: LocationCounts


def stage_snapshot(conn: Connection, staged_users: Path) -> int:
    """Bulk-load the staged users CSV into the temporary table ``stg_user``."""
    create_temp_table(conn, "stg_user", STAGED_TABLE_COLUMNS)
    with bulk_work(conn):
        return copy_csv(conn, "stg_user", STAGED_COLUMNS, staged_users)


# The last record of each pseudonym wins (its position in the file is the highest). The fill
# reads these rows as they come out of the sort, in pseudonym order: the order of dim_user's
# index, which it probes as it goes.
_LATEST_COLUMNS = (
    "sex",
    "birth_year",
    "postcode",
    "postcode_kind",
    "postcode_token",
    "record_key",
)

# The lookup rows of the snapshot's distinct full postcodes, read in postcode order. Users
# are then matched against this small table instead of probing the 2.7-million-row lookup
# once per user at random. (Superseded duplicate records add a few postcodes: harmless.)
_POSTCODE_COLUMNS = "postcode VARCHAR(8) PRIMARY KEY, local_authority_code VARCHAR(16)"
_FILL_POSTCODES = """
    INSERT INTO stg_postcode (postcode, local_authority_code)
    SELECT p.postcode, p.local_authority_code
    FROM (SELECT postcode FROM stg_user WHERE postcode_kind = 'full' GROUP BY postcode) s
    JOIN dim_postcode p ON p.postcode = s.postcode
"""

# A user new to the warehouse gets their user_id in the fill, next in line after every known
# one (the backend's numbered key: on SQLite stg_snapshot's AUTOINCREMENT key, whose sequence
# starts at the largest user_id, so new users are numbered in pseudonym order, the order they
# are read in; on PostgreSQL dim_user's own sequence). Their dim_user rows are then inserted
# with those ids and the record key anonymise computed (privacy/ckm.py). Sex and birth
# year are type 1 attributes: the fill flags known users whose
# values changed, and only those are updated.
_INSERT_NEW_USERS = """
    INSERT INTO dim_user (user_id, pseudonym, sex, birth_year, first_run_id, record_key)
    SELECT s.user_id, s.pseudonym, s.sex, s.birth_year, :run_id, s.record_key FROM stg_snapshot s
    WHERE s.pseudonym IS NOT NULL
    ORDER BY s.user_id
"""
_UPDATE_CHANGED_USERS = """
    UPDATE dim_user SET sex = s.sex, birth_year = s.birth_year
    FROM stg_snapshot s
    WHERE s.user_id = dim_user.user_id AND s.attributes_changed = 1
"""

# The snapshot keyed by user_id, located, with what happens to each user's address (its
# ``change``): every later statement reads this one table instead of probing user_address
# again. On SQLite, INTEGER PRIMARY KEY makes user_id the rowid, so the table is scanned in
# user_id order, the order of the user_address indexes the merge probes.
_SNAPSHOT_COLUMNS = (
    "user_id {key}, postcode_kind VARCHAR(8) NOT NULL, "
    "local_authority_code VARCHAR(16) NOT NULL, location_status VARCHAR(20) NOT NULL, "
    "change VARCHAR(9) NOT NULL, current_address_id {id_type}, stored_postcode VARCHAR(8), "
    "postcode_district VARCHAR(4), postcode_token VARCHAR(32), sex VARCHAR(1) NOT NULL, "
    "birth_year INTEGER, attributes_changed SMALLINT NOT NULL, pseudonym VARCHAR(64), "
    "record_key SMALLINT"
)
# What the warehouse keeps of a postcode at each location precision (README, "Privacy design"): the
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
# A user whose current row has another postcode has moved. Rows keep a keyed token of the
# full postcode, so a move is seen whatever precision the postcode itself is kept at; rows
# loaded before tokens existed hold the full postcode and are compared by it.
_UNCHANGED = (
    "CASE WHEN c.postcode_token IS NOT NULL "
    "THEN s.postcode_token IS NOT DISTINCT FROM c.postcode_token "
    "ELSE s.postcode IS NOT DISTINCT FROM c.postcode END"
)
# new: no row before t; returned: rows before t, none holding t (only users without such a
# row look at their history); moved; unchanged. (A snapshot merged in order holds t in the
# current row; a late snapshot in the row that held t before it came.)
_CHANGE = f"""
    CASE
      WHEN u.user_id IS NULL THEN 'new'
      WHEN c.address_id IS NULL AND NOT EXISTS
             (SELECT 1 FROM user_address h
              WHERE h.user_id = u.user_id AND h.valid_from < :t) THEN 'new'
      WHEN c.address_id IS NULL THEN 'returned'
      WHEN {_UNCHANGED} THEN 'unchanged'
      ELSE 'moved'
    END
"""
_FILL_SNAPSHOT = f"""
    INSERT INTO stg_snapshot
        (user_id, postcode_kind, local_authority_code, location_status, change,
         current_address_id, stored_postcode, postcode_district, postcode_token,
         sex, birth_year, attributes_changed, pseudonym, record_key)
    SELECT COALESCE(u.user_id, {{new_user_id}}), s.postcode_kind,
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
           {_CHANGE},
           c.address_id, {{kept_postcode}}, {{district}}, s.postcode_token,
           s.sex, s.birth_year,
           CASE WHEN u.user_id IS NOT NULL
                 AND (u.sex <> s.sex OR u.birth_year IS DISTINCT FROM s.birth_year)
             THEN 1 ELSE 0 END,
           CASE WHEN u.user_id IS NULL THEN s.pseudonym END,
           CASE WHEN u.user_id IS NULL THEN s.record_key END
    FROM ({{latest}}) s
    LEFT JOIN dim_user u ON u.pseudonym = s.pseudonym
    LEFT JOIN user_address c ON c.user_id = u.user_id AND {{holding_t}}
    LEFT JOIN stg_postcode p ON s.postcode_kind = 'full' AND p.postcode = s.postcode
    LEFT JOIN dim_postcode_district d ON s.postcode_kind = 'partial' AND d.outward = s.postcode
"""
# The row that holds time t: the current one for a snapshot newer than every loaded one.
_HOLDING_T = {
    False: "c.is_current",
    True: "c.valid_from <= :t AND (c.valid_to IS NULL OR c.valid_to > :t)",
}
# A late snapshot sets sex and birth year (type 1: the latest snapshot's) only of the users
# no later snapshot holds: those without a row reaching past the next snapshot time.
_KEEP_LATER_ATTRIBUTES = """
    UPDATE stg_snapshot SET attributes_changed = 0
    WHERE attributes_changed = 1
      AND EXISTS (SELECT 1 FROM user_address h
                  WHERE h.user_id = stg_snapshot.user_id
                    AND (h.valid_to IS NULL OR h.valid_to > :later))
"""
# Users per location status and change, and how many changed sex or birth year.
_CLASSIFY = """
    SELECT location_status, change, COUNT(*), SUM(attributes_changed)
    FROM stg_snapshot
    GROUP BY location_status, change
"""
_CLOSE = "SET valid_to = :t, is_current = false, closed_run_id = :run_id"
# One pass closes the current rows of movers and of users absent from the snapshot: every
# current row except those of users whose address is unchanged.
_CLOSE_MOVED_AND_ABSENT = f"""
    UPDATE user_address {_CLOSE}
    WHERE is_current
      AND NOT EXISTS (SELECT 1 FROM stg_snapshot s
                      WHERE s.user_id = user_address.user_id AND s.change = 'unchanged')
"""
_CLOSE_MOVED = f"""
    UPDATE user_address {_CLOSE}
    WHERE address_id IN (SELECT s.current_address_id FROM stg_snapshot s WHERE s.change = 'moved')
"""
# New, returned and moved users open a row; everyone else in the snapshot keeps theirs.
_OPEN_ROWS = """
    INSERT INTO user_address
        ({address_id}user_id, postcode, postcode_district, postcode_token, postcode_kind,
         local_authority_code, location_status, valid_from, valid_to, is_current, opened_run_id)
    SELECT {new_address_id}s.user_id, s.stored_postcode, s.postcode_district, s.postcode_token,
           s.postcode_kind, s.local_authority_code, s.location_status, :t, NULL, true, :run_id
    FROM stg_snapshot s
    WHERE s.change <> 'unchanged'
    ORDER BY s.user_id
"""


def merge_snapshot(
    conn: Connection,
    *,
    staged: int,
    as_of: datetime,
    run_id: int,
    absent: AbsentPolicy = "close",
    precision: LocationPrecision = LocationPrecision.POSTCODE,
) -> MergeCounts:
    """Merge ``stg_user`` (``staged`` records, as ``stage_snapshot`` counted them) into
    ``dim_user`` and ``user_address`` at time ``as_of``, newer than every loaded snapshot.

    ``precision`` decides what is kept of each postcode (the authority is always kept).
    """
    at = {"t": as_of, "run_id": run_id}
    with bulk_work(conn):
        groups = classify_snapshot(conn, as_of=as_of, run_id=run_id, precision=precision)
        when = bindparam("t", type_=DateTime())
        close = _CLOSE_MOVED_AND_ABSENT if absent == "close" else _CLOSE_MOVED
        closed = conn.execute(text(close).bindparams(when), at).rowcount
        # The first load fills an empty user_address: its indexes are built after the insert.
        ids = new_address_ids(conn, "s.user_id")
        with deferred_indexes(conn, "user_address"):
            opened = text(ids.sql(_OPEN_ROWS)).bindparams(when)
            conn.execute(opened, {**at, "largest_address_id": ids.largest})
    moved = sum(int(row[2]) for row in groups if row[1] == "moved")
    # The rows closed are the movers' and, when absent users are closed, the leavers'.
    return merge_counts(groups, staged, left=closed - moved if absent == "close" else 0)


def classify_snapshot(
    conn: Connection,
    *,
    as_of: datetime,
    run_id: int,
    precision: LocationPrecision,
    later: datetime | None = None,
) -> list[tuple[Any, ...]]:
    """Locate the users of ``stg_user`` into ``stg_snapshot``, each with its change at
    ``as_of``; add users new to the warehouse to ``dim_user`` and overwrite changed sex and
    birth year. Returns the users per (location status, change, users, attributes changed).

    ``later``, the next loaded snapshot time, marks a late snapshot: its users are compared
    with the row holding ``as_of`` (not the current one), and only those no later snapshot
    holds take its sex and birth year.
    """
    backend = backend_for(conn)
    analyze_temp_table(conn, "stg_user")
    create_temp_table(conn, "stg_postcode", _POSTCODE_COLUMNS, without_rowid=True)
    conn.execute(text(_FILL_POSTCODES))
    analyze_temp_table(conn, "stg_postcode")

    columns = _SNAPSHOT_COLUMNS.format(key=backend.numbered_key, id_type=backend.id_type)
    create_temp_table(conn, "stg_snapshot", columns)
    backend.start_numbering(conn, "stg_snapshot", "dim_user", "user_id")
    fill = _FILL_SNAPSHOT.format(
        latest=backend.latest_per_key("stg_user", "pseudonym", "position", _LATEST_COLUMNS),
        new_user_id=backend.next_number("dim_user", "user_id"),
        kept_postcode=_KEPT_POSTCODE[LocationPrecision(precision)],
        district=_DISTRICT if precision != LocationPrecision.AUTHORITY else "NULL",
        holding_t=_HOLDING_T[later is not None],
    )
    when = bindparam("t", type_=DateTime())
    conn.execute(text(fill).bindparams(when), {"t": as_of})
    # The first load fills an empty dim_user: its indexes are built after the insert.
    with deferred_indexes(conn, "dim_user"):
        conn.execute(text(_INSERT_NEW_USERS), {"run_id": run_id})
    if later is not None:
        conn.execute(
            text(_KEEP_LATER_ATTRIBUTES).bindparams(bindparam("later", type_=DateTime())),
            {"later": later},
        )
    analyze_temp_table(conn, "stg_snapshot")

    groups = [tuple(row) for row in conn.execute(text(_CLASSIFY))]
    if any(int(row[3] or 0) for row in groups):
        keep_changed_attributes(conn, run_id)  # the values overwritten, in recorded time
        conn.execute(text(_UPDATE_CHANGED_USERS))
    return groups


def merge_counts(groups: list[tuple[Any, ...]], staged: int, *, left: int) -> MergeCounts:
    """The counts of a merge from ``classify_snapshot``'s groups and the users who left."""
    changes: dict[str, int] = dict.fromkeys(("new", "returned", "moved", "unchanged"), 0)
    statuses: dict[str, int] = {}
    for status, change, users, _ in groups:
        changes[change] += int(users)
        statuses[status] = statuses.get(status, 0) + int(users)
    in_snapshot = sum(changes.values())
    return MergeCounts(
        users_in_snapshot=in_snapshot,
        duplicates=staged - in_snapshot,
        new=changes["new"],
        returned=changes["returned"],
        moved=changes["moved"],
        left=left,
        unchanged=changes["unchanged"],
        attributes_updated=sum(int(row[3] or 0) for row in groups),
        location=LocationCounts(**statuses),
    )
