"""The boundary basis of a report by authority, and how every output states it.

``lookup`` (the default): every period located with the newest lookup version, a consistent
back series. ``recorded``: each period as located when it was loaded, what was published then.
``current``: the newest lookup, then today's authority codes through the successor table. The
three count the same users, so they reconcile to the same total.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine

from evergreen_etl.models import Boundaries, BoundaryBasis
from evergreen_etl.privacy.disclosure import DisclosureRule
from evergreen_etl.warehouse.lookup_versions import LookupVersion, newest_version
from evergreen_etl.warehouse.precision import ever_coarser

__all__ = [
    "BASES",
    "Basis",
    "basis_metadata",
    "basis_name",
    "basis_note",
    "basis_parameters",
    "basis_short",
    "basis_title",
    "measure_basis",
]

Basis = Literal["lookup", "recorded", "current"]
BASES: tuple[Basis, ...] = ("lookup", "recorded", "current")

_WHAT = {
    "lookup": "every period located with {version}",
    "recorded": "each period as located when it was loaded (newest: {version})",
    "current": "{version}, then today's authority codes",
}


def basis_name(boundaries: Boundaries | None) -> Basis:
    """The basis ``boundaries`` names: ``supplied`` (the old name) and None are ``lookup``."""
    if boundaries is None or boundaries == "supplied":
        return "lookup"
    return boundaries


def basis_parameters(
    conn: Connection,
    basis: Basis,
    *,
    known_at: datetime | None = None,
    by_run: int | None = None,
) -> tuple[dict[str, Any], LookupVersion | None]:
    """The SQL parameters of ``basis`` (``boundaries``, ``lookup_version``) and the version.

    The version is the newest lookup, or the newest loaded by ``known_at`` or by the load
    ``by_run`` (to read the warehouse as it was known then: the lookup basis then gives
    exactly the figures published at that time). On the recorded basis no period is
    re-located.
    """
    version = newest_version(conn, known_at=known_at, by_run=by_run)
    relocated_by = version.version_id if version is not None and basis != "recorded" else None
    return {"boundaries": basis, "lookup_version": relocated_by}, version


def measure_basis(
    engine: Engine,
    basis: Basis,
    version: LookupVersion | None,
    parameters: dict[str, Any],
    rule: DisclosureRule,
    *,
    counts: str = "located_counts",
) -> BoundaryBasis:
    """The basis of a report at ``parameters['as_of']``, with its counts under ``rule``
    (``counts``: from the history or the facts, as the report's own, see ``run_sql``)."""
    from evergreen_etl.report.catalog import run_sql

    approximate = 0
    if basis == "current":
        (row,) = run_sql(engine, "boundary_basis", parameters, counts=counts)
        approximate = int(row["approximate"])
    # At full-postcode precision every period can be located again: no scan needed.
    not_relocatable = 0
    with engine.connect() as conn:
        coarser = ever_coarser(conn)
    if coarser:
        (row,) = run_sql(engine, "unrelocatable_users", parameters)
        not_relocatable = int(row["users"])

    def published(count: int) -> int | None:
        return 0 if not count else rule.publish(count)

    return BoundaryBasis(
        basis=basis,
        lookup_version=version.version_id if version is not None else None,
        lookup_published=version.published if version is not None else None,
        not_relocatable=published(not_relocatable),
        approximate=published(approximate) if basis == "current" else None,
    )


def _version_label(basis: BoundaryBasis) -> str:
    if basis.lookup_version is None:
        return "no lookup version"
    month = f" ({basis.lookup_published})" if basis.lookup_published else ""
    return f"lookup version {basis.lookup_version}{month}"


def basis_title(basis: BoundaryBasis) -> str:
    """The short form for titles: ``lookup boundaries, lookup version 2 (2025-11)``."""
    return f"{basis.basis} boundaries, {_version_label(basis)}"


def basis_short(basis: BoundaryBasis) -> str:
    """The shortest form, for a chart's title: ``lookup boundaries, lookup v2 2025-11``."""
    version = f"lookup v{basis.lookup_version}" if basis.lookup_version else "no lookup"
    month = f" {basis.lookup_published}" if basis.lookup_published else ""
    return f"{basis.basis} boundaries, {version}{month}"


def _users(count: int | None) -> str:
    if count is None:
        return "a suppressed number of users"
    return f"{count:,} user" + ("" if count == 1 else "s")


def basis_note(basis: BoundaryBasis) -> str:
    """The sentence every output carries: the basis, the version and what it could not do."""
    what = _WHAT[basis.basis].format(version=_version_label(basis))
    parts = [f"Boundaries: {basis.basis} ({what})."]
    if basis.not_relocatable != 0:
        parts.append(
            f"{_users(basis.not_relocatable)} kept the authority recorded when loaded "
            "(stored without a full postcode)."
        )
    if basis.approximate:
        parts.append(
            f"{_users(basis.approximate)} reached today's code through an approximate mapping "
            "(a recode with a boundary change)."
        )
    return " ".join(parts)


def basis_metadata(basis: BoundaryBasis | None) -> dict[str, Any]:
    """The basis fields of a report's metadata (the JSON envelope, CSV's extra columns)."""
    if basis is None:
        return {}
    return {
        "boundaries": basis.basis,
        "lookup_version": basis.lookup_version,
        "lookup_published": basis.lookup_published,
        "users_not_relocatable": basis.not_relocatable,
        "users_approximate_mapping": basis.approximate,
    }
