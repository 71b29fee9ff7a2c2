"""`evergreen-etl report [NAME]`: --list, the default headline, options, errors, pictures."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.report import REPORTS, report
from evergreen_etl.report.render import render
from report.scenario import Warehouse


@pytest.fixture
def runner() -> CliRunner:
    """A CliRunner; result.stdout and result.stderr are captured separately."""
    return CliRunner()


def args(warehouse: Warehouse, *extra: str) -> list[str]:
    """`report` with the scenario's data dir and database."""
    return [
        "report",
        *extra,
        "--data-dir",
        str(warehouse.settings.data_dir),
        "--database-url",
        warehouse.settings.effective_database_url,
    ]


def test_list_names_every_report_on_one_line(runner: CliRunner) -> None:
    """`report --list` prints one line per report, its name first, and needs no warehouse."""
    result = runner.invoke(app, ["report", "--list"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(REPORTS)
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)


def test_default_report_is_the_headline_json(runner: CliRunner, sqlite_scenario: Warehouse) -> None:
    """`report --format json` prints exactly what the headline report always printed."""
    result = runner.invoke(app, args(sqlite_scenario, "--format", "json", "--as-of", "2024-04-15"))
    assert result.exit_code == 0, result.stderr
    expected = report(
        sqlite_scenario.settings, as_of=datetime(2024, 4, 15), engine=sqlite_scenario.engine
    )
    assert result.stdout == render(expected, "json")
    assert (
        result.stdout
        == runner.invoke(
            app,
            args(sqlite_scenario, "local-authority", "--format", "json", "--as-of", "2024-04-15"),
        ).stdout
    )


def test_named_report_as_csv(runner: CliRunner, sqlite_scenario: Warehouse) -> None:
    """`report region --format csv` prints the region rows, header first."""
    result = runner.invoke(
        app, args(sqlite_scenario, "region", "--format", "csv", "--as-of", "2024-04-15")
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "region_code,region_name,users\n"
        "E12000001,North East,6\n"
        "E12000005,West Midlands,1\n"
        "UNKNOWN,Unknown,1\n"
    )


def test_movers_between_two_dates(runner: CliRunner, sqlite_scenario: Warehouse) -> None:
    """`report movers --from --to` prints inflow, outflow and net per authority."""
    result = runner.invoke(
        app,
        args(
            sqlite_scenario,
            "movers",
            "--from",
            "2024-02-15",
            "--to",
            "2024-04-15",
            "--format",
            "json",
        ),
    )
    assert result.exit_code == 0, result.stderr
    assert [(r["local_authority_code"], r["net"]) for r in json.loads(result.stdout)] == [
        ("E06000001", 2),
        ("E06000003", -1),
        ("UNKNOWN", -1),
    ]


def test_min_count_marks_suppressed_in_csv(runner: CliRunner, sqlite_scenario: Warehouse) -> None:
    """`--min-count` writes "suppressed" in place of each small count."""
    result = runner.invoke(
        app,
        args(
            sqlite_scenario,
            "sex-age",
            "--format",
            "csv",
            "--min-count",
            "2",
            "--as-of",
            "2024-04-15",
        ),
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    # M 65+ (2) is hidden too: Hartlepool's published 3 minus it would give F 30-44 back.
    assert "E06000001,Hartlepool,M,65+,suppressed" in lines
    assert "E06000001,Hartlepool,F,30-44,suppressed" in lines
    assert not [line for line in lines[1:] if line.endswith(",1")]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["movers"], "--from"),
        (["nonsense"], "report --list"),
        (["data-quality", "--boundaries", "current"], "--boundaries"),
        (["--as-of", "yesterday"], "--as-of"),
        (["movers", "--from", "soon"], "--from"),
        (["region", "--to", "2024-01-01"], "--from and --to"),
    ],
    ids=["movers-without-from", "unknown-report", "boundaries", "bad-as-of", "bad-from", "to"],
)
def test_bad_usage_exits_2_with_a_one_line_error(
    runner: CliRunner, sqlite_scenario: Warehouse, extra: list[str], message: str
) -> None:
    """Wrong options are a configuration error (exit 2), named on stderr; stdout stays empty."""
    result = runner.invoke(app, args(sqlite_scenario, *extra))
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_html_and_png_are_written_beside_the_data(
    runner: CliRunner, sqlite_scenario: Warehouse, tmp_path: Path
) -> None:
    """--html and --png write their files; stdout still holds only the report."""
    page, chart = tmp_path / "page.html", tmp_path / "chart.png"
    result = runner.invoke(
        app,
        args(sqlite_scenario, "--format", "json", "--html", str(page), "--png", str(chart)),
    )
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"wrote {page}" in result.stderr


def test_boundaries_option(runner: CliRunner, sqlite_scenario: Warehouse) -> None:
    """`--boundaries current` is accepted by reports by place (nothing abolished here)."""
    result = runner.invoke(
        app,
        args(
            sqlite_scenario, "--boundaries", "current", "--format", "csv", "--as-of", "2024-04-15"
        ),
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1] == "E06000001,Hartlepool,3"
