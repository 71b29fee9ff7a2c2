"""Location precision cannot change silently: what the warehouse holds, and coarsening it.

A load at a finer precision than the warehouse holds would mix precisions (and cannot bring
back what was dropped): refused. A load at a coarser precision is refused too, unless asked
to ``coarsen``: every stored postcode is then rewritten to the coarser form, in the load's
transaction, so the warehouse holds one precision throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Connection, text

from evergreen_etl.errors import WarehouseError
from evergreen_etl.postcodes import LocationPrecision
from evergreen_etl.warehouse.dialect import backend_for, bulk_insert

__all__ = ["ORDER", "check_precision", "ever_coarser", "held_precision"]

# Finest first.
ORDER = (
    LocationPrecision.POSTCODE,
    LocationPrecision.SECTOR,
    LocationPrecision.DISTRICT,
    LocationPrecision.AUTHORITY,
)

# What each coarser precision keeps of a stored postcode (full, or already coarsened; an
# outward code alone is a district already), and of its district.
_COARSEN: dict[LocationPrecision, str] = {
    LocationPrecision.SECTOR: (
        "postcode = CASE WHEN postcode_kind = 'full' AND postcode LIKE '% ___' "
        "THEN substr(postcode, 1, length(postcode) - 2) ELSE postcode END"
    ),
    LocationPrecision.DISTRICT: (
        "postcode = CASE WHEN postcode_kind = 'full' THEN postcode_district ELSE postcode END"
    ),
    LocationPrecision.AUTHORITY: "postcode = NULL, postcode_district = NULL",
}


def _precision_of(details: Any) -> LocationPrecision:
    # Loads from before precision was recorded kept full postcodes.
    value = details.get("location_precision") if isinstance(details, dict) else None
    return LocationPrecision(value or LocationPrecision.POSTCODE)


def _succeeded_details(conn: Connection, order: str = "") -> list[Any]:
    """The ``details`` of every succeeded load (plain SQL: a report needs no schema tables)."""
    query = text(f"SELECT details FROM etl_run WHERE status = 'succeeded'{order}")
    return list(conn.execute(query.columns(details=JSON())).scalars())


def held_precision(conn: Connection) -> LocationPrecision | None:
    """The finest precision the warehouse's postcodes are stored at (None: nothing loaded).

    That is the finest precision of the loads since (and including) the last one that
    coarsened the warehouse.
    """
    finest: LocationPrecision | None = None
    for details in _succeeded_details(conn, " ORDER BY run_id DESC"):
        precision = _precision_of(details)
        if finest is None or ORDER.index(precision) < ORDER.index(finest):
            finest = precision
        if isinstance(details, dict) and details.get("coarsened"):
            break
    return finest


# Current rows loaded before postcode tokens existed (migration 0004) are compared with the
# snapshot by their full postcode; coarsened, they would all look moved. They get the token of
# the postcode they hold first.
_UNTOKENED = (
    "FROM user_address WHERE is_current AND postcode_token IS NULL "
    "AND postcode_kind = 'full' AND postcode LIKE '% ___'"
)
_SET_TOKENS = f"""
UPDATE user_address SET postcode_token =
    (SELECT t.token FROM stg_postcode_token AS t WHERE t.postcode = user_address.postcode)
WHERE address_id IN (SELECT address_id {_UNTOKENED})
"""
Tokeniser = Callable[[str], str]


def _token_old_rows(conn: Connection, tokeniser: Callable[[], Tokeniser]) -> None:
    postcodes = conn.execute(text(f"SELECT DISTINCT postcode {_UNTOKENED}")).scalars().all()
    if not postcodes:
        return
    token = tokeniser()
    backend_for(conn).create_temp_table(
        conn, "stg_postcode_token", "postcode VARCHAR(8) PRIMARY KEY, token VARCHAR(32)"
    )
    bulk_insert(
        conn, "stg_postcode_token", ("postcode", "token"), ((pc, token(pc)) for pc in postcodes)
    )
    conn.execute(text(_SET_TOKENS))
    conn.execute(text("DROP TABLE stg_postcode_token"))


def ever_coarser(conn: Connection) -> bool:
    """Whether any load stored postcodes at a precision coarser than the full postcode."""
    return any(
        _precision_of(details) != LocationPrecision.POSTCODE for details in _succeeded_details(conn)
    )


def check_precision(
    conn: Connection,
    wanted: LocationPrecision,
    *,
    coarsen: bool,
    tokeniser: Callable[[], Tokeniser] | None = None,
) -> bool:
    """Refuse a load at another precision than the warehouse holds; coarsen when asked.

    ``tokeniser`` gives the postcode tokeniser of the warehouse's key, asked for only when
    current rows older than tokens must be given one before their postcode is coarsened.
    Returns True when the stored postcodes were rewritten to ``wanted``.
    """
    held = held_precision(conn)
    if held is None or held == wanted:
        return False
    if ORDER.index(wanted) < ORDER.index(held):
        raise WarehouseError(
            f"the warehouse holds postcodes at {held.value} precision; a load at the finer "
            f"{wanted.value} precision cannot bring back what was dropped (nothing was loaded)"
        )
    if not coarsen:
        raise WarehouseError(
            f"the warehouse holds postcodes at {held.value} precision; loading at "
            f"{wanted.value} precision would mix the two (nothing was loaded)",
            hint="add --coarsen to rewrite every stored postcode at the coarser precision",
        )
    if tokeniser is not None:
        _token_old_rows(conn, tokeniser)
    conn.execute(text(f"UPDATE user_address SET {_COARSEN[wanted]} WHERE postcode IS NOT NULL"))
    return True
