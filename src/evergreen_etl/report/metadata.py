"""``report --with-metadata``: a report's rows together with how they were made.

With ``--format json`` the rows go inside an envelope that says how they were made (as-of,
disclosure rule, boundary basis, lookup version, when, by which version); plain ``--format
json`` stays the list of rows. With ``--format csv`` the file keeps one header line and one
line per row, so spreadsheets and pandas read it as before, with the boundary basis and the
lookup version as extra columns repeated on every row.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evergreen_etl.report.boundaries import basis_metadata
from evergreen_etl.report.render import render
from evergreen_etl.report.results import Analysis, Boundaries
from evergreen_etl.times import UtcDateTime

__all__ = ["ReportEnvelope", "envelope", "json_rows", "render_csv_with_metadata"]


class ReportEnvelope(BaseModel):
    """A report's rows with the facts a reader needs to trust and compare them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    report: str
    title: str
    as_of: UtcDateTime
    from_time: UtcDateTime | None = None
    rule: str = Field(description="The disclosure rule applied to the counts")
    min_count: int | None = None
    note: str | None = None
    boundary_basis: Boundaries | None = Field(
        description="lookup, recorded or current (README, 'Boundaries and lookup versions'); "
        "None for reports not by place"
    )
    lookup_version: int | None = Field(
        None, description="The postcode lookup version the figures are on (`lookup list`)"
    )
    lookup_published: str | None = Field(None, description="YYYY-MM that lookup was published")
    users_not_relocatable: int | None = Field(
        None, description="Users kept at their recorded authority (no full postcode stored)"
    )
    users_approximate_mapping: int | None = Field(
        None, description="current basis: users mapped to today's code approximately"
    )
    generated_at: UtcDateTime
    package_version: str
    totals: dict[str, int | None]
    rows: list[dict[str, Any]]


def envelope(result: Analysis[Any]) -> ReportEnvelope:
    """The envelope around ``result``; its rows exactly as plain ``--format json`` prints them."""
    from evergreen_etl import __version__

    basis = basis_metadata(result.basis)
    return ReportEnvelope(
        report=result.name,
        title=result.title,
        as_of=result.as_of,
        from_time=result.from_time,
        rule=result.disclosure,
        min_count=result.min_count,
        note=result.note,
        boundary_basis=result.boundaries,
        lookup_version=basis.get("lookup_version"),
        lookup_published=basis.get("lookup_published"),
        users_not_relocatable=basis.get("users_not_relocatable"),
        users_approximate_mapping=basis.get("users_approximate_mapping"),
        generated_at=datetime.now(UTC),
        package_version=__version__,
        totals=result.totals,
        rows=json_rows(result),
    )


def json_rows(result: Analysis[Any]) -> list[dict[str, Any]]:
    """The rows exactly as plain ``--format json`` prints them."""
    rows: list[dict[str, Any]] = json.loads(render(result, "json"))
    return rows


def render_with_metadata(result: Analysis[Any]) -> str:
    """The envelope as indented JSON with a final newline."""
    return envelope(result).model_dump_json(indent=2) + "\n"


def render_csv_with_metadata(result: Analysis[Any]) -> str:
    """The CSV of ``result`` with its boundary basis and lookup version as extra columns."""
    extra = basis_metadata(result.basis) or {"boundaries": None}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for number, row in enumerate(csv.reader(io.StringIO(render(result, "csv")))):
        values = ["" if value is None else str(value) for value in extra.values()]
        writer.writerow(row + (list(extra) if number == 0 else values))
    return out.getvalue()
