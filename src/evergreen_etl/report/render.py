"""Render any report (an :class:`Analysis`) as a table for people, or CSV / JSON for machines."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from evergreen_etl.report.boundaries import basis_note
from evergreen_etl.report.disclosure import SUPPRESSED
from evergreen_etl.report.results import Analysis
from evergreen_etl.safe_text import csv_writer, terminal_text

ReportFormat = Literal["table", "csv", "json"]
_LABELS = {
    "local_authority_code": "Code",
    "local_authority_name": "Local authority",
    "region_code": "Code",
    "region_name": "Region",
    "country_code": "Code",
    "country_name": "Country",
    "age_band": "Age band",
    "run_id": "Run",
    "as_of": "As of (UTC)",
    "new_users": "New",
    "returned_users": "Returned",
    "moved_users": "Moved",
    "left_users": "Left",
    "users_in_snapshot": "Users in snapshot",
    "location_status": "Location status",
    "quasi_identifiers": "Quasi-identifiers",
}

__all__ = [
    "SUPPRESSED",
    "ReportFormat",
    "column_label",
    "format_value",
    "render",
    "render_analysis",
    "render_list",
    "text_table",
]


def text_table(
    title: str,
    columns: Sequence[tuple[str, bool]],
    rows: Iterable[Sequence[str]],
    *,
    footer: Sequence[str] | None = None,
    note: str | None = None,
    caption: str | None = None,
) -> str:
    """A plain-text table: the title (and a caption), a header, a rule, the rows, and a
    totals line.

    ``columns`` are ``(label, right_aligned)`` pairs. Cells are never wrapped or cut, so the
    text greps and diffs well however wide it is; written without a terminal library, it
    renders a national report's few hundred rows in a millisecond. Control characters are
    taken out of every cell, the title and the note: the text is meant for a terminal.
    """
    title = terminal_text(title)
    note = terminal_text(note) if note else note
    body = [[terminal_text(cell) for cell in row] for row in rows]
    labels = [label for label, _ in columns]
    lines = [labels, *body, *([list(footer)] if footer is not None else [])]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, (_, right) in zip(cells, widths, columns, strict=True)
        )
        return " │ ".join(padded).rstrip()

    rule = "─┼─".join("─" * width for width in widths)
    out = [title, *([caption] if caption else []), "", line(labels), rule]
    out += [line(cells) for cells in body]
    if footer is not None:
        out += [rule, line(footer)]
    if note:
        out += ["", note]
    return "\n".join(out) + "\n"


def column_label(name: str) -> str:
    """A column's heading for people: ``local_authority_name`` -> ``Local authority``."""
    return _LABELS.get(name) or name.replace("_", " ").capitalize()


def format_value(value: object) -> str:
    """A non-count value for people: times in UTC, booleans as yes/no, None as blank."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    return str(value)


def _json_rows(result: Analysis[Any]) -> list[dict[str, Any]]:
    rows = []
    for row in result.rows:
        item = row.model_dump(mode="json", exclude={"suppressed"})
        if row.suppressed:
            item["suppressed"] = True  # the suppressed counts are the null ones
        rows.append(item)
    return rows


def render(result: Analysis[Any], fmt: ReportFormat) -> str:
    """Any report as text in ``fmt``: JSON is a list of objects keyed by its columns.

    The one renderer: the headline that ``run`` and ``demo`` print, every analysis of
    ``report`` and the risk report are drawn here. A suppressed count is ``null`` in JSON
    (with ``"suppressed": true`` on its row) and ``suppressed`` in CSV and the table.
    """
    if fmt == "json":
        return json.dumps(_json_rows(result), indent=2, ensure_ascii=False) + "\n"
    counts = set(result.counts)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv_writer(out)
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow(
                SUPPRESSED if name in row.suppressed else _csv_value(getattr(row, name))
                for name in result.columns
            )
        return out.getvalue()
    # "Total" goes under the last label column before the first count (the name, not the code).
    first_count = next((i for i, c in enumerate(result.columns) if c in counts), 0)
    total_label = max(first_count - 1, 0)
    footer: list[str] = []
    for i, name in enumerate(result.columns):
        if name in result.totals:
            total = result.totals[name]
            footer.append(SUPPRESSED if total is None else f"{total:,}")
        else:
            footer.append("Total" if i == total_label else "")
    return text_table(
        result.title,
        [(column_label(name), name in counts) for name in result.columns],
        (_table_cells(row, result.columns, counts) for row in result.rows),
        footer=footer if result.totals else None,
        note=result.note,
        caption=basis_note(result.basis) if result.basis is not None else None,
    )


# The name the analyses were first rendered by; the same function.
render_analysis = render


def _table_cells(row: Any, columns: Iterable[str], counts: set[str]) -> list[str]:
    cells = []
    for name in columns:
        value = getattr(row, name)
        if name in row.suppressed:
            cells.append(SUPPRESSED)
        elif name in counts and value is not None:
            cells.append(f"{value:,}")
        else:
            cells.append(format_value(value))
    return cells


def _csv_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def render_list(reports: Mapping[str, str]) -> str:
    """``report --list``: one line per report, its name then what it answers."""
    width = max(len(name) for name in reports)
    return "".join(f"{name:<{width}}  {summary}\n" for name, summary in reports.items())
