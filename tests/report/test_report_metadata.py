"""`report --format json --with-metadata`: the rows in an envelope saying how they were made."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from evergreen_etl import __version__
from evergreen_etl.cli import app
from report.scenario import Warehouse
from report.test_report_command import args

_Z_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_envelope_carries_the_rows_and_how_they_were_made(sqlite_scenario: Warehouse) -> None:
    """The envelope's rows are plain JSON's rows; it adds as-of, rule, basis, version, time."""
    runner = CliRunner()
    common = ("--format", "json", "--as-of", "2024-04-15", "--disclosure", "nhs")
    plain = runner.invoke(app, args(sqlite_scenario, *common))
    result = runner.invoke(
        app, args(sqlite_scenario, *common, "--boundaries", "current", "--with-metadata")
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["report"] == "local-authority"
    assert document["as_of"] == "2024-04-15T00:00:00Z"
    assert document["rule"] == "nhs"
    assert document["boundary_basis"] == "current"
    assert document["lookup_version"] == 1  # the scenario's one lookup (README, "Boundaries ...")
    assert document["lookup_published"] == "1980-01"
    assert document["package_version"] == __version__
    assert _Z_TIME.match(document["generated_at"])
    supplied = runner.invoke(app, args(sqlite_scenario, *common, "--with-metadata"))
    assert json.loads(supplied.stdout)["rows"] == json.loads(plain.stdout)
    assert json.loads(supplied.stdout)["boundary_basis"] == "lookup"  # 'supplied' is its old name


def test_plain_json_stays_a_list(sqlite_scenario: Warehouse) -> None:
    """Without --with-metadata, `report --format json` is still the list of rows."""
    result = CliRunner().invoke(app, args(sqlite_scenario, "--format", "json"))
    assert isinstance(json.loads(result.stdout), list)


def test_with_metadata_needs_json(sqlite_scenario: Warehouse) -> None:
    """--with-metadata with the table format is a one-line configuration error (exit 2): the
    table states its basis and version in its title already."""
    result = CliRunner().invoke(app, args(sqlite_scenario, "--with-metadata"))
    assert result.exit_code == 2
    assert "--with-metadata needs --format json" in result.stderr


def test_report_without_place_has_no_boundary_basis(sqlite_scenario: Warehouse) -> None:
    """A report by run (not by place) says boundary_basis null."""
    result = CliRunner().invoke(
        app, args(sqlite_scenario, "joiners-leavers", "--format", "json", "--with-metadata")
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["boundary_basis"] is None
