"""``report --with-metadata``: a report's rows together with how they were made.

JSON becomes an envelope, ``{"metadata": {...}, "rows": [...]}`` (plain ``--format json``
stays a list of rows). CSV keeps one header line and one line per row, so spreadsheets and
pandas read it as before, with the metadata as extra columns repeated on every row. The
table already states everything in its title and note.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from evergreen_etl.report.boundaries import basis_metadata
from evergreen_etl.report.render import ReportFormat, render
from evergreen_etl.report.results import Analysis

__all__ = ["metadata", "render_with_metadata"]


def metadata(result: Analysis[Any]) -> dict[str, Any]:
    """What a reader needs to know about ``result``: report, time, disclosure, boundaries."""
    return {
        "report": result.name,
        "title": result.title,
        "as_of": result.as_of.isoformat(),
        "from_time": result.from_time.isoformat() if result.from_time else None,
        "disclosure": result.disclosure,
        "min_count": result.min_count,
        **basis_metadata(result.basis),
    }


def render_with_metadata(result: Analysis[Any], fmt: ReportFormat) -> str:
    """``result`` in ``fmt`` with its :func:`metadata`."""
    if fmt == "json":
        document = {"metadata": metadata(result), "rows": json.loads(render(result, "json"))}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        extra = {k: v for k, v in metadata(result).items() if k not in ("title",)}
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for number, row in enumerate(csv.reader(io.StringIO(render(result, "csv")))):
            writer.writerow(row + (list(extra) if number == 0 else _cells(extra.values())))
        return out.getvalue()
    return render(result, fmt)


def _cells(values: Any) -> list[str]:
    return ["" if value is None else str(value) for value in values]
