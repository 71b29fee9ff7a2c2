"""The command-line contract: commands, help, stdout holds only data, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.sample import SampleResult

COMMANDS = ["extract", "anonymise", "load", "report", "run", "demo", "db"]


def test_help_lists_every_subcommand(runner: CliRunner) -> None:
    """`evergreen-etl --help` names every stage command and the db group."""
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize(
    "command",
    [*COMMANDS, "db upgrade", "db downgrade", "db current"],
    ids=lambda c: c.replace(" ", "-"),
)
def test_every_command_has_help_text(runner: CliRunner, command: str) -> None:
    """Each command explains itself in --help."""
    result = runner.invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout
    assert len(result.stdout.splitlines()) > 5


def test_version(runner: CliRunner) -> None:
    """--version prints the package version."""
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("evergreen-etl ")


def test_demo_prints_report_and_summary(runner: CliRunner, tmp_path: Path) -> None:
    """`demo` runs on generated data; the report is on stdout, the summary on stderr."""
    result = runner.invoke(
        app,
        [
            "demo",
            "--data-dir",
            str(tmp_path / "d"),
            "--users",
            "200",
            "--postcodes",
            "2000",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert sum(row["users"] for row in rows) > 150
    assert "Run summary" in result.stderr


def test_report_json_is_only_json_and_adds_up(
    runner: CliRunner, tmp_path: Path, sample: SampleResult, key_env: None
) -> None:
    """`report --format json` prints a list of {code, name, users} that sums to the users loaded."""
    data = str(tmp_path / "data")
    run = runner.invoke(
        app,
        [
            "run",
            "--data-dir",
            data,
            "--users-url",
            str(sample.users_paths[0]),
            "--postcodes-url",
            str(sample.postcodes_path),
            "--as-of",
            "2024-01-01",
            "--quiet",
        ],
    )
    assert run.exit_code == 0, run.stderr
    result = runner.invoke(app, ["report", "--data-dir", data, "--format", "json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert all(
        set(row) == {"local_authority_code", "local_authority_name", "users"} for row in rows
    )
    load = json.loads(
        runner.invoke(app, ["load", "--data-dir", data, "--as-of", "2024-01-01", "-q"]).stdout
    )
    assert load["skipped"] is True
    unknown = [row for row in rows if row["local_authority_code"] == "UNKNOWN"]
    assert len(unknown) == 1
    assert unknown[0]["users"] > 0
    users_loaded = _users_in_warehouse(Path(data) / "warehouse.db")
    assert sum(row["users"] for row in rows) == users_loaded
    assert [r["users"] for r in rows] == sorted((r["users"] for r in rows), reverse=True)


def _users_in_warehouse(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM user_address WHERE is_current").fetchone()[0])


def test_report_csv_and_min_count(
    runner: CliRunner, tmp_path: Path, sample: SampleResult, key_env: None
) -> None:
    """CSV has the three columns; --min-count shows small counts as 'suppressed'."""
    data = str(tmp_path / "data")
    runner.invoke(
        app,
        [
            "run",
            "--data-dir",
            data,
            "--users-url",
            str(sample.users_paths[0]),
            "--postcodes-url",
            str(sample.postcodes_path),
            "--as-of",
            "2024-01-01",
            "-q",
        ],
    )
    result = runner.invoke(
        app, ["report", "--data-dir", data, "--format", "csv", "--min-count", "5"]
    )
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "local_authority_code,local_authority_name,users"
    counts = [line.rsplit(",", 1)[1] for line in lines[1:]]
    assert "suppressed" in counts
    assert all(c == "suppressed" or int(c) >= 5 for c in counts)


def test_report_on_empty_data_dir_says_upgrade(runner: CliRunner, tmp_path: Path) -> None:
    """A report on a database without the schema fails in one line naming `db upgrade`."""
    result = runner.invoke(app, ["report", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 5
    assert "db upgrade" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_bad_as_of_is_a_configuration_error(runner: CliRunner, tmp_path: Path) -> None:
    """An --as-of that is not a date exits 2 with a one-line message."""
    result = runner.invoke(app, ["report", "--data-dir", str(tmp_path), "--as-of", "yesterday"])
    assert result.exit_code == 2
    assert "--as-of" in result.stderr


def test_short_key_is_refused(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short pseudonym key in the environment is refused before anything runs."""
    monkeypatch.setenv("EVERGREEN_PSEUDONYM_KEY", "short")
    result = runner.invoke(app, ["anonymise", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "pseudonym" in result.stderr
    assert "short" not in result.stderr.split("error:")[0]


def test_db_upgrade_current_downgrade(runner: CliRunner, tmp_path: Path) -> None:
    """`db upgrade` creates the schema, `db current` shows it, `db downgrade base` removes it."""
    data = str(tmp_path / "data")
    assert runner.invoke(app, ["db", "upgrade", "--data-dir", data]).exit_code == 0
    current = runner.invoke(app, ["db", "current", "--data-dir", data]).stdout.splitlines()
    assert current[0].startswith("current: 0")
    assert current[0].split(": ")[1] == current[1].split(": ")[1]  # at head
    assert runner.invoke(app, ["db", "downgrade", "base", "--data-dir", data]).exit_code == 0
    assert "current: empty" in runner.invoke(app, ["db", "current", "--data-dir", data]).stdout
