"""Load the postcode lookup and the local-authority dimension (set-based, bulk)."""

from __future__ import annotations

import csv
import io
import logging
from importlib.resources import files
from itertools import chain

from sqlalchemy import Connection, text

from evergreen_etl.progress import Progress
from evergreen_etl.sources.nspl import PostcodeLookupReader
from evergreen_etl.warehouse.dialect import backend_for, bulk_insert_batches, bulk_work
from evergreen_etl.warehouse.lookup_versions import successions
from evergreen_etl.warehouse.schema import UNKNOWN_AUTHORITY

log = logging.getLogger("evergreen_etl.load")

POSTCODE_COLUMNS = (
    "postcode",
    "outward",
    "local_authority_code",
    "country_code",
    "region_code",
    "latitude",
    "longitude",
    "introduced",
    "terminated",
)
_AUTHORITY_COLUMNS = (
    "code",
    "name",
    "region_code",
    "region_name",
    "country_code",
    "country_name",
    "current_code",
    "is_current",
    "current_mapping",
)


def shipped_authorities() -> dict[str, dict[str, object]]:
    """Every district code since 2011 from the ONS table shipped with the package (OGL v3).

    A retired code's ``current_code`` is the end of its chain of successors (la_successors.csv),
    and ``current_mapping`` says whether that chain is exact or approximate.
    """
    chains = successions()
    resource = files("evergreen_etl") / "reference" / "local_authorities.csv"
    rows: dict[str, dict[str, object]] = {}
    with io.StringIO(resource.read_text(encoding="utf-8")) as handle:
        for row in csv.DictReader(handle):
            current, mapping = chains.get(row["LADCD"], (row["LADCD_ACTIVE"] or row["LADCD"], None))
            rows[row["LADCD"]] = {
                "code": row["LADCD"],
                "name": row["LADNM"],
                "region_code": row["RGNCD"] or None,
                "region_name": row["RGNNM"] or None,
                "country_code": row["CTRYCD"] or None,
                "country_name": row["CTRYNM"] or None,
                "current_code": current,
                "is_current": row["Current"].upper() == "TRUE",
                "current_mapping": mapping,
            }
    return rows


def load_postcodes(conn: Connection, reader: PostcodeLookupReader, *, progress: bool) -> int:
    """Replace the postcode dimension with the lookup's rows; recompute districts and names."""
    backend = backend_for(conn)
    with bulk_work(conn):
        backend.empty_table(conn, "dim_postcode")
        # The rows go in file order: NSPL is sorted by postcode, so the primary key index
        # grows at its right-hand edge instead of being rewritten all over.
        # A national lookup is parsed in a worker process while this one inserts; the first
        # batch is asked for before the progress bar starts its thread, so that the worker
        # is forked (at once) rather than spawned (a new interpreter).
        batches = reader.batches()
        first = next(batches, None)
        total = reader.estimated_rows() if progress else None
        with Progress(
            "postcodes", unit="rows (total estimated)", total=total, enabled=progress
        ) as bar:
            count = bulk_insert_batches(
                conn,
                "dim_postcode",
                POSTCODE_COLUMNS,
                chain([first] if first is not None else [], batches),
                on_batch=bar.advance,
                binary=True,
                freeze=True,  # emptied above, in this transaction
            )
        log.info("loaded %d postcodes", count)
        # Fresh statistics (PostgreSQL): the planner then aggregates the districts below in
        # memory (it took the 2.7 million new rows for a few thousand and sorted them on
        # disk), and the merge joins the right number of postcodes.
        backend.analyze(conn, "dim_postcode")
        _load_authorities(conn, reader.authority_names())
        _load_districts(conn)
    return count


def _load_districts(conn: Connection) -> None:
    """Recompute where each outward code alone can be located (README, "The warehouse")."""
    conn.execute(text("DELETE FROM dim_postcode_district"))
    conn.execute(
        text(
            """
            INSERT INTO dim_postcode_district
                (outward, local_authority_code, live_postcodes, authorities)
            SELECT outward,
                   -- one group, and not the NULL one: every live postcode in one authority
                   CASE WHEN COUNT(*) = 1 AND COUNT(authority) = 1 THEN MIN(authority) END,
                   SUM(postcodes),
                   COUNT(authority)
            FROM (
                -- (district, authority) pairs first: no COUNT(DISTINCT) over 2.7M rows
                SELECT outward, local_authority_code AS authority, COUNT(*) AS postcodes
                FROM dim_postcode
                WHERE terminated IS NULL
                GROUP BY outward, local_authority_code
            ) AS pairs
            GROUP BY outward
            """
        )
    )


def _load_authorities(conn: Connection, zip_names: dict[str, str]) -> None:
    """Upsert the authority dimension: shipped table, names from the zip, codes seen only in it."""
    wanted = shipped_authorities()
    seen = conn.execute(
        text(
            "SELECT DISTINCT local_authority_code FROM dim_postcode"
            " WHERE local_authority_code IS NOT NULL"
        )
    ).scalars()
    for code in seen:
        if code not in wanted:
            log.warning("local authority %s is not in the shipped table: named by its code", code)
            wanted[code] = {
                "code": code,
                "name": code,
                "region_code": None,
                "region_name": None,
                "country_code": None,
                "country_name": None,
                "current_code": code,
                "is_current": True,
                "current_mapping": None,
            }
    for code, name in zip_names.items():
        if code in wanted and name:
            wanted[code]["name"] = name
    existing = set(conn.execute(text("SELECT code FROM dim_local_authority")).scalars())
    wanted.pop(UNKNOWN_AUTHORITY, None)
    inserts = [row for code, row in wanted.items() if code not in existing]
    updates = [row for code, row in wanted.items() if code in existing]
    columns = ", ".join(_AUTHORITY_COLUMNS)
    values = ", ".join(f":{c}" for c in _AUTHORITY_COLUMNS)
    if inserts:
        conn.execute(
            text(f"INSERT INTO dim_local_authority ({columns}) VALUES ({values})"), inserts
        )
    if updates:
        assignments = ", ".join(f"{c} = :{c}" for c in _AUTHORITY_COLUMNS if c != "code")
        conn.execute(
            text(f"UPDATE dim_local_authority SET {assignments} WHERE code = :code"), updates
        )
