"""`load --location-precision` cannot change the warehouse's precision silently; `--coarsen`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.conftest import data_dir
from evergreen_etl.cli import app
from evergreen_etl.sample import SampleResult


@pytest.mark.usefixtures("key_env")
def test_coarser_load_needs_coarsen(
    runner: CliRunner, sample: SampleResult, tmp_path: Path
) -> None:
    """A sector-precision load into a postcode warehouse exits 5 with the fix; --coarsen loads."""
    data = data_dir(tmp_path)
    users, postcodes = str(sample.users_paths[0]), str(sample.postcodes_path)
    sources = ["--users-url", users, "--postcodes-url", postcodes]
    first = runner.invoke(app, ["run", "--data-dir", data, *sources, "--as-of", "2024-01-01", "-q"])
    assert first.exit_code == 0, first.stderr
    load = ["load", "--data-dir", data, "--as-of", "2024-02-01", "-q"]
    refused = runner.invoke(app, [*load, "--location-precision", "sector"])
    assert refused.exit_code == 5
    assert "would mix the two" in refused.stderr
    assert "--coarsen" in refused.stderr
    coarsened = runner.invoke(app, [*load, "--location-precision", "sector", "--coarsen"])
    assert coarsened.exit_code == 0, coarsened.stderr
    assert json.loads(coarsened.stdout)["coarsened"] is True
