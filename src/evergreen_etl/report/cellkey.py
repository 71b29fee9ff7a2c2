"""Reports under the cell key method (``--disclosure ckm``): each count perturbed by the
noise its own set of users calls for (see ``privacy.ckm``).

The reports at one time (by authority, region, country, sex and age band, postcode status)
are perturbed cell by cell, totals as cells of their own. The others (movers, joiners and
leavers, data quality) count events rather than the users of a cell; under ``ckm`` they are
published under the NHS rule, with its complementary suppression.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from evergreen_etl.privacy.ckm import CELL_KEYS, perturb
from evergreen_etl.privacy.disclosure import DisclosureRule, NhsRule
from evergreen_etl.report.catalog import run_sql
from evergreen_etl.report.results import Boundaries
from evergreen_etl.warehouse.lookup_versions import newest_version

AT_TIME = ("local-authority", "region", "country", "sex-age", "postcode-status")
FineCell = Mapping[str, Any]
# The columns that tell the rows of each report apart.
ROW_KEYS: dict[str, tuple[str, ...]] = {
    "local-authority": ("local_authority_code",),
    "region": ("region_code",),
    "country": ("country_code",),
    "sex-age": ("local_authority_code", "sex", "age_band"),
    "postcode-status": ("location_status", "terminated"),
    "movers": ("local_authority_code",),
    "joiners-leavers": ("run_id",),
    "data-quality": ("run_id",),
}


def uses_cell_keys(rule: DisclosureRule, name: str) -> bool:
    """Whether report ``name`` is perturbed by cell keys under ``rule``."""
    return rule.name == "ckm" and name in AT_TIME


def rule_for_report(rule: DisclosureRule, name: str) -> DisclosureRule:
    """The rule report ``name`` is published under: the NHS rule for the reports the cell key
    method does not cover, when ``rule`` is the cell key method."""
    return NhsRule() if rule.name == "ckm" and name not in AT_TIME else rule


def _grouping(
    name: str, boundaries: Boundaries, places: Mapping[str, Mapping[str, Any]]
) -> Callable[[FineCell], tuple[Any, ...]]:
    def place(cell: FineCell, level: str) -> str:
        found = places.get(str(cell["supplied_code"]))
        return str(found[f"{boundaries}_{level}"]) if found else "UNKNOWN"

    groupings: dict[str, Callable[[FineCell], tuple[Any, ...]]] = {
        "local-authority": lambda c: (place(c, "code"),),
        "region": lambda c: (place(c, "region"),),
        "country": lambda c: (place(c, "country"),),
        "sex-age": lambda c: (place(c, "code"), c["sex"], c["age_band"]),
        "postcode-status": lambda c: (c["location_status"], bool(c["terminated"])),
    }
    return groupings[name]


def perturbed(
    engine: Engine,
    name: str,
    rows: list[dict[str, Any]],
    *,
    as_of: datetime,
    boundaries: Boundaries | None,
) -> tuple[list[dict[str, Any]], dict[str, int | None]]:
    """The (prepared) rows of report ``name`` with each count perturbed, and its total."""
    with engine.connect() as conn:
        version = newest_version(conn)
    # Every period where the newest lookup puts it, but on the recorded basis.
    relocated = version is not None and boundaries != "recorded"
    parameters = {"as_of": as_of, "as_of_year": as_of.year}
    parameters["lookup_version"] = version.version_id if version and relocated else None
    fine = run_sql(engine, "cell_keys", parameters)
    places = {str(p["supplied_code"]): p for p in run_sql(engine, "authority_hierarchy", {})}
    group = _grouping(name, "current" if boundaries == "current" else "supplied", places)
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    keys: dict[tuple[Any, ...], int] = defaultdict(int)
    for cell in fine:
        counts[group(cell)] += int(cell["users"])
        keys[group(cell)] += int(cell["key_sum"])
    out = []
    for row in rows:
        key = tuple(row[c] for c in ROW_KEYS[name])
        if counts.get(key) != int(row["users"]):
            raise RuntimeError(f"cell keys of {name} do not match its counts at {key}")
        out.append({**row, "users": perturb(counts[key], keys[key] % CELL_KEYS)})
    total = sum(int(c["users"]) for c in fine)
    total_key = sum(int(c["key_sum"]) for c in fine) % CELL_KEYS
    return out, {"users": perturb(total, total_key)}
