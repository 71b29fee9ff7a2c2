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

Most of a new lookup is the old one again. On SQLite, where locating every period costs a
probe into the lookup per period in address order, a new version starts from the previous
version's rows when those are complete (``lookup_version.relocation_complete``: every period
it locates elsewhere has its row, those a correction re-derived after it included): a period
whose postcode (or outward code) the two lookups locate alike keeps the previous version's
answer, and only the periods of postcodes the new lookup changed, added or removed are
located again. ``remember_locations``, called before the postcode load replaces
``dim_postcode``, keeps what the previous lookup said of each postcode for that comparison.
Otherwise every period is located: on PostgreSQL always (one hash join of the history with
the lookup is quicker than comparing the two lookups: ``Backend.compares_lookups``), and on
SQLite for the first version, or the first after migration 0011.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, text

from evergreen_etl.sources.nspl import PostcodeLookupReader
from evergreen_etl.warehouse.dialect import (
    analyze_temp_table,
    backend_for,
    bulk_work,
    create_temp_table,
)
from evergreen_etl.warehouse.lookup_versions import LookupVersion, newest_version, record_version
from evergreen_etl.warehouse.schema import UNKNOWN_AUTHORITY
from evergreen_etl.warehouse.snapshot_facts import EVERY_SNAPSHOT, refresh_relocation_facts
from evergreen_etl.warehouse.sqlfiles import fragments

__all__ = [
    "REASONS",
    "RELOCATABLE",
    "PreviousLookup",
    "Relocation",
    "add_lookup_version",
    "locate_new_rows",
    "relocate",
    "remember_locations",
]

log = logging.getLogger("evergreen_etl.load")

REASONS = ("matched", "moved", "partial", "unmatched")


def _fill(fragment: str, column: int) -> str:
    """A fragment's later lines indented to ``column``, where its first line starts."""
    return fragment.replace("\n", "\n" + " " * column)


# The stored postcode can be located again (the shared fragment 'relocatable').
RELOCATABLE = fragments()["relocatable"]

# The relocatable periods that {which} selects, each located with the lookup in dim_postcode
# (the shared fragments location_code and location_status: the rules of SPEC §4, as the
# merge applies them to a snapshot), kept when the place differs from the recorded one.
# (SQLite reads the periods in address order, one probe into the lookup each: at 1M users with
# 12 snapshots, locating every period is twice the lookup load itself. Hence the comparison
# of the two lookups, which reads both in postcode order.)
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
          AND {{which}}
    ) AS s
    LEFT JOIN dim_postcode AS p ON s.postcode_kind = 'full' AND p.postcode = s.postcode
    LEFT JOIN dim_postcode_district AS d
      ON s.postcode_kind = 'partial' AND d.outward = s.postcode
) AS located
WHERE code <> recorded_code OR status <> recorded_status
"""
_EVERY_PERIOD = "1 = 1"
_NEW_ROWS = "a.address_id > :above"
# The period's postcode is one the two lookups locate differently (stg_changed_*).
_CHANGED_PLACE = (
    "((a.postcode_kind = 'full' AND a.postcode IN (SELECT postcode FROM stg_changed_postcode))"
    " OR (a.postcode_kind = 'partial'"
    " AND a.postcode IN (SELECT outward FROM stg_changed_district)))"
)
# The previous version's rows of the periods whose place the new lookup did not change.
_CARRY = f"""
INSERT INTO address_relocation (version_id, address_id, local_authority_code, location_status)
SELECT :version, r.address_id, r.local_authority_code, r.location_status
FROM address_relocation AS r
JOIN user_address AS a ON a.address_id = r.address_id
WHERE r.version_id = :previous
  AND {_fill(RELOCATABLE, 6)}
  AND NOT {_CHANGED_PLACE}
