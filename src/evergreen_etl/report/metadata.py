"""``report --format json --with-metadata``: the rows inside an envelope that says how they
were made (as-of, disclosure rule, boundary basis, lookup version, when, by which version).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evergreen_etl.report.render import render
from evergreen_etl.report.results import Analysis, Boundaries
from evergreen_etl.times import UtcDateTime


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
        description="supplied (the lookup's codes) or current; None for reports not by place"
    )
    lookup_version: str | None = Field(
        None, description="The postcode lookup's version, once the warehouse records one"
    )
    generated_at: UtcDateTime
    package_version: str
    totals: dict[str, int | None]
    rows: list[dict[str, Any]]


def envelope(result: Analysis[Any], *, lookup_version: str | None = None) -> ReportEnvelope:
    """The envelope around ``result``; its rows exactly as plain ``--format json`` prints them."""
    from evergreen_etl import __version__

    return ReportEnvelope(
        report=result.name,
        title=result.title,
        as_of=result.as_of,
        from_time=result.from_time,
        rule=result.disclosure,
        min_count=result.min_count,
        note=result.note,
        boundary_basis=result.boundaries,
        lookup_version=lookup_version,
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
