"""What a load did (or, for a dry run, would do) to the users, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json

from evergreen_etl.models import LoadResult
from evergreen_etl.report.render import ReportFormat, text_table

# The counts of a merge, in order. A count this build does not compute (relocation by a new
# lookup, late snapshots replayed) reads as zero.
CHANGES = ("new", "returned", "moved", "left", "unchanged", "relocated", "replayed")
COLUMNS = ("change", "users")


def load_counts(result: LoadResult) -> list[tuple[str, int]]:
    """``(change, users)`` for every change in ``CHANGES``."""
    values = result.model_dump()
    return [(change, int(values.get(change) or 0)) for change in CHANGES]


def render_load_counts(result: LoadResult, fmt: ReportFormat) -> str:
    """The counts in ``fmt``: JSON is a list of objects keyed by ``COLUMNS``, as reports are."""
    rows = load_counts(result)
    if fmt == "json":
        return json.dumps([dict(zip(COLUMNS, row, strict=True)) for row in rows], indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        return out.getvalue()
    what = "Dry run" if result.dry_run else "Load"
    title = f"{what}: the snapshot as of {result.as_of:%Y-%m-%d %H:%M:%S} UTC"
    if result.skipped:
        note = "This snapshot is already loaded: nothing to merge."
    elif result.dry_run:
        note = "Nothing was changed: the load was rolled back."
    else:
        note = None
    return text_table(
        title,
        [("Change", False), ("Users", True)],
        [(change, f"{users:,}") for change, users in rows],
        note=note,
    )
