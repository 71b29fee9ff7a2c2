"""Re-location: every address period of the history located again with a new lookup version.

The authority each period was given when it was loaded stays where it is, in
``user_address`` (the *recorded* basis: what was published then). A new lookup version adds,
in ``address_relocation``, only the periods it locates elsewhere than they were recorded: an
unmatched new-build postcode the lookup now knows, a postcode it puts in another authority, an
outward code alone that the new district rule resolves differently. Reports on the *lookup*
basis read each period's authority under the newest version as that row, else the recorded
one; an older version's rows stay, so figures as known before it can still be read.

Only what is stored can be located again: a full postcode kept whole, or an outward code
alone. Periods stored at a precision that dropped the full postcode keep their recorded
authority (``not_relocatable``).
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, text

from evergreen_etl.sources.nspl import PostcodeLookupReader
from evergreen_etl.warehouse.dialect import bulk_work
from evergreen_etl.warehouse.lookup_versions import LookupVersion, newest_version, record_version
from evergreen_etl.warehouse.schema import UNKNOWN_AUTHORITY
from evergreen_etl.warehouse.snapshot_facts import EVERY_SNAPSHOT, refresh_relocation_facts
from evergreen_etl.warehouse.sqlfiles import fragments

__all__ = ["REASONS", "RELOCATABLE", "Relocation", "add_lookup_version", "relocate"]

log = logging.getLogger("evergreen_etl.load")

REASONS = ("matched", "moved", "partial", "unmatched")


def _fill(fragment: str, column: int) -> str:
    """A fragment's later lines indented to ``column``, where its first line starts."""
    return fragment.replace("\n", "\n" + " " * column)


# The stored postcode can be located again (the shared fragment 'relocatable').
RELOCATABLE = fragments()["relocatable"]

# Each relocatable period located with the lookup in dim_postcode (the shared fragments
# location_code and location_status: the rules of SPEC §4, as the merge applies them to a
# snapshot), kept when the place differs from the recorded one.
# The periods are read in postcode order where the database keeps a subquery's order: the
# lookup was loaded in that order, so each probe lands next to the previous one. (SQLite
# flattens this subquery into the join, drops the ORDER BY and reads in address order; keeping
# the order with a LIMIT measured slower at 100k users with 12 snapshots, the lookup being in
# the bulk load's page cache. At 1M users re-location is 2.7x the lookup load alone: see the
# README, "Boundaries and lookup versions".)
_LOCATE = f"""
INSERT INTO address_relocation (version_id, address_id, local_authority_code, location_status)
SELECT :version, address_id, code, status
FROM (
    SELECT s.address_id, s.local_authority_code AS recorded_code,
           s.location_status AS recorded_status,
           {_fill(fragments()["location_code"], 11)} AS code,
           {_fill(fragments()["location_status"], 11)} AS status
    FROM (
        SELECT a.address_id, a.postcode, a.postcode_kind, a.local_authority_code,
               a.location_status
        FROM user_address AS a
        WHERE {_fill(RELOCATABLE, 14)}
        ORDER BY a.postcode
    ) AS s
    LEFT JOIN dim_postcode AS p ON s.postcode_kind = 'full' AND p.postcode = s.postcode
    LEFT JOIN dim_postcode_district AS d
      ON s.postcode_kind = 'partial' AND d.outward = s.postcode
) AS located
WHERE code <> recorded_code OR status <> recorded_status
"""

# The periods whose authority differs between the previous version and this one (each read as
# its relocation row, else as recorded), with why, one row per user and reason.
_CHANGED = f"""
WITH touched AS (
    SELECT address_id FROM address_relocation WHERE version_id IN (:version, :previous)
    GROUP BY address_id
),
compared AS (
    SELECT a.user_id, a.postcode_kind,
           COALESCE(o.local_authority_code, a.local_authority_code) AS old_code,
           COALESCE(n.local_authority_code, a.local_authority_code) AS new_code
    FROM touched AS t
    JOIN user_address AS a ON a.address_id = t.address_id
    LEFT JOIN address_relocation AS o ON o.version_id = :previous AND o.address_id = t.address_id
    LEFT JOIN address_relocation AS n ON n.version_id = :version AND n.address_id = t.address_id
),
reasons AS (
    SELECT DISTINCT user_id,
           CASE
             WHEN postcode_kind = 'partial' THEN 'partial'
             WHEN old_code = '{UNKNOWN_AUTHORITY}' THEN 'matched'
             WHEN new_code = '{UNKNOWN_AUTHORITY}' THEN 'unmatched'
             ELSE 'moved'
           END AS reason
    FROM compared
    WHERE old_code <> new_code
)
SELECT reason, COUNT(*) FROM reasons GROUP BY reason
UNION ALL
SELECT 'users', COUNT(DISTINCT user_id) FROM reasons
"""


class Relocation(BaseModel):
    """What a new lookup version changed in the history: users whose authority changed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    users: int = Field(0, description="Users with at least one period in another authority")
    by_reason: dict[str, int] = Field(
        default_factory=dict,
        description="Users per reason: matched (an unmatched postcode found), moved (the "
        "lookup puts the postcode elsewhere), partial (an outward code re-resolved), unmatched "
        "(a postcode no longer located); a user may count under several reasons",
    )
    periods: int = Field(0, description="Address periods this version locates elsewhere")


def relocate(conn: Connection, version: int, previous: int | None) -> Relocation:
    """Locate every stored address period with lookup ``version`` (now in dim_postcode).

    Counts the users whose authority differs from what ``previous`` (the version before,
    None for the first) gave them. Set-based: one insert and one count.
    """
    with bulk_work(conn):
        periods = conn.execute(text(_LOCATE), {"version": version}).rowcount
    counts = dict.fromkeys(REASONS, 0)
    for reason, users in conn.execute(text(_CHANGED), {"version": version, "previous": previous}):
        counts[reason] = int(users)
    users = counts.pop("users", 0)
    return Relocation(users=users, by_reason=counts, periods=max(periods, 0))


def add_lookup_version(
    conn: Connection, reader: PostcodeLookupReader, *, sha256: str, postcodes: int, run_id: int
) -> tuple[LookupVersion, Relocation]:
    """Record the lookup just loaded as the newest version and re-locate the history with it."""
    previous = newest_version(conn)
    version = record_version(
        conn,
        sha256=sha256,
        source=reader.label,
        names=(reader.label, reader.path.name, reader.members.data),
        postcodes=postcodes,
        run_id=run_id,
    )
    relocation = relocate(conn, version.version_id, previous.version_id if previous else None)
    # What it changes in the periodic-snapshot facts, at every snapshot loaded so far.
    refresh_relocation_facts(conn, EVERY_SNAPSHOT, run_id, version.version_id)
    if relocation.users:
        log.info(
            "lookup %s re-located %d users (%s)",
            version.label,
            relocation.users,
            ", ".join(f"{k} {v}" for k, v in relocation.by_reason.items() if v),
        )
    return version, relocation
