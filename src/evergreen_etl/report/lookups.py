"""``evergreen-etl lookup list``: every postcode lookup version the warehouse has loaded."""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import Engine

from evergreen_etl.report.render import ReportFormat, format_value, text_table
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.engine import open_warehouse
from evergreen_etl.warehouse.lookup_versions import LookupVersion, list_versions

__all__ = ["lookup_versions", "render_lookup_versions"]

_COLUMNS = (
    ("version_id", "Version", True),
    ("published", "Published", False),
    ("published_from", "From", False),
    ("postcodes", "Postcodes", True),
    ("loaded_at", "Loaded at (UTC)", False),
    ("run_id", "Run", True),
    ("sha256", "SHA-256", False),
    ("source", "Source", False),
)


def lookup_versions(settings: Settings, *, engine: Engine | None = None) -> list[LookupVersion]:
    """Every lookup version loaded into the warehouse, oldest first (the newest is in use)."""
    with open_warehouse(settings, engine) as eng, eng.connect() as conn:
        return list_versions(conn)


def render_lookup_versions(versions: list[LookupVersion], fmt: ReportFormat) -> str:
    """The versions as a table, CSV or JSON (a list of objects)."""
    if fmt == "json":
        rows = [version.model_dump(mode="json") for version in versions]
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(name for name, _, _ in _COLUMNS)
        for version in versions:
            dumped = version.model_dump(mode="json")
            writer.writerow(dumped[name] for name, _, _ in _COLUMNS)
        return out.getvalue()
    return text_table(
        "Postcode lookup versions (the newest is in use)",
        [(label, right) for _, label, right in _COLUMNS],
        (
            [
                f"{value:,}" if name == "postcodes" else format_value(value)
                for name, _, _ in _COLUMNS
                for value in (getattr(version, name),)
            ]
            for version in versions
        ),
        note=None if versions else "No lookup loaded yet.",
    )
