"""--disclosure nhs on every report: no published count between 1 and 7, the rest multiples of 5."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.report.catalog import REPORTS
from evergreen_etl.sample import SampleResult


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, sample: SampleResult) -> Path:
    """A data dir with both sample snapshots loaded."""
    from support.keys import TEST_KEY

    data = tmp_path_factory.mktemp("nhs") / "d"
    runner = CliRunner(env={"EVERGREEN_PSEUDONYM_KEY": TEST_KEY})
    for k, users in enumerate(sample.users_paths):
        done = runner.invoke(
            app,
            [
                "run",
                "--data-dir",
                str(data),
                "--users-url",
                str(users),
                "--postcodes-url",
                str(sample.postcodes_path),
                "--as-of",
                f"2024-0{k + 1}-01",
                "-q",
            ],
        )
        assert done.exit_code == 0, done.stderr
    return data


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_nhs_rule_applies_to_every_report(runner: CliRunner, loaded: Path, name: str) -> None:
    """Every count column of every report obeys NHS England's rule; suppressed cells are marked."""
    extra = ["--from", "2024-01-15", "--to", "2024-02-15"] if name == "movers" else []
    result = runner.invoke(
        app,
        [
            "report",
            name,
            "--data-dir",
            str(loaded),
            "--disclosure",
            "nhs",
            "--format",
            "json",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows
    published = [row[c] for row in rows for c in REPORTS[name].counts if c in row]
    assert published
    for value in published:
        assert value is None or value == 0 or (value % 5 == 0 and abs(value) >= 10), (name, value)
    suppressed_rows = [row for row in rows if row.get("suppressed")]
    assert all(
        any(row[c] is None for c in REPORTS[name].counts if c in row) for row in suppressed_rows
    )