"""

# What the previous lookup said of each postcode and each outward code alone (the columns the
# location rules read), and the keys the new lookup says otherwise of: changed, added, removed.
_REMEMBERED = (
    ("postcode", "dim_postcode", "postcode", "VARCHAR(8)"),
    ("district", "dim_postcode_district", "outward", "VARCHAR(4)"),
)
_REMEMBER = """
INSERT INTO stg_previous_{name} ({key}, local_authority_code)
SELECT {key}, local_authority_code FROM {table} ORDER BY {key}
"""
_DIFFER = """
INSERT INTO stg_changed_{name} ({key})
SELECT n.{key} FROM {table} AS n
LEFT JOIN stg_previous_{name} AS o ON o.{key} = n.{key}
WHERE o.{key} IS NULL OR n.local_authority_code IS DISTINCT FROM o.local_authority_code
UNION ALL
SELECT o.{key} FROM stg_previous_{name} AS o
WHERE NOT EXISTS (SELECT 1 FROM {table} AS n WHERE n.{key} = o.{key})
"""

# The periods whose authority differs between the previous version and this one (each read as
# its relocation row, else as recorded), with why, one row per user and reason.
_CHANGED = f"""
WITH touched AS (
    SELECT address_id,
           MAX(CASE WHEN version_id = :previous THEN local_authority_code END) AS old_code,
           MAX(CASE WHEN version_id = :version THEN local_authority_code END) AS new_code
    FROM address_relocation WHERE version_id IN (:version, :previous)
    GROUP BY address_id
),
compared AS (
    SELECT a.user_id, a.postcode_kind,
           COALESCE(t.old_code, a.local_authority_code) AS old_code,
           COALESCE(t.new_code, a.local_authority_code) AS new_code
    FROM touched AS t
    JOIN user_address AS a ON a.address_id = t.address_id
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


@dataclass(frozen=True)
class PreviousLookup:
    """The lookup version ``dim_postcode`` held before a new one replaced it."""

    version_id: int
    # What it said of each postcode is in stg_previous_* (complete versions only).
    remembered: bool


def remember_locations(conn: Connection) -> PreviousLookup | None:
    """Before a new lookup replaces ``dim_postcode``: the version it holds (None: none yet)
    and, when that version's re-location is complete, where it located each postcode and
    each outward code, in temporary tables the new version's re-location compares with."""
    previous = newest_version(conn)
    if previous is None:
        return None
    complete = conn.execute(
        text("SELECT relocation_complete FROM lookup_version WHERE version_id = :v"),
        {"v": previous.version_id},
    ).scalar_one()
    if not complete or not backend_for(conn).compares_lookups:
        return PreviousLookup(previous.version_id, remembered=False)
    with bulk_work(conn):
        for name, table, key, key_type in _REMEMBERED:
            create_temp_table(
                conn,
                f"stg_previous_{name}",
                f"{key} {key_type} PRIMARY KEY, local_authority_code VARCHAR(16)",
                without_rowid=True,
            )
            conn.execute(text(_REMEMBER.format(name=name, table=table, key=key)))
            analyze_temp_table(conn, f"stg_previous_{name}")
    return PreviousLookup(previous.version_id, remembered=True)


def _changed_places(conn: Connection) -> None:
    """The postcodes and outward codes the new lookup (now in dim_postcode and
    dim_postcode_district) locates otherwise than the remembered one, in stg_changed_*."""
    for name, table, key, key_type in _REMEMBERED:
        create_temp_table(
            conn, f"stg_changed_{name}", f"{key} {key_type} PRIMARY KEY", without_rowid=True
        )
        conn.execute(text(_DIFFER.format(name=name, table=table, key=key)))
        analyze_temp_table(conn, f"stg_changed_{name}")


def relocate(conn: Connection, version: int, previous: PreviousLookup | None) -> Relocation:
    """Locate every stored address period with lookup ``version`` (now in dim_postcode).

    Starts from ``previous``'s rows when it remembered its lookup (see the module's
    docstring), else locates every period. Counts the users whose authority differs from
    what ``previous`` gave them. Set-based: a few inserts and one count.
    """
    bound: dict[str, object] = {"version": version}
    with bulk_work(conn):
        if previous is not None and previous.remembered:
            _changed_places(conn)
            bound["previous"] = previous.version_id
            periods = conn.execute(text(_CARRY), bound).rowcount
            periods += conn.execute(text(_LOCATE.format(which=_CHANGED_PLACE)), bound).rowcount
            # SQLite keeps a temporary table as long as the connection (the pool's).
            for name, *_ in _REMEMBERED:
                conn.execute(text(f"DROP TABLE stg_previous_{name}"))
                conn.execute(text(f"DROP TABLE stg_changed_{name}"))
        else:
            periods = conn.execute(text(_LOCATE.format(which=_EVERY_PERIOD)), bound).rowcount
        # The count below and the facts read the new rows (PostgreSQL's statistics do not
        # know them yet: nested loops over a few hundred thousand rows).
        backend_for(conn).analyze(conn, "address_relocation")
    counts = dict.fromkeys(REASONS, 0)
    bound["previous"] = previous.version_id if previous is not None else None
    for reason, users in conn.execute(text(_CHANGED), bound):
        counts[reason] = int(users)
    users = counts.pop("users", 0)
    return Relocation(users=users, by_reason=counts, periods=max(periods, 0))


def locate_new_rows(conn: Connection, above: int) -> int:
    """The rows a correction just recorded (``address_id`` above ``above``) located with the
    newest lookup version, as its re-location would have: a row that keeps an address
    recorded under an older lookup counts where the newest one puts it. Returns the rows."""
    version = newest_version(conn)
    if version is None:
        return 0
    sql = text(_LOCATE.format(which=_NEW_ROWS))
    return max(conn.execute(sql, {"version": version.version_id, "above": above}).rowcount, 0)


def add_lookup_version(
    conn: Connection,
    reader: PostcodeLookupReader,
    *,
    sha256: str,
    postcodes: int,
    run_id: int,
    previous: PreviousLookup | None,
) -> tuple[LookupVersion, Relocation]:
    """Record the lookup just loaded as the newest version and re-locate the history with it.

    ``previous`` is what ``remember_locations`` said before the load replaced the lookup.
    """
    version = record_version(
        conn,
        sha256=sha256,
        source=reader.label,
        names=(reader.label, reader.path.name, reader.members.data),
        postcodes=postcodes,
        run_id=run_id,
    )
    relocation = relocate(conn, version.version_id, previous)
    conn.execute(
        text("UPDATE lookup_version SET relocation_complete = true WHERE version_id = :v"),
        {"v": version.version_id},
    )
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
