"""The SCD type 2 merge of a full users snapshot: a staging table and a few set-based statements.

For a snapshot taken at time ``t``: a new user opens a row at ``t``; a changed postcode
closes the current row at ``t`` and opens one at ``t``; an unchanged user is left alone; a
user absent from the snapshot has the current row closed at ``t`` (unless told to keep it).
Duplicates inside the snapshot resolve to the last record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, DateTime, bindparam, text

from evergreen_etl.anonymise import STAGED_COLUMNS
from evergreen_etl.models import LocationCounts
from evergreen_etl.warehouse.dialect import copy_csv, create_temp_table, create_temp_table_as
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
        "birth_year INTEGER, postcode VARCHAR(8), postcode_kind VARCHAR(8) NOT NULL",
    )
    return copy_csv(conn, "stg_user", STAGED_COLUMNS, staged_users)


# The last record of each pseudonym wins (its position in the file is the highest).
_LATEST = """
    SELECT s.* FROM stg_user s
    JOIN (SELECT pseudonym, MAX(position) AS position FROM stg_user GROUP BY pseudonym) last
      ON last.pseudonym = s.pseudonym AND last.position = s.position
"""

_LOCATED = f"""
    SELECT u.user_id, s.postcode, s.postcode_kind,
           CASE
             WHEN s.postcode_kind = 'full' AND p.local_authority_code IS NOT NULL
               THEN p.local_authority_code
             WHEN s.postcode_kind = 'partial' AND d.local_authority_code IS NOT NULL
               THEN d.local_authority_code
             ELSE '{UNKNOWN_AUTHORITY}'
           END AS local_authority_code,
           CASE
             WHEN s.postcode_kind = 'full' AND p.postcode IS NULL THEN 'unmatched'
             WHEN s.postcode_kind = 'full' AND p.local_authority_code IS NULL THEN 'no_authority'
             WHEN s.postcode_kind = 'full' THEN 'full_matched'
             WHEN s.postcode_kind = 'partial' AND d.local_authority_code IS NOT NULL
               THEN 'partial_resolved'
             WHEN s.postcode_kind = 'partial' THEN 'partial_unresolved'
             ELSE s.postcode_kind
           END AS location_status
    FROM stg_latest s
    JOIN dim_user u ON u.pseudonym = s.pseudonym
    LEFT JOIN dim_postcode p ON s.postcode_kind = 'full' AND p.postcode = s.postcode
    LEFT JOIN dim_postcode_district d ON s.postcode_kind = 'partial' AND d.outward = s.postcode
"""


def merge_snapshot(
    conn: Connection, *, as_of: datetime, run_id: int, absent: AbsentPolicy = "close"
) -> MergeCounts:
    """Merge ``stg_user`` into ``dim_user`` and ``user_address`` at time ``as_of``."""
    staged = conn.execute(text("SELECT COUNT(*) FROM stg_user")).scalar_one()
    create_temp_table_as(conn, "stg_latest", _LATEST)
    conn.execute(text("CREATE INDEX ix_stg_latest_pseudonym ON stg_latest (pseudonym)"))
    in_snapshot = conn.execute(text("SELECT COUNT(*) FROM stg_latest")).scalar_one()

    conn.execute(
        text(
            """
            INSERT INTO dim_user (pseudonym, sex, birth_year, first_run_id)
            SELECT s.pseudonym, s.sex, s.birth_year, :run_id FROM stg_latest s
            WHERE NOT EXISTS (SELECT 1 FROM dim_user u WHERE u.pseudonym = s.pseudonym)
            """
        ),
        {"run_id": run_id},
    )
    # Sex and birth year are type 1 attributes: the latest snapshot's values stand.
    conn.execute(
        text(
            """
            UPDATE dim_user SET sex = s.sex, birth_year = s.birth_year
            FROM stg_latest s
            WHERE s.pseudonym = dim_user.pseudonym
              AND (dim_user.sex <> s.sex OR dim_user.birth_year IS DISTINCT FROM s.birth_year)
            """
        )
    )
    create_temp_table_as(conn, "stg_snapshot", _LOCATED)
    conn.execute(text("CREATE UNIQUE INDEX ix_stg_snapshot_user ON stg_snapshot (user_id)"))

    counts = _classify(conn)
    left = conn.execute(
        text(
            """
            SELECT COUNT(*) FROM user_address a
            WHERE a.is_current
              AND NOT EXISTS (SELECT 1 FROM stg_snapshot s WHERE s.user_id = a.user_id)
            """
        )
    ).scalar_one()

    close_absent = (
        "OR NOT EXISTS (SELECT 1 FROM stg_snapshot s WHERE s.user_id = user_address.user_id)"
    )
    conn.execute(
        text(
            f"""
            UPDATE user_address
            SET valid_to = :t, is_current = false, closed_run_id = :run_id
            WHERE is_current
              AND (EXISTS (SELECT 1 FROM stg_snapshot s
                           WHERE s.user_id = user_address.user_id
                             AND s.postcode IS DISTINCT FROM user_address.postcode)
                   {close_absent if absent == "close" else ""})
            """
        ).bindparams(bindparam("t", type_=DateTime())),
        {"t": as_of, "run_id": run_id},
    )
    conn.execute(
        text(
            """
            INSERT INTO user_address
                (user_id, postcode, postcode_kind, local_authority_code, location_status,
                 valid_from, valid_to, is_current, opened_run_id)
            SELECT s.user_id, s.postcode, s.postcode_kind, s.local_authority_code,
                   s.location_status, :t, NULL, true, :run_id
            FROM stg_snapshot s
            WHERE NOT EXISTS (SELECT 1 FROM user_address a
                              WHERE a.user_id = s.user_id AND a.is_current)
            """
        ).bindparams(bindparam("t", type_=DateTime())),
        {"t": as_of, "run_id": run_id},
    )
    by_status = conn.execute(
        text("SELECT location_status, COUNT(*) FROM stg_snapshot GROUP BY location_status")
    ).all()
    location = LocationCounts(**{status: int(count) for status, count in by_status})
    return MergeCounts(
        users_in_snapshot=in_snapshot,
        duplicates=staged - in_snapshot,
        left=left if absent == "close" else 0,
        location=location,
        **counts,
    )


def _classify(conn: Connection) -> dict[str, int]:
    """Count new, returned, moved and unchanged users before the merge changes anything."""
    row = conn.execute(
        text(
            """
            SELECT
              SUM(CASE WHEN c.user_id IS NULL AND NOT EXISTS
                         (SELECT 1 FROM user_address h WHERE h.user_id = s.user_id)
                       THEN 1 ELSE 0 END),
              SUM(CASE WHEN c.user_id IS NULL AND EXISTS
                         (SELECT 1 FROM user_address h WHERE h.user_id = s.user_id)
                       THEN 1 ELSE 0 END),
              SUM(CASE WHEN c.user_id IS NOT NULL AND s.postcode IS DISTINCT FROM c.postcode
                       THEN 1 ELSE 0 END),
              SUM(CASE WHEN c.user_id IS NOT NULL AND s.postcode IS NOT DISTINCT FROM c.postcode
                       THEN 1 ELSE 0 END)
            FROM stg_snapshot s
            LEFT JOIN user_address c ON c.user_id = s.user_id AND c.is_current
            """
        )
    ).one()
    new, returned, moved, unchanged = (int(v or 0) for v in row)
    return {"new": new, "returned": returned, "moved": moved, "unchanged": unchanged}
