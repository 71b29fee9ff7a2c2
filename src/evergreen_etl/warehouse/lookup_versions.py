"""Every postcode lookup loaded, recorded as a version; the local-authority code history.

A lookup version is what one load brought: the file's checksum, where it came from, the month
ONS published it (read from the file name, e.g. ``NSPL_NOV_2025``, else the newest introduction
date in the data), its number of postcodes and when it was loaded. ``dim_postcode`` holds the
newest version; ``address_relocation`` holds, per version, the address periods that version
locates elsewhere than they were recorded (see ``relocate.py``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, DateTime, TextClause, bindparam, text

from evergreen_etl.times import utc_now

__all__ = [
    "LookupVersion",
    "Mapping",
    "list_versions",
    "newest_version",
    "publication_month",
    "record_version",
    "successions",
]

Mapping = Literal["exact", "approximate"]

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_NAMES = (
    "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    "|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
# A month (abbreviated or in full) next to a four-digit year: NSPL_NOV_2025, nspl-may-2024.csv,
# ONSPD_February_2026_UK. No letter or digit may run into either end.
_MONTH_YEAR = re.compile(rf"(?<![a-z])({_MONTH_NAMES})[ _\-.]?((?:19|20)\d\d)(?!\d)", re.IGNORECASE)


class LookupVersion(BaseModel):
    """One loaded postcode lookup (no personal data)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version_id: int = Field(description="1 for the first lookup loaded, then 2, 3, ...")
    sha256: str
    source: str = Field(description="URL or file it was loaded from (no credentials)")
    published: str | None = Field(description="YYYY-MM: the month ONS published it")
    published_from: Literal["name", "data"] = Field(
        description="name: read from the file name; data: the newest introduction date in it"
    )
    postcodes: int = Field(description="Rows of the lookup loaded")
    loaded_at: datetime
    run_id: int | None = Field(description="The load that brought it")

    @property
    def label(self) -> str:
        """``lookup version 2 (2025-11)``: how captions name it."""
        month = f" ({self.published})" if self.published else ""
        return f"lookup version {self.version_id}{month}"


def publication_month(names: Iterable[str]) -> str | None:
    """The ``YYYY-MM`` that the first of ``names`` saying a month and year says, else None."""
    for name in names:
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        match = _MONTH_YEAR.search(base)
        if match:
            month = _MONTHS.index(match[1].lower()[:3]) + 1
            return f"{match[2]}-{month:02d}"
    return None


def safe_source(label: str) -> str:
    """A source label fit to keep: a URL without user name, password, query or fragment."""
    parts = urlsplit(label)
    if not parts.scheme or not parts.netloc:
        return label[:512]
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))[:512]


def record_version(
    conn: Connection,
    *,
    sha256: str,
    source: str,
    names: Iterable[str],
    postcodes: int,
    run_id: int | None,
) -> LookupVersion:
    """Record the lookup just loaded into ``dim_postcode`` as the newest version."""
    published = publication_month(names)
    published_from: Literal["name", "data"] = "name"
    if published is None:
        published_from = "data"
        newest = conn.execute(text("SELECT MAX(introduced) FROM dim_postcode")).scalar()
        if newest and len(newest) == 6 and newest.isdigit():
            published = f"{newest[:4]}-{newest[4:]}"
    row = {
        "sha256": sha256,
        "source": safe_source(source),
        "published": published,
        "published_from": published_from,
        "postcodes": postcodes,
        "loaded_at": utc_now(),
        "run_id": run_id,
    }
    from evergreen_etl.warehouse.schema import lookup_version

    version_id = conn.execute(
        lookup_version.insert().values(**row).returning(lookup_version.c.version_id)
    ).scalar_one()
    return LookupVersion(version_id=version_id, **row)


# Plain SQL, not the table of warehouse/schema.py: a report reads the newest version, and
# building the schema's tables would add a tenth to its start-up.
_SELECT = f"SELECT {', '.join(LookupVersion.model_fields)} FROM lookup_version"


def _versions(conn: Connection, query: TextClause, bound: dict[str, Any]) -> list[LookupVersion]:
    rows = conn.execute(query.columns(loaded_at=DateTime()), bound).mappings()
    return [LookupVersion.model_validate(dict(row)) for row in rows]


def list_versions(conn: Connection) -> list[LookupVersion]:
    """Every lookup version, oldest first."""
    return _versions(conn, text(f"{_SELECT} ORDER BY version_id"), {})


def newest_version(
    conn: Connection, *, known_at: datetime | None = None, by_run: int | None = None
) -> LookupVersion | None:
    """The newest lookup version (None: none yet); or the newest loaded by ``known_at``, or
    by the load ``by_run`` and those before it: the warehouse's lookup as known then."""
    conditions: list[str] = []
    bound: dict[str, Any] = {}
    if known_at is not None:
        conditions.append("loaded_at <= :t")
        bound["t"] = known_at
    if by_run is not None:
        conditions.append("run_id <= :r")
        bound["r"] = by_run
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    query = text(f"{_SELECT}{where} ORDER BY version_id DESC LIMIT 1")
    if known_at is not None:
        query = query.bindparams(bindparam("t", type_=DateTime()))
    versions = _versions(conn, query, bound)
    return versions[0] if versions else None


@cache
def successions() -> dict[str, tuple[str, Mapping]]:
    """Each retired authority code -> the authority that holds its area today, and how.

    The shipped ``la_successors.csv`` gives one step per row (Taunton Deane -> Somerset West
    and Taunton); the chain is followed to a code still in use (-> Somerset). A chain is
    ``approximate`` when any step of it is (a recode with a boundary change), else ``exact``.
    """
    resource = files("evergreen_etl") / "reference" / "la_successors.csv"
    step: dict[str, tuple[str, Mapping]] = {}
    with io.StringIO(resource.read_text(encoding="utf-8")) as handle:
        for row in csv.DictReader(handle):
            mapping: Mapping = "approximate" if row["mapping"] == "approximate" else "exact"
            step[row["code"]] = (row["successor_code"], mapping)
    chains: dict[str, tuple[str, Mapping]] = {}
    for code in step:
        current, mapping, seen = code, "exact", {code}
        while current in step:
            current, how = step[current]
            if current in seen:
                raise ValueError(f"la_successors.csv: the successors of {code} loop")
            seen.add(current)
            mapping = "approximate" if how == "approximate" else mapping
        chains[code] = (current, mapping)
    return chains
