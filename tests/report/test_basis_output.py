"""Every output states its boundary basis and lookup version; `lookup list` shows the versions."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evergreen_etl.cli import app
from report.scenario import Warehouse


@pytest.fixture
def runner() -> CliRunner:
    """A CliRunner; result.stdout and result.stderr are captured separately."""
    return CliRunner()


def invoke(runner: CliRunner, warehouse: Warehouse, *extra: str) -> str:
    """Run the command with the scenario's data dir and database; its stdout."""
    result = runner.invoke(
        app,
        [
            *extra,
            "--data-dir",
            str(warehouse.settings.data_dir),
            "--database-url",
            warehouse.settings.effective_database_url,
        ],
    )
    assert result.exit_code == 0, result.stderr
    return result.stdout


AT = ("--as-of", "2024-04-15")


def test_lookup_list_json(runner: CliRunner, sqlite_scenario: Warehouse) -> None:
    """`lookup list --format json`: the one lookup the scenario loaded, from the first run."""
    (version,) = json.loads(invoke(runner, sqlite_scenario, "lookup", "list", "--format", "json"))
    assert version["version_id"] == 1
    assert version["run_id"] == 1
    assert version["postcodes"] == 9
    assert version["published"] == "1980-01"
    assert len(version["sha256"]) == 64


def test_lookup_list_table_and_csv(runner: CliRunner, sqlite_scenario: Warehouse) -> None:
    """The table and the CSV show the same version."""
    table = invoke(runner, sqlite_scenario, "lookup", "list")
    assert "Postcode lookup versions" in table
    assert "1980-01" in table
    rows = list(
        csv.DictReader(
            io.StringIO(invoke(runner, sqlite_scenario, "lookup", "list", "--format", "csv"))
        )
    )
    assert [(r["version_id"], r["published"]) for r in rows] == [("1", "1980-01")]


def test_table_caption_names_basis_and_version(
    runner: CliRunner, sqlite_scenario: Warehouse
) -> None:
    """The table's title and caption say the boundaries and the lookup version."""
    lines = invoke(runner, sqlite_scenario, "report", *AT).splitlines()
    assert lines[0].endswith("(lookup boundaries, lookup version 1 (1980-01))")
    assert lines[1].startswith("Boundaries: lookup (every period located with lookup version 1")


def test_supplied_is_an_alias_of_lookup(runner: CliRunner, sqlite_scenario: Warehouse) -> None:
    """`--boundaries supplied` (the old name) prints what the default prints."""
    default = invoke(runner, sqlite_scenario, "report", "--format", "csv", *AT)
    assert (
        invoke(
            runner, sqlite_scenario, "report", "--boundaries", "supplied", "--format", "csv", *AT
        )
        == default
    )


def test_json_with_metadata_is_an_envelope(runner: CliRunner, sqlite_scenario: Warehouse) -> None:
    """--with-metadata puts the basis and version around the rows; plain JSON stays a list."""
    plain = json.loads(invoke(runner, sqlite_scenario, "report", "--format", "json", *AT))
    document = json.loads(
        invoke(
            runner,
            sqlite_scenario,
            "report",
            "--format",
            "json",
            "--with-metadata",
            "--boundaries",
            "recorded",
            *AT,
        )
    )
    assert isinstance(plain, list)
    assert document["rows"] == plain
    assert (document["boundary_basis"], document["lookup_version"]) == ("recorded", 1)
    assert document["lookup_published"] == "1980-01"
    assert document["users_not_relocatable"] == 0


def test_csv_with_metadata_adds_columns(runner: CliRunner, sqlite_scenario: Warehouse) -> None:
    """CSV keeps one header and its rows; the basis and version are extra columns on each."""
    plain = list(
        csv.reader(io.StringIO(invoke(runner, sqlite_scenario, "report", "--format", "csv", *AT)))
    )
    rows = list(
        csv.DictReader(
            io.StringIO(
                invoke(runner, sqlite_scenario, "report", "--format", "csv", "--with-metadata", *AT)
            )
        )
    )
    assert len(rows) == len(plain) - 1
    assert {(r["boundaries"], r["lookup_version"]) for r in rows} == {("lookup", "1")}
    assert [r["users"] for r in rows] == [row[2] for row in plain[1:]]


def test_html_and_png_name_the_basis(
    runner: CliRunner, sqlite_scenario: Warehouse, tmp_path: Path
) -> None:
    """The HTML page carries the caption; the chart's title, which the PNG draws first, names
    the basis and version short enough to be drawn whole."""
    from evergreen_etl.report import analysis, pictures

    page = tmp_path / "report.html"
    invoke(runner, sqlite_scenario, "report", "--html", str(page), *AT)
    assert "Boundaries: lookup (every period located with lookup version 1" in page.read_text(
        encoding="utf-8"
    )
    result = analysis(sqlite_scenario.settings, engine=sqlite_scenario.engine)
    bars, _ = pictures(sqlite_scenario.settings, result, engine=sqlite_scenario.engine)
    assert bars.title == "Local authorities by users (lookup boundaries, lookup v1 1980-01)"
