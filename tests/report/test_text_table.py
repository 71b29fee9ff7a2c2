"""The plain-text table of ``report``: aligned columns, a totals line, nothing cut or wrapped."""

from __future__ import annotations

from datetime import datetime

from evergreen_etl.privacy.disclosure import MinCount
from evergreen_etl.report.catalog import HEADLINE, REPORTS, published
from evergreen_etl.report.render import render, text_table

LONG_NAME = "Unknown (no, invalid or unmatched postcode) and a name much longer than any other"


def test_columns_are_aligned_left_or_right_with_a_rule_and_totals() -> None:
    """Labels and cells pad to the widest cell; counts align right, text left."""
    text = text_table(
        "Title",
        [("Code", False), ("Name", False), ("Users", True)],
        [("E1", "Alpha", "7"), ("E10", "Be", "1,234")],
        footer=("", "Total", "1,241"),
    )

    assert text.splitlines() == [
        "Title",
        "",
        "Code │ Name  │ Users",
        "─────┼───────┼──────",
        "E1   │ Alpha │     7",
        "E10  │ Be    │ 1,234",
        "─────┼───────┼──────",
        "     │ Total │ 1,241",
    ]


def test_long_cells_are_never_wrapped_or_cut() -> None:
    """However wide a cell, each row stays one line and the whole value is there."""
    text = text_table("T", [("Code", False), ("Name", False)], [("X", LONG_NAME)])

    row = text.splitlines()[-1]
    assert row == f"X    │ {LONG_NAME}"
    assert len(text.splitlines()) == 5  # title, blank, header, rule and the one row
    assert text.endswith("\n")


def test_no_footer_means_no_totals_line_and_a_note_goes_last() -> None:
    """Without totals the table ends at its last row; a note follows after a blank line."""
    text = text_table("T", [("A", False)], [("x",)], note="Counts below 5 are suppressed.")

    assert text.splitlines()[-3:] == ["x", "", "Counts below 5 are suppressed."]
    assert text.splitlines()[3] == "─"  # one column: a rule without crossings


def test_an_empty_table_still_has_its_header() -> None:
    """No rows: the title, the header and the rule are printed (and the totals when given)."""
    text = text_table("T", [("Code", False), ("Users", True)], [], footer=("Total", "0"))

    assert text.splitlines() == [
        "T",
        "",
        "Code  │ Users",
        "──────┼──────",
        "──────┼──────",
        "Total │     0",
    ]


def test_headline_report_table_shows_suppressed_cells_and_the_total() -> None:
    """The headline table prints each authority, 'suppressed' for hidden counts, and the total."""
    report = published(
        REPORTS[HEADLINE],
        [
            {"local_authority_code": "E1", "local_authority_name": "Alpha", "users": 12},
            {"local_authority_code": "E2", "local_authority_name": "Beta", "users": 3},
        ],
        MinCount(5),
        as_of=datetime(2026, 1, 2, 3, 4, 5),
    )

    lines = render(report, "table").splitlines()

    assert lines[0] == "Distinct users by local authority at 2026-01-02 03:04:05 UTC"
    assert lines[2].split("│") == ["Code ", " Local authority ", "      Users"]
    assert lines[4].split("│") == ["E1   ", " Alpha           ", "         12"]
    assert lines[5].split("│") == ["E2   ", " Beta            ", " suppressed"]
    assert lines[7].split("│") == ["     ", " Total           ", "         15"]
    assert lines[-1] == "Counts below 5 are suppressed."
