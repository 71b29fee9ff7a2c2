"""Location precision cannot change silently: what the warehouse holds, and coarsening it.

A load at a finer precision than the warehouse holds would mix precisions (and cannot bring
back what was dropped): refused. A load at a coarser precision is refused too, unless asked
to ``coarsen``: every stored postcode is then rewritten to the coarser form, in the load's
transaction, so the warehouse holds one precision throughout.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, text

from evergreen_etl.errors import WarehouseError
from evergreen_etl.postcodes import LocationPrecision
from evergreen_etl.warehouse.schema import etl_run

__all__ = ["ORDER", "check_precision", "held_precision"]

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


def held_precision(conn: Connection) -> LocationPrecision | None:
    """The finest precision the warehouse's postcodes are stored at (None: nothing loaded).

    That is the finest precision of the loads since (and including) the last one that
    coarsened the warehouse.
    """
    finest: LocationPrecision | None = None
    query = (
        select(etl_run.c.details)
        .where(etl_run.c.status == "succeeded")
        .order_by(etl_run.c.run_id.desc())
    )
    for (details,) in conn.execute(query):
        precision = _precision_of(details)
        if finest is None or ORDER.index(precision) < ORDER.index(finest):
            finest = precision
        if isinstance(details, dict) and details.get("coarsened"):
            break
    return finest


def check_precision(conn: Connection, wanted: LocationPrecision, *, coarsen: bool) -> bool:
    """Refuse a load at another precision than the warehouse holds; coarsen when asked.

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
    conn.execute(text(f"UPDATE user_address SET {_COARSEN[wanted]} WHERE postcode IS NOT NULL"))
    return True
