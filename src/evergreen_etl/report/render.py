"""Render a report as a table for people, or CSV / JSON for machines."""

from __future__ import annotations

import csv
import io
import json
from typing import Literal

from rich.console import Console
from rich.table import Table

from evergreen_etl.models import Report

ReportFormat = Literal["table", "csv", "json"]
SUPPRESSED = "suppressed"
COLUMNS = ("local_authority_code", "local_authority_name", "users")


def render(report: Report, fmt: ReportFormat) -> str:
    """The report as text in ``fmt``; JSON is a list of objects keyed by COLUMNS."""
    if fmt == "json":
        rows = []
        for row in report.rows:
            item: dict[str, object] = {name: getattr(row, name) for name in COLUMNS}
            if row.suppressed:
                item["suppressed"] = True
            rows.append(item)
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in report.rows:
            users = SUPPRESSED if row.suppressed else row.users
            writer.writerow((row.local_authority_code, row.local_authority_name, users))
        return out.getvalue()
    return _table(report)


def _table(report: Report) -> str:
    title = f"Distinct users by local authority at {report.as_of:%Y-%m-%d %H:%M:%S} UTC"
    table = Table(title=title, show_footer=True)
    table.add_column("Code", footer="")
    table.add_column("Local authority", footer="Total")
    table.add_column("Users", justify="right", footer=f"{report.total:,}")
    for row in report.rows:
        users = SUPPRESSED if row.suppressed else f"{row.users:,}"
        table.add_row(row.local_authority_code, row.local_authority_name, users)
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(table)
    if report.min_count:
        console.print(f"Counts below {report.min_count} are suppressed.")
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()
